import Foundation
import HydraEngine
import HydraFormat
import HydraSystem
import HydraTestSupport
@testable import HydraWorker

/// A whole pipeline in this process: a served store, one node cache, stage servers for stages
/// 1…pp-1 on loopback ports, and stage 0 driving an engine through them.
final class LocalPipeline: @unchecked Sendable {
    let node: CachedNode
    let pp: Int
    private(set) var servers: [StageServer] = []
    let engine: Engine
    let timelines: [StartupTimeline]

    init(port: Int, pp: Int, model: String = "m", stepTimeoutSeconds: Double = 10) throws {
        self.pp = pp
        node = try CachedNode(remotes: [port])
        var timelines: [StartupTimeline] = []
        var next: (host: String, port: Int)?
        var driver: Engine?
        for stage in (0..<pp).reversed() {
            let timeline = StartupTimeline()
            timelines.insert(timeline, at: 0)
            let (_, runner) = try StageStartup(model: model, stage: stage, pp: pp, cacheSocket: node.socketPath).run(timeline: timeline)
            if stage == 0 {
                if pp == 1 {
                    driver = try Engine(runner: runner)
                } else {
                    let link = try PipelineLink(host: next!.host, port: next!.port,
                                                hello: PipelineHello(model: model, pp: pp, stage: 1, blockCount: runner.cache.blockCount, blockSize: runner.cache.blockSize),
                                                stepTimeoutSeconds: stepTimeoutSeconds)
                    driver = Engine(executor: try PipelineExecutor(runner: runner, next: link, pp: pp))
                }
                break
            }
            let server = try StageServer(runner: runner, model: model, pp: pp, host: "127.0.0.1", port: 0, next: next,
                                         stepTimeoutSeconds: stepTimeoutSeconds)
            server.start()
            servers.insert(server, at: 0)
            next = ("127.0.0.1", server.port)
        }
        self.timelines = timelines
        engine = driver!
    }

    func stop() {
        servers.forEach { $0.shutdown() }
        node.stop()
    }
}

/// Stage 0 as a real `Worker` (memory reserved for the whole model) in front of in-process stage
/// servers: the pieces a consolidation needs.
final class ConsolidatingPipeline: @unchecked Sendable {
    let node: CachedNode
    private(set) var servers: [StageServer] = []
    let worker: Worker
    let retired = LockedBox(0)

    init(port: Int, pp: Int) throws {
        node = try CachedNode(remotes: [port])
        var next: (host: String, port: Int)?
        for stage in (1..<pp).reversed() {
            let (_, runner) = try StageStartup(model: "m", stage: stage, pp: pp, cacheSocket: node.socketPath).run(timeline: StartupTimeline())
            let server = try StageServer(runner: runner, model: "m", pp: pp, host: "127.0.0.1", port: 0, next: next)
            server.onRetire = { [retired] in retired.withValue { $0 += 1 } }
            server.start()
            servers.insert(server, at: 0)
            next = ("127.0.0.1", server.port)
        }
        var startup = StageStartup(model: "m", stage: 0, pp: pp, cacheSocket: node.socketPath)
        startup.memoryFull = true
        var options = Worker.Options(startup: startup)
        options.next = next
        worker = Worker(options: options, timeline: StartupTimeline())
        worker.start()
        for _ in 0..<1000 where worker.engineService == nil { Thread.sleep(forTimeInterval: 0.01) }
        guard worker.engineService != nil else { throw EngineError("stage 0 did not start") }
    }

    func stop() {
        worker.shutdown()
        servers.forEach { $0.shutdown() }
        node.stop()
    }
}

/// The requests every pipeline test runs: greedy and seeded sampling, prompts of different lengths, batched.
enum PipelineRequests {
    static let all: [Engine.Request] = [
        Engine.Request(prompt: [1, 15, 27, 3, 99, 4], maxTokens: 12),
        Engine.Request(prompt: [1, 7], maxTokens: 9, sampling: SamplingParameters(temperature: 0.9, topP: 0.95, seed: 42)),
        Engine.Request(prompt: Array(1...21), maxTokens: 12),
    ]
}
