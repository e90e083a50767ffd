import Foundation
import HydraEngine

/// Real invocation timestamps as CSV, mapped onto served functions (`hydra trace generate --csv`).
///
/// Accepted: a header row naming a function column (`function`, `func`, `HashFunction` or
/// `app`) and either a `timestamp` column (seconds) or the Azure Functions 2021 trace's
/// `end_timestamp` and `duration` (arrival = end − duration). The trace's functions are ranked by
/// invocation count and the k-th most invoked is replayed as the k-th served function (wrapping
/// around when the CSV has more); times start at 0 and are compressed or stretched to `rate`.
public struct InvocationCSV: Sendable {
    public var arrivals: [(function: String, seconds: Double)]

    public init(text: String, origin: String) throws {
        var lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.makeIterator()
        guard let header = lines.next() else { throw ControlError(status: 400, "\(origin): empty") }
        let columns = header.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        func column(_ names: [String]) -> Int? { names.lazy.compactMap { columns.firstIndex(of: $0) }.first }
        guard let functionColumn = column(["function", "func", "hashfunction", "app"]) else {
            throw ControlError(status: 400, "\(origin): no function column (function, func, HashFunction or app) in the header '\(header)'")
        }
        let timestampColumn = column(["timestamp", "arrival", "start_timestamp"])
        let endColumn = column(["end_timestamp"])
        let durationColumn = column(["duration"])
        guard timestampColumn != nil || (endColumn != nil && durationColumn != nil) else {
            throw ControlError(status: 400, "\(origin): no timestamp column (timestamp, or end_timestamp with duration) in the header '\(header)'")
        }
        var arrivals: [(String, Double)] = []
        var row = 1
        while let line = lines.next() {
            row += 1
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            func number(_ index: Int) throws -> Double {
                guard index < fields.count, let value = Double(fields[index]), value.isFinite else {
                    throw ControlError(status: 400, "\(origin) row \(row): '\(index < fields.count ? fields[index] : "")' in column \(columns[index]) is not a number")
                }
                return value
            }
            guard functionColumn < fields.count, !fields[functionColumn].isEmpty else {
                throw ControlError(status: 400, "\(origin) row \(row): no function")
            }
            let seconds = try timestampColumn.map(number) ?? (try number(endColumn!) - number(durationColumn!))
            arrivals.append((fields[functionColumn], seconds))
        }
        guard !arrivals.isEmpty else { throw ControlError(status: 400, "\(origin): no invocations") }
        self.arrivals = arrivals
    }

    /// The invocations as a trace over `functions`, at `rate` requests/s overall (nil: as
    /// recorded), cut at `durationSeconds` (nil: the whole recording).
    public func trace(functions: [(name: String, model: String, task: String)], tasks: [Trace.Task], rate: Double?, durationSeconds: Double?,
                      origin: String) throws -> Trace {
        precondition(!functions.isEmpty)
        let start = arrivals.map(\.seconds).min()!
        let span = max(arrivals.map(\.seconds).max()! - start, 1e-3)
        let recordedRate = Double(arrivals.count) / span
        let scale = rate.map { recordedRate / $0 } ?? 1
        var counts: [String: Int] = [:]
        for arrival in arrivals { counts[arrival.function, default: 0] += 1 }
        let ranked = counts.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.map(\.key)
        let target = Dictionary(uniqueKeysWithValues: ranked.enumerated().map { ($1, functions[$0 % functions.count]) })
        var random = SeededGenerator(seed: UInt64(arrivals.count))
        var requests: [Trace.Request] = []
        for arrival in arrivals.sorted(by: { $0.seconds < $1.seconds }) {
            let seconds = (arrival.seconds - start) * scale
            if let durationSeconds, seconds >= durationSeconds { break }
            let function = target[arrival.function]!
            let task = tasks.first { $0.name == function.task }!
            requests.append(Trace.Request(arrivalSeconds: seconds, function: function.name, prompt: PromptText.make(words: task.promptWords, &random),
                                          maxTokens: task.maxTokens))
        }
        let duration = durationSeconds ?? span * scale
        let rates = Dictionary(grouping: requests, by: \.function).mapValues { Double($0.count) / duration }
        let trace = Trace(source: "csv", seed: nil, rate: Double(requests.count) / duration, cv: nil, durationSeconds: duration,
                          tasks: tasks.filter { task in functions.contains { $0.task == task.name } },
                          functions: functions.map { Trace.Function(name: $0.name, model: $0.model, task: $0.task, rate: rates[$0.name] ?? 0) },
                          requests: requests)
        try trace.validate(origin)
        return trace
    }
}
