import Foundation
import HydraTestSupport
import Testing
import HydraFormat
import HydraSystem

/// Chunk bodies received straight into caller memory (HTTPClient's direct connection), against
/// a real store server: ranges, error responses, and a kept-alive connection the server dropped.
@Suite(.serialized) struct DirectBodyTransferTests {
    @Test func rangesErrorsAndADroppedConnection() async throws {
        try await ServedStore.with { served in
            let relay = try TCPRelay(targetPort: served.port)
            let chunk = served.entry.manifest.chunks[1]
            let expected = served.chunkBytes(chunk.sha256)
            try await offPool { try Self.exchanges(relay: relay, chunk: chunk, expected: expected) }
        }
    }

    static func exchanges(relay: TCPRelay, chunk: Manifest.Chunk, expected: [UInt8]) throws {
        let url = "http://127.0.0.1:\(relay.port)/v1/chunks/\(chunk.sha256)"
        let missing = "http://127.0.0.1:\(relay.port)/v1/chunks/" + String(repeating: "0", count: 64)
        let client = HTTPClient(timeoutSeconds: 10)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk.storedBytes, alignment: 4096)
        defer { buffer.deallocate() }
        func received(_ count: Int) -> [UInt8] { Array(buffer[0..<count]) }

        // Whole, then a range into the middle, with the digest computed as bytes land.
        let whole = try client.get(url, into: buffer, hashing: .sha256)
        #expect(whole.status == 200 && whole.count == expected.count && whole.digest == chunk.sha256)
        #expect(received(whole.count) == expected)
        let digest = IncrementalDigest(.xxh3)
        let part = client.transfer(url, range: 1000...4999, into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<4000]), digest: digest)
        #expect(part.status == 206 && part.count == 4000 && part.failure == nil)
        #expect(received(4000) == Array(expected[1000..<5000]))
        #expect(digest.finalizeHex() == expected[1000..<5000].withUnsafeBytes(DigestAlgorithm.xxh3.hex))

        // Error responses: a status and the server's words, nothing written or hashed; the
        // connection stays usable.
        let absent = try client.get(missing, into: buffer, hashing: .sha256)
        #expect(absent.status == 404 && absent.count == 0 && absent.digest == nil)
        let beyond = client.transfer(url, range: expected.count...(expected.count + 10), into: buffer, digest: nil)
        #expect(beyond.status == 416 && beyond.count == 0 && beyond.failure?.hasPrefix("HTTP 416") == true)
        let small = client.transfer(url, range: 0...(expected.count - 1), into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<100]), digest: nil)
        #expect(small.failure?.contains("longer than the 100 bytes") == true)

        // The store vanishes and comes back: the kept-alive connection is dead, and the next
        // request goes through on a fresh one.
        relay.kill()
        try relay.start()
        let again = try client.get(url, into: buffer, hashing: .sha256)
        #expect(again.status == 200 && again.digest == chunk.sha256)

        // Nothing listening: a clear failure, not a hang.
        relay.kill()
        let refused = client.transfer(url, range: 0...99, into: buffer, digest: nil)
        #expect(refused.status == 0 && refused.count == 0 && refused.failure?.lowercased().contains("connect") == true)
    }
}
