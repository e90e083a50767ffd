import Foundation
import HydraFormat
import HydraSystem

/// An attached worker's view of an order: every chunk exactly once, in order of arrival, then
/// `.done` — or `.failed`. The chunks stay pinned in the cache until `cancel()`, which the
/// owner must call (the cache holds the subscription until then).
public final class CacheSubscription: @unchecked Sendable {
    public let manifest: Manifest
    /// The manifest as the remote store served it.
    public let manifestBytes: [UInt8]
    /// The manifest indices of the chunks ordered.
    public let indices: [Int]
    // Guarded by the cache's lock.
    var entries: [NodeCache.Entry] = []
    private var remaining: Int
    private var finished = false
    private var cancelled = false
    private weak var cache: NodeCache?
    /// One slot per chunk and one for the end: delivery never blocks the cache.
    private let events: BlockingQueue<CacheEvent>

    init(cache: NodeCache, manifest: RemoteFetcher.ManifestDocument, indices: [Int]) {
        self.cache = cache
        self.manifest = manifest.manifest
        manifestBytes = manifest.bytes
        self.indices = indices
        remaining = indices.count
        events = BlockingQueue(capacity: indices.count + 1)
    }

    /// The next event; blocks until one arrives. nil after `.done` or `.failed` was taken.
    public func next() -> CacheEvent? { events.take() }

    /// Unpins the chunks (idempotent). Events not yet taken are dropped.
    public func cancel() {
        guard let cache else { return }
        let first = cache.condition.withLock { () -> Bool in
            defer { cancelled = true }
            return !cancelled
        }
        if first { cache.release(self) }
    }

    // Called with the cache's lock held.
    func deliver(index: Int, chunk: Manifest.Chunk, memory: SharedMemoryFile) {
        guard !finished else { return }
        events.put(.chunk(index: index, chunk: chunk, memory: memory))
        remaining -= 1
        finishIfComplete()
    }

    func finishIfComplete() {
        guard !finished && remaining == 0 else { return }
        finished = true
        events.put(.done)
        events.close()
    }

    func fail(_ message: String) {
        guard !finished else { return }
        finished = true
        events.put(.failed(message))
        events.close()
    }
}
