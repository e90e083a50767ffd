import Foundation
import HydraSystem
import NIOCore

/// Reads response pieces straight into NIO buffers, on dedicated threads: the io_uring read lands
/// in the very buffer the socket write sends (no scratch buffer copied into it), and the
/// cooperative pool never waits on the disk.
final class PieceReader: @unchecked Sendable {
    private struct Job {
        let fd: Int32
        let offset: Int
        let length: Int
        let path: String
        let continuation: CheckedContinuation<ByteBuffer, Error>
    }

    private let jobs: BlockingQueue<Job>

    /// `capacity` must be at least the number of reads callers can have in flight (the server's
    /// read limit), so that queueing a read never blocks the caller.
    init(reader: any FileBatchReader, threads: Int, capacity: Int) {
        let jobs = BlockingQueue<Job>(capacity: capacity)
        self.jobs = jobs
        for index in 0..<threads {
            let thread = Thread {
                let allocator = ByteBufferAllocator()
                while let job = jobs.take() {
                    job.continuation.resume(with: Result {
                        var buffer = allocator.buffer(capacity: job.length)
                        try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: job.length) { target in
                            try reader.readBlocking([FileRead(fd: job.fd, offset: job.offset, length: job.length,
                                                              buffer: target.baseAddress!, path: job.path)])
                            return job.length
                        }
                        return buffer
                    })
                }
            }
            thread.name = "hydra-store-read-\(index)"
            thread.start()
        }
    }

    deinit { jobs.close() }

    /// `length` bytes at `offset` of `fd`.
    func read(fd: Int32, offset: Int, length: Int, path: String) async throws -> ByteBuffer {
        try await withCheckedThrowingContinuation { continuation in
            jobs.put(Job(fd: fd, offset: offset, length: length, path: path, continuation: continuation))
        }
    }
}
