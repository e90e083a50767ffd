import Foundation

/// `hydra analyze`'s Markdown tables.
public enum AnalysisTable {
    public static func markdown(summaries: [Analysis.Summary], costs: [Analysis.Cost]) -> String {
        func triple(_ value: Analysis.Percentiles?, scale: Double, _ format: String) -> String {
            guard let value else { return "—" }
            return [value.p50, value.p90, value.p99].map { String(format: format, $0 * scale) }.joined(separator: " / ")
        }
        var lines = ["| system | rate req/s | CV | task | requests | answered | cold | TTFT p50 / p90 / p99 s | TPOT p50 / p90 / p99 ms | TTFT SLO attainment | TTFT+TPOT attainment |",
                     "|---|---|---|---|---|---|---|---|---|---|---|"]
        for summary in summaries {
            let cv = summary.cv.map { String(format: "%g", $0) } ?? "—"
            lines.append("| \(summary.label) | \(String(format: "%.2f", summary.rate)) | \(cv) | \(summary.task) | \(summary.requests) | \(summary.completed) | "
                         + "\(summary.coldRequests) | \(triple(summary.ttftSeconds, scale: 1, "%.2f")) | \(triple(summary.tpotSeconds, scale: 1000, "%.0f")) | "
                         + String(format: "%.1f%% | %.1f%% |", summary.ttftAttainment * 100, summary.attainment * 100))
        }
        guard !costs.isEmpty else { return lines.joined(separator: "\n") }
        lines += ["", "| system | device memory held, GB·s | GB·s per answered request | instances | consolidated |", "|---|---|---|---|---|"]
        for cost in costs {
            let perRequest = cost.perCompletedRequestGBSeconds.map { String(format: "%.2f", $0) } ?? "—"
            lines.append("| \(cost.label) | \(String(format: "%.1f", cost.gbSeconds)) | \(perRequest) | \(cost.instances) | \(cost.consolidated) |")
        }
        return lines.joined(separator: "\n")
    }
}

/// `hydra analyze --plots`: the SVG charts.
public enum AnalysisPlots {
    /// Writes every chart the runs support into `directory`; returns the file names. Runs at
    /// several (rate, CV) points get one TTFT CDF per point, comparing the systems measured there;
    /// `stageCharts` cold starts per controller log are drawn stage by stage.
    public static func write(runs: [LoadResults], logs: [[InstanceEvent]], summaries: [Analysis.Summary], to directory: String,
                             stageCharts: Int = 3) throws -> [String] {
        let points = Dictionary(grouping: runs.indices, by: { Point(runs[$0].header) })
        var files: [(String, String)] = points.count <= 1 ? [("ttft-cdf.svg", ttftCDF(runs))]
            : points.sorted { ($0.key.rate ?? 0, $0.key.cv ?? 0) < ($1.key.rate ?? 0, $1.key.cv ?? 0) }.map { point, indices in
                ("ttft-cdf-\(point.slug).svg", ttftCDF(indices.map { runs[$0] }, at: point.caption))
            }
        let overall = summaries.filter { $0.task == "all" }
        for (cv, group) in Dictionary(grouping: overall, by: \.cv).sorted(by: { ($0.key ?? -1) < ($1.key ?? -1) }) where Set(group.map(\.rate)).count > 1 {
            let point = Point(rate: nil, cv: cv)
            files.append(("attainment-vs-rate\(point.slug.isEmpty ? "" : "-" + point.slug).svg",
                          attainment(group, along: \.rate, axis: "requests/s", title: "TTFT SLO attainment vs rate" + (cv == nil ? "" : ", " + point.caption))))
        }
        for (rate, group) in Dictionary(grouping: overall.filter { $0.cv != nil }, by: \.rate).sorted(by: { $0.key < $1.key })
        where Set(group.compactMap(\.cv)).count > 1 {
            let point = Point(rate: rate, cv: nil)
            files.append(("attainment-vs-cv-\(point.slug).svg",
                          attainment(group, along: { $0.cv ?? 0 }, axis: "coefficient of variation", title: "TTFT SLO attainment vs CV, \(point.caption)")))
        }
        for (index, (run, events)) in zip(runs, logs).enumerated() where !events.isEmpty {
            let name = "\(index + 1)-\(fileSafe(run.header.label))"
            files.append(("instances-\(name).svg", gantt(run, events)))
            for event in events.filter({ $0.kind == .firstToken && !($0.timelines ?? []).isEmpty }).prefix(stageCharts) {
                files.append(("coldstart-\(name)-instance\(event.instance).svg", coldStart(event)))
            }
        }
        for (name, svg) in files { try Data(svg.utf8).write(to: URL(fileURLWithPath: directory + "/" + name)) }
        return files.map(\.0)
    }

    static func fileSafe(_ text: String) -> String {
        String(text.map { $0.isLetter || $0.isNumber || $0 == "-" ? $0 : "-" })
    }

    /// Runs named by label, with rate and CV where several runs share a label.
    static func names(_ runs: [LoadResults]) -> [String] {
        runs.map { run in
            runs.filter { $0.header.label == run.header.label }.count > 1 ? "\(run.header.label), \(Point(run.header).caption)" : run.header.label
        }
    }

    /// Share of all requests answered within t seconds (failed requests never are).
    public static func ttftCDF(_ runs: [LoadResults], at point: String? = nil) -> String {
        let series = zip(names(runs), runs).map { name, run in
            let ttfts = run.records.filter(\.succeeded).compactMap(\.ttftSeconds).sorted()
            let total = Double(max(run.records.count, 1))
            return SVGChart.Series(name: name, points: [(x: 0, y: 0)] + ttfts.enumerated().map { (x: $1, y: Double($0 + 1) / total) })
        }
        return SVGChart.lines(title: "Time to first token, all requests" + (point.map { " (\($0))" } ?? ""), xLabel: "TTFT, seconds",
                              yLabel: "share of requests",
                              series: series, yRange: 0...1, steps: true)
    }

    static func attainment(_ summaries: [Analysis.Summary], along key: (Analysis.Summary) -> Double, axis: String, title: String) -> String {
        var labels: [String] = []
        for summary in summaries where !labels.contains(summary.label) { labels.append(summary.label) }
        let series = labels.map { label in
            SVGChart.Series(name: label, points: summaries.filter { $0.label == label }.map { (x: key($0), y: $0.ttftAttainment) })
        }
        return SVGChart.lines(title: title, xLabel: axis, yLabel: "TTFT SLO attainment", series: series, yRange: 0...1)
    }

    /// Where a run was measured: its rate and CV, either of them left out where a chart varies it.
    struct Point: Hashable {
        var rate: Double?
        var cv: Double?

        init(rate: Double?, cv: Double?) {
            self.rate = rate
            self.cv = cv
        }

        init(_ header: LoadResults.Header) { self.init(rate: header.rate, cv: header.cv) }

        /// For file names: `rate0.5-cv2`.
        var slug: String {
            [rate.map { "rate\(SVGChart.format($0))" }, cv.map { "cv\(SVGChart.format($0))" }].compactMap { $0 }.joined(separator: "-")
        }

        /// For titles and legends: `0.5 requests/s, CV 2`.
        var caption: String {
            [rate.map { "\(SVGChart.format($0)) requests/s" }, cv.map { "CV \(SVGChart.format($0))" }].compactMap { $0 }.joined(separator: ", ")
        }
    }

    static let stagePhases = ["process start", "fetch, then start", "chunks copied in", "runtime init", "first token"]

    /// One cold start, stage by stage, from each stage's process start: for each stage a row of
    /// its chunks (fetched first, for the fetch-then-start baseline; arriving and copied into
    /// place) and a row of its runtime (process start, initialisation, the first token).
    public static func coldStart(_ event: InstanceEvent) -> String {
        let rows = (event.timelines ?? []).enumerated().flatMap { stage, marks -> [(label: String, bars: [SVGChart.Bar])] in
            func bar(_ from: String, _ to: String, _ phase: Int) -> SVGChart.Bar? {
                guard let start = marks[from], let end = marks[to] else { return nil }
                return SVGChart.Bar(start: start, end: end, phase: phase)
            }
            let chunks = [bar("process_start", "fetched", 1), bar("first_chunk", "last_chunk", 2)].compactMap { $0 }
            // Fetch-then-start: the process starts (attaches) once the fetch is over.
            let started = marks["fetched"] == nil ? bar("process_start", "attached", 0) : bar("fetched", "attached", 0)
            let runtime = [started, bar("attached", "runtime_ready", 3), bar("ready", "first_token", 4)].compactMap { $0 }
            return [(label: "stage \(stage) chunks", bars: chunks), (label: "stage \(stage) runtime", bars: runtime)]
        }
        return SVGChart.gantt(title: "Cold start of instance \(event.instance) (\(event.function), pp=\(event.pp))",
                              xLabel: "seconds from each stage's process start", rows: rows, phases: stagePhases)
    }

    static let phases = ["cold start", "serving as a pipeline", "serving as one worker"]

    /// Each instance's life from the run's start: cold start, then serving as a pipeline
    /// (until consolidated) or as one worker.
    public static func gantt(_ run: LoadResults, _ events: [InstanceEvent]) -> String {
        let origin = run.header.startedUnixSeconds
        let end = max(origin + run.header.wallSeconds, events.map(\.unixSeconds).max() ?? origin)
        let histories = Dictionary(grouping: events, by: \.instance).sorted { $0.key < $1.key }.prefix(60)
        let rows = histories.map { id, history -> (label: String, bars: [SVGChart.Bar]) in
            let steps = history.sorted { $0.unixSeconds < $1.unixSeconds }
            let first = steps.first!
            func at(_ kind: InstanceEvent.Kind) -> Double? { steps.first { $0.kind == kind }?.unixSeconds }
            let stop = (steps.first { $0.kind == .stopped || $0.kind == .lost }?.unixSeconds ?? end) - origin
            let started = first.unixSeconds - origin
            var bars: [SVGChart.Bar] = []
            if let token = at(.firstToken).map({ $0 - origin }) {
                bars.append(.init(start: started, end: token, phase: 0))
                if first.pp > 1, let consolidated = at(.consolidated).map({ $0 - origin }) {
                    bars += [.init(start: token, end: consolidated, phase: 1), .init(start: consolidated, end: stop, phase: 2)]
                } else {
                    bars.append(.init(start: token, end: stop, phase: first.pp > 1 ? 1 : 2))
                }
            } else {
                bars.append(.init(start: started, end: stop, phase: 0))
            }
            return (label: "\(id) \(first.function) pp=\(first.pp)", bars: bars)
        }
        return SVGChart.gantt(title: "Instances of \(run.header.label)", xLabel: "seconds from the start of the run", rows: rows, phases: phases)
    }
}
