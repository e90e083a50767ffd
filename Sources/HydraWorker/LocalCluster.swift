import Foundation
import Glibc
import HydraEngine
import HydraFormat
import HydraStore
import HydraSystem

/// Emulated nodes on this machine, as processes on loopback: one store server, `nodes` node
/// caches (each with its own emulated NIC), and the stage workers of pipelines placed on them.
/// Used by the tests, `hydra bench coldstart` and the control plane's local backend.
public final class LocalCluster: @unchecked Sendable {
    public struct Configuration: Sendable {
        /// The `hydra` executable to run.
        public var executable: String
        public var storeRoot: String
        /// Sockets and logs.
        public var workDirectory: String
        public var nodes = 1
        public var nicGigabitsPerSecond: Double?
        public var cacheCapacityGiB = 8.0
        public var cacheConnections = 4

        public init(executable: String, storeRoot: String, workDirectory: String) {
            self.executable = executable
            self.storeRoot = storeRoot
            self.workDirectory = workDirectory
        }
    }

    /// A pipeline's workers; stage 0's endpoint takes requests.
    public struct Pipeline: Sendable {
        public let model: String
        public let workers: [SpawnedProcess]
        /// HTTP endpoint of each stage (status; generate on stage 0).
        public let endpoints: [String]
        public var endpoint: String { endpoints[0] }
    }

    public let configuration: Configuration
    public let storeURL: String
    private let storePort: Int
    private var store: SpawnedProcess
    private var caches: [SpawnedProcess?]
    private let healing = NSLock()
    private var stopped = false
    private let pipelines = LockedBox<[Pipeline]>([])

    public init(configuration: Configuration) throws {
        self.configuration = configuration
        try FileManager.default.createDirectory(atPath: configuration.workDirectory, withIntermediateDirectories: true)
        let port = try Self.freePort()
        storePort = port
        storeURL = "http://127.0.0.1:\(port)"
        store = try Self.startStore(configuration, port: port)
        caches = Array(repeating: nil, count: configuration.nodes)
        try Self.waitHTTP(storeURL + "/healthz", process: store)
        for node in 0..<configuration.nodes { try restartCache(node) }
    }

    private static func startStore(_ configuration: Configuration, port: Int) throws -> SpawnedProcess {
        try SpawnedProcess([configuration.executable, "store", "serve", "--root", configuration.storeRoot, "--listen", "127.0.0.1:\(port)"],
                           logPath: configuration.workDirectory + "/store.log")
    }

    /// Restarts the store server or node caches that died (on the same address and socket, so
    /// their clients reconnect); returns what it restarted. Their caches start empty.
    public func restartDeadProcesses() -> [String] {
        healing.lock(); defer { healing.unlock() }
        guard !stopped else { return [] }
        var restarted: [String] = []
        if !store.isRunning, let process = try? Self.startStore(configuration, port: storePort) {
            store = process
            if (try? Self.waitHTTP(storeURL + "/healthz", process: process, timeoutSeconds: 10)) != nil { restarted.append("store") }
        }
        for node in caches.indices where caches[node].map({ !$0.isRunning }) ?? false {
            if (try? restartCache(node)) != nil { restarted.append("node cache \(node)") }
        }
        return restarted
    }

    deinit { stop() }

    public func cacheSocket(_ node: Int) -> String { configuration.workDirectory + "/cache-\(node).sock" }

    /// Starts node `node`'s cache afresh (empty: the next fetch is cold).
    public func restartCache(_ node: Int) throws {
        caches[node]?.terminate()
        var arguments = [configuration.executable, "cache", "serve", "--node", "node\(node)", "--socket", cacheSocket(node),
                         "--capacity-gib", String(configuration.cacheCapacityGiB), "--remote", storeURL,
                         "--connections", String(configuration.cacheConnections)]
        if let nic = configuration.nicGigabitsPerSecond { arguments += ["--nic-gbps", String(nic)] }
        let process = try SpawnedProcess(arguments, logPath: configuration.workDirectory + "/cache-\(node).log")
        caches[node] = process
        let deadline = Date().addingTimeInterval(30)
        while (try? NodeCacheClient.status(socketPath: cacheSocket(node))) == nil {
            guard process.isRunning, Date() < deadline else {
                throw SystemError("node cache \(node) did not start (see \(configuration.workDirectory)/cache-\(node).log)", errno: ETIMEDOUT)
            }
            usleep(10_000)
        }
    }

    /// Starts the `pp` stage workers of `model`, stage k on node `nodes[k]` (default: k mod
    /// the node count). Returns at once: the workers cold-start in the background.
    /// Stages in `fullMemory` reserve memory for the whole model (stage 0: it can consolidate
    /// the pipeline; later stages: they become replicas when it does).
    ///
    /// `microBatches` defaults to 1: these emulated nodes share one machine's cores and memory
    /// bus, where overlapping micro-batches measured slower (see docs/benchmarks.md); pass pp to
    /// overlap them as on separate machines.
    public func launch(model: String, pp: Int, nodes: [Int]? = nil, kvCacheMiB: Int = 256, kvDType: KVDType = .f32, fullMemory: Set<Int> = [],
                       microBatches: Int = 1, extraArguments: [String] = []) throws -> Pipeline {
        let placement = nodes ?? (0..<pp).map { $0 % configuration.nodes }
        precondition(placement.count == pp && placement.allSatisfy { (0..<configuration.nodes).contains($0) })
        let ports = try Self.freePorts(2 * pp)
        let httpPorts = Array(ports[..<pp]), pipelinePorts = Array(ports[pp...])
        var workers: [SpawnedProcess] = []
        // Last stage first, so each one's next stage is already on its way up.
        for stage in (0..<pp).reversed() {
            var arguments = [configuration.executable, "worker", "--model", model, "--stage", String(stage), "--pp", String(pp),
                             "--cache-socket", cacheSocket(placement[stage]), "--listen", "127.0.0.1:\(httpPorts[stage])",
                             "--kv-cache-mib", String(kvCacheMiB), "--kv-dtype", kvDType.rawValue, "--memory", fullMemory.contains(stage) ? "full" : "stage",
                             "--micro-batches", String(microBatches)] + extraArguments
            if stage > 0 { arguments += ["--pipeline-listen", "127.0.0.1:\(pipelinePorts[stage])"] }
            if stage < pp - 1 { arguments += ["--next", "127.0.0.1:\(pipelinePorts[stage + 1])"] }
            let log = configuration.workDirectory + "/\(model)-pp\(pp)-stage\(stage)-\(UInt32.random(in: 0...UInt32.max)).log"
            workers.insert(try SpawnedProcess(arguments, logPath: log), at: 0)
        }
        let pipeline = Pipeline(model: model, workers: workers, endpoints: httpPorts.map { "http://127.0.0.1:\($0)" })
        pipelines.withValue { $0.append(pipeline) }
        return pipeline
    }

    /// Stops a pipeline's workers.
    public func stop(_ pipeline: Pipeline) {
        pipeline.workers.forEach { $0.terminate() }
        pipelines.withValue { $0.removeAll { $0.endpoint == pipeline.endpoint } }
    }

    /// Drops the model's chunk files from the store machine's page cache (cold-start runs).
    public func dropStorePageCache(model: String) throws {
        let entry = try StoreEntry(store: StoreDirectory(root: configuration.storeRoot), name: model)
        ChunkFetcher(entry: entry, reader: FileReaders.make()).evictFromPageCache(Array(entry.manifest.chunks.indices))
    }

    public func stop() {
        healing.withLock { stopped = true }
        for pipeline in pipelines.value { pipeline.workers.forEach { $0.terminate() } }
        pipelines.value = []
        for index in caches.indices { caches[index]?.terminate(); caches[index] = nil }
        store.terminate()
    }

    /// A port nobody listens on right now (the kernel's choice).
    public static func freePort() throws -> Int { try freePorts(1)[0] }

    /// `count` different ports nobody listens on right now. Every one stays bound until all are
    /// chosen: a port given back at once may be the kernel's choice again, and a pipeline link that
    /// reached another stage's HTTP server failed a suite run once ("bad magic" HTTP).
    public static func freePorts(_ count: Int) throws -> [Int] {
        let listeners = try (0..<count).map { _ in try TCPListener(host: "127.0.0.1", port: 0) }
        return listeners.map(\.port)
    }

    /// Waits until `url` answers 200 (bounded), or the process died.
    public static func waitHTTP(_ url: String, process: SpawnedProcess, timeoutSeconds: Double = 60) throws {
        let client = HTTPClient(timeoutSeconds: 2)
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        while (try? client.get(url).status) != 200 {
            guard process.isRunning else { throw SystemError("\(process.arguments.prefix(3).joined(separator: " ")) exited early (log: \(process.logPath ?? "none"))", errno: ECHILD) }
            guard Date() < deadline else { throw SystemError("no answer from \(url) within \(timeoutSeconds) s", errno: ETIMEDOUT) }
            usleep(10_000)
        }
    }
}
