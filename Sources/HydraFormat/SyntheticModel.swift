import Foundation
import Glibc
import HydraSystem

/// Writes a Hugging Face llama-architecture checkpoint with random bf16 weights, for benchmarks
/// that need a model of a given size (the fetch and cold-start benchmarks too).
public struct SyntheticModel: Sendable {
    public var layers: Int
    public var hidden: Int
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

    public var tensors: [(name: String, shape: [Int])] {
        var out: [(String, [Int])] = [("model.embed_tokens.weight", [vocab, hidden])]
        for layer in 0..<layers {
            let p = "model.layers.\(layer)."
            out += [
                (p + "input_layernorm.weight", [hidden]), (p + "self_attn.q_proj.weight", [hidden, hidden]),
                (p + "self_attn.k_proj.weight", [hidden, hidden]), (p + "self_attn.v_proj.weight", [hidden, hidden]),
                (p + "self_attn.o_proj.weight", [hidden, hidden]), (p + "post_attention_layernorm.weight", [hidden]),
                (p + "mlp.gate_proj.weight", [intermediate, hidden]), (p + "mlp.up_proj.weight", [intermediate, hidden]),
                (p + "mlp.down_proj.weight", [hidden, intermediate]),
            ]
        }
        out += [("model.norm.weight", [hidden]), ("lm_head.weight", [vocab, hidden])]
        return out
    }

    public var weightBytes: Int { tensors.reduce(0) { $0 + $1.shape.reduce(2, *) } }

    public var config: String {
        """
        {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": \(hidden), \
        "intermediate_size": \(intermediate), "num_hidden_layers": \(layers), "num_attention_heads": \(hidden / 64), \
        "num_key_value_heads": \(hidden / 64), "head_dim": 64, "vocab_size": \(vocab), "rms_norm_eps": 1e-05, \
        "rope_theta": 10000.0, "max_position_embeddings": 4096, "hidden_act": "silu", "tie_word_embeddings": false, \
        "torch_dtype": "bfloat16"}
        """
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
