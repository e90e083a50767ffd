/// The controller's scaling logic (DESIGN.md §6): per-function FIFO queues, instances and their
/// load; decides when to start an instance, which instance takes a request, and when an idle
/// one is stopped (keep-alive, scale to zero). A pure state machine: every event takes the time
/// and returns the actions for the caller to carry out.
///
/// An instance takes requests from the moment it is started — they wait in the worker while it
/// cold-starts, which is the cold start being served — up to its concurrency. Requests beyond
/// every instance's concurrency queue; a queue no instance will drain starts one more.
public struct Autoscaler: Sendable {
    public struct Limits: Sendable, Equatable {
        public var maxConcurrency: Int
        public var maxInstances: Int
        public var keepAliveSeconds: Double

        public init(maxConcurrency: Int, maxInstances: Int, keepAliveSeconds: Double) {
            precondition(maxConcurrency >= 1 && maxInstances >= 1 && keepAliveSeconds >= 0)
            self.maxConcurrency = maxConcurrency
            self.maxInstances = maxInstances
            self.keepAliveSeconds = keepAliveSeconds
        }
    }

    public enum Phase: String, Sendable {
        /// Started; its first token has not come yet.
        case starting
        case ready
    }

    public struct Instance: Sendable, Equatable {
        public let id: Int
        public let function: String
        public var phase: Phase
        public var inFlight: Int
        /// When the last request finished (or when it started): keep-alive counts from here.
        public var idleSinceSeconds: Double
        /// Kept through keep-alive expiry (while it consolidates).
        public var pinned = false
    }

    public enum Action: Sendable, Equatable {
        /// Start instance `instance` of `function`; `queueSeconds` is how long its oldest request has waited.
        case start(instance: Int, function: String, queueSeconds: Double)
        /// Send `request` to `instance`; `cold` when the instance is still starting.
        case dispatch(request: Int, instance: Int, cold: Bool)
        case stop(instance: Int)
        case fail(request: Int, ControlError)
    }

    struct Waiting: Sendable {
        var request: Int
        var arrivedSeconds: Double
    }

    /// A request waiting longer than this fails (503) rather than waiting forever.
    public var queueTimeoutSeconds: Double
    /// Requests a function's queue holds at most; more are refused (429).
    public var queueLimit: Int
    /// After a start that could not be placed, the next try waits this long.
    public var retryStartSeconds: Double

    private var limits: [String: Limits] = [:]
    private var queues: [String: [Waiting]] = [:]
    public private(set) var instances: [Int: Instance] = [:]
    /// request → the instance running it.
    private var running: [Int: Int] = [:]
    private var noStartBefore: [String: Double] = [:]
    private var nextInstance = 0

    public init(queueTimeoutSeconds: Double = 300, queueLimit: Int = 1024, retryStartSeconds: Double = 1) {
        self.queueTimeoutSeconds = queueTimeoutSeconds
        self.queueLimit = queueLimit
        self.retryStartSeconds = retryStartSeconds
    }

    public mutating func register(_ function: String, limits: Limits) {
        self.limits[function] = limits
        queues[function, default: []] = queues[function] ?? []
    }

    public func queueDepth(_ function: String) -> Int { queues[function]?.count ?? 0 }
    public func instances(of function: String) -> [Instance] { instances.values.filter { $0.function == function }.sorted { $0.id < $1.id } }
    public var functions: [String] { limits.keys.sorted() }

    /// A request arrived (or comes back to be retried: `retry` puts it at the head of the queue,
    /// and `since` keeps its first arrival for the queue time-out).
    public mutating func arrive(request: Int, function: String, now: Double, retry: Bool = false, since: Double? = nil) -> [Action] {
        guard limits[function] != nil else { return [.fail(request: request, ControlError(status: 404, "no model named '\(function)'"))] }
        guard retry || queues[function]!.count < queueLimit else {
            return [.fail(request: request, ControlError(status: 429, "'\(function)' has \(queueLimit) requests waiting already: try again later"))]
        }
        let waiting = Waiting(request: request, arrivedSeconds: since ?? now)
        if retry { queues[function]!.insert(waiting, at: 0) } else { queues[function]!.append(waiting) }
        return schedule(function, now: now)
    }

    /// The client went away while its request waited in the queue.
    public mutating func withdraw(request: Int) {
        for function in functions { queues[function]!.removeAll { $0.request == request } }
    }

    /// The instance produced its first token: its cold start is over.
    public mutating func ready(instance: Int, now: Double) -> [Action] {
        guard instances[instance]?.phase == .starting else { return [] }
        instances[instance]!.phase = .ready
        return []
    }

    /// Keeps an instance through keep-alive expiry (consolidation in progress) or lets it go
    /// again; its idle time counts from the release.
    public mutating func pin(instance id: Int, _ pinned: Bool, now: Double) {
        guard instances[id] != nil else { return }
        instances[id]!.pinned = pinned
        if !pinned { instances[id]!.idleSinceSeconds = max(instances[id]!.idleSinceSeconds, now) }
    }

    /// A request ended (answered, failed or cancelled): its slot takes the next in the queue.
    public mutating func finished(request: Int, now: Double) -> [Action] {
        guard let id = running.removeValue(forKey: request), var instance = instances[id] else { return [] }
        instance.inFlight -= 1
        if instance.inFlight == 0 { instance.idleSinceSeconds = now }
        instances[id] = instance
        return schedule(instance.function, now: now)
    }

    /// The instance is gone (died, failed to start, or could not be placed — then `backOff`
    /// delays the next start). Its running requests are the caller's to retry or fail; the
    /// queue may start a replacement.
    public mutating func lost(instance id: Int, now: Double, backOff: Bool = false) -> [Action] {
        guard let instance = instances.removeValue(forKey: id) else { return [] }
        running = running.filter { $0.value != id }
        if backOff { noStartBefore[instance.function] = now + retryStartSeconds }
        return schedule(instance.function, now: now)
    }

    /// Keep-alive expiry, queue time-outs and delayed starts.
    public mutating func tick(now: Double) -> [Action] {
        var actions: [Action] = []
        for (id, instance) in instances.sorted(by: { $0.key < $1.key })
        where instance.phase == .ready && !instance.pinned && instance.inFlight == 0 && now - instance.idleSinceSeconds >= limits[instance.function]!.keepAliveSeconds {
            instances[id] = nil
            actions.append(.stop(instance: id))
        }
        for function in functions {
            let expired = queues[function]!.filter { now - $0.arrivedSeconds >= queueTimeoutSeconds }
            queues[function]!.removeAll { now - $0.arrivedSeconds >= queueTimeoutSeconds }
            actions += expired.map {
                .fail(request: $0.request, ControlError(status: 503, "'\(function)' found no free instance within \(Int(queueTimeoutSeconds)) s"))
            }
            actions += schedule(function, now: now)
        }
        return actions
    }

    /// Dispatches the queue's head to the least-loaded instance with a free slot; starts
    /// instances while requests remain that no instance has room for.
    mutating func schedule(_ function: String, now: Double) -> [Action] {
        guard let limit = limits[function] else { return [] }
        var actions: [Action] = []
        while let head = queues[function]!.first {
            let open = instances.values.filter { $0.function == function && $0.inFlight < limit.maxConcurrency }
                .min { ($0.inFlight, $0.id) < ($1.inFlight, $1.id) }
            if let open {
                queues[function]!.removeFirst()
                instances[open.id]!.inFlight += 1
                running[head.request] = open.id
                actions.append(.dispatch(request: head.request, instance: open.id, cold: open.phase == .starting))
                continue
            }
            guard instances(of: function).count < limit.maxInstances, now >= noStartBefore[function] ?? 0 else { break }
            let id = nextInstance
            nextInstance += 1
            instances[id] = Instance(id: id, function: function, phase: .starting, inFlight: 0, idleSinceSeconds: now)
            actions.append(.start(instance: id, function: function, queueSeconds: now - head.arrivedSeconds))
        }
        return actions
    }
}
