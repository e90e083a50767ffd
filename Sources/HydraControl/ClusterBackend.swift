import HydraEngine
import HydraWorker

/// Where instances run (DESIGN.md §6): the controller plans, a backend starts and stops the
/// workers. `LocalBackend` runs them as processes on this machine (the default); a Kubernetes
/// backend would create pods the same way.
public protocol ClusterBackend: Sendable {
    /// The nodes stages can be placed on, with their device memory and NIC bandwidth.
    var nodes: [ColdStartPlanner.Node] { get }
    /// Starts the `plan.pp` stage workers of store entry `entry`, stage k on `plan.nodes[k]`;
    /// returns at once (the workers cold-start in the background).
    func start(entry: String, plan: ColdStartPlanner.Plan, kvCacheMiB: Int, kvDType: KVDType) throws -> BackendInstance
    /// Whether the instance's workers still run (after consolidation: stage 0's).
    func isAlive(_ instance: BackendInstance, consolidated: Bool) -> Bool
    func stop(_ instance: BackendInstance)
    /// Digests of the chunks each node's cache holds (node name → digests); nodes that do not
    /// answer are left out.
    func cachedChunks() -> [String: Set<String>]
    /// Restarts node caches or stores that died; returns what it restarted.
    func heal() -> [String]
    /// Stops everything.
    func shutdown()
}

/// An instance's workers as a backend runs them.
public struct BackendInstance: Sendable {
    /// Stage 0 takes requests here; the other stages' endpoints answer status.
    public var endpoints: [String]
    public var endpoint: String { endpoints[0] }
    /// The stages' process ids where the backend runs processes on this machine.
    public var processIDs: [Int32] = []
    /// The stages' pod names where the backend runs pods.
    public var podNames: [String] = []
    let pipeline: LocalCluster.Pipeline?

    public init(endpoints: [String], podNames: [String] = []) {
        self.endpoints = endpoints
        self.podNames = podNames
        pipeline = nil
    }

    init(pipeline: LocalCluster.Pipeline) {
        endpoints = pipeline.endpoints
        processIDs = pipeline.workers.map(\.pid)
        self.pipeline = pipeline
    }
}
