import ArgumentParser
import Foundation
import Glibc
import HydraControl
import HydraEngine
import HydraFormat
import HydraSystem
import HydraWorker

struct BenchServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "End to end through `hydra serve`: three models, mixed cold and warm requests, planner vs the pp = 1 baseline.",
        discussion: """
        Converts SmolLM2 three ways (bf16, f16, f32: three distinct models of 270, 270 and 540 MB) \
        and runs one seeded open-loop workload twice, each time against a fresh `hydra serve` on \
        --nodes emulated nodes with --nic-gbps links: (a) HydraServe, the planner choosing pp ≤ 4 \
        to meet --ttft-slo; (b) the serverless baseline, pp = 1 always (--max-pp 1). The workload: \
        --requests streamed chat requests, at most --concurrency in flight; the bf16 model is asked \
        steadily (it stays warm after its first cold start), the f16 and f32 models in bursts spaced \
        wider than --keep-alive (every burst is a cold start). Reports completed / failed requests, \
        TTFT p50/p99 for cold and warm requests (the server tags each response), TPOT, and every \
        cold start's predicted against measured TTFT. Prints a table and writes JSON.
        """
    )

    @Option(help: "Folder for the store, sockets and logs.") var workDir: String = NSTemporaryDirectory() + "hydra-bench-serve"
    @Option(help: "Requests per system.") var requests: Int = 200
    @Option(help: "Requests in flight at most.") var concurrency: Int = 32
    @Option(help: "Emulated nodes.") var nodes: Int = 4
    @Option(name: .customLong("nic-gbps"), help: "Emulated link of every node, Gbit/s.") var nicGbps: Double = 1
    @Option(name: .customLong("ttft-slo"), help: "Cold-start TTFT objective, seconds.") var ttftSLO: Double = 2
    @Option(name: .customLong("keep-alive"), help: "Keep-alive of idle instances, seconds.") var keepAlive: Double = 5
    @Option(name: .customLong("max-tokens"), help: "Tokens per answer at most.") var maxTokens: Int = 16
    @Option(help: "Seconds the workload spans.") var duration: Double = 60
    @Option(help: "Workload seed.") var seed: UInt64 = 1
    @Option(help: "Where to write the JSON figures.") var jsonOut: String = "bench-serve.json"

    static let models = [("smollm2-bf16", "bf16"), ("smollm2-f16", "f16"), ("smollm2-f32", "f32")]
    static let prompts = ["What is the capital of France?", "Name three colours.", "Say hello in Spanish.", "What is 2 + 2?",
                          "Give me a word that rhymes with cat.", "What is the largest planet?"]

    struct Arrival: Codable {
        var seconds: Double
        var model: String
        var prompt: String
    }

    struct Outcome: Codable {
        var model: String
        var sentSeconds: Double
        var status: Int
        var error: String?
        var cold: Bool?
        var ttftSeconds: Double?
        var seconds: Double
        var completionTokens: Int
        var tpotSeconds: Double? { ttftSeconds.flatMap { ttft in completionTokens > 1 ? (seconds - ttft) / Double(completionTokens - 1) : nil } }
    }

    struct ColdStart: Codable {
        var model: String
        var pp: Int
        var predicted: Double
        var measured: Double
        /// Bytes fetched over the links; 0 when the node caches held the model already.
        var fetchedBytes: Int
    }

    struct SystemRun: Codable {
        var system: String
        var maxPP: Int
        var outcomes: [Outcome]
        var coldStarts: [ColdStart]
        var wallSeconds: Double
    }

    func validate() throws {
        guard requests >= 1, concurrency >= 1, nodes >= 1, nicGbps > 0, ttftSLO > 0, keepAlive >= 0, maxTokens >= 1, duration > 0 else {
            throw ValidationError("every figure must be positive")
        }
    }

    func run() throws {
        try runReportingErrors {
            try FileManager.default.createDirectory(atPath: workDir, withIntermediateDirectories: true)
            let store = workDir + "/store"
            try prepare(store)
            let arrivals = workload()
            var runs: [SystemRun] = []
            for (system, maxPP) in [("HydraServe (planner, pp ≤ 4)", 4), ("baseline (pp = 1)", 1)] {
                Terminal.note("\(system): \(arrivals.count) requests over \(Int(duration)) s…")
                runs.append(try measure(system: system, maxPP: maxPP, store: store, arrivals: arrivals))
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(runs).write(to: URL(fileURLWithPath: jsonOut))
            print(table(runs))
            Terminal.note("figures written to \(jsonOut)")
        }
    }

    /// SmolLM2 in three dtypes: three models with distinct chunks.
    func prepare(_ store: String) throws {
        let gguf = SmolLM2.defaultGGUFPath
        guard FileManager.default.fileExists(atPath: gguf) else { throw BenchError("\(gguf) is missing: run tools/fetch-smollm2") }
        for (name, dtype) in Self.models where !FileManager.default.fileExists(atPath: StoreDirectory(root: store).manifestPath(name)) {
            Terminal.note("converting SmolLM2 as \(name)…")
            guard try ChildProcess.run([ChildProcess.selfPath, "convert", gguf, store, "--name", name, "--dtype", dtype, "--max-pp", "4"]).status == 0 else {
                throw BenchError("converting \(name) failed")
            }
        }
    }

    /// The seeded workload: 40% of the requests to the bf16 model at a steady Poisson rate, 30%
    /// each to the f16 and f32 models in four bursts, spaced by a quarter of the duration and
    /// offset from each other.
    func workload() -> [Arrival] {
        var random = SeededGenerator(seed: seed)
        var arrivals: [Arrival] = []
        let steady = requests * 4 / 10
        let bursty = (requests - steady) / 2
        var clock = 0.0
        for _ in 0..<steady {
            clock += -log(1 - random.unit()) * duration / Double(steady)
            arrivals.append(Arrival(seconds: min(clock, duration), model: Self.models[0].0, prompt: Self.prompts[random.index(Self.prompts.count)]))
        }
        for (index, model) in [Self.models[1].0, Self.models[2].0].enumerated() {
            let count = index == 0 ? bursty : requests - steady - bursty
            for request in 0..<count {
                let burst = request % 4
                let start = Double(burst) * duration / 4 + Double(index) * duration / 8
                arrivals.append(Arrival(seconds: start + random.unit(), model: model, prompt: Self.prompts[random.index(Self.prompts.count)]))
            }
        }
        return arrivals.sorted { $0.seconds < $1.seconds }
    }

    func measure(system: String, maxPP: Int, store: String, arrivals: [Arrival]) throws -> SystemRun {
        let port = try LocalCluster.freePort()
        let base = "http://127.0.0.1:\(port)"
        let runDir = workDir + "/run-pp\(maxPP)"
        let server = try SpawnedProcess([ChildProcess.selfPath, "serve", "--store", store, "--listen", "127.0.0.1:\(port)", "--work-dir", runDir,
                                         "--models", Self.models.map(\.0).joined(separator: ","), "--nodes", String(nodes),
                                         "--nic-gbps", String(nicGbps), "--ttft-slo", String(ttftSLO), "--keep-alive", String(keepAlive),
                                         "--max-pp", String(maxPP)], logPath: runDir + ".log")
        defer { server.terminate(graceSeconds: 30) }
        try LocalCluster.waitHTTP(base + "/healthz", process: server)
        let client = ServeClient(base: base)
        let slots = DispatchSemaphore(value: concurrency)
        let outcomes = LockedBox<[Outcome]>([])
        let group = DispatchGroup()
        let started = Date()
        for arrival in arrivals {
            let wait = arrival.seconds - Date().timeIntervalSince(started)
            if wait > 0 { Thread.sleep(forTimeInterval: wait) }
            slots.wait()
            group.enter()
            let sent = Date().timeIntervalSince(started)
            Thread.detachNewThread { [maxTokens] in
                let answer = client.chat(model: arrival.model, prompt: arrival.prompt, maxTokens: maxTokens)
                outcomes.withValue {
                    $0.append(Outcome(model: arrival.model, sentSeconds: sent, status: answer.status, error: answer.error,
                                      cold: answer.start.map { $0 == "cold" }, ttftSeconds: answer.firstTokenSeconds, seconds: answer.seconds,
                                      completionTokens: answer.completionTokens))
                }
                slots.signal()
                group.leave()
            }
        }
        group.wait()
        let wall = Date().timeIntervalSince(started)
        var coldStarts: [ColdStart] = []
        if case .array(let list) = try JSONValue.parse(try HTTPClient(timeoutSeconds: 10).get(base + "/v1/cold-starts").body, file: "cold-starts") {
            coldStarts = list.compactMap { item in
                guard let model = item["model"]?.stringValue, let pp = item["pp"]?.intValue, let predicted = item["predicted_ttft_seconds"]?.doubleValue,
                      let measured = item["measured_ttft_seconds"]?.doubleValue else { return nil }
                return ColdStart(model: model, pp: pp, predicted: predicted, measured: measured, fetchedBytes: item["fetched_bytes"]?.intValue ?? 0)
            }
        }
        return SystemRun(system: system, maxPP: maxPP, outcomes: outcomes.value.sorted { $0.sentSeconds < $1.sentSeconds }, coldStarts: coldStarts,
                         wallSeconds: wall)
    }

    func table(_ runs: [SystemRun]) -> String {
        func pair(_ values: [Double]) -> String {
            values.isEmpty ? "—" : String(format: "%.2f / %.2f", percentile(values, 0.5), percentile(values, 0.99))
        }
        func planner(_ starts: [ColdStart]) -> String {
            guard !starts.isEmpty else { return "—" }
            let errors = starts.map { abs($0.predicted - $0.measured) / $0.measured }
            return String(format: "%.0f%% (%d of %d within 20%%)", percentile(errors, 0.5) * 100, errors.filter { $0 <= 0.2 }.count, errors.count)
        }
        var lines = ["| system | requests | completed | failed | cold starts: over the network (pp chosen) / from a warm node cache | network cold start TTFT p50 / p99 s | vs baseline (p50) | cold requests TTFT p50 / p99 s | warm requests TTFT p50 / p99 s | TPOT p50 ms | planner error, network cold starts: median (within 20%) | planner error, cache-hit cold starts |",
                     "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        let baselineNetwork = runs.last.map { $0.coldStarts.filter { $0.fetchedBytes > 0 }.map(\.measured) } ?? []
        for run in runs {
            let completed = run.outcomes.filter { $0.status == 200 && $0.error == nil }
            let network = run.coldStarts.filter { $0.fetchedBytes > 0 }
            let cached = run.coldStarts.filter { $0.fetchedBytes == 0 }
            let pps = Dictionary(grouping: network, by: \.pp).sorted { $0.key < $1.key }.map { "\($0.value.count)× pp=\($0.key)" }.joined(separator: ", ")
            let networkTTFT = network.map(\.measured)
            let versus = networkTTFT.isEmpty || baselineNetwork.isEmpty ? "—" : String(format: "%.2f×", percentile(networkTTFT, 0.5) / percentile(baselineNetwork, 0.5))
            let tpot = completed.compactMap(\.tpotSeconds)
            lines.append("| \(run.system) | \(run.outcomes.count) | \(completed.count) | \(run.outcomes.count - completed.count) | \(network.count) (\(pps)) / \(cached.count) | "
                         + "\(pair(networkTTFT)) | \(versus) | \(pair(completed.filter { $0.cold == true }.compactMap(\.ttftSeconds))) | "
                         + "\(pair(completed.filter { $0.cold == false }.compactMap(\.ttftSeconds))) | "
                         + (tpot.isEmpty ? "—" : String(format: "%.0f", percentile(tpot, 0.5) * 1000)) + " | \(planner(network)) | \(planner(cached)) |")
        }
        for run in runs {
            for failure in run.outcomes.filter({ $0.status != 200 || $0.error != nil }).prefix(3) {
                lines.append("\n\(run.system): failed \(failure.model) at \(String(format: "%.1f", failure.sentSeconds)) s: HTTP \(failure.status) \(failure.error ?? "")")
            }
        }
        lines.append("\nWorkload: \(requests) streamed chat requests over \(Int(duration)) s (seed \(seed)), at most \(concurrency) in flight, \(maxTokens) tokens at most each; smollm2-bf16 steady (40%), smollm2-f16 and smollm2-f32 in four bursts each. \(nodes) emulated nodes, \(nicGbps) Gbit/s links, keep-alive \(keepAlive) s, TTFT objective \(ttftSLO) s. A cold start's TTFT runs from its first request's arrival to the instance's first token (the server's record, /v1/cold-starts); \"over the network\" ones fetched bytes over the emulated links, the others found every stage in their node's cache. Cold and warm requests as the server tagged each response (x-hydra-start): a cold request waited for some part of a cold start.")
        return lines.joined(separator: "\n")
    }
}
