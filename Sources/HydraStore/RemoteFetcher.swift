import Foundation
import HydraFormat
import HydraSystem

/// A client of the remote store without a cache (`hydra fetch`): reads a manifest, then fetches
/// chunks over several keep-alive connections in parallel, straight into caller memory, checking
/// each chunk's digest (XXH3 or SHA-256, per `verification`) before it is accepted.
public struct RemoteFetcher: Sendable {
    public struct Statistics: Sendable {
        public let chunks: Int
        public let bytes: Int
        public let seconds: Double
    }

    public let baseURL: String
    public let token: String?
    public let connections: Int
    public let verification: ChunkVerification
    /// The node's emulated NIC, shared by all connections (nil: unlimited).
    public let link: SharedTokenBucket?
    /// Certificate authorities to trust for an https store (nil: the system's).
    public let caFile: String?

    public init(baseURL: String, token: String? = nil, connections: Int = 4, verification: ChunkVerification = .fast, link: SharedTokenBucket? = nil,
                caFile: String? = nil) {
        self.link = link
        self.caFile = caFile
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.token = token
        self.connections = max(1, connections)
        self.verification = verification
    }

    public func manifest(_ name: String) throws -> Manifest { try manifestDocument(name).manifest }

    /// A model's manifest, decoded, the bytes it was decoded from and the store's ETag for them.
    public struct ManifestDocument: Sendable {
        public let manifest: Manifest
        public let bytes: [UInt8]
        /// The store's validator for these bytes (nil from a store that sends none).
        public var etag: String? = nil
    }

    public func manifestDocument(_ name: String) throws -> ManifestDocument {
        try revalidate(name, known: nil)!
    }

    /// `name`'s manifest unless `known` is still the store's (nil then): with an ETag, the
    /// request is conditional, so an unchanged manifest costs one round trip and no body.
    public func revalidate(_ name: String, known: ManifestDocument?) throws -> ManifestDocument? {
        guard StoreDirectory.isValidModelName(name) else { throw FormatError(name, "invalid model name") }
        let url = "\(baseURL)/v1/models/\(name)/manifest"
        let condition = known?.etag.map { ["If-None-Match: \($0)"] } ?? []
        let response = try HTTPClient(bearerToken: token, caFile: caFile).get(url, headers: condition, wanted: ["ETag"])
        if response.status == 304, known != nil { return nil }
        try Self.check(response.status, url: url)
        return ManifestDocument(manifest: try Manifest.decode(response.body, file: url), bytes: response.body, etag: response.headers["etag"])
    }

    /// The store's model names (`GET /v1/models`).
    public func modelNames() throws -> [String] {
        let url = "\(baseURL)/v1/models"
        let response = try HTTPClient(bearerToken: token, timeoutSeconds: 5, caFile: caFile).get(url)
        try Self.check(response.status, url: url)
        guard case .array(let names)? = try JSONValue.parse(response.body, file: url)["models"] else {
            throw FormatError(url, "no 'models' list in the answer")
        }
        return names.compactMap(\.stringValue)
    }

    static func check(_ status: Int, url: String) throws {
        switch status {
        case 200, 206: return
        case 401: throw FormatError(url, "the store refused the request (401): missing or wrong token")
        case 404: throw FormatError(url, "not found on the store (404)")
        default: throw FormatError(url, "the store answered HTTP \(status)")
        }
    }

    /// Fetches each chunk into its destination (at least storedBytes long). While a chunk's body
    /// arrives, each connection pipelines the GET of the next chunk it takes, so the server sends
    /// it straight after.
    public func fetch(_ chunks: [Manifest.Chunk], into destinations: [UnsafeMutableRawPointer]) throws -> Statistics {
        precondition(chunks.count == destinations.count)
        let next = LockedBox(0)
        let failure = LockedBox<Error?>(nil)
        let started = DispatchTime.now()
        let group = DispatchGroup()
        nonisolated(unsafe) let targets = destinations
        for _ in 0..<min(connections, chunks.count) {
            group.enter()
            Thread.detachNewThread { [self] in
                defer { group.leave() }
                let client = HTTPClient(bearerToken: token, link: link, caFile: caFile)
                let take = { next.withValue { value in defer { value += 1 }; return value } }
                var index = take()
                var pipelined = false
                while failure.value == nil && index < chunks.count {
                    var following: Int?
                    var followingPipelined = false
                    do {
                        try fetchOne(chunks[index], into: targets[index], client: client, pipelined: pipelined) {
                            let taken = take()
                            following = taken
                            if taken < chunks.count { followingPipelined = client.pipeline(url(chunks[taken])) }
                        }
                    } catch {
                        failure.withValue { if $0 == nil { $0 = error } }
                    }
                    index = following ?? take()
                    pipelined = followingPipelined
                }
            }
        }
        group.wait()
        if let error = failure.value { throw error }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9
        return Statistics(chunks: chunks.count, bytes: chunks.reduce(0) { $0 + $1.storedBytes }, seconds: seconds)
    }

    private func url(_ chunk: Manifest.Chunk) -> String { "\(baseURL)/v1/chunks/\(chunk.sha256)" }

    private func fetchOne(_ chunk: Manifest.Chunk, into destination: UnsafeMutableRawPointer, client: HTTPClient, pipelined: Bool,
                          afterHead: () -> Void) throws {
        let url = url(chunk)
        let buffer = UnsafeMutableRawBufferPointer(start: destination, count: chunk.storedBytes)
        let expected = chunk.expectedDigest(verification)
        let (status, count, digest) = try client.get(url, into: buffer, hashing: expected?.algorithm, pipelined: pipelined, afterHead: afterHead)
        try Self.check(status, url: url)
        guard count == chunk.storedBytes else {
            throw FormatError(url, "received \(count) bytes, the manifest says \(chunk.storedBytes)")
        }
        if let expected, let actual = digest, actual != expected.hex {
            throw FormatError(url, "chunk failed verification: its bytes' \(expected.algorithm) is \(actual), the manifest says \(expected.hex)")
        }
    }
}
