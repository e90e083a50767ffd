import Foundation
import Testing
@testable import HydraFormat

@Suite struct GGUFTests {
    func dequantize(_ type: GGMLType, _ bytes: [UInt8]) -> [Float] {
        var out = [Float](repeating: .nan, count: 32)
        bytes.withUnsafeBytes { raw in out.withUnsafeMutableBufferPointer { GGMLDequantize.dequantize(type, blocks: raw, blockCount: 1, into: $0) } }
        return out
    }

    @Test func q8_0Block() { #expect(dequantize(.q8_0, HandBlocks.q8_0.bytes) == HandBlocks.q8_0.values) }
    @Test func q4_0Block() { #expect(dequantize(.q4_0, HandBlocks.q4_0.bytes) == HandBlocks.q4_0.values) }
    @Test func q4_1Block() { #expect(dequantize(.q4_1, HandBlocks.q4_1.bytes) == HandBlocks.q4_1.values) }

    @Test(arguments: [UInt32(2), 3, 8])
    func smallGGUFRoundTripsWithPermutationRestored(quantType: UInt32) throws {
        let dir = TemporaryDirectory()
        let (bytes, hfQ, hfK) = makeLlamaGGUF(qType: quantType)
        dir.write("tiny.gguf", bytes)
        let store = TemporaryDirectory()
        let source = try Converter.loadSource(dir.path + "/tiny.gguf")
        let result = try Converter.convert(source, into: StoreDirectory(root: store.path), options: ConvertOptions(name: "g"))
        let entry = try StoreEntry(store: StoreDirectory(root: store.path), name: "g")
        #expect(result.manifest.tiedEmbeddings)
        #expect(result.manifest.layerCount == 2)
        #expect(floats(try entry.readTensor("model.layers.1.self_attn.q_proj.weight")) == hfQ)
        #expect(floats(try entry.readTensor("model.layers.0.self_attn.k_proj.weight")) == hfK)
        let q = try #require(entry.tensor(named: "model.layers.0.self_attn.q_proj.weight"))
        #expect(q.shape == [32, 32] && q.dtype == .f32)
        let expected = quantType == 8 ? HandBlocks.q8_0.values : quantType == 2 ? HandBlocks.q4_0.values : HandBlocks.q4_1.values
        let up = floats(try entry.readTensor("model.layers.0.mlp.up_proj.weight"))
        #expect(up == Array([[Float]](repeating: expected, count: 4).joined()))
        #expect(entry.tensor(named: "model.embed_tokens.weight")?.shape == [8, 32])

        let config = entry.manifest.config
        #expect(config["num_attention_heads"]?.intValue == 4 && config["num_key_value_heads"]?.intValue == 2)
        #expect(config["tie_word_embeddings"]?.boolValue == true && config["model_type"]?.stringValue == "llama")
        let tokenizer = try JSONValue.parse(try #require(try entry.file(named: "tokenizer.json")), file: "tokenizer.json")
        #expect(tokenizer["model"]?["vocab"]?["t5"]?.intValue == 5)
        #expect(tokenizer["model"]?["merges"] == .array([.array([.string("t"), .string("1")]), .array([.string("t"), .string("2")])]))
        let added = tokenizer["added_tokens"]
        #expect(added == .array([0, 1].map { id in
            .object(["id": .int(Int64(id)), "content": .string(["<s>", "</s>"][id]), "single_word": .bool(false), "lstrip": .bool(false),
                     "rstrip": .bool(false), "normalized": .bool(false), "special": .bool(true)])
        }))
        #expect(try entry.file(named: "chat_template.jinja") == Array("{{ messages }}".utf8))
    }

    @Test func bf16PolicyOnDequantisedValues() throws {
        let dir = TemporaryDirectory()
        dir.write("t.gguf", makeLlamaGGUF(qType: 3).bytes)
        let store = TemporaryDirectory()
        var options = ConvertOptions(name: "b")
        options.dtype = .bf16
        _ = try Converter.convert(try Converter.loadSource(dir.path + "/t.gguf"), into: StoreDirectory(root: store.path), options: options)
        let entry = try StoreEntry(store: StoreDirectory(root: store.path), name: "b")
        let bits = try entry.readTensor("model.layers.0.mlp.up_proj.weight").withUnsafeBytes { Array($0.bindMemory(to: UInt16.self)) }
        #expect(bits.prefix(32).map(FloatBits.bf16ToFloat) == HandBlocks.q4_1.values)  // exactly representable
    }
}

@Suite struct FloatBitsTests {
    @Test func f16RoundTripsEveryValue() {
        for bits in 0...UInt16.max {
            let value = FloatBits.f16ToFloat(bits)
            if value.isNaN { #expect(FloatBits.floatToF16(value) & 0x7C00 == 0x7C00); continue }
            #expect(FloatBits.floatToF16(value) == bits, "f16 0x\(String(bits, radix: 16))")
        }
    }

    @Test func f16RoundsHalfToEven() {
        // 1 + 2^-11 lies halfway between 1 and the next half (1 + 2^-10): ties to even → 1.
        #expect(FloatBits.floatToF16(1 + 0x1p-11) == 0x3C00)
        #expect(FloatBits.floatToF16(1 + 3 * 0x1p-11) == 0x3C02)
        #expect(FloatBits.floatToF16(70000) == 0x7C00)
        #expect(FloatBits.floatToF16(0x1p-25) == 0)  // halfway to the smallest subnormal: even → 0
        #expect(FloatBits.floatToF16(0x1p-24) == 1)
    }

    @Test func bf16RoundsHalfToEven() {
        #expect(FloatBits.floatToBF16(Float(bitPattern: 0x3F80_8000)) == 0x3F80)  // tie, even stays
        #expect(FloatBits.floatToBF16(Float(bitPattern: 0x3F81_8000)) == 0x3F82)  // tie, odd rounds up
        #expect(FloatBits.floatToBF16(Float(bitPattern: 0x3F80_8001)) == 0x3F81)
        #expect(FloatBits.floatToBF16(.nan).isNaNBF16)
        #expect(FloatBits.bf16ToFloat(0x4049) == Float(bitPattern: 0x4049_0000))
    }
}

extension UInt16 {
    var isNaNBF16: Bool { self & 0x7F80 == 0x7F80 && self & 0x7F != 0 }
}
