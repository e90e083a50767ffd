import Foundation
import Testing
import HydraEngine
import HydraFormat
import HydraSystem
import HydraTestSupport
@testable import HydraWorker

@Suite(.serialized) struct PipelineTests {
    static let fixtures = ["llama2-tiny", "llama3-tiny", "opt-tiny", "opt-tiny-postln", "falcon-7b-tiny", "falcon-40b-tiny"]

    @Test(arguments: fixtures)
    func everyPipelineDepthProducesTheSingleProcessTokens(fixture: String) async throws {
        try await ServedStore.with(model: fixture) { served in
            let reference = try Engine(runner: try StageRunner(entry: served.entry)).generate(PipelineRequests.all)
            let depths = served.entry.manifest.stagePlans.map(\.pp).filter { $0 <= 4 }
            #expect(depths.contains(2))
            for pp in depths {
                let port = served.port
                let (tokens, peak) = try await offPool { () -> ([[Int]], Int) in
                    let pipeline = try LocalPipeline(port: port, pp: pp)
                    defer { pipeline.stop() }
                    let tokens = try pipeline.engine.generate(PipelineRequests.all)
                    return (tokens, (pipeline.engine.executor as? PipelineExecutor)?.peakInFlight ?? 0)
                }
                #expect(tokens == reference, "\(fixture) pp=\(pp)")
                // Three sequences on two or more stages: micro-batches overlap along the pipeline.
                if pp > 1 { #expect(peak >= 2, "\(fixture) pp=\(pp): at most \(peak) micro-batch in flight") }
            }
        }
    }

    @Test func theStartupTimelineIsOrdered() async throws {
        try await ServedStore.with(model: "llama3-tiny") { served in
            let port = served.port
            let timelines = try await offPool { () -> [StartupTimeline] in
                let pipeline = try LocalPipeline(port: port, pp: 2)
                defer { pipeline.stop() }
                return pipeline.timelines
            }
            for timeline in timelines {
                let events = timeline.all.map(\.event)
                for event in ["process_start", "attached", "first_chunk", "last_chunk", "runtime_ready", "ready"] {
                    #expect(events.contains(event), "missing \(event) in \(events)")
                }
                let at = { (event: String) in timeline.seconds(event)! }
                #expect(at("attached") <= at("first_chunk") && at("first_chunk") <= at("last_chunk"))
                #expect(at("last_chunk") <= at("ready") && at("runtime_ready") <= at("ready"))
            }
        }
    }

    @Test func aStageThatDiesFailsTheRequestClearlyAndQuickly() async throws {
        try await ServedStore.with(model: "falcon-40b-tiny") { served in
            let port = served.port
            let (message, seconds, healthy) = try await offPool { () -> (String, Double, Bool) in
                let pipeline = try LocalPipeline(port: port, pp: 4, stepTimeoutSeconds: 5)
                defer { pipeline.stop() }
                _ = try pipeline.engine.add(Engine.Request(prompt: [1, 2, 3], maxTokens: 50))
                _ = try pipeline.engine.step()
                pipeline.servers[2].shutdown()  // stage 3 goes away mid-generation
                let started = Date()
                var message = ""
                do { while pipeline.engine.hasWork { _ = try pipeline.engine.step() } } catch { message = "\(error)" }
                // The engine dropped the failed sequence and can take new work.
                return (message, Date().timeIntervalSince(started), !pipeline.engine.hasWork)
            }
            #expect(message.contains("stage 3"), "\(message)")
            #expect(seconds < 5)
            #expect(healthy)
        }
    }
}
