import Foundation
import Testing
import HydraFormat
@testable import HydraEngine

@Suite struct EngineBehaviourTests {
    static let llama = EngineFixtures.root + "/tiny/llama3-tiny"

    @Test func batchedSequencesMatchOneAtATime() throws {
        let golden = try loadGolden(Self.llama + "/golden.json")
        let model = try ConvertedModel(source: Self.llama)
        let prompts = golden.keys.sorted().map { golden[$0]! }
        let engine = try Engine(runner: try StageRunner(entry: model.entry))
        // All three prompts (1, 7 and 33 tokens) prefilled and decoded together.
        let together = try engine.generate(prompts.map { Engine.Request(prompt: $0.inputIDs, maxTokens: $0.greedy.count) })
        #expect(together == prompts.map(\.greedy))
    }

    @Test func preemptionUnderATinyCacheStillGivesTheSameTokens() throws {
        let golden = try loadGolden(Self.llama + "/golden.json")
        let model = try ConvertedModel(source: Self.llama)
        // 4 layers × 2 (K, V) × 16 tokens × 16 floats × 4 bytes = 8 KiB a block: 5 blocks = 80 tokens,
        // fewer than the three sequences need at once (1+12, 7+12, 33+12 → 1 + 2 + 3 blocks).
        let runner = try StageRunner(entry: model.entry, kvCacheBytes: 5 * 8192)
        #expect(runner.cache.blockCount == 5)
        let engine = try Engine(runner: runner)
        let prompts = golden.keys.sorted().map { golden[$0]! }
        let tokens = try engine.generate(prompts.map { Engine.Request(prompt: $0.inputIDs, maxTokens: $0.greedy.count) })
        #expect(tokens == prompts.map(\.greedy))
        #expect(runner.cache.blocks.freeCount == 5, "every block is returned")
    }

    @Test func promptLongerThanTheContextIsAClearError() throws {
        let model = try ConvertedModel(source: EngineFixtures.root + "/tiny/llama2-tiny")
        let engine = try Engine(runner: try StageRunner(entry: model.entry))
        let context = engine.contextLength
        #expect(context == 128)  // max_position_embeddings of the fixture, below the cache capacity
        let error = try #require(throws: EngineError.self) {
            try engine.add(Engine.Request(prompt: [Int](repeating: 5, count: context + 1), maxTokens: 4))
        }
        #expect(error.message == "prompt of 129 tokens does not fit the context of 128 tokens")
        #expect(throws: EngineError.self) { try engine.add(Engine.Request(prompt: [999_999], maxTokens: 4)) }
        #expect(throws: EngineError.self) { try engine.add(Engine.Request(prompt: [], maxTokens: 4)) }
        #expect(throws: EngineError.self) { try engine.add(Engine.Request(prompt: [1], maxTokens: 4, sampling: SamplingParameters(topP: 0))) }
    }

    @Test func missingTensorIsNamed() throws {
        let model = try ConvertedModel(source: Self.llama)
        var manifest = model.entry.manifest
        manifest.tensors.removeAll { $0.name == "model.layers.2.mlp.up_proj.weight" }
        let weights = StageWeights(manifest: manifest, stage: manifest.stagePlans[0].stages[0], device: CPUDevice())
        try weights.load(from: model.entry)
        let error = try #require(throws: FormatError.self) { try StageRunner(manifest: manifest, weights: weights, kvBlockCount: 4) }
        #expect(error.problem.contains("tensor 'model.layers.2.mlp.up_proj.weight' is missing"))
    }

    @Test func unsupportedArchitectureFailsClearly() throws {
        let error = try #require(throws: FormatError.self) { try ModelConfig(.object(["model_type": .string("mamba")])) }
        #expect(error.problem == "unsupported architecture 'mamba' (supported: llama, opt, falcon)")
    }

    @Test func configsReadBothSpellings() throws {
        for name in ["llama3-tiny", "falcon-7b-tiny", "falcon-40b-tiny", "opt-tiny-postln"] {
            let dir = EngineFixtures.root + "/tiny/" + name
            let hub = try ModelConfig(try JSONValue.parse(Array(FileManager.default.contents(atPath: dir + "/config.json")!), file: "c"))
            let v5 = try ModelConfig(try JSONValue.parse(Array(FileManager.default.contents(atPath: dir + "/config.v5.json")!), file: "c"))
            #expect(hub == v5, "\(name)")
        }
        let falcon = try ModelConfig(try JSONValue.parse(Array(FileManager.default.contents(atPath: EngineFixtures.root + "/tiny/falcon-7b-tiny/config.json")!), file: "c"))
        #expect(falcon.kvHeadCount == 1, "old multi-query Falcon has one kv head whatever num_kv_heads says")
        let llama3 = try ModelConfig(try JSONValue.parse(Array(FileManager.default.contents(atPath: Self.llama + "/config.v5.json")!), file: "c"))
        #expect(llama3.ropeScaling?.factor == 8 && llama3.ropeTheta == 500_000)
    }

    @Test func seededSamplingIsReproducibleAndTopPNarrows() throws {
        let model = try ConvertedModel(source: Self.llama)
        let engine = try Engine(runner: try StageRunner(entry: model.entry))
        let sampled = SamplingParameters(temperature: 1.5, topP: 0.9, seed: 7)
        let a = try engine.generate([Engine.Request(prompt: [1, 63, 236], maxTokens: 16, sampling: sampled)])
        let b = try engine.generate([Engine.Request(prompt: [1, 63, 236], maxTokens: 16, sampling: sampled)])
        #expect(a == b)
        var other = sampled
        other.seed = 8
        #expect(try engine.generate([Engine.Request(prompt: [1, 63, 236], maxTokens: 16, sampling: other)]) != a)
        // A tiny top-p keeps only the most likely token: greedy.
        let greedy = try engine.generate([Engine.Request(prompt: [1, 63, 236], maxTokens: 8)])
        let nucleus = try engine.generate([Engine.Request(prompt: [1, 63, 236], maxTokens: 8,
                                                          sampling: SamplingParameters(temperature: 1, topP: 1e-6, seed: 3))])
        #expect(nucleus == greedy)
    }

    @Test func stopTokensEndASequence() throws {
        let golden = try #require(try loadGolden(Self.llama + "/golden.json")["len7"])
        let model = try ConvertedModel(source: Self.llama)
        let engine = try Engine(runner: try StageRunner(entry: model.entry))
        let stop = golden.greedy[3]
        let tokens = try engine.generate([Engine.Request(prompt: golden.inputIDs, maxTokens: 12, stopTokens: [stop])])
        #expect(tokens == [Array(golden.greedy[...3])])
    }
}
