import Foundation
import HydraSystem

/// The predecessor's connection, written by the serving thread and the relay: one frame at a time.
final class Upstream: @unchecked Sendable {
    let connection: TCPConnection
    private let lock = NSLock()

    init(_ connection: TCPConnection) { self.connection = connection }

    func write(_ kind: PipelineWire.Kind, _ payload: [UInt8]) throws {
        try lock.withLock { try PipelineWire.write(connection, kind, payload) }
    }
}

/// Carries the next stage's answers to forwarded steps back upstream, in order, while this
/// stage already works on the next micro-batch. Reads only while answers are owed, so control
/// exchanges (migrate, retire) can use the link when nothing is in flight.
final class Relay: @unchecked Sendable {
    let link: PipelineLink
    let upstream: Upstream
    let stage: Int
    private let condition = NSCondition()
    private var owed = 0
    private var closed = false

    init(link: PipelineLink, upstream: Upstream, stage: Int) {
        self.link = link
        self.upstream = upstream
        self.stage = stage
    }

    func start() {
        let thread = Thread { [self] in run() }
        thread.name = "hydra-relay-\(stage)"
        thread.start()
    }

    /// One more answer is owed (call before sending the step).
    func expect() { condition.withLock { owed += 1; condition.broadcast() } }

    func waitIdle() { condition.withLock { while owed > 0 && !closed { condition.wait() } } }

    func close() { condition.withLock { closed = true; condition.broadcast() } }

    private func run() {
        while true {
            let proceed = condition.withLock { () -> Bool in
                while owed == 0 && !closed { condition.wait() }
                return !closed
            }
            guard proceed else { return }
            do {
                guard let (kind, payload) = try PipelineWire.read(link.connection) else {
                    throw PipelineLink.Failure(message: "pipeline stage \(stage) at \(link.address) closed the link")
                }
                try upstream.write(kind, payload)  // tokens, or the error that ended them
            } catch {
                try? upstream.write(.error, Array("pipeline stage \(stage) at \(link.address) failed: \(error)".utf8))
                close()
                return
            }
            condition.withLock { owed -= 1; condition.broadcast() }
        }
    }
}
