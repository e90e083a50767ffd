import CHydraShims  // brings in <sys/socket.h> (SOCK_STREAM, SHUT_RDWR), which Glibc alone does not export here
import Foundation
import Glibc

/// A blocking TCP connection (IPv4), for pipeline links between stage workers: exact reads,
/// whole writes, Nagle off, an optional receive timeout so a hung peer is noticed in bounded time.
public final class TCPConnection: @unchecked Sendable {
    public let fd: Int32
    public let peer: String

    public init(adopting fd: Int32, peer: String) {
        self.fd = fd
        self.peer = peer
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    deinit { close(fd) }

    /// Connects to `host:port` (an IPv4 address or a name).
    public static func connect(host: String, port: Int) throws -> TCPConnection {
        var hints = addrinfo()
        hints.ai_family = AF_INET
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let resolved = getaddrinfo(host, String(port), &hints, &list)
        guard resolved == 0, let first = list else {
            throw SystemError("resolve \(host): \(String(cString: gai_strerror(resolved)))", path: "\(host):\(port)", errno: EHOSTUNREACH)
        }
        defer { freeaddrinfo(list) }
        let fd = try retryingEINTR("socket") { socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
        guard Glibc.connect(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0 else {
            let code = errno
            close(fd)
            throw SystemError("connect", path: "\(host):\(port)", errno: code)
        }
        return TCPConnection(adopting: fd, peer: "\(host):\(port)")
    }

    /// Reads fail with ETIMEDOUT after this long without data (nil: wait forever).
    public func setReceiveTimeout(seconds: Double?) {
        let whole = Int(seconds ?? 0)
        var value = timeval(tv_sec: whole, tv_usec: Int(((seconds ?? 0) - Double(whole)) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Fills `buffer` completely; returns false on a clean end of stream before the first byte.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Bool {
        var filled = 0
        while filled < buffer.count {
            let count = recv(fd, buffer.baseAddress! + filled, buffer.count - filled, 0)
            if count > 0 { filled += count; continue }
            if count == 0 {
                if filled == 0 { return false }
                throw SystemError("read (connection closed after \(filled) of \(buffer.count) bytes)", path: peer, errno: ECONNRESET)
            }
            switch errno {
            case EINTR: continue
            case EAGAIN: throw SystemError("read (no data within the timeout)", path: peer, errno: ETIMEDOUT)
            default: throw SystemError("read", path: peer, errno: errno)
            }
        }
        return true
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        var sent = 0
        while sent < bytes.count {
            let count = send(fd, bytes.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL))
            if count > 0 { sent += count; continue }
            if count < 0 && errno == EINTR { continue }
            throw SystemError("write", path: peer, errno: count < 0 ? errno : EPIPE)
        }
    }

    /// Wakes a thread blocked on this connection; later reads see end of stream.
    public func shutdown() { _ = Glibc.shutdown(fd, Int32(SHUT_RDWR)) }
}

/// A listening TCP socket (IPv4). Port 0 picks a free port; `port` says which.
public final class TCPListener: @unchecked Sendable {
    public let fd: Int32
    public let port: Int

    public init(host: String, port: Int, backlog: Int32 = 64) throws {
        let fd = try retryingEINTR("socket") { socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host, &address.sin_addr) == 1 else {
            close(fd)
            throw SystemError("listen address must be an IPv4 address", path: host, errno: EINVAL)
        }
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard bound == 0 else { let code = errno; close(fd); throw SystemError("bind", path: "\(host):\(port)", errno: code) }
        guard listen(fd, backlog) == 0 else { let code = errno; close(fd); throw SystemError("listen", path: "\(host):\(port)", errno: code) }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        withUnsafeMutablePointer(to: &address) { _ = $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        self.fd = fd
        self.port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { close(fd) }

    /// The next connection; nil once the listener was shut down.
    public func accept() throws -> TCPConnection? {
        while true {
            let client = Glibc.accept(fd, nil, nil)
            if client >= 0 {
                _ = fcntl(client, F_SETFD, FD_CLOEXEC)
                return TCPConnection(adopting: client, peer: "pipeline peer")
            }
            switch errno {
            case EINTR, ECONNABORTED: continue
            case EINVAL, EBADF: return nil
            default: throw SystemError("accept", errno: errno)
            }
        }
    }

    public func shutdown() { _ = Glibc.shutdown(fd, Int32(SHUT_RDWR)) }
}
