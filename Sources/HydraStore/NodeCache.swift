import Foundation
import HydraFormat
import HydraSystem
import Logging

/// The node cache (`hydra cache serve`, one per node): chunks in sealed shared memory, fetched
/// from remote stores on prefetch orders, handed to attached workers the moment each one is
/// verified. All state sits behind one lock; fetches run on `connections` dedicated threads, each
/// with its own keep-alive connection, sharing the node's emulated NIC.
public final class NodeCache: @unchecked Sendable {
    public struct Configuration: Sendable {
        public var node: String
        public var capacityBytes: Int
        /// Remote stores, tried in turn: a failed or corrupt transfer moves to the next one.
        public var remotes: [String]
        public var token: String?
        /// Certificate authorities to trust for https remotes (nil: the system's).
        public var caFile: String?
        /// Parallel transfers (keep-alive connections).
        public var connections = 4
        /// The node's emulated NIC; nil: unlimited.
        public var nicGigabitsPerSecond: Double?
        /// Bytes per range request of a low-priority fetch: the unit at which it yields to high
        /// priority. High-priority fetches ask for the rest of a chunk at once (one request per
        /// chunk: 4% faster on loopback than 8 MiB pieces); either resumes from the last byte
        /// received after a failure.
        public var pieceBytes = 8 << 20
        /// A chunk that cannot be fetched within this time fails its orders.
        public var orderTimeoutSeconds: Double = 120
        public var retryInitialSeconds = 0.05
        public var retryMaxSeconds = 2.0
        /// Whole-chunk verification attempts per remote before a chunk is declared corrupt.
        public var verificationAttemptsPerRemote = 2
        /// How chunks are checked before they are published (`.none` is treated as `.fast`).
        public var verification = ChunkVerification.fast
        /// Shared memory kept faulted in for chunks to come (within the capacity), refilled
        /// while no fetch runs; 0: every chunk's memory is faulted in as it is fetched.
        public var reserveBytes = 0
        /// The reserve's largest piece (the converter's default chunk size); the other classes
        /// halve it three times (SharedMemoryReserve).
        public var reservePieceBytes = Configuration.defaultReservePieceBytes
        public static let defaultReservePieceBytes = 32 << 20
        /// The reserve waits this long after the last fetch ends before it unmaps the fetch
        /// threads' views and refills: the moment a fetch ends the attached workers are taking
        /// the last chunks in, and unmapping 270 MB of views then delayed them by ~3 ms.
        public var reserveRefillDelaySeconds = 0.25

        public init(node: String, capacityBytes: Int, remotes: [String]) {
            self.node = node
            self.capacityBytes = capacityBytes
            self.remotes = remotes.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        }
    }

    public let configuration: Configuration
    let logger: Logger
    let link: SharedTokenBucket?
    let condition = NSCondition()
    // Everything below is guarded by `condition`.
    var entries: [String: Entry] = [:]
    var queue: [Entry] = []
    /// Manifests known, by model: checked with the store (ETag) before each order uses one.
    var manifests: [String: RemoteFetcher.ManifestDocument] = [:]
    var subscriptions = 0
    var usedBytes = 0
    var useClock: UInt64 = 0
    var stopped = false
    var counters = Counters()
    /// Writable views of published chunks, for the reserve thread to unmap off the fetch path.
    var retiredMappings: [MappedMemory] = []
    /// When a fetch last published its chunk (the reserve refills only after a pause).
    var lastFetchEndNanoseconds: UInt64 = 0
    /// The reserve thread's first fill is done (`fillReserve` waits for it).
    var reserveFilled = false
    let threads = DispatchGroup()
    let reserve: SharedMemoryReserve?

    struct Counters {
        var bytesFetched = 0
        var chunksPublished = 0
        var transferErrors = 0
        var verificationFailures = 0
        var failedChunks = 0
        var evictions = 0
        var chunksFromReserve = 0
    }

    public init(configuration: Configuration, logger: Logger = Logger(label: "hydra.cache")) {
        precondition(!configuration.remotes.isEmpty, "a node cache needs at least one remote store")
        precondition(configuration.connections > 0 && configuration.pieceBytes > 0)
        self.configuration = configuration
        self.logger = logger
        link = configuration.nicGigabitsPerSecond.map { SharedTokenBucket(gigabitsPerSecond: $0) }
        reserve = configuration.reserveBytes > 0
            ? SharedMemoryReserve(largestPieceBytes: configuration.reservePieceBytes, targetBytes: min(configuration.reserveBytes, configuration.capacityBytes))
            : nil
        if reserve != nil {
            threads.enter()
            let thread = Thread { [self] in
                defer { threads.leave() }
                refillLoop()
            }
            thread.name = "hydra-cache-reserve"
            thread.start()
        }
        for index in 0..<configuration.connections {
            threads.enter()
            let thread = Thread { [self] in
                defer { threads.leave() }
                fetchLoop(client: HTTPClient(bearerToken: configuration.token, timeoutSeconds: 30, link: link, caFile: configuration.caFile))
            }
            thread.name = "hydra-cache-fetch-\(index)"
            thread.start()
        }
    }

    /// Stops the fetch threads after their current piece; orders still pending fail.
    public func shutdown() {
        condition.withLock {
            stopped = true
            for entry in queue { failLocked(entry, "the node cache is shutting down") }
            queue.removeAll()
            condition.broadcast()
        }
        threads.wait()
    }

    /// Starts fetching what `order` names (nothing is pinned: the chunks are evictable once
    /// cached). Returns the chunks ordered.
    @discardableResult
    public func prefetch(_ order: CacheOrder) throws -> [Manifest.Chunk] {
        let (document, indices) = try resolve(order)
        let manifest = document.manifest
        condition.withLock {
            for index in indices { _ = entryLocked(manifest.chunks[index], priority: order.priority) }
            condition.broadcast()
        }
        return indices.map { manifest.chunks[$0] }
    }

    /// Orders `order` and subscribes to it: every chunk is pinned (never evicted) until the
    /// subscription is cancelled; cached chunks are delivered at once, the rest as they land.
    public func attach(_ order: CacheOrder) throws -> CacheSubscription {
        let (document, indices) = try resolve(order)
        let manifest = document.manifest
        return condition.withLock {
            let subscription = CacheSubscription(cache: self, manifest: document, indices: indices)
            var ready: [(Int, Entry)] = []
            for index in indices {
                let entry = entryLocked(manifest.chunks[index], priority: order.priority)
                entry.pins += 1
                subscription.entries.append(entry)
                if entry.state == .ready { ready.append((index, entry)) } else { entry.subscribers.append((subscription, index)) }
            }
            subscriptions += 1
            for (index, entry) in ready { subscription.deliver(index: index, chunk: entry.chunk, memory: entry.memory!) }
            if indices.isEmpty { subscription.finishIfComplete() }
            condition.broadcast()
            return subscription
        }
    }

    public func status() -> CacheStatus {
        condition.withLock {
            let values = entries.values
            return CacheStatus(
                node: configuration.node, capacityBytes: configuration.capacityBytes, usedBytes: usedBytes,
                cachedChunks: values.filter { $0.state == .ready }.map(\.chunk.sha256).sorted(),
                inFlightChunks: values.filter { $0.state == .fetching }.count,
                queuedChunks: values.filter { $0.state == .queued }.count,
                attachedWorkers: subscriptions,
                bytesFetched: counters.bytesFetched, chunksPublished: counters.chunksPublished,
                transferErrors: counters.transferErrors, verificationFailures: counters.verificationFailures,
                failedChunks: counters.failedChunks, evictions: counters.evictions,
                reservedBytes: reserve?.readyBytes ?? 0, chunksFromReserve: counters.chunksFromReserve)
        }
    }

    // MARK: - Orders

    /// The model's current manifest and the chunk indices the order names.
    func resolve(_ order: CacheOrder) throws -> (RemoteFetcher.ManifestDocument, [Int]) {
        guard StoreDirectory.isValidModelName(order.model) else { throw FormatError(order.model, "invalid model name") }
        let document = try currentManifest(order)
        return (document, try document.manifest.chunkIndices(stage: order.stage, of: order.pp, complement: order.complement))
    }

    /// The manifest as the store has it now. One this cache already knows (from an earlier order,
    /// or learned with the reserve's mix) is checked with a conditional request — a round trip,
    /// no body, no decoding — and its chunks for `order` are queued before asking, so the fetch
    /// starts meanwhile: chunks are named by their content, so a manifest that turns out stale
    /// costs at most bytes fetched in vain. When no store can be reached the known one stays in
    /// use (its chunks may all be here); a store that answers with an error (the model removed,
    /// a refused token) fails the order.
    func currentManifest(_ order: CacheOrder) throws -> RemoteFetcher.ManifestDocument {
        guard let known = condition.withLock({ manifests[order.model] }) else { return try fetchManifest(order.model, known: nil)! }
        if let indices = try? known.manifest.chunkIndices(stage: order.stage, of: order.pp, complement: order.complement) {
            condition.withLock {
                for index in indices { _ = entryLocked(known.manifest.chunks[index], priority: order.priority) }
                condition.broadcast()
            }
        }
        do {
            return try fetchManifest(order.model, known: known) ?? known
        } catch let error as ManifestUnavailable where error.unreachable {
            logger.warning("no store reachable to check the manifest; using the one known", metadata: ["model": "\(order.model)", "problem": "\(error)"])
            return known
        }
    }

    /// `name`'s manifest from the first remote that answers (and remembered), or nil when that
    /// remote says `known` is still current.
    func fetchManifest(_ name: String, known: RemoteFetcher.ManifestDocument?) throws -> RemoteFetcher.ManifestDocument? {
        var problems: [String] = []
        var answered = false
        for remote in configuration.remotes {
            do {
                let fetcher = RemoteFetcher(baseURL: remote, token: configuration.token, caFile: configuration.caFile)
                guard let document = try fetcher.revalidate(name, known: known) else { return nil }
                condition.withLock { manifests[name] = document }
                return document
            } catch {
                if !(error is HTTPClient.Failure) { answered = true }
                problems.append("\(error)")
            }
        }
        throw ManifestUnavailable(name: name, problems: problems, unreachable: !answered)
    }

    /// No remote store provided a manifest; `unreachable` when none answered at all.
    struct ManifestUnavailable: Error, CustomStringConvertible {
        let name: String
        let problems: [String]
        let unreachable: Bool
        var description: String { "\(name): no remote store could provide the manifest: " + problems.joined(separator: "; ") }
    }

    /// The entry for `chunk`, queued for fetching if it is new; a higher priority upgrades it.
    func entryLocked(_ chunk: Manifest.Chunk, priority: CacheOrder.Priority) -> Entry {
        if let entry = entries[chunk.sha256] {
            if entry.priority < priority { entry.priority = priority }
            useClock += 1
            entry.lastUse = useClock
            return entry
        }
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(configuration.orderTimeoutSeconds * 1e9)
        let entry = Entry(chunk: chunk, verification: configuration.verification, priority: priority, deadlineNanoseconds: deadline)
        useClock += 1
        entry.lastUse = useClock
        entries[chunk.sha256] = entry
        queue.append(entry)
        return entry
    }

    /// Called by a subscription when its worker is done with it.
    func release(_ subscription: CacheSubscription) {
        condition.withLock {
            for entry in subscription.entries {
                entry.pins -= 1
                entry.subscribers.removeAll { $0.0 === subscription }
                useClock += 1
                entry.lastUse = useClock
            }
            subscriptions -= 1
            condition.broadcast()
        }
    }
}
