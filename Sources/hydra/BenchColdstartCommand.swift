import ArgumentParser
import Foundation
import HydraControl
import HydraFormat
import HydraStore
import HydraSystem
import HydraWorker

struct BenchColdstartCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coldstart",
        abstract: "Time to first token of a cold start: fetch-then-start vs overlapped start-up at pp = 1, 2, 4.",
        discussion: """
        On emulated nodes (a store server, one node cache per node with its link emulated at \
        --nic-gbps, stage workers as processes; all on loopback), for the synthetic ~2 GB Llama and \
        SmolLM2 (bf16). Before every run the node caches are restarted empty and the store's chunk \
        files are dropped from the page cache. TTFT is measured by the client from the moment the \
        start-up begins to the first streamed token: (i) fetch-then-start, pp = 1 — the whole model \
        is fetched into the node cache first, and only then is the worker started (the serverless \
        baseline); (ii) overlapped, pp = 1 — the worker starts at once and loads chunks as they \
        land while its runtime initialises; (iii) overlapped pp = 2 and 4 — one stage per node, \
        each fetching its own slice over its own link. Medians over --runs; per-stage timelines \
        from the workers' status. Prints a table and writes JSON.
        """
    )

    @Option(help: "Folder for the store, sockets and logs.") var workDir: String = NSTemporaryDirectory() + "hydra-bench-coldstart"
    @Option(help: "Runs per scenario.") var runs: Int = 5
    @Option(name: .customLong("nic-gbps"), help: "Emulated link of every node, Gbit/s.") var nicGbps: Double = 1
    @Option(help: "Only these models (store names, comma-separated).") var models: String?
    @Option(help: "Where to write the JSON figures.") var jsonOut: String = "bench-coldstart.json"
    @Option(help: "Tokens generated per decode timing after start-up or consolidation.") var decodeTokens: Int = 32

    struct Run: Codable {
        var ttftSeconds: Double
        /// Decode tokens/s after start-up (pp = 1) or after consolidating the pipeline (pp > 1).
        var decodeTokensPerSecond: Double?
        /// pp > 1: a worker started with the whole model, timed alternately with the consolidated one.
        var wholeDecodeTokensPerSecond: Double?
        var consolidationSeconds: Double?
        /// The fetch before the start (fetch-then-start only).
        var prefetchSeconds: Double?
        /// Per stage: event → seconds since that worker's process start.
        var timelines: [[String: Double]]
    }

    struct Row: Codable {
        var model: String
        var scenario: String
        var pp: Int
        var bytes: Int
        var runs: [Run]
        /// The cold-start planner's prediction for this scenario (overlapped rows).
        var plannerPredictedSeconds: Double?
        var medianTTFT: Double { median(runs.map(\.ttftSeconds)) }
        func medianEvent(_ event: String, stage: Int) -> Double? {
            let values = runs.compactMap { $0.timelines.indices.contains(stage) ? $0.timelines[stage][event] : nil }
            return values.isEmpty ? nil : median(values)
        }
    }

    func validate() throws {
        guard runs >= 1, nicGbps > 0 else { throw ValidationError("--runs and --nic-gbps must be positive") }
    }

    func run() throws {
        try runReportingErrors {
            try FileManager.default.createDirectory(atPath: workDir, withIntermediateDirectories: true)
            let store = workDir + "/store"
            var chosen = try prepareBenchModels(store: store, workDir: workDir)
            if let models {
                let names = Set(models.split(separator: ",").map(String.init))
                chosen = chosen.filter { names.contains($0.name) }
            }
            var configuration = LocalCluster.Configuration(executable: ChildProcess.selfPath, storeRoot: store, workDirectory: workDir + "/run")
            configuration.nodes = 4
            configuration.nicGigabitsPerSecond = nicGbps
            configuration.cacheCapacityGiB = 4
            let cluster = try LocalCluster(configuration: configuration)
            defer { cluster.stop() }

            var rows: [Row] = []
            for (label, name) in chosen {
                let entry = try StoreEntry(store: StoreDirectory(root: store), name: name)
                let bytes = entry.manifest.chunks.reduce(0) { $0 + $1.storedBytes }
                let scenarios: [(String, Int, Bool)] = [("(i) fetch-then-start", 1, true), ("(ii) overlapped", 1, false),
                                                        ("(iii) overlapped", 2, false), ("(iii) overlapped", 4, false)]
                var collected = scenarios.map { Row(model: label, scenario: $0.0, pp: $0.1, bytes: bytes, runs: []) }
                for run in 1...runs {
                    for (index, scenario) in scenarios.enumerated() {
                        Terminal.note("\(label): \(scenario.0) pp=\(scenario.1), run \(run) of \(runs)")
                        collected[index].runs.append(try measure(cluster: cluster, model: name, pp: scenario.1, fetchFirst: scenario.2))
                    }
                }
                predict(&collected, manifest: entry.manifest)
                rows += collected
            }
            print(table(rows))
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(rows).write(to: URL(fileURLWithPath: jsonOut))
            Terminal.note("figures written to \(jsonOut)")
        }
    }

    /// One cold start, from empty node caches and a dropped store page cache.
    func measure(cluster: LocalCluster, model: String, pp: Int, fetchFirst: Bool) throws -> Run {
        for node in 0..<cluster.configuration.nodes { try cluster.restartCache(node) }
        try cluster.dropStorePageCache(model: model)
        warmMemory(bytes: 1 << 30)
        let started = DispatchTime.now()
        let elapsed = { Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9 }
        var prefetch: Double?
        if fetchFirst {
            let attachment = try NodeCacheClient.attach(socketPath: cluster.cacheSocket(0), order: CacheOrder(model: model))
            while try attachment.next() != nil {}
            attachment.close()
            prefetch = elapsed()
        }
        let pipeline = try cluster.launch(model: model, pp: pp, fullMemory: [0])
        defer { cluster.stop(pipeline) }
        let client = WorkerClient(endpoint: pipeline.endpoint)
        let requested = elapsed()
        let generation = try client.generate(promptIDs: [1, 415, 5565, 302, 4843, 349, 5465, 28723], maxTokens: 2)
        guard let firstTokenSeconds = generation.firstTokenSeconds else { throw BenchError("\(model) pp=\(pp): no token came back") }
        let firstToken = requested + firstTokenSeconds
        var timelines: [[String: Double]] = []
        for endpoint in pipeline.endpoints { timelines.append(try WorkerClient(endpoint: endpoint).timeline()) }
        // Then the steady state: consolidate a pipeline into stage 0, and time decoding.
        var consolidation: Double?
        if pp > 1 {
            let began = DispatchTime.now()
            let response = try HTTPClient(timeoutSeconds: 600).post(pipeline.endpoint + "/v1/consolidate", json: Array("{\"mode\":\"auto\"}".utf8))
            guard response.status == 200 else { throw BenchError("consolidation failed: \(String(decoding: response.body, as: UTF8.self))") }
            consolidation = Double(DispatchTime.now().uptimeNanoseconds - began.uptimeNanoseconds) / 1e9
        }
        func decodeRate(_ client: WorkerClient) throws -> Double {
            let decode = try client.generate(promptIDs: [1, 415, 5565, 302], maxTokens: decodeTokens)
            return Double(decode.tokens.count - 1) / (decode.seconds - (decode.firstTokenSeconds ?? 0))
        }
        var consolidated: [Double] = [], whole: [Double] = []
        if pp > 1 {
            // Against a worker that started whole (from node 0's cache, which now holds the whole
            // model), timed alternately in the same run so drift hits both.
            let reference = try cluster.launch(model: model, pp: 1)
            defer { cluster.stop(reference) }
            let referenceClient = WorkerClient(endpoint: reference.endpoint)
            _ = try referenceClient.generate(promptIDs: [1], maxTokens: 1)
            for _ in 0..<3 {
                consolidated.append(try decodeRate(client))
                whole.append(try decodeRate(referenceClient))
            }
        } else {
            consolidated.append(try decodeRate(client))
        }
        return Run(ttftSeconds: firstToken, decodeTokensPerSecond: median(consolidated), wholeDecodeTokensPerSecond: whole.isEmpty ? nil : median(whole),
                   consolidationSeconds: consolidation, prefetchSeconds: prefetch, timelines: timelines)
    }

    /// The planner's constants fitted from the overlapped pp = 1 timelines (process start to
    /// attached, runtime init after attaching, first token after ready), then its prediction for
    /// every overlapped scenario: pp = 1 checks the fit, pp = 2 and 4 are predictions.
    func predict(_ rows: inout [Row], manifest: Manifest) {
        guard let fit = rows.first(where: { $0.scenario.hasPrefix("(ii)") }) else { return }
        func fitted(_ value: (([String: Double]) -> Double?)) -> Double { median(fit.runs.compactMap { $0.timelines.first.flatMap(value) }) }
        let constants = ColdStartPlanner.Constants(
            startupSeconds: fitted { $0["attached"] },
            runtimeInitSeconds: fitted { t in t["runtime_ready"].flatMap { r in t["attached"].map { r - $0 } } },
            firstTokenSeconds: fitted { t in t["first_token"].flatMap { f in t["ready"].map { f - $0 } } })
        let nodes = (0..<4).map { ColdStartPlanner.Node(name: "node\($0)", nicBytesPerSecond: nicGbps * 1e9 / 8, freeMemoryBytes: Int.max / 8) }
        var stageBytes: [Int: [Int]] = [:]
        for plan in manifest.stagePlans where plan.pp <= 4 { stageBytes[plan.pp] = plan.stages.map(\.bytes) }
        let model = ColdStartPlanner.Model(name: manifest.name, stageBytes: stageBytes, wholeBytes: stageBytes[1]?.first ?? 0, ttftSLOSeconds: 0)
        let predictions = ColdStartPlanner(nodes: nodes, constants: constants).predictions(for: model, now: 0)
        for index in rows.indices where !rows[index].scenario.hasPrefix("(i) ") {
            rows[index].plannerPredictedSeconds = predictions.first { $0.pp == rows[index].pp }?.predictedTTFTSeconds
        }
    }

    func table(_ rows: [Row]) -> String {
        var lines = ["| model | scenario | pp | TTFT median s | min–max s | vs (i) | planner predicted s | last chunk (per stage) s | runtime ready s | first token − ready s | decode tok/s (after consolidation) | vs a whole worker, same run |",
                     "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for row in rows {
            let baseline = rows.first { $0.model == row.model && $0.scenario.hasPrefix("(i) ") }!.medianTTFT
            let lastChunks = (0..<row.pp).compactMap { row.medianEvent("last_chunk", stage: $0) }.map { String(format: "%.2f", $0) }.joined(separator: " / ")
            let runtime = row.medianEvent("runtime_ready", stage: 0).map { String(format: "%.2f", $0) } ?? "—"
            let compute = zip(row.runs.compactMap { $0.timelines.first?["first_token"] }, row.runs.compactMap { $0.timelines.first?["ready"] })
                .map { $0 - $1 }
            let ttfts = row.runs.map(\.ttftSeconds)
            let decode = median(row.runs.compactMap(\.decodeTokensPerSecond))
            let ratios = row.runs.compactMap { run in run.wholeDecodeTokensPerSecond.flatMap { whole in run.decodeTokensPerSecond.map { $0 / whole } } }
            let predicted = row.plannerPredictedSeconds.map { String(format: "%.2f (%+.0f%%)", $0, ($0 / row.medianTTFT - 1) * 100) } ?? "—"
            lines.append(String(format: "| %@ | %@ | %d | %.2f | %.2f–%.2f | %.2f× | %@ | %@ | %@ | %@ | %.1f | %@ |", row.model, row.scenario, row.pp, row.medianTTFT,
                                ttfts.min()!, ttfts.max()!, row.medianTTFT / baseline, predicted, lastChunks, runtime,
                                compute.isEmpty ? "—" : String(format: "%.2f", median(compute)), decode,
                                ratios.isEmpty ? "—" : String(format: "%.2f×", median(ratios))))
        }
        for (label, _) in Dictionary(grouping: rows, by: \.model) {
            guard let fetchThenStart = rows.first(where: { $0.model == label && $0.scenario.hasPrefix("(i) ") }),
                  let overlapped = rows.first(where: { $0.model == label && $0.scenario.hasPrefix("(ii)") }) else { continue }
            // Overlap efficiency: TTFT (ii) against the slower of fetch and runtime init, plus the first token's compute.
            let fetch = median(fetchThenStart.runs.compactMap(\.prefetchSeconds))
            let runtime = overlapped.medianEvent("runtime_ready", stage: 0) ?? 0
            let compute = median(zip(overlapped.runs.compactMap { $0.timelines.first?["first_token"] }, overlapped.runs.compactMap { $0.timelines.first?["ready"] }).map { $0 - $1 })
            lines.append(String(format: "\n%@: overlap efficiency (ii) / (max(fetch %.2f s, runtime init %.2f s) + first-token compute %.2f s) = %.2f (goal ≤ 1.1)",
                                label, fetch, runtime, compute, overlapped.medianTTFT / (max(fetch, runtime) + compute)))
        }
        lines.append("\nPlanner: `ColdStartPlanner` with its constants fitted from the (ii) timelines (start-up = process start to attached, runtime init after attaching, first token after ready) and 4 nodes at \(nicGbps) Gbit/s; the pp = 1 row checks the fit, pp = 2 and 4 are predictions from the stage bytes.")
        lines.append("\nDecode: \(decodeTokens) tokens from a 4-token prompt. For pp > 1 the pipeline is first consolidated into stage 0 (auto mode); it and a worker started with the whole model are then timed alternately, three times each; the ratio is taken per run, then the median.")
        lines.append("\nTTFT: from the start of the cold start (fetch for (i), worker launch otherwise) to the first streamed token, seen by the client. Timeline columns are seconds since each worker's own process start (for (i) the worker starts after the fetch). Links emulated at \(nicGbps) Gbit/s per node by the node caches' token buckets.")
        return lines.joined(separator: "\n")
    }
}
