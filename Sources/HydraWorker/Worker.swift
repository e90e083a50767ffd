import Foundation
import HydraEngine
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

        public init(startup: StageStartup) { self.startup = startup }
    }

    public let options: Options
    public let server: WorkerServer
    let logger: Logger
    private let stageServer = LockedBox<StageServer?>(nil)
    private let service = LockedBox<EngineService?>(nil)

    public init(options: Options, timeline: StartupTimeline, logger: Logger = Logger(label: "hydra.worker")) {
        self.options = options
        self.logger = logger
        server = WorkerServer(model: options.startup.model, stage: options.startup.stage, pp: options.startup.pp, timeline: timeline)
    }

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
        let (_, runner) = try startup.run(timeline: server.timeline)
        if startup.stage > 0 {
            let stage = try StageServer(runner: runner, model: startup.model, pp: startup.pp, host: options.pipelineHost,
                                        port: options.pipelinePort, next: options.next,
                                        stepTimeoutSeconds: options.stepTimeoutSeconds,
                                        connectTimeoutSeconds: options.connectTimeoutSeconds, logger: logger)
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
            engine = Engine(executor: try PipelineExecutor(runner: runner, next: link, pp: startup.pp))
        }
        let engineService = EngineService(engine: engine, logger: logger)
        service.value = engineService
        return engineService
    }

    public func shutdown() {
        stageServer.value?.shutdown()
        service.value?.shutdown()
    }
}
