import ArgumentParser
import Foundation
import HydraControl

struct TraceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trace",
        abstract: "Workload traces for hydra load.",
        subcommands: [TraceGenerateCommand.self]
    )
}

struct TraceGenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Write a workload trace: per-function Gamma arrivals (or real timestamps from a CSV), seeded.",
        discussion: """
        Each MODEL=TASK pair is served as --replicas functions (MODEL/0, MODEL/1, … as `hydra \
        serve` names a model's replicas). Without --csv, every function gets Gamma-distributed \
        inter-arrival times with the coefficient of variation --cv (1 is Poisson; 2–8 are the \
        bursty functions of the Azure trace), and --rate requests/s is split over the functions \
        by a Zipf popularity of exponent --skew. With --csv, real invocation timestamps are \
        replayed instead (see docs/experiments.md for the accepted columns), compressed to --rate \
        when given. Tasks carry the TTFT and TPOT objectives requests are judged by; built in: \
        chatbot (3 s, 0.25 s), code (4 s, 0.25 s), summarization (6 s, 0.4 s); --task \
        NAME:TTFT:TPOT:PROMPT_WORDS:MAX_TOKENS defines or redefines one. The same options and \
        seed always write the same trace.
        """
    )

    @Argument(help: "MODEL=TASK pairs (store entries and the task their requests belong to).") var models: [String]
    @Option(help: "Requests/s over all functions.") var rate: Double?
    @Option(help: "Coefficient of variation of the inter-arrival times.") var cv: Double = 1
    @Option(help: "Seconds the trace spans.") var duration: Double?
    @Option(help: "Functions per model (its replicas).") var replicas: Int = 1
    @Option(help: "Zipf exponent of the functions' popularity (0: equally popular).") var skew: Double = 0
    @Option(help: "Seed of every draw.") var seed: UInt64 = 1
    @Option(name: .customLong("task"), help: "NAME:TTFT_SLO_S:TPOT_SLO_S:PROMPT_WORDS:MAX_TOKENS (repeatable).") var taskSpecs: [String] = []
    @Option(help: "Replay the invocation timestamps of this CSV instead of drawing arrivals.") var csv: String?
    @Option(name: .shortAndLong, help: "Where to write the trace (JSON).") var output: String = "trace.json"
    @Option(name: .customLong("serve-config"), help: "Also write a hydra serve --config file for the trace's models (replicas, TTFT objectives).")
    var serveConfig: String?

    func run() throws {
        try runReportingErrors {
            var tasks = Trace.Task.builtIn
            for spec in taskSpecs {
                let task = try Trace.Task.parse(spec)
                tasks.removeAll { $0.name == task.name }
                tasks.append(task)
            }
            let pairs = try models.map { pair -> (model: String, task: String) in
                let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { throw ValidationError("'\(pair)': expected MODEL=TASK") }
                return (parts[0], parts[1])
            }
            var generator = TraceGenerator(models: pairs, rate: rate ?? 1, cv: cv, durationSeconds: duration ?? 60)
            generator.replicas = replicas
            generator.tasks = tasks
            generator.skew = skew
            generator.seed = seed
            try generator.validate()
            let trace: Trace
            if let csv {
                guard let text = try? String(contentsOfFile: csv, encoding: .utf8) else { throw ValidationError("\(csv): cannot read it") }
                trace = try InvocationCSV(text: text, origin: csv).trace(functions: generator.functions, tasks: tasks, rate: rate,
                                                                          durationSeconds: duration, origin: csv)
            } else {
                guard rate != nil, duration != nil else { throw ValidationError("give --rate and --duration (or --csv)") }
                trace = try generator.generate()
            }
            try trace.encoded().write(to: URL(fileURLWithPath: output))
            if let serveConfig { try Data(trace.serveConfiguration.utf8).write(to: URL(fileURLWithPath: serveConfig)) }
            let observed = Double(trace.requests.count) / trace.durationSeconds
            Terminal.note("\(trace.requests.count) requests to \(trace.functions.count) functions over "
                          + String(format: "%.0f s (%.2f requests/s)", trace.durationSeconds, observed) + " written to \(output)")
        }
    }
}
