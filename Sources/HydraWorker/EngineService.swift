import Foundation
import HydraEngine
import Logging

/// Runs an engine on a thread of its own and serves requests from any task: each request gets a
/// stream of its tokens. Steps batch every live request (continuous batching). A failed step
/// (a pipeline stage died) fails every live request with the error; the service keeps running.
public final class EngineService: @unchecked Sendable {
    public typealias Events = AsyncThrowingStream<Engine.Event, Error>

    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let message: String
        public var description: String { message }
    }

    let engine: Engine
    let logger: Logger
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var inbox: [(Engine.Request, Events.Continuation, Int)] = []
    private var cancelled: [Int] = []
    private var stopped = false
    private var nextTicket = 0
    /// Work to do on the engine thread between steps, optionally once no sequence is running.
    private var pendingSwitch: (drain: Bool, body: (Engine) -> Void)?
    // Owned by the engine thread.
    private var streams: [Int: Events.Continuation] = [:]
    private var ticketToSequence: [Int: Int] = [:]
    /// Called once with the first token the service produces.
    public var onFirstToken: (@Sendable () -> Void)?

    public init(engine: Engine, logger: Logger = Logger(label: "hydra.worker")) {
        self.engine = engine
        self.logger = logger
        let thread = Thread { [self] in loop() }
        thread.name = "hydra-engine"
        thread.start()
    }

    public var contextLength: Int { engine.contextLength }

    /// Queues a request; its events arrive on the returned stream, which ends after the
    /// finishing token (or throws). Dropping the stream cancels the request.
    public func submit(_ request: Engine.Request) -> Events { submit([request])[0] }

    /// Queues several requests at once: they join the same step.
    public func submit(_ requests: [Engine.Request]) -> [Events] {
        condition.withLock {
            let streams = requests.map { request -> Events in
                let (stream, continuation) = Events.makeStream()
                let ticket = nextTicket
                nextTicket += 1
                continuation.onTermination = { [weak self] reason in
                    if case .cancelled = reason { self?.cancel(ticket) }
                }
                inbox.append((request, continuation, ticket))
                return stream
            }
            condition.signal()
            return streams
        }
    }

    /// Runs `body` on the engine thread between two steps. With `drain`, no new sequence is
    /// admitted from now on and `body` runs once the running ones have finished.
    public func betweenSteps<T: Sendable>(drain: Bool, _ body: @escaping (Engine) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            condition.withLock {
                precondition(pendingSwitch == nil, "one engine switch at a time")
                pendingSwitch = (drain, { engine in continuation.resume(with: Result { try body(engine) }) })
                condition.signal()
            }
        }
    }

    /// The longest a running sequence may still generate, and how long the last step took:
    /// what draining would cost.
    public var drainEstimate: (tokens: Int, stepSeconds: Double) {
        condition.withLock { (maxRemaining, lastStepSeconds) }
    }
    private var maxRemaining = 0
    private var lastStepSeconds = 0.0
    private var running = 0

    /// Requests the engine holds now (running or waiting for KV blocks): 0 once every stream
    /// ended — finished, failed, or cancelled by its caller.
    public var runningRequests: Int { condition.withLock { running } }

    public func shutdown() {
        condition.withLock { stopped = true; condition.signal() }
    }

    private func cancel(_ ticket: Int) {
        condition.withLock { cancelled.append(ticket); condition.signal() }
    }

    private func loop() {
        var first = true
        while true {
            let live = streams.count  // what the last step left (published before waiting)
            let (arrivals, cancellations, stop): ([(Engine.Request, Events.Continuation, Int)], [Int], Bool) = condition.withLock {
                running = live
                while inbox.isEmpty && cancelled.isEmpty && !stopped && !engine.hasWork && pendingSwitch == nil { condition.wait() }
                defer { inbox = []; cancelled = [] }
                return (inbox, cancelled, stopped)
            }
            if stop {
                for continuation in streams.values { continuation.finish(throwing: Failure(message: "the worker is shutting down")) }
                return
            }
            for (request, continuation, ticket) in arrivals {
                do {
                    let id = try engine.add(request)
                    streams[id] = continuation
                    ticketToSequence[ticket] = id
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            for ticket in cancellations {
                guard let id = ticketToSequence.removeValue(forKey: ticket) else { continue }
                engine.cancel(id)
                streams.removeValue(forKey: id)
            }
            runPendingSwitch()
            let admitted = streams.count
            condition.withLock { running = admitted }
            guard engine.hasWork else { continue }
            if !engine.admitsNewSequences && engine.liveSequences.isEmpty { continue }  // drained; the switch runs next
            let events: [Engine.Event]
            let stepStarted = DispatchTime.now()
            do { events = try engine.step() } catch {
                logger.error("step failed; failing every live request", metadata: ["error": "\(error)"])
                failAll(error)
                continue
            }
            if events.isEmpty {
                if engine.isStalled {
                    // Nothing could be scheduled: the waiting prompts do not fit the KV cache.
                    engine.abortAll()
                    failAll(Failure(message: "the KV cache cannot hold the request"))
                }
                continue
            }
            if first { first = false; onFirstToken?() }
            let stepSeconds = Double(DispatchTime.now().uptimeNanoseconds - stepStarted.uptimeNanoseconds) / 1e9
            let remaining = engine.maxRemainingTokens
            condition.withLock { lastStepSeconds = stepSeconds; maxRemaining = remaining }
            for event in events {
                guard let continuation = streams[event.sequence] else { continue }
                continuation.yield(event)
                if event.finished != nil {
                    continuation.finish()
                    streams.removeValue(forKey: event.sequence)
                    ticketToSequence = ticketToSequence.filter { $0.value != event.sequence }
                }
            }
        }
    }

    private func runPendingSwitch() {
        guard let pending = condition.withLock({ pendingSwitch }) else { return }
        if pending.drain {
            // Let the running sequences finish; admit nothing new.
            engine.admitsNewSequences = false
            guard engine.liveSequences.isEmpty else { return }
        } else {
            // Let the micro-batches in flight come back; dispatch nothing new.
            engine.holdsDispatch = true
            guard engine.inFlightCount == 0 else { return }
        }
        engine.admitsNewSequences = true
        engine.holdsDispatch = false
        condition.withLock { pendingSwitch = nil }  // before the body: it resumes the caller, who may queue the next
        pending.body(engine)
    }

    private func failAll(_ error: Error) {
        for continuation in streams.values { continuation.finish(throwing: error) }
        streams = [:]
        ticketToSequence = [:]
    }
}
