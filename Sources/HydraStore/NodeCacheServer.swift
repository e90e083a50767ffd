import Foundation
import HydraFormat
import HydraSystem
import Logging

/// Serves a node cache on a Unix socket: one thread accepts, one thread per connection
/// (bounded) answers it. Workers on the node attach here; the controller sends prefetch orders.
public final class NodeCacheServer: @unchecked Sendable {
    public let cache: NodeCache
    let listener: UnixListener
    let logger: Logger
    let maxConnections: Int
    private let connections = LockedBox(0)
    private let open = LockedBox<[ObjectIdentifier: FrameSocket]>([:])
    private let stopped = LockedBox(false)

    public init(cache: NodeCache, socketPath: String, maxConnections: Int = 256, logger: Logger = Logger(label: "hydra.cache")) throws {
        self.cache = cache
        self.logger = logger
        self.maxConnections = maxConnections
        listener = try UnixListener(path: socketPath)
    }

    /// Accepts connections until `shutdown()`; blocks the calling thread.
    public func run() {
        while let connection = try? listener.accept() {
            let admitted = connections.withValue { count -> Bool in
                guard count < maxConnections else { return false }
                count += 1
                return true
            }
            guard admitted else {
                try? connection.send(CacheProtocol.Reply.error("node cache busy: \(maxConnections) connections open").encoded())
                continue
            }
            open.withValue { $0[ObjectIdentifier(connection)] = connection }
            Thread.detachNewThread { [self] in
                defer {
                    open.withValue { $0[ObjectIdentifier(connection)] = nil }
                    connections.withValue { $0 -= 1 }
                }
                serve(connection)
            }
        }
    }

    /// Starts `run()` on a thread of its own.
    public func start() {
        let thread = Thread { [self] in run() }
        thread.name = "hydra-cache-accept"
        thread.start()
    }

    /// Stops accepting, disconnects every client (unpinning their chunks) and removes the socket.
    public func shutdown() {
        stopped.value = true
        listener.shutdown()
        for connection in open.value.values { connection.shutdown() }
    }

    func serve(_ connection: FrameSocket) {
        do {
            guard let frame = try connection.receive() else { return }
            frame.closeDescriptor()  // requests carry no descriptors
            let request = try CacheProtocol.Request(parsing: frame.bytes)
            guard request.version == CacheProtocol.version else {
                throw FormatError("request", "protocol version \(request.version) is not supported (this cache speaks \(CacheProtocol.version))")
            }
            switch request.op {
            case .status:
                var reply = CacheProtocol.Reply(.status)
                reply.status = cache.status()
                try connection.send(reply.encoded())
            case .prefetch:
                let chunks = try cache.prefetch(try request.order())
                var reply = CacheProtocol.Reply(.ordered)
                reply.chunks = chunks.count
                reply.bytes = chunks.reduce(0) { $0 + $1.storedBytes }
                try connection.send(reply.encoded())
            case .attach:
                try stream(try request.order(), to: connection)
            }
        } catch {
            logger.warning("node cache request failed", metadata: ["error": "\(error)"])
            try? connection.send(CacheProtocol.Reply.error("\(error)").encoded())
        }
    }

    /// Sends the chunk list and the manifest (the store's bytes, not re-encoded), then each
    /// chunk's memfd as it lands; holds the pins until the worker closes the connection.
    func stream(_ order: CacheOrder, to connection: FrameSocket) throws {
        let subscription = try cache.attach(order)
        defer { subscription.cancel() }
        var attached = CacheProtocol.Reply(.attached)
        attached.indices = subscription.indices
        try connection.send(attached.encoded())
        try connection.send(subscription.manifestBytes)
        while let event = subscription.next() {
            switch event {
            case .chunk(let index, _, let memory):
                var reply = CacheProtocol.Reply(.chunk)
                reply.index = index
                try connection.send(reply.encoded(), fd: memory.fd)
            case .done:
                try connection.send(CacheProtocol.Reply(.done).encoded())
            case .failed(let message):
                try connection.send(CacheProtocol.Reply.error(message).encoded())
                return
            }
        }
        // Hold the chunks until the worker hangs up (anything it sends is ignored).
        while let frame = try? connection.receive() {
            frame.closeDescriptor()
        }
    }
}
