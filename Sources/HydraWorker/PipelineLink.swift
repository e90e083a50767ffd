import Foundation
import Glibc
import HydraEngine
import HydraSystem

/// A stage's connection to the next stage: hello once, then one forward → one reply at a time.
public final class PipelineLink: @unchecked Sendable {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let message: String
        public var description: String { message }
    }

    let connection: TCPConnection
    public let address: String

    /// Connects to the next stage and checks it is the stage this pipeline expects.
    /// `stepTimeoutSeconds` bounds how long a step may wait for the rest of the pipeline.
    /// A stage that is still starting refuses connections: they are retried for up to
    /// `connectTimeoutSeconds`.
    public init(host: String, port: Int, hello: PipelineHello, stepTimeoutSeconds: Double = 60, connectTimeoutSeconds: Double = 0) throws {
        address = "\(host):\(port)"
        let deadline = Date().addingTimeInterval(connectTimeoutSeconds)
        while true {
            do {
                connection = try TCPConnection.connect(host: host, port: port)
                break
            } catch let error as SystemError where error.errno == ECONNREFUSED && Date() < deadline {
                Thread.sleep(forTimeInterval: 0.02)
            } catch {
                throw Failure(message: "pipeline stage \(hello.stage) at \(address) is unreachable: \(error)")
            }
        }
        // The hello travels down the whole pipeline, whose later stages may still be starting.
        connection.setReceiveTimeout(seconds: connectTimeoutSeconds + stepTimeoutSeconds)
        try PipelineWire.write(connection, .hello, hello.encoded())
        let (kind, _) = try receive(stage: hello.stage)
        guard kind == .ready else { throw Failure(message: "pipeline stage \(hello.stage) at \(address) answered \(kind) to hello") }
        connection.setReceiveTimeout(seconds: stepTimeoutSeconds)
    }

    /// Sends a step down the pipeline without waiting (its tokens come back in order).
    public func send(_ message: PipelineForward, stage: Int) throws {
        do { try PipelineWire.write(connection, .forward, message.encoded()) } catch {
            throw Failure(message: "pipeline stage \(stage) at \(address) went away: \(error)")
        }
    }

    /// The tokens of the oldest step sent and not yet answered.
    public func receiveTokens(stepID: UInt64, count: Int, stage: Int, vocabSize: Int) throws -> PipelineTokens {
        let (kind, payload) = try receive(stage: stage)
        guard kind == .tokens else { throw Failure(message: "pipeline stage \(stage) at \(address) answered \(kind) to forward") }
        let tokens = try PipelineTokens(decoding: payload, vocabSize: vocabSize)
        guard tokens.stepID == stepID, tokens.tokens.count == count else {
            throw Failure(message: "pipeline stage \(stage) answered step \(tokens.stepID) with \(tokens.tokens.count) tokens; expected step \(stepID) with \(count)")
        }
        return tokens
    }

    /// Asks the rest of the pipeline for the K/V of `request.blocks` and the samplers.
    public func migrate(_ request: PipelineMigrate, stage: Int, layerCount: Int, floatsPerLayer: Int) throws -> PipelineKV {
        do { try PipelineWire.write(connection, .migrate, request.encoded()) } catch {
            throw Failure(message: "pipeline stage \(stage) at \(address) went away: \(error)")
        }
        let (kind, payload) = try receive(stage: stage)
        guard kind == .kv else { throw Failure(message: "pipeline stage \(stage) at \(address) answered \(kind) to migrate") }
        return try PipelineKV(decoding: payload, layerCount: layerCount, floatsPerLayer: floatsPerLayer)
    }

    /// Tells the rest of the pipeline to exit; returns once every stage has acknowledged.
    public func retire(stage: Int) throws {
        do { try PipelineWire.write(connection, .retire, []) } catch {
            throw Failure(message: "pipeline stage \(stage) at \(address) went away: \(error)")
        }
        let (kind, _) = try receive(stage: stage)
        guard kind == .retired else { throw Failure(message: "pipeline stage \(stage) at \(address) answered \(kind) to retire") }
        close()
    }

    /// The next frame; an `error` frame or a dead link becomes a `Failure` naming the stage.
    func receive(stage: Int) throws -> (PipelineWire.Kind, [UInt8]) {
        let frame: (PipelineWire.Kind, [UInt8])?
        do { frame = try PipelineWire.read(connection) } catch {
            throw Failure(message: "pipeline stage \(stage) at \(address) failed: \(error)")
        }
        guard let (kind, payload) = frame else { throw Failure(message: "pipeline stage \(stage) at \(address) closed the link") }
        if kind == .error {
            throw Failure(message: String(decoding: payload.prefix(4096), as: UTF8.self))
        }
        return (kind, payload)
    }

    public func close() { connection.shutdown() }
}

/// Stage 0 of a pipeline: runs its own layers here, then hands the residual stream to the
/// next stage; the sampled tokens come back in order. Up to `depth` (default pp) micro-batches
/// are in flight, so every stage works on a different one.
/// Used by the engine thread only (and by consolidation, which runs between its steps).
public final class PipelineExecutor: PipelinedExecutor, @unchecked Sendable {
    public let runner: StageRunner
    let link: PipelineLink
    let pp: Int
    public let depth: Int
    private var stepID: UInt64 = 0
    /// Dispatched steps awaiting their tokens: (step id, sequences).
    private var pending: [(UInt64, Int)] = []
    /// The most micro-batches that were in flight at once.
    public private(set) var peakInFlight = 0

    public init(runner: StageRunner, next: PipelineLink, pp: Int, depth: Int? = nil) throws {
        guard runner.stage.embed, !runner.stage.head, pp > 1 else {
            throw EngineError("a pipeline executor runs stage 0 of a pipeline of two or more stages")
        }
        self.runner = runner
        link = next
        self.pp = pp
        self.depth = max(1, depth ?? pp)
    }

    public var blocks: BlockManager { runner.cache.blocks }
    public var blockSize: Int { runner.cache.blockSize }
    public var contextLength: Int { runner.contextLength }
    public var vocabSize: Int { runner.config.vocabSize }

    public func execute(_ step: ScheduledStep) throws -> StepOutput {
        try dispatch(step)
        return try collect()
    }

    public func dispatch(_ step: ScheduledStep) throws {
        stepID += 1
        let hidden = runner.forward(tokens: step.tokens, batch: step.batch)
        try link.send(PipelineForward(stepID: stepID, step: step, hidden: hidden), stage: 1)
        pending.append((stepID, step.sequences.count))
        peakInFlight = max(peakInFlight, pending.count)
    }

    public func collect() throws -> StepOutput {
        precondition(!pending.isEmpty, "collect without a dispatched step")
        let (id, count) = pending.removeFirst()
        let reply = try link.receiveTokens(stepID: id, count: count, stage: 1, vocabSize: vocabSize)
        return StepOutput(tokens: reply.tokens, promptLogits: Array(repeating: nil, count: reply.tokens.count))
    }
}
