import Foundation
import HydraTestSupport
import Testing
import HydraFormat
import HydraSystem
@testable import HydraStore

@Suite(.serialized) struct RemoteFetcherTests {
    func fetchStage(_ served: ServedStore, stage: Int, pp: Int, token: String? = nil,
                    verification: ChunkVerification = .fast) async throws -> [(Manifest.Chunk, [UInt8])] {
        let port = served.port
        return try await offPool { try Self.fetchStageBlocking(port: port, stage: stage, pp: pp, token: token, verification: verification) }
    }

    static func fetchStageBlocking(port: Int, stage: Int, pp: Int, token: String?,
                                   verification: ChunkVerification = .fast) throws -> [(Manifest.Chunk, [UInt8])] {
        let fetcher = RemoteFetcher(baseURL: "http://127.0.0.1:\(port)", token: token, connections: 3, verification: verification)
        let manifest = try fetcher.manifest("m")
        let chunks = manifest.stagePlans.first { $0.pp == pp }!.stages[stage].chunks.map { manifest.chunks[$0] }
        let buffers = chunks.map { SharedBuffer(count: $0.storedBytes) }
        _ = try fetcher.fetch(chunks, into: buffers.map(\.baseAddress))
        return zip(chunks, buffers).map { ($0, Array(UnsafeRawBufferPointer($1.bytes))) }
    }

    @Test func aStageFetchDeliversExactlyTheStagesChunks() async throws {
        try await ServedStore.with(model: "falcon-40b-tiny") { served in
            for (stage, pp) in [(0, 1), (0, 2), (1, 2), (3, 4)] {
                let fetched = try await fetchStage(served, stage: stage, pp: pp)
                let expected = try served.entry.stageChunks(stage, of: pp).map(\.chunk)
                #expect(fetched.map(\.0) == expected, "stage \(stage) of \(pp)")
                for (chunk, bytes) in fetched { #expect(bytes == served.chunkBytes(chunk.sha256)) }
            }
        }
    }

    @Test func aCorruptedChunkOnTheStoreIsRejected() async throws {
        try await ServedStore.with { served in
            let victim = served.entry.manifest.chunks[2]
            let path = served.entry.store.chunkPath(victim.sha256)
            var bytes = served.chunkBytes(victim.sha256)
            bytes[17] ^= 0x40
            _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
            // Each policy checks with what it names: XXH3 from the manifest by default, SHA-256 on request.
            for (verification, algorithm) in [(ChunkVerification.fast, "XXH3-64"), (.sha256, "SHA-256")] {
                let error = await #expect(throws: FormatError.self) { _ = try await fetchStage(served, stage: 0, pp: 1, verification: verification) }
                let failure = try #require(error)
                #expect(failure.file.hasSuffix(victim.sha256) && failure.problem.contains("failed verification"))
                #expect(failure.problem.contains(algorithm), "\(verification): \(failure.problem)")
            }
            // `none` checks nothing: the corrupt bytes come through (it exists to measure the checks).
            let unchecked = try await fetchStage(served, stage: 0, pp: 1, verification: .none)
            #expect(unchecked.first { $0.0 == victim }?.1 == bytes)
        }
    }

    @Test func tokensAndMissingModels() async throws {
        try await ServedStore.with(token: "t0ken") { served in
            let url = "http://127.0.0.1:\(served.port)"
            let refused = try #require(await #expect(throws: FormatError.self) { _ = try await offPool { try RemoteFetcher(baseURL: url).manifest("m") } })
            #expect(refused.problem.contains("401"))
            #expect(try await offPool { try RemoteFetcher(baseURL: url, token: "t0ken").manifest("m") } == served.entry.manifest)
            let missing = try #require(await #expect(throws: FormatError.self) { _ = try await offPool { try RemoteFetcher(baseURL: url, token: "t0ken").manifest("nope") } })
            #expect(missing.problem.contains("404"))
            let fetched = try await fetchStage(served, stage: 1, pp: 2, token: "t0ken")
            #expect(!fetched.isEmpty)
        }
        // Nothing listening: a clear error, not a hang.
        let closed = try #require(throws: HTTPClient.Failure.self) { _ = try RemoteFetcher(baseURL: "http://127.0.0.1:9").manifest("m") }
        #expect(closed.message.lowercased().contains("connect"))
    }
}

@Suite struct EmulatedLinkTests {
    @Test func aLinkLimitHoldsFetchesBelowItsRate() async throws {
        try await ServedStore.with(model: "llama3-tiny") { served in
            let port = served.port
            // 0.02 Gbit/s = 2.5 MB/s, burst 64 kB: ~1.1 MB of chunks cannot arrive in under ~0.4 s.
            let seconds = try await offPool { () -> Double in
                let fetcher = RemoteFetcher(baseURL: "http://127.0.0.1:\(port)", connections: 4,
                                            link: SharedTokenBucket(gigabitsPerSecond: 0.02))
                let manifest = try fetcher.manifest("m")
                let buffers = manifest.chunks.map { SharedBuffer(count: $0.storedBytes) }
                return try fetcher.fetch(manifest.chunks, into: buffers.map(\.baseAddress)).seconds
            }
            let bytes = served.entry.manifest.chunks.reduce(0) { $0 + $1.storedBytes }
            let floor = Double(bytes - 65_536) / 2_500_000
            #expect(seconds >= floor * 0.95, "\(bytes) bytes in \(seconds) s at a 2.5 MB/s link (floor \(floor) s)")
        }
    }
}

@Suite(.serialized) struct TLSTests {
    @Test func anHTTPSStoreServesTrustedClientsAndRefusesUntrustedOnes() async throws {
        try await ServedStore.with(model: "llama3-tiny", tls: true) { served in
            let url = "https://127.0.0.1:\(served.port)"
            // Trusted through --ca-file: the manifest and a whole stage arrive, verified.
            let (manifest, bytes) = try await offPool { () -> (Manifest, Int) in
                let fetcher = RemoteFetcher(baseURL: url, caFile: TestFixtures.tlsCertificate)
                let manifest = try fetcher.manifest("m")
                let buffers = manifest.chunks.map { SharedBuffer(count: $0.storedBytes) }
                return (manifest, try fetcher.fetch(manifest.chunks, into: buffers.map(\.baseAddress)).bytes)
            }
            #expect(manifest == served.entry.manifest && bytes == manifest.chunks.reduce(0) { $0 + $1.storedBytes })
            // Without trusting the certificate: a clear error, nothing fetched.
            let refused = try #require(await #expect(throws: HTTPClient.Failure.self) { _ = try await offPool { try RemoteFetcher(baseURL: url).manifest("m") } })
            #expect(refused.message.lowercased().contains("certificate"), "\(refused.message)")
            // Plain HTTP to the TLS port is not served.
            await #expect(throws: (any Error).self) { _ = try await offPool { try RemoteFetcher(baseURL: "http://127.0.0.1:\(served.port)").manifest("m") } }
            // A node cache fetches over https too.
            var configuration = NodeCache.Configuration(node: "tls", capacityBytes: 1 << 30, remotes: [url])
            configuration.caFile = TestFixtures.tlsCertificate
            let cache = NodeCache(configuration: configuration)
            defer { cache.shutdown() }
            let received = try await offPool { () -> Int in
                let subscription = try cache.attach(CacheOrder(model: "m"))
                defer { subscription.cancel() }
                var count = 0
                while case .chunk? = subscription.next() { count += 1 }
                return count
            }
            #expect(received == served.entry.manifest.chunks.count)
        }
    }
}
