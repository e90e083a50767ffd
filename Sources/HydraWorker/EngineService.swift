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
    public func submit(_ request: Engine.Request) -> Events {
        let (stream, continuation) = Events.makeStream()
        condition.withLock {
            let ticket = nextTicket
            nextTicket += 1
            continuation.onTermination = { [weak self] reason in
                if case .cancelled = reason { self?.cancel(ticket) }
            }
            inbox.append((request, continuation, ticket))
            condition.signal()
        }
        return stream
    }

    public func shutdown() {
        condition.withLock { stopped = true; condition.signal() }
    }

    private func cancel(_ ticket: Int) {
        condition.withLock { cancelled.append(ticket); condition.signal() }
    }

    private func loop() {
        var first = true
        while true {
            let (arrivals, cancellations, stop): ([(Engine.Request, Events.Continuation, Int)], [Int], Bool) = condition.withLock {
                while inbox.isEmpty && cancelled.isEmpty && !stopped && !engine.hasWork { condition.wait() }
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
            guard engine.hasWork else { continue }
            let events: [Engine.Event]
            do { events = try engine.step() } catch {
                logger.error("step failed; failing every live request", metadata: ["error": "\(error)"])
                failAll(error)
                continue
            }
            if events.isEmpty {
                // Nothing could be scheduled: the waiting prompts do not fit the KV cache.
                engine.abortAll()
                failAll(Failure(message: "the KV cache cannot hold the request"))
                continue
            }
            if first { first = false; onFirstToken?() }
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

    private func failAll(_ error: Error) {
        for continuation in streams.values { continuation.finish(throwing: error) }
        streams = [:]
        ticketToSequence = [:]
    }
}
