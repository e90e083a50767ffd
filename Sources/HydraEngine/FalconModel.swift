import HydraFormat

/// Falcon: parallel attention and MLP (x + attn + mlp), exact GELU, rotary attention.
/// Old architecture (7B): one LayerNorm, multi-query fused QKV [H q, 1 k, 1 v]. New decoder
/// architecture (40B): ln_attn and ln_mlp, grouped fused QKV [KV][H/KV q, k, v].
struct FalconModel: TransformerModel {
    struct Layer {
        let attentionNorm, mlpNorm: Weight
        let attentionNormBias, mlpNormBias: Weight?
        let qkv, dense, up, down: Weight
        let qkvBias, denseBias, upBias, downBias: Weight?
    }

    let config: ModelConfig
    let rope: Rope
    let embedTokens, finalNorm, finalNormBias, head: Weight?
    let layers: [Int: Layer]

    init(config: ModelConfig, weights: StageWeights) throws {
        self.config = config
        rope = Rope(headDim: config.headDim, theta: config.ropeTheta, scaling: config.ropeScaling)
        embedTokens = try weights.ifFirst("transformer.word_embeddings.weight")
        finalNorm = try weights.ifLast("transformer.ln_f.weight")
        finalNormBias = weights.stage.head ? try weights.optionalWeight("transformer.ln_f.bias") : nil
        head = weights.stage.head ? try (weights.optionalWeight("lm_head.weight") ?? weights.weight("transformer.word_embeddings.weight")) : nil
        let twoNorms = config.falconNewArchitecture && config.falconParallelNorms == 2
        layers = try weights.layers({ "transformer.h.\($0)." }) { p in
            func w(_ name: String) throws -> Weight { try weights.weight(p + name) }
            func o(_ name: String) throws -> Weight? { try weights.optionalWeight(p + name) }
            let attentionNorm = twoNorms ? "ln_attn" : "input_layernorm"
            let mlpNorm = twoNorms ? "ln_mlp" : "input_layernorm"
            return Layer(attentionNorm: try w(attentionNorm + ".weight"), mlpNorm: try w(mlpNorm + ".weight"),
                         attentionNormBias: try o(attentionNorm + ".bias"), mlpNormBias: try o(mlpNorm + ".bias"),
                         qkv: try w("self_attention.query_key_value.weight"), dense: try w("self_attention.dense.weight"),
                         up: try w("mlp.dense_h_to_4h.weight"), down: try w("mlp.dense_4h_to_h.weight"),
                         qkvBias: try o("self_attention.query_key_value.bias"), denseBias: try o("self_attention.dense.bias"),
                         upBias: try o("mlp.dense_h_to_4h.bias"), downBias: try o("mlp.dense_4h_to_h.bias"))
        }
    }

    func embed(_ ids: [Int], positions: [Int]) -> Matrix {
        Kernels.gather(embedTokens!, ids: ids)
    }

    /// Splits fused QKV rows into q [T, H·D], k and v [T, KV·D].
    func split(_ qkv: Matrix) -> (Matrix, Matrix, Matrix) {
        let heads = config.headCount, kv = config.kvHeadCount, d = config.headDim
        var q = Matrix(zeros: qkv.rows, heads * d), k = Matrix(zeros: qkv.rows, kv * d), v = Matrix(zeros: qkv.rows, kv * d)
        for row in 0..<qkv.rows {
            let base = row * qkv.columns
            func copy(_ sourceHead: Int, into target: inout Matrix, _ targetHead: Int) {
                for i in 0..<d { target.values[row * target.columns + targetHead * d + i] = qkv.values[base + sourceHead * d + i] }
            }
            if config.falconNewArchitecture {
                let perGroup = heads / kv
                for g in 0..<kv {
                    for j in 0..<perGroup { copy(g * (perGroup + 2) + j, into: &q, g * perGroup + j) }
                    copy(g * (perGroup + 2) + perGroup, into: &k, g)
                    copy(g * (perGroup + 2) + perGroup + 1, into: &v, g)
                }
            } else if kv == 1 {
                for h in 0..<heads { copy(h, into: &q, h) }
                copy(heads, into: &k, 0)
                copy(heads + 1, into: &v, 0)
            } else {  // interleaved per head: [H][q, k, v]
                for h in 0..<heads {
                    copy(3 * h, into: &q, h)
                    copy(3 * h + 1, into: &k, h)
                    copy(3 * h + 2, into: &v, h)
                }
            }
        }
        return (q, k, v)
    }

    func layer(_ index: Int, _ x: inout Matrix, batch: Batch, cache: KVCache, cacheLayer: Int) {
        let w = layers[index]!
        let positions = batch.positions
        let attentionInput = Kernels.layerNorm(x, w.attentionNorm, w.attentionNormBias, eps: config.normEps)
        let mlpInput = w.mlpNorm.name == w.attentionNorm.name ? attentionInput
            : Kernels.layerNorm(x, w.mlpNorm, w.mlpNormBias, eps: config.normEps)
        var (q, k, v) = split(Kernels.linear(attentionInput, w.qkv, bias: w.qkvBias))
        rope.apply(&q, heads: config.headCount, positions: positions)
        rope.apply(&k, heads: config.kvHeadCount, positions: positions)
        let attention = Kernels.selfAttention(q: q, k: k, v: v, batch: batch, cache: cache, cacheLayer: cacheLayer, config: config)
        var m = Kernels.linear(mlpInput, w.up, bias: w.upBias)
        Kernels.gelu(&m)
        x += Kernels.linear(attention, w.dense, bias: w.denseBias)
        x += Kernels.linear(m, w.down, bias: w.downBias)
    }

    func logits(_ x: Matrix) -> Matrix {
        Kernels.linear(Kernels.layerNorm(x, finalNorm!, finalNormBias, eps: config.normEps), head!)
    }
}
