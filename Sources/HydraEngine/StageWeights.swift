import HydraFormat
import HydraSystem

/// The weights one pipeline stage needs, resident once in one device arena. Chunks can be
/// absorbed in any order, the moment each one lands (the cold-start path streams them).
///
/// Layout: when every tensor of the stage is contiguous once the stage's chunk payloads are laid
/// end to end (what `hydra convert` writes: a tensor that spans chunks fills one to its end and
/// continues at the start of the next), the arena *is* those payloads and loading a chunk is one
/// read or copy straight into place. Otherwise each tensor gets a slot and its extents are copied.
///
/// A worker that may later grow into the whole model (consolidation) lays its arena out for the
/// whole model from the start (`reservingFor`) but loads only its stage; `extend(to:)` then adds
/// the missing layers in place, reusing every byte already loaded.
public final class StageWeights: @unchecked Sendable {
    public private(set) var stage: Manifest.Stage
    /// The stage the arena is laid out for (the whole model when reserved for consolidation).
    public let layoutStage: Manifest.Stage
    public let device: any Device
    public let memory: DeviceMemory
    private let manifest: Manifest
    /// Tensor name → (manifest tensor, byte offset in the arena).
    private let slots: [String: (tensor: Manifest.Tensor, offset: Int)]
    /// Chunk index → the extents to copy out of it: (offset in chunk, length, offset in arena).
    private let plan: [Int: [(source: Int, length: Int, destination: Int)]]
    private var pendingChunks: Set<Int>
    /// Chunk index → its payload's offset in the arena, when the arena is the chunks themselves.
    private let chunkBases: [Int: Int]?

    public init(manifest: Manifest, stage: Manifest.Stage, device: any Device, reservingFor layoutStage: Manifest.Stage? = nil) {
        self.manifest = manifest
        self.stage = stage
        self.device = device
        let layout = layoutStage ?? stage
        precondition(layout.firstLayer <= stage.firstLayer && stage.endLayer <= layout.endLayer
                     && (!stage.embed || layout.embed) && (!stage.head || layout.head), "the reserved layout must contain the stage")
        self.layoutStage = layout
        let own = Set(stage.chunks)
        let needed = manifest.tensors.filter { Self.stageNeeds($0, stage: layout, tied: manifest.tiedEmbeddings) }
        if let inPlace = Self.inPlaceLayout(manifest: manifest, stage: layout, tensors: needed) {
            slots = inPlace.slots
            chunkBases = inPlace.bases
            plan = Dictionary(uniqueKeysWithValues: inPlace.bases.map { ($0.key, [(0, manifest.chunks[$0.key].payloadBytes, $0.value)]) })
            pendingChunks = Set(inPlace.bases.keys).intersection(own)
            memory = device.allocate(bytes: inPlace.size, use: .streamed)
            return
        }
        chunkBases = nil
        var slots: [String: (Manifest.Tensor, Int)] = [:]
        var plan: [Int: [(Int, Int, Int)]] = [:]
        var size = 0
        for tensor in needed {
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
        pendingChunks = Set(plan.keys).intersection(own)
        memory = device.allocate(bytes: size, use: .streamed)
    }

    /// Grows the stage (within the reserved layout): the chunks it lacks become pending, the
    /// ones already loaded stay where they are.
    public func extend(to larger: Manifest.Stage) {
        precondition(layoutStage.firstLayer <= larger.firstLayer && larger.endLayer <= layoutStage.endLayer
                     && (!larger.embed || layoutStage.embed) && (!larger.head || layoutStage.head), "extend beyond the reserved layout")
        let loaded = Set(stage.chunks).subtracting(pendingChunks)
        pendingChunks.formUnion(Set(larger.chunks).intersection(plan.keys).subtracting(loaded))
        stage = larger
    }

    /// The stage's chunk payloads end to end, if every needed tensor is contiguous that way.
    static func inPlaceLayout(manifest: Manifest, stage: Manifest.Stage, tensors: [Manifest.Tensor])
        -> (bases: [Int: Int], slots: [String: (Manifest.Tensor, Int)], size: Int)? {
        var bases: [Int: Int] = [:]
        var size = 0
        for index in stage.chunks where bases[index] == nil {
            bases[index] = size
            size += manifest.chunks[index].payloadBytes
        }
        var slots: [String: (Manifest.Tensor, Int)] = [:]
        for tensor in tensors {
            guard let first = tensor.extents.first, let base = bases[first.chunk] else { return nil }
            var end = base + first.offset
            for extent in tensor.extents {
                guard let chunkBase = bases[extent.chunk], chunkBase + extent.offset == end else { return nil }
                end += extent.length
            }
            slots[tensor.name] = (tensor, base + first.offset)
        }
        return (bases, slots, size)
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

    /// Reads every chunk the stage needs from a local store entry. With the in-place layout,
    /// uncompressed chunks are read straight into the arena, all in flight at once.
    public func load(from entry: StoreEntry, reader: any FileBatchReader = FileReaders.make()) throws {
        var staged: [Int] = []
        if let bases = chunkBases, device is CPUDevice {
            let direct = pendingChunks.filter { manifest.chunks[$0].compression == .none }.sorted()
            let fetcher = ChunkFetcher(entry: entry, reader: reader)
            try fetcher.fetchBlocking(direct, into: direct.map { memory.baseAddress + bases[$0]! }, direct: false)
            for index in direct { pendingChunks.remove(index) }
        }
        staged = pendingChunks.sorted()
        let largest = staged.map { manifest.chunks[$0].payloadBytes }.max() ?? 0
        let buffer = AlignedBuffer(count: largest)
        for index in staged {
            try entry.readChunk(index, into: buffer.bytes)
            absorb(chunk: index, payload: UnsafeRawBufferPointer(start: buffer.baseAddress, count: manifest.chunks[index].payloadBytes))
        }
    }

    /// A loaded chunk's payload, read back from the arena (in-place layout only): what a worker
    /// reuses instead of fetching again when it grows into the whole model.
    public func payload(ofChunk index: Int) -> UnsafeRawBufferPointer? {
        guard let base = chunkBases?[index], !pendingChunks.contains(index) else { return nil }
        return UnsafeRawBufferPointer(start: memory.baseAddress + base, count: manifest.chunks[index].payloadBytes)
    }

    /// True when the arena is the stage's chunk payloads laid end to end.
    public var isInPlace: Bool { chunkBases != nil }

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
