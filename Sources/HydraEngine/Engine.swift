import HydraFormat

/// The scheduler: sequences, paged KV blocks, continuous batching. Each `step()` is
/// schedule → run → postprocess (nano-vllm's shape): running sequences decode one token each,
/// waiting prompts are prefilled in the same batch while blocks and the token budget allow.
/// The run happens in a `StepExecutor`: this process (pp = 1) or a pipeline of stages.
public final class Engine: @unchecked Sendable {
    public struct Request: Sendable {
        public var prompt: [Int]
        public var maxTokens: Int
        public var sampling: SamplingParameters
        public var stopTokens: Set<Int>

        public init(prompt: [Int], maxTokens: Int, sampling: SamplingParameters = .greedy, stopTokens: Set<Int> = []) {
            self.prompt = prompt
            self.maxTokens = maxTokens
            self.sampling = sampling
            self.stopTokens = stopTokens
        }
    }

    public enum FinishReason: String, Sendable { case stop, length }

    /// What one step produced for one sequence.
    public struct Event: Sendable {
        public let sequence: Int
        public let token: Int
        public let finished: FinishReason?
    }

    final class Sequence {
        let id: Int
        let request: Request
        var tokens: [Int]        // prompt + generated
        var cached = 0           // tokens whose K/V are in the cache
        var blocks: [Int] = []
        /// In a micro-batch that has been dispatched and not collected yet.
        var inFlight = false
        /// Cancelled while in flight: dropped when its micro-batch comes back.
        var cancelled = false
        var generated: [Int] { Array(tokens[request.prompt.count...]) }
        /// Logits of the last prompt position (kept for tests and --logits-out).
        var promptLogits: [Float]?

        init(id: Int, request: Request) {
            self.id = id
            self.request = request
            tokens = request.prompt
        }
    }

    public private(set) var executor: any StepExecutor
    /// While false, waiting prompts stay queued (a pipeline draining before consolidation).
    public var admitsNewSequences = true
    /// While true, no new micro-batch is dispatched: the pipeline empties (consolidation).
    public var holdsDispatch = false
    /// Dispatched micro-batches not collected yet, oldest first.
    private var inFlight: [[Sequence]] = []
    public var inFlightCount: Int { inFlight.count }
    /// At most this many tokens in one forward pass (bounds activation memory).
    public let maxBatchTokens: Int
    private var waiting: [Sequence] = []
    private var running: [Sequence] = []
    private var finished: [Int: Sequence] = [:]
    private var released: [Int] = []
    private var nextID = 0

    public init(executor: any StepExecutor, maxBatchTokens: Int = 2048) {
        self.executor = executor
        self.maxBatchTokens = maxBatchTokens
    }

    /// The whole model in this process.
    public convenience init(runner: StageRunner, maxBatchTokens: Int = 2048) throws {
        self.init(executor: try LocalExecutor(runner: runner), maxBatchTokens: maxBatchTokens)
    }

    public var contextLength: Int { executor.contextLength }

    public var hasWork: Bool { !waiting.isEmpty || !running.isEmpty }

    /// Queues a request; returns its sequence id. Rejects what can never run.
    @discardableResult
    public func add(_ request: Request) throws -> Int {
        try request.sampling.validate()
        guard !request.prompt.isEmpty else { throw EngineError("the prompt is empty") }
        guard request.maxTokens >= 1 else { throw EngineError("max_tokens must be at least 1") }
        let context = executor.contextLength
        guard request.prompt.count < context else {
            throw EngineError("prompt of \(request.prompt.count) tokens does not fit the context of \(context) tokens")
        }
        guard request.prompt.count <= maxBatchTokens else {
            throw EngineError("prompt of \(request.prompt.count) tokens exceeds the batch limit of \(maxBatchTokens) tokens")
        }
        if let bad = request.prompt.first(where: { $0 < 0 || $0 >= executor.vocabSize }) {
            throw EngineError("token id \(bad) is outside the vocabulary (\(executor.vocabSize) tokens)")
        }
        let sequence = Sequence(id: nextID, request: request)
        nextID += 1
        waiting.append(sequence)
        return sequence.id
    }

    /// The generated tokens and prompt logits of a finished sequence.
    public func result(_ id: Int) -> (tokens: [Int], promptLogits: [Float]?)? {
        finished[id].map { ($0.generated, $0.promptLogits.flatMap { $0.isEmpty ? nil : $0 }) }
    }

    private func blocksNeeded(_ sequence: Sequence, upTo length: Int) -> Int {
        let size = executor.blockSize
        return (length + size - 1) / size - sequence.blocks.count
    }

    private func grow(_ sequence: Sequence, to length: Int) -> Bool {
        let needed = blocksNeeded(sequence, upTo: length)
        guard needed > 0 else { return true }
        guard let blocks = executor.blocks.allocate(needed) else { return false }
        sequence.blocks += blocks
        return true
    }

    private func release(_ sequence: Sequence) {
        executor.blocks.release(sequence.blocks)
        sequence.blocks = []
        sequence.cached = 0
    }

    /// Runs one step; returns one event per sequence that produced a token. With a pipelined
    /// executor, first fills the pipeline with micro-batches (each running sequence in at most
    /// one), then collects the oldest. When the executor fails (a pipeline stage died), every
    /// sequence is aborted and the error rethrown.
    public func step() throws -> [Event] {
        guard let pipelined = executor as? any PipelinedExecutor, pipelined.depth > 1 else {
            let scheduled = schedule(share: 1)
            guard !scheduled.isEmpty else { return [] }
            let step = makeStep(scheduled)
            let output = try aborting { try executor.execute(step) }
            return postprocess(scheduled, output)
        }
        while !holdsDispatch && inFlight.count < pipelined.depth {
            let scheduled = schedule(share: pipelined.depth - inFlight.count)
            if scheduled.isEmpty { break }
            let step = makeStep(scheduled)
            try aborting { try pipelined.dispatch(step) }
            scheduled.forEach { $0.inFlight = true }
            inFlight.append(scheduled)
        }
        guard !inFlight.isEmpty else { return [] }
        let output = try aborting { try pipelined.collect() }
        let batch = inFlight.removeFirst()
        batch.forEach { $0.inFlight = false }
        return postprocess(batch, output)
    }

    private func aborting<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch {
            abortAll()
            throw error
        }
    }

    /// Picks a micro-batch: about 1/`share` of the running sequences not in flight (all of them
    /// when `share` is 1), preempting the newest idle sequence when blocks run out, then admits
    /// waiting prompts (and preempted sequences) while they fit.
    private func schedule(share: Int) -> [Sequence] {
        var scheduled: [Sequence] = []
        var budget = maxBatchTokens
        let idle = running.filter { !$0.inFlight }.count
        let quota = share <= 1 ? idle : (idle + share - 1) / share
        var index = 0
        while index < running.count && scheduled.count < quota {
            let sequence = running[index]
            if sequence.inFlight { index += 1; continue }
            if grow(sequence, to: sequence.tokens.count) {
                scheduled.append(sequence)
                budget -= 1
                index += 1
            } else if let victim = running.lastIndex(where: { !$0.inFlight }), victim > index {
                let preempted = running.remove(at: victim)
                release(preempted)
                waiting.insert(preempted, at: 0)  // recomputed from its tokens when blocks free up
            } else {
                running.remove(at: index)
                release(sequence)
                waiting.insert(sequence, at: 0)
            }
        }
        while admitsNewSequences, let next = waiting.first, next.tokens.count <= budget, grow(next, to: next.tokens.count) {
            waiting.removeFirst()
            running.append(next)
            scheduled.append(next)
            budget -= next.tokens.count - next.cached
        }
        return scheduled
    }

    private func makeStep(_ scheduled: [Sequence]) -> ScheduledStep {
        var tokens: [Int] = []
        var sequences: [Batch.Sequence] = []
        for sequence in scheduled {
            let new = Array(sequence.tokens[sequence.cached...])
            sequences.append(Batch.Sequence(firstRow: tokens.count, tokenCount: new.count, startPosition: sequence.cached,
                                            blockTable: sequence.blocks))
            tokens += new
        }
        defer { released = [] }
        return ScheduledStep(
            tokens: tokens, batch: Batch(sequences: sequences),
            sequences: scheduled.map { .init(id: $0.id, sampling: $0.request.sampling, wantsPromptLogits: $0.promptLogits == nil) },
            released: released)
    }

    private func postprocess(_ scheduled: [Sequence], _ output: StepOutput) -> [Event] {
        var events: [Event] = []
        for (row, sequence) in scheduled.enumerated() {
            if sequence.cancelled {
                running.removeAll { $0 === sequence }
                release(sequence)
                released.append(sequence.id)
                continue
            }
            sequence.cached = sequence.tokens.count
            if sequence.promptLogits == nil { sequence.promptLogits = output.promptLogits[row] ?? [] }
            let token = output.tokens[row]
            sequence.tokens.append(token)
            var reason: FinishReason?
            if sequence.request.stopTokens.contains(token) { reason = .stop }
            else if sequence.generated.count >= sequence.request.maxTokens || sequence.tokens.count >= executor.contextLength { reason = .length }
            if reason != nil {
                running.removeAll { $0 === sequence }
                release(sequence)
                released.append(sequence.id)
                finished[sequence.id] = sequence
            }
            events.append(Event(sequence: sequence.id, token: token, finished: reason))
        }
        return events
    }

    /// Drops every waiting and running sequence and frees their blocks (after a failed step).
    public func abortAll() {
        for sequence in running { release(sequence); released.append(sequence.id) }
        released += waiting.map(\.id)
        running = []
        waiting = []
        inFlight = []
    }

    /// Cancels one sequence (its client went away): frees its blocks; no more events for it.
    public func cancel(_ id: Int) {
        if let sequence = running.first(where: { $0.id == id }) {
            if sequence.inFlight { sequence.cancelled = true; return }  // dropped when its micro-batch returns
            release(sequence)
            running.removeAll { $0 === sequence }
        }
        waiting.removeAll { $0.id == id }
        released.append(id)
    }

    /// Nothing can run although prompts wait: they do not fit the KV cache.
    public var isStalled: Bool { admitsNewSequences && running.isEmpty && !waiting.isEmpty && inFlight.isEmpty }

    /// Sequences with K/V in the cache: their ids and block tables (what a migration moves).
    public var liveSequences: [(id: Int, blocks: [Int])] { running.map { ($0.id, $0.blocks) } }

    /// Sequences not finished yet, running or waiting.
    public var pendingIDs: [Int] { running.map(\.id) + waiting.map(\.id) }

    /// The most tokens any running sequence may still generate.
    public var maxRemainingTokens: Int {
        running.map { min($0.request.maxTokens - $0.generated.count, executor.contextLength - $0.tokens.count) }.max() ?? 0
    }

    /// Moves the engine onto another executor between steps (consolidation). Block ids must
    /// mean the same in both: they share one block manager.
    public func replaceExecutor(_ new: any StepExecutor) {
        precondition(new.blocks === executor.blocks, "a replacement executor must keep the block manager")
        executor = new
    }

    /// Runs requests to completion, calling `onEvent` for every token; returns each request's tokens.
    public func generate(_ requests: [Request], onEvent: (Event) -> Void = { _ in }) throws -> [[Int]] {
        let ids = try requests.map { try add($0) }
        while hasWork {
            let events = try step()
            if events.isEmpty && hasWork {
                throw EngineError("the KV cache cannot hold the next sequence (\(executor.blocks.capacity * executor.blockSize) tokens in all)")
            }
            events.forEach(onEvent)
        }
        return ids.map { finished[$0]!.generated }
    }
}
