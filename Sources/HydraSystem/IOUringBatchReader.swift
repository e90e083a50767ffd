import CURing
import CHydraShims
import Foundation
import Glibc

/// Batches of reads through io_uring. One thread owns the ring: callers hand it batches through
/// a locked queue and an eventfd (which the ring itself watches), so the thread sleeps in
/// io_uring_wait_cqe until either a completion or new work arrives — no busy-waiting. O_DIRECT
/// reads go to the device from the ring; buffered ones to io_uring's kernel workers, which copy
/// from the page cache on every core (see `submit`).
final class IOUringBatchReader: FileBatchReader, @unchecked Sendable {
    let backend = "io_uring"
    /// Reads are split into pieces of at most this size so a large chunk keeps several in flight.
    static let pieceBytes = 4 << 20
    private static let wakeTag: UInt64 = 0

    private var ring = io_uring()
    private let depth: Int
    private let wakeFD: Int32
    private let lock = NSLock()
    private var incoming: [Piece] = []
    /// The ring thread's id once it runs: its kernel workers are named `iou-wrk-<id>`.
    let threadID = LockedBox<pid_t>(0)

    private struct Piece {
        var read: FileRead
        var done: Int  // bytes of this piece already read
        let batch: PendingBatch
        /// A buffered read, handed to io_uring's workers (see `submit`).
        let async: Bool
    }

    private init(depth: Int, wakeFD: Int32) {
        self.depth = depth
        self.wakeFD = wakeFD
    }

    static func make(queueDepth: Int) -> Result<IOUringBatchReader, SystemError> {
        let wake = eventfd(0, Int32(EFD_CLOEXEC))
        guard wake >= 0 else { return .failure(SystemError("eventfd", errno: errno)) }
        let reader = IOUringBatchReader(depth: queueDepth, wakeFD: wake)
        let rc = io_uring_queue_init(UInt32(queueDepth), &reader.ring, 0)
        guard rc == 0 else {
            close(wake)
            return .failure(SystemError("io_uring_queue_init", errno: -rc))
        }
        let thread = Thread { reader.run() }
        thread.name = "hydra-io-uring"
        thread.start()
        return .success(reader)
    }

    func submit(_ batch: [FileRead], completion: @escaping @Sendable (Error?) -> Void) {
        guard !batch.isEmpty else { return completion(nil) }
        // Pieces of at most pieceBytes, all belonging to one pending batch.
        var pieces: [(FileRead, Bool)] = []
        for read in batch {
            // Reads of buffered files (not O_DIRECT) go to io_uring's worker threads at once
            // (IOSQE_ASYNC). Left to the ring, a read the page cache can answer is copied inline,
            // by this one thread, at one core's kernel-copy speed: warm, the synthetic 2 GB model
            // read at 7.9 GB/s that way and at 12.3 GB/s with the workers copying 4 MiB pieces on
            // every core (same-run A/B, this 2-core VM). O_DIRECT reads stay on the ring: they
            // are queued to the device without blocking anyway.
            let async = fcntl(read.fd, F_GETFL) & chydra_O_DIRECT == 0
            var offset = 0
            repeat {
                let length = min(Self.pieceBytes, read.length - offset)
                pieces.append((FileRead(fd: read.fd, offset: read.offset + offset, length: length,
                                        buffer: read.buffer + offset, path: read.path), async))
                offset += length
            } while offset < read.length
        }
        let pending = PendingBatch(pieces: pieces.count, completion: completion)
        lock.withLock { incoming += pieces.map { Piece(read: $0.0, done: 0, batch: pending, async: $0.1) } }
        var one: UInt64 = 1
        _ = write(wakeFD, &one, 8)
    }

    // MARK: - The ring's thread

    private func run() {
        threadID.value = chydra_thread_id()
        var slots: [Int: Piece] = [:]  // user_data (≥ 1) → piece in flight
        var freeTags: [UInt64] = Array((1...UInt64(depth)).reversed())
        var waiting: [Piece] = []      // accepted, not yet submitted (ring full)
        var wakeValue: UInt64 = 0
        var wakeArmed = false

        while true {
            if !wakeArmed, let sqe = io_uring_get_sqe(&ring) {
                io_uring_prep_read(sqe, wakeFD, &wakeValue, 8, 0)
                io_uring_sqe_set_data64(sqe, Self.wakeTag)
                wakeArmed = true
            }
            waiting += lock.withLock { () -> [Piece] in
                defer { incoming.removeAll(keepingCapacity: true) }
                return incoming
            }
            // Keep one slot for the eventfd read.
            while !waiting.isEmpty, freeTags.count > 1, let sqe = io_uring_get_sqe(&ring) {
                let piece = waiting.removeFirst()
                let tag = freeTags.removeLast()
                io_uring_prep_read(sqe, piece.read.fd, piece.read.buffer + piece.done, UInt32(piece.read.length - piece.done),
                                   UInt64(piece.read.offset + piece.done))
                io_uring_sqe_set_data64(sqe, tag)
                if piece.async { io_uring_sqe_set_flags(sqe, 1 << UInt32(IOSQE_ASYNC_BIT)) }
                slots[Int(tag)] = piece
            }
            _ = io_uring_submit(&ring)

            var cqe: UnsafeMutablePointer<io_uring_cqe>?
            let rc = io_uring_wait_cqe(&ring, &cqe)
            if rc == -EINTR { continue }
            precondition(rc == 0, "io_uring_wait_cqe failed: \(String(cString: strerror(-rc)))")
            // Drain every completion that is ready.
            repeat {
                guard let event = cqe else { break }
                let tag = event.pointee.user_data
                let result = Int(event.pointee.res)
                io_uring_cqe_seen(&ring, event)
                if tag == Self.wakeTag {
                    wakeArmed = false
                } else if var piece = slots.removeValue(forKey: Int(tag)) {
                    freeTags.append(tag)
                    if result == -Int(EINTR) || result == -Int(EAGAIN) {
                        waiting.append(piece)
                    } else if result < 0 {
                        piece.batch.finishPiece(SystemError("read", path: piece.read.path, errno: Int32(-result)))
                    } else if result == 0 {
                        piece.batch.finishPiece(ShortRead(path: piece.read.path, offset: piece.read.offset + piece.done))
                    } else {
                        piece.done += result
                        if piece.done < piece.read.length { waiting.append(piece) }  // short read: resume
                        else { piece.batch.finishPiece(nil) }
                    }
                }
                cqe = nil
            } while io_uring_peek_cqe(&ring, &cqe) == 0
        }
    }
}
