import Foundation
import HydraFormat
import HydraSystem

extension NodeCache {
    /// One fetch thread: takes the highest-priority queued chunk (oldest first), fetches it in
    /// range pieces, verifies and publishes it. While a high-priority chunk's body arrives, the
    /// next high-priority chunk is taken and its GET pipelined on the same connection, so the
    /// server sends it straight after, without a round trip or this thread's sealing and
    /// publishing in between.
    func fetchLoop(client: HTTPClient) {
        var ahead: Entry?
        while let entry = ahead ?? nextEntry() {
            ahead = nil
            fetch(entry, client: client, ahead: &ahead)
        }
    }

    /// Blocks until a chunk can be fetched (with room reserved for it), or returns nil on
    /// shutdown. With `wait` false, nil also when nothing (or, with `highOnly`, nothing of high
    /// priority) is queued.
    func nextEntry(wait: Bool = true, highOnly: Bool = false) -> Entry? {
        condition.withLock {
            while true {
                if stopped { return nil }
                guard let best = queue.indices.max(by: { queue[$0].priority < queue[$1].priority || (queue[$0].priority == queue[$1].priority && $0 > $1) }),
                      !highOnly || queue[best].priority == .high else {
                    if !wait { return nil }
                    condition.wait()
                    continue
                }
                let entry = queue.remove(at: best)
                if !entry.reserved {
                    guard makeRoomLocked(entry.chunk.storedBytes) else {
                        let held = usedBytes
                        failLocked(entry, "node cache full: chunk \(entry.chunk.sha256) needs \(entry.chunk.storedBytes) bytes, "
                                   + "\(held) of \(configuration.capacityBytes) are held by attached workers or fetches in flight")
                        continue
                    }
                    usedBytes += entry.chunk.storedBytes
                    entry.reserved = true
                }
                entry.state = .fetching
                return entry
            }
        }
    }

    /// Whether this fetch should step aside (it is low priority and a high-priority chunk
    /// waits), and where its next range request should end: a high-priority fetch never yields,
    /// so it asks for the rest of the chunk at once; a low-priority one goes piece by piece.
    func nextStep(_ entry: Entry) -> (yield: Bool, end: Int) {
        condition.withLock {
            let low = entry.priority == .low
            let end = low ? min(entry.received + configuration.pieceBytes, entry.chunk.storedBytes) : entry.chunk.storedBytes
            return (low && queue.contains { $0.priority == .high }, end)
        }
    }

    /// Fetches `entry`; may take the next chunk as `ahead` (its request already sent).
    func fetch(_ entry: Entry, client: HTTPClient, ahead: inout Entry?) {
        defer { condition.withLock { wakeReserveIfIdleLocked() } }
        let chunk = entry.chunk
        if entry.memory == nil, let piece = reserve?.take(count: chunk.storedBytes) {
            entry.memory = piece.memory
            entry.mapping = piece.mapping
            entry.trim = piece.trim
            condition.withLock { counters.chunksFromReserve += 1 }
        }
        if entry.memory == nil {
            // Allocated outside the lock: faulting in a chunk's pages takes milliseconds.
            do {
                let memory = try SharedMemoryFile(name: "hydra-chunk-\(chunk.sha256.prefix(16))", count: chunk.storedBytes)
                entry.mapping = try memory.map(writable: true, populate: true)
                entry.memory = memory
            } catch {
                condition.withLock { failLocked(entry, "cannot allocate shared memory for chunk \(chunk.sha256): \(error)") }
                return
            }
        }
        let remotes = configuration.remotes
        var backoffSeconds = configuration.retryInitialSeconds
        var lastProblem = ""
        while true {
            // Receive the rest of the chunk, piece by piece, resuming after failures.
            while entry.received < chunk.storedBytes {
                let step = nextStep(entry)
                if step.yield {
                    condition.withLock {
                        entry.state = .queued
                        queue.append(entry)
                        condition.broadcast()
                    }
                    return
                }
                let remote = remotes[entry.remoteIndex % remotes.count]
                let end = step.end
                let target = UnsafeMutableRawBufferPointer(rebasing: entry.mapping!.mutableBytes[entry.received..<end])
                let pipelineNext = { [self] in
                    guard ahead == nil, entry.priority == .high, let next = nextEntry(wait: false, highOnly: true) else { return }
                    ahead = next
                    next.requestPipelined = client.pipeline(chunkURL(next), range: next.received...(next.chunk.storedBytes - 1))
                }
                // A pipelined request is lost with the connection it went out on (a failure
                // before this fetch closes it): then it is asked for again.
                let pipelined = entry.requestPipelined && client.pipelinedRequests > 0
                entry.requestPipelined = false
                let result = pipelined
                    ? client.transferPipelined(into: target, digest: entry.digest, afterHead: pipelineNext)
                    : client.transfer(chunkURL(entry), range: entry.received...(end - 1), into: target, digest: entry.digest,
                                      afterHead: pipelineNext)
                entry.received += result.count
                // The connection closed before a pipelined answer began (the server hung up after
                // the last one): asked again at once on a fresh connection, as a stale keep-alive is.
                if pipelined && result.status == 0 && result.count == 0 { continue }
                let problem = result.failure ?? (result.count == 0 ? "empty response" : nil)
                condition.withLock { counters.bytesFetched += result.count; if problem != nil { counters.transferErrors += 1 } }
                guard let problem else { backoffSeconds = configuration.retryInitialSeconds; continue }
                lastProblem = "\(remote): \(problem)"
                logger.warning("chunk transfer failed; retrying", metadata: ["chunk": "\(chunk.sha256)", "received": "\(entry.received)", "problem": "\(lastProblem)"])
                if DispatchTime.now().uptimeNanoseconds + UInt64(backoffSeconds * 1e9) > entry.deadlineNanoseconds {
                    condition.withLock {
                        failLocked(entry, "could not fetch chunk \(chunk.sha256) (\(entry.received) of \(chunk.storedBytes) bytes received) "
                                   + "within \(configuration.orderTimeoutSeconds) s; last error: \(lastProblem)")
                    }
                    return
                }
                Thread.sleep(forTimeInterval: backoffSeconds)
                backoffSeconds = min(backoffSeconds * 2, configuration.retryMaxSeconds)
                entry.remoteIndex += 1
                if condition.withLock({ stopped }) { return }
            }
            // Every byte arrived: the digest was computed as they streamed in.
            let actual = entry.digest.finalizeHex()
            if actual == entry.expected.hex { break }
            entry.verificationFailures += 1
            let remote = remotes[entry.remoteIndex % remotes.count]
            logger.error("chunk failed verification; refetching from the next remote",
                         metadata: ["chunk": "\(chunk.sha256)", "remote": "\(remote)", "expected": "\(entry.expected)", "actual": "\(actual)"])
            let exhausted = entry.verificationFailures >= configuration.verificationAttemptsPerRemote * remotes.count
            condition.withLock {
                counters.verificationFailures += 1
                if exhausted {
                    failLocked(entry, "chunk \(chunk.sha256) failed verification \(entry.verificationFailures) times "
                               + "(remotes: \(remotes.joined(separator: ", "))): the bytes served have \(entry.expected.algorithm) \(actual), not \(entry.expected.hex)")
                }
            }
            if exhausted { return }
            entry.received = 0
            entry.digest = IncrementalDigest(entry.expected.algorithm)
            entry.remoteIndex += 1
        }
        // Seal: from here on nobody can change these bytes. Our writable view, the last way in,
        // is dropped after publishing (unmapping 32 MiB of pages takes ~2 ms): by the reserve
        // thread once fetches are done, or here.
        do {
            try entry.trim?.wait()
            entry.trim = nil
            try entry.memory!.sealReadOnly()
        } catch {
            condition.withLock { failLocked(entry, "cannot shrink or seal chunk \(chunk.sha256)'s memory: \(error)") }
            return
        }
        let mapping = entry.mapping
        entry.mapping = nil
        condition.withLock {
            publishLocked(entry)
            lastFetchEndNanoseconds = DispatchTime.now().uptimeNanoseconds
            if reserve != nil, let mapping { retiredMappings.append(mapping) }
        }
        if reserve == nil { withExtendedLifetime(mapping) {} }
    }

    /// Wakes the reserve thread once nothing is queued or fetching (it refills a while after the
    /// last fetch), whether that fetch published, failed or stepped aside. Before, only a publish
    /// woke it — each one, to find fetches still running — so after a prefetch whose last
    /// fetches failed the reserve stayed short until the next order.
    func wakeReserveIfIdleLocked() {
        guard reserve != nil, queue.isEmpty, !entries.values.contains(where: { $0.state == .fetching }) else { return }
        condition.broadcast()
    }

    /// Where `entry`'s chunk is fetched from now.
    func chunkURL(_ entry: Entry) -> String {
        "\(configuration.remotes[entry.remoteIndex % configuration.remotes.count])/v1/chunks/\(entry.chunk.sha256)"
    }

    /// Blocks until the reserve thread's first fill is done (up to the target, or what the
    /// capacity leaves); `progress` sees the bytes ready every 0.2 s.
    public func fillReserve(progress: (Int) -> Void = { _ in }) {
        guard let reserve else { return }
        while !condition.withLock({
            if !reserveFilled && !stopped { _ = condition.wait(until: Date().addingTimeInterval(0.2)) }
            return reserveFilled || stopped
        }) {
            progress(reserve.readyBytes)
        }
    }

    /// The reserve's first mix: the chunk sizes of every model in the first remote store that
    /// lists them (at most 256 manifests). A store that cannot be asked leaves the default mix.
    /// The manifests are kept: an order for one of those models then only checks that its
    /// manifest is current (`currentManifest`).
    func expectStoredChunks(_ reserve: SharedMemoryReserve) {
        for remote in configuration.remotes {
            let fetcher = RemoteFetcher(baseURL: remote, token: configuration.token, caFile: configuration.caFile)
            do {
                for name in try fetcher.modelNames().prefix(256) {
                    let document = try fetcher.manifestDocument(name)
                    condition.withLock { if manifests[name] == nil { manifests[name] = document } }
                    for chunk in Set(document.manifest.chunks.map { ChunkSize(sha256: $0.sha256, bytes: $0.storedBytes) }) {
                        reserve.expect(chunk.bytes)
                    }
                }
                return
            } catch {
                logger.info("cannot learn the reserve's mix from this store", metadata: ["remote": "\(remote)", "problem": "\(error)"])
            }
        }
    }

    /// The reserve thread: once nothing has been queued or fetching for
    /// `reserveRefillDelaySeconds`, drops the fetch threads' retired writable views, then
    /// refills (or rebalances) the reserve one piece at a time.
    func refillLoop() {
        guard let reserve else { return }
        expectStoredChunks(reserve)
        let delay = UInt64(max(configuration.reserveRefillDelaySeconds, 0) * 1e9)
        while true {
            let work: (retired: [MappedMemory], room: Int)? = condition.withLock {
                while !stopped {
                    if !queue.isEmpty || entries.values.contains(where: { $0.state == .fetching }) { condition.wait(); continue }
                    let now = DispatchTime.now().uptimeNanoseconds
                    guard now < lastFetchEndNanoseconds + delay else { break }
                    _ = condition.wait(until: Date().addingTimeInterval(Double(lastFetchEndNanoseconds + delay - now) / 1e9))
                }
                guard !stopped else { return nil }
                defer { retiredMappings.removeAll() }
                return (retiredMappings, configuration.capacityBytes - usedBytes)
            }
            guard let work else { return }
            if !work.retired.isEmpty { continue }  // unmapped as `work` goes; then look again
            if !reserve.addPiece(limit: work.room) {
                // Full (or memory refused): look again after the next event, or in a second.
                reserve.settle()
                condition.withLock {
                    if !reserveFilled { reserveFilled = true; condition.broadcast() }
                    if !stopped { _ = condition.wait(until: Date().addingTimeInterval(1)) }
                }
            }
        }
    }
}

/// A chunk counted once however many times a manifest names it.
private struct ChunkSize: Hashable {
    let sha256: String
    let bytes: Int
}
