import Glibc
import Foundation
import Testing
import HydraSystem
@testable import HydraFormat

@Suite struct ChunkFetcherTests {
    @Test(arguments: [true, false])
    func fetchesEveryChunkByteIdentical(direct: Bool) async throws {
        let store = TemporaryDirectory()
        var options = ConvertOptions(name: "f")
        options.chunkSizeBytes = 16 << 10
        _ = try Converter.convert(try Converter.loadSource(Fixtures.root + "/tiny/falcon-40b-tiny"), into: StoreDirectory(root: store.path), options: options)
        let entry = try StoreEntry(store: StoreDirectory(root: store.path), name: "f")
        let indices = try entry.stageChunks(1, of: 2).map(\.index)
        let buffers = indices.map { SharedBuffer(count: entry.manifest.chunks[$0].storedBytes) }
        try await ChunkFetcher(entry: entry, reader: FileReaders.make()).fetch(indices, into: buffers.map(\.baseAddress), direct: direct)
        for (index, buffer) in zip(indices, buffers) {
            var expected = [UInt8](repeating: 0, count: entry.manifest.chunks[index].payloadBytes)
            try expected.withUnsafeMutableBytes { try entry.readChunk(index, into: $0) }
            #expect(Array(UnsafeRawBufferPointer(buffer.bytes)) == expected)
        }
    }

    @Test func truncatedChunkFileIsNamed() async throws {
        let store = TemporaryDirectory()
        _ = try Converter.convert(try Converter.loadSource(Fixtures.root + "/tiny/opt-tiny"), into: StoreDirectory(root: store.path), options: ConvertOptions(name: "t"))
        let entry = try StoreEntry(store: StoreDirectory(root: store.path), name: "t")
        let path = entry.store.chunkPath(entry.manifest.chunks[0].sha256)
        truncate(path, 4096)
        let buffer = SharedBuffer(count: entry.manifest.chunks[0].storedBytes)
        let error = try await #require(throws: FormatError.self) {
            try await ChunkFetcher(entry: entry, reader: FileReaders.make()).fetch([0], into: [buffer.baseAddress], direct: false)
        }
        #expect(error.file == path && error.problem.contains("shorter than the manifest says"))
    }
}
