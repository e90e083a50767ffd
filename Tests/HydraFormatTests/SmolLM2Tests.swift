import Foundation
import Testing
@testable import HydraFormat

/// The real SmolLM2-135M-Instruct GGUF (fetched by tools/fetch-smollm2, cached outside git).
/// Under CI the model must be there: its absence fails the suite instead of skipping.
enum SmolLM2Model {
    static var path: String {
        let env = ProcessInfo.processInfo.environment
        if let explicit = env["HYDRA_SMOLLM2_GGUF"] { return explicit }
        let cache = env["HYDRA_CACHE_DIR"] ?? ((env["XDG_CACHE_HOME"] ?? NSHomeDirectory() + "/.cache") + "/hydraserve")
        return cache + "/SmolLM2-135M-Instruct.Q4_1.gguf"
    }

    static var available: Bool { FileManager.default.fileExists(atPath: path) }
    static var required: Bool { ProcessInfo.processInfo.environment["CI"] != nil }
}

@Suite(.enabled(if: SmolLM2Model.available || SmolLM2Model.required, "run tools/fetch-smollm2 first"))
struct SmolLM2Tests {
    static let fixture = Fixtures.root + "/smollm2"

    func fixtureJSON(_ name: String) throws -> JSONValue {
        try JSONValue.parse(Array(FileManager.default.contents(atPath: Self.fixture + "/" + name)!), file: name)
    }

    @Test func convertsToBF16WithTokenizerAndConfig() throws {
        try #require(SmolLM2Model.available, "SmolLM2 GGUF missing at \(SmolLM2Model.path): run tools/fetch-smollm2")
        let store = TemporaryDirectory()
        var options = ConvertOptions(name: "smollm2")
        options.dtype = .bf16
        let result = try Converter.convert(try Converter.loadSource(SmolLM2Model.path), into: StoreDirectory(root: store.path), options: options)
        let manifest = result.manifest
        #expect(manifest.tensors.count == 272 && manifest.layerCount == 30 && manifest.tiedEmbeddings)
        #expect(manifest.tensors.allSatisfy { $0.dtype == .bf16 })
        // 134,515,008 parameters in bf16 (the fixture's model.safetensors minus its 30,536-byte header).
        #expect(manifest.tensors.reduce(0) { $0 + $1.byteCount } == 269_030_016)
        let entry = try StoreEntry(store: StoreDirectory(root: store.path), name: "smollm2")
        #expect(entry.tensor(named: "model.embed_tokens.weight")?.shape == [49152, 576])
        #expect(entry.tensor(named: "model.layers.29.self_attn.k_proj.weight")?.shape == [192, 576])

        // The tokenizer rebuilt from the GGUF vocabulary is the one transformers exported.
        let tokenizer = try JSONValue.parse(try #require(try entry.file(named: "tokenizer.json")), file: "tokenizer.json")
        let reference = try fixtureJSON("tokenizer.json")
        #expect(tokenizer["model"]?["vocab"] == reference["model"]?["vocab"])
        #expect(tokenizer["model"]?["merges"] == reference["model"]?["merges"])
        #expect(tokenizer["added_tokens"] == reference["added_tokens"])
        #expect(try entry.file(named: "chat_template.jinja") == Array(FileManager.default.contents(atPath: Self.fixture + "/chat_template.jinja")!))

        let config = try fixtureJSON("config.json")
        for key in ["hidden_size", "intermediate_size", "num_attention_heads", "num_key_value_heads", "num_hidden_layers",
                    "vocab_size", "max_position_embeddings", "head_dim", "bos_token_id", "eos_token_id", "tie_word_embeddings"] {
            #expect(manifest.config[key] == config[key], "\(key)")
        }
        #expect(manifest.config["rope_theta"]?.doubleValue == config["rope_theta"]?.doubleValue)
        #expect(manifest.config["rms_norm_eps"]?.doubleValue == config["rms_norm_eps"]?.doubleValue)
        #expect(Verifier.verify(entry).problems.isEmpty)
    }
}
