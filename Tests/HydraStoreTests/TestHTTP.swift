import Foundation
import HydraTestSupport
import Glibc

/// A minimal blocking HTTP/1.1 client for tests: one request per connection, loopback only.
struct TestHTTP {
    struct Response {
        let status: Int
        let headers: [String: String]  // lowercased names
        let body: [UInt8]
    }

    /// From async tests: runs the blocking exchange on a thread of its own, so the cooperative
    /// pool (which the server's handlers run on) is never starved by the client.
    static func request(port: Int, _ path: String, method: String = "GET", headers: [String: String] = [:]) async throws -> Response {
        try await offPool { try requestBlocking(port: port, path, method: method, headers: headers) }
    }

    static func requestBlocking(port: Int, _ path: String, method: String = "GET", headers: [String: String] = [:]) throws -> Response {
        let fd = try connectLoopback(port: port)
        defer { close(fd) }
        try sendAll(fd, text(method, path, headers: headers.merging(["Connection": "close"]) { a, _ in a }))
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            data += chunk[0..<n]
        }
        guard let split = data.firstRange(of: Array("\r\n\r\n".utf8)) else { throw POSIXError(.EBADMSG) }
        let (status, fields) = parseHead(data[..<split.lowerBound])
        var body = Array(data[split.upperBound...])
        if fields["transfer-encoding"] == "chunked" { body = dechunk(body) }
        return Response(status: status, headers: fields, body: body)
    }

    /// A request's text: `Host` first, then `headers`, then the blank line.
    static func text(_ method: String, _ path: String, headers: [String: String] = [:]) -> String {
        var text = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        for (name, value) in headers.sorted(by: { $0.key < $1.key }) { text += "\(name): \(value)\r\n" }
        return text + "\r\n"
    }

    /// A blocking TCP connection to 127.0.0.1:`port`, reads timing out after 20 s; with
    /// `receiveBuffer`, that small a receive buffer (set before connecting, so it holds).
    static func connectLoopback(port: Int, receiveBuffer: Int32? = nil) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        var timeout = timeval(tv_sec: 20, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        if var size = receiveBuffer { setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size)) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(fd)
            throw POSIXError(.ECONNREFUSED)
        }
        return fd
    }

    static func sendAll(_ fd: Int32, _ text: String) throws {
        let bytes = Array(text.utf8)
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { throw POSIXError(.EPIPE) }
            sent += n
        }
    }

    /// The status and the fields (lowercased names) of a response head without its blank line.
    static func parseHead(_ bytes: some Collection<UInt8>) -> (status: Int, fields: [String: String]) {
        let head = String(decoding: bytes, as: UTF8.self).components(separatedBy: "\r\n")
        let status = Int(head[0].split(separator: " ")[1])!
        var fields: [String: String] = [:]
        for line in head.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return (status, fields)
    }

    static func dechunk(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var index = 0
        while let lineEnd = data[index...].firstRange(of: Array("\r\n".utf8)) {
            let size = Int(String(decoding: data[index..<lineEnd.lowerBound], as: UTF8.self), radix: 16) ?? 0
            if size == 0 { break }
            out += data[lineEnd.upperBound..<(lineEnd.upperBound + size)]
            index = lineEnd.upperBound + size + 2
        }
        return out
    }
}


/// One keep-alive connection for tests: requests go out as written (pipelined when several are
/// written at once) and answers with a `Content-Length` are read back one at a time.
final class KeepAliveConnection: @unchecked Sendable {  // used by one thread at a time
    let fd: Int32
    private var buffered: [UInt8] = []

    init(port: Int, receiveBuffer: Int32? = nil) throws { fd = try TestHTTP.connectLoopback(port: port, receiveBuffer: receiveBuffer) }

    deinit { close(fd) }

    func send(_ text: String) throws { try TestHTTP.sendAll(fd, text) }

    /// The next answer; an answer to HEAD (`bodyless`) has a length but no body.
    func response(bodyless: Bool = false) throws -> TestHTTP.Response {
        while buffered.firstRange(of: Array("\r\n\r\n".utf8)) == nil { try fill() }
        let split = buffered.firstRange(of: Array("\r\n\r\n".utf8))!
        let (status, fields) = TestHTTP.parseHead(buffered[..<split.lowerBound])
        buffered.removeSubrange(..<split.upperBound)
        let length = bodyless ? 0 : Int(fields["content-length"] ?? "0")!
        return TestHTTP.Response(status: status, headers: fields, body: try read(length))
    }

    /// The next `count` bytes.
    func read(_ count: Int) throws -> [UInt8] {
        while buffered.count < count { try fill() }
        defer { buffered.removeSubrange(..<count) }
        return Array(buffered[..<count])
    }

    /// Whether the server has closed the connection (nothing more to read), within 20 s.
    func isClosedByServer() -> Bool {
        var byte: UInt8 = 0
        return buffered.isEmpty && recv(fd, &byte, 1, 0) == 0
    }

    private func fill() throws {
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { throw POSIXError(n == 0 ? .ECONNRESET : .ETIMEDOUT) }
        buffered += chunk[0..<n]
    }
}
