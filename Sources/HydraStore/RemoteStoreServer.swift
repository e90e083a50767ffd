import Foundation
import Glibc
import HydraFormat
import HydraSystem
import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import NIOSSL
import Logging
import NIOCore

/// `hydra store serve`: serves manifests and chunks of a store over HTTP/1.1 with Range support.
/// Disk reads go through the io_uring reader in bounded pieces (memory per connection is one
/// piece, never a whole chunk); over plain HTTP a range already in the page cache goes to the
/// socket by sendfile instead (no copy through user space). Names are validated before any path
/// is built, so nothing outside the store root can be read.
public struct RemoteStoreServer: Sendable {
    public struct Configuration: Sendable {
        public var root: String
        public var host = "127.0.0.1"
        public var port = 8470
        /// When set, every request but /healthz needs `Authorization: Bearer <token>`.
        public var token: String?
        /// Disk reads in flight across all connections.
        public var maxConcurrentReads = 64
        /// Bytes read and sent per piece of a response body.
        public var pieceBytes = 1 << 20
        /// Send ranges already in the page cache with sendfile (plain HTTP only: with TLS every
        /// body is read, encrypted and written).
        public var sendfile = true
        /// PEM certificate chain and private key: serve HTTPS instead of HTTP.
        public var tlsCertificatePath: String?
        public var tlsKeyPath: String?

        public init(root: String) { self.root = root }
    }

    public let configuration: Configuration
    let store: StoreDirectory
    let limiter: ReadLimiter
    let pieces: PieceReader
    /// What this server has answered and how (shared by every application made from it).
    public let counters = StoreServerCounters()
    static let serverName = "hydra-store"
    /// Chunk bodies already in the page cache go out by sendfile.
    var sendsFiles: Bool { configuration.sendfile && configuration.tlsCertificatePath == nil }

    public init(configuration: Configuration, reader: (any FileBatchReader)? = nil) {
        self.configuration = configuration
        store = StoreDirectory(root: configuration.root)
        let reader = reader ?? FileReaders.make()
        limiter = ReadLimiter(limit: configuration.maxConcurrentReads)
        // Each thread waits on one read at a time (a piece is one io_uring request): enough
        // threads keep the ring busy; the read limit bounds the queue.
        pieces = PieceReader(reader: reader, threads: min(8, configuration.maxConcurrentReads),
                             capacity: configuration.maxConcurrentReads)
    }

    /// The HTTP/1.1 server (`SendfileHTTP1Channel`), wrapped in TLS when a certificate and key
    /// are configured.
    public func serverBuilder() throws -> HTTPServerBuilder {
        let store = self.store, sendsFiles = self.sendsFiles, token = configuration.token, counters = self.counters
        let http1 = HTTPServerBuilder { responder in
            SendfileHTTP1Channel(responder: responder, store: store, sendsFiles: sendsFiles, token: token, serverName: Self.serverName, counters: counters)
        }
        guard let certificate = configuration.tlsCertificatePath, let key = configuration.tlsKeyPath else { return http1 }
        let chain: [NIOSSLCertificate]
        let privateKey: NIOSSLPrivateKey
        do { chain = try NIOSSLCertificate.fromPEMFile(certificate) } catch {
            throw FormatError(certificate, "cannot read a PEM certificate chain: \(error)")
        }
        do { privateKey = try NIOSSLPrivateKey(file: key, format: .pem) } catch {
            throw FormatError(key, "cannot read a PEM private key: \(error)")
        }
        let tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(privateKey))
        return try .tls(http1, tlsConfiguration: tls)
    }

    /// The Hummingbird application; `onServerRunning` learns the bound port (useful with port 0).
    public func application(logger: Logger = Logger(label: "hydra.store"),
                            onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }) throws -> some ApplicationProtocol {
        let router = Router()
        router.add(middleware: BearerTokenMiddleware(token: configuration.token))
        router.get("/healthz") { _, _ in "ok\n" }
        router.get("/v1/models") { _, _ in try modelList() }
        router.get("/v1/models/:name/manifest") { request, context in
            try manifest(context.parameters.require("name"), ifNoneMatch: request.headers[.ifNoneMatch])
        }
        router.get("/v1/chunks/:hash") { request, context in
            try await chunk(context.parameters.require("hash"), request: request, sendBody: true)
        }
        router.head("/v1/chunks/:hash") { request, context in
            try await chunk(context.parameters.require("hash"), request: request, sendBody: false)
        }
        return Application(
            router: router,
            server: try serverBuilder(),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: Self.serverName),
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? 0) },
            logger: logger
        )
    }

    func modelList() throws -> Response {
        let names = try store.modelNames()
        let body = try JSONValue.object(["models": .array(names.map { .string($0) })]).encoded()
        return Self.json(body)
    }

    /// A model's manifest with its ETag (the XXH3 of its bytes), or 304 Not Modified when the
    /// client's `If-None-Match` names it: a node cache that learned the manifest earlier checks
    /// it is still current in one short round trip.
    func manifest(_ name: String, ifNoneMatch: String?) throws -> Response {
        guard StoreDirectory.isValidModelName(name) else {
            throw HTTPError(.badRequest, message: "invalid model name")
        }
        guard let data = FileManager.default.contents(atPath: store.manifestPath(name)) else {
            throw HTTPError(.notFound, message: "no model '\(name)' in this store")
        }
        let tag = data.withUnsafeBytes { ManifestTag.of($0) }
        if let ifNoneMatch, ManifestTag.matches(ifNoneMatch, tag) {
            return Response(status: .notModified, headers: [.eTag: tag])
        }
        return Self.json(data, etag: tag)
    }

    static func json(_ bytes: some Sequence<UInt8>, etag: String? = nil) -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let etag { headers[.eTag] = etag }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    func chunk(_ hash: String, request: Request, sendBody: Bool) async throws -> Response {
        // Only 64 lowercase hex digits name a chunk: "..", "/", encoded traversal and absolute
        // paths never reach the file system.
        guard isSHA256Hex(hash) else { throw HTTPError(.badRequest, message: "a chunk name is 64 lowercase hex digits") }
        let path = store.chunkPath(hash)
        let descriptor: HydraSystem.FileDescriptor
        do { descriptor = try HydraSystem.FileDescriptor.open(path) } catch {
            throw HTTPError(.notFound, message: "no chunk \(hash)")
        }
        let file = SharedFile(descriptor)
        let length = try file.size()
        var headers: HTTPFields = [.acceptRanges: "bytes", .eTag: "\"\(hash)\"", .contentType: "application/octet-stream"]
        guard let (range, contentRange) = ByteRange.selection(request.headers[.range], length: length) else {
            headers[.contentRange] = "bytes */\(length)"
            return Response(status: .rangeNotSatisfiable, headers: headers)
        }
        headers[.contentRange] = contentRange
        let status: HTTPResponse.Status = contentRange == nil ? .ok : .partialContent
        headers[.contentLength] = String(max(range.count, 0))
        guard sendBody, length > 0 else { return Response(status: status, headers: headers) }
        let residency = sendsFiles ? file.residency(offset: range.first, length: range.count) : .cold
        if residency != .cold {
            // Page cache → socket by sendfile (SendfileChannel.swift); the few pages reclaim may
            // have dropped are read back in ahead of it. Ranges not yet cached take the io_uring
            // path below, which caches them for the next request.
            if residency == .mostly { _ = posix_fadvise(file.fd, off_t(range.first), off_t(range.count), POSIX_FADV_WILLNEED) }
            headers[HTTPField.Name(SendfileHandler.header)!] = SendfileHandler.value(hash: hash, first: range.first, last: range.last)
            return Response(status: status, headers: headers)
        }
        let pieceBytes = configuration.pieceBytes
        let pieces = self.pieces, limiter = self.limiter
        return Response(status: status, headers: headers, body: ResponseBody(contentLength: range.count) { writer in
            var offset = range.first
            while offset <= range.last {
                let count = min(pieceBytes, range.last - offset + 1)
                await limiter.acquire()
                let piece: ByteBuffer
                do {
                    piece = try await pieces.read(fd: file.fd, offset: offset, length: count, path: path)
                } catch {
                    await limiter.release()
                    throw error
                }
                await limiter.release()
                try await writer.write(piece)
                offset += count
            }
            try await writer.finish(nil)
        })
    }
}

/// Requires `Authorization: Bearer <token>` when a token is configured (except for /healthz).
struct BearerTokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: String?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard token != nil, request.uri.path != "/healthz" else { return try await next(request, context) }
        guard bearerTokenMatches(request.headers[.authorization], token) else {
            throw HTTPError(.unauthorized, headers: [.wwwAuthenticate: "Bearer"], message: "missing or wrong bearer token")
        }
        return try await next(request, context)
    }
}

/// Whether an `Authorization` header carries `Bearer <token>` (always, when no token is set).
func bearerTokenMatches(_ header: String?, _ token: String?) -> Bool {
    guard let token else { return true }
    guard let header, header.hasPrefix("Bearer ") else { return false }
    return constantTimeEqual(Array(header.utf8.dropFirst(7)), Array(token.utf8))
}

/// Compares secrets without leaking where they differ through timing.
func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    var difference: UInt8 = 0
    for (x, y) in zip(a, b) { difference |= x ^ y }
    return difference == 0
}
