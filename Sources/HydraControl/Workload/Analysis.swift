import Foundation

/// `hydra analyze`: what a load run measured — time to first token and per output token,
/// objective attainment per task and overall — and what it cost in device memory held over time.
public enum Analysis {
    public struct Summary: Codable, Sendable, Equatable {
        public var label: String
        public var rate: Double
        public var cv: Double?
        /// A task's name, or `all`.
        public var task: String
        public var requests: Int
        public var completed: Int
        /// Requests the server said waited for a cold start.
        public var coldRequests: Int
        public var ttftSeconds: Percentiles?
        public var tpotSeconds: Percentiles?
        /// Share of the requests answered with their first token within the task's TTFT objective.
        public var ttftAttainment: Double
        /// … and their later tokens within its TPOT objective.
        public var attainment: Double

        enum CodingKeys: String, CodingKey {
            case label, rate, cv, task, requests, completed, coldRequests = "cold_requests", ttftSeconds = "ttft_seconds", tpotSeconds = "tpot_seconds",
                 ttftAttainment = "ttft_slo_attainment", attainment = "slo_attainment"
        }
    }

    public struct Percentiles: Codable, Sendable, Equatable {
        public var p50: Double
        public var p90: Double
        public var p99: Double

        public init?(_ values: [Double]) {
            guard !values.isEmpty else { return nil }
            p50 = percentile(values, 0.5)
            p90 = percentile(values, 0.9)
            p99 = percentile(values, 0.99)
        }
    }

    /// Per task (in the order they first appear), then `all`.
    public static func summarize(_ results: LoadResults) -> [Summary] {
        var tasks: [String] = []
        for record in results.records where !tasks.contains(record.task) { tasks.append(record.task) }
        let groups = tasks.map { task in (task, results.records.filter { $0.task == task }) } + [("all", results.records)]
        return groups.map { task, records in
            let completed = records.filter(\.succeeded)
            let share = { (count: Int) in records.isEmpty ? 0 : Double(count) / Double(records.count) }
            return Summary(label: results.header.label, rate: results.header.rate, cv: results.header.cv, task: task, requests: records.count,
                           completed: completed.count, coldRequests: records.filter { $0.cold == true }.count,
                           ttftSeconds: Percentiles(completed.compactMap(\.ttftSeconds)), tpotSeconds: Percentiles(completed.compactMap(\.tpotSeconds)),
                           ttftAttainment: share(records.filter(\.meetsTTFT).count), attainment: share(records.filter(\.meetsBoth).count))
        }
    }

    public struct Cost: Codable, Sendable, Equatable {
        public var label: String
        /// Device memory held over the run, GB × seconds (10⁹ bytes).
        public var gbSeconds: Double
        public var perCompletedRequestGBSeconds: Double?
        public var instances: Int
        /// Of those, instances whose pipeline consolidated into one worker.
        public var consolidated: Int

        enum CodingKeys: String, CodingKey {
            case label, gbSeconds = "gb_seconds", perCompletedRequestGBSeconds = "gb_seconds_per_completed_request", instances, consolidated
        }
    }

    /// The area under each instance's held memory, from its first event to its last (an
    /// instance still holding memory at its last event holds it until `endUnixSeconds`).
    public static func gbSeconds(_ events: [InstanceEvent], endUnixSeconds: Double) -> Double {
        // In instance order: the same log always sums to the same last bit.
        Dictionary(grouping: events, by: \.instance).sorted { $0.key < $1.key }.map(\.value).reduce(0.0) { total, history in
            let steps = history.sorted { $0.unixSeconds < $1.unixSeconds }
            var area = 0.0
            for (index, event) in steps.enumerated() {
                let until = index + 1 < steps.count ? steps[index + 1].unixSeconds : max(endUnixSeconds, event.unixSeconds)
                area += Double(event.heldBytes) / 1e9 * (until - event.unixSeconds)
            }
            return total + area
        }
    }

    public static func cost(_ results: LoadResults, events: [InstanceEvent]) -> Cost {
        let end = max(results.header.startedUnixSeconds + results.header.wallSeconds, events.map(\.unixSeconds).max() ?? 0)
        let total = gbSeconds(events, endUnixSeconds: end)
        let completed = results.records.filter(\.succeeded).count
        return Cost(label: results.header.label, gbSeconds: total, perCompletedRequestGBSeconds: completed > 0 ? total / Double(completed) : nil,
                    instances: Set(events.map(\.instance)).count, consolidated: Set(events.filter { $0.kind == .consolidated }.map(\.instance)).count)
    }
}
