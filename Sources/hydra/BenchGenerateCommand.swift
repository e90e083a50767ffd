import ArgumentParser
import Foundation
import HydraControl
import HydraEngine
import HydraFormat

struct BenchGenerateCommand: ChildMeasuredBenchmark {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Prefill and decode speed and peak memory of the engine, next to llama.cpp on the same model.",
        discussion: """
        SmolLM2-135M: a 128-token prompt, then 128 greedy tokens, for batch 1 and 8. Our engine runs \
        the bf16 store entry, with its default f32 KV cache and with an f16 one (`--kv-dtype f16`, \
        the precision llama.cpp keeps its cache in); llama.cpp (llama-cpp-python 0.3.36, tools/bench/setup-llama-cpp) runs the \
        Q4_1 GGUF as shipped and an F16 GGUF of the same weights. Every contender runs in its own \
        process, alternating run by run; medians over --runs. Prints a table and writes JSON.
        """
    )

    @Option(help: "Folder for the converted store and the F16 GGUF.") var workDir: String = NSTemporaryDirectory() + "hydra-bench-generate"
    @Option(help: "Runs per contender.") var runs: Int = 5
    @Option(help: "SmolLM2 Q4_1 GGUF (default: the fetch-smollm2 cache).") var smollm2: String?
    @Option(help: "Python with llama_cpp installed (default: tools/bench/setup-llama-cpp's venv).") var llamaPython: String?
    @Option(help: "Threads for every contender.") var threads: Int = 2
    @Option(help: "Where to write the JSON figures.") var jsonOut: String = "bench-generate.json"
    @Option(help: "(internal) measure the engine once on STORE/NAME and print JSON.") var measureEntry: String?
    @Option(help: "(internal) batch size for --measure-entry.") var batch: Int = 1
    @Option(name: .customLong("prompt-ids"), help: "(internal) prompt ids for --measure-entry.") var promptIDs: String?
    @Option(name: .customLong("kv-dtype"), help: "(internal) KV cache dtype for --measure-entry.") var kvDType: KVDType = .f32

    static let promptTokens = 128
    static var newTokens: Int { Int(ProcessInfo.processInfo.environment["HYDRA_BENCH_NEW_TOKENS"] ?? "") ?? 128 }

    /// One in-process measurement of our engine (run as a child, so its peak RSS is its own).
    func measureOnce(_ location: String) throws {
        let entry = try openMeasuredEntry(location)
        let ids = promptIDs!.split(separator: ",").map { Int($0)! }
        let runner = try StageRunner(entry: entry, kvDType: kvDType)
        let engine = try Engine(runner: runner)
        for _ in 0..<batch { try engine.add(Engine.Request(prompt: ids, maxTokens: Self.newTokens)) }
        var started = DispatchTime.now()
        let prefillEvents = try engine.step()  // prefill of every sequence, first tokens
        let prefill = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9
        started = DispatchTime.now()
        var decoded = 0
        var first = prefillEvents.filter { $0.sequence == 0 }.map(\.token)
        while engine.hasWork {
            for event in try engine.step() {
                decoded += 1
                if event.sequence == 0 && first.count < 8 { first.append(event.token) }
            }
        }
        let decode = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9
        let json: [String: Any] = ["prefillSeconds": prefill, "decodeSeconds": decode, "promptTokens": ids.count * batch,
                                   "decodedTokens": decoded, "firstTokens": first]
        print(String(decoding: try JSONSerialization.data(withJSONObject: json), as: UTF8.self))
    }

    struct Sample: Codable { var prefillTokensPerSecond: Double; var decodeTokensPerSecond: Double; var peakRSSBytes: Int }
    struct Row: Codable {
        var contender: String
        var batch: Int
        var samples: [Sample]
        var prefill: Double { median(samples.map(\.prefillTokensPerSecond)) }
        var decode: Double { median(samples.map(\.decodeTokensPerSecond)) }
        var rss: Int { samples.map(\.peakRSSBytes).max() ?? 0 }
    }

    func compare() throws {
        try FileManager.default.createDirectory(atPath: workDir, withIntermediateDirectories: true)
        let gguf = smollm2 ?? SmolLM2.defaultGGUFPath
        guard FileManager.default.fileExists(atPath: gguf) else { throw BenchError("SmolLM2 GGUF not found at \(gguf): run tools/fetch-smollm2") }
        let store = workDir + "/store"
        if (try? StoreEntry(store: StoreDirectory(root: store), name: "smollm2")) == nil {
            Terminal.note("converting SmolLM2 to bf16 into \(store)…")
            let result = try ChildProcess.run([ChildProcess.selfPath, "convert", gguf, store, "--name", "smollm2", "--dtype", "bf16"])
            guard result.status == 0 else { throw BenchError("conversion failed") }
        }
        let entry = try StoreEntry(store: StoreDirectory(root: store), name: "smollm2")
        guard let tokenizer = try LoadedTokenizer.load(entry) else { throw BenchError("the entry has no tokenizer") }
        let text = "The history of the city begins with a small settlement on the river, where traders met to exchange grain, salt and cloth. "
        var ids: [Int] = []
        while ids.count < Self.promptTokens { ids += tokenizer.encode(text) }
        ids = Array(ids.prefix(Self.promptTokens))
        let idList = ids.map(String.init).joined(separator: ",")

        var contenders: [(name: String, batch: Int, argv: [String])] = []
        for (label, kv) in [("hydra (bf16)", KVDType.f32), ("hydra (bf16, f16 KV)", .f16)] {
            for b in [1, 8] {
                contenders.append((label, b, [ChildProcess.selfPath, "bench", "generate", "--measure-entry", store + ":smollm2",
                                              "--batch", String(b), "--prompt-ids", idList, "--kv-dtype", kv.rawValue]))
            }
        }
        let python = llamaPython ?? (SmolLM2.cacheDirectory + "/llama-venv/bin/python3")
        let script = benchScript("llama_cpp_generate.py")
        if FileManager.default.isExecutableFile(atPath: python) && FileManager.default.fileExists(atPath: script) {
            let f16 = workDir + "/SmolLM2-135M-Instruct.F16.gguf"
            if !FileManager.default.fileExists(atPath: f16) {
                _ = try ChildProcess.run([python, script, "--make-f16", gguf, f16])
            }
            for (label, model) in [("llama.cpp Q4_1", gguf), ("llama.cpp F16", f16)] {
                for b in [1, 8] {
                    contenders.append((label, b, [python, script, model, "--prompt-ids", idList, "--new-tokens", String(Self.newTokens),
                                                  "--batch", String(b), "--threads", String(threads)]))
                }
            }
        } else {
            Terminal.note("llama.cpp peer not found (\(python)): run tools/bench/setup-llama-cpp; measuring hydra alone")
        }

        var rows: [String: Row] = [:]
        for run in 1...runs {
            for contender in run % 2 == 1 ? contenders : contenders.reversed() {
                warmMemory(bytes: 1 << 30)
                let (result, output) = try ChildProcess.runCapturing(contender.argv, environment: ["HYDRA_THREADS": String(threads)])
                guard result.status == 0, let line = output.split(separator: "\n").last,
                      let json = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                    throw BenchError("\(contender.name) batch \(contender.batch) failed (status \(result.status))")
                }
                let sample = Sample(
                    prefillTokensPerSecond: (json["promptTokens"] as! Double) / (json["prefillSeconds"] as! Double),
                    decodeTokensPerSecond: (json["decodedTokens"] as! Double) / (json["decodeSeconds"] as! Double),
                    peakRSSBytes: result.peakRSSBytes)
                let key = "\(contender.name)#\(contender.batch)"
                rows[key, default: Row(contender: contender.name, batch: contender.batch, samples: [])].samples.append(sample)
                Terminal.note(String(format: "  run %d %@ batch %d: prefill %.0f tok/s, decode %.1f tok/s, first tokens %@", run,
                                     contender.name, contender.batch, sample.prefillTokensPerSecond, sample.decodeTokensPerSecond,
                                     "\(json["firstTokens"] ?? "")"))
            }
        }
        let ordered = contenders.map { rows["\($0.name)#\($0.batch)"]! }
        var lines = ["| contender | batch | prefill tok/s | decode tok/s | peak RSS MiB | decode vs llama.cpp F16 | prefill vs llama.cpp F16 |",
                     "|---|---|---|---|---|---|---|"]
        for row in ordered {
            let peer = ordered.first { $0.contender == "llama.cpp F16" && $0.batch == row.batch }
            func ratio(_ a: Double, _ b: Double?) -> String { b.map { String(format: "%.2f×", a / $0) } ?? "—" }
            lines.append(String(format: "| %@ | %d | %.0f | %.1f | %.0f | %@ | %@ |", row.contender, row.batch, row.prefill, row.decode,
                                Double(row.rss) / 1048576, ratio(row.decode, peer?.decode), ratio(row.prefill, peer?.prefill)))
        }
        print(lines.joined(separator: "\n"))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        struct Figures: Encodable {
            let benchmark = "generate"
            let model = "SmolLM2-135M-Instruct"
            let promptTokens: Int, newTokens: Int, threads: Int, runs: Int
            let rows: [Row]
        }
        try encoder.encode(Figures(promptTokens: Self.promptTokens, newTokens: Self.newTokens, threads: threads, runs: runs, rows: ordered))
            .write(to: URL(fileURLWithPath: jsonOut))
        Terminal.note("figures written to \(jsonOut)")
    }
}
