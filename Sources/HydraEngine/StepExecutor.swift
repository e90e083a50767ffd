/// One scheduled forward pass: every scheduled sequence's new tokens stacked, the batch layout
/// (positions and block tables — block ids are valid in every stage of a pipeline), and what the
/// sampler needs to know about each sequence.
public struct ScheduledStep: Sendable {
    public struct Sequence: Sendable, Equatable {
        public var id: Int
        public var sampling: SamplingParameters
        /// True on the sequence's first step: the prompt's last-position logits are wanted.
        public var wantsPromptLogits: Bool

        public init(id: Int, sampling: SamplingParameters, wantsPromptLogits: Bool) {
            self.id = id
            self.sampling = sampling
            self.wantsPromptLogits = wantsPromptLogits
        }
    }

    public var tokens: [Int]
    public var batch: Batch
    /// Parallel to `batch.sequences`.
    public var sequences: [Sequence]
    /// Sequences finished since the previous step: their sampler state can be dropped.
    public var released: [Int]

    public init(tokens: [Int], batch: Batch, sequences: [Sequence], released: [Int]) {
        self.tokens = tokens
        self.batch = batch
        self.sequences = sequences
        self.released = released
    }
}

/// What a step produced: each sequence's next token, and (where asked and available) the
/// logits of its prompt's last position.
public struct StepOutput: Sendable {
    public var tokens: [Int]
    public var promptLogits: [[Float]?]

    public init(tokens: [Int], promptLogits: [[Float]?]) {
        self.tokens = tokens
        self.promptLogits = promptLogits
    }
}

/// Where an engine's steps run: the whole model in this process, or a pipeline of stages.
/// The engine schedules; the executor owns the KV blocks' storage and the samplers.
public protocol StepExecutor: AnyObject {
    /// Allocates block ids for every stage.
    var blocks: BlockManager { get }
    var blockSize: Int { get }
    /// The longest sequence (prompt + generated) that fits.
    var contextLength: Int { get }
    var vocabSize: Int { get }
    func execute(_ step: ScheduledStep) throws -> StepOutput
}

/// An executor whose steps can overlap: up to `depth` micro-batches in flight at once (a
/// pipeline keeps every stage busy with a different micro-batch). Outputs come back in dispatch
/// order.
public protocol PipelinedExecutor: StepExecutor {
    var depth: Int { get }
    func dispatch(_ step: ScheduledStep) throws
    /// The output of the oldest dispatched step not yet collected.
    func collect() throws -> StepOutput
}

/// Samplers of live sequences, keyed by sequence id: the state a sampling stage keeps.
public struct SamplerTable: Sendable {
    private var samplers: [Int: Sampler] = [:]

    public init() {}

    /// Samples each sequence's row of `logits` (row i is `sequences[i]`).
    public mutating func sample(_ logits: Matrix, for sequences: [ScheduledStep.Sequence], released: [Int]) -> [Int] {
        for id in released { samplers[id] = nil }
        return sequences.enumerated().map { row, sequence in
            var sampler = samplers[sequence.id] ?? Sampler(sequence.sampling)
            let token = sampler.sample(logits.row(row))
            samplers[sequence.id] = sampler
            return token
        }
    }

    public var count: Int { samplers.count }

    /// One live sequence's sampler, as it travels between workers.
    public struct State: Sendable, Equatable {
        public var id: Int
        public var sampling: SamplingParameters
        public var generatorState: UInt64

        public init(id: Int, sampling: SamplingParameters, generatorState: UInt64) {
            self.id = id
            self.sampling = sampling
            self.generatorState = generatorState
        }
    }

    public func export(_ ids: [Int]) -> [State] {
        ids.compactMap { id in samplers[id].map { State(id: id, sampling: $0.parameters, generatorState: $0.generator.state) } }
    }

    public mutating func restore(_ states: [State]) {
        for state in states { samplers[state.id] = Sampler(state.sampling, generatorState: state.generatorState) }
    }
}

/// The whole model in this process (pp = 1).
public final class LocalExecutor: StepExecutor {
    public let runner: StageRunner
    private var samplers: SamplerTable

    /// `samplers`: the state of sequences taken over from a pipeline (consolidation).
    public init(runner: StageRunner, samplers: SamplerTable = SamplerTable()) throws {
        self.samplers = samplers
        guard runner.stage.embed && runner.stage.head else {
            throw EngineError("running alone needs the whole model (pp = 1); stage \(runner.stage.index) has layers \(runner.stage.firstLayer)..<\(runner.stage.endLayer)")
        }
        self.runner = runner
    }

    public var blocks: BlockManager { runner.cache.blocks }
    public var blockSize: Int { runner.cache.blockSize }
    public var contextLength: Int { runner.contextLength }
    public var vocabSize: Int { runner.config.vocabSize }

    public func execute(_ step: ScheduledStep) throws -> StepOutput {
        let hidden = runner.forward(tokens: step.tokens, batch: step.batch)
        let logits = runner.logits(hidden, rows: step.batch.lastRows)
        let tokens = samplers.sample(logits, for: step.sequences, released: step.released)
        let promptLogits = step.sequences.enumerated().map { row, sequence in sequence.wantsPromptLogits ? Array(logits.row(row)) : nil }
        return StepOutput(tokens: tokens, promptLogits: promptLogits)
    }
}
