import Foundation
import HydraEngine
import HydraStore
import HydraSystem
import HydraWorker

/// Emulated nodes as processes on this machine (`LocalCluster`): node k is `node<k>`, with
/// `nodeMemoryBytes` of device memory (what the planner places against) and the cluster's
/// emulated NIC.
public final class LocalBackend: ClusterBackend, @unchecked Sendable {
    public let cluster: LocalCluster
    public let nodes: [ColdStartPlanner.Node]
    /// Workers fetch their whole stage before initialising (the fetch-then-start baseline).
    public let fetchFirst: Bool

    public init(cluster: LocalCluster, nodeMemoryBytes: Int, fetchFirst: Bool = false) {
        self.cluster = cluster
        self.fetchFirst = fetchFirst
        let nic = (cluster.configuration.nicGigabitsPerSecond ?? 100) * 1e9 / 8
        nodes = (0..<cluster.configuration.nodes).map { ColdStartPlanner.Node(name: "node\($0)", nicBytesPerSecond: nic, freeMemoryBytes: nodeMemoryBytes) }
    }

    public func start(entry: String, plan: ColdStartPlanner.Plan, kvCacheMiB: Int, kvDType: KVDType) throws -> BackendInstance {
        let placement = try plan.nodes.map { name -> Int in
            guard let index = nodes.firstIndex(where: { $0.name == name }) else { throw ControlError(status: 500, "no node named \(name)") }
            return index
        }
        // The node caches start fetching before the workers exist (DESIGN.md §1.2): the
        // workers' processes start, and their runtimes initialise, while the chunks arrive.
        for (stage, node) in placement.enumerated() {
            _ = try? NodeCacheClient.prefetch(socketPath: cluster.cacheSocket(node), order: CacheOrder(model: entry, stage: stage, pp: plan.pp))
        }
        let pipeline = try cluster.launch(model: entry, pp: plan.pp, nodes: placement, kvCacheMiB: kvCacheMiB, kvDType: kvDType,
                                          fullMemory: plan.stage0FullMemory ? [0] : [], extraArguments: fetchFirst ? ["--fetch-first"] : [])
        return BackendInstance(pipeline: pipeline)
    }

    public func isAlive(_ instance: BackendInstance, consolidated: Bool) -> Bool {
        guard let workers = instance.pipeline?.workers else { return false }
        return consolidated ? workers[0].isRunning : workers.allSatisfy(\.isRunning)
    }

    public func stop(_ instance: BackendInstance) {
        if let pipeline = instance.pipeline { cluster.stop(pipeline) }
    }

    public func cachedChunks() -> [String: Set<String>] {
        var cached: [String: Set<String>] = [:]
        for (index, node) in nodes.enumerated() {
            if let status = try? NodeCacheClient.status(socketPath: cluster.cacheSocket(index)) { cached[node.name] = Set(status.cachedChunks) }
        }
        return cached
    }

    public func heal() -> [String] { cluster.restartDeadProcesses() }

    public func shutdown() { cluster.stop() }
}
