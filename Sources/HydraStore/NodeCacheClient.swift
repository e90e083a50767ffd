import Foundation
import HydraFormat
import HydraSystem

/// A worker's or controller's side of the node cache socket.
public enum NodeCacheClient {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let message: String
        public var description: String { "node cache: \(message)" }
    }

    /// Attaches to `order`: the manifest and chunk list arrive first, then chunks as they land.
    public static func attach(socketPath: String, order: CacheOrder) throws -> CacheAttachment {
        let connection = try FrameSocket.connect(to: socketPath)
        try connection.send(CacheProtocol.Request(.attach, order: order).encoded())
        let reply = try receiveReply(connection)
        guard reply.event == .attached, let indices = reply.indices else {
            throw Failure(message: "expected 'attached', got '\(reply.event.rawValue)'")
        }
        guard let document = try connection.receive() else { throw Failure(message: "the cache closed the connection before sending the manifest") }
        document.closeDescriptor()
        let manifest = try Manifest.decode(document.bytes, file: "manifest from the node cache")
        guard indices.allSatisfy({ manifest.chunks.indices.contains($0) }) else { throw Failure(message: "chunk index out of range") }
        return CacheAttachment(connection: connection, manifest: manifest, indices: indices)
    }

    /// Orders a prefetch; returns the number of chunks and bytes ordered.
    public static func prefetch(socketPath: String, order: CacheOrder) throws -> (chunks: Int, bytes: Int) {
        let reply = try exchange(socketPath, CacheProtocol.Request(.prefetch, order: order))
        guard reply.event == .ordered, let chunks = reply.chunks, let bytes = reply.bytes else {
            throw Failure(message: "expected 'ordered', got '\(reply.event.rawValue)'")
        }
        return (chunks, bytes)
    }

    public static func status(socketPath: String) throws -> CacheStatus {
        let reply = try exchange(socketPath, CacheProtocol.Request(.status))
        guard reply.event == .status, let status = reply.status else { throw Failure(message: "expected 'status', got '\(reply.event.rawValue)'") }
        return status
    }

    static func exchange(_ socketPath: String, _ request: CacheProtocol.Request) throws -> CacheProtocol.Reply {
        let connection = try FrameSocket.connect(to: socketPath)
        try connection.send(request.encoded())
        return try receiveReply(connection)
    }

    static func receiveReply(_ connection: FrameSocket) throws -> CacheProtocol.Reply {
        guard let frame = try connection.receive() else { throw Failure(message: "the cache closed the connection") }
        frame.closeDescriptor()
        let reply = try CacheProtocol.Reply(parsing: frame.bytes)
        if reply.event == .error { throw Failure(message: reply.message ?? "unspecified error") }
        return reply
    }
}

/// An attached worker's connection: chunks in order of arrival, each as read-only shared memory.
public final class CacheAttachment: @unchecked Sendable {
    public struct Chunk: Sendable {
        /// Position in the manifest's chunk list.
        public let index: Int
        public let chunk: Manifest.Chunk
        /// Mapped read-only; the bytes stay valid while this value is alive.
        public let memory: MappedMemory
    }

    public let manifest: Manifest
    public let indices: [Int]
    private let connection: FrameSocket
    private var delivered = Set<Int>()

    init(connection: FrameSocket, manifest: Manifest, indices: [Int]) {
        self.connection = connection
        self.manifest = manifest
        self.indices = indices
    }

    /// The next chunk, or nil once every ordered chunk has arrived. Throws the cache's error.
    public func next() throws -> Chunk? {
        guard let frame = try connection.receive() else { throw NodeCacheClient.Failure(message: "the cache closed the connection mid-stream") }
        let reply: CacheProtocol.Reply
        do { reply = try CacheProtocol.Reply(parsing: frame.bytes) } catch {
            frame.closeDescriptor()
            throw error
        }
        switch reply.event {
        case .done:
            frame.closeDescriptor()
            guard delivered.count == indices.count else { throw NodeCacheClient.Failure(message: "'done' after \(delivered.count) of \(indices.count) chunks") }
            return nil
        case .chunk:
            guard let fd = frame.fd else { throw NodeCacheClient.Failure(message: "a chunk frame without its shared memory") }
            let memory = try SharedMemoryFile(adopting: fd)
            guard let index = reply.index, indices.contains(index), delivered.insert(index).inserted else {
                throw NodeCacheClient.Failure(message: "unexpected or repeated chunk index \(reply.index.map(String.init) ?? "none")")
            }
            let chunk = manifest.chunks[index]
            guard memory.count == chunk.storedBytes else {
                throw NodeCacheClient.Failure(message: "chunk \(chunk.sha256) arrived with \(memory.count) bytes, the manifest says \(chunk.storedBytes)")
            }
            return Chunk(index: index, chunk: chunk, memory: try memory.map(writable: false))
        default:
            frame.closeDescriptor()
            if reply.event == .error { throw NodeCacheClient.Failure(message: reply.message ?? "unspecified error") }
            throw NodeCacheClient.Failure(message: "unexpected '\(reply.event.rawValue)' while streaming chunks")
        }
    }

    /// Unpins the chunks in the cache (mappings already taken stay valid).
    public func close() { connection.shutdown() }
}
