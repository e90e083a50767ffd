import Foundation
import HydraFormat
import HydraSystem
import Hummingbird
import Logging
import NIOCore

/// `hydra serve`'s HTTP face (DESIGN.md §6): OpenAI-compatible `POST /v1/completions` and
/// `/v1/chat/completions` (streamed as server-sent events or whole, with usage counts),
/// `GET /v1/models`, the original HydraServe's `POST /` form, `/healthz`, `/metrics`
/// (Prometheus) and `/v1/instances` (what runs where). Errors are OpenAI's JSON error objects
/// with the status that fits: 404 unknown model, 400 bad request, 429 queue full, 502/503
/// when the platform could not answer.
public final class Endpoint: Sendable {
    public let controller: Controller
    let created = Int64(Date().timeIntervalSince1970)

    public init(controller: Controller) { self.controller = controller }

    public func application(host: String, port: Int, logger: Logger,
                            onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol {
        let router = Router()
        router.get("/healthz") { _, _ in Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "ok\n"))) }
        router.get("/metrics") { [self] _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                     body: .init(byteBuffer: ByteBuffer(string: controller.metrics.render())))
        }
        router.get("/v1/models") { [self] _, _ in
            let data = controller.models.keys.sorted().map { name -> JSONValue in
                .object(["id": .string(name), "object": .string("model"), "created": .int(created), "owned_by": .string("hydraserve")])
            }
            return Self.json(.object(["object": .string("list"), "data": .array(data)]))
        }
        router.get("/v1/instances") { [self] _, _ in try Self.json(encoding: await controller.status()) }
        router.get("/v1/cold-starts") { [self] _, _ in try Self.json(encoding: await controller.coldStartHistory()) }
        router.post("/v1/completions") { [self] request, _ in await answer(request) { try completion($0) } }
        router.post("/v1/chat/completions") { [self] request, _ in await answer(request) { try chat($0) } }
        router.post("/") { [self] request, _ in await answer(request) { try original($0) } }
        return Application(router: router, configuration: .init(address: .hostname(host, port: port), serverName: "hydra-serve"),
                           onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? 0) }, logger: logger)
    }

    /// Reads the body, turns it into a generation (or an error), and runs it.
    private func answer(_ request: Request, _ prepare: ([UInt8]) throws -> Generation) async -> Response {
        do {
            let body = try await request.body.collect(upTo: 16 << 20)
            let generation = try prepare(Array(buffer: body))
            return try await generation.respond(controller)
        } catch {
            let error = error as? ControlError ?? ControlError(status: 400, describe(error))
            controller.metrics.increment("hydra_rejected_total", ["status": String(error.status)])
            return Self.error(error)
        }
    }

    // MARK: Requests → generations

    private func completion(_ body: [UInt8]) throws -> Generation {
        let request = try JSONDecoder().decode(CompletionRequest.self, from: Data(body))
        let model = try served(request.model)
        let ids: [Int]
        switch request.prompt {
        case .text(let text):
            guard let tokenizer = model.tokenizer else { throw ControlError(status: 400, "'\(request.model)' has no tokenizer: send the prompt as token ids") }
            ids = tokenizer.encode(text)
        case .ids(let given): ids = given
        }
        return try Generation(kind: .completion, function: request.model, model: model, promptIDs: ids, maxTokens: request.maxTokens,
                              defaultMaxTokens: 16, sampling: request.sampling, stop: request.stop, stream: request.stream,
                              includeUsage: request.includeUsage, created: created, ignoreEOS: request.ignoreEOS)
    }

    private func chat(_ body: [UInt8]) throws -> Generation {
        let request = try JSONDecoder().decode(ChatRequest.self, from: Data(body))
        let model = try served(request.model)
        guard let tokenizer = model.tokenizer, let template = model.chatTemplate else {
            throw ControlError(status: 400, "'\(request.model)' has no chat template of a supported family: use /v1/completions")
        }
        let ids = tokenizer.encode(template.render(request.messages))
        return try Generation(kind: .chat, function: request.model, model: model, promptIDs: ids, maxTokens: request.maxTokens,
                              defaultMaxTokens: nil, sampling: request.sampling, stop: request.stop, stream: request.stream,
                              includeUsage: request.includeUsage, created: created)
    }

    private func original(_ body: [UInt8]) throws -> Generation {
        let request = try JSONDecoder().decode(OriginalRequest.self, from: Data(body))
        let model = try served(request.model)
        guard let tokenizer = model.tokenizer else { throw ControlError(status: 400, "'\(request.model)' has no tokenizer") }
        let sampling = SamplingFields(temperature: request.temperature ?? 0)
        return try Generation(kind: .original(id: request.id ?? UUID().uuidString), function: request.model, model: model,
                              promptIDs: tokenizer.encode(request.prompt), maxTokens: request.maxTokens, defaultMaxTokens: 64,
                              sampling: sampling, stop: [], stream: request.stream ?? false, includeUsage: true, created: created)
    }

    private func served(_ name: String) throws -> ServedModel {
        guard let model = controller.models[name] else {
            throw ControlError(status: 404, "The model '\(name)' does not exist (GET /v1/models lists the served ones)")
        }
        return model
    }

    // MARK: Responses

    static func json(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        let bytes = (try? value.encoded()) ?? Array("{}".utf8)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    static func json(encoding value: some Encodable) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
    }

    static func errorObject(_ error: ControlError) -> JSONValue {
        .object(["error": .object(["message": .string(error.message), "type": .string(error.type), "param": .null,
                                   "code": error.status == 404 ? .string("model_not_found") : .null])])
    }

    static func error(_ error: ControlError) -> Response {
        json(errorObject(error), status: HTTPResponse.Status(code: error.status))
    }
}
