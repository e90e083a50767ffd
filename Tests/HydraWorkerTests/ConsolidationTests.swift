import Foundation
import Testing
import HydraEngine
import HydraFormat
import HydraSystem
import HydraTestSupport
@testable import HydraWorker

@Suite(.serialized) struct ConsolidationTests {
    /// Long enough that the switch lands mid-stream (the tiny models' context is 128 tokens).
    static let requests: [Engine.Request] = [
        Engine.Request(prompt: [1, 15, 27, 3, 99, 4], maxTokens: 100),
        Engine.Request(prompt: [1, 7], maxTokens: 90, sampling: SamplingParameters(temperature: 0.9, topP: 0.95, seed: 42)),
        Engine.Request(prompt: Array(1...21), maxTokens: 80),
    ]

    /// Generates `requests` on a pipeline, consolidating after every sequence has its first
    /// tokens; returns the tokens and the consolidation's report.
    static func generateConsolidating(port: Int, pp: Int, mode: Consolidation.Mode) async throws -> ([[Int]], Consolidation.Report, Int, [Int]) {
        let pipeline = try await offPool { try ConsolidatingPipeline(port: port, pp: pp) }
        defer { pipeline.stop() }
        let service = try #require(pipeline.worker.engineService)
        let streams = service.submit(requests)
        var tokens = [[Int]](repeating: [], count: requests.count)
        // The first tokens on the pipeline…
        for (index, stream) in streams.enumerated() {
            for try await event in stream {
                tokens[index].append(event.token)
                if tokens[index].count == 2 { break }
            }
        }
        // …then consolidation, while the rest keeps streaming.
        let consolidating = Task { try await pipeline.worker.consolidate(mode: mode) }
        try await withThrowingTaskGroup(of: (Int, [Int]).self) { group in
            for (index, stream) in streams.enumerated() {
                group.addTask { var rest: [Int] = []; for try await event in stream { rest.append(event.token) }; return (index, rest) }
            }
            for try await (index, rest) in group { tokens[index] += rest }
        }
        let report = try await consolidating.value
        // The consolidated worker serves new requests alone.
        var after: [Int] = []
        for try await event in service.submit(requests[0]) { after.append(event.token) }
        // Each stage acknowledges `retire` before it runs its retirement: allow the last a moment.
        for _ in 0..<200 where pipeline.retired.value < pp - 1 { try await Task.sleep(for: .milliseconds(10)) }
        return (tokens, report, pipeline.retired.value, after)
    }

    @Test(arguments: [("llama3-tiny", 4), ("opt-tiny", 2), ("falcon-40b-tiny", 4), ("falcon-7b-tiny", 2)])
    func consolidatingMidStreamKeepsEveryToken(fixture: String, pp: Int) async throws {
        try await ServedStore.with(model: fixture) { served in
            let reference = try Engine(runner: try StageRunner(entry: served.entry)).generate(Self.requests)
            for mode in [Consolidation.Mode.migrate, .drain] {
                let (tokens, report, retired, after) = try await Self.generateConsolidating(port: served.port, pp: pp, mode: mode)
                #expect(tokens == reference, "\(fixture) pp=\(pp) \(mode)")
                #expect(report.mode == mode)
                #expect(retired == pp - 1, "every other stage exits")
                #expect(after == reference[0], "the consolidated worker alone")
                if mode == .migrate {
                    #expect(report.migratedSequences > 0 && report.migratedBytes > 0, "the switch should land mid-stream: \(report)")
                } else {
                    #expect(report.migratedSequences == 0)
                }
                #expect(report.fetchedChunks > 0)
            }
        }
    }

    @Test func aStageOnlyWorkerRefusesToConsolidate() async throws {
        try await ServedStore.with(model: "llama3-tiny") { served in
            let port = served.port
            let pipeline = try await offPool { () -> LocalPipeline in try LocalPipeline(port: port, pp: 1) }
            defer { pipeline.stop() }
            let node = pipeline.node
            var startup = StageStartup(model: "m", stage: 0, pp: 1, cacheSocket: node.socketPath)
            startup.memoryFull = false
            let worker = Worker(options: Worker.Options(startup: startup), timeline: StartupTimeline())
            let error = await #expect(throws: EngineError.self) { _ = try await worker.consolidate(mode: .auto) }
            #expect(error?.message.contains("--memory stage") == true)
        }
    }
}
