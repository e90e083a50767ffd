import Foundation
import HydraSystem
import Synchronization

/// Persistent compute threads for the kernels. GCD's concurrentPerform parks its workers and
/// wakes them on every call, which costs more than a small decode-time matmul; here workers
/// spin briefly for the next job before they sleep, so a forward pass's hundreds of parallel
/// kernels start at once. Threads claim a job's parts from a shared counter, the caller too: where
/// several workers share the cores (emulated nodes on one machine) and a compute thread is not
/// running, the caller does its part instead of waiting a scheduler slice for it.
final class ComputePool: @unchecked Sendable {
    static let shared = ComputePool(threads: Parallel.threadCount)

    let threads: Int
    private let generation = Atomic<Int>(0)
    private let remaining = Atomic<Int>(0)
    private let sleepers = Atomic<Int>(0)
    /// The next unclaimed part of the current job.
    private let nextPart = Atomic<Int>(0)
    private let condition = NSCondition()
    private let serial = NSLock()  // one job at a time
    nonisolated(unsafe) private var job: ((Int) -> Void)?
    /// Spins before an idle worker sleeps (tens of microseconds).
    private static let spinLimit = 20_000

    init(threads: Int) {
        self.threads = max(1, threads)
        HeapTuning.keepLargeAllocationsInHeap()
        for worker in 1..<self.threads {
            let thread = Thread { [unowned self] in self.work(worker) }
            thread.name = "hydra-compute-\(worker)"
            thread.start()
        }
    }

    private func work(_ index: Int) {
        var seen = 0
        while true {
            var spins = 0
            while generation.load(ordering: .acquiring) == seen {
                spins += 1
                if spins < Self.spinLimit { continue }
                condition.lock()
                sleepers.add(1, ordering: .sequentiallyConsistent)
                while generation.load(ordering: .sequentiallyConsistent) == seen { condition.wait() }
                sleepers.subtract(1, ordering: .sequentiallyConsistent)
                condition.unlock()
                spins = 0
            }
            seen = generation.load(ordering: .acquiring)
            claimParts()
        }
    }

    /// Runs parts of the current job until none is left unclaimed.
    private func claimParts() {
        while true {
            let part = nextPart.add(1, ordering: .acquiringAndReleasing).oldValue
            guard part < threads else { return }
            job!(part)
            remaining.subtract(1, ordering: .releasing)
        }
    }

    /// Runs `body(part)` for part 0..<threads, on the compute threads and the calling thread;
    /// returns when all are done.
    func run(_ body: @escaping (Int) -> Void) {
        serial.lock()
        defer { serial.unlock() }
        job = body
        remaining.store(threads, ordering: .sequentiallyConsistent)
        nextPart.store(0, ordering: .sequentiallyConsistent)
        generation.add(1, ordering: .sequentiallyConsistent)
        if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
            condition.lock()
            condition.broadcast()
            condition.unlock()
        }
        claimParts()
        // Parts other threads claimed: spin briefly, then give the core to whoever runs them.
        var spins = 0
        while remaining.load(ordering: .acquiring) > 0 {
            spins += 1
            if spins > 2_000 { sched_yield() }
        }
        job = nil
    }
}
