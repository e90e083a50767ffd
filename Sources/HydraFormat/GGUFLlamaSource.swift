/// Converts a llama-architecture GGUF file into Hugging Face terms: tensor names and layout,
/// config.json, tokenizer.json, tokenizer_config.json and the chat template.
public enum GGUFLlamaSource {
    public static func load(path: String) throws -> SourceModel {
        let gguf = try GGUFFile(path: path)
        let architecture = gguf.metadata["general.architecture"]?.stringValue ?? "(none)"
        guard architecture == "llama" else {
            throw FormatError(path, "GGUF architecture '\(architecture)' is not supported (supported: llama)")
        }
        func required(_ key: String) throws -> Int {
            guard let value = gguf.metadata["llama." + key]?.intValue else {
                throw FormatError(path, "GGUF metadata 'llama.\(key)' is missing")
            }
            return value
        }
        let heads = try required("attention.head_count")
        let kvHeads = gguf.metadata["llama.attention.head_count_kv"]?.intValue ?? heads
        let layers = try required("block_count")
        let hidden = try required("embedding_length")

        var tensors: [SourceTensor] = []
        var sourceBytes = 0
        for info in gguf.tensors {
            let name = try huggingFaceName(info.name, path: path)
            var permuted: Int? = nil
            if name.hasSuffix("self_attn.q_proj.weight") { permuted = heads }
            if name.hasSuffix("self_attn.k_proj.weight") { permuted = kvHeads }
            if let permuted, info.dimensions.count != 2 || (info.dimensions[1] % (permuted * 2)) != 0 {
                throw FormatError(path, "tensor '\(info.name)': shape \(info.dimensions) does not split into \(permuted) heads")
            }
            let reader = GGUFTensorReader(file: gguf.file, info: info, permutedHeads: permuted)
            tensors.append(SourceTensor(name: name, shape: info.dimensions.reversed(), sourceType: info.type.naturalDType, reader: reader))
            sourceBytes += info.byteCount
        }
        let tied = !tensors.contains { $0.name == "lm_head.weight" }
        let config = try GGUFLlamaConfig.config(gguf: gguf, heads: heads, kvHeads: kvHeads, layers: layers, hidden: hidden, tied: tied, path: path)
        let files = try [("config.json", config.encoded(pretty: true))] + GGUFTokenizer.files(gguf: gguf, path: path)
        return SourceModel(kind: .gguf, config: config, files: files, tensors: tensors, sourceBytes: sourceBytes)
    }

    static let globalNames = [
        "token_embd.weight": "model.embed_tokens.weight",
        "output_norm.weight": "model.norm.weight",
        "output.weight": "lm_head.weight",
    ]
    static let layerNames = [
        "attn_q.weight": "self_attn.q_proj.weight", "attn_k.weight": "self_attn.k_proj.weight",
        "attn_v.weight": "self_attn.v_proj.weight", "attn_output.weight": "self_attn.o_proj.weight",
        "ffn_gate.weight": "mlp.gate_proj.weight", "ffn_up.weight": "mlp.up_proj.weight",
        "ffn_down.weight": "mlp.down_proj.weight", "attn_norm.weight": "input_layernorm.weight",
        "ffn_norm.weight": "post_attention_layernorm.weight",
    ]

    static func huggingFaceName(_ name: String, path: String) throws -> String {
        if let global = globalNames[name] { return global }
        let parts = name.split(separator: ".", maxSplits: 2)
        if parts.count == 3, parts[0] == "blk", let layer = Int(parts[1]), let suffix = layerNames[String(parts[2])] {
            return "model.layers.\(layer).\(suffix)"
        }
        throw FormatError(path, "GGUF tensor '\(name)' has no Hugging Face llama equivalent")
    }
}

enum GGUFLlamaConfig {
    static func config(gguf: GGUFFile, heads: Int, kvHeads: Int, layers: Int, hidden: Int, tied: Bool, path: String) throws -> JSONValue {
        let meta = gguf.metadata
        let vocab = meta["llama.vocab_size"]?.intValue ?? meta["tokenizer.ggml.tokens"]?.arrayValue?.count
        guard let vocab else { throw FormatError(path, "GGUF has neither llama.vocab_size nor a tokenizer vocabulary") }
        guard let ffn = meta["llama.feed_forward_length"]?.intValue else {
            throw FormatError(path, "GGUF metadata 'llama.feed_forward_length' is missing")
        }
        var config: [String: JSONValue] = [
            "architectures": .array([.string("LlamaForCausalLM")]),
            "model_type": .string("llama"),
            "hidden_size": .int(Int64(hidden)),
            "intermediate_size": .int(Int64(ffn)),
            "num_attention_heads": .int(Int64(heads)),
            "num_key_value_heads": .int(Int64(kvHeads)),
            "num_hidden_layers": .int(Int64(layers)),
            "head_dim": .int(Int64(meta["llama.rope.dimension_count"]?.intValue ?? hidden / heads)),
            "hidden_act": .string("silu"),
            "max_position_embeddings": .int(Int64(meta["llama.context_length"]?.intValue ?? 2048)),
            "rms_norm_eps": .double(meta["llama.attention.layer_norm_rms_epsilon"]?.doubleValue ?? 1e-5),
            "rope_theta": .double(meta["llama.rope.freq_base"]?.doubleValue ?? 10000),
            "rope_scaling": .null,
            "vocab_size": .int(Int64(vocab)),
            "tie_word_embeddings": .bool(tied),
            "attention_bias": .bool(false),
            "mlp_bias": .bool(false),
        ]
        if meta["llama.rope.scaling.type"]?.stringValue == "linear", let factor = meta["llama.rope.scaling.factor"]?.doubleValue {
            config["rope_scaling"] = .object(["rope_type": .string("linear"), "factor": .double(factor)])
        }
        for (key, name) in [("bos", "bos_token_id"), ("eos", "eos_token_id"), ("padding", "pad_token_id"), ("unknown", "unk_token_id")] {
            if let id = meta["tokenizer.ggml.\(key)_token_id"]?.intValue { config[name] = .int(Int64(id)) }
        }
        return .object(config)
    }
}
