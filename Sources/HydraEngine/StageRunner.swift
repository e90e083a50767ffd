import HydraFormat

/// One pipeline stage ready to run: its weights (resident once), its model family's forward
/// pass over its layer range, and its KV cache. pp = 1 is the whole model.
public final class StageRunner: @unchecked Sendable {
    public let config: ModelConfig
    public let stage: Manifest.Stage
    public let weights: StageWeights
    public let cache: KVCache
    let model: any TransformerModel

    /// Default KV budget: enough for several long sequences without sizing from the
    /// (possibly huge) max_position_embeddings.
    public static let defaultKVCacheBytes = 256 << 20

    /// Builds the stage and loads its weights from a local store entry. `kvDType` f16 halves the
    /// cache's bytes per token (so `kvCacheBytes` holds twice the tokens) at f16's precision.
    public convenience init(entry: StoreEntry, stage: Int = 0, of pp: Int = 1, device: any Device = CPUDevice(),
                            kvCacheBytes: Int = StageRunner.defaultKVCacheBytes, blockSize: Int = 16, kvDType: KVDType = .f32) throws {
        let plan = try entry.stage(stage, of: pp)
        let weights = StageWeights(manifest: entry.manifest, stage: plan, device: device)
        try weights.load(from: entry)
        let config = try ModelConfig(entry.manifest.config, name: entry.manifest.name)
        let blocks = Self.blockCount(config: config, layers: plan.endLayer - plan.firstLayer, kvCacheBytes: kvCacheBytes, blockSize: blockSize,
                                     kvDType: kvDType)
        try self.init(manifest: entry.manifest, weights: weights, kvBlockCount: blocks, blockSize: blockSize, kvDType: kvDType)
    }

    /// Builds the stage over weights that are already loaded (or streamed in by the caller).
    /// Every stage of a pipeline gets the same `kvBlockCount`: block ids are shared.
    public convenience init(manifest: Manifest, weights: StageWeights, kvBlockCount: Int, blockSize: Int = 16, kvDType: KVDType = .f32) throws {
        precondition(kvBlockCount > 0 && blockSize > 0)
        let config = try ModelConfig(manifest.config, name: manifest.name)
        let cache = KVCache(device: weights.device, layerCount: weights.stage.endLayer - weights.stage.firstLayer, width: config.kvWidth, heads: config.kvHeadCount,
                            blockSize: blockSize, blockCount: kvBlockCount, dtype: kvDType)
        try self.init(manifest: manifest, weights: weights, cache: cache)
    }

    /// Builds the stage over loaded weights and a KV cache made beforehand (a cold-starting
    /// worker prepares the cache while the weights are still arriving).
    public init(manifest: Manifest, weights: StageWeights, cache: KVCache) throws {
        config = try ModelConfig(manifest.config, name: manifest.name)
        stage = weights.stage
        precondition(cache.layerCount == stage.endLayer - stage.firstLayer && cache.width == config.kvWidth, "KV cache shape does not match the stage")
        self.weights = weights
        model = try ModelFactory.make(config: config, weights: weights)
        self.cache = cache
    }

    /// KV blocks of `blockSize` tokens that `kvCacheBytes` holds for `layers` layers.
    public static func blockCount(config: ModelConfig, layers: Int, kvCacheBytes: Int, blockSize: Int = 16, kvDType: KVDType = .f32) -> Int {
        let bytesPerBlock = 2 * max(1, layers) * blockSize * config.kvWidth * kvDType.byteCount
        return max(1, kvCacheBytes / bytesPerBlock)
    }

    /// Tokens this stage's cache can hold in all, and the longest sequence the model allows.
    public var tokenCapacity: Int { cache.blockCount * cache.blockSize }
    public var contextLength: Int { min(config.maxPositions, tokenCapacity) }

    /// Runs the stage: token ids on the first stage, else the previous stage's residual stream.
    /// Returns the residual stream after this stage's last layer.
    /// `observe(layer, x)` sees the residual stream after each layer (tests, debugging).
    public func forward(tokens: [Int]? = nil, hidden: Matrix? = nil, batch: Batch,
                        observe: ((Int, Matrix) -> Void)? = nil) -> Matrix {
        var x: Matrix
        if stage.embed {
            guard let tokens else { preconditionFailure("the first stage takes token ids") }
            x = model.embed(tokens, positions: batch.positions)
        } else {
            guard let hidden else { preconditionFailure("a later stage takes the residual stream") }
            x = hidden
        }
        precondition(x.rows == batch.tokenCount, "batch has \(batch.tokenCount) tokens, input has \(x.rows) rows")
        for layer in stage.firstLayer..<stage.endLayer {
            model.layer(layer, &x, batch: batch, cache: cache, cacheLayer: layer - stage.firstLayer)
            observe?(layer, x)
        }
        return x
    }

    /// Logits for the given rows of the residual stream (last stage only).
    public func logits(_ hidden: Matrix, rows: [Int]) -> Matrix {
        precondition(stage.head, "only the last stage computes logits")
        var selected = Matrix(zeros: rows.count, hidden.columns)
        for (i, row) in rows.enumerated() {
            selected.values.replaceSubrange((i * hidden.columns)..<((i + 1) * hidden.columns), with: hidden.row(row))
        }
        return model.logits(selected)
    }
}
