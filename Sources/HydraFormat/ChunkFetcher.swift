import Foundation
import Glibc
import HydraSystem

/// Reads a set of a store entry's chunks from the local disk into caller-provided, page-aligned
/// memory through a `FileBatchReader` (io_uring): every chunk in flight at once, uncompressed
/// chunks with O_DIRECT when `direct` (cold-start path: no page-cache copy), buffered otherwise.
public struct ChunkFetcher: Sendable {
    public let entry: StoreEntry
    public let reader: any FileBatchReader

    public init(entry: StoreEntry, reader: any FileBatchReader) {
        self.entry = entry
        self.reader = reader
    }

    /// Reads each chunk `indices[i]` into `destinations[i]` (at least its storedBytes long).
    /// Compressed chunks arrive still compressed; decode them with `ChunkCodec`.
    public func fetch(_ indices: [Int], into destinations: [UnsafeMutableRawPointer], direct: Bool) async throws {
        let (files, reads) = try prepare(indices, destinations, direct: direct)
        do { try await reader.read(reads) } catch let error as ShortRead { throw Self.describe(error) }
        withExtendedLifetime(files) {}
    }

    /// The same, blocking the calling thread (never the cooperative pool's concern).
    public func fetchBlocking(_ indices: [Int], into destinations: [UnsafeMutableRawPointer], direct: Bool) throws {
        let (files, reads) = try prepare(indices, destinations, direct: direct)
        do { try reader.readBlocking(reads) } catch let error as ShortRead { throw Self.describe(error) }
        withExtendedLifetime(files) {}
    }

    static func describe(_ error: ShortRead) -> FormatError {
        FormatError(error.path, "chunk file is shorter than the manifest says: \(error)")
    }

    private func prepare(_ indices: [Int], _ destinations: [UnsafeMutableRawPointer], direct: Bool) throws -> ([SharedFile], [FileRead]) {
        precondition(indices.count == destinations.count)
        var files: [SharedFile] = []
        var reads: [FileRead] = []
        for (index, destination) in zip(indices, destinations) {
            let chunk = entry.manifest.chunks[index]
            let path = entry.store.chunkPath(chunk.sha256)
            let aligned = chunk.storedBytes % Manifest.alignmentBytes == 0
            let box = try SharedFile(FileReaders.open(path, direct: direct && aligned))
            files.append(box)
            reads.append(FileRead(fd: box.fd, offset: 0, length: chunk.storedBytes, buffer: destination, path: path))
        }
        return (files, reads)
    }

    /// Drops the entry's chunk files from the page cache (for cold-read measurements).
    public func evictFromPageCache(_ indices: [Int]) {
        for index in indices { PageCache.evict(entry.store.chunkPath(entry.manifest.chunks[index].sha256)) }
    }
}
