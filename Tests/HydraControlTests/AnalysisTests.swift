import Foundation
import FoundationXML
import Testing
@testable import HydraControl

/// `hydra load`'s results file, `hydra analyze`'s figures and plots, and the controller's event log.
@Suite struct AnalysisTests {
    static func record(_ index: Int, task: String = "chatbot", status: Int = 200, ttft: Double? = 1, tpot: Double? = 0.1,
                       cold: Bool = false) -> LoadResults.Record {
        LoadResults.Record(index: index, function: "m", task: task, scheduledSeconds: Double(index), sentSeconds: Double(index), status: status,
                           error: status == 200 ? nil : "HTTP \(status)", cold: cold, ttftSeconds: status == 200 ? ttft : nil,
                           tpotSeconds: status == 200 ? tpot : nil, latencySeconds: 2, completionTokens: 8, ttftSLOSeconds: 2, tpotSLOSeconds: 0.2)
    }

    static let header = LoadResults.Header(label: "hydraserve", url: "http://127.0.0.1:1", trace: "t.json", rate: 1, cv: 4, durationSeconds: 60,
                                           startedUnixSeconds: 1000, wallSeconds: 30)

    /// One request meets both objectives, one misses TTFT, one misses TPOT, one failed.
    static let results = LoadResults(header: header, records: [
        record(0, cold: true), record(1, ttft: 3, cold: true), record(2, task: "code", tpot: 0.5), record(3, task: "code", status: 503),
    ])

    @Test func attainmentCountsEveryRequestSentFailuresIncluded() {
        let summaries = Analysis.summarize(Self.results)
        #expect(summaries.map(\.task) == ["chatbot", "code", "all"])
        let all = summaries.last!
        #expect(all.requests == 4 && all.completed == 3 && all.coldRequests == 2)
        #expect(all.ttftAttainment == 0.5 && all.attainment == 0.25)
        #expect(all.ttftSeconds?.p50 == 1 && all.ttftSeconds?.p99 == 3)
        #expect(summaries[0].ttftAttainment == 0.5 && summaries[1].ttftAttainment == 0.5 && summaries[1].attainment == 0)
        let table = AnalysisTable.markdown(summaries: summaries, costs: [])
        #expect(table.contains("| hydraserve | 1.00 | 4 | all | 4 | 3 | 2 | 1.00 / 3.00 / 3.00 | 100 / 500 / 500 | 50.0% | 25.0% |"), "\(table)")
    }

    @Test func resultsRoundTripAndABadLineIsNamed() throws {
        let path = NSTemporaryDirectory() + "results-" + UUID().uuidString + ".jsonl"
        defer { unlink(path) }
        try Self.results.encoded().write(to: URL(fileURLWithPath: path))
        let loaded = try LoadResults.load(path)
        #expect(loaded.header == Self.header && loaded.records == Self.results.records)
        var broken = try Self.results.encoded()
        broken.append(Data("{\"index\": \"x\"}\n".utf8))
        try broken.write(to: URL(fileURLWithPath: path))
        do {
            _ = try LoadResults.load(path)
            Issue.record("a broken line was accepted")
        } catch { #expect("\(error)".contains("line 6"), "\(error)") }
        try Data("{}\n".utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: ControlError.self) { try LoadResults.load(path) }
    }

    static func event(_ instance: Int, _ kind: InstanceEvent.Kind, at seconds: Double, held: Double) -> InstanceEvent {
        InstanceEvent(unixSeconds: 1000 + seconds, instance: instance, function: "m", kind: kind, pp: 2, nodes: ["n0", "n1"], heldBytes: Int(held * 1e9))
    }

    @Test func costIsTheAreaUnderTheMemoryEachInstanceHeld() {
        let events = [
            // A pipeline holding 3 GB for 10 s, consolidated to 2 GB for 10 s, then stopped: 50 GB·s.
            Self.event(0, .started, at: 0, held: 3), Self.event(0, .firstToken, at: 4, held: 3), Self.event(0, .consolidated, at: 10, held: 2),
            Self.event(0, .stopped, at: 20, held: 0),
            // Still running when the run ends (at 30 s): 1 GB from 25 s, 5 GB·s.
            Self.event(1, .started, at: 25, held: 1),
        ]
        #expect(abs(Analysis.gbSeconds(events, endUnixSeconds: 1030) - 55) < 1e-9)
        let cost = Analysis.cost(Self.results, events: events)
        #expect(cost.instances == 2 && cost.consolidated == 1)
        #expect(abs(cost.gbSeconds - 55) < 1e-9 && abs(cost.perCompletedRequestGBSeconds! - 55.0 / 3) < 1e-9)
    }

    @Test func theEventLogIsWrittenAndReadAsJSONLines() throws {
        let path = NSTemporaryDirectory() + "events-" + UUID().uuidString + ".jsonl"
        defer { unlink(path) }
        let log = try InstanceEventLog(path: path)
        var first = Self.event(0, .firstToken, at: 1, held: 1)
        first.timelines = [["attached": 0.1, "first_token": 0.9]]
        for event in [Self.event(0, .started, at: 0, held: 1), first] { log.record(event) }
        #expect(try InstanceEvent.load(path) == [Self.event(0, .started, at: 0, held: 1), first])
        #expect(try String(contentsOfFile: path, encoding: .utf8).contains("\"event\":\"first_token\""))
        #expect(throws: ControlError.self) { try InstanceEventLog(path: "/nonexistent-dir/events.jsonl") }
    }

    /// Every chart parses as XML and draws what it was given.
    @Test func plotsAreWellFormedSVG() throws {
        var firstToken = Self.event(0, .firstToken, at: 4, held: 3)
        firstToken.timelines = [["process_start": 0, "attached": 0.1, "runtime_ready": 0.5, "first_chunk": 0.2, "last_chunk": 3, "ready": 3, "first_token": 3.9],
                                ["process_start": 0, "attached": 0.1, "runtime_ready": 0.4, "first_chunk": 0.3, "last_chunk": 2.8, "ready": 2.8]]
        let events = [Self.event(0, .started, at: 0, held: 3), firstToken, Self.event(0, .consolidated, at: 10, held: 2),
                      Self.event(0, .stopped, at: 20, held: 0), Self.event(1, .started, at: 25, held: 1)]
        var slower = Self.results
        slower.header.rate = 2
        slower.header.label = "baseline"
        let runs = [Self.results, slower]
        let directory = NSTemporaryDirectory() + "plots-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let files = try AnalysisPlots.write(runs: runs, logs: [events, []], summaries: runs.flatMap(Analysis.summarize), to: directory)
        // Two (rate, CV) points: a CDF each.
        #expect(files == ["ttft-cdf-rate1-cv4.svg", "ttft-cdf-rate2-cv4.svg", "attainment-vs-rate-cv4.svg", "instances-1-hydraserve.svg",
                          "coldstart-1-hydraserve-instance0.svg"])
        for file in files {
            let data = try Data(contentsOf: URL(fileURLWithPath: directory + "/" + file))
            #expect(XMLParser(data: data).parse(), "\(file) is not well-formed XML")
        }
        let gantt = try String(contentsOfFile: directory + "/instances-1-hydraserve.svg", encoding: .utf8)
        // Instance 0: cold start, pipeline, consolidated (three bars); instance 1: still starting (one bar).
        #expect(gantt.components(separatedBy: "<rect").count - 1 == 2 + 4 + 3)
        #expect(gantt.contains("0 m pp=2"))
        // Two stages, a chunks row and a runtime row each: stage 0 has four bars, stage 1 three (no first token there).
        let stages = try String(contentsOfFile: directory + "/coldstart-1-hydraserve-instance0.svg", encoding: .utf8)
        #expect(stages.components(separatedBy: "<rect").count - 1 == 2 + 5 + 7)
        #expect(stages.contains("stage 1 runtime"))
    }

    @Test func theScheduleRescalesAndCutsTheTrace() throws {
        let trace = try TraceTests.generator(rate: 2, duration: 60).generate()
        var runner = LoadRunner(trace: trace, url: "http://127.0.0.1:1/", label: "x")
        #expect(runner.url == "http://127.0.0.1:1" && runner.schedule.count == trace.requests.count)
        runner.rate = 4
        runner.durationSeconds = 10
        let schedule = runner.schedule
        let expected = trace.requests.filter { $0.arrivalSeconds * trace.rate / 4 < 10 }
        #expect(schedule.count == expected.count && schedule.allSatisfy { $0.seconds < 10 })
        #expect(zip(schedule, expected).allSatisfy { abs($0.seconds - $1.arrivalSeconds * trace.rate / 4) < 1e-9 })
        runner.rate = 0
        #expect(throws: ControlError.self) { try runner.validate() }
    }
}
