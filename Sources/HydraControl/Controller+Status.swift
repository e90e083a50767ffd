/// What the controller shows of itself: `/v1/instances` and `/v1/cold-starts`.
extension Controller {
    /// One instance as `/v1/instances` shows it.
    public struct InstanceStatus: Sendable, Encodable {
        public var id: Int
        public var model: String
        public var state: String
        public var pp: Int
        public var nodes: [String]
        public var predictedTTFTSeconds: Double
        public var meetsSLO: Bool
        public var endpoints: [String]
        /// The stages' process ids (local backend).
        public var pids: [Int32]
        public var inFlight: Int
        /// Seconds from the instance's start to its first token, as the controller saw it.
        public var coldStartSeconds: Double?
        /// Each stage's start-up timeline: event → seconds since its process started.
        public var timelines: [[String: Double]]

        enum CodingKeys: String, CodingKey {
            case id, model, state, pp, nodes, predictedTTFTSeconds = "predicted_ttft_seconds", meetsSLO = "meets_slo", endpoints, pids,
                 inFlight = "in_flight", coldStartSeconds = "cold_start_seconds", timelines
        }
    }

    public func status() -> [InstanceStatus] {
        instances.sorted { $0.key < $1.key }.map { id, record in
            InstanceStatus(id: id, model: record.function, state: record.state, pp: record.plan.pp, nodes: record.plan.nodes,
                                  predictedTTFTSeconds: record.plan.predictedTTFTSeconds, meetsSLO: record.plan.meetsSLO,
                                  endpoints: record.backend.endpoints, pids: record.backend.processIDs, inFlight: scaler.instances[id]?.inFlight ?? 0,
                                  coldStartSeconds: record.firstTokenSeconds.map { $0 - record.startedSeconds }, timelines: record.timelines)
        }
    }

    public func queueDepth(_ function: String) -> Int { scaler.queueDepth(function) }

    /// One cold start as `/v1/cold-starts` shows it: the planner's prediction beside what happened.
    public struct ColdStart: Sendable, Encodable {
        public var instance: Int
        public var model: String
        public var pp: Int
        public var nodes: [String]
        public var predictedSeconds: Double
        public var queueSeconds: Double
        /// From the first request's wait in the queue to the instance's first token.
        public var measuredSeconds: Double
        public var meetsSLO: Bool
        public var sloSeconds: Double
        /// Bytes the stages fetched over their links (0: every node cache held its stage).
        public var fetchedBytes: Int

        enum CodingKeys: String, CodingKey {
            case instance, model, pp, nodes, predictedSeconds = "predicted_ttft_seconds", queueSeconds = "queue_seconds",
                 measuredSeconds = "measured_ttft_seconds", meetsSLO = "predicted_to_meet_slo", sloSeconds = "slo_seconds",
                 fetchedBytes = "fetched_bytes"
        }
    }

    public func coldStartHistory() -> [ColdStart] { coldStarts }
}
