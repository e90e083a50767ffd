/// The cold-start planner (DESIGN.md §6): predicts a cold start's time to first token for each
/// pipeline depth from the stage bytes, each candidate node's share of its NIC, fitted start-up
/// constants and the queueing time; picks the smallest pp that meets the model's TTFT SLO; places
/// one stage per node (the full-memory stage 0 on the best-fitting node); and reserves the links it
/// will use, so later plans leave running fetches their bandwidth — or, where every link is taken,
/// share one fairly rather than wait. A pure state machine: the caller passes the time.
public struct ColdStartPlanner: Sendable {
    public struct Node: Sendable, Equatable {
        public var name: String
        public var nicBytesPerSecond: Double
        public var freeMemoryBytes: Int

        public init(name: String, nicBytesPerSecond: Double, freeMemoryBytes: Int) {
            self.name = name
            self.nicBytesPerSecond = nicBytesPerSecond
            self.freeMemoryBytes = freeMemoryBytes
        }
    }

    /// What the planner knows of a model: bytes per stage for every pp it can run at.
    public struct Model: Sendable, Equatable {
        public var name: String
        /// pp → bytes each stage fetches (stage 0 first).
        public var stageBytes: [Int: [Int]]
        /// Bytes of the whole model (what a full-memory stage 0 must be able to hold).
        public var wholeBytes: Int
        public var ttftSLOSeconds: Double
        /// pp → each stage's chunk digests, and each chunk's bytes: with these, a stage whose
        /// chunks a node's cache already holds fetches only the rest. Empty: every stage
        /// fetches all of `stageBytes`.
        public var stageChunks: [Int: [[String]]] = [:]
        public var chunkBytes: [String: Int] = [:]

        public init(name: String, stageBytes: [Int: [Int]], wholeBytes: Int, ttftSLOSeconds: Double) {
            self.name = name
            self.stageBytes = stageBytes
            self.wholeBytes = wholeBytes
            self.ttftSLOSeconds = ttftSLOSeconds
        }
    }

    /// Fitted from measured cold starts (`hydra bench coldstart`): process start to attached,
    /// runtime initialisation (overlapped with the fetch), and the first token's compute.
    public struct Constants: Sendable, Equatable {
        public var startupSeconds = 0.1
        public var runtimeInitSeconds = 0.3
        public var firstTokenSeconds = 0.2
        /// Start-up each further stage adds where the stages' workers share a machine's cores
        /// (the local backend): pp workers starting at once slow each other down (0 on real nodes).
        public var extraStageSeconds = 0.0
        /// Start-up each fetch already running adds, where all workers share one machine's
        /// cores and memory bus (the local backend; 0 on real nodes).
        public var busyFetchSeconds = 0.0
        /// Whether workers initialise while their chunks arrive (HydraServe) or only after the
        /// whole fetch (the fetch-then-start baseline, `hydra serve --startup fetch-then-start`).
        public var overlapped = true

        public init(startupSeconds: Double = 0.1, runtimeInitSeconds: Double = 0.3, firstTokenSeconds: Double = 0.2,
                    extraStageSeconds: Double = 0, busyFetchSeconds: Double = 0) {
            self.startupSeconds = startupSeconds
            self.runtimeInitSeconds = runtimeInitSeconds
            self.firstTokenSeconds = firstTokenSeconds
            self.extraStageSeconds = extraStageSeconds
            self.busyFetchSeconds = busyFetchSeconds
        }
    }

    public struct Plan: Sendable, Equatable {
        public var pp: Int
        /// Node of each stage.
        public var nodes: [String]
        /// Whether stage 0's node can hold the whole model (so the pipeline can consolidate).
        public var stage0FullMemory: Bool
        public var predictedTTFTSeconds: Double
        public var meetsSLO: Bool
        /// Bytes each stage fetches over its link (what its node's cache lacks).
        public var fetchBytes: [Int]
        /// One per stage: release each when that stage's fetch ends.
        public var reservations: [Int]
    }

    /// Bandwidth a fetch holds on a node until it ends (or is released).
    struct Reservation: Sendable, Equatable {
        var id: Int
        var node: String
        var bytesPerSecond: Double
        var untilSeconds: Double
        /// A consolidation's fetch: the node cache serves it at low priority, so cold starts
        /// take its bandwidth (it still runs, and still loads the node's cores).
        var background = false
    }

    public var nodes: [Node]
    public var constants: Constants
    /// node → digests of the chunks its cache holds.
    public private(set) var cached: [String: Set<String>] = [:]
    private var reservations: [Reservation] = []
    private var nextReservation = 0

    public init(nodes: [Node], constants: Constants = Constants()) {
        precondition(!nodes.isEmpty && nodes.allSatisfy { $0.nicBytesPerSecond > 0 })
        self.nodes = nodes
        self.constants = constants
    }

    /// The NIC bandwidth a new cold-start fetch on `node` gets at `now`: what the cold-start
    /// fetches still running there leave free, or, where they hold it all, a fair share of the
    /// link with them (the next cold start shares a busy link rather than waiting for it).
    public func availableBytesPerSecond(_ node: String, now: Double) -> Double {
        guard let nic = nodes.first(where: { $0.name == node })?.nicBytesPerSecond else { return 0 }
        let running = reservations.filter { $0.node == node && $0.untilSeconds > now && !$0.background }
        let held = running.reduce(0) { $0 + $1.bytesPerSecond }
        return max(nic - held, nic / Double(running.count + 1))
    }

    /// The best placement for each pp and its predicted TTFT, without reserving anything.
    public func predictions(for model: Model, queueSeconds: Double = 0, now: Double) -> [Plan] {
        model.stageBytes.keys.sorted().compactMap { pp in place(model, pp: pp, queueSeconds: queueSeconds, now: now) }
    }

    /// Chooses the smallest pp whose predicted TTFT meets the SLO (else the fastest), reserves
    /// the links its stages will fetch over, and returns it; nil when no node can take a stage.
    public mutating func plan(_ model: Model, queueSeconds: Double = 0, now: Double) -> Plan? {
        let candidates = predictions(for: model, queueSeconds: queueSeconds, now: now)
        guard var chosen = candidates.first(where: \.meetsSLO) ?? candidates.min(by: { $0.predictedTTFTSeconds < $1.predictedTTFTSeconds }) else {
            return nil
        }
        let bytes = model.stageBytes[chosen.pp]!
        for (stage, node) in chosen.nodes.enumerated() {
            // A stage its node's cache holds already fetches nothing: it leaves the link free.
            let rate = chosen.fetchBytes[stage] > 0 ? availableBytesPerSecond(node, now: now) : 0
            let id = nextReservation
            nextReservation += 1
            reservations.append(Reservation(id: id, node: node, bytesPerSecond: rate,
                                            untilSeconds: now + constants.startupSeconds + Double(chosen.fetchBytes[stage]) / max(rate, 1)))
            chosen.reservations.append(id)
            let wanted = stage == 0 && chosen.stage0FullMemory ? model.wholeBytes : bytes[stage]
            if let index = nodes.firstIndex(where: { $0.name == node }) { nodes[index].freeMemoryBytes -= wanted }
        }
        return chosen
    }

    /// Notes a fetch the planner did not place — a consolidation fetching the rest of its model,
    /// in the background — until `release`, or until its bytes would have arrived. It counts as
    /// a running fetch (cores) but leaves the link to cold starts.
    public mutating func reserve(node: String, bytes: Int, now: Double) -> Int {
        let rate = availableBytesPerSecond(node, now: now)
        let id = nextReservation
        nextReservation += 1
        reservations.append(Reservation(id: id, node: node, bytesPerSecond: rate, untilSeconds: now + Double(bytes) / max(rate, 1), background: true))
        return id
    }

    /// Fetches running at `now`.
    public func runningFetches(now: Double) -> Int { reservations.filter { $0.untilSeconds > now && $0.bytesPerSecond > 0 }.count }

    /// A stage's fetch ended: its node's bandwidth is free for the next plan.
    public mutating func release(_ reservation: Int) {
        reservations.removeAll { $0.id == reservation }
    }

    /// What `node`'s cache holds now (as its status reports it).
    public mutating func setCached(_ digests: Set<String>, on node: String) { cached[node] = digests }

    /// Chunks `node`'s cache now holds (a stage's fetch there ended), before its status says so.
    public mutating func noteCached(_ digests: [String], on node: String) { cached[node, default: []].formUnion(digests) }

    /// Bytes stage `stage` of a pp-deep plan fetches on `node`: what its cache lacks.
    public func fetchBytes(_ model: Model, pp: Int, stage: Int, on node: String) -> Int {
        guard let digests = model.stageChunks[pp]?[stage] else { return model.stageBytes[pp]?[stage] ?? 0 }
        let held = cached[node] ?? []
        return digests.reduce(0) { $0 + (held.contains($1) ? 0 : model.chunkBytes[$1] ?? 0) }
    }

    /// Memory a stopped worker gave back.
    public mutating func returnMemory(_ bytes: Int, on node: String) {
        if let index = nodes.firstIndex(where: { $0.name == node }) { nodes[index].freeMemoryBytes += bytes }
    }

    /// One stage per node. Stage 0 first, on the node that holds the whole model (so the
    /// pipeline can consolidate) with the fastest fetch of its stage — the tightest fit among
    /// equals — or, where none holds the whole model, the fastest; then each further stage on the
    /// free node that fetches it fastest (its cache may hold it already), most link left among
    /// equals. A fetch's time is the bytes its node's cache lacks over the link left there.
    func place(_ model: Model, pp: Int, queueSeconds: Double, now: Double) -> Plan? {
        guard let bytes = model.stageBytes[pp], bytes.count == pp, pp <= nodes.count else { return nil }
        var chosen = [Node?](repeating: nil, count: pp)
        var fetch = [Int](repeating: 0, count: pp)
        var stage0FullMemory = false
        func fastest(_ stage: Int) -> Double {
            nodes.filter { $0.freeMemoryBytes >= bytes[stage] }.map { node in
                let missing = fetchBytes(model, pp: pp, stage: stage, on: node.name)
                return missing == 0 ? 0 : Double(missing) / max(availableBytesPerSecond(node.name, now: now), 1)
            }.min() ?? .infinity
        }
        // Stage 0 first (it decides consolidation); then the stages a cache favours most, so a
        // node holding a later stage is not taken by an earlier one that fetches anywhere.
        let order = [0] + (1..<max(pp, 1)).map { ($0, fastest($0)) }.sorted { $0.1 != $1.1 ? $0.1 < $1.1 : $0.0 < $1.0 }.map(\.0)
        for stage in order {
            let candidates = nodes.enumerated().compactMap { offset, node -> (node: Node, seconds: Double, link: Double, offset: Int)? in
                guard !chosen.contains(where: { $0?.name == node.name }), node.freeMemoryBytes >= bytes[stage] else { return nil }
                let missing = fetchBytes(model, pp: pp, stage: stage, on: node.name)
                let link = availableBytesPerSecond(node.name, now: now)
                guard missing == 0 || link > 0 else { return nil }
                return (node, missing == 0 ? 0 : Double(missing) / link, link, offset)
            }
            var pool = candidates
            if stage == 0 {
                let whole = candidates.filter { $0.node.freeMemoryBytes >= model.wholeBytes }
                if !whole.isEmpty { pool = whole; stage0FullMemory = true }
            }
            let best = pool.min { a, b in
                if a.seconds != b.seconds { return a.seconds < b.seconds }
                if stage == 0 && stage0FullMemory && a.node.freeMemoryBytes != b.node.freeMemoryBytes {
                    return a.node.freeMemoryBytes < b.node.freeMemoryBytes
                }
                return a.link != b.link ? a.link > b.link : a.offset < b.offset
            }
            guard let best else { return nil }
            chosen[stage] = best.node
            fetch[stage] = fetchBytes(model, pp: pp, stage: stage, on: best.node.name)
        }
        let placed = chosen.compactMap { $0 }
        let fetchSeconds = zip(fetch, placed).map { missing, node in
            missing == 0 ? 0 : Double(missing) / availableBytesPerSecond(node.name, now: now)
        }.max() ?? 0
        let startup = constants.startupSeconds + Double(pp - 1) * constants.extraStageSeconds
            + Double(runningFetches(now: now)) * constants.busyFetchSeconds
        let loading = constants.overlapped ? max(fetchSeconds, constants.runtimeInitSeconds) : fetchSeconds + constants.runtimeInitSeconds
        let ttft = queueSeconds + startup + loading + constants.firstTokenSeconds
        return Plan(pp: pp, nodes: placed.map(\.name), stage0FullMemory: stage0FullMemory, predictedTTFTSeconds: ttft,
                    meetsSLO: ttft <= model.ttftSLOSeconds, fetchBytes: fetch, reservations: [])
    }
}
