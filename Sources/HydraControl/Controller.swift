import Foundation
import HydraSystem
import HydraWorker
import Logging

/// The controller (DESIGN.md §6): drives the autoscaler and the cold-start planner with real
/// time, starts and stops instances through a cluster backend, sends each request to its
/// instance and streams the tokens back, consolidates pipelines after their cold start, and
/// replaces instances that die — a request whose instance failed before it produced a token is
/// retried on another; one that had started streaming fails with a clear error.
public actor Controller {
    public struct Parameters: Sendable {
        public var maxTokens: Int
        public var temperature: Float
        public var topP: Float
        public var seed: UInt64?
        /// Tokens that end the generation (the model's end-of-sequence ids).
        public var stopIDs: [Int]

        public init(maxTokens: Int, temperature: Float = 0, topP: Float = 1, seed: UInt64? = nil, stopIDs: [Int] = []) {
            self.maxTokens = maxTokens
            self.temperature = temperature
            self.topP = topP
            self.seed = seed
            self.stopIDs = stopIDs
        }
    }

    enum Consolidation: String, Sendable { case none, running, done, failed }

    struct InstanceRecord: Sendable {
        var function: String
        var model: ServedModel
        var plan: ColdStartPlanner.Plan
        var backend: BackendInstance
        var startedSeconds: Double
        /// How long its first request had waited when it was planned (part of the predicted TTFT).
        var queueSeconds: Double
        var firstTokenSeconds: Double?
        var firstTokenUnixSeconds: Double?
        var consolidation = Consolidation.none
        /// The link stage 0 holds while consolidation fetches the rest of the model.
        var consolidationReservation: Int?
        /// Each stage's start-up timeline (event → seconds since its process started), read at the first token.
        var timelines: [[String: Double]] = []

        /// What `/v1/instances` and the `hydra_instances` gauge call it.
        var state: String {
            if firstTokenSeconds == nil { return "starting" }
            switch consolidation {
            case .running: return "consolidating"
            case .done: return "consolidated"
            case .none, .failed: return "ready"
            }
        }

        static let states = ["starting", "ready", "consolidating", "consolidated"]
    }

    struct Dispatch: Sendable {
        var instance: Int
        var backend: BackendInstance
        var cold: Bool
        var endpoint: String { backend.endpoint }
    }

    /// function name → its model.
    public nonisolated let models: [String: ServedModel]
    public nonisolated let metrics: Metrics
    let eventLog: InstanceEventLog
    /// Attempts a request gets when instances fail under it before it produced a token.
    public let maxAttempts: Int
    let backend: any ClusterBackend
    let logger: Logger
    var scaler: Autoscaler
    private var planner: ColdStartPlanner
    var instances: [Int: InstanceRecord] = [:]
    /// A request waiting for an instance: its function, when it first arrived, who to tell.
    struct Waiter {
        var function: String
        var since: Double
        var continuation: CheckedContinuation<Dispatch, Error>
    }

    private var waiting: [Int: Waiter] = [:]
    /// Requests the autoscaler sent to an instance whose start is not carried out yet.
    private var parked: [Int: [(request: Int, entry: Waiter, cold: Bool)]] = [:]
    private var nextRequest = 0
    private var monitor: Task<Void, Never>?
    /// The latest cold starts, oldest first (bounded).
    var coldStarts: [ColdStart] = []
    static let coldStartHistory = 1000
    private let healing = LockedBox(false)

    public init(models: [ServedModel], backend: any ClusterBackend, constants: ColdStartPlanner.Constants = .init(),
                queueTimeoutSeconds: Double = 300, maxAttempts: Int = 3, eventLog: InstanceEventLog = InstanceEventLog(),
                logger: Logger = Logger(label: "hydra.controller")) {
        var byFunction: [String: ServedModel] = [:]
        var scaler = Autoscaler(queueTimeoutSeconds: queueTimeoutSeconds)
        for model in models {
            for function in model.functionNames {
                byFunction[function] = model
                scaler.register(function, limits: .init(maxConcurrency: model.settings.maxConcurrency, maxInstances: model.settings.maxInstances,
                                                        keepAliveSeconds: model.settings.keepAliveSeconds))
            }
        }
        self.models = byFunction
        self.scaler = scaler
        self.backend = backend
        self.planner = ColdStartPlanner(nodes: backend.nodes, constants: constants)
        self.maxAttempts = maxAttempts
        self.logger = logger
        self.eventLog = eventLog
        metrics = Metrics()
    }

    static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    /// Starts the monitor: keep-alive and queue time-outs, dead workers, dead caches (every 100 ms).
    public func start() {
        guard monitor == nil else { return }
        monitor = Task { [weak self] in
            var ticks = 0
            while !Task.isCancelled, let self {
                await self.monitorTick(heal: ticks % 10 == 0)
                ticks += 1
                try? await Task.sleep(nanoseconds: 100_000_000)
            }
        }
    }

    /// Stops every instance and the backend.
    public func shutdown() async {
        monitor?.cancel()
        monitor = nil
        for (id, record) in instances { logEvent(id, record, .stopped) }
        for entry in waiting.values { entry.continuation.resume(throwing: ControlError(status: 503, "the server is shutting down")) }
        waiting = [:]
        let backend = backend
        await offPool { backend.shutdown() }
    }

    // MARK: Requests

    /// Generates for `promptIDs` on an instance of `function`; the tokens stream back as they
    /// come. Ending the stream early (the client went away) cancels the request in the worker.
    public nonisolated func generate(function: String, promptIDs: [Int], parameters: Parameters) -> AsyncThrowingStream<Token, Error> {
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: Token.self)
        let hangUp = LockedBox(false)
        let task = Task { await self.run(function: function, promptIDs: promptIDs, parameters: parameters, events: continuation, hangUp: hangUp) }
        continuation.onTermination = { reason in
            if case .cancelled = reason { hangUp.value = true; task.cancel() }
        }
        return stream
    }

    /// One generated token, and whether its request waited for a cold start.
    public struct Token: Sendable {
        public var token: Int
        public var finishReason: String?
        public var cold: Bool
    }

    /// What a request saw: counted under `hydra_requests_total` and the latency histograms.
    final class Progress: @unchecked Sendable {
        let lock = NSLock()
        var delivered = 0
        var firstTokenSeconds: Double?
    }

    private func run(function: String, promptIDs: [Int], parameters: Parameters,
                     events: AsyncThrowingStream<Token, Error>.Continuation, hangUp: LockedBox<Bool>) async {
        let started = Self.now()
        let progress = Progress()
        var attempt = 0
        func finish(_ outcome: String, _ error: ControlError? = nil) {
            metrics.increment("hydra_requests_total", ["model": function, "outcome": outcome])
            if let error { events.finish(throwing: error) } else { events.finish() }
        }
        while true {
            attempt += 1
            let id = nextRequest
            nextRequest += 1
            let dispatch: Dispatch
            do {
                dispatch = try await withTaskCancellationHandler {
                    try await withCheckedThrowingContinuation { continuation in
                        waiting[id] = Waiter(function: function, since: started, continuation: continuation)
                        apply(scaler.arrive(request: id, function: function, now: Self.now(), retry: attempt > 1, since: started))
                    }
                } onCancel: {
                    Task { await self.withdraw(id) }
                }
            } catch let error as ControlError {
                return finish(error.status < 500 ? "client_error" : "failed", error)
            } catch {
                return finish("cancelled")
            }

            let endpoint = dispatch.endpoint
            let (backend, instance) = (backend, dispatch.backend)
            let result: Result<WorkerClient.Generation, Error> = await offPool {
                Result {
                    try WorkerClient(endpoint: endpoint).stream(
                        promptIDs: promptIDs, maxTokens: parameters.maxTokens, temperature: parameters.temperature, topP: parameters.topP,
                        seed: parameters.seed, stopIDs: parameters.stopIDs, connectTimeoutSeconds: 60,
                        stillStarting: { backend.isAlive(instance, consolidated: false) }) { event in
                        guard !hangUp.value else { return false }
                        let first = progress.lock.withLock { () -> Bool in
                            progress.delivered += 1
                            guard progress.firstTokenSeconds == nil else { return false }
                            progress.firstTokenSeconds = Self.now()
                            return true
                        }
                        if first { Task { await self.firstToken(instance: dispatch.instance) } }
                        events.yield(Token(token: event.token, finishReason: event.finishReason, cold: dispatch.cold))
                        return true
                    }
                }
            }
            apply(scaler.finished(request: id, now: Self.now()))
            let (delivered, firstToken) = progress.lock.withLock { (progress.delivered, progress.firstTokenSeconds) }
            switch result {
            case .success(let generation):
                // Hung up before the last token: the client went away (or a stop string ended it early).
                if hangUp.value && generation.finishReason == nil { return finish("cancelled") }
                if let firstToken {
                    metrics.observe("hydra_ttft_seconds", ["model": function, "start": dispatch.cold ? "cold" : "warm"], firstToken - started)
                    if generation.tokens.count > 1 {
                        metrics.observe("hydra_tpot_seconds", ["model": function], (Self.now() - firstToken) / Double(generation.tokens.count - 1),
                                        buckets: Metrics.tpotBuckets)
                    }
                }
                return finish("ok")
            case .failure(let error):
                if hangUp.value { return finish("cancelled") }
                let status = (error as? WorkerClient.Failure)?.status
                if let status, (400..<500).contains(status) {
                    let message = (error as? WorkerClient.Failure)?.message ?? "\(error)"
                    return finish("client_error", ControlError(status: status, message))
                }
                await instanceFailed(dispatch.instance, error: error, status: status)
                guard delivered == 0, attempt < maxAttempts else {
                    let message = delivered == 0
                        ? "'\(function)' failed on \(attempt) instances in turn; the last said: \(error)"
                        : "the instance serving this request failed after \(delivered) tokens: \(error)"
                    return finish("failed", ControlError(status: 502, message))
                }
                metrics.increment("hydra_retries_total", ["model": function])
                logger.warning("retrying a request of \(function) on another instance: \(error)")
            }
        }
    }

    private func withdraw(_ request: Int) {
        scaler.withdraw(request: request)
        waiting.removeValue(forKey: request)?.continuation.resume(throwing: CancellationError())
        refreshGauges()
    }

    // MARK: Actions

    private func apply(_ actions: [Autoscaler.Action]) {
        for action in actions {
            switch action {
            case .start(let id, let function, let queueSeconds):
                startInstance(id, function: function, queueSeconds: queueSeconds)
            case .dispatch(let request, let id, let cold):
                guard let entry = waiting.removeValue(forKey: request) else {
                    apply(scaler.finished(request: request, now: Self.now()))  // withdrawn meanwhile
                    continue
                }
                if let record = instances[id] {
                    entry.continuation.resume(returning: Dispatch(instance: id, backend: record.backend, cold: cold))
                } else if scaler.instances[id] != nil {
                    // Its start is still to be carried out (later in an enclosing action list).
                    parked[id, default: []].append((request, entry, cold))
                } else {
                    // Its instance could not be started: the request waits for the next one.
                    requeue(request, entry)
                }
            case .stop(let id):
                if let record = instances.removeValue(forKey: id) {
                    logger.info("stopping instance \(id) of \(record.function): idle for its keep-alive")
                    logEvent(id, record, .stopped)
                    release(record)
                }
            case .fail(let request, let error):
                waiting.removeValue(forKey: request)?.continuation.resume(throwing: error)
            }
        }
        refreshGauges()
    }

    /// A request whose instance could not be started goes back to the head of its queue.
    private func requeue(_ request: Int, _ entry: Waiter) {
        waiting[request] = entry
        apply(scaler.finished(request: request, now: Self.now()))
        apply(scaler.arrive(request: request, function: entry.function, now: Self.now(), retry: true, since: entry.since))
    }

    /// Requests dispatched to `id` before its start was carried out: sent now, or requeued.
    private func releaseParked(_ id: Int) {
        guard let requests = parked.removeValue(forKey: id) else { return }
        for (request, entry, cold) in requests {
            if let record = instances[id] {
                entry.continuation.resume(returning: Dispatch(instance: id, backend: record.backend, cold: cold))
            } else {
                requeue(request, entry)
            }
        }
    }

    private func startInstance(_ id: Int, function: String, queueSeconds: Double) {
        defer { releaseParked(id) }
        guard let model = models[function] else { return }
        let now = Self.now()
        guard let plan = planner.plan(model.plannerModel(function), queueSeconds: queueSeconds, now: now) else {
            logger.warning("no node has the device memory for \(function) now: its requests wait")
            return apply(scaler.lost(instance: id, now: now, backOff: true))
        }
        do {
            let started = try backend.start(entry: model.entryName, plan: plan, kvCacheMiB: model.settings.kvCacheMiB, kvDType: model.settings.kvDType)
            instances[id] = InstanceRecord(function: function, model: model, plan: plan, backend: started, startedSeconds: now, queueSeconds: queueSeconds)
            logEvent(id, instances[id]!, .started)
            metrics.increment("hydra_cold_starts_total", ["model": function, "pp": String(plan.pp)])
            metrics.increment("hydra_fetched_bytes_total", ["model": function], by: Double(plan.fetchBytes.reduce(0, +)))
            logger.info("cold-starting \(function) as instance \(id): pp=\(plan.pp) on \(plan.nodes.joined(separator: ", ")), predicted TTFT \(String(format: "%.2f", plan.predictedTTFTSeconds)) s (SLO \(model.settings.ttftSLOSeconds) s)")
        } catch {
            logger.error("could not start \(function): \(error)")
            returnResources(plan: plan, model: model, consolidated: false)
            apply(scaler.lost(instance: id, now: now, backOff: true))
        }
    }

    private func firstToken(instance id: Int) {
        guard var record = instances[id], record.firstTokenSeconds == nil else { return }
        let now = Self.now()
        record.firstTokenSeconds = now
        record.firstTokenUnixSeconds = InstanceEventLog.now()
        // The stages have fetched their bytes: their links are free for the next cold start,
        // and their nodes' caches hold those chunks.
        record.plan.reservations.forEach { planner.release($0) }
        for (stage, node) in record.plan.nodes.enumerated() { planner.noteCached(record.model.stageChunks[record.plan.pp]?[stage] ?? [], on: node) }
        coldStarts.append(ColdStart(instance: id, model: record.function, pp: record.plan.pp, nodes: record.plan.nodes,
                                    predictedSeconds: record.plan.predictedTTFTSeconds, queueSeconds: record.queueSeconds,
                                    measuredSeconds: now - record.startedSeconds + record.queueSeconds, meetsSLO: record.plan.meetsSLO,
                                    sloSeconds: record.model.settings.ttftSLOSeconds, fetchedBytes: record.plan.fetchBytes.reduce(0, +)))
        if coldStarts.count > Self.coldStartHistory { coldStarts.removeFirst(coldStarts.count - Self.coldStartHistory) }
        let consolidate = record.plan.pp > 1 && record.plan.stage0FullMemory
        if consolidate {
            record.consolidation = .running
            // Stage 0 now fetches the rest of the model over its node's link.
            let node = record.plan.nodes[0]
            let whole = record.model.chunkBytes
            let missing = whole.filter { !(planner.cached[node] ?? []).contains($0.key) }.values.reduce(0, +)
            record.consolidationReservation = planner.reserve(node: node, bytes: missing, now: now)
            metrics.increment("hydra_fetched_bytes_total", ["model": record.function], by: Double(missing))
        }
        instances[id] = record
        apply(scaler.ready(instance: id, now: now))
        if consolidate { scaler.pin(instance: id, true, now: now) }
        let endpoints = record.backend.endpoints
        Task {
            // Read the stages' timelines before consolidation retires them.
            let timelines = (try? await offPool { try endpoints.map { try WorkerClient(endpoint: $0).timeline() } }) ?? []
            self.recordTimelines(id, timelines)
            if consolidate { await self.consolidate(id, endpoint: endpoints[0]) }
        }
    }

    private func recordTimelines(_ id: Int, _ timelines: [[String: Double]]) {
        guard let record = instances[id] else { return }
        instances[id]?.timelines = timelines
        logEvent(id, record, .firstToken, at: record.firstTokenUnixSeconds ?? InstanceEventLog.now(), timelines: timelines)
    }

    /// Consolidates a pipeline into its stage 0 (DESIGN.md §1.3); the other stages exit and
    /// their nodes' memory returns to the planner.
    private func consolidate(_ id: Int, endpoint: String) async {
        let response = await offPool {
            Result { try HTTPClient(timeoutSeconds: 600).post(endpoint + "/v1/consolidate", json: Array("{\"mode\":\"auto\"}".utf8)) }
        }
        guard var record = instances[id] else { return }
        if let reservation = record.consolidationReservation { planner.release(reservation) }
        record.consolidationReservation = nil
        let outcome: String
        if case .success(let answer) = response, answer.status == 200 {
            record.consolidation = .done
            planner.noteCached(Array(record.model.chunkBytes.keys), on: record.plan.nodes[0])
            outcome = "ok"
            let stageBytes = record.model.stageBytes[record.plan.pp]!
            for (node, bytes) in zip(record.plan.nodes.dropFirst(), stageBytes.dropFirst()) { planner.returnMemory(bytes, on: node) }
            logger.info("consolidated instance \(id) of \(record.function) into one worker")
            logEvent(id, record, .consolidated)
        } else {
            record.consolidation = .failed
            outcome = "failed"
            let detail: String
            switch response {
            case .success(let answer): detail = "HTTP \(answer.status): \(String(decoding: answer.body.prefix(300), as: UTF8.self))"
            case .failure(let error): detail = "\(error)"
            }
            logger.warning("consolidating instance \(id) of \(record.function) failed (it keeps serving as a pipeline): \(detail)")
            logEvent(id, record, .consolidationFailed)
        }
        instances[id] = record
        scaler.pin(instance: id, false, now: Self.now())
        metrics.increment("hydra_consolidations_total", ["model": record.function, "outcome": outcome])
        refreshGauges()
    }

    /// A request failed on `id`: if the instance is gone (or says it failed to start), replace it.
    private func instanceFailed(_ id: Int, error: Error, status: Int?) async {
        guard let record = instances[id] else { return }
        let alive = backend.isAlive(record.backend, consolidated: record.consolidation != .none)
        guard !alive || status == 503 else { return }
        lose(id, reason: alive ? "it failed to start: \(error)" : "its workers died")
    }

    private func lose(_ id: Int, reason: String) {
        guard let record = instances.removeValue(forKey: id) else { return }
        logger.warning("instance \(id) of \(record.function) is lost (\(reason)); replacing it")
        logEvent(id, record, .lost)
        release(record)
        apply(scaler.lost(instance: id, now: Self.now()))
    }

    /// Stops the workers (off the pool: stopping waits for them) and returns their memory and links.
    private func release(_ record: InstanceRecord) {
        // Its stages' reservations end with their fetches, at the first token.
        if record.firstTokenSeconds == nil { record.plan.reservations.forEach { planner.release($0) } }
        if let reservation = record.consolidationReservation { planner.release(reservation) }
        returnResources(plan: record.plan, model: record.model, consolidated: record.consolidation == .done)
        let backend = backend
        let instance = record.backend
        Thread.detachNewThread { backend.stop(instance) }
    }

    private func returnResources(plan: ColdStartPlanner.Plan, model: ServedModel, consolidated: Bool) {
        let stageBytes = model.stageBytes[plan.pp]!
        for (stage, node) in plan.nodes.enumerated() where stage == 0 || !consolidated {
            planner.returnMemory(stage == 0 && plan.stage0FullMemory ? model.wholeBytes : stageBytes[stage], on: node)
        }
    }

    // MARK: Monitoring

    private func monitorTick(heal: Bool) {
        apply(scaler.tick(now: Self.now()))
        for (id, record) in instances where !backend.isAlive(record.backend, consolidated: record.consolidation != .none) {
            lose(id, reason: "its workers exited")
        }
        if heal && !healing.value {
            healing.value = true
            let (backend, logger, healing) = (backend, logger, healing)
            Thread.detachNewThread {
                for restarted in backend.heal() { logger.warning("\(restarted) had died: restarted it") }
                let cached = backend.cachedChunks()
                Task { await self.updateCaches(cached) }
                healing.value = false
            }
        }
    }

    /// What the node caches hold now, as their status says (it also drops what they evicted).
    private func updateCaches(_ cached: [String: Set<String>]) {
        for (node, digests) in cached { planner.setCached(digests, on: node) }
    }

    private func refreshGauges() {
        for function in scaler.functions {
            metrics.set("hydra_queue_depth", ["model": function], to: Double(scaler.queueDepth(function)))
            let states = instances.values.filter { $0.function == function }.map(\.state)
            for state in InstanceRecord.states {
                let count = states.filter { $0 == state }.count
                metrics.set("hydra_instances", ["model": function, "state": state], to: Double(count))
            }
        }
    }
}
