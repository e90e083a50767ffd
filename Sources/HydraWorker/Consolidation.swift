import Foundation
import HydraEngine
import HydraFormat
import HydraStore
import HydraSystem

/// Pipeline consolidation: stage 0 (started with its memory reserved for the whole model) grows
/// into the whole model while it keeps serving as a stage, then takes over the in-flight
/// sequences and becomes a single-worker endpoint; the other stages are told to exit.
public enum Consolidation {
    public enum Mode: String, Codable, Sendable {
        /// Migrate when that is faster than letting the running sequences finish, else drain.
        case auto
        /// Copy every live sequence's K and V blocks from the other stages, then switch at once.
        case migrate
        /// Admit nothing new, let the running sequences finish on the pipeline, then switch.
        case drain
    }

    public struct Report: Codable, Sendable {
        public var mode: Mode
        public var loadSeconds: Double
        public var switchSeconds: Double
        public var fetchedChunks: Int
        public var migratedSequences: Int
        public var migratedBytes: Int
    }

    /// Phase 1, while still serving: order the complement of the stage at low priority and load
    /// it into the reserved arena around the layers already held.
    static func loadWholeModel(weights: StageWeights, manifest: Manifest, stage: Int, pp: Int, cacheSocket: String) throws -> Int {
        let whole = try manifest.stage(0, of: 1)
        weights.extend(to: whole)
        let order = CacheOrder(model: manifest.name, stage: stage, pp: pp, complement: true, priority: .low)
        let attachment = try NodeCacheClient.attach(socketPath: cacheSocket, order: order)
        defer { attachment.close() }
        let fetched = try weights.absorb(attachment)
        guard weights.isComplete else {
            throw FormatError(manifest.name, "consolidation is missing chunks \(weights.missingChunks.sorted()) after the cache finished")
        }
        return fetched
    }

    /// Phase 2, on the engine thread between steps: a KV cache for every layer (same block ids),
    /// the other stages' K/V of the live blocks and their samplers, then the switch.
    static func switchOver(engine: Engine, pipeline: PipelineExecutor, manifest: Manifest) throws -> (sequences: Int, bytes: Int) {
        let old = pipeline.runner.cache
        let config = pipeline.runner.config
        let cache = KVCache(device: pipeline.runner.weights.device, layerCount: config.layerCount, width: old.width, heads: old.heads,
                            blockSize: old.blockSize, blockCount: old.blockCount, dtype: old.dtype, sharing: old.blocks)
        let first = pipeline.runner.stage.firstLayer
        for layer in 0..<old.layerCount { cache.copyLayer(layer, from: old, to: first + layer) }
        let live = engine.liveSequences
        let blocks = Array(Set(live.flatMap(\.blocks))).sorted()
        let floatsPerLayer = 2 * blocks.count * cache.floatsPerBlock
        let kv = try pipeline.link.migrate(PipelineMigrate(blocks: blocks, sequences: engine.pendingIDs), stage: 1,
                                           layerCount: config.layerCount, floatsPerLayer: floatsPerLayer)
        var covered = Set(first..<(first + old.layerCount))
        for segment in kv.segments {
            for layer in 0..<segment.layerCount {
                guard covered.insert(segment.firstLayer + layer).inserted else {
                    throw PipelineLink.Failure(message: "layer \(segment.firstLayer + layer) arrived twice in the migration")
                }
                cache.writeBlocks(layer: segment.firstLayer + layer, blocks: blocks,
                                  segment.data[(layer * floatsPerLayer)..<((layer + 1) * floatsPerLayer)])
            }
        }
        guard covered.count == config.layerCount else {
            throw PipelineLink.Failure(message: "the migration covered \(covered.count) of \(config.layerCount) layers")
        }
        var samplers = SamplerTable()
        samplers.restore(kv.samplers)
        let runner = try StageRunner(manifest: manifest, weights: pipeline.runner.weights, cache: cache)
        engine.replaceExecutor(try LocalExecutor(runner: runner, samplers: samplers))
        try pipeline.link.retire(stage: 1)
        return (live.count, kv.segments.reduce(0) { $0 + $1.data.count * MemoryLayout<Float>.size })
    }

    /// Whether draining is the cheaper way: the running sequences' remaining steps against
    /// moving their K/V (at a conservative 1 GB/s between workers).
    static func chooseMode(_ requested: Mode, engine: Engine, service: EngineService, pipeline: PipelineExecutor) -> Mode {
        guard requested == .auto else { return requested }
        let (tokens, stepSeconds) = service.drainEstimate
        let blocks = Set(engine.liveSequences.flatMap(\.blocks)).count
        let layers = pipeline.runner.config.layerCount - pipeline.runner.cache.layerCount
        let bytes = Double(2 * blocks * pipeline.runner.cache.floatsPerBlock * layers * MemoryLayout<Float>.size)
        return Double(tokens) * stepSeconds < bytes / 1e9 + 0.005 ? .drain : .migrate
    }
}
