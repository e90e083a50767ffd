import CHydraShims
import Foundation
import Glibc

/// A connected Unix stream socket that carries frames: a 4-byte big-endian length, then that
/// many bytes, optionally with one file descriptor riding on the frame (SCM_RIGHTS).
/// Blocking; one reader and one writer at a time.
public final class FrameSocket: @unchecked Sendable {
    public struct Frame {
        public var bytes: [UInt8]
        /// A received descriptor, owned by the receiver (close it or adopt it).
        public var fd: Int32?

        /// Closes a descriptor that came with the frame but is not wanted.
        public func closeDescriptor() { if let fd { Glibc.close(fd) } }
    }

    /// Frames longer than this are refused in both directions: a corrupt length never allocates.
    public static let maxFrameBytes = 64 << 20

    public let fd: Int32
    private let writeLock = NSLock()

    public init(adopting fd: Int32) { self.fd = fd }
    deinit { close(fd) }

    /// Connects to a listening socket at `path`.
    public static func connect(to path: String) throws -> FrameSocket {
        let fd = try retryingEINTR("socket(AF_UNIX)") { socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
        let connection = FrameSocket(adopting: fd)
        var address = try UnixListener.address(path)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard result == 0 else { throw SystemError("connect", path: path, errno: errno) }
        return connection
    }

    /// Sends one frame; `fd` (not consumed) travels with it.
    public func send(_ bytes: [UInt8], fd passed: Int32? = nil) throws {
        guard bytes.count <= Self.maxFrameBytes else { throw SystemError("send frame of \(bytes.count) bytes", errno: EMSGSIZE) }
        let length = UInt32(bytes.count)
        var frame = [UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)]
        frame += bytes
        try writeLock.withLock {
            var sent = 0
            var descriptor = passed ?? -1
            while sent < frame.count {
                let count = frame[sent...].withUnsafeBytes { chydra_send_with_fd(fd, $0.baseAddress, $0.count, descriptor) }
                if count < 0 {
                    if errno == EINTR { continue }
                    throw SystemError("sendmsg", errno: errno)
                }
                sent += count
                descriptor = -1  // the descriptor rode on the first bytes
            }
        }
    }

    /// Receives one frame; nil when the peer closed the connection cleanly between frames.
    public func receive() throws -> Frame? {
        var header = [UInt8](repeating: 0, count: 4)
        var received = 0
        var descriptor: Int32 = -1
        while received < 4 {
            var got: Int32 = -1
            let count = header[received...].withUnsafeMutableBytes { chydra_receive_with_fd(fd, $0.baseAddress, $0.count, &got) }
            if got >= 0 { if descriptor >= 0 { close(descriptor) }; descriptor = got }
            if count < 0 {
                if errno == EINTR { continue }
                let code = errno
                if descriptor >= 0 { close(descriptor) }
                throw SystemError("recvmsg", errno: code)
            }
            if count == 0 {
                if descriptor >= 0 { close(descriptor) }
                if received == 0 { return nil }
                throw SystemError("receive frame header (connection closed after \(received) bytes)", errno: ECONNRESET)
            }
            received += count
        }
        let length = Int(header[0]) << 24 | Int(header[1]) << 16 | Int(header[2]) << 8 | Int(header[3])
        guard length <= Self.maxFrameBytes else {
            if descriptor >= 0 { close(descriptor) }
            throw SystemError("receive frame of \(length) bytes (limit \(Self.maxFrameBytes))", errno: EMSGSIZE)
        }
        var body = [UInt8](repeating: 0, count: length)
        var filled = 0
        while filled < length {
            let count = body[filled...].withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else {
                let code = count == 0 ? ECONNRESET : errno
                if descriptor >= 0 { close(descriptor) }
                throw SystemError("receive frame body (\(filled) of \(length) bytes)", errno: code)
            }
            filled += count
        }
        return Frame(bytes: body, fd: descriptor >= 0 ? descriptor : nil)
    }

    /// Wakes a thread blocked in `receive` on this socket (it then sees end of stream).
    public func shutdown() { _ = Glibc.shutdown(fd, Int32(SHUT_RDWR)) }
}

/// A listening Unix stream socket.
public final class UnixListener: @unchecked Sendable {
    public let fd: Int32
    public let path: String

    /// Binds `path`, replacing a stale socket file left by a process that is gone (but never one
    /// a live process still listens on).
    public init(path: String, backlog: Int32 = 128) throws {
        var address = try Self.address(path)
        if let type = try? FileManager.default.attributesOfItem(atPath: path)[.type] as? FileAttributeType, type == .typeSocket {
            guard (try? FrameSocket.connect(to: path)) == nil else {
                throw SystemError("bind (another process is listening on this socket)", path: path, errno: EADDRINUSE)
            }
            unlink(path)
        }
        fd = try retryingEINTR("socket(AF_UNIX)") { socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
        self.path = path
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else { let code = errno; close(fd); throw SystemError("bind", path: path, errno: code) }
        guard listen(fd, backlog) == 0 else { let code = errno; close(fd); throw SystemError("listen", path: path, errno: code) }
    }

    deinit { close(fd) }

    /// The next connection; nil once the listener was shut down.
    public func accept() throws -> FrameSocket? {
        while true {
            let client = Glibc.accept(fd, nil, nil)
            if client >= 0 {
                _ = fcntl(client, F_SETFD, FD_CLOEXEC)
                return FrameSocket(adopting: client)
            }
            switch errno {
            case EINTR, ECONNABORTED: continue
            case EINVAL, EBADF: return nil
            default: throw SystemError("accept", path: path, errno: errno)
            }
        }
    }

    /// Stops accepting (a blocked `accept` returns nil) and removes the socket file.
    public func shutdown() {
        _ = Glibc.shutdown(fd, Int32(SHUT_RDWR))
        unlink(path)
    }

    static func address(_ path: String) throws -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard bytes.count < capacity else { throw SystemError("socket path longer than \(capacity - 1) bytes", path: path, errno: ENAMETOOLONG) }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return address
    }
}
