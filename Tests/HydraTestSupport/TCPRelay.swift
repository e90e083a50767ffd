import Foundation
import Glibc
import HydraSystem

/// A loopback TCP relay in front of a store, so a test can make the store vanish mid-transfer
/// (every connection reset, nothing listening) and come back on the same port.
public final class TCPRelay: @unchecked Sendable {
    public let targetPort: Int
    public private(set) var port = 0
    private let lock = NSLock()
    private var listener: Int32 = -1
    private var sockets: Set<Int32> = []
    private var acceptDone = DispatchSemaphore(value: 0)

    public init(targetPort: Int) throws {
        self.targetPort = targetPort
        try start()
    }

    deinit { kill() }

    public func start() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = Self.loopback(port)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard bound == 0, listen(fd, 64) == 0 else { let code = errno; close(fd); throw SystemError("relay bind/listen", errno: code) }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        withUnsafeMutablePointer(to: &address) { _ = $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        port = Int(UInt16(bigEndian: address.sin_port))
        lock.withLock { listener = fd }
        acceptDone = DispatchSemaphore(value: 0)
        let done = acceptDone
        Thread.detachNewThread { [self] in
            defer { close(fd); done.signal() }
            while true {
                let client = accept(fd, nil, nil)
                guard client >= 0 else { return }
                let upstream = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
                var target = Self.loopback(targetPort)
                let connected = withUnsafePointer(to: &target) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(upstream, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
                guard connected == 0 else { close(client); close(upstream); continue }
                lock.withLock { sockets.formUnion([client, upstream]) }
                relay(client, upstream)
            }
        }
    }

    /// Resets every connection and stops listening (the port stays reserved for `start()`).
    public func kill() {
        let fd = lock.withLock { () -> Int32 in
            defer { listener = -1 }
            var reset = linger(l_onoff: 1, l_linger: 0)
            for socket in sockets {
                setsockopt(socket, SOL_SOCKET, SO_LINGER, &reset, socklen_t(MemoryLayout<linger>.size))
                shutdown(socket, Int32(SHUT_RDWR))
            }
            return listener
        }
        guard fd >= 0 else { return }
        shutdown(fd, Int32(SHUT_RDWR))
        acceptDone.wait()
    }

    private final class Pair: @unchecked Sendable {  // mutated under the relay's lock
        let sockets: [Int32]
        var running = 2
        init(_ a: Int32, _ b: Int32) { sockets = [a, b] }
    }

    private func relay(_ client: Int32, _ upstream: Int32) {
        let pair = Pair(client, upstream)
        pump(pair, from: client, to: upstream)
        pump(pair, from: upstream, to: client)
    }

    private func pump(_ pair: Pair, from source: Int32, to destination: Int32) {
        Thread.detachNewThread { [self] in
            var buffer = [UInt8](repeating: 0, count: 64 << 10)
            copying: while true {
                let count = buffer.withUnsafeMutableBytes { recv(source, $0.baseAddress, $0.count, 0) }
                guard count > 0 else { break }
                var sent = 0
                while sent < count {
                    let n = buffer[sent..<count].withUnsafeBytes { send(destination, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                    guard n > 0 else { break copying }
                    sent += n
                }
            }
            // Wake the partner pump; the last one out closes both sockets.
            lock.withLock {
                for socket in pair.sockets { shutdown(socket, Int32(SHUT_RDWR)) }
                pair.running -= 1
                if pair.running == 0 {
                    sockets.subtract(pair.sockets)
                    pair.sockets.forEach { close($0) }
                }
            }
        }
    }

    private static func loopback(_ port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }
}
