import Foundation
import Testing
import HydraSystem
@testable import HydraFormat

/// The Swift reader against formats/vectors: the specification's own test store.
@Suite struct StoreVectorTests {
    static let vectors = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("formats/vectors").path

    @Test(arguments: ["vector-plain", "vector-zstd"])
    func readsEveryTensorAsExpected(name: String) throws {
        let expected = try JSONValue.parse(Array(FileManager.default.contents(atPath: Self.vectors + "/expected.json")!), file: "expected.json")
        guard case .object(let tensors)? = expected[name] else { Issue.record("no expectations for \(name)"); return }
        let entry = try StoreEntry(store: StoreDirectory(root: Self.vectors + "/store"), name: name)
        #expect(entry.manifest.tensors.count == tensors.count)
        for (tensorName, want) in tensors {
            let tensor = try #require(entry.tensor(named: tensorName))
            #expect(tensor.dtype.rawValue == want["dtype"]?.stringValue)
            #expect(.array(tensor.shape.map { .int(Int64($0)) }) == want["shape"])
            let bytes = try entry.readTensor(tensorName)
            #expect(SHA256Hasher.hex(bytes) == want["sha256"]?.stringValue, "\(name)/\(tensorName)")
            #expect(hexString(Array(bytes.prefix(8))) == want["first8Bytes"]?.stringValue)
        }
        #expect(Verifier.verify(entry).problems.isEmpty)
    }

    @Test func vectorsCoverSplitsAndEveryCompression() throws {
        let entry = try StoreEntry(store: StoreDirectory(root: Self.vectors + "/store"), name: "vector-zstd")
        #expect(Set(entry.manifest.chunks.map(\.compression)) == [.zstd(planes: 1), .zstd(planes: 2)])
        #expect(entry.tensor(named: "model.embed_tokens.weight")!.extents.count == 2)
        let plain = try StoreEntry(store: StoreDirectory(root: Self.vectors + "/store"), name: "vector-plain")
        #expect(plain.manifest.chunks.allSatisfy { $0.compression == .none })
    }
}
