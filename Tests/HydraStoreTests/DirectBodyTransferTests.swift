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

    /// HTTP/1.1 pipelining: GETs sent while an earlier body arrives are answered in order on the
    /// same connection, including bytes of the next response read along with the previous one.
    @Test func pipelinedRequestsAreAnsweredInOrder() async throws {
        try await ServedStore.with { served in
            let chunk = served.entry.manifest.chunks[1]
            let expected = served.chunkBytes(chunk.sha256)
            let port = served.port
            try await offPool { try Self.pipelined(port: port, chunk: chunk, expected: expected) }
        }
    }

    static func pipelined(port: Int, chunk: Manifest.Chunk, expected: [UInt8]) throws {
        let url = "http://127.0.0.1:\(port)/v1/chunks/\(chunk.sha256)"
        let missing = "http://127.0.0.1:\(port)/v1/chunks/" + String(repeating: "0", count: 64)
        let client = HTTPClient(timeoutSeconds: 10)
        #expect(!client.pipeline(url), "nothing to pipeline on before a connection is open")
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk.storedBytes, alignment: 4096)
        defer { buffer.deallocate() }
        func received(_ count: Int) -> [UInt8] { Array(buffer[0..<count]) }

        // A small range, with three more requests pipelined behind it once its head is in; the
        // pause lets every answer reach the socket, so the small ones are read together.
        var sent: [Bool] = []
        let first = client.transfer(url, range: 0...99, into: buffer, digest: nil) {
            sent = [client.pipeline(url, range: 1000...4999), client.pipeline(missing), client.pipeline(url)]
            usleep(50_000)
        }
        #expect(sent == [true, true, true] && client.pipelinedRequests == 3)
        #expect(first.status == 206 && first.count == 100 && received(100) == Array(expected[0..<100]))
        let digest = IncrementalDigest(.xxh3)
        let second = client.transferPipelined(into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<4000]), digest: digest)
        #expect(second.status == 206 && second.count == 4000 && received(4000) == Array(expected[1000..<5000]))
        #expect(digest.finalizeHex() == expected[1000..<5000].withUnsafeBytes(DigestAlgorithm.xxh3.hex))
        let absent = client.transferPipelined(into: buffer, digest: nil)
        #expect(absent.status == 404 && absent.count == 0 && absent.failure?.hasPrefix("HTTP 404") == true)
        let whole = try client.get(url, into: buffer, hashing: .sha256, pipelined: true)
        #expect(whole.status == 200 && whole.count == expected.count && whole.digest == chunk.sha256)
        #expect(client.pipelinedRequests == 0)

        // Nothing left to receive: a clear failure, and the connection still serves.
        let none = client.transferPipelined(into: buffer, digest: nil)
        #expect(none.failure?.contains("no pipelined request") == true)

        // A new request while a pipelined answer is still owed: the connection (and the owed
        // answer) is dropped, so the answer read is the new request's own.
        _ = client.transfer(url, range: 0...9, into: buffer, digest: nil) { _ = client.pipeline(url) }
        #expect(client.pipelinedRequests == 1)
        let fresh = client.transfer(url, range: 5000...5999, into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<1000]), digest: nil)
        #expect(fresh.status == 206 && fresh.count == 1000 && received(1000) == Array(expected[5000..<6000]))
        #expect(client.pipelinedRequests == 0)
    }
}
