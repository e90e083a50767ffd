import Foundation
import HydraEngine
import HydraFormat
import HydraStore
import HydraSystem
import Logging

/// A stage worker's cold start. Two things run at once from the start: (a) attach to the node
/// cache and copy each chunk of the stage into device memory the moment it is announced;
/// (b) initialise the runtime — config, KV blocks (made resident), compute threads. The stage is
/// ready when both are done.
public struct StageStartup: Sendable {
    public var model: String
    public var stage: Int
    public var pp: Int
    public var cacheSocket: String
    /// The whole model's KV budget: every stage derives the same block count from it, so block
    /// ids are shared along the pipeline (and survive consolidation).
    public var kvCacheBytes = StageRunner.defaultKVCacheBytes
    public var kvDType = KVDType.f32
    public var blockSize = 16
    /// Lay the weights out for the whole model (loading only this stage), so the worker can
    /// later consolidate the pipeline into itself without moving what it holds.
    public var memoryFull = false
    /// The fetch-then-start baseline: fetch the whole stage into the node cache first, and only
    /// then initialise the runtime and load (what a serverless worker that downloads its model
    /// at start-up does). Off: the two overlap (HydraServe).
    public var fetchFirst = false

    public init(model: String, stage: Int, pp: Int, cacheSocket: String) {
        self.model = model
        self.stage = stage
        self.pp = pp
        self.cacheSocket = cacheSocket
    }

    /// Runs both halves of the start-up and returns the ready stage.
    public func run(timeline: StartupTimeline, device: any Device = CPUDevice()) throws -> (manifest: Manifest, runner: StageRunner) {
        if fetchFirst {
            let attachment = try NodeCacheClient.attach(socketPath: cacheSocket, order: CacheOrder(model: model, stage: stage, pp: pp))
            while try attachment.next() != nil {}
            attachment.close()
            timeline.mark("fetched")
        }
        let manifestBox = LockedBox<Result<Manifest, Error>?>(nil)
        let manifestKnown = DispatchSemaphore(value: 0)
        let weightsBox = LockedBox<Result<StageWeights, Error>?>(nil)
        let cacheBox = LockedBox<Result<KVCache, Error>?>(nil)
        let group = DispatchGroup()

        group.enter()
        Thread.detachNewThread {
            defer { group.leave() }
            weightsBox.value = Result {
                do {
                    let (manifest, weights) = try loadWeights(timeline: timeline, device: device) { manifest in
                        manifestBox.value = .success(manifest)
                        manifestKnown.signal()
                    }
                    _ = manifest
                    return weights
                } catch {
                    if manifestBox.value == nil { manifestBox.value = .failure(error); manifestKnown.signal() }
                    throw error
                }
            }
        }
        group.enter()
        Thread.detachNewThread {
            defer { group.leave() }
            manifestKnown.wait()
            cacheBox.value = Result {
                let manifest = try manifestBox.value!.get()
                return try initialiseRuntime(manifest: manifest, device: device, timeline: timeline)
            }
        }
        group.wait()
        let manifest = try manifestBox.value!.get()
        let weights = try weightsBox.value!.get()
        let cache = try cacheBox.value!.get()
        let runner = try StageRunner(manifest: manifest, weights: weights, cache: cache)
        timeline.mark("ready")
        return (manifest, runner)
    }

    /// (a) Attach and absorb chunks as they land; `onManifest` fires as soon as the manifest is in.
    func loadWeights(timeline: StartupTimeline, device: any Device, onManifest: (Manifest) -> Void) throws -> (Manifest, StageWeights) {
        let attachment = try NodeCacheClient.attach(socketPath: cacheSocket, order: CacheOrder(model: model, stage: stage, pp: pp))
        defer { attachment.close() }
        timeline.mark("attached")
        let manifest = attachment.manifest
        onManifest(manifest)
        let weights = StageWeights(manifest: manifest, stage: try manifest.stage(stage, of: pp), device: device,
                                   reservingFor: memoryFull ? try manifest.stage(0, of: 1) : nil)
        var first = true
        try weights.absorb(attachment) {
            if first { timeline.mark("first_chunk"); first = false }
        }
        timeline.mark("last_chunk")
        guard weights.isComplete else {
            throw FormatError(model, "stage \(stage) of \(pp) is missing chunks \(weights.missingChunks.sorted()) after the cache finished")
        }
        return (manifest, weights)
    }

    /// (b) Everything the first token needs besides the weights.
    func initialiseRuntime(manifest: Manifest, device: any Device, timeline: StartupTimeline) throws -> KVCache {
        let config = try ModelConfig(manifest.config, name: manifest.name)
        let plan = try manifest.stage(stage, of: pp)
        let blocks = StageRunner.blockCount(config: config, layers: config.layerCount, kvCacheBytes: kvCacheBytes, blockSize: blockSize, kvDType: kvDType)
        let cache = KVCache(device: device, layerCount: plan.endLayer - plan.firstLayer, width: config.kvWidth, heads: config.kvHeadCount, blockSize: blockSize,
                            blockCount: blocks, dtype: kvDType)
        cache.prefault()
        Parallel.warmUp()
        timeline.mark("runtime_ready")
        return cache
    }
}
