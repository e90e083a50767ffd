import Foundation
import HydraEngine

/// The OpenAI request bodies the endpoint accepts (the fields HydraServe acts on; others are
/// ignored as OpenAI-compatible servers do).
struct CompletionRequest: Decodable {
    enum Prompt {
        case text(String)
        case ids([Int])
    }

    var model: String
    var prompt: Prompt
    var maxTokens: Int?
    var sampling: SamplingFields
    var stream: Bool
    var includeUsage: Bool
    var stop: [String]
    /// vLLM's extension: generate to `max_tokens` even past the end-of-sequence token.
    var ignoreEOS: Bool

    enum CodingKeys: String, CodingKey {
        case model, prompt, maxTokens = "max_tokens", stream, streamOptions = "stream_options", stop, ignoreEOS = "ignore_eos"
    }

    init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        model = try container.decode(String.self, forKey: .model)
        if let text = try? container.decode(String.self, forKey: .prompt) {
            prompt = .text(text)
        } else if let ids = try? container.decode([Int].self, forKey: .prompt) {
            prompt = .ids(ids)
        } else if let texts = try? container.decode([String].self, forKey: .prompt) {
            guard texts.count == 1 else { throw ControlError(status: 400, "'prompt': one prompt per request (got \(texts.count))") }
            prompt = .text(texts[0])
        } else {
            throw ControlError(status: 400, "'prompt' must be a string or an array of token ids")
        }
        maxTokens = try container.decodeIfPresent(Int.self, forKey: .maxTokens)
        sampling = try SamplingFields(from: decoder)
        stream = try container.decodeIfPresent(Bool.self, forKey: .stream) ?? false
        includeUsage = try container.decodeIfPresent(StreamOptions.self, forKey: .streamOptions)?.includeUsage ?? false
        stop = try StopField.decode(container, key: .stop)
        ignoreEOS = try container.decodeIfPresent(Bool.self, forKey: .ignoreEOS) ?? false
    }
}

struct ChatRequest: Decodable {
    var model: String
    var messages: [ChatTemplate.Message]
    var maxTokens: Int?
    var sampling: SamplingFields
    var stream: Bool
    var includeUsage: Bool
    var stop: [String]

    enum CodingKeys: String, CodingKey {
        case model, messages, maxTokens = "max_tokens", maxCompletionTokens = "max_completion_tokens", stream, streamOptions = "stream_options", stop
    }

    /// A message's content: a string, or text parts.
    struct Message: Decodable {
        struct Part: Decodable { var type: String; var text: String? }
        var role: String
        var content: String

        enum CodingKeys: String, CodingKey { case role, content }

        init(from decoder: Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            role = try container.decode(String.self, forKey: .role)
            if let text = try? container.decode(String.self, forKey: .content) {
                content = text
            } else if let parts = try? container.decode([Part].self, forKey: .content) {
                guard parts.allSatisfy({ $0.type == "text" }) else { throw ControlError(status: 400, "only text message parts are supported") }
                content = parts.compactMap(\.text).joined()
            } else {
                content = ""
            }
        }
    }

    init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        model = try container.decode(String.self, forKey: .model)
        messages = try container.decode([Message].self, forKey: .messages).map { ChatTemplate.Message(role: $0.role, content: $0.content) }
        guard !messages.isEmpty else { throw ControlError(status: 400, "'messages' is empty") }
        maxTokens = try container.decodeIfPresent(Int.self, forKey: .maxCompletionTokens) ?? container.decodeIfPresent(Int.self, forKey: .maxTokens)
        sampling = try SamplingFields(from: decoder)
        stream = try container.decodeIfPresent(Bool.self, forKey: .stream) ?? false
        includeUsage = try container.decodeIfPresent(StreamOptions.self, forKey: .streamOptions)?.includeUsage ?? false
        stop = try StopField.decode(container, key: .stop)
    }
}

/// The original HydraServe's request form: `{"id", "model", "prompt", "stream"}`.
struct OriginalRequest: Decodable {
    var id: String?
    var model: String
    var prompt: String
    var stream: Bool?
    var maxTokens: Int?
    var temperature: Float?

    enum CodingKeys: String, CodingKey { case id, model, prompt, stream, maxTokens = "max_tokens", temperature }

    init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        // The original sends ids as strings; numbers are accepted too.
        id = try (try? container.decodeIfPresent(String.self, forKey: .id)) ?? container.decodeIfPresent(Int.self, forKey: .id).map(String.init)
        model = try container.decode(String.self, forKey: .model)
        prompt = try container.decode(String.self, forKey: .prompt)
        stream = try container.decodeIfPresent(Bool.self, forKey: .stream)
        maxTokens = try container.decodeIfPresent(Int.self, forKey: .maxTokens)
        temperature = try container.decodeIfPresent(Float.self, forKey: .temperature)
    }
}

/// Sampling fields shared by both OpenAI requests, checked against OpenAI's ranges.
struct SamplingFields: Decodable {
    var temperature: Float
    var topP: Float
    var seed: UInt64?
    var n: Int

    enum CodingKeys: String, CodingKey { case temperature, topP = "top_p", seed, n }

    init(temperature: Float, topP: Float = 1, seed: UInt64? = nil) {
        self.temperature = temperature
        self.topP = topP
        self.seed = seed
        n = 1
    }

    init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        temperature = try container.decodeIfPresent(Float.self, forKey: .temperature) ?? 1
        topP = try container.decodeIfPresent(Float.self, forKey: .topP) ?? 1
        seed = try container.decodeIfPresent(Int64.self, forKey: .seed).map { UInt64(bitPattern: $0) }
        n = try container.decodeIfPresent(Int.self, forKey: .n) ?? 1
        guard (0...2).contains(temperature) else { throw ControlError(status: 400, "'temperature' must be between 0 and 2") }
        guard topP > 0 && topP <= 1 else { throw ControlError(status: 400, "'top_p' must be in (0, 1]") }
        guard n == 1 else { throw ControlError(status: 400, "'n' must be 1: one choice per request") }
    }
}

struct StreamOptions: Decodable {
    var includeUsage: Bool?
    enum CodingKeys: String, CodingKey { case includeUsage = "include_usage" }
}

/// `stop`: a string or up to four strings.
enum StopField {
    static func decode<Key: CodingKey>(_ container: KeyedDecodingContainer<Key>, key: Key) throws -> [String] {
        if let one = try? container.decode(String.self, forKey: key) { return [one] }
        let many = try container.decodeIfPresent([String].self, forKey: key) ?? []
        guard many.count <= 4 else { throw ControlError(status: 400, "'stop' takes at most 4 sequences") }
        return many.filter { !$0.isEmpty }
    }
}

/// A decoding failure in words a client can act on.
func describe(_ error: Error) -> String {
    switch error {
    case let error as ControlError: return error.message
    case DecodingError.keyNotFound(let key, _): return "missing field '\(key.stringValue)'"
    case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
        let path = context.codingPath.map(\.stringValue).joined(separator: ".")
        return "field '\(path)' has the wrong type: \(context.debugDescription)"
    case DecodingError.dataCorrupted(let context):
        let underlying = (context.underlyingError as NSError?)?.localizedDescription
        return "malformed JSON" + (underlying.map { ": \($0)" } ?? "")
    default: return "\(error)"
    }
}
