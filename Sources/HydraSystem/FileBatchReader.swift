import Foundation
import Logging
import Glibc
import CHydraShims

/// One read: `length` bytes at `offset` of an open file into `buffer`. With O_DIRECT files the
/// buffer, offset and length must be 4 KiB-aligned (chunk payloads are).
public struct FileRead: @unchecked Sendable {
    public let fd: Int32
    public let offset: Int
    public let length: Int
    public let buffer: UnsafeMutableRawPointer
    /// For error messages.
    public let path: String

    public init(fd: Int32, offset: Int, length: Int, buffer: UnsafeMutableRawPointer, path: String) {
        self.fd = fd
        self.offset = offset
        self.length = length
        self.buffer = buffer
        self.path = path
    }
}

/// Reads batches of file ranges on a thread of its own: io_uring where the kernel allows it,
/// pread otherwise (with the reason logged once). Callers await whole batches.
public protocol FileBatchReader: AnyObject, Sendable {
    /// "io_uring" or "pread (why io_uring is not used)".
    var backend: String { get }
    /// Starts the reads; `completion` runs once, on the reader's thread, when all are done, with
    /// the first failure if any (the other reads still finish).
    func submit(_ batch: [FileRead], completion: @escaping @Sendable (Error?) -> Void)
}

extension FileBatchReader {
    /// Completes when every read is done; throws the first failure.
    public func read(_ batch: [FileRead]) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
            submit(batch) { error in
                if let error { continuation.resume(throwing: error) } else { continuation.resume() }
            }
        }
    }

    /// For callers outside Swift concurrency (a worker's loading thread): blocks this thread
    /// only, and never waits on the cooperative pool.
    public func readBlocking(_ batch: [FileRead]) throws {
        let done = DispatchSemaphore(value: 0)
        let failure = LockedBox<Error?>(nil)
        submit(batch) { error in
            failure.value = error
            done.signal()
        }
        done.wait()
        if let error = failure.value { throw error }
    }
}

/// The best reader this machine allows.
public enum FileReaders {
    public static func make(queueDepth: Int = 64) -> any FileBatchReader {
        if ProcessInfo.processInfo.environment["HYDRA_DISABLE_IO_URING"] != nil {
            return PReadBatchReader(reason: "HYDRA_DISABLE_IO_URING is set")
        }
        switch IOUringBatchReader.make(queueDepth: queueDepth) {
        case .success(let reader): return reader
        case .failure(let error): return PReadBatchReader(reason: "io_uring unavailable: \(error)")
        }
    }

    /// Opens a file for reading, with O_DIRECT when asked and the file system supports it
    /// (`isDirect` tells which).
    public static func open(_ path: String, direct: Bool) throws -> FileDescriptor {
        if direct {
            let fd = Glibc.open(path, O_RDONLY | chydra_O_CLOEXEC | chydra_O_DIRECT)
            if fd >= 0 { return FileDescriptor(rawValue: fd, path: path, isDirect: true) }
            guard errno == EINVAL else { throw SystemError("open (O_DIRECT)", path: path, errno: errno) }
        }
        return try FileDescriptor.open(path)
    }
}

/// A value shared between threads under a lock.
public final class LockedBox<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value
    public init(_ value: Value) { stored = value }
    public var value: Value {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }

    /// Reads and changes the value in one step.
    public func withValue<Result>(_ body: (inout Value) -> Result) -> Result {
        lock.withLock { body(&stored) }
    }
}

/// A batch in flight: counts its outstanding pieces and reports when they are done.
final class PendingBatch: @unchecked Sendable {
    let completion: @Sendable (Error?) -> Void
    var remaining: Int
    var failure: Error?

    init(pieces: Int, completion: @escaping @Sendable (Error?) -> Void) {
        remaining = pieces
        self.completion = completion
    }

    /// Called on the reader's thread only.
    func finishPiece(_ error: Error?) {
        if let error, failure == nil { failure = error }
        remaining -= 1
        if remaining == 0 { completion(failure) }
    }
}

/// A read the file ended before.
public struct ShortRead: Error, CustomStringConvertible, Sendable {
    public let path: String
    public let offset: Int
    public var description: String { "\(path): file ends at byte \(offset), before the requested range" }
}

/// The fallback: pread on a dedicated thread, batch after batch.
final class PReadBatchReader: FileBatchReader, @unchecked Sendable {
    let backend: String
    private let queue = BlockingQueue<(FileRead, PendingBatch)>(capacity: 1024)

    init(reason: String) {
        backend = "pread (\(reason))"
        Logger(label: "hydra.io").warning("reading chunks with pread", metadata: ["reason": "\(reason)"])
        let thread = Thread { [queue] in
            while let (read, batch) = queue.take() {
                var error: Error?
                do {
                    var done = 0
                    while done < read.length {
                        let n = try retryingEINTR("pread", path: read.path) {
                            pread(read.fd, read.buffer + done, read.length - done, off_t(read.offset + done))
                        }
                        if n == 0 { throw ShortRead(path: read.path, offset: read.offset + done) }
                        done += n
                    }
                } catch let failure { error = failure }
                batch.finishPiece(error)
            }
        }
        thread.name = "hydra-pread"
        thread.start()
    }

    func submit(_ batch: [FileRead], completion: @escaping @Sendable (Error?) -> Void) {
        guard !batch.isEmpty else { return completion(nil) }
        let pending = PendingBatch(pieces: batch.count, completion: completion)
        for read in batch { queue.put((read, pending)) }
    }
}
