import HydraFormat

/// OPT: learned positions offset by 2, LayerNorm before (pre-LN) or after (post-LN) each block,
/// ReLU MLP, optional project_in/project_out around a narrower embedding, tied head.
struct OPTModel: TransformerModel {
    struct Layer {
        let attentionNorm, attentionNormBias, finalNorm, finalNormBias: Weight?
        let q, k, v, out, fc1, fc2: Weight
        let qBias, kBias, vBias, outBias, fc1Bias, fc2Bias: Weight?
    }

    static let positionOffset = 2
    let config: ModelConfig
    let embedTokens, embedPositions, projectIn: Weight?
    let finalNorm, finalNormBias, projectOut, head: Weight?
    let layers: [Int: Layer]

    init(config: ModelConfig, weights: StageWeights) throws {
        self.config = config
        let p0 = "model.decoder."
        embedTokens = try weights.ifFirst(p0 + "embed_tokens.weight")
        embedPositions = try weights.ifFirst(p0 + "embed_positions.weight")
        projectIn = weights.stage.embed ? try weights.optionalWeight(p0 + "project_in.weight") : nil
        finalNorm = weights.stage.head ? try weights.optionalWeight(p0 + "final_layer_norm.weight") : nil
        finalNormBias = weights.stage.head ? try weights.optionalWeight(p0 + "final_layer_norm.bias") : nil
        projectOut = weights.stage.head ? try weights.optionalWeight(p0 + "project_out.weight") : nil
        head = weights.stage.head ? try (weights.optionalWeight("lm_head.weight") ?? weights.weight(p0 + "embed_tokens.weight")) : nil
        layers = try weights.layers({ "\(p0)layers.\($0)." }) { p in
            func w(_ name: String) throws -> Weight { try weights.weight(p + name) }
            func o(_ name: String) throws -> Weight? { try weights.optionalWeight(p + name) }
            return Layer(attentionNorm: try w("self_attn_layer_norm.weight"), attentionNormBias: try o("self_attn_layer_norm.bias"),
                         finalNorm: try w("final_layer_norm.weight"), finalNormBias: try o("final_layer_norm.bias"),
                         q: try w("self_attn.q_proj.weight"), k: try w("self_attn.k_proj.weight"), v: try w("self_attn.v_proj.weight"),
                         out: try w("self_attn.out_proj.weight"), fc1: try w("fc1.weight"), fc2: try w("fc2.weight"),
                         qBias: try o("self_attn.q_proj.bias"), kBias: try o("self_attn.k_proj.bias"), vBias: try o("self_attn.v_proj.bias"),
                         outBias: try o("self_attn.out_proj.bias"), fc1Bias: try o("fc1.bias"), fc2Bias: try o("fc2.bias"))
        }
    }

    func embed(_ ids: [Int], positions: [Int]) -> Matrix {
        var x = Kernels.gather(embedTokens!, ids: ids)
        if let projectIn { x = Kernels.linear(x, projectIn) }
        x += Kernels.gather(embedPositions!, ids: positions.map { $0 + Self.positionOffset })
        return x
    }

    func layer(_ index: Int, _ x: inout Matrix, batch: Batch, cache: KVCache, cacheLayer: Int) {
        let w = layers[index]!
        let eps = config.normEps
        let pre = config.layerNormBefore
        let h = pre ? Kernels.layerNorm(x, w.attentionNorm!, w.attentionNormBias, eps: eps) : x
        // OPT scales q after its bias; the shared attention scales scores by 1/√d instead: same result.
        let (q, k, v) = Kernels.linear(h, (w.q, w.qBias), (w.k, w.kBias), (w.v, w.vBias))
        let attention = Kernels.selfAttention(q: q, k: k, v: v, batch: batch, cache: cache, cacheLayer: cacheLayer, config: config)
        x += Kernels.linear(attention, w.out, bias: w.outBias)
        if !pre { x = Kernels.layerNorm(x, w.attentionNorm!, w.attentionNormBias, eps: eps) }
        var m = pre ? Kernels.layerNorm(x, w.finalNorm!, w.finalNormBias, eps: eps) : x
        m = Kernels.linear(m, w.fc1, bias: w.fc1Bias)
        Kernels.relu(&m)
        x += Kernels.linear(m, w.fc2, bias: w.fc2Bias)
        if !pre { x = Kernels.layerNorm(x, w.finalNorm!, w.finalNormBias, eps: eps) }
    }

    func logits(_ x: Matrix) -> Matrix {
        var h = x
        if let finalNorm { h = Kernels.layerNorm(h, finalNorm, finalNormBias, eps: config.normEps) }
        if let projectOut { h = Kernels.linear(h, projectOut) }
        return Kernels.linear(h, head!)
    }
}
