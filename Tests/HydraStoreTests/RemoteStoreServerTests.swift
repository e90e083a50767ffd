import Foundation
import HydraTestSupport
import Hummingbird
import Logging
import Testing
import HydraFormat
import HydraSystem
@testable import HydraStore

@Suite(.serialized) struct RemoteStoreServerTests {
    @Test func modelsManifestAndWholeChunks() async throws {
        try await ServedStore.with { served in
            let models = try await TestHTTP.request(port: served.port, "/v1/models")
            #expect(models.status == 200 && String(decoding: models.body, as: UTF8.self) == "{\"models\":[\"m\"]}")
            let manifest = try await TestHTTP.request(port: served.port, "/v1/models/m/manifest")
            #expect(manifest.status == 200)
            #expect(try Manifest.decode(manifest.body, file: "remote") == served.entry.manifest)
            for chunk in served.entry.manifest.chunks {
                let response = try await TestHTTP.request(port: served.port, "/v1/chunks/\(chunk.sha256)")
                #expect(response.status == 200 && response.body == served.chunkBytes(chunk.sha256))
                #expect(response.headers["etag"] == "\"\(chunk.sha256)\"" && response.headers["accept-ranges"] == "bytes")
                #expect(SHA256Hasher.hex(response.body) == chunk.sha256)
            }
            let head = try await TestHTTP.request(port: served.port, "/v1/chunks/\(served.entry.manifest.chunks[0].sha256)", method: "HEAD")
            #expect(head.status == 200 && head.body.isEmpty && head.headers["content-length"] == String(served.entry.manifest.chunks[0].storedBytes))
        }
    }

    /// A manifest's ETag is the XXH3 of its bytes; `If-None-Match` naming it (or `*`, or its
    /// weak form) gets 304 and no body, any other tag the manifest; a re-conversion changes it.
    @Test func manifestsAnswerConditionalRequests() async throws {
        try await ServedStore.with { served in
            let path = "/v1/models/m/manifest"
            let first = try await TestHTTP.request(port: served.port, path)
            let tag = try #require(first.headers["etag"])
            #expect(tag == "\"xxh3-\(first.body.withUnsafeBytes { DigestAlgorithm.xxh3.hex($0) })\"")
            for header in [tag, "*", "W/\(tag)", "\"other\", \(tag)"] {
                let again = try await TestHTTP.request(port: served.port, path, headers: ["If-None-Match": header])
                #expect(again.status == 304 && again.body.isEmpty && again.headers["etag"] == tag, "\(header)")
            }
            let other = try await TestHTTP.request(port: served.port, path, headers: ["If-None-Match": "\"xxh3-0000000000000000\""])
            #expect(other.status == 200 && other.body == first.body)

            try ServedStore.convert("llama3-tiny", as: "m", into: served.root)
            let changed = try await TestHTTP.request(port: served.port, path, headers: ["If-None-Match": tag])
            #expect(changed.status == 200 && changed.body != first.body)
            #expect(changed.headers["etag"] != nil && changed.headers["etag"] != tag)
            #expect(try Manifest.decode(changed.body, file: "remote").chunks != served.entry.manifest.chunks)
        }
    }

    @Test func rangesAndBadRanges() async throws {
        try await ServedStore.with { served in
            let chunk = served.entry.manifest.chunks.max { $0.storedBytes < $1.storedBytes }!
            let bytes = served.chunkBytes(chunk.sha256)
            let path = "/v1/chunks/\(chunk.sha256)"
            for (header, range) in [("bytes=0-99", 0..<100), ("bytes=5000-", 5000..<bytes.count), ("bytes=-10", (bytes.count - 10)..<bytes.count),
                                    ("bytes=100-\(bytes.count + 500)", 100..<bytes.count)] {
                let response = try await TestHTTP.request(port: served.port, path, headers: ["Range": header])
                #expect(response.status == 206, "\(header)")
                #expect(response.body == Array(bytes[range]), "\(header)")
                #expect(response.headers["content-range"] == "bytes \(range.lowerBound)-\(range.upperBound - 1)/\(bytes.count)")
            }
            for header in ["bytes=\(bytes.count)-", "bytes=50-10", "bytes=0-1,5-9", "bytes=-0"] {
                let response = try await TestHTTP.request(port: served.port, path, headers: ["Range": header])
                #expect(response.status == 416, "\(header)")
                #expect(response.headers["content-range"] == "bytes */\(bytes.count)")
            }
        }
    }

    @Test func unknownAndInvalidNames() async throws {
        try await ServedStore.with { served in
            // A file outside the store root that traversal would reach.
            let secret = served.root + "/../hydra-secret-\(UUID().uuidString)"
            FileManager.default.createFile(atPath: secret, contents: Data("secret".utf8))
            defer { try? FileManager.default.removeItem(atPath: secret) }
            #expect(try await TestHTTP.request(port: served.port, "/v1/chunks/" + String(repeating: "ab", count: 32)).status == 404)
            #expect(try await TestHTTP.request(port: served.port, "/v1/models/nope/manifest").status == 404)
            for path in ["/v1/chunks/..%2F..%2Fetc%2Fpasswd", "/v1/chunks/%2Fetc%2Fpasswd", "/v1/chunks/..", "/v1/chunks/ABCDEF",
                         "/v1/models/..%2Fmodels%2Fm/manifest", "/v1/models/%2Fetc%2Fpasswd/manifest", "/v1/models/..%2F..%2Fhydra-secret/manifest"] {
                let response = try await TestHTTP.request(port: served.port, path)
                #expect(response.status == 400 || response.status == 404, "\(path) → \(response.status)")
                #expect(!String(decoding: response.body, as: UTF8.self).contains("secret"))
                #expect(!String(decoding: response.body, as: UTF8.self).contains("root:"))
            }
            #expect(try await TestHTTP.request(port: served.port, "/v1/chunks/..%2F..%2Fetc%2Fpasswd").status == 400)
            #expect(try await TestHTTP.request(port: served.port, "/v1/models/..%2Fx/manifest").status == 400)
        }
    }

    @Test func bearerToken() async throws {
        try await ServedStore.with(token: "s3cret-token") { served in
            #expect(try await TestHTTP.request(port: served.port, "/v1/models").status == 401)
            #expect(try await TestHTTP.request(port: served.port, "/v1/models", headers: ["Authorization": "Bearer wrong-token!"]).status == 401)
            let missing = try await TestHTTP.request(port: served.port, "/v1/chunks/\(served.entry.manifest.chunks[0].sha256)")
            #expect(missing.status == 401 && missing.headers["www-authenticate"] == "Bearer")
            #expect(try await TestHTTP.request(port: served.port, "/v1/models", headers: ["Authorization": "Bearer s3cret-token"]).status == 200)
            // A cached chunk is answered below the router only with the token.
            let chunk = served.entry.manifest.chunks[0].sha256
            let bytes = served.chunkBytes(chunk)
            let before = served.server.counters.warmAnswers
            let wrong = try await TestHTTP.request(port: served.port, "/v1/chunks/\(chunk)", headers: ["Authorization": "Bearer s3cret-tokeN"])
            #expect(wrong.status == 401 && wrong.body != bytes)
            let right = try await TestHTTP.request(port: served.port, "/v1/chunks/\(chunk)", headers: ["Authorization": "Bearer s3cret-token"])
            #expect(right.status == 200 && right.body == bytes)
            #expect(served.server.counters.warmAnswers == before + 1)
            #expect(try await TestHTTP.request(port: served.port, "/healthz").status == 200)
        }
    }

    /// Counts the reads that reach the disk reader.
    final class CountingReader: FileBatchReader, @unchecked Sendable {
        let inner = FileReaders.make()
        let reads = LockedBox(0)
        var backend: String { inner.backend }
        func submit(_ batch: [FileRead], completion: @escaping @Sendable (Error?) -> Void) {
            reads.withValue { $0 += batch.count }
            inner.submit(batch, completion: completion)
        }
    }

    /// A chunk the page cache holds goes by sendfile (no read through the server); an evicted
    /// one is read through io_uring in pieces (which caches it again); both byte-exact, whole and
    /// in ranges. With sendfile off, or over TLS, every body is read.
    @Test(arguments: [false, true]) func cachedChunksGoBySendfileOthersAreRead(sendfile: Bool) async throws {
        let reader = CountingReader()
        try await ServedStore.with(configure: { $0.sendfile = sendfile }, reader: reader) { served in
            // Two chunks: one sent while cached, one evicted first that no sendfile response has
            // touched. Pages a sendfile response handed to a socket can stay referenced for a
            // while after the client has read it, and eviction cannot drop them (a suite run saw a
            // sent 64 KiB chunk stay whole in the page cache through a second of evictions).
            let largest = Dictionary(served.entry.manifest.chunks.map { ($0.sha256, $0.storedBytes) }, uniquingKeysWith: { a, _ in a })
                .sorted { ($0.value, $0.key) > ($1.value, $1.key) }.map(\.key)
            try #require(largest.count >= 2)
            func get(_ hash: String, _ range: Range<Int>? = nil) async throws -> (body: [UInt8], reads: Int) {
                let before = reader.reads.value
                let headers = range.map { ["Range": "bytes=\($0.lowerBound)-\($0.upperBound - 1)"] } ?? [:]
                let response = try await TestHTTP.request(port: served.port, "/v1/chunks/\(hash)", headers: headers)
                #expect(response.status == (range == nil ? 200 : 206))
                #expect(response.headers["etag"] == "\"\(hash)\"")
                return (response.body, reader.reads.value - before)
            }
            let bytes = served.chunkBytes(largest[0])  // reading it caches it
            let cached = try await get(largest[0])
            #expect(cached.body == bytes)
            #expect(sendfile ? cached.reads == 0 : cached.reads > 0)
            #expect(sendfile == (served.server.counters.warmAnswers > 0))  // answered below the router
            let part = try await get(largest[0], 1000..<(bytes.count - 7))
            #expect(part.body == Array(bytes[1000..<(bytes.count - 7)]))
            #expect(sendfile ? part.reads == 0 : part.reads > 0)

            guard !PageCache.isTmpfs(served.root) else { return }  // nothing to evict there
            let coldBytes = served.chunkBytes(largest[1])
            let coldFile = SharedFile(try FileDescriptor.open(served.entry.store.chunkPath(largest[1])))
            for _ in 0..<100 where coldFile.residency(offset: 0, length: coldBytes.count) != .cold {
                PageCache.evict(coldFile.path)
                try await Task.sleep(for: .milliseconds(10))
            }
            #expect(coldFile.residency(offset: 0, length: coldBytes.count) == .cold)
            let cold = try await get(largest[1])
            #expect(cold.body == coldBytes)
            #expect(cold.reads == (coldBytes.count + (16 << 10) - 1) / (16 << 10))  // 16 KiB pieces (ServedStore)
            let again = try await get(largest[1], 5..<6)
            #expect(again.body == [coldBytes[5]])
            #expect(sendfile ? again.reads == 0 : again.reads == 1)
        }
    }

    /// Chunk GETs whose bytes the page cache holds are answered below the router; on one
    /// keep-alive connection its answers and the router's leave in the order they were asked.
    @Test func pipelinedAnswersKeepTheirOrder() async throws {
        try await ServedStore.with { served in
            let sizes = Dictionary(served.entry.manifest.chunks.map { ($0.sha256, $0.storedBytes) }, uniquingKeysWith: { a, _ in a })
            let names = sizes.keys.sorted()
            try #require(names.count >= 2)
            let (a, b) = (names[0], names[1])
            let aBytes = served.chunkBytes(a), bBytes = served.chunkBytes(b)  // reading them caches them
            let unknown = String(repeating: "ab", count: 32)
            let before = served.server.counters.warmAnswers
            let connection = try KeepAliveConnection(port: served.port)
            // Written at once: two cached chunks, then the router's answers (a manifest, an unknown
            // chunk, a bad range, a HEAD) with cached chunks between them.
            try connection.send(TestHTTP.text("GET", "/v1/chunks/\(a)") + TestHTTP.text("GET", "/v1/chunks/\(b)", headers: ["Range": "bytes=10-99"])
                + TestHTTP.text("GET", "/v1/models/m/manifest") + TestHTTP.text("GET", "/v1/chunks/\(a)", headers: ["Range": "bytes=-5"])
                + TestHTTP.text("GET", "/v1/chunks/\(unknown)") + TestHTTP.text("GET", "/v1/chunks/\(b)", headers: ["Range": "bytes=\(bBytes.count)-"])
                + TestHTTP.text("HEAD", "/v1/chunks/\(a)") + TestHTTP.text("GET", "/v1/chunks/\(b)"))
            let answers = try await offPool {
                try (0..<8).map { try connection.response(bodyless: $0 == 6) }
            }
            #expect(answers[0].status == 200 && answers[0].body == aBytes)
            #expect(answers[1].status == 206 && answers[1].body == Array(bBytes[10...99]))
            #expect(answers[1].headers["content-range"] == "bytes 10-99/\(bBytes.count)")
            #expect(answers[2].status == 200 && (try? Manifest.decode(answers[2].body, file: "remote")) == served.entry.manifest)
            #expect(answers[3].status == 206 && answers[3].body == Array(aBytes.suffix(5)))
            #expect(answers[4].status == 404)
            #expect(answers[5].status == 416 && answers[5].headers["content-range"] == "bytes */\(bBytes.count)")
            #expect(answers[6].status == 200 && answers[6].headers["content-length"] == String(aBytes.count))
            #expect(answers[7].status == 200 && answers[7].body == bBytes)
            for answer in [0, 1, 3, 6, 7].map({ answers[$0] }) {
                #expect(answer.headers["etag"]?.count == 66 && answer.headers["server"] == "hydra-store" && answer.headers["date"] != nil)
            }
            // The two before the manifest were answered here (the rest may have gone up behind it).
            #expect(served.server.counters.warmAnswers >= before + 2)

            // A cached chunk asked for with `Connection: close`: answered here, then closed.
            let closing = served.server.counters.warmAnswers
            try connection.send(TestHTTP.text("GET", "/v1/chunks/\(a)", headers: ["Connection": "close"]))
            let last = try await offPool { try connection.response() }
            #expect(last.status == 200 && last.body == aBytes && last.headers["connection"] == "close")
            #expect(served.server.counters.warmAnswers == closing + 1)
            #expect(await offPool { connection.isClosedByServer() })
        }
    }

    /// A graceful shutdown (what SIGTERM starts) lets answers being sent finish before their
    /// connections close and the server exits — with sendfile, one answered below the router
    /// and one the router answered (asked for behind a manifest); without, both read through
    /// the router — and closes an idle connection at once. Each answer is larger than the
    /// socket buffers and read slowly.
    @Test(arguments: [true, false]) func gracefulShutdownFinishesAnswersInFlight(sendfile: Bool) async throws {
        let served = try await ServedStore(configure: { $0.sendfile = sendfile; $0.pieceBytes = 1 << 20 })
        do { try await shutDownWhileSending(served, sendfile: sendfile) } catch {
            await served.stop()
            throw error
        }
        await served.stop()  // only removes the store: the server has already stopped
    }

    private func shutDownWhileSending(_ served: ServedStore, sendfile: Bool) async throws {
        // 24 MiB under a chunk's name (the server checks names, not manifests), cached.
        let bytes = [UInt8](try #require(FileHandle(forReadingAtPath: "/dev/urandom")).readData(ofLength: 24 << 20))
        let hash = SHA256Hasher.hex(bytes)
        let path = served.entry.store.chunkPath(hash)
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        PageCache.load(path)
        let small = served.entry.manifest.chunks[0].sha256
        _ = served.chunkBytes(small)
        let counters = served.server.counters

        let warm = try KeepAliveConnection(port: served.port, receiveBuffer: 64 << 10)
        let start = counters.warmAnswers
        try warm.send(TestHTTP.text("GET", "/v1/chunks/\(hash)"))
        let head = try await offPool { try warm.read(1 << 20) }
        let split = try #require(head.firstRange(of: Array("\r\n\r\n".utf8)))
        let warmHead = TestHTTP.parseHead(head[..<split.lowerBound])
        #expect(warmHead.status == 200 && warmHead.fields["content-length"] == String(bytes.count))
        #expect(counters.warmAnswers == start + (sendfile ? 1 : 0))

        let routed = try KeepAliveConnection(port: served.port, receiveBuffer: 64 << 10)
        try routed.send(TestHTTP.text("GET", "/v1/models/m/manifest") + TestHTTP.text("GET", "/v1/chunks/\(hash)"))
        #expect(try await offPool { try routed.response() }.status == 200)
        let idle = try KeepAliveConnection(port: served.port)
        try idle.send(TestHTTP.text("GET", "/v1/chunks/\(small)"))
        #expect(try await offPool { try idle.response() }.status == 200)
        #expect(counters.warmAnswers == start + (sendfile ? 2 : 0))  // the routed chunk went up behind the manifest

        let shutdown = Task { await served.shutDownGracefully() }
        try await Task.sleep(for: .milliseconds(300))
        #expect(await offPool { idle.isClosedByServer() })
        let rest = try await offPool { try warm.read(bytes.count - (head.count - split.upperBound)) }
        #expect(Array(head[split.upperBound...]) + rest == bytes)
        let routedAnswer = try await offPool { try routed.response() }
        #expect(routedAnswer.status == 200 && routedAnswer.body == bytes)
        #expect(await offPool { warm.isClosedByServer() && routed.isClosedByServer() })
        await shutdown.value
    }

    @Test func tlsBodiesAreAlwaysRead() async throws {
        let reader = CountingReader()
        try await ServedStore.with(tls: true, reader: reader) { served in
            let chunks = served.entry.manifest.chunks
            let buffers = chunks.map { SharedBuffer(count: $0.storedBytes) }
            let url = "https://127.0.0.1:\(served.port)"
            _ = try await offPool { try RemoteFetcher(baseURL: url, caFile: TestFixtures.tlsCertificate).fetch(chunks, into: buffers.map(\.baseAddress)) }
            for (chunk, buffer) in zip(chunks, buffers) {
                #expect(Array(UnsafeRawBufferPointer(start: buffer.baseAddress, count: chunk.storedBytes)) == served.chunkBytes(chunk.sha256))
            }
            #expect(reader.reads.value >= chunks.count)
        }
    }

    @Test func twoHundredConcurrentRangeRequests() async throws {
        try await ServedStore.with(model: "llama3-tiny") { served in
            let chunks = served.entry.manifest.chunks
            let expected = Dictionary(chunks.map { ($0.sha256, served.chunkBytes($0.sha256)) }, uniquingKeysWith: { a, _ in a })
            let failures = LockedBox<[String]>([])
            let port = served.port
            // 200 requests from 200 threads at once: each a different range of some chunk.
            let group = DispatchGroup()
            for i in 0..<200 {
                group.enter()
                let chunk = chunks[i % chunks.count]
                let bytes = expected[chunk.sha256]!
                let first = (i * 977) % max(1, bytes.count - 1)
                let last = min(bytes.count - 1, first + 4096 + i * 31)
                Thread.detachNewThread {
                    defer { group.leave() }
                    do {
                        let response = try TestHTTP.requestBlocking(port: port, "/v1/chunks/\(chunk.sha256)", headers: ["Range": "bytes=\(first)-\(last)"])
                        if response.status != 206 || response.body != Array(bytes[first...last]) {
                            failures.value.append("request \(i): status \(response.status), \(response.body.count) bytes")
                        }
                    } catch {
                        failures.value.append("request \(i): \(error)")
                    }
                }
            }
            let finished = group.wait(timeout: .now() + 60)
            #expect(finished == .success)
            #expect(failures.value.isEmpty, "\(failures.value.prefix(5))")
        }
    }
}
