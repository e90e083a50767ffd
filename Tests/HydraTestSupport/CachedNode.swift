import Foundation
import HydraFormat
import HydraStore
import HydraSystem
import Logging

/// A node cache in this process, served on a Unix socket in a fresh temporary directory.
public final class CachedNode: @unchecked Sendable {
    public let cache: NodeCache
    public let server: NodeCacheServer
    public let directory: String
    public var socketPath: String { directory + "/cache.sock" }

    public init(remotes: [Int], capacityBytes: Int = 1 << 30, nicGbps: Double? = nil, timeoutSeconds: Double = 30, connections: Int = 4,
                verification: ChunkVerification = .fast, configure: (inout NodeCache.Configuration) -> Void = { _ in }) throws {
        directory = NSTemporaryDirectory() + "hydra-cache-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var configuration = NodeCache.Configuration(node: "n0", capacityBytes: capacityBytes, remotes: remotes.map { "http://127.0.0.1:\($0)" })
        configuration.pieceBytes = 16 << 10  // several range requests per chunk
        configuration.nicGigabitsPerSecond = nicGbps
        configuration.orderTimeoutSeconds = timeoutSeconds
        configuration.retryMaxSeconds = 0.2
        configuration.connections = connections
        configuration.verification = verification
        configure(&configuration)
        var quiet = Logger(label: "hydra.cache.test")
        quiet.logLevel = .critical
        cache = NodeCache(configuration: configuration, logger: quiet)
        server = try NodeCacheServer(cache: cache, socketPath: directory + "/cache.sock", logger: quiet)
        server.start()
    }

    public func stop() {
        server.shutdown()
        cache.shutdown()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Attaches like a worker and copies every chunk out; returns them by manifest index.
    public static func receiveAll(_ socketPath: String, _ order: CacheOrder) throws -> (CacheAttachment, [Int: [UInt8]]) {
        let attachment = try NodeCacheClient.attach(socketPath: socketPath, order: order)
        var received: [Int: [UInt8]] = [:]
        while let chunk = try attachment.next() {
            received[chunk.index] = Array(chunk.memory.bytes)
        }
        return (attachment, received)
    }

    public func receiveAll(_ order: CacheOrder) async throws -> [Int: [UInt8]] {
        let path = socketPath
        return try await offPool { let (attachment, chunks) = try Self.receiveAll(path, order); attachment.close(); return chunks }
    }

    /// Waits (bounded) until the cache holds all of `hashes`.
    public func waitCached(_ hashes: Set<String>) async throws {
        for _ in 0..<500 {
            if hashes.isSubset(of: cache.status().cachedChunks) { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw POSIXError(.ETIMEDOUT)  // the chunks were not cached within 5 s
    }
}

