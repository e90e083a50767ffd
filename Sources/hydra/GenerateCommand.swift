import ArgumentParser
import Foundation
import HydraEngine
import HydraFormat

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate text from a store entry on this machine (the whole model in one process).",
        discussion: """
        Streams the generated text to stdout as it is produced; timing goes to stderr. Stops at the \
        model's end-of-sequence token or after --max-tokens.
        """
    )

    @Argument(help: "Store directory.") var store: String
    @Argument(help: "Entry name.") var name: String
    @OptionGroup var prompt: PromptOptions
    @Option(name: .customLong("max-tokens"), help: "Tokens to generate at most.") var maxTokens: Int = 64
    @Option(help: "Sampling temperature; 0 is greedy.") var temperature: Float = 0
    @Option(name: .customLong("top-p"), help: "Nucleus sampling mass.") var topP: Float = 1
    @Option(help: "Seed for sampling.") var seed: UInt64?
    @Flag(name: .customLong("ignore-eos"), help: "Do not stop at the end-of-sequence token.") var ignoreEOS = false
    @Option(name: .customLong("logits-out"), help: "Write the prompt's last-position logits and the generated ids as JSON.")
    var logitsOut: String?
    @Option(name: .customLong("kv-dtype"), help: "KV cache elements: f32 (exact) or f16 (half the memory per token, as llama.cpp keeps its cache).")
    var kvDType: KVDType = .f32

    func validate() throws {
        guard maxTokens >= 1 else { throw ValidationError("--max-tokens must be at least 1") }
    }

    func run() throws {
        try runReportingErrors {
            let started = Date()
            let entry = try StoreEntry(store: StoreDirectory(root: store), name: name)
            let tokenizer = try LoadedTokenizer.load(entry)
            let runner = try StageRunner(entry: entry, kvDType: kvDType)
            let engine = try Engine(runner: runner)
            let loaded = Date()

            let ids = try prompt.encode(entry, tokenizer: tokenizer)
            let stops = ignoreEOS ? [] : try LoadedTokenizer.stopTokens(entry, tokenizer: tokenizer)

            let request = Engine.Request(prompt: ids, maxTokens: maxTokens,
                                         sampling: SamplingParameters(temperature: temperature, topP: topP, seed: seed), stopTokens: stops)
            let id = try engine.add(request)
            var decoder = tokenizer.map { StreamingDecoder(tokenizer: $0, skipSpecial: true) }
            var firstToken: Date?
            var generated: [Int] = []
            while engine.hasWork {
                for event in try engine.step() where event.sequence == id {
                    if firstToken == nil { firstToken = Date() }
                    generated.append(event.token)
                    if event.finished == .stop { continue }
                    let piece = decoder.map { d -> String in var d = d; let s = d.push(event.token); decoder = d; return s } ?? "\(event.token) "
                    FileHandle.standardOutput.write(Data(piece.utf8))
                }
            }
            if let rest = decoder.map({ d -> String in var d = d; return d.flush() }) { FileHandle.standardOutput.write(Data(rest.utf8)) }
            FileHandle.standardOutput.write(Data("\n".utf8))
            let finished = Date()

            if let logitsOut, let result = engine.result(id) {
                let json: [String: Any] = ["prompt_ids": ids, "generated_ids": result.tokens, "last_logits": (result.promptLogits ?? []).map(Double.init)]
                try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: logitsOut))
            }
            let prefill = firstToken!.timeIntervalSince(loaded)
            let decode = finished.timeIntervalSince(firstToken!)
            Terminal.note(String(format: "load %.2f s · prompt %d tokens, %.1f tok/s · generated %d tokens, %.1f tok/s",
                                 loaded.timeIntervalSince(started), ids.count, Double(ids.count) / prefill,
                                 generated.count, generated.count > 1 ? Double(generated.count - 1) / decode : 0))
        }
    }
}

extension KVDType: ExpressibleByArgument {}
