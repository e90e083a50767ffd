import HydraEngine

/// Sent by a stage to the next one when the link opens: both must agree on the model, the
/// pipeline shape and the shared KV block ids, or the link is refused.
public struct PipelineHello: Sendable, Equatable {
    public var model: String
    public var pp: Int
    /// The stage the receiver must be.
    public var stage: Int
    public var blockCount: Int
    public var blockSize: Int

    func encoded() -> [UInt8] {
        var writer = WireWriter()
        writer.string(model)
        writer.u32(pp)
        writer.u32(stage)
        writer.u32(blockCount)
        writer.u32(blockSize)
        return writer.bytes
    }

    init(model: String, pp: Int, stage: Int, blockCount: Int, blockSize: Int) {
        self.model = model
        self.pp = pp
        self.stage = stage
        self.blockCount = blockCount
        self.blockSize = blockSize
    }

    init(decoding bytes: [UInt8]) throws {
        var reader = WireReader(bytes)
        model = try reader.string("model name")
        pp = try reader.u32("pp")
        stage = try reader.u32("stage")
        blockCount = try reader.u32("block count")
        blockSize = try reader.u32("block size")
        try reader.finish("hello")
    }
}

/// One step's activations on their way down the pipeline: the batch layout (positions, shared
/// block tables), each sequence's sampling parameters, and the residual stream.
public struct PipelineForward: Sendable {
    public var stepID: UInt64
    public var step: ScheduledStep
    public var hidden: Matrix

    /// Bounds that no honest frame exceeds; checked before anything is allocated from them.
    static let maxSequences = 4096
    static let maxRows = 1 << 16

    func encoded() -> [UInt8] {
        var writer = WireWriter()
        writer.u64(stepID)
        writer.u32(step.sequences.count)
        for (layout, sequence) in zip(step.batch.sequences, step.sequences) {
            writer.u64(UInt64(sequence.id))
            writer.u32(layout.firstRow)
            writer.u32(layout.tokenCount)
            writer.u32(layout.startPosition)
            writer.u32(layout.blockTable.count)
            for block in layout.blockTable { writer.u32(block) }
            writer.sampling(sequence.sampling)
            writer.u8(sequence.wantsPromptLogits ? 1 : 0)
        }
        writer.u32(step.released.count)
        for id in step.released { writer.u64(UInt64(id)) }
        writer.u32(hidden.rows)
        writer.u32(hidden.columns)
        writer.floats(hidden.values)
        return writer.bytes
    }

    init(stepID: UInt64, step: ScheduledStep, hidden: Matrix) {
        self.stepID = stepID
        self.step = step
        self.hidden = hidden
    }

    /// Decodes and checks the frame against the receiving stage's limits.
    init(decoding bytes: [UInt8], hiddenSize: Int, contextLength: Int, blockCount: Int, blockSize: Int) throws {
        typealias Malformed = PipelineWire.Malformed
        var reader = WireReader(bytes)
        stepID = try reader.u64("step id")
        let count = try reader.u32("sequence count")
        guard (1...Self.maxSequences).contains(count) else { throw Malformed("\(count) sequences (1…\(Self.maxSequences) allowed)") }
        var layouts: [Batch.Sequence] = []
        var sequences: [ScheduledStep.Sequence] = []
        var rows = 0
        for index in 0..<count {
            let id = try reader.u64("sequence id")
            let firstRow = try reader.u32("first row")
            let tokenCount = try reader.u32("token count")
            let start = try reader.u32("start position")
            let blockCountInTable = try reader.u32("block table length")
            guard firstRow == rows else { throw Malformed("sequence \(index) starts at row \(firstRow), expected \(rows)") }
            guard tokenCount >= 1, tokenCount <= Self.maxRows else { throw Malformed("sequence \(index) has \(tokenCount) tokens") }
            guard start + tokenCount <= contextLength else {
                throw Malformed("sequence \(index) reaches position \(start + tokenCount), the context holds \(contextLength)")
            }
            let needed = (start + tokenCount + blockSize - 1) / blockSize
            guard blockCountInTable >= needed, blockCountInTable <= blockCount else {
                throw Malformed("sequence \(index) has \(blockCountInTable) blocks for \(start + tokenCount) positions (needs \(needed), at most \(blockCount))")
            }
            var table: [Int] = []
            for _ in 0..<blockCountInTable {
                let block = try reader.u32("block id")
                guard block < blockCount else { throw Malformed("block id \(block) out of range (\(blockCount) blocks)") }
                table.append(block)
            }
            let sampling = try reader.sampling("sequence \(index)")
            let wantsLogits = try reader.u8("logits flag")
            guard id <= UInt64(Int.max) else { throw Malformed("sequence id \(id) out of range") }
            layouts.append(Batch.Sequence(firstRow: firstRow, tokenCount: tokenCount, startPosition: start, blockTable: table))
            sequences.append(ScheduledStep.Sequence(id: Int(id), sampling: sampling, wantsPromptLogits: wantsLogits == 1))
            rows += tokenCount
        }
        let releasedCount = try reader.u32("released count")
        guard releasedCount <= 1 << 20 else { throw Malformed("\(releasedCount) released sequences") }
        var released: [Int] = []
        for _ in 0..<releasedCount { released.append(Int(truncatingIfNeeded: try reader.u64("released id"))) }
        let matrixRows = try reader.u32("rows")
        let columns = try reader.u32("columns")
        guard matrixRows == rows, rows <= Self.maxRows else { throw Malformed("activations have \(matrixRows) rows for \(rows) tokens") }
        guard columns == hiddenSize else { throw Malformed("activations have \(columns) columns, the model's hidden size is \(hiddenSize)") }
        let values = try reader.floats(rows * columns, "activations")
        try reader.finish("forward")
        hidden = Matrix(rows: rows, columns: columns, values: values)
        step = ScheduledStep(tokens: [], batch: Batch(sequences: layouts), sequences: sequences, released: released)
    }
}

/// The sampled tokens of one step, on their way back to stage 0.
public struct PipelineTokens: Sendable, Equatable {
    public var stepID: UInt64
    public var tokens: [Int]

    func encoded() -> [UInt8] {
        var writer = WireWriter()
        writer.u64(stepID)
        writer.u32(tokens.count)
        for token in tokens { writer.u32(token) }
        return writer.bytes
    }

    init(stepID: UInt64, tokens: [Int]) {
        self.stepID = stepID
        self.tokens = tokens
    }

    init(decoding bytes: [UInt8], vocabSize: Int) throws {
        var reader = WireReader(bytes)
        stepID = try reader.u64("step id")
        let count = try reader.u32("token count")
        guard count <= PipelineForward.maxSequences else { throw PipelineWire.Malformed("\(count) tokens") }
        tokens = try (0..<count).map { _ in
            let token = try reader.u32("token")
            guard token < vocabSize else { throw PipelineWire.Malformed("token \(token) outside the vocabulary (\(vocabSize))") }
            return token
        }
        try reader.finish("tokens")
    }
}
