import Foundation
import HydraFormat
import HTTPTypes
import Hummingbird
import NIOCore

/// One validated request on its way through the controller, and how its answer is written:
/// an OpenAI completion or chat completion (whole, or as server-sent events), or the original
/// HydraServe form (whole JSON, or NDJSON lines).
struct Generation: Sendable {
    enum Kind: Sendable {
        case completion
        case chat
        case original(id: String)
    }

    let kind: Kind
    let function: String
    let model: ServedModel
    let promptIDs: [Int]
    let parameters: Controller.Parameters
    let stop: [String]
    let stream: Bool
    let includeUsage: Bool
    let created: Int64
    let id: String

    init(kind: Kind, function: String, model: ServedModel, promptIDs: [Int], maxTokens: Int?, defaultMaxTokens: Int?,
         sampling: SamplingFields, stop: [String], stream: Bool, includeUsage: Bool, created: Int64, ignoreEOS: Bool = false) throws {
        guard !promptIDs.isEmpty else { throw ControlError(status: 400, "the prompt is empty") }
        if let vocabulary = model.tokenizer?.vocabularySize, let bad = promptIDs.first(where: { $0 < 0 || $0 >= vocabulary }) {
            throw ControlError(status: 400, "token id \(bad) is outside the vocabulary (0..<\(vocabulary))")
        }
        let room = model.contextLength - promptIDs.count
        if let maxTokens, maxTokens < 1 { throw ControlError(status: 400, "'max_tokens' must be at least 1") }
        let wanted = maxTokens ?? defaultMaxTokens.map { min($0, max(room, 1)) } ?? max(room, 1)
        guard promptIDs.count + wanted <= model.contextLength else {
            throw ControlError(status: 400, "This model's maximum context length is \(model.contextLength) tokens. However, you requested \(promptIDs.count + wanted) tokens (\(promptIDs.count) in the prompt, \(wanted) for the completion). Please reduce the prompt or the completion length.")
        }
        self.kind = kind
        self.function = function
        self.model = model
        self.promptIDs = promptIDs
        parameters = Controller.Parameters(maxTokens: wanted, temperature: sampling.temperature, topP: sampling.topP, seed: sampling.seed,
                                           stopIDs: ignoreEOS ? [] : model.stopTokens.sorted())
        self.stop = stop
        self.stream = stream
        self.includeUsage = includeUsage
        self.created = created
        switch kind {
        case .completion: id = "cmpl-" + Self.randomID()
        case .chat: id = "chatcmpl-" + Self.randomID()
        case .original(let given): id = given
        }
    }

    static func randomID() -> String { String(UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(24)).lowercased() }

    /// A piece of the answer: new text, and the finish reason on the last one.
    struct Piece: Sendable {
        var text: String
        var finishReason: String?
        var completionTokens: Int
        /// The request waited for a cold start.
        var cold: Bool
    }

    /// The answer's pieces: the controller's tokens, detokenized and cut at stop strings.
    func pieces(_ controller: Controller) -> AsyncThrowingStream<Piece, Error> {
        let tokens = controller.generate(function: function, promptIDs: promptIDs, parameters: parameters)
        let (pieces, continuation) = AsyncThrowingStream.makeStream(of: Piece.self)
        let task = Task { [model, stop] in
            var text = TextStream(tokenizer: model.tokenizer, stopTokens: model.stopTokens, stopStrings: stop)
            var count = 0
            do {
                for try await event in tokens {
                    count += 1
                    var piece = Piece(text: text.push(event.token), finishReason: nil, completionTokens: count, cold: event.cold)
                    if text.stopped {
                        piece.finishReason = "stop"
                    } else if let reason = event.finishReason {
                        piece.text += text.finish()
                        piece.finishReason = reason == "length" ? "length" : "stop"
                    }
                    continuation.yield(piece)
                    if piece.finishReason != nil { break }  // a stop string: leaving the loop cancels the rest
                }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { reason in if case .cancelled = reason { task.cancel() } }
        return pieces
    }

    /// Runs the generation. The status is decided by the first piece (a request that fails
    /// before any token gets the error's status); a stream then follows as it is produced.
    func respond(_ controller: Controller) async throws -> Response {
        let cursor = PieceCursor(pieces(controller))
        let first = try await cursor.next()
        guard stream else {
            var text = "", finish = "stop", tokens = 0
            var next = first
            while let piece = next {
                text += piece.text
                tokens = piece.completionTokens
                if let reason = piece.finishReason { finish = reason }
                next = try await cursor.next()
            }
            var response = Endpoint.json(whole(text: text, finishReason: finish, completionTokens: tokens))
            response.headers[Self.startHeader] = first?.cold == true ? "cold" : "warm"
            return response
        }
        let contentType = if case .original = kind { "application/x-ndjson" } else { "text/event-stream" }
        let headers: HTTPFields = [.contentType: contentType, .cacheControl: "no-cache", Self.startHeader: first?.cold == true ? "cold" : "warm"]
        return Response(status: .ok, headers: headers, body: ResponseBody { [self] writer in
            var next = first
            var tokens = 0
            if isChat { try await writer.write(event(chunk(delta: ["role": .string("assistant"), "content": .string("")], finishReason: nil))) }
            do {
                while let piece = next {
                    tokens = piece.completionTokens
                    if !piece.text.isEmpty || piece.finishReason != nil {
                        try await writer.write(event(chunk(text: piece.text, finishReason: piece.finishReason, completionTokens: tokens)))
                    }
                    next = try await cursor.next()
                }
                if includeUsage, !isOriginal { try await writer.write(event(usageChunk(tokens))) }
            } catch let error as ControlError {
                try await writer.write(event(Endpoint.errorObject(error)))
            } catch is CancellationError {
                // The client went away.
            } catch {
                try await writer.write(event(Endpoint.errorObject(ControlError(status: 502, "\(error)"))))
            }
            if !isOriginal { try await writer.write(ByteBuffer(string: "data: [DONE]\n\n")) }
            try await writer.finish(nil)
        })
    }

    /// `x-hydra-start: cold | warm`: whether the request waited for a cold start.
    static let startHeader = HTTPField.Name("x-hydra-start")!

    var isOriginal: Bool { if case .original = kind { true } else { false } }

    func usage(_ completionTokens: Int) -> JSONValue {
        .object(["prompt_tokens": .int(Int64(promptIDs.count)), "completion_tokens": .int(Int64(completionTokens)),
                 "total_tokens": .int(Int64(promptIDs.count + completionTokens))])
    }

    /// The non-streamed answer.
    func whole(text: String, finishReason: String, completionTokens: Int) -> JSONValue {
        switch kind {
        case .original(let id):
            return .object(["id": .string(id), "model": .string(function), "text": .string(text), "finish_reason": .string(finishReason),
                            "usage": usage(completionTokens)])
        case .completion:
            return .object(["id": .string(id), "object": .string("text_completion"), "created": .int(created), "model": .string(function),
                            "choices": .array([.object(["index": .int(0), "text": .string(text), "logprobs": .null,
                                                        "finish_reason": .string(finishReason)])]),
                            "usage": usage(completionTokens)])
        case .chat:
            return .object(["id": .string(id), "object": .string("chat.completion"), "created": .int(created), "model": .string(function),
                            "choices": .array([.object(["index": .int(0), "message": .object(["role": .string("assistant"), "content": .string(text)]),
                                                        "logprobs": .null, "finish_reason": .string(finishReason)])]),
                            "usage": usage(completionTokens)])
        }
    }

    /// One streamed piece.
    func chunk(text: String?, finishReason: String?, completionTokens: Int) -> JSONValue {
        switch kind {
        case .original(let id):
            var fields: [String: JSONValue] = ["id": .string(id), "text": .string(text ?? "")]
            if let finishReason { fields["finish_reason"] = .string(finishReason); fields["usage"] = usage(completionTokens) }
            return .object(fields)
        case .completion:
            return .object(["id": .string(id), "object": .string("text_completion"), "created": .int(created), "model": .string(function),
                            "choices": .array([.object(["index": .int(0), "text": .string(text ?? ""), "logprobs": .null,
                                                        "finish_reason": finishReason.map(JSONValue.string) ?? .null])])])
        case .chat:
            return chunk(delta: text.map { ["content": .string($0)] } ?? [:], finishReason: finishReason)
        }
    }

    /// OpenAI's last streamed chunk with `include_usage`: no choices, the counts.
    func usageChunk(_ completionTokens: Int) -> JSONValue {
        .object(["id": .string(id), "object": .string(isChat ? "chat.completion.chunk" : "text_completion"), "created": .int(created),
                 "model": .string(function), "choices": .array([]), "usage": usage(completionTokens)])
    }

    var isChat: Bool { if case .chat = kind { true } else { false } }

    func chunk(delta: [String: JSONValue], finishReason: String?) -> JSONValue {
        .object(["id": .string(id), "object": .string("chat.completion.chunk"), "created": .int(created), "model": .string(function),
                 "choices": .array([.object(["index": .int(0), "delta": .object(delta), "logprobs": .null,
                                             "finish_reason": finishReason.map(JSONValue.string) ?? .null])])])
    }

    /// An SSE event (OpenAI) or an NDJSON line (the original form).
    func event(_ value: JSONValue) -> ByteBuffer {
        let json = String(decoding: (try? value.encoded()) ?? [], as: UTF8.self)
        return ByteBuffer(string: isOriginal ? json + "\n" : "data: " + json + "\n\n")
    }
}

/// Lets the response body own the piece iterator.
final class PieceCursor: @unchecked Sendable {
    private var iterator: AsyncThrowingStream<Generation.Piece, Error>.AsyncIterator

    init(_ pieces: AsyncThrowingStream<Generation.Piece, Error>) { iterator = pieces.makeAsyncIterator() }

    func next() async throws -> Generation.Piece? { try await iterator.next() }
}
