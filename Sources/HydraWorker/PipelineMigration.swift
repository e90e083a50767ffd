import HydraEngine

/// Stage 0 → later stages: send the K and V of these blocks (every layer you hold) and the
/// samplers of these sequences.
public struct PipelineMigrate: Sendable, Equatable {
    public var blocks: [Int]
    public var sequences: [Int]

    func encoded() -> [UInt8] {
        var writer = WireWriter()
        writer.u32(blocks.count)
        blocks.forEach { writer.u32($0) }
        writer.u32(sequences.count)
        sequences.forEach { writer.u64(UInt64($0)) }
        return writer.bytes
    }

    init(blocks: [Int], sequences: [Int]) {
        self.blocks = blocks
        self.sequences = sequences
    }

    init(decoding bytes: [UInt8], blockCount: Int) throws {
        var reader = WireReader(bytes)
        let count = try reader.u32("block count")
        guard count <= blockCount else { throw PipelineWire.Malformed("\(count) blocks to migrate, the cache has \(blockCount)") }
        blocks = try (0..<count).map { _ in
            let block = try reader.u32("block id")
            guard block < blockCount else { throw PipelineWire.Malformed("block id \(block) out of range (\(blockCount) blocks)") }
            return block
        }
        let sequenceCount = try reader.u32("sequence count")
        guard sequenceCount <= PipelineForward.maxSequences else { throw PipelineWire.Malformed("\(sequenceCount) sequences") }
        sequences = try (0..<sequenceCount).map { _ in Int(truncatingIfNeeded: try reader.u64("sequence id")) }
        try reader.finish("migrate")
    }
}

/// Later stages → stage 0: each stage's layers of K/V for the blocks asked for (per layer: K
/// then V, block after block), and the last stage's sampler states.
public struct PipelineKV: Sendable {
    public struct Segment: Sendable {
        public var firstLayer: Int
        public var layerCount: Int
        /// `layerCount` × (2 × blocks × blockSize × width) floats.
        public var data: [Float]
    }

    public var segments: [Segment]
    public var samplers: [SamplerTable.State]

    func encoded() -> [UInt8] {
        var writer = WireWriter()
        writer.u32(segments.count)
        for segment in segments {
            writer.u32(segment.firstLayer)
            writer.u32(segment.layerCount)
            writer.u32(segment.data.count)
            writer.floats(segment.data)
        }
        writer.u32(samplers.count)
        for state in samplers {
            writer.u64(UInt64(state.id))
            writer.sampling(state.sampling)
            writer.u64(state.generatorState)
        }
        return writer.bytes
    }

    init(segments: [Segment], samplers: [SamplerTable.State]) {
        self.segments = segments
        self.samplers = samplers
    }

    /// Checks every segment against the model: layers in range, data sized for the blocks asked.
    init(decoding bytes: [UInt8], layerCount: Int, floatsPerLayer: Int) throws {
        typealias Malformed = PipelineWire.Malformed
        var reader = WireReader(bytes)
        let count = try reader.u32("segment count")
        guard count <= layerCount else { throw Malformed("\(count) KV segments for \(layerCount) layers") }
        segments = try (0..<count).map { _ in
            let first = try reader.u32("first layer")
            let layers = try reader.u32("layer count")
            let floats = try reader.u32("float count")
            guard first + layers <= layerCount, layers >= 1 else { throw Malformed("KV segment for layers \(first)..<\(first + layers) of \(layerCount)") }
            guard floats == layers * floatsPerLayer else { throw Malformed("KV segment of \(floats) floats, expected \(layers * floatsPerLayer)") }
            return Segment(firstLayer: first, layerCount: layers, data: try reader.floats(floats, "KV data"))
        }
        let samplerCount = try reader.u32("sampler count")
        guard samplerCount <= PipelineForward.maxSequences else { throw Malformed("\(samplerCount) samplers") }
        samplers = try (0..<samplerCount).map { _ in
            let id = Int(truncatingIfNeeded: try reader.u64("sequence id"))
            let sampling = try reader.sampling("sampler of sequence \(id)")
            return SamplerTable.State(id: id, sampling: sampling, generatorState: try reader.u64("generator state"))
        }
        try reader.finish("kv")
    }
}
