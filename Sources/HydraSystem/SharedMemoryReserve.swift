import Foundation

/// Shared memory faulted in ahead of need: memfds of `pieceBytes`, each mapped writable with its
/// pages already in place, so a chunk that arrives lands in memory the kernel (and, in a VM, the
/// hypervisor) has already provided. On this project's VMs first-touch memory runs at 0.7–2 GB/s,
/// slower than loopback transfers; a node cache fills its reserve while idle.
///
/// A taken piece is shrunk to the chunk (its tail pages go back to the kernel) and, once sealed,
/// never returns: sealed memory cannot be rewritten, which is what makes a worker's view of a
/// chunk immutable. The reserve refills instead.
public final class SharedMemoryReserve: @unchecked Sendable {
    public struct Piece {
        public let memory: SharedMemoryFile
        public let mapping: MappedMemory
    }

    public let pieceBytes: Int
    public let targetBytes: Int
    private let lock = NSCondition()
    private var pieces: [Piece] = []
    private var faulting = 0

    public init(pieceBytes: Int, targetBytes: Int) {
        precondition(pieceBytes > 0 && targetBytes >= 0)
        self.pieceBytes = pieceBytes
        self.targetBytes = targetBytes
    }

    /// Bytes faulted in and waiting.
    public var readyBytes: Int { lock.withLock { pieces.count * pieceBytes } }

    /// Whether a chunk of `count` bytes should come from the reserve: it must fit, and be at
    /// least half a piece (smaller ones would give back most of a faulted piece).
    public func suits(_ count: Int) -> Bool { count <= pieceBytes && count * 2 >= pieceBytes }

    /// A piece shrunk to `count` bytes, or nil when none is ready or the size does not suit.
    public func take(count: Int) -> Piece? {
        guard suits(count), let piece = lock.withLock({ pieces.popLast() }) else { return nil }
        guard (try? piece.memory.shrink(to: count)) != nil else { return nil }
        return piece
    }

    /// Faults in one more piece if the reserve is below `limit` bytes (at most its target);
    /// false when it is full to that limit or memory cannot be had.
    @discardableResult
    public func addPiece(limit: Int) -> Bool {
        // Counted before it is faulted in, so that two fillers never overshoot together.
        let claimed = lock.withLock {
            guard (pieces.count + faulting + 1) * pieceBytes <= min(limit, targetBytes) else { return false }
            faulting += 1
            return true
        }
        guard claimed else { return false }
        let piece: Piece?
        do {
            let memory = try SharedMemoryFile(name: "hydra-reserve", count: pieceBytes)
            piece = Piece(memory: memory, mapping: try memory.map(writable: true, populate: true))
        } catch {
            piece = nil
        }
        lock.withLock {
            faulting -= 1
            if let piece { pieces.append(piece) }
            lock.broadcast()
        }
        return piece != nil
    }

    /// Waits for pieces another thread is faulting in.
    public func settle() {
        lock.withLock { while faulting > 0 { lock.wait() } }
    }
}
