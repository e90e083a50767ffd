import Foundation
import HydraFormat
import HydraSystem

/// A small client of `hydra serve`'s OpenAI endpoint (streamed chat completions), for the demo,
/// the serving benchmark and the load generator: measures time to first token and per-token time
/// as the client sees them.
public struct ServeClient: Sendable {
    public struct Answer: Sendable {
        public var status: Int
        public var text = ""
        public var error: String?
        /// Seconds from sending to the first content, and to the end.
        public var firstTokenSeconds: Double?
        public var seconds = 0.0
        public var completionTokens = 0
        /// `cold` or `warm`, as the server tagged the response.
        public var start: String?
        /// Time per output token after the first: (end − first content) / (tokens − 1).
        public var tpotSeconds: Double? {
            firstTokenSeconds.flatMap { first in completionTokens > 1 ? (seconds - first) / Double(completionTokens - 1) : nil }
        }
    }

    public let base: String

    public init(base: String) { self.base = base }

    /// A streamed chat completion of `prompt` (greedy); with `ignoreEOS`, exactly `maxTokens` tokens.
    public func chat(model: String, prompt: String, maxTokens: Int, ignoreEOS: Bool = false, timeoutSeconds: Int = 600,
                     onText: @escaping (String) -> Void = { _ in }) -> Answer {
        var fields: [String: JSONValue] = [
            "model": .string(model), "messages": .array([.object(["role": .string("user"), "content": .string(prompt)])]),
            "max_tokens": .int(Int64(maxTokens)), "temperature": .int(0), "stream": .bool(true),
            "stream_options": .object(["include_usage": .bool(true)]),
        ]
        if ignoreEOS { fields["ignore_eos"] = .bool(true) }
        let request = JSONValue.object(fields)
        let started = DispatchTime.now()
        let elapsed = { Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9 }
        var answer = Answer(status: 0)
        var pending: [UInt8] = []
        do {
            let response = try HTTPClient(timeoutSeconds: timeoutSeconds).post(base + "/v1/chat/completions", json: try request.encoded(), headers: ["x-hydra-start"]) { piece in
                pending.append(contentsOf: piece)
                while let end = Self.eventEnd(pending) {
                    let event = String(decoding: pending[..<end], as: UTF8.self)
                    pending.removeSubrange(..<(end + 2))
                    guard event.hasPrefix("data: "), event != "data: [DONE]", let json = try? JSONValue.parse(Array(event.utf8.dropFirst(6)), file: "event") else { continue }
                    if let message = json["error"]?["message"]?.stringValue { answer.error = message }
                    if let tokens = json["usage"]?["completion_tokens"]?.intValue { answer.completionTokens = tokens }
                    if case .array(let choices)? = json["choices"], let content = choices.first?["delta"]?["content"]?.stringValue, !content.isEmpty {
                        if answer.firstTokenSeconds == nil { answer.firstTokenSeconds = elapsed() }
                        answer.text += content
                        onText(content)
                    }
                }
                return true
            }
            answer.status = response.status
            answer.start = response.headers["x-hydra-start"]
            if response.status != 200 {
                answer.error = (try? JSONValue.parse(response.body, file: "error"))?["error"]?["message"]?.stringValue
                    ?? String(decoding: response.body.prefix(300), as: UTF8.self)
            }
        } catch {
            answer.error = "\(error)"
        }
        answer.seconds = elapsed()
        return answer
    }

    /// Where the first complete event (ended by a blank line) ends.
    static func eventEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 2 else { return nil }
        for index in 0..<(bytes.count - 1) where bytes[index] == UInt8(ascii: "\n") && bytes[index + 1] == UInt8(ascii: "\n") { return index }
        return nil
    }

    public func instances() throws -> JSONValue {
        let response = try HTTPClient(timeoutSeconds: 10).get(base + "/v1/instances")
        return try JSONValue.parse(response.body, file: "instances")
    }
}
