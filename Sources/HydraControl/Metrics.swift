import Foundation

/// The endpoint's metrics in Prometheus' text format (`GET /metrics`): counters, gauges and
/// histograms with labels. Thread-safe; small on purpose (no exporter dependency).
public final class Metrics: @unchecked Sendable {
    public static let secondsBuckets: [Double] = [0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64]
    public static let tpotBuckets: [Double] = [0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1]

    struct Series: Hashable { var name: String; var labels: [String: String] }
    struct Histogram { var buckets: [Double]; var counts: [Int]; var sum = 0.0; var count = 0 }

    private let lock = NSLock()
    private var help: [String: (type: String, text: String)] = [:]
    private var values: [Series: Double] = [:]
    private var histograms: [Series: Histogram] = [:]

    public init() {
        describe("hydra_requests_total", "counter", "Requests that reached a model's queue, by model and outcome (ok, client_error, failed, cancelled: the client hung up or a stop string ended it).")
        describe("hydra_rejected_total", "counter", "Requests refused before reaching a model (unknown model, malformed, too long), by HTTP status.")
        describe("hydra_ttft_seconds", "histogram", "Time to first token seen by the endpoint, by model and start (cold, warm).")
        describe("hydra_tpot_seconds", "histogram", "Time per output token after the first, by model.")
        describe("hydra_cold_starts_total", "counter", "Instances cold-started, by model and pipeline depth.")
        describe("hydra_consolidations_total", "counter", "Pipelines consolidated into one worker, by model and outcome.")
        describe("hydra_fetched_bytes_total", "counter", "Model bytes the cold starts and consolidations fetched, by model.")
        describe("hydra_instances", "gauge", "Instances by model and state.")
        describe("hydra_queue_depth", "gauge", "Requests waiting for an instance, by model.")
        describe("hydra_retries_total", "counter", "Requests retried on another instance after theirs failed, by model.")
    }

    private func describe(_ name: String, _ type: String, _ text: String) { help[name] = (type, text) }

    public func increment(_ name: String, _ labels: [String: String] = [:], by amount: Double = 1) {
        lock.withLock { values[Series(name: name, labels: labels), default: 0] += amount }
    }

    public func set(_ name: String, _ labels: [String: String] = [:], to value: Double) {
        lock.withLock { values[Series(name: name, labels: labels)] = value }
    }

    public func observe(_ name: String, _ labels: [String: String] = [:], _ value: Double, buckets: [Double] = secondsBuckets) {
        lock.withLock {
            let series = Series(name: name, labels: labels)
            var histogram = histograms[series] ?? Histogram(buckets: buckets, counts: Array(repeating: 0, count: buckets.count))
            for (index, bound) in histogram.buckets.enumerated() where value <= bound { histogram.counts[index] += 1 }
            histogram.sum += value
            histogram.count += 1
            histograms[series] = histogram
        }
    }

    /// The exposition text.
    public func render() -> String {
        lock.withLock {
            var lines: [String] = []
            let names = Set(values.keys.map(\.name)).union(histograms.keys.map(\.name)).sorted()
            for name in names {
                if let (type, text) = help[name] { lines += ["# HELP \(name) \(text)", "# TYPE \(name) \(type)"] }
                for (series, value) in values.filter({ $0.key.name == name }).sorted(by: { Self.labels($0.key.labels) < Self.labels($1.key.labels) }) {
                    lines.append("\(name)\(Self.labels(series.labels)) \(Self.number(value))")
                }
                for (series, histogram) in histograms.filter({ $0.key.name == name }).sorted(by: { Self.labels($0.key.labels) < Self.labels($1.key.labels) }) {
                    for (bound, count) in zip(histogram.buckets, histogram.counts) {
                        lines.append("\(name)_bucket\(Self.labels(series.labels.merging(["le": Self.number(bound)]) { a, _ in a })) \(count)")
                    }
                    lines.append("\(name)_bucket\(Self.labels(series.labels.merging(["le": "+Inf"]) { a, _ in a })) \(histogram.count)")
                    lines.append("\(name)_sum\(Self.labels(series.labels)) \(Self.number(histogram.sum))")
                    lines.append("\(name)_count\(Self.labels(series.labels)) \(histogram.count)")
                }
            }
            return lines.joined(separator: "\n") + "\n"
        }
    }

    static func labels(_ labels: [String: String]) -> String {
        guard !labels.isEmpty else { return "" }
        let escaped = labels.sorted { $0.key < $1.key }.map { key, value in
            "\(key)=\"\(value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n"))\""
        }
        return "{" + escaped.joined(separator: ",") + "}"
    }

    static func number(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }
}
