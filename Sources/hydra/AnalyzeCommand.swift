import ArgumentParser
import Foundation
import HydraControl

struct AnalyzeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "analyze",
        abstract: "Summarise hydra load results: TTFT/TPOT percentiles, SLO attainment, GB·s cost, plots.",
        discussion: """
        For each RESULTS file (hydra load --output), per task and overall: requests, answered, \
        cold requests, TTFT and TPOT p50/p90/p99, and the share meeting the task's TTFT objective \
        (and TTFT and TPOT both). With --controller-log (hydra serve --event-log; one per \
        RESULTS file, in the same order): the device memory the instances held over the run, in \
        GB·s, overall and per answered request — consolidation included. With --plots DIR: SVG \
        charts — the TTFT CDF of every run (one chart per rate and CV when the runs cover several); attainment against rate (per CV) and against CV (per \
        rate) when the runs cover several; a Gantt chart of each controller log's instances \
        (starting, serving as a pipeline, consolidated) and its first --stage-charts cold starts \
        stage by stage. Prints a Markdown table; --json writes \
        the figures.
        """
    )

    @Argument(help: "Results of hydra load.") var results: [String]
    @Option(name: .customLong("controller-log"), help: "hydra serve --event-log file of each run (repeat, in RESULTS order).")
    var controllerLogs: [String] = []
    @Option(help: "Folder for SVG plots.") var plots: String?
    @Option(name: .customLong("stage-charts"), help: "Cold starts per controller log to chart stage by stage.") var stageCharts: Int = 3
    @Option(help: "Where to write the figures (JSON).") var json: String?

    struct Report: Encodable {
        var summaries: [Analysis.Summary]
        var costs: [Analysis.Cost]
    }

    func validate() throws {
        guard controllerLogs.isEmpty || controllerLogs.count == results.count else {
            throw ValidationError("give one --controller-log per RESULTS file (\(results.count)), or none")
        }
    }

    func run() throws {
        try runReportingErrors {
            let runs = try results.map(LoadResults.load)
            let logs = try controllerLogs.map(InstanceEvent.load)
            let summaries = runs.flatMap(Analysis.summarize)
            let costs = zip(runs, logs).map { Analysis.cost($0, events: $1) }
            print(AnalysisTable.markdown(summaries: summaries, costs: costs))
            if let json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                try encoder.encode(Report(summaries: summaries, costs: costs)).write(to: URL(fileURLWithPath: json))
                Terminal.note("figures written to \(json)")
            }
            if let plots {
                try FileManager.default.createDirectory(atPath: plots, withIntermediateDirectories: true)
                let written = try AnalysisPlots.write(runs: runs, logs: logs, summaries: summaries, to: plots, stageCharts: max(0, stageCharts))
                Terminal.note("plots written to \(plots): \(written.joined(separator: ", "))")
            }
        }
    }
}
