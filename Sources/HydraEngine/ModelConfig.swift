import HydraFormat

/// The parts of a Hugging Face config the engine needs, for every supported family. Reads both
/// the Hub spellings (`rope_theta`, `rope_scaling`) and transformers 5's (`rope_parameters`).
public struct ModelConfig: Sendable, Equatable {
    public enum Family: String, Sendable { case llama, opt, falcon }

    public struct RopeScaling: Sendable, Equatable {
        public var factor: Double
        public var lowFrequencyFactor: Double
        public var highFrequencyFactor: Double
        public var originalMaxPositions: Double
    }

    public var family: Family
    public var hiddenSize: Int
    public var layerCount: Int
    public var headCount: Int
    public var kvHeadCount: Int
    public var headDim: Int
    public var intermediateSize: Int
    public var vocabSize: Int
    public var maxPositions: Int
    public var normEps: Float
    public var ropeTheta: Double
    /// llama3-style rope scaling, when configured.
    public var ropeScaling: RopeScaling?
    public var bosTokenID: Int?
    public var eosTokenIDs: [Int]

    // OPT
    public var layerNormBefore = true
    public var wordEmbedProjectionDim: Int?
    // Falcon
    public var falconNewArchitecture = false
    /// Falcon: number of layer norms feeding the parallel attention and MLP (1 or 2).
    public var falconParallelNorms = 1

    public init(_ config: JSONValue, name: String = "config.json") throws {
        func int(_ keys: String...) -> Int? { keys.lazy.compactMap { config[$0]?.intValue }.first }
        func double(_ keys: String...) -> Double? { keys.lazy.compactMap { config[$0]?.doubleValue }.first }
        func require(_ value: Int?, _ key: String) throws -> Int {
            guard let value, value > 0 else { throw FormatError(name, "config is missing '\(key)'") }
            return value
        }
        let type = config["model_type"]?.stringValue ?? "(none)"
        guard let family = Family(rawValue: type) else {
            throw FormatError(name, "unsupported architecture '\(type)' (supported: llama, opt, falcon)")
        }
        self.family = family
        hiddenSize = try require(int("hidden_size", "n_embd", "d_model"), "hidden_size")
        layerCount = try require(int("num_hidden_layers", "n_layer", "num_layers"), "num_hidden_layers")
        headCount = try require(int("num_attention_heads", "n_head"), "num_attention_heads")
        vocabSize = try require(int("vocab_size"), "vocab_size")
        maxPositions = int("max_position_embeddings") ?? 2048
        headDim = int("head_dim") ?? hiddenSize / headCount
        bosTokenID = int("bos_token_id")
        switch config["eos_token_id"] {
        case .array(let ids)?: eosTokenIDs = ids.compactMap(\.intValue)
        case let value?: eosTokenIDs = value.intValue.map { [$0] } ?? []
        case nil: eosTokenIDs = []
        }

        let rope = config["rope_parameters"]
        ropeTheta = double("rope_theta") ?? rope?["rope_theta"]?.doubleValue ?? 10000
        let scaling = config["rope_scaling"].flatMap { $0 == .null ? nil : $0 } ?? rope
        let ropeType = scaling?["rope_type"]?.stringValue ?? scaling?["type"]?.stringValue ?? "default"
        switch ropeType {
        case "default": ropeScaling = nil
        case "llama3":
            guard let s = scaling, let factor = s["factor"]?.doubleValue, let low = s["low_freq_factor"]?.doubleValue,
                  let high = s["high_freq_factor"]?.doubleValue, let original = s["original_max_position_embeddings"]?.doubleValue else {
                throw FormatError(name, "llama3 rope scaling needs factor, low_freq_factor, high_freq_factor and original_max_position_embeddings")
            }
            ropeScaling = RopeScaling(factor: factor, lowFrequencyFactor: low, highFrequencyFactor: high, originalMaxPositions: original)
        default:
            throw FormatError(name, "unsupported rope scaling '\(ropeType)' (supported: default, llama3)")
        }

        switch family {
        case .llama:
            kvHeadCount = int("num_key_value_heads") ?? headCount
            intermediateSize = try require(int("intermediate_size"), "intermediate_size")
            normEps = Float(double("rms_norm_eps") ?? 1e-6)
        case .opt:
            kvHeadCount = headCount
            intermediateSize = try require(int("ffn_dim"), "ffn_dim")
            normEps = 1e-5
            layerNormBefore = config["do_layer_norm_before"]?.boolValue ?? true
            let projection = int("word_embed_proj_dim") ?? hiddenSize
            wordEmbedProjectionDim = projection == hiddenSize ? nil : projection
        case .falcon:
            falconNewArchitecture = config["new_decoder_architecture"]?.boolValue ?? false
            let multiQuery = config["multi_query"]?.boolValue ?? true
            // The old architecture with multi_query has ONE kv head whatever num_kv_heads says.
            kvHeadCount = falconNewArchitecture || !multiQuery ? (int("num_kv_heads") ?? headCount) : 1
            intermediateSize = int("ffn_hidden_size") ?? 4 * hiddenSize
            normEps = Float(double("layer_norm_epsilon") ?? 1e-5)
            falconParallelNorms = int("num_ln_in_parallel_attn") ?? (falconNewArchitecture ? 2 : 1)
            if config["alibi"]?.boolValue == true { throw FormatError(name, "Falcon with alibi is not supported") }
            if config["parallel_attn"]?.boolValue == false { throw FormatError(name, "Falcon without parallel attention is not supported") }
        }
        guard headCount % kvHeadCount == 0 else {
            throw FormatError(name, "\(headCount) attention heads do not divide into \(kvHeadCount) kv heads")
        }
    }

    /// Floats of K (or V) per token per layer.
    public var kvWidth: Int { kvHeadCount * headDim }
}
