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
        /// The worker's HTTP status when it answered with an error (400: the request's fault).
        public let status: Int?
        public init(message: String, status: Int? = nil) {
            self.message = message
            self.status = status
        }
        public var description: String { message }
    }

    /// One streamed token.
    public struct Event: Sendable {
        public var token: Int
        public var finishReason: String?
    }

    public let endpoint: String

    public init(endpoint: String) { self.endpoint = endpoint }

    /// Generates from token ids. A worker that is not listening yet (starting) is retried for up
    /// to `connectTimeoutSeconds`.
    public func generate(promptIDs: [Int], maxTokens: Int, temperature: Float = 0, topP: Float = 1, seed: UInt64? = nil,
                         stopIDs: [Int] = [], timeoutSeconds: Int = 600, connectTimeoutSeconds: Double = 120) throws -> Generation {
        try stream(promptIDs: promptIDs, maxTokens: maxTokens, temperature: temperature, topP: topP, seed: seed, stopIDs: stopIDs,
                   timeoutSeconds: timeoutSeconds, connectTimeoutSeconds: connectTimeoutSeconds) { _ in true }
    }

    /// Generates from token ids, handing each token to `onEvent` as it arrives; `onEvent`
    /// returns false to hang up (the worker then cancels the request and frees its KV blocks).
    /// A worker not listening yet is retried while `stillStarting` says it may still come up.
    /// Blocks the calling thread: call it off the cooperative pool.
    public func stream(promptIDs: [Int], maxTokens: Int, temperature: Float = 0, topP: Float = 1, seed: UInt64? = nil,
                       stopIDs: [Int] = [], timeoutSeconds: Int = 600, connectTimeoutSeconds: Double = 120,
                       stillStarting: @escaping () -> Bool = { true }, onEvent: (Event) -> Bool) throws -> Generation {
        // The transfer ends before this returns: the callback does not outlive the call.
        try withoutActuallyEscaping(onEvent) { onEvent in
            try stream(promptIDs: promptIDs, maxTokens: maxTokens, temperature: temperature, topP: topP, seed: seed, stopIDs: stopIDs,
                       timeoutSeconds: timeoutSeconds, connectTimeoutSeconds: connectTimeoutSeconds, stillStarting: stillStarting, escaping: onEvent)
        }
    }

    private func stream(promptIDs: [Int], maxTokens: Int, temperature: Float, topP: Float, seed: UInt64?, stopIDs: [Int],
                        timeoutSeconds: Int, connectTimeoutSeconds: Double, stillStarting: () -> Bool,
                        escaping onEvent: @escaping (Event) -> Bool) throws -> Generation {
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
            var generation = Generation(tokens: [], finishReason: nil, firstTokenSeconds: nil, seconds: 0)
            var pending: [UInt8] = []
            var failure: Error?
            var hungUp = false
            do {
                let response = try client.post(endpoint + "/v1/generate", json: body) { piece in
                    guard failure == nil, !hungUp else { return false }
                    pending.append(contentsOf: piece)
                    // Complete lines only; a token's line may arrive in two pieces.
                    while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                        let line = Array(pending[..<newline])
                        pending.removeSubrange(...newline)
                        guard !line.isEmpty else { continue }
                        do {
                            let event = try JSONValue.parse(line, file: endpoint)
                            if let message = event["error"]?.stringValue { throw Failure(message: message) }
                            guard let token = event["token"]?.intValue else { continue }
                            let reason = event["finish_reason"]?.stringValue
                            if generation.firstTokenSeconds == nil { generation.firstTokenSeconds = elapsed() }
                            generation.tokens.append(token)
                            generation.finishReason = reason ?? generation.finishReason
                            if !onEvent(Event(token: token, finishReason: reason)) { hungUp = true; return false }
                        } catch {
                            failure = error
                            return false
                        }
                    }
                    return true
                }
                if let failure { throw failure }
                guard response.status == 200 else {
                    throw Failure(message: "worker answered \(response.status): \(String(decoding: response.body.prefix(500), as: UTF8.self))",
                                  status: response.status)
                }
                if !hungUp && generation.finishReason == nil {
                    throw Failure(message: "the worker's stream ended before the last token (it may have died)")
                }
                generation.seconds = elapsed()
                return generation
            } catch let error as HTTPClient.Failure
                        where error.message.lowercased().contains("connect") && elapsed() < connectTimeoutSeconds && stillStarting() {
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
