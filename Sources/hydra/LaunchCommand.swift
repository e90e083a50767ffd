import ArgumentParser
import Foundation
import Glibc
import HydraEngine
import HydraFormat
import HydraSystem
import HydraWorker

struct LaunchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "launch",
        abstract: "Cold-start a model as a pipeline on emulated nodes on this machine, ask it one prompt, show the start-up timeline.",
        discussion: """
        Starts a store server on STORE, one node cache per node (--nodes, default --pp) with its \
        link emulated at --nic-gbps, and the --pp stage workers of NAME, one per node — all as \
        processes on loopback, logs in --work-dir. Sends the prompt at once, so the answer waits \
        for the cold start; prints the answer, the time to first token and every stage's timeline \
        (seconds since its process started). With --consolidate, the pipeline is then consolidated \
        into stage 0 and asked again. Everything is stopped at the end.
        """
    )

    @Argument(help: "Store directory.") var store: String
    @Argument(help: "Entry name.") var name: String
    @Option(help: "Pipeline depth (stages, one per node).") var pp: Int = 2
    @Option(help: "Emulated nodes (default: --pp).") var nodes: Int?
    @Option(name: .customLong("nic-gbps"), help: "Emulated link of every node, Gbit/s.") var nicGbps: Double = 1
    @OptionGroup var prompt: PromptOptions
    @Option(name: .customLong("max-tokens"), help: "Tokens to generate at most.") var maxTokens: Int = 48
    @Flag(help: "Consolidate the pipeline into stage 0 afterwards and ask again.") var consolidate = false
    @Option(help: "Folder for sockets and logs (default: a new one per run).")
    var workDir: String = NSTemporaryDirectory() + "hydra-launch-\(getpid())"

    func validate() throws {
        guard pp >= 1, maxTokens >= 1, nicGbps > 0 else { throw ValidationError("--pp, --max-tokens and --nic-gbps must be positive") }
        if let nodes, nodes < 1 { throw ValidationError("--nodes must be positive") }
    }

    func run() throws {
        try runReportingErrors {
            let entry = try StoreEntry(store: StoreDirectory(root: store), name: name)
            guard entry.manifest.stagePlans.contains(where: { $0.pp == pp }) else {
                throw EngineError("'\(name)' has no stage plan for pp=\(pp) (plans: \(entry.manifest.stagePlans.map { String($0.pp) }.joined(separator: ", ")))")
            }
            let tokenizer = try LoadedTokenizer.load(entry)
            let ids = try prompt.encode(entry, tokenizer: tokenizer)
            let stops = try LoadedTokenizer.stopTokens(entry, tokenizer: tokenizer)
            let modelBytes = entry.manifest.chunks.reduce(0) { $0 + $1.storedBytes }

            var configuration = LocalCluster.Configuration(executable: ChildProcess.selfPath, storeRoot: store, workDirectory: workDir)
            configuration.nodes = nodes ?? pp
            configuration.nicGigabitsPerSecond = nicGbps
            configuration.cacheCapacityGiB = max(1, 2 * Double(modelBytes) / Double(1 << 30))
            Terminal.note("starting a store server and \(configuration.nodes) node caches (links at \(nicGbps) Gbit/s) in \(workDir)…")
            let cluster = try LocalCluster(configuration: configuration)
            defer { cluster.stop() }

            Terminal.note("cold-starting \(name) as \(pp) stage\(pp == 1 ? "" : "s") (\(formatBytes(modelBytes)))…")
            let pipeline = try cluster.launch(model: name, pp: pp, fullMemory: consolidate ? [0] : [])
            let client = WorkerClient(endpoint: pipeline.endpoint)
            let cold = try client.generate(promptIDs: ids, maxTokens: maxTokens, stopIDs: Array(stops))
            print(text(cold.tokens, tokenizer: tokenizer, stops: stops))
            print(String(format: "\ntime to first token %.2f s (cold start included), %d tokens in %.2f s", cold.firstTokenSeconds ?? 0,
                         cold.tokens.count, cold.seconds))
            print(try timeline(pipeline))

            if consolidate && pp > 1 {
                let response = try HTTPClient(timeoutSeconds: 600).post(pipeline.endpoint + "/v1/consolidate", json: Array("{\"mode\":\"auto\"}".utf8))
                guard response.status == 200 else { throw EngineError("consolidation failed: \(String(decoding: response.body, as: UTF8.self))") }
                print("\nconsolidated into stage 0: \(String(decoding: response.body, as: UTF8.self))")
                let warm = try client.generate(promptIDs: ids, maxTokens: maxTokens, stopIDs: Array(stops))
                print(text(warm.tokens, tokenizer: tokenizer, stops: stops))
                print(String(format: "\ntime to first token %.3f s (warm, one worker)", warm.firstTokenSeconds ?? 0))
            }
        }
    }

    func text(_ tokens: [Int], tokenizer: Tokenizer?, stops: Set<Int>) -> String {
        let kept = tokens.filter { !stops.contains($0) }
        guard let tokenizer else { return kept.map(String.init).joined(separator: " ") }
        return tokenizer.decode(kept, skipSpecial: true)
    }

    /// Every stage's start-up, from its status endpoint.
    func timeline(_ pipeline: LocalCluster.Pipeline) throws -> String {
        let events = ["attached", "first_chunk", "last_chunk", "runtime_ready", "ready", "first_token"]
        var lines = ["", "stage  " + events.map { $0.padding(toLength: 14, withPad: " ", startingAt: 0) }.joined()]
        for (stage, endpoint) in pipeline.endpoints.enumerated() {
            let marks = try WorkerClient(endpoint: endpoint).timeline()
            let cells = events.map { marks[$0].map { String(format: "%.3f s", $0) } ?? "—" }
            lines.append(String(stage).padding(toLength: 7, withPad: " ", startingAt: 0)
                         + cells.map { $0.padding(toLength: 14, withPad: " ", startingAt: 0) }.joined())
        }
        lines.append("(seconds since each worker's process started)")
        return lines.joined(separator: "\n")
    }
}
