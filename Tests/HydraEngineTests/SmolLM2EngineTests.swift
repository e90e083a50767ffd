import Foundation
import Testing
import HydraFormat
@testable import HydraEngine

/// The real SmolLM2 (fetched by tools/fetch-smollm2), against the goldens transformers made.
enum SmolLM2 {
    static var gguf: String {
        let env = ProcessInfo.processInfo.environment
        if let explicit = env["HYDRA_SMOLLM2_GGUF"] { return explicit }
        let cache = env["HYDRA_CACHE_DIR"] ?? ((env["XDG_CACHE_HOME"] ?? NSHomeDirectory() + "/.cache") + "/hydraserve")
        return cache + "/SmolLM2-135M-Instruct.Q4_1.gguf"
    }
    static var available: Bool { FileManager.default.fileExists(atPath: gguf) }
    static var required: Bool { ProcessInfo.processInfo.environment["CI"] != nil }
    static let fixture = EngineFixtures.root + "/smollm2"

    static func tokenizer() throws -> Tokenizer {
        try Tokenizer(tokenizerJSON: Array(FileManager.default.contents(atPath: fixture + "/tokenizer.json")!),
                      tokenizerConfig: Array(FileManager.default.contents(atPath: fixture + "/tokenizer_config.json")!))
    }

    static func golden(_ name: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: fixture + "/" + name))) as! [String: Any]
    }
}

@Suite struct SmolLM2TokenizerTests {
    @Test func tokenizerCasesEncodeAndDecodeExactly() throws {
        let tokenizer = try SmolLM2.tokenizer()
        let cases = try SmolLM2.golden("golden.json")["tokenizer_cases"] as! [[String: Any]]
        #expect(cases.count == 10)
        for item in cases {
            let text = item["text"] as! String
            let ids = (item["ids"] as! [NSNumber]).map(\.intValue)
            #expect(tokenizer.encode(text) == ids, "\(text.debugDescription)")
            #expect(tokenizer.decode(ids) == item["decoded"] as! String)
            #expect(ids.map { tokenizer.token($0) } == (item["tokens"] as! [String]))
        }
    }

    @Test func chatTemplateMatchesTheExample() throws {
        let tokenizer = try SmolLM2.tokenizer()
        let example = try SmolLM2.golden("golden.json")["chat_template_example"] as! [String: Any]
        let source = try String(contentsOfFile: SmolLM2.fixture + "/chat_template.jinja", encoding: .utf8)
        let template = try #require(ChatTemplate(template: source))
        let messages = (example["messages"] as! [[String: String]]).map { ChatTemplate.Message(role: $0["role"]!, content: $0["content"]!) }
        let text = template.render(messages, addGenerationPrompt: true)
        #expect(text == example["text"] as! String)
        #expect(tokenizer.encode(text) == (example["ids"] as! [NSNumber]).map(\.intValue))
    }

    @Test func streamingDecodeHoldsSplitCharacters() throws {
        let tokenizer = try SmolLM2.tokenizer()
        let text = "naïve café 你好 🤖👍"
        var decoder = StreamingDecoder(tokenizer: tokenizer)
        var pieces: [String] = []
        for id in tokenizer.encode(text) { pieces.append(decoder.push(id)) }
        pieces.append(decoder.flush())
        #expect(pieces.joined() == text)
        #expect(pieces.allSatisfy { !$0.contains("\u{FFFD}") })
    }
}

@Suite(.enabled(if: SmolLM2.available || SmolLM2.required, "run tools/fetch-smollm2 first"))
struct SmolLM2EngineTests {
    /// The bf16 entry with an f16 KV cache too (`--kv-dtype f16`): the same greedy text, logits
    /// within 2e-2 (measured 8.8e-3 from f16 rounding of every cached K and V, against 5e-3 for f32).
    @Test(arguments: [("golden.gguf-f32.json", DTypePolicy.keep, KVDType.f32), ("golden.json", .bf16, .f32), ("golden.json", .bf16, .f16)])
    func logitsAndGreedyTextMatchGolden(goldenFile: String, dtype: DTypePolicy, kvDType: KVDType) throws {
        try #require(SmolLM2.available, "SmolLM2 GGUF missing at \(SmolLM2.gguf): run tools/fetch-smollm2")
        let model = try ConvertedModel(source: SmolLM2.gguf, name: "smollm2", dtype: dtype)
        let runner = try StageRunner(entry: model.entry, kvCacheBytes: 64 << 20, kvDType: kvDType)
        let engine = try Engine(runner: runner)
        let tokenizer = try SmolLM2.tokenizer()
        let prompts = try SmolLM2.golden(goldenFile)["prompts"] as! [String: [String: Any]]
        for (name, prompt) in prompts {
            let ids = (prompt["input_ids"] as! [NSNumber]).map(\.intValue)
            #expect(tokenizer.encode(prompt["text"] as? String ?? tokenizer.decode(ids)) == ids)
            let expected = (prompt["greedy_new_tokens"] as! [NSNumber]).map(\.intValue)
            let id = try engine.add(Engine.Request(prompt: ids, maxTokens: expected.count))
            while engine.hasWork { _ = try engine.step() }
            let result = try #require(engine.result(id))
            let golden = (prompt["last_logits"] as! [NSNumber]).map(\.floatValue)
            let difference = maxAbsDifference(try #require(result.promptLogits), golden)
            #expect(difference <= (kvDType == .f16 ? 2e-2 : 5e-3), "\(goldenFile) \(kvDType) KV \(name): \(difference)")
            #expect(result.tokens == expected, "\(goldenFile) \(kvDType) KV \(name)")
            if name == "france" { #expect(tokenizer.decode(result.tokens) == " Paris.\n\nThe answer is: 201") }
        }
    }
}
