import Glibc

/// A failed system call: the operation, what it acted on, and errno.
public struct SystemError: Error, CustomStringConvertible, Sendable {
    public let operation: String
    public let path: String?
    public let errno: Int32

    public init(_ operation: String, path: String? = nil, errno: Int32) {
        self.operation = operation
        self.path = path
        self.errno = errno
    }

    public var description: String {
        let reason = String(cString: strerror(errno))
        if let path { return "\(path): \(operation) failed: \(reason) (errno \(errno))" }
        return "\(operation) failed: \(reason) (errno \(errno))"
    }
}

/// Runs a system call, retrying on EINTR and throwing `SystemError` on any other failure.
public func retryingEINTR<T: BinaryInteger>(
    _ operation: String, path: String? = nil, _ call: () -> T
) throws -> T {
    while true {
        let result = call()
        if result >= 0 { return result }
        let code = errno
        if code == EINTR { continue }
        throw SystemError(operation, path: path, errno: code)
    }
}
