import HydraFormat

/// One model family's forward pass, split so a pipeline stage can run any contiguous layer
/// range: `embed` on the first stage, `layer` for each of its layers, `logits` on the last.
public protocol TransformerModel: Sendable {
    var config: ModelConfig { get }
    /// Token ids → the residual stream (first stage only).
    func embed(_ ids: [Int], positions: [Int]) -> Matrix
    /// Runs global layer `layer` over the batch in place; its K/V go to `cache` layer `cacheLayer`.
    func layer(_ layer: Int, _ x: inout Matrix, batch: Batch, cache: KVCache, cacheLayer: Int)
    /// Residual stream rows → logits over the vocabulary (last stage only).
    func logits(_ x: Matrix) -> Matrix
}

enum ModelFactory {
    static func make(config: ModelConfig, weights: StageWeights) throws -> any TransformerModel {
        switch config.family {
        case .llama: try LlamaModel(config: config, weights: weights)
        case .opt: try OPTModel(config: config, weights: weights)
        case .falcon: try FalconModel(config: config, weights: weights)
        }
    }
}

extension StageWeights {
    /// The weights of each layer of this stage, built by `make(layerIndex, prefix)`.
    func layers<Layer>(_ prefix: (Int) -> String, _ make: (String) throws -> Layer) throws -> [Int: Layer] {
        var out: [Int: Layer] = [:]
        for layer in stage.firstLayer..<stage.endLayer { out[layer] = try make(prefix(layer)) }
        return out
    }

    func ifFirst(_ name: String) throws -> Weight? { stage.embed ? try weight(name) : nil }
    func ifLast(_ name: String) throws -> Weight? { stage.head ? try weight(name) : nil }
}

/// Self-attention shared by the families once q, k and v are projected and rotated.
extension Kernels {
    static func selfAttention(q: Matrix, k: Matrix, v: Matrix, batch: Batch, cache: KVCache, cacheLayer: Int,
                              config: ModelConfig) -> Matrix {
        cache.write(layer: cacheLayer, keys: k, values: v, batch: batch)
        return attention(queries: q, batch: batch, cache: cache, layer: cacheLayer, heads: config.headCount,
                         kvHeads: config.kvHeadCount, headDim: config.headDim, scale: 1 / Float(config.headDim).squareRoot())
    }
}
