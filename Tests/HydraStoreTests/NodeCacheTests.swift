import Foundation
import HydraTestSupport
import Logging
import Testing
import HydraFormat
import HydraSystem
@testable import HydraStore

@Suite(.serialized) struct NodeCacheTests {
    func expectExact(_ received: [Int: [UInt8]], _ indices: [Int], _ served: ServedStore, manifest: Manifest? = nil) {
        #expect(Set(received.keys) == Set(indices) && received.count == indices.count)
        for index in indices {
            let chunk = (manifest ?? served.entry.manifest).chunks[index]
            #expect(received[index] == served.chunkBytes(chunk.sha256), "chunk \(index)")
        }
    }

    /// A model re-converted on the store under the same name: the next order gets the new
    /// manifest and its chunks (the cache checks what it knows with the store's ETag), whether
    /// it knew the old one from an earlier order or learned it with the reserve's mix.
    @Test(arguments: [false, true]) func aManifestChangedOnTheStoreIsUsedByTheNextOrder(learnedAtStart: Bool) async throws {
        try await ServedStore.with(model: "llama2-tiny") { served in
            let node = try CachedNode(remotes: [served.port]) {
                if learnedAtStart { $0.reserveBytes = 256 << 10; $0.reservePieceBytes = 64 << 10 }
            }
            defer { node.stop() }
            if learnedAtStart {
                node.cache.fillReserve()
                #expect(node.cache.condition.withLock { node.cache.manifests["m"]?.bytes } != nil, "learned with the reserve's mix")
            } else {
                expectExact(try await node.receiveAll(CacheOrder(model: "m")), Array(served.entry.manifest.chunks.indices), served)
            }
            let changed = try ServedStore.convert("llama3-tiny", as: "m", into: served.root).manifest
            #expect(Set(changed.chunks.map(\.sha256)).isDisjoint(with: served.entry.manifest.chunks.map(\.sha256)))
            let received = try await node.receiveAll(CacheOrder(model: "m", stage: 1, pp: 2))
            expectExact(received, try changed.chunkIndices(stage: 1, of: 2, complement: false), served, manifest: changed)
            #expect(node.cache.status().failedChunks == 0)
        }
    }

    /// The store unreachable: an order for a model whose manifest and chunks the cache holds is
    /// still served (the manifest it knows stays in use). The store back without the model: the
    /// order fails with the store's answer.
    @Test func aKnownManifestServesWhileTheStoreIsDownNotOnceTheModelIsGone() async throws {
        try await ServedStore.with { served in
            let relay = try TCPRelay(targetPort: served.port)
            let node = try CachedNode(remotes: [relay.port])
            defer { node.stop() }
            let all = Array(served.entry.manifest.chunks.indices)
            expectExact(try await node.receiveAll(CacheOrder(model: "m")), all, served)
            relay.kill()
            expectExact(try await node.receiveAll(CacheOrder(model: "m")), all, served)
            try relay.start()
            try FileManager.default.removeItem(atPath: served.entry.store.manifestPath("m"))
            let failure = try #require(await #expect(throws: NodeCacheClient.Failure.self) {
                _ = try await node.receiveAll(CacheOrder(model: "m"))
            })
            #expect(failure.message.contains("404"), "\(failure.message)")
        }
    }

    @Test func aStageFetchDeliversExactlyTheStagesChunks() async throws {
        try await ServedStore.with(model: "falcon-40b-tiny") { served in
            let node = try CachedNode(remotes: [served.port])
            defer { node.stop() }
            let manifest = served.entry.manifest
            for order in [CacheOrder(model: "m", stage: 3, pp: 4), CacheOrder(model: "m", stage: 1, pp: 2),
                          CacheOrder(model: "m", stage: 1, pp: 2, complement: true, priority: .low)] {
                let received = try await node.receiveAll(order)
                expectExact(received, try manifest.chunkIndices(stage: order.stage, of: order.pp, complement: order.complement), served)
            }
            // Stage 1 of 2 plus its complement is the whole model: nothing was fetched twice. (The
            // cache notices a worker's hang-up on its connection thread: give it a moment.)
            for _ in 0..<200 where node.cache.status().attachedWorkers > 0 { try await Task.sleep(for: .milliseconds(10)) }
            let status = node.cache.status()
            #expect(status.cachedChunks.count == manifest.chunks.count)
            #expect(status.bytesFetched == manifest.chunks.reduce(0) { $0 + $1.storedBytes })
            #expect(status.attachedWorkers == 0 && status.transferErrors == 0)
        }
    }

    /// Chunks land in the reserve's pre-faulted memory, in pieces of their size class, when it was
    /// filled in the mix of the store's manifests; it stays within the capacity and refills once
    /// the cache has been idle for the refill delay.
    @Test func chunksLandInTheReserveWhichRefillsWhenIdle() async throws {
        try await ServedStore.with(model: "falcon-40b-tiny") { served in
            let manifest = served.entry.manifest
            let classes = SharedMemoryReserve(largestPieceBytes: 64 << 10, targetBytes: 0)
            let distinct = Dictionary(manifest.chunks.map { ($0.sha256, $0.storedBytes) }, uniquingKeysWith: { a, _ in a })
            let suited = distinct.values.filter { classes.pieceBytes(for: $0) != nil }
            let reserveBytes = suited.reduce(0) { $0 + classes.pieceBytes(for: $1)! } + classes.classes.count * (64 << 10)
            #expect(suited.count > 0 && Set(suited.map { classes.pieceBytes(for: $0)! }).count > 1, "chunks of several classes")

            let delay = 2.0  // far above any pause of this test thread between the last chunk and the checks below
            let node = try CachedNode(remotes: [served.port]) {
                $0.reserveBytes = reserveBytes
                $0.reservePieceBytes = 64 << 10
                $0.reserveRefillDelaySeconds = delay
            }
            defer { node.stop() }
            node.cache.fillReserve()
            let filled = node.cache.status().reservedBytes
            #expect(filled <= reserveBytes && filled > reserveBytes - (64 << 10))
            let received = try await node.receiveAll(CacheOrder(model: "m"))
            expectExact(received, Array(manifest.chunks.indices), served)
            let landed = ContinuousClock.now
            #expect(node.cache.status().chunksFromReserve == suited.count)
            #expect(node.cache.status().reservedBytes < filled)
            for _ in 0..<700 where node.cache.status().reservedBytes < filled { try await Task.sleep(for: .milliseconds(10)) }
            #expect(node.cache.status().reservedBytes >= filled)
            #expect(ContinuousClock.now - landed > .seconds(delay * 0.8), "refilled only after the delay")

            // The reserve never takes what the capacity does not leave.
            let small = try CachedNode(remotes: [served.port], capacityBytes: 256 << 10) { $0.reserveBytes = reserveBytes; $0.reservePieceBytes = 64 << 10 }
            defer { small.stop() }
            small.cache.fillReserve()
            #expect(small.cache.status().reservedBytes <= 256 << 10 && small.cache.status().reservedBytes > 0)
        }
    }

    /// Pieces follow demand: filled all of the largest class before anything is known, a reserve
    /// asked for small chunks trades big pieces for small ones.
    @Test func theReserveMixFollowsDemand() throws {
        let reserve = SharedMemoryReserve(largestPieceBytes: 64 << 10, targetBytes: 512 << 10)
        while reserve.addPiece(limit: 1 << 30) {}
        #expect(reserve.readyBytes == 512 << 10)
        #expect(reserve.take(count: 40 << 10) != nil && reserve.take(count: 10 << 10) == nil)  // no 16 KiB piece yet
        #expect(reserve.pieceBytes(for: 70 << 10) == nil && reserve.pieceBytes(for: 4 << 10) == nil)
        #expect(reserve.pieceBytes(for: 33 << 10) == 64 << 10 && reserve.pieceBytes(for: 10 << 10) == 16 << 10)
        for _ in 0..<400 { _ = reserve.take(count: 10 << 10) }  // demand shifts to the 16 KiB class
        var rounds = 0
        while reserve.addPiece(limit: 1 << 30) && rounds < 1000 { rounds += 1 }
        let taken = (0..<40).compactMap { _ in reserve.take(count: 12 << 10) }
        #expect(taken.count >= 20, "\(taken.count) small pieces after rebalancing")
        // Each taken piece shrinks to its chunk on the trimming thread while bytes land below.
        for piece in taken {
            let chunk = UnsafeMutableRawBufferPointer(rebasing: piece.mapping.mutableBytes[..<(12 << 10)])
            chunk.initializeMemory(as: UInt8.self, repeating: 7)
            try piece.trim?.wait()
            var info = stat()
            #expect(fstat(piece.memory.fd, &info) == 0 && info.st_size == 12 << 10 && piece.memory.count == 12 << 10)
            #expect(chunk.allSatisfy { $0 == 7 })
        }
    }

    /// What a worker receives cannot be written, resized or mapped writable, by it or anyone.
    @Test(arguments: [0, 1 << 20]) func receivedChunksAreSealedReadOnly(reserveBytes: Int) async throws {
        try await ServedStore.with { served in
            let node = try CachedNode(remotes: [served.port]) { $0.reserveBytes = reserveBytes; $0.reservePieceBytes = 64 << 10 }
            defer { node.stop() }
            node.cache.fillReserve()
            try await offPool {
                let attachment = try NodeCacheClient.attach(socketPath: node.socketPath, order: CacheOrder(model: "m"))
                defer { attachment.close() }
                while let chunk = try attachment.next() {
                    // The worker's read-only view cannot be made writable.
                    #expect(mprotect(chunk.memory.baseAddress, chunk.memory.count, PROT_READ | PROT_WRITE) == -1)
                    // Nor can the cache's own descriptor (read-write) write, map writable or resize.
                    let file = try #require(node.cache.condition.withLock { node.cache.entries[chunk.chunk.sha256]?.memory })
                    let before = Array(chunk.memory.bytes)
                    #expect(mmap(nil, file.count, PROT_READ | PROT_WRITE, MAP_SHARED, file.fd, 0) == MAP_FAILED)
                    #expect(pwrite(file.fd, [UInt8(1)], 1, 0) == -1)
                    #expect(ftruncate(file.fd, off_t(file.count + 4096)) == -1 && ftruncate(file.fd, 0) == -1)
                    #expect(Array(chunk.memory.bytes) == before)
                }
            }
        }
    }

    @Test func aCorruptedChunkIsRefetchedFromAnotherRemoteAndNeverPublished() async throws {
        try await ServedStore.with { good in
            try await ServedStore.with { bad in
                let victim = bad.entry.manifest.chunks[2]
                var bytes = bad.chunkBytes(victim.sha256)
                bytes[100] ^= 0x01
                _ = FileManager.default.createFile(atPath: bad.entry.store.chunkPath(victim.sha256), contents: Data(bytes))

                // The corrupt remote first: the chunk is refetched from the good one.
                let both = try CachedNode(remotes: [bad.port, good.port])
                defer { both.stop() }
                let received = try await both.receiveAll(CacheOrder(model: "m"))
                expectExact(received, Array(good.entry.manifest.chunks.indices), good)
                #expect(both.cache.status().verificationFailures >= 1)

                // Only the corrupt remote: the order fails naming the chunk and the check that
                // caught it (the manifest's XXH3 by default, SHA-256 when asked); it is never cached.
                for (verification, algorithm) in [(ChunkVerification.fast, "XXH3-64"), (.sha256, "SHA-256")] {
                    let alone = try CachedNode(remotes: [bad.port], verification: verification)
                    defer { alone.stop() }
                    let failure = try #require(await #expect(throws: NodeCacheClient.Failure.self) {
                        _ = try await alone.receiveAll(CacheOrder(model: "m"))
                    })
                    #expect(failure.message.contains(victim.sha256) && failure.message.contains("failed verification"))
                    #expect(failure.message.contains(algorithm), "\(verification): \(failure.message)")
                    let status = alone.cache.status()
                    #expect(!status.cachedChunks.contains(victim.sha256) && status.failedChunks == 1)
                }
            }
        }
    }

    @Test func theStoreKilledMidTransferAndRestartedLosesNothing() async throws {
        try await ServedStore.with(model: "llama3-tiny") { served in
            let relay = try TCPRelay(targetPort: served.port)
            // 0.02 Gbit/s = 2.5 MB/s: the ~1 MB model takes ~0.4 s, so the kill lands mid-transfer.
            let node = try CachedNode(remotes: [relay.port], nicGbps: 0.02)
            defer { node.stop() }
            let path = node.socketPath
            let transfer = Task { try await offPool { () -> [Int: [UInt8]] in
                let (attachment, chunks) = try CachedNode.receiveAll(path, CacheOrder(model: "m"))
                attachment.close()
                return chunks
            } }
            // Kill once the first pieces have landed (not after a fixed delay: on a loaded
            // machine the fetch may not have started yet, and then nothing is interrupted).
            for _ in 0..<500 where node.cache.status().bytesFetched == 0 { try await Task.sleep(for: .milliseconds(10)) }
            #expect(node.cache.status().bytesFetched < served.entry.manifest.chunks.reduce(0) { $0 + $1.storedBytes })
            relay.kill()
            try await Task.sleep(for: .milliseconds(500))
            try relay.start()
            let received = try await transfer.value
            expectExact(received, Array(served.entry.manifest.chunks.indices), served)
            let status = node.cache.status()
            #expect(status.transferErrors > 0, "the kill should have interrupted a transfer")
            #expect(status.chunksPublished == served.entry.manifest.chunks.count)
        }
    }

    @Test func theStoreGoneForGoodFailsThePrefetchWithinItsBound() async throws {
        try await ServedStore.with { served in
            let relay = try TCPRelay(targetPort: served.port)
            let node = try CachedNode(remotes: [relay.port], timeoutSeconds: 1.5)
            defer { node.stop() }
            _ = try await node.receiveAll(CacheOrder(model: "m", stage: 0, pp: 2))  // the manifest is known now
            relay.kill()
            let started = Date()
            let failure = try #require(await #expect(throws: NodeCacheClient.Failure.self) {
                _ = try await node.receiveAll(CacheOrder(model: "m", stage: 1, pp: 2))
            })
            let seconds = Date().timeIntervalSince(started)
            #expect(seconds < 6, "failed after \(seconds) s with a 1.5 s bound")
            #expect(failure.message.contains("could not fetch chunk") && failure.message.contains("within 1.5 s"))
        }
    }

    /// The reserve refills after the last fetch however it ended: here every fetch of a prefetch
    /// fails (the store gone) and no worker is attached, whose leaving would wake the cache too.
    @Test func theReserveRefillsAfterFetchesThatFailed() async throws {
        try await ServedStore.with { served in
            let relay = try TCPRelay(targetPort: served.port)
            let chunks = Set(served.entry.manifest.chunks.map(\.sha256)).count
            let node = try CachedNode(remotes: [relay.port], timeoutSeconds: 1) {
                $0.reserveBytes = 4 << 20
                $0.reservePieceBytes = 64 << 10
                $0.reserveRefillDelaySeconds = 0.1
            }
            defer { node.stop() }
            node.cache.fillReserve()  // learns the model's manifest from the store first
            let filled = node.cache.status().reservedBytes
            relay.kill()
            try node.cache.prefetch(CacheOrder(model: "m"))
            for _ in 0..<1000 where node.cache.status().failedChunks < chunks { try await Task.sleep(for: .milliseconds(10)) }
            #expect(node.cache.status().failedChunks == chunks)
            #expect(node.cache.status().chunksFromReserve > 0, "the failed fetches took reserve pieces")
            for _ in 0..<500 where node.cache.status().reservedBytes < filled { try await Task.sleep(for: .milliseconds(10)) }
            #expect(node.cache.status().reservedBytes >= filled)
        }
    }

    @Test func capacityPressureEvictsOnlyUnattachedChunks() async throws {
        try await ServedStore.with { served in
            let other = try ServedStore.convert("opt-tiny", as: "n", into: served.root)
            let manifest = served.entry.manifest
            let size = { (chunks: [Manifest.Chunk]) in chunks.reduce(0) { $0 + $1.storedBytes } }
            let stage1 = Set(try manifest.chunkIndices(stage: 1, of: 2).map { manifest.chunks[$0].sha256 })
            let stage0 = Set(try manifest.chunkIndices(stage: 0, of: 2).map { manifest.chunks[$0].sha256 }).subtracting(stage1)
            // Room for both models but one byte: ordering "n" must evict something of "m".
            let node = try CachedNode(remotes: [served.port], capacityBytes: size(manifest.chunks) + size(other.manifest.chunks) - 1)
            defer { node.stop() }
            let path = node.socketPath
            let held = try await offPool { try CachedNode.receiveAll(path, CacheOrder(model: "m", stage: 1, pp: 2)).0 }
            try node.cache.prefetch(CacheOrder(model: "m", stage: 0, pp: 2))
            try await node.waitCached(stage0)
            _ = try await node.receiveAll(CacheOrder(model: "n"))
            var cached = Set(node.cache.status().cachedChunks)
            #expect(stage1.isSubset(of: cached), "an attached chunk was evicted")
            #expect(!stage0.isSubset(of: cached) && node.cache.status().evictions >= 1)
            #expect(node.cache.status().usedBytes <= node.cache.configuration.capacityBytes)

            // With every byte pinned, an order that does not fit fails clearly; pinned chunks stay.
            let tight = try CachedNode(remotes: [served.port], capacityBytes: size(stage1.map { hash in manifest.chunks.first { $0.sha256 == hash }! }))
            defer { tight.stop() }
            let tightPath = tight.socketPath
            let pinned = try await offPool { try CachedNode.receiveAll(tightPath, CacheOrder(model: "m", stage: 1, pp: 2)).0 }
            let full = try #require(await #expect(throws: NodeCacheClient.Failure.self) {
                _ = try await tight.receiveAll(CacheOrder(model: "m", stage: 0, pp: 2))
            })
            #expect(full.message.contains("node cache full"))
            cached = Set(tight.cache.status().cachedChunks)
            #expect(stage1.isSubset(of: cached))
            pinned.close()
            held.close()
        }
    }

    @Test func lowPriorityFetchesYieldToHighPriorityOnes() async throws {
        try await ServedStore.with { served in
            // One connection at 2.5 MB/s: the low-priority complement alone takes a few tenths of a second.
            let node = try CachedNode(remotes: [served.port], nicGbps: 0.02, connections: 1)
            defer { node.stop() }
            let manifest = served.entry.manifest
            let low = CacheOrder(model: "m", stage: 1, pp: 2, complement: true, priority: .low)
            let lowHashes = Set(try manifest.chunkIndices(stage: 1, of: 2, complement: true).map { manifest.chunks[$0].sha256 })
            try node.cache.prefetch(low)
            try await Task.sleep(for: .milliseconds(30))
            _ = try await node.receiveAll(CacheOrder(model: "m", stage: 1, pp: 2, priority: .high))
            let cachedWhenHighDone = Set(node.cache.status().cachedChunks)
            #expect(!lowHashes.isSubset(of: cachedWhenHighDone), "the high-priority order waited for the whole low-priority one")
            try await node.waitCached(lowHashes)  // and the low-priority order still completes
        }
    }

    @Test func thirtyTwoWorkersAttachingAtOnceAllReceiveEveryChunk() async throws {
        try await ServedStore.with { served in
            let node = try CachedNode(remotes: [served.port])
            defer { node.stop() }
            let path = node.socketPath
            let indices = Array(served.entry.manifest.chunks.indices)
            let hashes = served.entry.manifest.chunks.map(\.sha256)
            let results = try await offPool { () -> [Bool] in
                let outcomes = LockedBox([Bool](repeating: false, count: 32))
                DispatchQueue.concurrentPerform(iterations: 32) { worker in
                    guard let (attachment, chunks) = try? CachedNode.receiveAll(path, CacheOrder(model: "m")) else { return }
                    attachment.close()
                    let exact = chunks.count == indices.count && indices.allSatisfy { SHA256Hasher.hex(chunks[$0]!) == hashes[$0] }
                    outcomes.withValue { $0[worker] = exact }
                }
                return outcomes.value
            }
            #expect(results.allSatisfy { $0 }, "\(results.filter { !$0 }.count) of 32 workers missed chunks")
            #expect(node.cache.status().chunksPublished == indices.count)  // fetched once, shared by all
        }
    }

    @Test func badRequestsGetClearErrorsAndTheCacheKeepsServing() async throws {
        try await ServedStore.with { served in
            let node = try CachedNode(remotes: [served.port])
            defer { node.stop() }
            let path = node.socketPath
            let unknown = try #require(await #expect(throws: (any Error).self) {
                _ = try await node.receiveAll(CacheOrder(model: "nope"))
            })
            #expect("\(unknown)".contains("404"))
            let badStage = try #require(await #expect(throws: NodeCacheClient.Failure.self) {
                _ = try await node.receiveAll(CacheOrder(model: "m", stage: 5, pp: 2))
            })
            #expect(badStage.message.contains("'stage' must be 0…1"))
            // A name with quotes and a line break comes back intact inside the error's JSON.
            let oddName = "a\"b\nc\\"
            let odd = try #require(await #expect(throws: NodeCacheClient.Failure.self) { _ = try await node.receiveAll(CacheOrder(model: oddName)) })
            #expect(odd.message.contains("\(oddName): invalid model name"))
            let garbage: [(String, String)] = [
                ("{not json", "invalid JSON"),
                ("[2]", "expected an object at top level"),
                ("{\"version\":2,\"op\":\"explode\"}", "'explode' at op is not one of 'attach', 'prefetch', 'status'"),
                ("{\"version\":\"2\",\"op\":\"status\"}", "expected an integer at version"),
                ("{\"version\":2,\"op\":\"attach\",\"model\":\"m\",\"pp\":1e300}", "expected an integer at pp"),
                ("{\"version\":9,\"op\":\"status\"}", "protocol version 9 is not supported"),
            ]
            for (frame, problem) in garbage {
                let reply = try await offPool { () -> CacheProtocol.Reply in
                    let connection = try FrameSocket.connect(to: path)
                    try connection.send(Array(frame.utf8))
                    return try CacheProtocol.Reply(parsing: try connection.receive()?.bytes ?? [])
                }
                #expect(reply.event == .error && reply.message?.contains(problem) == true, "reply to \(frame): \(reply)")
            }
            // A truncated frame (length says 100, 3 bytes sent, then hang-up) is survived too.
            try await offPool {
                let connection = try FrameSocket.connect(to: path)
                _ = [UInt8]([0, 0, 0, 100, 1, 2, 3]).withUnsafeBytes { write(connection.fd, $0.baseAddress, $0.count) }
            }
            let status = try await offPool { try NodeCacheClient.status(socketPath: path) }
            #expect(status.node == "n0" && status.attachedWorkers == 0)
        }
    }
}

@Suite struct UnixListenerTests {
    @Test func aLiveSocketIsNeverTakenOverButAStaleOneIs() throws {
        let path = NSTemporaryDirectory() + "hydra-listener-\(UUID().uuidString.prefix(8)).sock"
        defer { unlink(path) }
        do {
            let live = try UnixListener(path: path)
            let error = try #require(throws: SystemError.self) { _ = try UnixListener(path: path) }
            #expect(error.errno == EADDRINUSE)
            _ = live
        }
        // Its socket is closed but its file is left behind, as after a crash: the next one binds.
        #expect(FileManager.default.fileExists(atPath: path))
        let next = try UnixListener(path: path)
        next.shutdown()
    }
}
