import Foundation
import Glibc
import HydraSystem

/// Writes a Hugging Face checkpoint with random bf16 weights — Llama, OPT (pre-LN) or Falcon
/// (7B style: multi-query, parallel attention) — for benchmarks and experiments that need a
/// model of a given size.
public struct SyntheticModel: Sendable {
    public enum Architecture: String, Sendable, CaseIterable {
        case llama, opt, falcon
    }

    public var architecture = Architecture.llama
    public var layers: Int
    public var hidden: Int
    /// The MLP's inner width (Llama's intermediate size, OPT's ffn_dim, Falcon's 4h).
    public var intermediate: Int
    public var vocab: Int
    public var seed: UInt64 = 0x5EED

    public init(layers: Int, hidden: Int, intermediate: Int, vocab: Int) {
        self.layers = layers
        self.hidden = hidden
        self.intermediate = intermediate
        self.vocab = vocab
    }

    /// About 2 GB: 16 layers of a 2048-wide llama, separate head.
    public static let twoGB = SyntheticModel(layers: 16, hidden: 2048, intermediate: 5632, vocab: 32000)

    /// A 2048-wide model of `architecture` with as many layers as bring it nearest to `bytes`
    /// (at least one), with SmolLM2's vocabulary size so its tokenizer can serve it.
    public static func sized(_ architecture: Architecture, bytes: Int) -> SyntheticModel {
        var model = SyntheticModel(layers: 1, hidden: 2048, intermediate: architecture == .llama ? 5632 : 8192, vocab: 49152)
        model.architecture = architecture
        let fixed = model.weightBytes - model.layerBytes
        model.layers = max(1, Int((Double(bytes - fixed) / Double(model.layerBytes)).rounded()))
        return model
    }

    var layerBytes: Int { layerTensors(0).reduce(0) { $0 + $1.1.reduce(2, *) } }

    func layerTensors(_ layer: Int) -> [(String, [Int])] {
        let (h, f) = (hidden, intermediate)
        switch architecture {
        case .llama:
            let p = "model.layers.\(layer)."
            return [(p + "input_layernorm.weight", [h]), (p + "self_attn.q_proj.weight", [h, h]), (p + "self_attn.k_proj.weight", [h, h]),
                    (p + "self_attn.v_proj.weight", [h, h]), (p + "self_attn.o_proj.weight", [h, h]), (p + "post_attention_layernorm.weight", [h]),
                    (p + "mlp.gate_proj.weight", [f, h]), (p + "mlp.up_proj.weight", [f, h]), (p + "mlp.down_proj.weight", [h, f])]
        case .opt:
            let p = "model.decoder.layers.\(layer)."
            var out: [(String, [Int])] = []
            for projection in ["q_proj", "k_proj", "v_proj", "out_proj"] {
                out += [(p + "self_attn.\(projection).weight", [h, h]), (p + "self_attn.\(projection).bias", [h])]
            }
            return out + [(p + "self_attn_layer_norm.weight", [h]), (p + "self_attn_layer_norm.bias", [h]), (p + "fc1.weight", [f, h]),
                          (p + "fc1.bias", [f]), (p + "fc2.weight", [h, f]), (p + "fc2.bias", [h]), (p + "final_layer_norm.weight", [h]),
                          (p + "final_layer_norm.bias", [h])]
        case .falcon:
            let p = "transformer.h.\(layer)."
            return [(p + "input_layernorm.weight", [h]), (p + "input_layernorm.bias", [h]),
                    (p + "self_attention.query_key_value.weight", [h + 2 * 64, h]), (p + "self_attention.dense.weight", [h, h]),
                    (p + "mlp.dense_h_to_4h.weight", [f, h]), (p + "mlp.dense_4h_to_h.weight", [h, f])]
        }
    }

    public var tensors: [(name: String, shape: [Int])] {
        let layerList = (0..<layers).flatMap(layerTensors)
        switch architecture {
        case .llama:
            return [("model.embed_tokens.weight", [vocab, hidden])] + layerList
                + [("model.norm.weight", [hidden]), ("lm_head.weight", [vocab, hidden])]
        case .opt:
            return [("model.decoder.embed_tokens.weight", [vocab, hidden]), ("model.decoder.embed_positions.weight", [2048 + 2, hidden])] + layerList
                + [("model.decoder.final_layer_norm.weight", [hidden]), ("model.decoder.final_layer_norm.bias", [hidden])]
        case .falcon:
            return [("transformer.word_embeddings.weight", [vocab, hidden])] + layerList
                + [("transformer.ln_f.weight", [hidden]), ("transformer.ln_f.bias", [hidden])]
        }
    }

    public var weightBytes: Int { tensors.reduce(0) { $0 + $1.shape.reduce(2, *) } }

    public var config: String {
        switch architecture {
        case .llama:
            return """
            {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": \(hidden), \
            "intermediate_size": \(intermediate), "num_hidden_layers": \(layers), "num_attention_heads": \(hidden / 64), \
            "num_key_value_heads": \(hidden / 64), "head_dim": 64, "vocab_size": \(vocab), "rms_norm_eps": 1e-05, \
            "rope_theta": 10000.0, "max_position_embeddings": 4096, "hidden_act": "silu", "tie_word_embeddings": false, \
            "torch_dtype": "bfloat16"}
            """
        case .opt:
            return """
            {"architectures": ["OPTForCausalLM"], "model_type": "opt", "hidden_size": \(hidden), "ffn_dim": \(intermediate), \
            "num_hidden_layers": \(layers), "num_attention_heads": \(hidden / 64), "vocab_size": \(vocab), \
            "max_position_embeddings": 2048, "do_layer_norm_before": true, "word_embed_proj_dim": \(hidden), \
            "activation_function": "relu", "enable_bias": true, "tie_word_embeddings": true, "torch_dtype": "bfloat16"}
            """
        case .falcon:
            return """
            {"architectures": ["FalconForCausalLM"], "model_type": "falcon", "hidden_size": \(hidden), "ffn_hidden_size": \(intermediate), \
            "num_hidden_layers": \(layers), "num_attention_heads": \(hidden / 64), "num_kv_heads": 1, "multi_query": true, \
            "new_decoder_architecture": false, "parallel_attn": true, "bias": false, "alibi": false, "vocab_size": \(vocab), \
            "layer_norm_epsilon": 1e-05, "rope_theta": 10000.0, "max_position_embeddings": 2048, "tie_word_embeddings": true, \
            "torch_dtype": "bfloat16"}
            """
        }
    }

    /// Writes config.json and model.safetensors into `directory` (created if needed).
    public func write(to directory: String) throws {
        try makeDirectory(directory)
        try Data(config.utf8).write(to: URL(fileURLWithPath: directory + "/config.json"))
        var entries: [String] = []
        var offset = 0
        for (name, shape) in tensors {
            let bytes = shape.reduce(2, *)
            entries.append("\"\(name)\":{\"dtype\":\"BF16\",\"shape\":\(shape),\"data_offsets\":[\(offset),\(offset + bytes)]}")
            offset += bytes
        }
        var header = Array(("{" + entries.joined(separator: ",") + "}").utf8)
        while (header.count + 8) % 8 != 0 { header.append(0x20) }
        let path = directory + "/model.safetensors"
        unlink(path)
        let file = try FileDescriptor.create(path)
        var prefix = withUnsafeBytes(of: UInt64(header.count).littleEndian) { Array($0) }
        prefix += header
        try prefix.withUnsafeBytes { try file.write($0, at: 0) }
        let piece = AlignedBuffer(count: 8 << 20)
        var state = seed
        var written = 0
        while written < offset {
            let count = min(piece.count, offset - written)
            fillRandomBF16(UnsafeMutableRawBufferPointer(start: piece.baseAddress, count: count), state: &state)
            try file.write(UnsafeRawBufferPointer(start: piece.baseAddress, count: count), at: prefix.count + written)
            written += count
        }
    }

    /// bf16 values shaped like trained weights: random sign and mantissa, magnitudes around
    /// 2^-8…2^-4, so compression and hashing see realistic bytes.
    private func fillRandomBF16(_ buffer: UnsafeMutableRawBufferPointer, state: inout UInt64) {
        let words = buffer.bindMemory(to: UInt64.self)
        for i in 0..<words.count {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            var packed: UInt64 = 0
            for lane in 0..<4 {
                let r = UInt16(truncatingIfNeeded: state >> (lane * 16))
                let exponent = UInt16(119 + (r >> 8) % 5)
                packed |= UInt64((r & 0x8000) | exponent << 7 | (r & 0x7F)) << (lane * 16)
            }
            words[i] = packed
        }
    }
}
