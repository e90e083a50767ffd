import Foundation
import HydraEngine
import HydraSystem
import Logging

/// A stage after the first: accepts its predecessor's link, runs its layers on each forward
/// frame, and either passes the result on to the next stage or (last stage) samples the next
/// tokens and sends them back. Bad frames are answered with an error and the link closed; the
/// stage keeps serving.
public final class StageServer: @unchecked Sendable {
    public let runner: StageRunner
    public let model: String
    public let pp: Int
    let next: (host: String, port: Int)?
    let stepTimeoutSeconds: Double
    let connectTimeoutSeconds: Double
    let listener: TCPListener
    let logger: Logger
    /// One step at a time: the KV cache and the samplers are this stage's only state.
    private let lock = NSLock()
    private var link: PipelineLink?
    private var relay: Relay?
    private var samplers = SamplerTable()
    private let open = LockedBox<[ObjectIdentifier: TCPConnection]>([:])

    public var port: Int { listener.port }
    /// Called when `retire` arrives, before it is acknowledged (what must be true by the time
    /// stage 0 reports the consolidation done), and after (the worker exits or becomes a replica).
    public var onRetiring: (@Sendable () -> Void)?
    public var onRetire: (@Sendable () -> Void)?
    var isLast: Bool { runner.stage.head }

    public init(runner: StageRunner, model: String, pp: Int, host: String, port: Int, next: (host: String, port: Int)?,
                stepTimeoutSeconds: Double = 60, connectTimeoutSeconds: Double = 0, logger: Logger = Logger(label: "hydra.worker")) throws {
        precondition(runner.stage.index > 0, "stage 0 drives the pipeline; it does not serve one")
        precondition(runner.stage.head == (next == nil), "every stage but the last needs --next")
        self.runner = runner
        self.model = model
        self.pp = pp
        self.next = next
        self.stepTimeoutSeconds = stepTimeoutSeconds
        self.connectTimeoutSeconds = connectTimeoutSeconds
        self.logger = logger
        listener = try TCPListener(host: host, port: port)
    }

    /// Serves predecessors until `shutdown()`, each link on a thread of its own.
    public func start() {
        let thread = Thread { [self] in
            while let connection = try? listener.accept() {
                open.withValue { $0[ObjectIdentifier(connection)] = connection }
                Thread.detachNewThread { [self] in
                    defer { open.withValue { $0[ObjectIdentifier(connection)] = nil } }
                    serve(connection)
                }
            }
        }
        thread.name = "hydra-stage-\(runner.stage.index)-accept"
        thread.start()
    }

    /// Stops accepting and drops every link (as if the process died).
    public func shutdown() {
        listener.shutdown()
        for connection in open.value.values { connection.shutdown() }
        lock.withLock { link?.close() }
    }

    func serve(_ connection: TCPConnection) {
        var greeted = false
        let upstream = Upstream(connection)
        while true {
            do {
                guard let (kind, payload) = try PipelineWire.read(connection) else { return }
                switch kind {
                case .hello:
                    try greet(PipelineHello(decoding: payload), upstream: upstream)
                    greeted = true
                    try upstream.write(.ready, [])
                case .forward where greeted:
                    // Tokens go back in order: from here (last stage) or through the relay.
                    if let tokens = try lock.withLock({ try forward(payload) }) {
                        try upstream.write(.tokens, tokens.encoded())
                    }
                case .migrate where greeted:
                    let kv = try lock.withLock { try migrate(payload) }
                    try upstream.write(.kv, kv.encoded())
                case .retire where greeted:
                    try lock.withLock {
                        relay?.waitIdle()
                        try link?.retire(stage: runner.stage.index + 1)
                        relay?.close()
                    }
                    onRetiring?()
                    try upstream.write(.retired, [])
                    logger.info("retired: the pipeline was consolidated", metadata: ["stage": "\(runner.stage.index)"])
                    onRetire?()
                    return
                default:
                    throw PipelineWire.Malformed("unexpected \(kind) frame\(greeted ? "" : " before hello")")
                }
            } catch let error as PipelineWire.Malformed {
                // The stream cannot be trusted past a bad frame: say why, then drop the link.
                logger.warning("rejected a pipeline frame", metadata: ["stage": "\(runner.stage.index)", "problem": "\(error.problem)"])
                try? upstream.write(.error, Array("stage \(runner.stage.index): \(error)".utf8))
                return
            } catch {
                logger.error("pipeline step failed", metadata: ["stage": "\(runner.stage.index)", "error": "\(error)"])
                try? upstream.write(.error, Array("stage \(runner.stage.index): \(error)".utf8))
                return
            }
        }
    }

    /// Checks the predecessor's idea of the pipeline and opens the link to the next stage.
    func greet(_ hello: PipelineHello, upstream: Upstream) throws {
        let expected = PipelineHello(model: model, pp: pp, stage: runner.stage.index,
                                     blockCount: runner.cache.blockCount, blockSize: runner.cache.blockSize)
        guard hello == expected else {
            throw PipelineWire.Malformed("hello \(hello) does not match this stage \(expected)")
        }
        guard let next else { return }
        let link = try PipelineLink(host: next.host, port: next.port,
                                    hello: PipelineHello(model: model, pp: pp, stage: runner.stage.index + 1,
                                                         blockCount: expected.blockCount, blockSize: expected.blockSize),
                                    stepTimeoutSeconds: stepTimeoutSeconds, connectTimeoutSeconds: connectTimeoutSeconds)
        let relay = Relay(link: link, upstream: upstream, stage: runner.stage.index + 1)
        lock.withLock {
            self.relay?.close()
            self.link?.close()
            self.link = link
            self.relay = relay
        }
        relay.start()
    }

    /// This stage's K/V for the blocks asked (and, downstream, everyone else's).
    func migrate(_ payload: [UInt8]) throws -> PipelineKV {
        let request = try PipelineMigrate(decoding: payload, blockCount: runner.cache.blockCount)
        relay?.waitIdle()  // no step in flight downstream: the link is free for the exchange
        let cache = runner.cache
        var data: [Float] = []
        data.reserveCapacity(cache.layerCount * 2 * request.blocks.count * cache.floatsPerBlock)
        for layer in 0..<cache.layerCount { data += cache.readBlocks(layer: layer, blocks: request.blocks) }
        let own = PipelineKV.Segment(firstLayer: runner.stage.firstLayer, layerCount: cache.layerCount, data: data)
        if isLast {
            return PipelineKV(segments: [own], samplers: samplers.export(request.sequences))
        }
        guard let link else { throw PipelineLink.Failure(message: "stage \(runner.stage.index) has no link to the next stage") }
        let downstream = try link.migrate(request, stage: runner.stage.index + 1, layerCount: runner.config.layerCount,
                                          floatsPerLayer: 2 * request.blocks.count * cache.floatsPerBlock)
        return PipelineKV(segments: [own] + downstream.segments, samplers: downstream.samplers)
    }

    /// Runs this stage's layers; the last stage returns the sampled tokens, the others pass the
    /// activations on (their tokens come back through the relay).
    func forward(_ payload: [UInt8]) throws -> PipelineTokens? {
        let message = try PipelineForward(decoding: payload, hiddenSize: runner.config.hiddenSize, contextLength: runner.contextLength,
                                          blockCount: runner.cache.blockCount, blockSize: runner.cache.blockSize)
        let hidden = runner.forward(hidden: message.hidden, batch: message.step.batch)
        if isLast {
            let logits = runner.logits(hidden, rows: message.step.batch.lastRows)
            return PipelineTokens(stepID: message.stepID, tokens: samplers.sample(logits, for: message.step.sequences, released: message.step.released))
        }
        guard let link, let relay else { throw PipelineLink.Failure(message: "stage \(runner.stage.index) has no link to the next stage") }
        relay.expect()
        try link.send(PipelineForward(stepID: message.stepID, step: message.step, hidden: hidden), stage: runner.stage.index + 1)
        return nil
    }
}
