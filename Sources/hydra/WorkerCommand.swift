import ArgumentParser
import Foundation
import HydraSystem
import Glibc
import HydraEngine
import HydraWorker
import Hummingbird
import Logging

struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run one pipeline stage of a model, cold-started from the node cache.",
        discussion: """
        From process start, two things run at once: the stage's chunks stream in from the node \
        cache (--cache-socket) and are copied into device memory as each one lands, while the \
        runtime (config, KV blocks, compute threads) is initialised. Stage 0 serves \
        POST /v1/generate ({"prompt_ids":[…],"max_tokens":N,"temperature":T,"top_p":P,"seed":S,\
        "stop_ids":[…]}, answered as NDJSON tokens) and drives stages 1…pp-1 over the pipeline \
        link (--next: the next stage's --pipeline-listen). Every stage serves GET /healthz and \
        GET /v1/status, which reports the start-up timeline (seconds since process start). \
        Requests that arrive during start-up wait for it. With --memory full, stage 0 answers \
        POST /v1/consolidate ({"mode":"auto|migrate|drain"}): it loads the rest of the model while \
        serving, takes over the in-flight sequences (migrating their K/V blocks, or letting them \
        finish) and becomes a single-worker endpoint; the other stages exit. Stops on SIGINT or SIGTERM.
        """
    )

    @Option(help: "Model name in the store.") var model: String
    @Option(help: "This worker's stage index.") var stage: Int = 0
    @Option(help: "Pipeline depth.") var pp: Int = 1
    @Option(name: .customLong("cache-socket"), help: "The node cache's Unix socket.") var cacheSocket: String
    @Option(help: "HOST:PORT for the HTTP endpoint (status; generate on stage 0).") var listen: String = "127.0.0.1:8480"
    @Option(name: .customLong("pipeline-listen"), help: "HOST:PORT where a stage after the first accepts the previous stage.")
    var pipelineListen: String?
    @Option(help: "HOST:PORT of the next stage's --pipeline-listen (every stage but the last).") var next: String?
    @Option(name: .customLong("kv-cache-mib"), help: "KV cache of the whole model in MiB (each stage holds its layers' share).")
    var kvCacheMiB: Int = StageRunner.defaultKVCacheBytes >> 20
    @Option(name: .customLong("kv-dtype"), help: "KV cache elements: f32 (exact) or f16 (twice the tokens in the same MiB). Every stage of a pipeline takes the same.")
    var kvDType: KVDType = .f32
    @Option(name: .customLong("step-timeout"), help: "Seconds a step may wait for the rest of the pipeline.") var stepTimeout: Double = 60
    @Option(name: .customLong("micro-batches"), help: "Micro-batches stage 0 keeps in flight along the pipeline (default: pp).")
    var microBatches: Int?
    @Option(help: "full: reserve memory for the whole model so stage 0 can consolidate the pipeline into itself (POST /v1/consolidate); stage: only this stage's layers.")
    var memory: String = "stage"
    @Flag(name: .customLong("fetch-first"), help: "Fetch the whole stage into the node cache before initialising (the fetch-then-start baseline).")
    var fetchFirst = false

    func validate() throws {
        guard pp >= 1, (0..<pp).contains(stage) else { throw ValidationError("--stage must be in 0..<--pp") }
        guard (stage == pp - 1) == (next == nil) else { throw ValidationError("every stage but the last needs --next, and the last has none") }
        guard stage == 0 || pipelineListen != nil else { throw ValidationError("stages after the first need --pipeline-listen") }
        guard memory == "full" || memory == "stage" else { throw ValidationError("--memory must be full or stage") }
        if let microBatches, microBatches < 1 { throw ValidationError("--micro-batches must be at least 1") }
        guard kvCacheMiB > 0, stepTimeout > 0 else { throw ValidationError("--kv-cache-mib and --step-timeout must be positive") }
        for address in [listen, pipelineListen, next].compactMap({ $0 }) { _ = try Self.address(address) }
    }

    static func address(_ text: String) throws -> (host: String, port: Int) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
            throw ValidationError("'\(text)' is not HOST:PORT")
        }
        return (String(text[..<colon]), port)
    }

    func run() async throws {
        ParentWatch.start()
        var logger = Logger(label: "hydra.worker")
        logger.logLevel = .info
        logger[metadataKey: "stage"] = "\(stage)/\(pp)"
        let timeline = StartupTimeline(logger: logger)
        var startup = StageStartup(model: model, stage: stage, pp: pp, cacheSocket: cacheSocket)
        startup.kvCacheBytes = kvCacheMiB << 20
        startup.kvDType = kvDType
        startup.memoryFull = memory == "full"
        startup.fetchFirst = fetchFirst
        var options = Worker.Options(startup: startup)
        options.next = try next.map(Self.address)
        if let pipelineListen {
            (options.pipelineHost, options.pipelinePort) = try Self.address(pipelineListen)
        }
        options.stepTimeoutSeconds = stepTimeout
        options.microBatches = microBatches
        let worker = Worker(options: options, timeline: timeline, logger: logger)
        worker.onRetire = {
            // The pipeline was consolidated into stage 0: this stage's work is done.
            Thread.detachNewThread { Thread.sleep(forTimeInterval: 0.05); Glibc.exit(0) }
        }
        worker.start()
        let (host, port) = try Self.address(listen)
        let app = worker.server.application(host: host, port: port, logger: logger) { bound in
            Terminal.note("worker \(model) stage \(stage) of \(pp) on http://\(host):\(bound)")
        }
        try await app.runService()
        worker.shutdown()
    }
}
