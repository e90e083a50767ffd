import Foundation

/// Shared memory faulted in ahead of need: memfds mapped writable with their pages already in
/// place, so a chunk that arrives lands in memory the kernel (and, in a VM, the hypervisor) has
/// already provided. On this project's VMs first-touch memory runs at 0.7–2 GB/s, slower than
/// loopback transfers; a node cache fills its reserve while idle.
///
/// Pieces come in four size classes, halving from `largestPieceBytes` (32, 16, 8, 4 MiB by
/// default). A chunk takes a piece of the smallest class that holds it, shrunk to the chunk (the
/// tail pages go back to the kernel: less than half the piece, since a chunk too small for a class
/// uses the one below); chunks larger than the largest class or no larger than half the smallest
/// get fresh memory. Giving back most of a big piece costs about what faulting in fresh memory
/// does, so classes matter: SmolLM2's 7 MB chunks fetched in 0.17 s from 32 MiB pieces and in
/// 0.12 s from 8 MiB ones.
///
/// Which classes to hold is learned: every chunk asked of the reserve, taken or missed, adds a
/// piece of its class to that class's demand (decaying, so the mix follows the models the node serves), and
/// refills keep each class's share of the target near its share of demand, trading a piece of a
/// class that holds too much for one that holds too little. The first demand is what the node
/// expects (`expect`: a node cache reads its stores' manifests before filling); without any, the
/// largest class (the converter's default chunk size) gets it all.
///
/// Shrinking is not free: giving back 10 MB of 4 KiB pages takes 1.5–2.5 ms, about a tenth of
/// the time the chunk takes to arrive over one loopback connection. A taken piece is therefore
/// shrunk on the reserve's trimming thread while its chunk lands below the new end; the taker
/// waits for it (`Trim.wait`) before it seals the chunk.
///
/// A taken piece is sealed with its chunk and never returns (sealed memory cannot be rewritten,
/// which is what makes a worker's view of a chunk immutable): the reserve refills instead.
public final class SharedMemoryReserve: @unchecked Sendable {
    public struct Piece {
        public let memory: SharedMemoryFile
        public let mapping: MappedMemory
        /// The shrink of a taken piece to its chunk's size, under way on the trimming thread.
        public var trim: Trim?
    }

    /// A taken piece's shrink: its pages past the chunk go back to the kernel on the trimming
    /// thread, while bytes land below the chunk's end through the piece's mapping.
    public final class Trim: @unchecked Sendable {
        private let memory: SharedMemoryFile
        private let count: Int
        private let done = DispatchSemaphore(value: 0)
        private var failure: (any Error)?

        init(memory: SharedMemoryFile, count: Int) {
            self.memory = memory
            self.count = count
        }

        func run() {
            do { try memory.releasePages(beyond: count) } catch { failure = error }
            done.signal()
        }

        /// Waits for the shrink; afterwards the piece's memory is exactly its chunk's size.
        public func wait() throws {
            done.wait()
            done.signal()  // later waits return at once
            if let failure { throw failure }
            try memory.shrink(to: count)
        }
    }

    /// Piece sizes, largest first.
    public let classes: [Int]
    public let targetBytes: Int
    private let lock = NSCondition()
    private var pieces: [Int: [Piece]] = [:]
    private var faulting = 0
    private var faultingBytes = 0
    private var demand: [Int: Double] = [:]
    private let trimming = DispatchQueue(label: "hydra-reserve-trim", qos: .userInitiated)

    public init(largestPieceBytes: Int, targetBytes: Int) {
        precondition(largestPieceBytes >= 4096 && targetBytes >= 0)
        classes = (0..<4).map { largestPieceBytes >> $0 }.filter { $0 >= 4096 }
        self.targetBytes = targetBytes
    }

    public var largestPieceBytes: Int { classes[0] }

    /// Bytes faulted in and waiting.
    public var readyBytes: Int { lock.withLock { readyBytesLocked } }
    private var readyBytesLocked: Int { pieces.reduce(0) { $0 + $1.key * $1.value.count } }

    /// The class a chunk of `count` bytes takes a piece of, or nil (fresh memory).
    public func pieceBytes(for count: Int) -> Int? {
        guard count <= classes[0], count * 2 > classes[classes.count - 1] else { return nil }
        return classes.last { $0 >= count }
    }

    /// A piece for `count` bytes, its shrink to them under way (`trim`), or nil when none of its
    /// class is ready or no class suits. Either way the chunk counts toward its class's demand.
    public func take(count: Int) -> Piece? {
        guard let size = pieceBytes(for: count) else { return nil }
        let taken: Piece? = lock.withLock {
            for key in demand.keys { demand[key]! *= 0.995 }
            demand[size, default: 0] += Double(size)
            return pieces[size]?.popLast()
        }
        guard var piece = taken else { return nil }
        let trim = Trim(memory: piece.memory, count: count)
        piece.trim = trim
        trimming.async { trim.run() }
        return piece
    }

    /// Counts a chunk of `count` bytes the node expects to serve toward its class's demand (the
    /// prior a node cache learns from its stores' manifests before it fills the reserve).
    public func expect(_ count: Int) {
        guard let size = pieceBytes(for: count) else { return }
        lock.withLock { demand[size, default: 0] += Double(size) }
    }

    /// Faults in one more piece, of the class furthest below its share, if the reserve is below
    /// `limit` bytes (at most its target); when it is full, trades a piece of a class above its
    /// share for one below. False when there is nothing to do or memory cannot be had.
    @discardableResult
    public func addPiece(limit: Int) -> Bool {
        // Chosen and counted before it is faulted in, so that two fillers never overshoot together.
        // A traded piece comes out with the claim, to be unmapped and freed after the lock.
        let claimed: (size: Int, traded: Piece?)? = lock.withLock {
            let capacity = min(limit, targetBytes)
            let total = demand.values.reduce(0, +)
            let share = { (size: Int) in total > 0 ? (self.demand[size] ?? 0) / total : (size == self.classes[0] ? 1 : 0) }
            let held = { (size: Int) in Double(size * (self.pieces[size]?.count ?? 0)) }
            let deficit = { (size: Int) in share(size) * Double(capacity) - held(size) }
            let short = classes.filter { deficit($0) > 0 }.sorted { deficit($0) > deficit($1) }
            let room = capacity - readyBytesLocked - faultingBytes
            if let fits = short.first(where: { $0 <= room }) {
                faulting += 1
                faultingBytes += fits
                return (fits, nil)
            }
            // Full: trade a piece of the class furthest above its share, if that makes room.
            guard let wanted = short.first,
                  let surplus = classes.filter({ -deficit($0) >= Double($0) }).max(by: { -deficit($0) < -deficit($1) }),
                  room + surplus >= wanted else { return nil }
            let traded = pieces[surplus]!.removeLast()
            faulting += 1
            faultingBytes += wanted
            return (wanted, traded)
        }
        guard let size = claimed?.size else { return false }
        let piece: Piece?
        do {
            let memory = try SharedMemoryFile(name: "hydra-reserve", count: size)
            piece = Piece(memory: memory, mapping: try memory.map(writable: true, populate: true))
        } catch {
            piece = nil
        }
        lock.withLock {
            faulting -= 1
            faultingBytes -= size
            if let piece { pieces[size, default: []].append(piece) }
            lock.broadcast()
        }
        return piece != nil
    }

    /// Waits for pieces another thread is faulting in.
    public func settle() {
        lock.withLock { while faulting > 0 { lock.wait() } }
    }
}
