import HydraFormat
import HydraSystem

/// The weights one pipeline stage needs, resident once in one device arena. Loading is copying
/// each chunk's tensor extents into their slots, so chunks can be absorbed in any order and the
/// moment each one lands (the cold-start path streams them from the node cache).
public final class StageWeights: @unchecked Sendable {
    public let stage: Manifest.Stage
    public let device: any Device
    public let memory: DeviceMemory
    private let manifest: Manifest
    /// Tensor name → (manifest tensor, byte offset in the arena).
    private let slots: [String: (tensor: Manifest.Tensor, offset: Int)]
    /// Chunk index → the extents to copy out of it: (offset in chunk, length, offset in arena).
    private let plan: [Int: [(source: Int, length: Int, destination: Int)]]
    private var pendingChunks: Set<Int>

    public init(manifest: Manifest, stage: Manifest.Stage, device: any Device) {
        self.manifest = manifest
        self.stage = stage
        self.device = device
        var slots: [String: (Manifest.Tensor, Int)] = [:]
        var plan: [Int: [(Int, Int, Int)]] = [:]
        var size = 0
        for tensor in manifest.tensors where Self.stageNeeds(tensor, stage: stage, tied: manifest.tiedEmbeddings) {
            let offset = size
            slots[tensor.name] = (tensor, offset)
            var written = 0
            for extent in tensor.extents {
                plan[extent.chunk, default: []].append((extent.offset, extent.length, offset + written))
                written += extent.length
            }
            size = alignUp(offset + tensor.byteCount, to: 64)
        }
        self.slots = slots
        self.plan = plan
        pendingChunks = Set(plan.keys)
        memory = device.allocate(bytes: size)
    }

    static func stageNeeds(_ tensor: Manifest.Tensor, stage: Manifest.Stage, tied: Bool) -> Bool {
        switch tensor.section {
        case .embed: return stage.embed || (stage.head && tied && TensorPlacement.isTokenEmbedding(tensor.name))
        case .head: return stage.head
        case .layer: return (stage.firstLayer..<stage.endLayer).contains(tensor.layer!)
        }
    }

    /// Chunks still to absorb.
    public var missingChunks: Set<Int> { pendingChunks }
    public var isComplete: Bool { pendingChunks.isEmpty }
    public var residentBytes: Int { memory.byteCount }

    /// Copies the tensors a chunk carries into place. `payload` is the chunk's decoded payload.
    public func absorb(chunk index: Int, payload: UnsafeRawBufferPointer) {
        guard let copies = plan[index] else { return }
        for copy in copies {
            device.upload(UnsafeRawBufferPointer(rebasing: payload[copy.source..<(copy.source + copy.length)]), to: memory, at: copy.destination)
        }
        pendingChunks.remove(index)
    }

    /// Reads every chunk the stage needs from a local store entry.
    public func load(from entry: StoreEntry) throws {
        let largest = pendingChunks.map { manifest.chunks[$0].payloadBytes }.max() ?? 0
        let buffer = AlignedBuffer(count: largest)
        for index in pendingChunks.sorted() {
            try entry.readChunk(index, into: buffer.bytes)
            absorb(chunk: index, payload: UnsafeRawBufferPointer(start: buffer.baseAddress, count: manifest.chunks[index].payloadBytes))
        }
    }

    public func contains(_ name: String) -> Bool { slots[name] != nil }

    /// The weight called `name`; a clear error naming it when the store lacks it.
    public func weight(_ name: String) throws -> Weight {
        guard let slot = slots[name] else {
            throw FormatError(manifest.name, "tensor '\(name)' is missing from the store (stage \(stage.index), layers \(stage.firstLayer)..<\(stage.endLayer))")
        }
        precondition(!pendingChunks.contains { chunk in slot.tensor.extents.contains { $0.chunk == chunk } },
                     "weight \(name) used before its chunks were loaded")
        return Weight(name: name, dtype: slot.tensor.dtype, shape: slot.tensor.shape,
                      pointer: UnsafeRawPointer(memory.baseAddress + slot.offset))
    }

    public func optionalWeight(_ name: String) throws -> Weight? {
        contains(name) ? try weight(name) : nil
    }
}
