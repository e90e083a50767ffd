import Dispatch
import Foundation

/// Splits `0..<count` into contiguous parts and runs them on the compute threads.
public enum Parallel {
    /// Starts the compute threads now rather than on the first forward pass.
    public static func warmUp() { forEach(threadCount * 16, minimumPerThread: 16) { _ in } }

    static let threadCount: Int = {
        if let text = ProcessInfo.processInfo.environment["HYDRA_THREADS"], let n = Int(text), n > 0 { return n }
        return max(1, ProcessInfo.processInfo.activeProcessorCount)
    }()

    /// `body(range)` for each part; small jobs run inline.
    static func forEach(_ count: Int, minimumPerThread: Int = 16, _ body: (Range<Int>) -> Void) {
        let parts = min(threadCount, max(1, count / max(1, minimumPerThread)))
        if parts <= 1 { body(0..<count); return }
        let pool = ComputePool.shared
        withoutActuallyEscaping(body) { body in
            // The parts touch disjoint ranges; run returns only when all are done.
            nonisolated(unsafe) let run = body
            pool.run { part in
                guard part < parts else { return }
                let start = count * part / parts, end = count * (part + 1) / parts
                if start < end { run(start..<end) }
            }
        }
    }

    /// `body(i)` for every i in 0..<count, dealt round-robin to the threads: for work whose cost
    /// grows with i (causal attention over later positions), every thread gets a fair share.
    static func forEachInterleaved(_ count: Int, _ body: (Int) -> Void) {
        let parts = min(threadCount, count)
        if parts <= 1 { for i in 0..<count { body(i) }; return }
        let pool = ComputePool.shared
        withoutActuallyEscaping(body) { body in
            nonisolated(unsafe) let run = body
            pool.run { part in
                guard part < parts else { return }
                for i in stride(from: part, to: count, by: parts) { run(i) }
            }
        }
    }
}
