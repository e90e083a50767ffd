/// The tokens of one forward pass: several sequences' new tokens stacked row after row.
public struct Batch: Sendable {
    public struct Sequence: Sendable {
        /// First row of this sequence's tokens in the stacked activations.
        public var firstRow: Int
        public var tokenCount: Int
        /// Position of the first new token (the tokens before it are in the KV cache).
        public var startPosition: Int
        public var blockTable: [Int]

        public init(firstRow: Int, tokenCount: Int, startPosition: Int, blockTable: [Int]) {
            self.firstRow = firstRow
            self.tokenCount = tokenCount
            self.startPosition = startPosition
            self.blockTable = blockTable
        }
    }

    public var sequences: [Sequence]

    public init(sequences: [Sequence]) { self.sequences = sequences }

    public var tokenCount: Int { sequences.reduce(0) { $0 + $1.tokenCount } }

    /// The position of every row.
    public var positions: [Int] {
        sequences.flatMap { s in (0..<s.tokenCount).map { s.startPosition + $0 } }
    }

    /// The last row of each sequence (where its next-token logits come from).
    public var lastRows: [Int] { sequences.map { $0.firstRow + $0.tokenCount - 1 } }
}
