import Foundation
import HydraSystem
import Testing
@testable import HydraFormat

/// Format 1.1's per-chunk XXH3: written by the converter, checked by `hydra verify`, chosen by
/// the `fast` verification policy, absent (and SHA-256 used instead) in 1.0 entries.
@Suite struct ChunkVerificationTests {
    func converted(_ store: TemporaryDirectory, compress: Bool = false) throws -> StoreEntry {
        var options = ConvertOptions(name: "v")
        options.chunkSizeBytes = 64 << 10
        options.compress = compress
        _ = try Converter.convert(try Converter.loadSource(Fixtures.root + "/tiny/llama2-tiny/bfloat16"),
                                  into: StoreDirectory(root: store.path), options: options)
        return try StoreEntry(store: StoreDirectory(root: store.path), name: "v")
    }

    func rewrite(_ entry: StoreEntry, _ change: (inout Manifest) -> Void) throws -> StoreEntry {
        var manifest = entry.manifest
        change(&manifest)
        try Data(try manifest.encoded()).write(to: URL(fileURLWithPath: entry.store.manifestPath("v")))
        return try StoreEntry(store: entry.store, name: "v")
    }

    @Test(arguments: [false, true])
    func theConverterRecordsEachChunksXXH3OverItsStoredBytes(compress: Bool) throws {
        let store = TemporaryDirectory()
        let entry = try converted(store, compress: compress)
        #expect(entry.manifest.formatVersion == "1.1")
        #expect(!compress || entry.manifest.chunks.contains { $0.compression != .none })
        for chunk in entry.manifest.chunks {
            let stored = try #require(FileManager.default.contents(atPath: entry.store.chunkPath(chunk.sha256)))
            #expect(chunk.xxh3 == stored.withUnsafeBytes(DigestAlgorithm.xxh3.hex))
        }
    }

    @Test func eachPolicyExpectsItsDigest() throws {
        let store = TemporaryDirectory()
        let chunk = try converted(store).manifest.chunks[0]
        #expect(chunk.expectedDigest(.fast) == ExpectedDigest(.xxh3, chunk.xxh3!))
        #expect(chunk.expectedDigest(.sha256) == ExpectedDigest(.sha256, chunk.sha256))
        #expect(chunk.expectedDigest(.none) == nil)
        var old = chunk
        old.xxh3 = nil  // a format 1.0 chunk
        #expect(old.expectedDigest(.fast) == ExpectedDigest(.sha256, chunk.sha256))
    }

    @Test func aVersion10EntryWithoutXXH3StillReadsAndVerifies() throws {
        let store = TemporaryDirectory()
        let entry = try rewrite(try converted(store)) { manifest in
            manifest.formatVersion = "1.0"
            for index in manifest.chunks.indices { manifest.chunks[index].xxh3 = nil }
        }
        let text = try String(contentsOfFile: entry.store.manifestPath("v"), encoding: .utf8)
        #expect(!text.contains("xxh3"))
        #expect(entry.manifest.chunks.allSatisfy { $0.xxh3 == nil })
        #expect(Verifier.verify(entry).problems.isEmpty)
    }

    @Test func aMalformedOrWrongXXH3IsCaught() throws {
        let store = TemporaryDirectory()
        let entry = try converted(store)
        var malformed = entry.manifest
        malformed.chunks[1].xxh3 = "XYZ"
        let error = try #require(throws: FormatError.self) { try malformed.validate(file: "m.json") }
        #expect(error.problem.contains("chunk 1 has a malformed xxh3"))

        // Well formed but not these bytes: `hydra verify` names the chunk and the mismatch.
        let wrong = try rewrite(entry) { $0.chunks[1].xxh3 = "0123456789abcdef" }
        let report = Verifier.verify(wrong)
        #expect(report.problems.count == 1)
        #expect(report.problems.first?.problem.contains("chunk 1: XXH3") == true)
        #expect(report.problems.first?.problem.contains("0123456789abcdef") == true)
    }
}
