import ArgumentParser
import Foundation
import Glibc
import HydraControl
import HydraFormat
import HydraSystem
import HydraWorker
import Hummingbird
import Logging

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the store's models through an OpenAI-compatible endpoint, cold-starting them on demand.",
        discussion: """
        Runs the embedded default cluster: a store server on STORE and --nodes emulated nodes on \
        this machine (each a node cache with a --nic-gbps link and --node-memory-gib of device \
        memory), all as local processes with logs in --work-dir. A request for a model with no \
        instance cold-starts one: the planner picks the smallest pipeline depth whose predicted \
        time to first token meets the model's SLO, one stage per node, and the pipeline is \
        consolidated into one worker after its first token. Idle instances stop after their \
        keep-alive (scale to zero).

        Endpoints: POST /v1/completions, POST /v1/chat/completions (stream or not), GET /v1/models, \
        POST / (the original HydraServe form: {"id", "model", "prompt", "stream"}), GET /healthz, \
        GET /metrics (Prometheus), GET /v1/instances. Models are named as in the store; with \
        replicas, NAME/0, NAME/1, … are separate functions. --config takes a YAML (or JSON) file \
        (see docs/serving.md); options given here override it.
        """
    )

    @Option(help: "Store directory.") var store: String = "store"
    @Option(help: "Address to listen on (HOST:PORT).") var listen: String = "127.0.0.1:8000"
    @Option(help: "Cluster and per-model settings (YAML or JSON; see docs/serving.md).") var config: String?
    @Option(help: "Emulated nodes.") var nodes: Int?
    @Option(name: .customLong("node-memory-gib"), help: "Device memory of every emulated node, GiB.") var nodeMemoryGiB: Double?
    @Option(name: .customLong("nic-gbps"), help: "Emulated link of every node, Gbit/s.") var nicGbps: Double?
    @Option(name: .customLong("ttft-slo"), help: "Time-to-first-token objective for cold starts, seconds (every model).") var ttftSLO: Double?
    @Option(name: .customLong("keep-alive"), help: "Seconds an idle instance is kept (every model).") var keepAlive: Double?
    @Option(name: .customLong("max-pp"), help: "Deepest pipeline a cold start may use (every model).") var maxPP: Int?
    @Option(help: "Only these entries (comma-separated; default: every entry in the store).") var models: String?
    @Option(help: "overlapped (workers initialise while their chunks arrive) or fetch-then-start (the baseline: fetch the whole stage, then start).")
    var startup: String?
    @Option(name: .customLong("event-log"), help: "Append every instance's start, first token, consolidation and stop (with the memory it holds) to this file, as JSON lines (for hydra analyze --controller-log).")
    var eventLog: String?
    @Option(help: "Folder for sockets and logs (default: a new one per run).")
    var workDir: String = NSTemporaryDirectory() + "hydra-serve-\(getpid())"
    @Option(help: "Where workers run: local (processes on emulated nodes on this machine) or kubernetes (pods).")
    var backend: String = "local"
    @Option(help: "kubeconfig whose current context reaches the cluster (default: $KUBECONFIG; else the pod's in-cluster config).")
    var kubeconfig: String?
    @Option(name: .customLong("k8s-api"), help: "API server URL (instead of a kubeconfig).") var k8sAPI: String?
    @Option(name: .customLong("k8s-token-file"), help: "Bearer token for --k8s-api.") var k8sTokenFile: String?
    @Option(name: .customLong("k8s-ca-file"), help: "CA certificate of --k8s-api.") var k8sCAFile: String?
    @OptionGroup var kubernetes: KubernetesOptions

    func validate() throws {
        _ = try WorkerCommand.address(listen)
        for value in [nodeMemoryGiB, nicGbps, ttftSLO].compactMap({ $0 }) where !(value > 0) {
            throw ValidationError("--node-memory-gib, --nic-gbps and --ttft-slo must be positive")
        }
        if let nodes, nodes < 1 { throw ValidationError("--nodes must be positive") }
        if let maxPP, maxPP < 1 { throw ValidationError("--max-pp must be positive") }
        if let keepAlive, keepAlive < 0 { throw ValidationError("--keep-alive must not be negative") }
        guard backend == "local" || backend == "kubernetes" else { throw ValidationError("--backend must be local or kubernetes") }
    }

    /// The file's configuration with this command's options applied.
    func effectiveConfiguration() throws -> ServeConfiguration {
        var configuration = try config.map(ServeConfiguration.load) ?? ServeConfiguration()
        if let nodes { configuration.cluster.nodes = nodes }
        if let nodeMemoryGiB { configuration.cluster.nodeMemoryGiB = nodeMemoryGiB }
        if let nicGbps { configuration.cluster.nicGbps = nicGbps }
        if let startup { configuration.cluster.startup = try ServeConfiguration.Startup(parsing: startup) }
        func apply(_ settings: inout ServedModel.Settings) {
            if let ttftSLO { settings.ttftSLOSeconds = ttftSLO }
            if let keepAlive { settings.keepAliveSeconds = keepAlive }
            if let maxPP { settings.maxPP = maxPP }
        }
        apply(&configuration.defaults)
        for name in configuration.models.keys { apply(&configuration.models[name]!) }
        if let models {
            let names = models.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            configuration.serveAll = false
            configuration.models = Dictionary(uniqueKeysWithValues: names.map { ($0, configuration.models[$0] ?? configuration.defaults) })
        }
        try configuration.validate()
        return configuration
    }

    func run() async throws {
        var logger = Logger(label: "hydra.serve")
        logger.logLevel = .info
        let configuration: ServeConfiguration
        let served: [ServedModel]
        do {
            configuration = try effectiveConfiguration()
            served = try configuration.servedModels(store: StoreDirectory(root: store))
            guard !served.isEmpty else { throw ControlError(status: 400, "\(store) holds no models: convert one with hydra convert") }
        } catch {
            Terminal.error("\(error)")
            throw ExitCode(1)
        }
        let largest = served.map(\.wholeBytes).max() ?? 0
        let backend: any ClusterBackend
        do { backend = try makeBackend(configuration, served: served, logger: logger) } catch {
            Terminal.error("\(error)")
            throw ExitCode(1)
        }
        if backend.nodes.allSatisfy({ $0.freeMemoryBytes < largest }) {
            Terminal.note("note: the largest model (\(formatBytes(largest))) does not fit one node: its pipelines will not consolidate")
        }
        var constants: ColdStartPlanner.Constants = self.backend == "local" ? .localCluster : .init()
        constants.overlapped = configuration.cluster.startup == .overlapped
        let eventLog: InstanceEventLog
        do { eventLog = try self.eventLog.map { try InstanceEventLog(path: $0) } ?? InstanceEventLog() } catch {
            Terminal.error("\(error)")
            throw ExitCode(1)
        }
        let controller = Controller(models: served, backend: backend, constants: constants, eventLog: eventLog, logger: logger)
        await controller.start()
        let (host, port) = try WorkerCommand.address(listen)
        let app = Endpoint(controller: controller).application(host: host, port: port, logger: logger) { bound in
            Terminal.note("serving \(served.flatMap(\.functionNames).joined(separator: ", ")) on http://\(host):\(bound)/v1")
        }
        do { try await app.runService() } catch { Terminal.error("\(error)") }
        await controller.shutdown()
    }
}

extension ServeCommand {
    func makeBackend(_ configuration: ServeConfiguration, served: [ServedModel], logger: Logger) throws -> any ClusterBackend {
        if backend == "kubernetes" {
            let connection: KubernetesBackend.Connection
            if let k8sAPI {
                connection = KubernetesBackend.Connection(apiServer: k8sAPI, token: try k8sTokenFile.map {
                    try String(contentsOfFile: $0, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) }, caFile: k8sCAFile)
            } else if let path = kubeconfig ?? ProcessInfo.processInfo.environment["KUBECONFIG"] {
                connection = try Kubeconfig.connection(path: path)
            } else {
                connection = try KubernetesBackend.Connection.inCluster()
            }
            let manifests = kubernetes.manifests
            try manifests.validate()
            Terminal.note("using the Kubernetes API at \(connection.apiServer), namespace \(manifests.namespace)")
            let backend = try KubernetesBackend(connection: connection, manifests: manifests, defaultNICGbps: configuration.cluster.nicGbps, logger: logger)
            backend.fetchFirst = configuration.cluster.startup == .fetchThenStart
            return backend
        }
        var clusterConfiguration = LocalCluster.Configuration(executable: ChildProcess.selfPath, storeRoot: store, workDirectory: workDir)
        clusterConfiguration.nodes = configuration.cluster.nodes
        clusterConfiguration.nicGigabitsPerSecond = configuration.cluster.nicGbps
        clusterConfiguration.cacheCapacityGiB = max(1, 2 * Double(served.map(\.wholeBytes).reduce(0, +)) / Double(1 << 30))
        Terminal.note("starting a store server and \(configuration.cluster.nodes) emulated nodes (\(configuration.cluster.nicGbps) Gbit/s, \(configuration.cluster.nodeMemoryGiB) GiB each); logs in \(workDir)")
        let cluster = try LocalCluster(configuration: clusterConfiguration)
        return LocalBackend(cluster: cluster, nodeMemoryBytes: Int(configuration.cluster.nodeMemoryGiB * Double(1 << 30)),
                            fetchFirst: configuration.cluster.startup == .fetchThenStart)
    }
}

extension ColdStartPlanner.Constants {
    /// Fitted on this project's 2-core machine: start-up, runtime init and first token from
    /// `hydra bench coldstart` (SmolLM2 rows, docs/benchmarks.md); the two contention terms —
    /// stages of one pipeline, and fetches already running, all on the same cores — from
    /// `hydra bench serve`'s cold starts.
    static let localCluster = ColdStartPlanner.Constants(startupSeconds: 0.15, runtimeInitSeconds: 0.25, firstTokenSeconds: 0.05,
                                                         extraStageSeconds: 0.1, busyFetchSeconds: 0.4)
}
