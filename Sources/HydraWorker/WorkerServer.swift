import Foundation
import HydraEngine
import HydraSystem
import Hummingbird
import Logging
import NIOCore

/// A worker's HTTP face: `/healthz`, `/v1/status` (phase and start-up timeline) on every stage,
/// and on stage 0 `POST /v1/generate`, which streams tokens as NDJSON. Requests that arrive
/// while the worker is still starting wait for it (that is the cold start being measured).
public final class WorkerServer: @unchecked Sendable {
    public enum Phase: Sendable {
        case starting
        case ready(EngineService?)
        case failed(String)
    }

    public let model: String
    public let stage: Int
    public let pp: Int
    public let timeline: StartupTimeline
    private let phase = LockedBox<Phase>(.starting)
    /// Set by the worker: runs a consolidation (POST /v1/consolidate).
    public var consolidate: (@Sendable (Consolidation.Mode) async throws -> Consolidation.Report)?
    private let waiters = LockedBox<[CheckedContinuation<Void, Never>]>([])

    public init(model: String, stage: Int, pp: Int, timeline: StartupTimeline) {
        self.model = model
        self.stage = stage
        self.pp = pp
        self.timeline = timeline
    }

    /// Ends the start-up: ready (with an engine service where this worker takes requests) or
    /// failed; `.starting` again while a retired stage becomes a replica.
    public func finishStartup(_ outcome: Phase) {
        if case .ready(let service) = outcome {
            service?.onFirstToken = { [timeline] in timeline.markOnce("first_token") }
        }
        phase.value = outcome
        if case .starting = outcome { return }  // back to starting (a replica on its way): keep them waiting
        let pending = waiters.withValue { list in defer { list = [] }; return list }
        pending.forEach { $0.resume() }
    }

    func waitForStartup() async -> Phase {
        await withCheckedContinuation { continuation in
            let resumeNow = waiters.withValue { list -> Bool in
                if case .starting = phase.value { list.append(continuation); return false }
                return true
            }
            if resumeNow { continuation.resume() }
        }
        return phase.value
    }

    struct GenerateRequest: Decodable {
        var promptIDs: [Int]
        var maxTokens: Int?
        var temperature: Float?
        var topP: Float?
        var seed: UInt64?
        var stopIDs: [Int]?

        enum CodingKeys: String, CodingKey {
            case promptIDs = "prompt_ids", maxTokens = "max_tokens", temperature, topP = "top_p", seed, stopIDs = "stop_ids"
        }
    }

    struct Status: Encodable {
        var model: String
        var stage: Int
        var pp: Int
        var phase: String
        var error: String?
        /// Requests the engine holds (stage 0 of a ready worker).
        var running: Int?
        var timeline: [StartupTimeline.Mark]
    }

    public func application(host: String, port: Int, logger: Logger,
                            onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol {
        let router = Router()
        router.get("/healthz") { [self] _, _ -> Response in
            switch phase.value {
            case .ready: return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "ok\n")))
            case .starting: return Response(status: .serviceUnavailable, body: .init(byteBuffer: ByteBuffer(string: "starting\n")))
            case .failed(let message): return Response(status: .internalServerError, body: .init(byteBuffer: ByteBuffer(string: "failed: \(message)\n")))
            }
        }
        router.get("/v1/status") { [self] _, _ -> Response in
            var status = Status(model: model, stage: stage, pp: pp, phase: "starting", timeline: timeline.all)
            switch phase.value {
            case .starting: break
            case .ready(let service): status.phase = "ready"; status.running = service?.runningRequests
            case .failed(let message): status.phase = "failed"; status.error = message
            }
            return try Self.json(status)
        }
        router.post("/v1/generate") { [self] request, context -> Response in
            try await generate(request, context: context)
        }
        router.post("/v1/consolidate") { [self] request, _ -> Response in
            let body = try await request.body.collect(upTo: 1 << 16)
            struct Order: Decodable { var mode: Consolidation.Mode? }
            let order: Order
            do { order = body.readableBytes == 0 ? Order() : try JSONDecoder().decode(Order.self, from: Data(buffer: body)) } catch {
                throw HTTPError(.badRequest, message: "malformed request: mode must be auto, migrate or drain")
            }
            guard case .ready = await waitForStartup(), let consolidate else {
                throw HTTPError(.conflict, message: "the worker is not ready to consolidate")
            }
            let report: Consolidation.Report
            do { report = try await consolidate(order.mode ?? .auto) } catch let error as EngineError {
                throw HTTPError(.conflict, message: error.description)
            }
            return try Self.json(report)
        }
        return Application(router: router, configuration: .init(address: .hostname(host, port: port), serverName: "hydra-worker"),
                           onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? 0) }, logger: logger)
    }

    func generate(_ request: Request, context: some RequestContext) async throws -> Response {
        let body = try await request.body.collect(upTo: 16 << 20)
        let parsed: GenerateRequest
        do { parsed = try JSONDecoder().decode(GenerateRequest.self, from: Data(buffer: body)) } catch {
            throw HTTPError(.badRequest, message: "malformed request: \(error)")
        }
        let service: EngineService
        switch await waitForStartup() {
        case .ready(let ready?): service = ready
        case .failed(let message): throw HTTPError(.serviceUnavailable, message: "the worker failed to start: \(message)")
        default: throw HTTPError(.badRequest, message: "stage \(stage) does not take requests: send them to stage 0")
        }
        let engineRequest = Engine.Request(
            prompt: parsed.promptIDs, maxTokens: parsed.maxTokens ?? 16,
            sampling: SamplingParameters(temperature: parsed.temperature ?? 0, topP: parsed.topP ?? 1, seed: parsed.seed),
            stopTokens: Set(parsed.stopIDs ?? []))
        let cursor = EventCursor(service.submit(engineRequest))
        // The first event decides the status: a request the engine rejects is the caller's error.
        let first: Engine.Event?
        do { first = try await cursor.next() } catch let error as EngineError {
            throw HTTPError(.badRequest, message: error.description)
        } catch {
            throw HTTPError(.badGateway, message: "\(error)")
        }
        return Response(status: .ok, headers: [.contentType: "application/x-ndjson"], body: ResponseBody { writer in
            var next = first
            do {
                while let event = next {
                    try await writer.write(ByteBuffer(string: Self.line(event)))
                    if event.finished != nil { break }
                    next = try await cursor.next()
                }
            } catch {
                let message = String(decoding: try JSONEncoder().encode(["error": "\(error)"]), as: UTF8.self)
                try await writer.write(ByteBuffer(string: message + "\n"))
            }
            try await writer.finish(nil)
        })
    }

    static func json(_ value: some Encodable) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
    }

    static func line(_ event: Engine.Event) -> String {
        if let reason = event.finished { return "{\"token\":\(event.token),\"finish_reason\":\"\(reason.rawValue)\"}\n" }
        return "{\"token\":\(event.token)}\n"
    }
}

/// One response body reads its request's events; the box lets the body closure own the iterator.
final class EventCursor: @unchecked Sendable {
    private var iterator: EngineService.Events.AsyncIterator

    init(_ events: EngineService.Events) { iterator = events.makeAsyncIterator() }

    func next() async throws -> Engine.Event? { try await iterator.next() }
}
