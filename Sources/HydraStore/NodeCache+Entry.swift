import HydraFormat
import HydraSystem

extension NodeCache {
    /// One chunk's life in the cache: queued → fetching (possibly parked back in the queue to
    /// yield to high priority, keeping what it received) → ready; or failed and forgotten.
    final class Entry {
        enum State { case queued, fetching, ready }

        let chunk: Manifest.Chunk
        var state = State.queued
        var priority: CacheOrder.Priority
        let deadlineNanoseconds: UInt64
        /// Its bytes count against the capacity (from the moment a fetch thread takes it).
        var reserved = false
        var memory: SharedMemoryFile?
        /// Writable while fetching; unmapped before the memory is sealed.
        var mapping: MappedMemory?
        /// A reserve piece's shrink to the chunk's size, under way while the chunk lands.
        var trim: SharedMemoryReserve.Trim?
        var received = 0
        /// Its GET (for the rest of the chunk) went out pipelined behind the previous chunk's on
        /// the fetch thread's connection; the response is read when this fetch starts.
        var requestPipelined = false
        /// What the bytes must hash to, and the hash of those received so far.
        let expected: ExpectedDigest
        var digest: IncrementalDigest
        var remoteIndex = 0
        var verificationFailures = 0
        var pins = 0
        var lastUse: UInt64 = 0
        var subscribers: [(CacheSubscription, Int)] = []

        init(chunk: Manifest.Chunk, verification: ChunkVerification, priority: CacheOrder.Priority, deadlineNanoseconds: UInt64) {
            self.chunk = chunk
            // A cache always checks what it publishes: `.none` means `.fast` here.
            expected = chunk.expectedDigest(verification == .none ? .fast : verification)!
            digest = IncrementalDigest(expected.algorithm)
            self.priority = priority
            self.deadlineNanoseconds = deadlineNanoseconds
        }
    }

    /// Makes room for `bytes` by evicting the least recently used cached chunks no worker holds.
    func makeRoomLocked(_ bytes: Int) -> Bool {
        while usedBytes + bytes > configuration.capacityBytes {
            let victim = entries.values.filter { $0.state == .ready && $0.pins == 0 }.min { $0.lastUse < $1.lastUse }
            guard let victim else { return false }
            entries[victim.chunk.sha256] = nil
            usedBytes -= victim.chunk.storedBytes
            counters.evictions += 1
            logger.debug("evicted chunk", metadata: ["chunk": "\(victim.chunk.sha256)"])
        }
        return true
    }

    /// Forgets a chunk that cannot be fetched and tells every subscriber why.
    func failLocked(_ entry: Entry, _ message: String) {
        if entries[entry.chunk.sha256] === entry { entries[entry.chunk.sha256] = nil }
        queue.removeAll { $0 === entry }
        if entry.reserved { usedBytes -= entry.chunk.storedBytes }
        entry.reserved = false
        entry.mapping = nil
        entry.memory = nil
        counters.failedChunks += 1
        logger.error("chunk failed", metadata: ["chunk": "\(entry.chunk.sha256)", "reason": "\(message)"])
        for (subscription, _) in entry.subscribers { subscription.fail(message) }
        entry.subscribers.removeAll()
    }

    /// A verified chunk becomes visible: sealed, cached, delivered in order of arrival.
    func publishLocked(_ entry: Entry) {
        entry.state = .ready
        useClock += 1
        entry.lastUse = useClock
        counters.chunksPublished += 1
        for (subscription, index) in entry.subscribers {
            subscription.deliver(index: index, chunk: entry.chunk, memory: entry.memory!)
        }
        entry.subscribers.removeAll()
    }
}
