import Foundation

/// What `hydra load` writes and `hydra analyze` reads: a header line, then one JSON line per
/// request of the trace that was sent (or could not be).
public struct LoadResults: Sendable {
    public struct Header: Codable, Sendable, Equatable {
        public var kind = "hydra-load"
        /// The system measured (`--label`), e.g. `hydraserve` or `fetch-then-start`.
        public var label: String
        public var url: String
        public var trace: String
        /// Requests/s the trace was replayed at, and its inter-arrival CV (generated traces).
        public var rate: Double
        public var cv: Double?
        public var durationSeconds: Double
        /// Wall-clock time of the replay's start (seconds since 1970) and its length.
        public var startedUnixSeconds: Double
        public var wallSeconds: Double

        enum CodingKeys: String, CodingKey {
            case kind, label, url, trace, rate, cv, durationSeconds = "duration_seconds", startedUnixSeconds = "started_unix_seconds",
                 wallSeconds = "wall_seconds"
        }

        public init(label: String, url: String, trace: String, rate: Double, cv: Double?, durationSeconds: Double, startedUnixSeconds: Double,
                    wallSeconds: Double) {
            self.label = label
            self.url = url
            self.trace = trace
            self.rate = rate
            self.cv = cv
            self.durationSeconds = durationSeconds
            self.startedUnixSeconds = startedUnixSeconds
            self.wallSeconds = wallSeconds
        }
    }

    public struct Record: Codable, Sendable, Equatable {
        public var index: Int
        public var function: String
        public var task: String
        /// When the trace said to send it, and when it was sent, seconds from the replay's start.
        public var scheduledSeconds: Double
        public var sentSeconds: Double
        /// HTTP status; 0 when no answer came (the error says why).
        public var status: Int
        public var error: String?
        /// Whether the server says it waited for a cold start.
        public var cold: Bool?
        public var ttftSeconds: Double?
        public var tpotSeconds: Double?
        public var latencySeconds: Double
        public var completionTokens: Int
        public var ttftSLOSeconds: Double
        public var tpotSLOSeconds: Double

        enum CodingKeys: String, CodingKey {
            case index, function, task, scheduledSeconds = "scheduled_seconds", sentSeconds = "sent_seconds", status, error, cold,
                 ttftSeconds = "ttft_seconds", tpotSeconds = "tpot_seconds", latencySeconds = "latency_seconds",
                 completionTokens = "completion_tokens", ttftSLOSeconds = "ttft_slo_seconds", tpotSLOSeconds = "tpot_slo_seconds"
        }

        public var succeeded: Bool { status == 200 && error == nil && ttftSeconds != nil }
        /// Answered, with its first token within the task's TTFT objective.
        public var meetsTTFT: Bool { succeeded && ttftSeconds! <= ttftSLOSeconds }
        /// Also every later token within the TPOT objective (on average).
        public var meetsBoth: Bool { meetsTTFT && (tpotSeconds ?? 0) <= tpotSLOSeconds }
    }

    public var header: Header
    public var records: [Record]

    public init(header: Header, records: [Record]) {
        self.header = header
        self.records = records
    }

    public func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var data = try encoder.encode(header)
        for record in records {
            data.append(UInt8(ascii: "\n"))
            data.append(try encoder.encode(record))
        }
        data.append(UInt8(ascii: "\n"))
        return data
    }

    public static func load(_ path: String) throws -> LoadResults {
        guard let data = FileManager.default.contents(atPath: path) else { throw ControlError(status: 400, "\(path): cannot read the results") }
        let lines = data.split(separator: UInt8(ascii: "\n"))
        let decoder = JSONDecoder()
        guard let first = lines.first, let header = try? decoder.decode(Header.self, from: Data(first)), header.kind == "hydra-load" else {
            throw ControlError(status: 400, "\(path): not the results of hydra load (its first line is no hydra-load header)")
        }
        let records = try lines.dropFirst().enumerated().map { index, line in
            do { return try decoder.decode(Record.self, from: Data(line)) } catch {
                throw ControlError(status: 400, "\(path) line \(index + 2): not a request record")
            }
        }
        return LoadResults(header: header, records: records)
    }
}
