/// The cold-start planner (DESIGN.md §6): predicts a cold start's time to first token for each
/// pipeline depth from the stage bytes, each candidate node's share of its NIC, fitted start-up
/// constants and the queueing time; picks the smallest pp that meets the model's TTFT SLO; places
/// one stage per node (the full-memory stage 0 on the best-fitting node); and reserves the links it
/// will use, so later plans leave running fetches their bandwidth. A pure state machine: the
/// caller passes the time.
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

        public init(startupSeconds: Double = 0.1, runtimeInitSeconds: Double = 0.3, firstTokenSeconds: Double = 0.2, extraStageSeconds: Double = 0) {
            self.startupSeconds = startupSeconds
            self.runtimeInitSeconds = runtimeInitSeconds
            self.firstTokenSeconds = firstTokenSeconds
            self.extraStageSeconds = extraStageSeconds
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
        /// One per stage: release each when that stage's fetch ends.
        public var reservations: [Int]
    }

    /// Bandwidth a fetch holds on a node until it ends (or is released).
    struct Reservation: Sendable, Equatable {
        var id: Int
        var node: String
        var bytesPerSecond: Double
        var untilSeconds: Double
    }

    public var nodes: [Node]
    public var constants: Constants
    private var reservations: [Reservation] = []
    private var nextReservation = 0

    public init(nodes: [Node], constants: Constants = Constants()) {
        precondition(!nodes.isEmpty && nodes.allSatisfy { $0.nicBytesPerSecond > 0 })
        self.nodes = nodes
        self.constants = constants
    }

    /// The NIC bandwidth of `node` not held by fetches still running at `now`.
    public func availableBytesPerSecond(_ node: String, now: Double) -> Double {
        guard let nic = nodes.first(where: { $0.name == node })?.nicBytesPerSecond else { return 0 }
        let held = reservations.filter { $0.node == node && $0.untilSeconds > now }.reduce(0) { $0 + $1.bytesPerSecond }
        return max(0, nic - held)
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
            let rate = availableBytesPerSecond(node, now: now)
            let id = nextReservation
            nextReservation += 1
            reservations.append(Reservation(id: id, node: node, bytesPerSecond: rate,
                                            untilSeconds: now + constants.startupSeconds + Double(bytes[stage]) / rate))
            chosen.reservations.append(id)
            let wanted = stage == 0 && chosen.stage0FullMemory ? model.wholeBytes : bytes[stage]
            if let index = nodes.firstIndex(where: { $0.name == node }) { nodes[index].freeMemoryBytes -= wanted }
        }
        return chosen
    }

    /// A stage's fetch ended: its node's bandwidth is free for the next plan.
    public mutating func release(_ reservation: Int) {
        reservations.removeAll { $0.id == reservation }
    }

    /// Memory a stopped worker gave back.
    public mutating func returnMemory(_ bytes: Int, on node: String) {
        if let index = nodes.firstIndex(where: { $0.name == node }) { nodes[index].freeMemoryBytes += bytes }
    }

    /// One stage per node: the nodes with the most bandwidth left that fit their stage; stage 0
    /// on the one among them that fits the whole model most tightly (best fit), if any does.
    func place(_ model: Model, pp: Int, queueSeconds: Double, now: Double) -> Plan? {
        guard let bytes = model.stageBytes[pp], bytes.count == pp, pp <= nodes.count else { return nil }
        let largest = bytes.max() ?? 0
        // Most bandwidth first; ties keep the nodes' order.
        let usable = nodes.enumerated()
            .filter { $0.element.freeMemoryBytes >= largest && availableBytesPerSecond($0.element.name, now: now) > 0 }
            .sorted { (a, b) in
                let (x, y) = (availableBytesPerSecond(a.element.name, now: now), availableBytesPerSecond(b.element.name, now: now))
                return x != y ? x > y : a.offset < b.offset
            }
            .map(\.element)
        guard usable.count >= pp else { return nil }
        var chosen = Array(usable.prefix(pp))
        let fullMemory = chosen.indices.filter { chosen[$0].freeMemoryBytes >= model.wholeBytes }
            .min { chosen[$0].freeMemoryBytes < chosen[$1].freeMemoryBytes }
        if let fullMemory { chosen.swapAt(0, fullMemory) }
        let fetchSeconds = zip(bytes, chosen).map { Double($0) / availableBytesPerSecond($1.name, now: now) }.max() ?? 0
        let startup = constants.startupSeconds + Double(pp - 1) * constants.extraStageSeconds
        let ttft = queueSeconds + startup + max(fetchSeconds, constants.runtimeInitSeconds) + constants.firstTokenSeconds
        return Plan(pp: pp, nodes: chosen.map(\.name), stage0FullMemory: fullMemory != nil, predictedTTFTSeconds: ttft,
                    meetsSLO: ttft <= model.ttftSLOSeconds, reservations: [])
    }
}
