import HydraFormat

/// Llama-2 and Llama-3 (and SmolLM2): RMSNorm, rotary attention with grouped-query heads,
/// SwiGLU MLP; llama3 rope scaling from the config; tied head when lm_head is absent.
struct LlamaModel: TransformerModel {
    struct Layer {
        let inputNorm, q, k, v, o, postNorm, gate, up, down: Weight
        let qBias, kBias, vBias, oBias: Weight?
    }

    let config: ModelConfig
    let rope: Rope
    let embedTokens: Weight?
    let norm: Weight?
    let head: Weight?
    let layers: [Int: Layer]

    init(config: ModelConfig, weights: StageWeights) throws {
        self.config = config
        rope = Rope(headDim: config.headDim, theta: config.ropeTheta, scaling: config.ropeScaling)
        embedTokens = try weights.ifFirst("model.embed_tokens.weight")
        norm = try weights.ifLast("model.norm.weight")
        head = weights.stage.head ? try (weights.optionalWeight("lm_head.weight") ?? weights.weight("model.embed_tokens.weight")) : nil
        layers = try weights.layers({ "model.layers.\($0)." }) { p in
            Layer(inputNorm: try weights.weight(p + "input_layernorm.weight"),
                  q: try weights.weight(p + "self_attn.q_proj.weight"), k: try weights.weight(p + "self_attn.k_proj.weight"),
                  v: try weights.weight(p + "self_attn.v_proj.weight"), o: try weights.weight(p + "self_attn.o_proj.weight"),
                  postNorm: try weights.weight(p + "post_attention_layernorm.weight"),
                  gate: try weights.weight(p + "mlp.gate_proj.weight"), up: try weights.weight(p + "mlp.up_proj.weight"),
                  down: try weights.weight(p + "mlp.down_proj.weight"),
                  qBias: try weights.optionalWeight(p + "self_attn.q_proj.bias"), kBias: try weights.optionalWeight(p + "self_attn.k_proj.bias"),
                  vBias: try weights.optionalWeight(p + "self_attn.v_proj.bias"), oBias: try weights.optionalWeight(p + "self_attn.o_proj.bias"))
        }
    }

    func embed(_ ids: [Int], positions: [Int]) -> Matrix {
        Kernels.gather(embedTokens!, ids: ids)
    }

    func layer(_ index: Int, _ x: inout Matrix, batch: Batch, cache: KVCache, cacheLayer: Int) {
        let w = layers[index]!
        let positions = batch.positions
        let h = Kernels.rmsNorm(x, w.inputNorm, eps: config.normEps)
        var (q, k, v) = Kernels.linear(h, (w.q, w.qBias), (w.k, w.kBias), (w.v, w.vBias))
        rope.apply(&q, heads: config.headCount, positions: positions)
        rope.apply(&k, heads: config.kvHeadCount, positions: positions)
        let attention = Kernels.selfAttention(q: q, k: k, v: v, batch: batch, cache: cache, cacheLayer: cacheLayer, config: config)
        x += Kernels.linear(attention, w.o, bias: w.oBias)
        let m = Kernels.rmsNorm(x, w.postNorm, eps: config.normEps)
        var (gate, up) = Kernels.linear(m, (w.gate, nil), (w.up, nil))
        Kernels.siluMultiply(&gate, by: up)
        x += Kernels.linear(gate, w.down)
    }

    func logits(_ x: Matrix) -> Matrix {
        Kernels.linear(Kernels.rmsNorm(x, norm!, eps: config.normEps), head!)
    }
}
