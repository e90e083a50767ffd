import ArgumentParser
import Foundation
import HydraControl

struct LoadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract: "Replay a trace open-loop against an OpenAI-compatible endpoint and record every request.",
        discussion: """
        Each request of TRACE is sent at its arrival time (streamed chat completion, greedy, \
        exactly its task's tokens), whether or not earlier ones have answered. Recorded per \
        request: when it was due and sent, HTTP status or error, time to first token, time per \
        output token, tokens, and whether `hydra serve` says it waited for a cold start. Written \
        to --output as JSON lines (a header, then one line per request) for hydra analyze. \
        Bounded: --duration seconds of arrivals, --request-timeout per request, --max-in-flight \
        open at once (a request due beyond that is recorded as not sent).
        """
    )

    @Argument(help: "The trace (hydra trace generate).") var trace: String
    @Option(help: "Base URL of the endpoint, e.g. http://127.0.0.1:8000.") var url: String
    @Option(help: "Replay at this many requests/s (the trace's times rescaled); default: as written.") var rate: Double?
    @Option(help: "Seconds of arrivals to replay; default: the whole trace.") var duration: Double?
    @Option(help: "The system under test, as the analysis will name it.") var label: String = "hydraserve"
    @Option(name: .customLong("max-in-flight"), help: "Requests open at once, at most.") var maxInFlight: Int = 512
    @Option(name: .customLong("request-timeout"), help: "Seconds a request may take in all.") var requestTimeout: Int = 300
    @Option(name: .shortAndLong, help: "Where to write the results (JSON lines).") var output: String = "results.jsonl"

    func run() throws {
        try runReportingErrors {
            var runner = LoadRunner(trace: try Trace.load(trace), url: url, label: label)
            runner.rate = rate
            runner.durationSeconds = duration
            runner.maxInFlight = maxInFlight
            runner.requestTimeoutSeconds = requestTimeout
            try runner.validate()
            Terminal.note("replaying \(runner.schedule.count) requests against \(url)…")
            let results = try runner.run(tracePath: trace) { Terminal.note($0) }
            try results.encoded().write(to: URL(fileURLWithPath: output))
            let failed = results.records.filter { !$0.succeeded }
            Terminal.note("\(results.records.count - failed.count) of \(results.records.count) answered; results in \(output)")
            for failure in failed.prefix(3) {
                Terminal.note("  \(failure.function) at " + String(format: "%.1f s", failure.sentSeconds) + ": HTTP \(failure.status) \(failure.error ?? "")")
            }
        }
    }
}
