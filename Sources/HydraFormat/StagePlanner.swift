/// Splits layers into `pp` contiguous, non-empty ranges minimising the largest stage's fetch
/// bytes. Stage 0 also fetches the embedding; the last stage the head (and, when the head is
/// tied, the embedding again).
public struct StagePlanner: Sendable {
    public let layerBytes: [Int]
    public let embedBytes: Int
    public let headBytes: Int
    /// Bytes the last stage fetches in addition when the head is tied (0 if untied).
    public let tiedHeadBytes: Int

    public init(layerBytes: [Int], embedBytes: Int, headBytes: Int, tiedHeadBytes: Int) {
        self.layerBytes = layerBytes
        self.embedBytes = embedBytes
        self.headBytes = headBytes
        self.tiedHeadBytes = tiedHeadBytes
    }

    /// The layer ranges of each stage, or nil when `pp` exceeds the layer count.
    public func plan(pp: Int) -> [Range<Int>]? {
        let n = layerBytes.count
        guard pp >= 1, pp <= n else { return nil }
        var prefix = [0]
        for bytes in layerBytes { prefix.append(prefix.last! + bytes) }
        func cost(_ stage: Int, _ range: Range<Int>) -> Int {
            var bytes = prefix[range.upperBound] - prefix[range.lowerBound]
            if stage == 0 { bytes += embedBytes }
            if stage == pp - 1 { bytes += headBytes + (pp > 1 ? tiedHeadBytes : 0) }
            return bytes
        }
        // best[s][i]: for stages 0..<s covering layers 0..<i, the smallest largest stage, then
        // (among equals) the smallest sum of squared stage bytes, so stages that cannot lower
        // the bottleneck still come out even.
        let unreachable = Score(largest: Int.max, squares: .infinity)
        var best = [[Score]](repeating: [Score](repeating: unreachable, count: n + 1), count: pp + 1)
        var split = [[Int]](repeating: [Int](repeating: 0, count: n + 1), count: pp + 1)
        best[0][0] = Score(largest: 0, squares: 0)
        for s in 1...pp {
            for i in s...(n - (pp - s)) {
                for j in (s - 1)..<i where best[s - 1][j] != unreachable {
                    let bytes = cost(s - 1, j..<i)
                    let previous = best[s - 1][j]
                    let candidate = Score(largest: max(previous.largest, bytes), squares: previous.squares + Double(bytes) * Double(bytes))
                    // `<` keeps the earliest split on ties, so plans are deterministic.
                    if candidate < best[s][i] {
                        best[s][i] = candidate
                        split[s][i] = j
                    }
                }
            }
        }
        var ranges: [Range<Int>] = []
        var end = n
        for s in stride(from: pp, to: 0, by: -1) {
            let start = split[s][end]
            ranges.append(start..<end)
            end = start
        }
        return ranges.reversed()
    }

    struct Score: Comparable {
        var largest: Int
        var squares: Double
        static func < (a: Score, b: Score) -> Bool { (a.largest, a.squares) < (b.largest, b.squares) }
    }
}
