import CCurl
import CHydraShims
import Foundation
import Glibc

/// A keep-alive connection for GETs whose bodies go straight into caller memory. libcurl opens it
/// (TCP or TLS, with the same trust settings as every other request: `CURLOPT_CONNECT_ONLY`); the
/// request is written and the response read here, so the body is received into its destination
/// instead of into libcurl's buffer and copied out of it — on loopback that copy cost a quarter
/// of a chunk fetch's throughput. Only what a chunk GET needs is understood: a status line,
/// headers, a body of `Content-Length` bytes; anything else is a clear failure.
///
/// HTTP/1.1 pipelining: while a response arrives, the next GET can be sent on the same connection
/// (`pipeline`, from the `afterHead` hook) and its response read after this one
/// (`receivePipelined`), so the server starts on it without waiting for a round trip and for the
/// caller's work between the two.
final class DirectBodyConnection {
    /// How one GET ended: `written` body bytes are in the buffer even when `failure` is set.
    struct Outcome {
        var status = 0
        var written = 0
        var failure: String?
        /// The body of a response that is not a success (at most 4 KiB of it), for messages.
        var errorBody: [UInt8] = []
    }

    let caFile: String?
    let timeoutSeconds: Int
    private var handle: UnsafeMutableRawPointer?
    private var origin = ""
    private var socket: Int32 = -1
    /// Set when the last wait ran out of time (a slow server, not a stale connection).
    private var timedOut = false
    /// Pipelined requests whose responses have not been read yet.
    private(set) var pipelined = 0
    /// Bytes received past the end of the last response (the start of the next pipelined one).
    private var leftover: [UInt8] = []

    init(caFile: String?, timeoutSeconds: Int) {
        self.caFile = caFile
        self.timeoutSeconds = timeoutSeconds
    }

    deinit { disconnect() }

    /// Closes the connection (pipelined requests are lost with it).
    private func disconnect() {
        if let handle { curl_easy_cleanup(handle) }
        handle = nil
        origin = ""
        socket = -1
        pipelined = 0
        leftover = []
    }

    /// GET `url` (optionally `range`) into `buffer`; `received` sees each piece of a successful
    /// body as it lands (before the next one is read: hash it while it is in cache). `afterHead`
    /// runs once a success's head is in, before its body: the moment to `pipeline` the next GET.
    /// Requests pipelined earlier and not yet received are dropped with the connection first.
    func get(_ url: String, headers: [String], range: ClosedRange<Int>?, into buffer: UnsafeMutableRawBufferPointer,
             afterHead: () -> Void = {}, received: (UnsafeRawBufferPointer) -> Void) -> Outcome {
        if pipelined > 0 { disconnect() }
        guard let (request, scheme, hostHeader) = Self.request(url, headers: headers, range: range) else {
            return Outcome(failure: "not an http(s) URL")
        }
        // A kept-alive connection the server has since closed fails before any response byte:
        // that one attempt is repeated on a fresh connection.
        var retried = false
        while true {
            let reused = handle != nil && origin == "\(scheme)://\(hostHeader)"
            if !reused {
                disconnect()
                if let problem = connect(scheme: scheme, hostHeader: hostHeader) { return Outcome(failure: problem) }
            }
            if let problem = sendAll(request) {
                disconnect()
                guard reused, !retried, !timedOut else { return Outcome(failure: problem) }
                retried = true
                continue
            }
            let outcome = exchange(into: buffer, afterHead: afterHead, received: received)
            if outcome.failure != nil { disconnect() }
            guard case .staleConnection = outcome.kind, reused, !retried else { return outcome.result }
            retried = true
        }
    }

    /// Sends a GET to be answered after the responses already asked for on this connection;
    /// false (nothing sent, connection unchanged) when there is no open connection to `url`'s
    /// origin or the request cannot be written at once. Read its answer with `receivePipelined`.
    func pipeline(_ url: String, headers: [String], range: ClosedRange<Int>?) -> Bool {
        guard let (request, scheme, hostHeader) = Self.request(url, headers: headers, range: range),
              handle != nil, origin == "\(scheme)://\(hostHeader)" else { return false }
        guard sendAll(request) == nil else {
            disconnect()  // part of the request may have gone out: the connection cannot be trusted
            return false
        }
        pipelined += 1
        return true
    }

    /// The response to the oldest pipelined request, as `get` receives one.
    func receivePipelined(into buffer: UnsafeMutableRawBufferPointer, afterHead: () -> Void = {},
                          received: (UnsafeRawBufferPointer) -> Void) -> Outcome {
        guard pipelined > 0, handle != nil else { return Outcome(failure: "no pipelined request is waiting on this connection") }
        pipelined -= 1
        let outcome = exchange(into: buffer, afterHead: afterHead, received: received)
        if outcome.failure != nil { disconnect() }
        return outcome.result
    }

    /// The request's bytes, scheme and Host header; nil for a URL that is not http(s).
    private static func request(_ url: String, headers: [String], range: ClosedRange<Int>?) -> ([UInt8], String, String)? {
        guard let parts = URLComponents(string: url), let scheme = parts.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = parts.host, !host.isEmpty else {
            return nil
        }
        let port = parts.port ?? (scheme == "https" ? 443 : 80)
        let hostHeader = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        let target = parts.percentEncodedPath.isEmpty ? "/" : parts.percentEncodedPath + (parts.percentEncodedQuery.map { "?" + $0 } ?? "")
        var request = "GET \(target) HTTP/1.1\r\nHost: \(hostHeader)\r\nUser-Agent: hydra\r\nAccept: */*\r\n"
        if let range { request += "Range: bytes=\(range.lowerBound)-\(range.upperBound)\r\n" }
        for header in headers { request += header + "\r\n" }
        request += "\r\n"
        return (Array(request.utf8), scheme, hostHeader)
    }

    private func connect(scheme: String, hostHeader: String) -> String? {
        guard let handle = curl_easy_init() else { return "curl_easy_init failed: out of memory" }
        self.handle = handle
        chydra_curl_set_string(handle, CURLOPT_URL, "\(scheme)://\(hostHeader)/")
        chydra_curl_set_long(handle, CURLOPT_CONNECT_ONLY, 1)
        chydra_curl_set_long(handle, CURLOPT_NOSIGNAL, 1)
        chydra_curl_set_long(handle, CURLOPT_CONNECTTIMEOUT, 10)
        if let caFile { chydra_curl_set_string(handle, CURLOPT_CAINFO, caFile) }
        let code = curl_easy_perform(handle)
        var fd: Int32 = -1
        guard code == CURLE_OK, chydra_curl_get_active_socket(handle, &fd) == CURLE_OK, fd >= 0 else {
            var message = code == CURLE_OK ? "no socket after connecting" : String(cString: curl_easy_strerror(code))
            if code == CURLE_PEER_FAILED_VERIFICATION { message += " (the server's certificate is not trusted: pass its authority with --ca-file)" }
            disconnect()
            return message
        }
        origin = "\(scheme)://\(hostHeader)"
        socket = fd
        Self.fixReceiveBuffer(fd)
        return nil
    }

    /// A chunk connection's receive buffer: 4 MiB from the first byte where the kernel allows
    /// that much (`net.core.rmem_max`), instead of TCP's autotuning, which starts a connection
    /// at 128 KiB and grows it with what the application reads. Same-run A/B over loopback,
    /// through a fresh node cache: SmolLM2 0.163 → 0.143 s at one connection, 0.119 → 0.107 s at
    /// four, the 2 GB model 0.847 → 0.765 s. Where `rmem_max` is lower (212992 on a stock
    /// kernel) a request would be capped there, below what autotuning reaches on a fast link:
    /// autotuning is left alone.
    static let receiveBufferBytes: Int32? = {
        guard let text = try? String(contentsOfFile: "/proc/sys/net/core/rmem_max", encoding: .utf8),
              let limit = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)), limit >= 4 << 20 else { return nil }
        return 4 << 20
    }()

    static func fixReceiveBuffer(_ fd: Int32) {
        guard var bytes = receiveBufferBytes else { return }
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, socklen_t(MemoryLayout<Int32>.size))
    }

    private struct Exchange {
        enum Kind { case done, staleConnection, failed }
        var kind: Kind
        var result: Outcome
        var failure: String? { result.failure }
    }

    /// Receives one response (its request already sent).
    private func exchange(into buffer: UnsafeMutableRawBufferPointer, afterHead: () -> Void,
                          received: (UnsafeRawBufferPointer) -> Void) -> Exchange {
        var outcome = Outcome()
        func failed(_ message: String, stale: Bool = false) -> Exchange {
            outcome.failure = message
            return Exchange(kind: stale ? .staleConnection : .failed, result: outcome)
        }

        // The head: up to the blank line, in 16 KiB at most.
        var head = [UInt8](repeating: 0, count: 16 << 10)
        var headCount = 0
        var headEnd: Int?
        while headEnd == nil {
            guard headCount < head.count else { return failed("response headers longer than \(head.count) bytes") }
            let (count, problem) = head.withUnsafeMutableBytes { receive(into: UnsafeMutableRawBufferPointer(rebasing: $0[headCount...])) }
            if let problem { return failed(problem, stale: headCount == 0 && !timedOut) }
            guard count > 0 else { return failed("the server closed the connection before its response", stale: headCount == 0) }
            let searchFrom = max(0, headCount - 3)
            headCount += count
            headEnd = Self.blankLine(in: head[..<headCount], from: searchFrom)
        }
        let bodyStart = headEnd! + 4
        guard let parsed = Self.parseHead(head[..<headEnd!]) else { return failed("malformed HTTP response head") }
        outcome.status = parsed.status
        guard let length = parsed.contentLength else {
            return failed("HTTP \(parsed.status) response without Content-Length (not a store's chunk response)")
        }
        // Body bytes that came with the head; past the body, the next pipelined response's start.
        let early = head[bodyStart..<min(headCount, bodyStart + length)]
        if bodyStart + length < headCount {
            guard pipelined > 0 else { return failed("the server sent more than its Content-Length") }
            // Ahead of whatever of an earlier leftover the head's read did not take.
            leftover = Array(head[(bodyStart + length)..<headCount]) + leftover
        }

        guard (200..<300).contains(parsed.status) else {
            // Keep the start of an error body for the message; drain the rest to reuse the connection.
            outcome.errorBody = Array(early.prefix(4096))
            var left = length - early.count
            var scratch = [UInt8](repeating: 0, count: 16 << 10)
            while left > 0 {
                let (count, problem) = scratch.withUnsafeMutableBytes { receive(into: UnsafeMutableRawBufferPointer(rebasing: $0[..<min(left, $0.count)])) }
                if let problem { return failed(problem) }
                guard count > 0 else { return failed("the connection closed inside a response body") }
                if outcome.errorBody.count < 4096 { outcome.errorBody += scratch[..<min(count, 4096 - outcome.errorBody.count)] }
                left -= count
            }
            if parsed.closes { disconnect() }
            return Exchange(kind: .done, result: outcome)
        }
        guard length <= buffer.count else {
            return failed("response of \(length) bytes is longer than the \(buffer.count) bytes expected")
        }
        afterHead()
        if !early.isEmpty {
            let piece = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<early.count])
            early.withUnsafeBytes { piece.copyMemory(from: $0) }
            received(UnsafeRawBufferPointer(piece))
            outcome.written = early.count
        }
        // The rest straight into the destination, in pieces small enough to hash while cached.
        while outcome.written < length {
            let end = min(length, outcome.written + (256 << 10))
            let (count, problem) = receive(into: UnsafeMutableRawBufferPointer(rebasing: buffer[outcome.written..<end]))
            if let problem { return failed(problem) }
            guard count > 0 else { return failed("the connection closed after \(outcome.written) of \(length) body bytes") }
            received(UnsafeRawBufferPointer(rebasing: buffer[outcome.written..<(outcome.written + count)]))
            outcome.written += count
        }
        if parsed.closes { disconnect() }
        return Exchange(kind: .done, result: outcome)
    }

    /// Index of the CRLFCRLF ending the head, searching from `start`.
    static func blankLine(in bytes: ArraySlice<UInt8>, from start: Int) -> Int? {
        var index = bytes.startIndex + start
        while index + 3 < bytes.endIndex {
            if bytes[index] == 13 && bytes[index + 1] == 10 && bytes[index + 2] == 13 && bytes[index + 3] == 10 { return index }
            index += 1
        }
        return nil
    }

    struct Head: Equatable {
        var status: Int
        var contentLength: Int?
        /// `Connection: close`, or a body the parser cannot delimit.
        var closes: Bool
    }

    /// The status and the headers a chunk GET needs, from the bytes before the blank line.
    /// Nil when the status line is not HTTP/1.x; a chunked body has no usable length.
    static func parseHead(_ bytes: ArraySlice<UInt8>) -> Head? {
        let lines = String(decoding: bytes, as: UTF8.self).components(separatedBy: "\r\n")
        let statusLine = lines[0].split(separator: " ", maxSplits: 2)
        guard statusLine.count >= 2, statusLine[0].hasPrefix("HTTP/1."), let status = Int(statusLine[1]), (100..<600).contains(status) else {
            return nil
        }
        var head = Head(status: status, contentLength: nil, closes: statusLine[0] == "HTTP/1.0")
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            switch name {
            case "content-length":
                guard let length = Int(value), length >= 0, head.contentLength == nil || head.contentLength == length else { return nil }
                head.contentLength = length
            case "transfer-encoding" where value.lowercased() != "identity":
                head.contentLength = nil
                head.closes = true
                return head
            case "connection":
                if value.lowercased().contains("close") { head.closes = true }
                if value.lowercased().contains("keep-alive") { head.closes = false }
            default: break
            }
        }
        return head
    }

    private func sendAll(_ bytes: [UInt8]) -> String? {
        var offset = 0
        while offset < bytes.count {
            var sent = 0
            let code = bytes.withUnsafeBytes { curl_easy_send(handle, $0.baseAddress! + offset, bytes.count - offset, &sent) }
            if code == CURLE_AGAIN {
                if let problem = wait(for: Int16(POLLOUT)) { return problem }
                continue
            }
            guard code == CURLE_OK else { return "sending the request failed: \(String(cString: curl_easy_strerror(code)))" }
            offset += sent
        }
        return nil
    }

    /// Some bytes into `target` (0: the server closed the connection).
    private func receive(into target: UnsafeMutableRawBufferPointer) -> (Int, String?) {
        if !leftover.isEmpty {
            let count = min(leftover.count, target.count)
            leftover.withUnsafeBytes { target.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: count) }
            leftover.removeFirst(count)
            return (count, nil)
        }
        if !origin.hasPrefix("https:") {
            // Plain TCP straight from the socket: libcurl (7.88) reads at most 16 KiB a call, so a
            // 256 KiB piece took sixteen system calls (2 GB over loopback: 0.62 → 0.51 s).
            while true {
                let count = recv(socket, target.baseAddress, target.count, 0)
                if count >= 0 { return (count, nil) }
                if errno == EAGAIN || errno == EWOULDBLOCK {
                    if let problem = wait(for: Int16(POLLIN)) { return (0, problem) }
                } else if errno != EINTR {
                    return (0, "receiving failed: \(String(cString: strerror(errno)))")
                }
            }
        }
        while true {
            var count = 0
            let code = curl_easy_recv(handle, target.baseAddress, target.count, &count)
            if code == CURLE_AGAIN {
                if let problem = wait(for: Int16(POLLIN)) { return (0, problem) }
                continue
            }
            guard code == CURLE_OK else { return (0, "receiving failed: \(String(cString: curl_easy_strerror(code)))") }
            return (count, nil)
        }
    }

    private func wait(for events: Int16) -> String? {
        var descriptor = pollfd(fd: socket, events: events, revents: 0)
        timedOut = false
        while true {
            let ready = poll(&descriptor, 1, Int32(timeoutSeconds * 1000))
            if ready > 0 { return nil }
            if ready == 0 {
                timedOut = true
                return "nothing received for \(timeoutSeconds) s (timed out)"
            }
            if errno != EINTR { return "poll failed: \(String(cString: strerror(errno)))" }
        }
    }
}
