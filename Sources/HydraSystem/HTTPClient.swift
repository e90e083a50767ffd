import CCurl
import CHydraShims
import Foundation

/// A blocking HTTP client over one libcurl easy handle (keep-alive between requests), with chunk
/// bodies on a second connection that receives them straight into caller memory. One per
/// thread: fetchers run several on dedicated threads for parallel range requests.
public final class HTTPClient {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let url: String
        public let message: String
        public var description: String { "\(url): \(message)" }
    }

    public struct Response: Sendable {
        public let status: Int
        public let body: [UInt8]
        /// The response's headers the caller asked for (lowercased names).
        public var headers: [String: String] = [:]
    }

    private let handle: UnsafeMutableRawPointer
    /// Chunk bodies go through their own connection, straight into the caller's memory.
    private var direct: DirectBodyConnection?
    private let headers: [String]
    public let timeoutSeconds: Int
    /// An emulated NIC shared with other clients of the node: received bytes wait for its tokens.
    public let link: SharedTokenBucket?

    static let globalInit: Void = { curl_global_init(Int(CURL_GLOBAL_DEFAULT)) }()

    /// PEM file of the certificate authorities to trust for https (nil: the system's).
    public let caFile: String?

    /// `bearerToken` is sent as `Authorization: Bearer …` on every request.
    public init(bearerToken: String? = nil, timeoutSeconds: Int = 60, link: SharedTokenBucket? = nil, caFile: String? = nil) {
        self.caFile = caFile
        self.link = link
        _ = Self.globalInit
        guard let handle = curl_easy_init() else { fatalError("curl_easy_init failed: out of memory") }
        self.handle = handle
        headers = bearerToken.map { ["Authorization: Bearer \($0)"] } ?? []
        self.timeoutSeconds = timeoutSeconds
    }

    deinit { curl_easy_cleanup(handle) }

    /// Sink for a body held in memory (manifests, JSON, streamed NDJSON).
    final class Sink {
        var bytes: [UInt8] = []
        /// Sees every piece of the body as it arrives (streamed responses); false aborts the transfer.
        var onData: ((UnsafeRawBufferPointer) -> Bool)?
        var aborted = false
    }

    /// One attempt at a byte range: what arrived before it ended, and why it ended early.
    public struct Transfer: Sendable {
        /// The HTTP status (0 when none was received).
        public let status: Int
        /// Bytes written to the buffer (and fed to the digest) — valid even when `failure` is set.
        public let count: Int
        public let failure: String?
    }

    /// GET `url` (optionally a byte range) with `headers` added to the request, returning
    /// status, body and the response headers named in `wanted`.
    public func get(_ url: String, range: ClosedRange<Int>? = nil, headers requestHeaders: [String] = [],
                    wanted: [String] = []) throws -> Response {
        let sink = Sink()
        let status = try perform(url, range: range, sink: sink, extraHeaders: requestHeaders)
        return Response(status: status, body: sink.bytes, headers: responseHeaders(wanted))
    }

    /// The last response's headers named in `wanted` (lowercased names), where present.
    private func responseHeaders(_ wanted: [String]) -> [String: String] {
        var found: [String: String] = [:]
        for name in wanted {
            var header: UnsafeMutablePointer<curl_header>?
            if curl_easy_header(handle, name, 0, UInt32(CURLH_HEADER), -1, &header) == CURLHE_OK, let value = header?.pointee.value {
                found[name.lowercased()] = String(cString: value)
            }
        }
        return found
    }

    /// GET `url` straight into `buffer`; returns the status and the bytes written. A body longer
    /// than the buffer is an error.
    /// With `hashing`, also returns the body's digest, computed as it streams in.
    /// `afterHead` runs once a success's head is in (see `pipeline`); with `pipelined`, the
    /// response read is the oldest pipelined request's (`url` names it in errors).
    public func get(_ url: String, into buffer: UnsafeMutableRawBufferPointer, range: ClosedRange<Int>? = nil,
                    hashing: DigestAlgorithm? = nil, pipelined: Bool = false,
                    afterHead: () -> Void = {}) throws -> (status: Int, count: Int, digest: String?) {
        let digest = hashing.map(IncrementalDigest.init)
        let outcome = pipelined
            ? receivePipelinedBody(into: buffer, digest: digest, afterHead: afterHead)
            : receiveBody(url, range: range, into: buffer, digest: digest, afterHead: afterHead)
        if let failure = outcome.failure { throw Failure(url: url, message: failure) }
        let successful = (200..<300).contains(outcome.status)
        return (outcome.status, outcome.written, successful ? digest?.finalizeHex() : nil)
    }

    /// GET `range` of `url` into `buffer`, feeding `digest` in order. Never throws: a transfer
    /// cut short reports how many bytes did arrive, so the caller can resume after them.
    /// `afterHead` runs once a success's head is in (see `pipeline`).
    public func transfer(_ url: String, range: ClosedRange<Int>, into buffer: UnsafeMutableRawBufferPointer,
                         digest: IncrementalDigest?, afterHead: () -> Void = {}) -> Transfer {
        let outcome = receiveBody(url, range: range, into: buffer, digest: digest, afterHead: afterHead)
        return Self.transfer(outcome)
    }

    /// Sends a GET for `range` of `url` on the chunk connection while an earlier one is being
    /// received (call it from `afterHead`), so the server answers it straight after (HTTP/1.1
    /// pipelining). False: not sent (no open connection to that origin); use `transfer` instead.
    public func pipeline(_ url: String, range: ClosedRange<Int>? = nil) -> Bool {
        direct?.pipeline(url, headers: headers, range: range) ?? false
    }

    /// Requests pipelined and not yet received (`transferPipelined` takes the oldest).
    public var pipelinedRequests: Int { direct?.pipelined ?? 0 }

    /// The response to the oldest pipelined request, as `transfer` receives one. A failure drops
    /// the connection and every request pipelined behind it.
    public func transferPipelined(into buffer: UnsafeMutableRawBufferPointer, digest: IncrementalDigest?,
                                  afterHead: () -> Void = {}) -> Transfer {
        Self.transfer(receivePipelinedBody(into: buffer, digest: digest, afterHead: afterHead))
    }

    private static func transfer(_ outcome: DirectBodyConnection.Outcome) -> Transfer {
        if let failure = outcome.failure { return Transfer(status: outcome.status, count: outcome.written, failure: failure) }
        guard outcome.status == 200 || outcome.status == 206 else {
            let detail = String(decoding: outcome.errorBody.prefix(200), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            return Transfer(status: outcome.status, count: 0, failure: "HTTP \(outcome.status)" + (detail.isEmpty ? "" : ": \(detail)"))
        }
        return Transfer(status: outcome.status, count: outcome.written, failure: nil)
    }

    /// A body received straight into `buffer` on this client's direct connection, each piece
    /// paid for on the emulated link and hashed as it lands.
    private func receiveBody(_ url: String, range: ClosedRange<Int>?, into buffer: UnsafeMutableRawBufferPointer,
                             digest: IncrementalDigest?, afterHead: () -> Void = {}) -> DirectBodyConnection.Outcome {
        let direct = self.direct ?? DirectBodyConnection(caFile: caFile, timeoutSeconds: timeoutSeconds)
        self.direct = direct
        return direct.get(url, headers: headers, range: range, into: buffer, afterHead: afterHead, received: landed(digest))
    }

    /// The oldest pipelined request's body, received as `receiveBody` receives one.
    private func receivePipelinedBody(into buffer: UnsafeMutableRawBufferPointer, digest: IncrementalDigest?,
                                      afterHead: () -> Void) -> DirectBodyConnection.Outcome {
        let direct = self.direct ?? DirectBodyConnection(caFile: caFile, timeoutSeconds: timeoutSeconds)
        self.direct = direct
        return direct.receivePipelined(into: buffer, afterHead: afterHead, received: landed(digest))
    }

    /// What each piece of a body goes through as it lands: the emulated link, then the digest.
    private func landed(_ digest: IncrementalDigest?) -> (UnsafeRawBufferPointer) -> Void {
        { [link] piece in
            link?.consume(piece.count)
            digest?.update(piece)
        }
    }

    /// POST `body` as JSON to `url`; `onData` sees the response body piece by piece as it
    /// streams in (NDJSON tokens) and returns false to hang up (the caller went away: the
    /// server sees the connection close); the body received is returned too.
    public func post(_ url: String, json body: [UInt8], headers wanted: [String] = [],
                     onData: ((UnsafeRawBufferPointer) -> Bool)? = nil) throws -> Response {
        let sink = Sink()
        sink.onData = onData
        let status = try body.withUnsafeBytes { bytes in
            try perform(url, range: nil, sink: sink, postBody: bytes)
        }
        return Response(status: status, body: sink.bytes, headers: responseHeaders(wanted))
    }

    /// DELETE `url` (a Kubernetes object).
    public func delete(_ url: String) throws -> Response {
        let sink = Sink()
        let status = try perform(url, range: nil, sink: sink, method: "DELETE")
        return Response(status: status, body: sink.bytes)
    }

    private func perform(_ url: String, range: ClosedRange<Int>?, sink: Sink, postBody: UnsafeRawBufferPointer? = nil,
                         method: String? = nil, extraHeaders requestHeaders: [String] = []) throws -> Int {
        curl_easy_reset(handle)
        chydra_curl_set_string(handle, CURLOPT_URL, url)
        if let method { chydra_curl_set_string(handle, CURLOPT_CUSTOMREQUEST, method) }
        var extraHeaders = requestHeaders
        if let postBody {
            chydra_curl_set_long(handle, CURLOPT_POST, 1)
            chydra_curl_set_long(handle, CURLOPT_POSTFIELDSIZE, postBody.count)
            chydra_curl_set_pointer(handle, CURLOPT_POSTFIELDS, UnsafeMutableRawPointer(mutating: postBody.baseAddress))
            extraHeaders.append("Content-Type: application/json")
        }
        chydra_curl_set_long(handle, CURLOPT_NOSIGNAL, 1)
        chydra_curl_set_long(handle, CURLOPT_TIMEOUT, timeoutSeconds)
        chydra_curl_set_long(handle, CURLOPT_BUFFERSIZE, 1 << 20)  // fewer, larger receives for chunk bodies
        chydra_curl_set_long(handle, CURLOPT_CONNECTTIMEOUT, 10)
        if let caFile { chydra_curl_set_string(handle, CURLOPT_CAINFO, caFile) }
        if let range { chydra_curl_set_string(handle, CURLOPT_RANGE, "\(range.lowerBound)-\(range.upperBound)") }
        var list: UnsafeMutablePointer<curl_slist>?
        for header in headers + extraHeaders { list = curl_slist_append(list, header) }
        defer { curl_slist_free_all(list) }
        if let list { chydra_curl_set_pointer(handle, CURLOPT_HTTPHEADER, UnsafeMutableRawPointer(list)) }
        chydra_curl_set_write_function(handle) { data, size, count, context in
            let sink = Unmanaged<Sink>.fromOpaque(context!).takeUnretainedValue()
            let length = size * count
            if let onData = sink.onData, !onData(UnsafeRawBufferPointer(start: data, count: length)) { sink.aborted = true; return 0 }
            sink.bytes.append(contentsOf: UnsafeRawBufferPointer(start: data, count: length))
            return length
        }
        let context = Unmanaged.passUnretained(sink).toOpaque()
        chydra_curl_set_pointer(handle, CURLOPT_WRITEDATA, context)
        let code = withExtendedLifetime(sink) { curl_easy_perform(handle) }
        guard code == CURLE_OK || (code == CURLE_WRITE_ERROR && sink.aborted) else {
            var message = String(cString: curl_easy_strerror(code))
            if code == CURLE_PEER_FAILED_VERIFICATION { message += " (the server's certificate is not trusted: pass its authority with --ca-file)" }
            throw Failure(url: url, message: message)
        }
        var status = 0
        chydra_curl_get_response_code(handle, &status)
        return status
    }
}
