import Glibc
import CHydraShims

/// An owned file descriptor with positioned, EINTR-safe reads and writes.
/// Not copyable: exactly one owner closes it.
public struct FileDescriptor: ~Copyable, Sendable {
    public let rawValue: Int32
    public let path: String
    /// Opened with O_DIRECT: reads must be 4 KiB-aligned.
    public let isDirect: Bool

    public init(rawValue: Int32, path: String, isDirect: Bool = false) {
        self.rawValue = rawValue
        self.path = path
        self.isDirect = isDirect
    }

    public static func open(_ path: String) throws -> FileDescriptor {
        let fd = try retryingEINTR("open", path: path) { Glibc.open(path, O_RDONLY | chydra_O_CLOEXEC) }
        return FileDescriptor(rawValue: fd, path: path)
    }

    /// Creates a new file (failing if it exists) for writing.
    public static func create(_ path: String, mode: mode_t = 0o644) throws -> FileDescriptor {
        let flags = O_WRONLY | O_CREAT | O_EXCL | chydra_O_CLOEXEC
        let fd = try retryingEINTR("create", path: path) { Glibc.open(path, flags, mode) }
        return FileDescriptor(rawValue: fd, path: path)
    }

    /// Creates a new file for O_DIRECT writes (page-cache bypass: buffers, offsets and sizes
    /// must be 4 KiB-aligned). Returns nil where the file system refuses O_DIRECT (tmpfs).
    public static func createDirect(_ path: String, mode: mode_t = 0o644) throws -> FileDescriptor? {
        let flags = O_WRONLY | O_CREAT | O_EXCL | chydra_O_CLOEXEC | chydra_O_DIRECT
        let fd = Glibc.open(path, flags, mode)
        if fd >= 0 { return FileDescriptor(rawValue: fd, path: path) }
        if errno == EINVAL { return nil }
        throw SystemError("create (O_DIRECT)", path: path, errno: errno)
    }

    deinit { _ = Glibc.close(rawValue) }

    public func size() throws -> Int {
        var info = stat()
        _ = try retryingEINTR("fstat", path: path) { fstat(rawValue, &info) }
        return Int(info.st_size)
    }

    /// Reads exactly `buffer.count` bytes at `offset`; throws if the file ends first.
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int) throws {
        var done = 0
        while done < buffer.count {
            let n = try retryingEINTR("pread", path: path) {
                pread(rawValue, buffer.baseAddress! + done, buffer.count - done, off_t(offset + done))
            }
            if n == 0 {
                throw FileTooShort(path: path, offset: offset + done, missingBytes: buffer.count - done)
            }
            done += n
        }
    }

    public func read(count: Int, at offset: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        try bytes.withUnsafeMutableBytes { try read(into: $0, at: offset) }
        return bytes
    }

    /// Writes all of `buffer` at `offset`.
    public func write(_ buffer: UnsafeRawBufferPointer, at offset: Int) throws {
        var done = 0
        while done < buffer.count {
            let n = try retryingEINTR("pwrite", path: path) {
                pwrite(rawValue, buffer.baseAddress! + done, buffer.count - done, off_t(offset + done))
            }
            done += n
        }
    }

    public func sync() throws {
        _ = try retryingEINTR("fsync", path: path) { fsync(rawValue) }
    }
}

/// A read ran past the end of a file.
public struct FileTooShort: Error, CustomStringConvertible, Sendable {
    public let path: String
    public let offset: Int
    public let missingBytes: Int
    public var description: String {
        "\(path): file ends before offset \(offset + missingBytes) (\(missingBytes) bytes missing at \(offset)): truncated file"
    }
}
