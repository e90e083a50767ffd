import Foundation
import HydraFormat
import HydraSystem

/// Talks to a worker's HTTP endpoint: generate (streamed), status.
public struct WorkerClient: Sendable {
    public struct Generation: Sendable {
        public var tokens: [Int]
        public var finishReason: String?
        /// Seconds from the call to the first token, and to the last.
        public var firstTokenSeconds: Double?
        public var seconds: Double
    }

    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let message: String
        public init(message: String) { self.message = message }
        public var description: String { message }
    }

    public let endpoint: String

    public init(endpoint: String) { self.endpoint = endpoint }

    /// Generates from token ids. A worker that is not listening yet (starting) is retried for up
    /// to `connectTimeoutSeconds`.
    public func generate(promptIDs: [Int], maxTokens: Int, temperature: Float = 0, topP: Float = 1, seed: UInt64? = nil,
                         stopIDs: [Int] = [], timeoutSeconds: Int = 600, connectTimeoutSeconds: Double = 120) throws -> Generation {
        var request: [String: JSONValue] = [
            "prompt_ids": .array(promptIDs.map { .int(Int64($0)) }), "max_tokens": .int(Int64(maxTokens)),
            "temperature": .double(Double(temperature)), "top_p": .double(Double(topP)),
            "stop_ids": .array(stopIDs.map { .int(Int64($0)) }),
        ]
        if let seed { request["seed"] = .int(Int64(bitPattern: seed)) }
        let body = try JSONValue.object(request).encoded()
        let started = DispatchTime.now()
        let elapsed = { Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9 }
        let client = HTTPClient(timeoutSeconds: timeoutSeconds)
        while true {
            let firstToken = LockedBox<Double?>(nil)
            do {
                let response = try client.post(endpoint + "/v1/generate", json: body) { _ in
                    if firstToken.value == nil { firstToken.value = elapsed() }
                }
                guard response.status == 200 else {
                    throw Failure(message: "worker answered \(response.status): \(String(decoding: response.body.prefix(500), as: UTF8.self))")
                }
                var generation = Generation(tokens: [], finishReason: nil, firstTokenSeconds: firstToken.value, seconds: elapsed())
                for line in response.body.split(separator: UInt8(ascii: "\n")) where !line.isEmpty {
                    let event = try JSONValue.parse(Array(line), file: endpoint)
                    if let message = event["error"]?.stringValue { throw Failure(message: message) }
                    if let token = event["token"]?.intValue { generation.tokens.append(token) }
                    if let reason = event["finish_reason"]?.stringValue { generation.finishReason = reason }
                }
                return generation
            } catch let error as HTTPClient.Failure where error.message.lowercased().contains("connect") && elapsed() < connectTimeoutSeconds {
                Thread.sleep(forTimeInterval: 0.01)
            }
        }
    }

    /// The worker's start-up timeline: event → seconds since its process started.
    public func timeline() throws -> [String: Double] {
        var marks: [String: Double] = [:]
        if case .array(let list)? = try status()["timeline"] {
            for mark in list {
                if let event = mark["event"]?.stringValue, let seconds = mark["seconds"]?.doubleValue { marks[event] = seconds }
            }
        }
        return marks
    }

    /// The worker's status document (phase, start-up timeline).
    public func status() throws -> JSONValue {
        let response = try HTTPClient(timeoutSeconds: 10).get(endpoint + "/v1/status")
        guard response.status == 200 else { throw Failure(message: "status answered \(response.status)") }
        return try JSONValue.parse(response.body, file: endpoint)
    }
}
