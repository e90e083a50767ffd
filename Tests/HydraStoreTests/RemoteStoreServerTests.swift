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
