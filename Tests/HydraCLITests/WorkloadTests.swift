import Foundation
import FoundationXML
import Testing
import HydraControl
import HydraFormat

/// The experiment tools as a user chains them: `hydra trace generate` → `hydra serve --event-log`
/// → `hydra load` → `hydra analyze`, on the real SmolLM2.
@Suite(.serialized) struct WorkloadTests {
    let folder = NSTemporaryDirectory() + "hydra-workload-" + UUID().uuidString.prefix(8)

    @Test func aTraceReplayedAgainstServeIsRecordedAnalysedAndPlotted() throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let model = ServedEndpoint.model
        let generate = try HydraProcess.run(["trace", "generate", "\(model)=chat", "--task", "chat:30:5:8:4", "--rate", "2", "--cv", "1",
                                             "--duration", "3", "--seed", "4", "-o", folder + "/trace.json", "--serve-config", folder + "/serve.yaml"])
        #expect(generate.status == 0, "\(generate.stderr)")
        let trace = try Trace.load(folder + "/trace.json")
        try #require(!trace.requests.isEmpty)
        #expect(try String(contentsOfFile: folder + "/serve.yaml", encoding: .utf8).contains("ttft_slo_seconds: 30.0"))

        // A 1 Gbit/s link and a 2 s objective: the planner picks two stages, which consolidate.
        // Five requests (seed 4): fewer than one instance runs at once, so one instance serves them all.
        let served = try ServedEndpoint(["--event-log", folder + "/events.jsonl", "--keep-alive", "30", "--nic-gbps", "1", "--ttft-slo", "2"])
        let load = try HydraProcess.run(["load", folder + "/trace.json", "--url", served.base, "--label", "hydraserve", "-o", folder + "/results.jsonl"])
        #expect(load.status == 0, "\(load.stderr)")
        try served.wait("consolidation", seconds: 60) { try served.metric("hydra_consolidations_total", ["outcome=\"ok\""]) == 1 }
        served.stop()

        let results = try LoadResults.load(folder + "/results.jsonl")
        #expect(results.records.count == trace.requests.count)
        // Every request answered, with exactly its task's tokens (the load asks to ignore end of sequence).
        for record in results.records {
            #expect(record.status == 200 && record.error == nil && record.ttftSeconds != nil && record.completionTokens == 4, "\(record)")
            #expect(record.task == "chat" && record.ttftSLOSeconds == 30 && record.tpotSLOSeconds == 5)
        }
        #expect(results.records.first?.cold == true)

        let events = try InstanceEvent.load(folder + "/events.jsonl")
        #expect(events.map(\.kind) == [.started, .firstToken, .consolidated, .stopped], "\(events.map(\.kind))")
        #expect(events[0].pp == 2 && events[1].timelines?.count == 2)
        // Consolidation released stage 1's memory; the stop released the rest.
        #expect(events[2].heldBytes < events[0].heldBytes && events[3].heldBytes == 0)

        let analyze = try HydraProcess.run(["analyze", folder + "/results.jsonl", "--controller-log", folder + "/events.jsonl",
                                            "--plots", folder + "/plots", "--json", folder + "/analysis.json"])
        #expect(analyze.status == 0, "\(analyze.stderr)")
        let requests = results.records.count
        #expect(analyze.stdout.contains("| hydraserve | ") && analyze.stdout.contains("| all | \(requests) | \(requests) |"), "\(analyze.stdout)")
        #expect(analyze.stdout.contains("| instances | consolidated |") && analyze.stdout.contains(" | 1 | 1 |"), "\(analyze.stdout)")
        let report = try JSONValue.parse(Array(try Data(contentsOf: URL(fileURLWithPath: folder + "/analysis.json"))), file: "analysis.json")
        #expect((report["costs"]?[0]?["gb_seconds"]?.doubleValue ?? 0) > 0)
        for plot in ["ttft-cdf.svg", "instances-1-hydraserve.svg"] {
            let data = try Data(contentsOf: URL(fileURLWithPath: folder + "/plots/" + plot))
            #expect(XMLParser(data: data).parse(), "\(plot)")
        }
    }

    @Test func fetchThenStartInitialisesOnlyAfterTheWholeFetch() throws {
        let served = try ServedEndpoint(["--startup", "fetch-then-start", "--max-pp", "1", "--nic-gbps", "1"])
        defer { served.stop() }
        let answer = try served.post("/v1/chat/completions", ServedEndpoint.chat("Say hi.", maxTokens: 2))
        #expect(answer.status == 200, "\(answer.body)")
        let instance = try #require(served.instances().first)
        let timeline = try #require(instance["timelines"]?[0])
        let fetched = try #require(timeline["fetched"]?.doubleValue, "\(timeline)")
        // 270 MB over 1 Gbit/s: the fetch alone takes about 2 s, and nothing starts before it ends.
        #expect(fetched > 1.5)
        #expect((timeline["attached"]?.doubleValue ?? 0) >= fetched && (timeline["runtime_ready"]?.doubleValue ?? 0) > fetched, "\(timeline)")
        let bad = try HydraProcess.run(["serve", "--startup", "lazily", "--store", ServedEndpoint.store])
        #expect(bad.status != 0 && bad.stderr.contains("startup must be overlapped or fetch-then-start"), "\(bad.stderr)")
    }
}
