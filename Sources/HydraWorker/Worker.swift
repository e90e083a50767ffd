import Foundation
import HydraEngine
import HydraFormat
import HydraSystem
import Logging

/// One stage worker (`hydra worker`): starts its stage (overlapped start-up), then either
/// drives the pipeline (stage 0: engine + HTTP generate) or serves the link from the previous
/// stage (stages 1…pp-1). The HTTP status endpoint is up from the first moment.
public final class Worker: @unchecked Sendable {
    public struct Options: Sendable {
        public var startup: StageStartup
        /// Where stages after the first accept the previous stage's pipeline link.
        public var pipelineHost = "127.0.0.1"
        public var pipelinePort = 0
        /// The next stage's pipeline address (every stage but the last).
        public var next: (host: String, port: Int)?
        public var stepTimeoutSeconds = 60.0
        /// How long stage 0 keeps trying to reach a next stage that is still starting.
        public var connectTimeoutSeconds = 300.0
        /// Micro-batches stage 0 keeps in flight along the pipeline (nil: pp).
        public var microBatches: Int?

        public init(startup: StageStartup) { self.startup = startup }
    }

    public let options: Options
    public let server: WorkerServer
    let logger: Logger
    private let stageServer = LockedBox<StageServer?>(nil)
    private let service = LockedBox<EngineService?>(nil)
    private let pipeline = LockedBox<(PipelineExecutor, manifest: HydraFormat.Manifest)?>(nil)
    private let consolidation = LockedBox<Bool>(false)
    /// Called when a later stage was retired by consolidation (the process should exit).
    public var onRetire: (@Sendable () -> Void)?

    public init(options: Options, timeline: StartupTimeline, logger: Logger = Logger(label: "hydra.worker")) {
        self.options = options
        self.logger = logger
        server = WorkerServer(model: options.startup.model, stage: options.startup.stage, pp: options.startup.pp, timeline: timeline)
        server.consolidate = { [weak self] mode in
            guard let self else { throw EngineError("the worker is gone") }
            return try await self.consolidate(mode: mode)
        }
    }

    /// Stage 0's engine, once ready.
    public var engineService: EngineService? { service.value }

    /// The pipeline port stages after the first listen on, once started (0 before).
    public var pipelinePort: Int { stageServer.value?.port ?? 0 }

    /// Starts the stage on a thread of its own; the outcome goes to `server`'s phase.
    public func start() {
        Thread.detachNewThread { [self] in
            do {
                server.finishStartup(.ready(try startStage()))
                logger.info("worker ready", metadata: ["stage": "\(options.startup.stage)", "pp": "\(options.startup.pp)"])
            } catch {
                logger.error("worker failed to start", metadata: ["error": "\(error)"])
                server.finishStartup(.failed("\(error)"))
            }
        }
    }

    func startStage() throws -> EngineService? {
        let startup = options.startup
        let (manifest, runner) = try startup.run(timeline: server.timeline)
        if startup.stage > 0 {
            let stage = try StageServer(runner: runner, model: startup.model, pp: startup.pp, host: options.pipelineHost,
                                        port: options.pipelinePort, next: options.next,
                                        stepTimeoutSeconds: options.stepTimeoutSeconds,
                                        connectTimeoutSeconds: options.connectTimeoutSeconds, logger: logger)
            stage.onRetiring = { [weak self] in
                // A future replica is "starting" from now: requests wait for it rather than bounce.
                if let self, self.options.startup.memoryFull { self.server.finishStartup(.starting) }
            }
            stage.onRetire = { [weak self] in self?.retired(runner: runner, manifest: manifest) }
            stage.start()
            stageServer.value = stage
            return nil
        }
        let engine: Engine
        if startup.pp == 1 {
            engine = try Engine(runner: runner)
        } else {
            guard let next = options.next else { throw EngineError("stage 0 of a pipeline needs --next") }
            let hello = PipelineHello(model: startup.model, pp: startup.pp, stage: 1,
                                      blockCount: runner.cache.blockCount, blockSize: runner.cache.blockSize)
            let link = try PipelineLink(host: next.host, port: next.port, hello: hello, stepTimeoutSeconds: options.stepTimeoutSeconds,
                                        connectTimeoutSeconds: options.connectTimeoutSeconds)
            let executor = try PipelineExecutor(runner: runner, next: link, pp: startup.pp, depth: options.microBatches)
            pipeline.value = (executor, manifest)
            engine = Engine(executor: executor)
        }
        let engineService = EngineService(engine: engine, logger: logger)
        service.value = engineService
        return engineService
    }

    /// Consolidates the pipeline into this worker (stage 0, started with `memoryFull`): loads
    /// the rest of the model while serving, then takes over the in-flight sequences.
    public func consolidate(mode requested: Consolidation.Mode) async throws -> Consolidation.Report {
        guard options.startup.memoryFull else {
            throw EngineError("this worker was started with --memory stage: it has no room to hold the whole model")
        }
        guard let (executor, manifest) = pipeline.value, let service = service.value else {
            throw EngineError("only a ready stage 0 of a pipeline (pp > 1) consolidates")
        }
        guard consolidation.withValue({ busy in defer { busy = true }; return !busy }) else {
            throw EngineError("this pipeline is already consolidating or consolidated")
        }
        let timeline = server.timeline
        timeline.mark("consolidation_ordered")
        let started = DispatchTime.now()
        let startup = options.startup
        let fetched: Int
        do {
            fetched = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Int, Error>) in
                Thread.detachNewThread {
                    continuation.resume(with: Result {
                        try Consolidation.loadWholeModel(weights: executor.runner.weights, manifest: manifest, stage: startup.stage,
                                                         pp: startup.pp, cacheSocket: startup.cacheSocket)
                    })
                }
            }
        } catch {
            // Nothing has changed for the pipeline yet: it keeps serving and may be asked again.
            consolidation.value = false
            throw error
        }
        timeline.mark("complement_loaded")
        let loaded = DispatchTime.now()
        let mode = try await service.betweenSteps(drain: false) { engine in
            Consolidation.chooseMode(requested, engine: engine, service: service, pipeline: executor)
        }
        let (sequences, bytes) = try await service.betweenSteps(drain: mode == .drain) { engine in
            try Consolidation.switchOver(engine: engine, pipeline: executor, manifest: manifest)
        }
        timeline.mark("consolidated")
        let done = DispatchTime.now()
        return Consolidation.Report(mode: mode, loadSeconds: Double(loaded.uptimeNanoseconds - started.uptimeNanoseconds) / 1e9,
                                    switchSeconds: Double(done.uptimeNanoseconds - loaded.uptimeNanoseconds) / 1e9,
                                    fetchedChunks: fetched, migratedSequences: sequences, migratedBytes: bytes)
    }

    /// A later stage whose pipeline was consolidated into stage 0: with its memory reserved for
    /// the whole model it becomes an independent replica (loads the rest, serves generate on its
    /// own endpoint); otherwise it exits.
    func retired(runner: StageRunner, manifest: HydraFormat.Manifest) {
        stageServer.value?.shutdown()
        guard options.startup.memoryFull else { onRetire?(); return }
        let timeline = server.timeline
        Thread.detachNewThread { [self] in
            do {
                let startup = options.startup
                _ = try Consolidation.loadWholeModel(weights: runner.weights, manifest: manifest, stage: startup.stage,
                                                     pp: startup.pp, cacheSocket: startup.cacheSocket)
                timeline.mark("complement_loaded")
                let old = runner.cache
                let config = runner.config
                let cache = KVCache(device: runner.weights.device, layerCount: config.layerCount, width: old.width, heads: old.heads,
                                    blockSize: old.blockSize, blockCount: old.blockCount, dtype: old.dtype)
                let whole = try StageRunner(manifest: manifest, weights: runner.weights, cache: cache)
                let engineService = EngineService(engine: try Engine(runner: whole), logger: logger)
                service.value = engineService
                timeline.mark("replica_ready")
                logger.info("the pipeline was consolidated: this stage is now an independent replica", metadata: ["stage": "\(startup.stage)"])
                server.finishStartup(.ready(engineService))
            } catch {
                logger.error("becoming a replica failed", metadata: ["error": "\(error)"])
                server.finishStartup(.failed("\(error)"))
            }
        }
    }

    public func shutdown() {
        stageServer.value?.shutdown()
        service.value?.shutdown()
    }
}
