import Foundation
import HydraFormat
@testable import HydraEngine

enum EngineFixtures {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures").path

    /// Every tiny fixture and dtype variant, relative to Fixtures/tiny.
    static let tinyModels: [String] = {
        var out: [String] = []
        for name in ["opt-tiny", "opt-tiny-postln", "llama2-tiny", "llama3-tiny", "falcon-7b-tiny", "falcon-40b-tiny"] {
            for variant in ["", "/bfloat16", "/float16"] where FileManager.default.fileExists(atPath: root + "/tiny/" + name + variant + "/golden.json") {
                out.append(name + variant)
            }
        }
        return out
    }()
}

/// A golden prompt from golden.json.
struct GoldenPrompt {
    let inputIDs: [Int]
    let lastLogits: [Float]
    let argmax: [Int]
    let greedy: [Int]
    /// Top-1 over top-2 logit, per prompt position and per greedy step.
    let argmaxMargins: [Float]
    let greedyMargins: [Float]
    /// len7 only: embedding output then the residual stream after each layer, [T][C] each.
    let hiddenStates: [[[Float]]]?
}

func loadGolden(_ path: String) throws -> [String: GoldenPrompt] {
    let data = try Data(contentsOf: URL(fileURLWithPath: path))
    let root = try JSONSerialization.jsonObject(with: data) as! [String: Any]
    let prompts = root["prompts"] as! [String: [String: Any]]
    func floats(_ value: Any?) -> [Float] { (value as! [NSNumber]).map(\.floatValue) }
    return prompts.mapValues { p in
        var states: [[[Float]]]? = nil
        if let embedding = p["embedding_output"] as? [[NSNumber]], let layers = p["layer_outputs"] as? [[[NSNumber]]] {
            states = ([embedding] + layers).map { $0.map { $0.map(\.floatValue) } }
        }
        return GoldenPrompt(inputIDs: (p["input_ids"] as! [NSNumber]).map(\.intValue), lastLogits: floats(p["last_logits"]),
                            argmax: (p["argmax"] as! [NSNumber]).map(\.intValue), greedy: (p["greedy_new_tokens"] as! [NSNumber]).map(\.intValue),
                            argmaxMargins: floats(p["top2_margin"]), greedyMargins: floats(p["greedy_step_top2_margin"]), hiddenStates: states)
    }
}

/// A store holding one converted fixture, removed when released.
final class ConvertedModel {
    let directory: String
    let entry: StoreEntry

    init(source: String, name: String = "m", dtype: DTypePolicy = .keep) throws {
        directory = NSTemporaryDirectory() + "hydra-engine-" + UUID().uuidString
        var options = ConvertOptions(name: name)
        options.dtype = dtype
        _ = try Converter.convert(try Converter.loadSource(source), into: StoreDirectory(root: directory), options: options)
        entry = try StoreEntry(store: StoreDirectory(root: directory), name: name)
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }
}

func maxAbsDifference(_ a: some Collection<Float>, _ b: some Collection<Float>) -> Float {
    precondition(a.count == b.count, "lengths differ: \(a.count) vs \(b.count)")
    return zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
}

/// Runs a prompt through `runners` (a pipeline, in stage order) as one prefill batch.
func runPipeline(_ runners: [StageRunner], prompt: [Int], observe: ((Int, Matrix) -> Void)? = nil) -> Matrix {
    let blocks = (prompt.count + 15) / 16
    var hidden: Matrix?
    for runner in runners {
        let table = runner.cache.blocks.allocate(blocks)!
        let batch = Batch(sequences: [Batch.Sequence(firstRow: 0, tokenCount: prompt.count, startPosition: 0, blockTable: table)])
        hidden = runner.stage.embed ? runner.forward(tokens: prompt, batch: batch, observe: observe)
            : runner.forward(hidden: hidden!, batch: batch, observe: observe)
        runner.cache.blocks.release(table)
    }
    return runners.last!.logits(hidden!, rows: Array(0..<prompt.count))
}
