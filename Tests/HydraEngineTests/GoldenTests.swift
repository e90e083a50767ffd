import Foundation
import Testing
import HydraFormat
@testable import HydraEngine

/// Every tiny fixture, every dtype variant, through the store: logits, argmax, greedy tokens,
/// and the residual stream after each layer when run as a pipeline.
@Suite struct GoldenTests {
    static let tolerance: Float = 1e-4

    @Test(arguments: EngineFixtures.tinyModels)
    func logitsArgmaxAndGreedyMatchGolden(model: String) throws {
        let dir = EngineFixtures.root + "/tiny/" + model
        let golden = try loadGolden(dir + "/golden.json")
        let converted = try ConvertedModel(source: dir)
        let runner = try StageRunner(entry: converted.entry)
        for (name, prompt) in golden.sorted(by: { $0.key < $1.key }) {
            let logits = runPipeline([runner], prompt: prompt.inputIDs)
            let last = logits.row(logits.rows - 1)
            #expect(maxAbsDifference(last, prompt.lastLogits) <= Self.tolerance, "\(model) \(name): last logits")
            let argmax = (0..<logits.rows).map { Sampler.argmax(logits.row($0)) }
            #expect(argmax == prompt.argmax, "\(model) \(name): argmax per position")

            let engine = try Engine(runner: runner)
            let tokens = try engine.generate([Engine.Request(prompt: prompt.inputIDs, maxTokens: prompt.greedy.count)])
            #expect(tokens == [prompt.greedy], "\(model) \(name): greedy tokens")
        }
    }

    @Test(arguments: EngineFixtures.tinyModels)
    func layerOutputsMatchWhenRunAsStages(model: String) throws {
        let dir = EngineFixtures.root + "/tiny/" + model
        let prompt = try #require(try loadGolden(dir + "/golden.json")["len7"])
        let states = try #require(prompt.hiddenStates)
        let converted = try ConvertedModel(source: dir)
        for pp in [2, 4] where pp <= converted.entry.manifest.layerCount {
            let runners = try (0..<pp).map { try StageRunner(entry: converted.entry, stage: $0, of: pp) }
            var seen: [Int] = []
            let logits = runPipeline(runners, prompt: prompt.inputIDs) { layer, x in
                seen.append(layer)
                #expect(maxAbsDifference(x.values, states[layer + 1].joined()) <= Self.tolerance, "\(model) pp=\(pp) layer \(layer)")
            }
            #expect(seen == Array(0..<converted.entry.manifest.layerCount))
            #expect(maxAbsDifference(logits.row(logits.rows - 1), prompt.lastLogits) <= Self.tolerance, "\(model) pp=\(pp) logits")
        }
    }
}
