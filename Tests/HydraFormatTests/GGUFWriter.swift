import Foundation
@testable import HydraFormat

/// Writes small GGUF v3 files for tests.
struct GGUFWriter {
    enum Value {
        case u32(UInt32), i32(Int32), f32(Float), bool(Bool), string(String), strings([String]), i32s([Int32])
    }

    var metadata: [(String, Value)] = []
    var tensors: [(name: String, dims: [Int], type: UInt32, data: [UInt8])] = []

    func bytes() -> [UInt8] {
        var out: [UInt8] = []
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
        func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
        func string(_ s: String) { u64(UInt64(s.utf8.count)); out += Array(s.utf8) }
        u32(0x4655_4747); u32(3); u64(UInt64(tensors.count)); u64(UInt64(metadata.count))
        for (key, value) in metadata {
            string(key)
            switch value {
            case .u32(let v): u32(4); u32(v)
            case .i32(let v): u32(5); u32(UInt32(bitPattern: v))
            case .f32(let v): u32(6); u32(v.bitPattern)
            case .bool(let v): u32(7); out.append(v ? 1 : 0)
            case .string(let v): u32(8); string(v)
            case .strings(let v): u32(9); u32(8); u64(UInt64(v.count)); v.forEach(string)
            case .i32s(let v): u32(9); u32(5); u64(UInt64(v.count)); v.forEach { u32(UInt32(bitPattern: $0)) }
            }
        }
        var offset = 0
        var offsets: [Int] = []
        for tensor in tensors {
            offsets.append(offset)
            offset = (offset + tensor.data.count + 31) / 32 * 32
        }
        for (tensor, tensorOffset) in zip(tensors, offsets) {
            string(tensor.name); u32(UInt32(tensor.dims.count)); tensor.dims.forEach { u64(UInt64($0)) }
            u32(tensor.type); u64(UInt64(tensorOffset))
        }
        while out.count % 32 != 0 { out.append(0) }
        let dataStart = out.count
        for (tensor, tensorOffset) in zip(tensors, offsets) {
            while out.count < dataStart + tensorOffset { out.append(0) }
            out += tensor.data
        }
        return out
    }
}

func f16Bits(_ value: Float) -> [UInt8] {
    withUnsafeBytes(of: FloatBits.floatToF16(value).littleEndian) { Array($0) }
}

/// Blocks built by hand, with the values they must decode to.
enum HandBlocks {
    /// Q8_0: d = 0.5, q = -16…15 → -8…7.5
    static let q8_0: (bytes: [UInt8], values: [Float]) = {
        let q = (0..<32).map { Int8($0 - 16) }
        return (f16Bits(0.5) + q.map { UInt8(bitPattern: $0) }, q.map { 0.5 * Float($0) })
    }()

    /// Q4_0: d = 2, weight j has nibble j % 16 (low nibbles 0–15, high nibbles 16–31) → 2·(q−8)
    static let q4_0: (bytes: [UInt8], values: [Float]) = {
        var nibbles: [UInt8] = []
        var low: [Float] = [], high: [Float] = []
        for j in 0..<16 {
            nibbles.append(UInt8(j) | UInt8(15 - j) << 4)
            low.append(2 * Float(j - 8))
            high.append(2 * Float(15 - j - 8))
        }
        let values = low + high
        return (f16Bits(2) + nibbles, values)
    }()

    /// Q4_1: d = 0.25, m = -1 → 0.25·q − 1
    static let q4_1: (bytes: [UInt8], values: [Float]) = {
        var nibbles: [UInt8] = []
        var low: [Float] = [], high: [Float] = []
        for j in 0..<16 {
            let h = (j * 3) % 16
            nibbles.append(UInt8(j) | UInt8(h) << 4)
            low.append(0.25 * Float(j) - 1)
            high.append(0.25 * Float(h) - 1)
        }
        let values = low + high
        return (f16Bits(0.25) + f16Bits(-1) + nibbles, values)
    }()
}

/// A 2-layer llama GGUF with q/k permuted the llama.cpp way, hidden 32, 4 heads (2 kv heads).
/// Returns the file bytes and the Hugging Face layout of q (f32 values) for layer 0.
func makeLlamaGGUF(qType: UInt32 = 0, tokenCount: Int = 8) -> (bytes: [UInt8], hfQ: [Float], hfK: [Float]) {
    let hidden = 32, heads = 4, kvHeads = 2, headDim = 8
    var writer = GGUFWriter()
    let tokens = (0..<tokenCount).map { $0 < 2 ? ["<s>", "</s>"][$0] : "t\($0)" }
    writer.metadata = [
        ("general.architecture", .string("llama")), ("llama.block_count", .u32(2)),
        ("llama.embedding_length", .u32(UInt32(hidden))), ("llama.feed_forward_length", .u32(64)),
        ("llama.attention.head_count", .u32(UInt32(heads))), ("llama.attention.head_count_kv", .u32(UInt32(kvHeads))),
        ("llama.context_length", .u32(256)), ("llama.rope.freq_base", .f32(10000)),
        ("llama.attention.layer_norm_rms_epsilon", .f32(1e-5)),
        ("tokenizer.ggml.model", .string("gpt2")), ("tokenizer.ggml.tokens", .strings(tokens)),
        ("tokenizer.ggml.token_type", .i32s((0..<tokenCount).map { $0 < 2 ? 3 : 1 })),
        ("tokenizer.ggml.merges", .strings(["t 1", "t 2"])), ("tokenizer.ggml.bos_token_id", .u32(0)),
        ("tokenizer.ggml.eos_token_id", .u32(1)), ("tokenizer.chat_template", .string("{{ messages }}")),
    ]
    func f32(_ values: [Float]) -> [UInt8] { floatBytes(values) }
    func matrix(_ rows: Int, _ cols: Int, seed: Float) -> [Float] { (0..<(rows * cols)).map { Float($0) * 0.01 + seed } }
    // llama.cpp's permutation: within each head, HF rows (half i, pair j) go to GGUF row j·2 + i.
    func permute(_ hf: [Float], rows: Int, cols: Int, heads: Int) -> [Float] {
        var out = hf
        let half = rows / heads / 2
        for r in 0..<rows {
            let head = r / (2 * half), within = r % (2 * half)
            let i = within / half, j = within % half
            let g = head * 2 * half + j * 2 + i
            for c in 0..<cols { out[g * cols + c] = hf[r * cols + c] }
        }
        return out
    }
    let hfQ = matrix(hidden, hidden, seed: 1), hfK = matrix(kvHeads * headDim, hidden, seed: 2)
    writer.tensors.append(("token_embd.weight", [hidden, tokenCount], 0, f32(matrix(tokenCount, hidden, seed: 0))))
    for layer in 0..<2 {
        let q = permute(hfQ, rows: hidden, cols: hidden, heads: heads)
        writer.tensors.append(("blk.\(layer).attn_q.weight", [hidden, hidden], 0, f32(q)))
        writer.tensors.append(("blk.\(layer).attn_k.weight", [hidden, kvHeads * headDim], 0, f32(permute(hfK, rows: kvHeads * headDim, cols: hidden, heads: kvHeads))))
        writer.tensors.append(("blk.\(layer).attn_norm.weight", [hidden], 0, f32([Float](repeating: 1, count: hidden))))
        // One quantised tensor per layer: 32 columns = one block per row.
        let (block, _) = qType == 8 ? HandBlocks.q8_0 : qType == 2 ? HandBlocks.q4_0 : HandBlocks.q4_1
        let rows = 4
        writer.tensors.append(("blk.\(layer).ffn_up.weight", [32, rows], qType == 0 ? 3 : qType, Array((0..<rows).map { _ in block }.joined())))
    }
    writer.tensors.append(("output_norm.weight", [hidden], 0, f32([Float](repeating: 1, count: hidden))))
    return (writer.bytes(), hfQ, hfK)
}
