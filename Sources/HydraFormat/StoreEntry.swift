import Foundation
import HydraSystem

/// A store entry opened for reading: the reader API later layers build on.
public struct StoreEntry: Sendable {
    public let store: StoreDirectory
    public let manifest: Manifest
    private let tensorIndex: [String: Int]

    public init(store: StoreDirectory, name: String) throws {
        guard StoreDirectory.isValidModelName(name) else {
            throw FormatError(name, "invalid model name")
        }
        let path = store.manifestPath(name)
        guard let bytes = FileManager.default.contents(atPath: path) else {
            let known = (try? store.modelNames()) ?? []
            throw FormatError(path, "no model '\(name)' in store \(store.root)" + (known.isEmpty ? "" : " (has: \(known.joined(separator: ", ")))"))
        }
        self.store = store
        manifest = try Manifest.decode(Array(bytes), file: path)
        var index: [String: Int] = [:]
        for (position, tensor) in manifest.tensors.enumerated() { index[tensor.name] = position }
        tensorIndex = index
    }

    public func tensor(named name: String) -> Manifest.Tensor? {
        tensorIndex[name].map { manifest.tensors[$0] }
    }

    /// Stage `stage` of the `pp`-stage plan.
    public func stage(_ stage: Int, of pp: Int) throws -> Manifest.Stage {
        try manifest.stage(stage, of: pp)
    }

    /// The chunks stage `stage` of `pp` needs, in execution order.
    public func stageChunks(_ stage: Int, of pp: Int) throws -> [(index: Int, chunk: Manifest.Chunk)] {
        try self.stage(stage, of: pp).chunks.map { ($0, manifest.chunks[$0]) }
    }

    /// Reads chunk `index`'s payload (decompressed) into `buffer`, which must hold at least
    /// `payloadBytes`. With `verify`, the stored bytes are hashed and a mismatch throws.
    public func readChunk(_ index: Int, into buffer: UnsafeMutableRawBufferPointer, verify: Bool = false) throws {
        let chunk = manifest.chunks[index]
        precondition(buffer.count >= chunk.payloadBytes, "chunk buffer smaller than the payload")
        let path = store.chunkPath(chunk.sha256)
        let file: FileDescriptor
        do { file = try FileDescriptor.open(path) } catch let error as SystemError {
            throw FormatError(path, "chunk \(index) unreadable: \(error)")
        }
        let size = try file.size()
        guard size == chunk.storedBytes else {
            throw FormatError(path, "chunk \(index) is \(size) bytes, manifest says \(chunk.storedBytes)")
        }
        let payload = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<chunk.payloadBytes])
        if chunk.compression == .none {
            try file.read(into: payload, at: 0)
            if verify { try check(UnsafeRawBufferPointer(payload), chunk: chunk, path: path) }
        } else {
            let stored = AlignedBuffer(count: chunk.storedBytes)
            try file.read(into: stored.bytes, at: 0)
            if verify { try check(UnsafeRawBufferPointer(stored.bytes), chunk: chunk, path: path) }
            try ChunkCodec.decode(UnsafeRawBufferPointer(stored.bytes), compression: chunk.compression, into: payload)
        }
    }

    private func check(_ bytes: UnsafeRawBufferPointer, chunk: Manifest.Chunk, path: String) throws {
        let actual = SHA256Hasher.hex(bytes)
        guard actual == chunk.sha256 else { throw FormatError(path, "chunk hash mismatch: content hashes to \(actual)") }
    }

    /// Reads a tensor's bytes by name.
    public func readTensor(_ name: String) throws -> [UInt8] {
        guard let tensor = tensor(named: name) else {
            throw FormatError(manifest.name, "tensor '\(name)' is not in the store entry")
        }
        var out = [UInt8](repeating: 0, count: tensor.byteCount)
        var written = 0
        for extent in tensor.extents {
            let chunk = manifest.chunks[extent.chunk]
            let payload = AlignedBuffer(count: chunk.payloadBytes)
            try readChunk(extent.chunk, into: payload.bytes)
            out.withUnsafeMutableBytes {
                ($0.baseAddress! + written).copyMemory(from: payload.baseAddress + extent.offset, byteCount: extent.length)
            }
            written += extent.length
        }
        return out
    }

    /// A carried file (tokenizer.json, …), or nil when the source had none.
    public func file(named name: String) throws -> [UInt8]? {
        guard let entry = manifest.files.first(where: { $0.name == name }) else { return nil }
        let path = store.chunkPath(entry.sha256)
        guard let data = FileManager.default.contents(atPath: path) else { throw FormatError(path, "file '\(name)' missing from the store") }
        return Array(data)
    }
}
