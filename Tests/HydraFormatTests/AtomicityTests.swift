import Foundation
import Testing
@testable import HydraFormat

@Suite struct AtomicityTests {
    final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var value = 0
        func next() -> Int { lock.lock(); defer { lock.unlock() }; value += 1; return value }
    }

    @Test func interruptedConversionLeavesNothing() throws {
        let store = TemporaryDirectory()
        let polls = Counter()
        var options = ConvertOptions(name: "cut")
        options.chunkSizeBytes = 16 << 10  // many chunks, so the cut lands mid-way
        let monitor = ConvertMonitor(isCancelled: { polls.next() > 12 })
        #expect(throws: ConversionCancelled.self) {
            _ = try Converter.convert(try Converter.loadSource(Fixtures.root + "/tiny/llama3-tiny"),
                                      into: StoreDirectory(root: store.path), options: options, monitor: monitor)
        }
        #expect(store.files() == [], "an interrupted conversion must leave no file behind")
        #expect(try StoreDirectory(root: store.path).modelNames() == [])
    }

    @Test func secondRunIsIdempotent() throws {
        let store = TemporaryDirectory()
        let source = try Converter.loadSource(Fixtures.root + "/tiny/falcon-40b-tiny")
        let first = try Converter.convert(source, into: StoreDirectory(root: store.path), options: ConvertOptions(name: "f"))
        let filesAfterFirst = store.files()
        let manifestBytes = FileManager.default.contents(atPath: first.manifestPath)
        let second = try Converter.convert(source, into: StoreDirectory(root: store.path), options: ConvertOptions(name: "f"))
        #expect(first.bytesWritten > 0)
        #expect(second.bytesWritten == 0, "every chunk was already stored")
        #expect(second.manifest == first.manifest)
        #expect(FileManager.default.contents(atPath: second.manifestPath) == manifestBytes)
        #expect(store.files() == filesAfterFirst)
    }

    @Test func staleStagingFromADeadProcessIsRemoved() throws {
        let store = TemporaryDirectory()
        // A staging folder whose owner (pid 2^22 + 1, above the default pid_max) cannot be alive.
        try FileManager.default.createDirectory(atPath: store.path + "/.staging/old.4194305.77", withIntermediateDirectories: true)
        store.write(".staging/old.4194305.77/junk", [1, 2, 3])
        _ = try Converter.convert(try Converter.loadSource(Fixtures.root + "/tiny/opt-tiny"),
                                  into: StoreDirectory(root: store.path), options: ConvertOptions(name: "o"))
        #expect(store.files(under: ".staging") == [])
    }

    @Test func identicalChunksAreStoredOnce() throws {
        let dir = TemporaryDirectory()
        makeTinyLlama(in: dir, layers: 4, identicalLayers: true)
        let store = TemporaryDirectory()
        let result = try Converter.convert(try Converter.loadSource(dir.path), into: StoreDirectory(root: store.path), options: ConvertOptions(name: "d"))
        let layerHashes = result.manifest.chunks.filter { $0.section == .layer }.map(\.sha256)
        #expect(layerHashes.count == 4 && Set(layerHashes).count == 1)
        let chunkFiles = store.files(under: "chunks")
        #expect(chunkFiles.count == Set(result.manifest.chunks.map(\.sha256)).count + result.manifest.files.count)
        let entry = try StoreEntry(store: StoreDirectory(root: store.path), name: "d")
        #expect(try entry.readTensor("model.layers.3.self_attn.q_proj.weight") == entry.readTensor("model.layers.0.self_attn.q_proj.weight"))
    }
}

@Suite struct VerifyTests {
    @Test func flippedByteIsReportedWithItsTensors() throws {
        let store = TemporaryDirectory()
        let result = try Converter.convert(try Converter.loadSource(Fixtures.root + "/tiny/llama2-tiny"),
                                           into: StoreDirectory(root: store.path), options: ConvertOptions(name: "v"))
        let entry = try StoreEntry(store: StoreDirectory(root: store.path), name: "v")
        #expect(Verifier.verify(entry).problems.isEmpty)

        // Flip one byte of layer 2's chunk.
        let index = try #require(result.manifest.chunks.firstIndex { $0.layer == 2 })
        let path = StoreDirectory(root: store.path).chunkPath(result.manifest.chunks[index].sha256)
        var bytes = Array(FileManager.default.contents(atPath: path)!)
        bytes[100] ^= 0x01
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))

        let report = Verifier.verify(entry)
        #expect(report.problems.count == 1)
        let problem = try #require(report.problems.first)
        #expect(problem.path == path && problem.problem.contains("does not match"))
        let expected = result.manifest.tensors.filter { $0.layer == 2 }.map(\.name)
        #expect(Set(problem.tensors) == Set(expected) && !expected.isEmpty)
        // The reader refuses it too when asked to verify.
        var buffer = [UInt8](repeating: 0, count: result.manifest.chunks[index].payloadBytes)
        #expect(throws: FormatError.self) { try buffer.withUnsafeMutableBytes { try entry.readChunk(index, into: $0, verify: true) } }
    }

    @Test func missingChunkAndFileAreReported() throws {
        let store = TemporaryDirectory()
        let result = try Converter.convert(try Converter.loadSource(Fixtures.root + "/tiny/opt-tiny"),
                                           into: StoreDirectory(root: store.path), options: ConvertOptions(name: "v"))
        let directory = StoreDirectory(root: store.path)
        try FileManager.default.removeItem(atPath: directory.chunkPath(result.manifest.chunks[0].sha256))
        try FileManager.default.removeItem(atPath: directory.chunkPath(result.manifest.files[0].sha256))
        let report = Verifier.verify(try StoreEntry(store: directory, name: "v"))
        #expect(report.problems.count == 2)
        #expect(report.problems.allSatisfy { $0.problem.contains("missing") })
        #expect(report.problems.contains { $0.problem.contains("config.json") })
    }
}
