import Foundation
import HydraSystem

/// Re-hashes every chunk and file an entry references and names the tensors a bad chunk carries.
public enum Verifier {
    public struct Problem: Sendable, CustomStringConvertible {
        public let path: String
        public let problem: String
        /// Tensors with bytes in the bad chunk (empty for carried files).
        public let tensors: [String]

        public var description: String {
            tensors.isEmpty ? "\(path): \(problem)" : "\(path): \(problem); tensors hit: \(tensors.joined(separator: ", "))"
        }
    }

    public struct Report: Sendable {
        public let model: String
        public let chunksChecked: Int
        public let bytesChecked: Int
        public let problems: [Problem]
    }

    public static func verify(_ entry: StoreEntry, progress: (Int, Int) -> Void = { _, _ in }) -> Report {
        let manifest = entry.manifest
        var tensorsByChunk: [Int: [String]] = [:]
        for tensor in manifest.tensors {
            for extent in tensor.extents { tensorsByChunk[extent.chunk, default: []].append(tensor.name) }
        }
        var problems: [Problem] = []
        var checked = Set<String>()
        var bytes = 0
        let total = manifest.chunks.reduce(0) { $0 + $1.storedBytes }
        for (index, chunk) in manifest.chunks.enumerated() where !checked.contains(chunk.sha256) {
            checked.insert(chunk.sha256)
            let path = entry.store.chunkPath(chunk.sha256)
            if let problem = check(path: path, sha256: chunk.sha256, xxh3: chunk.xxh3, size: chunk.storedBytes) {
                // Every chunk index with this hash carries the damage.
                let hit = manifest.chunks.indices.filter { manifest.chunks[$0].sha256 == chunk.sha256 }
                problems.append(Problem(path: path, problem: "chunk \(index): \(problem)", tensors: hit.flatMap { tensorsByChunk[$0] ?? [] }))
            }
            bytes += chunk.storedBytes
            progress(bytes, total)
        }
        for file in manifest.files {
            let path = entry.store.chunkPath(file.sha256)
            if let problem = check(path: path, sha256: file.sha256, size: file.bytes) {
                problems.append(Problem(path: path, problem: "file '\(file.name)': \(problem)", tensors: []))
            }
        }
        return Report(model: manifest.name, chunksChecked: checked.count, bytesChecked: bytes, problems: problems)
    }

    /// Hashes a blob in pieces (SHA-256, and XXH3 when the manifest gives one); nil when it is intact.
    static func check(path: String, sha256: String, xxh3: String? = nil, size: Int) -> String? {
        let file: FileDescriptor
        do { file = try FileDescriptor.open(path) } catch { return "missing or unreadable (\(error))" }
        do {
            let actualSize = try file.size()
            guard actualSize == size else { return "size is \(actualSize) bytes, expected \(size)" }
            let piece = AlignedBuffer(count: 8 << 20)
            let hasher = IncrementalDigest(.sha256)
            let fastHasher = xxh3.map { _ in IncrementalDigest(.xxh3) }
            var offset = 0
            while offset < size {
                let length = min(piece.count, size - offset)
                let view = UnsafeMutableRawBufferPointer(start: piece.baseAddress, count: length)
                try file.read(into: view, at: offset)
                hasher.update(UnsafeRawBufferPointer(view))
                fastHasher?.update(UnsafeRawBufferPointer(view))
                offset += length
            }
            let actual = hasher.finalizeHex()
            guard actual == sha256 else { return "content hash \(actual) does not match its name (corrupt)" }
            if let xxh3, let fast = fastHasher?.finalizeHex(), fast != xxh3 {
                return "XXH3 \(fast) does not match the manifest's \(xxh3)"
            }
            return nil
        } catch {
            return "read failed: \(error)"
        }
    }
}
