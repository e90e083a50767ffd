import Foundation
import HydraEngine
import HydraFormat
import HydraSystem
import Logging

/// Stage workers as pods through the Kubernetes API server (DESIGN.md §6). The GPU nodes are
/// those with the manifests' node label; each runs a node cache (the `hydra-cache` DaemonSet)
/// whose socket the workers mount. A stage's pod is pinned to the node the planner chose and
/// runs on the host network, so the stages reach each other at their nodes' addresses.
///
/// A node's device memory is its allocatable memory unless annotated
/// `hydraserve.io/device-memory-gib`; its link is `hydraserve.io/nic-gbps` (else the default).
/// Pod phases are polled every second in the background, so `isAlive` never waits on the API.
public final class KubernetesBackend: ClusterBackend, @unchecked Sendable {
    public struct Connection: Sendable {
        public var apiServer: String
        public var token: String?
        public var caFile: String?

        public init(apiServer: String, token: String?, caFile: String?) {
            self.apiServer = apiServer
            self.token = token
            self.caFile = caFile
        }

        static let serviceAccount = "/var/run/secrets/kubernetes.io/serviceaccount"

        /// The pod's service account (in-cluster config), if this runs in a pod.
        public static func inCluster() throws -> Connection {
            let environment = ProcessInfo.processInfo.environment
            guard let host = environment["KUBERNETES_SERVICE_HOST"], let port = environment["KUBERNETES_SERVICE_PORT"] else {
                throw ControlError(status: 500, "not in a Kubernetes pod (KUBERNETES_SERVICE_HOST is not set): give --k8s-api")
            }
            let token = try String(contentsOfFile: serviceAccount + "/token", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            let address = host.contains(":") ? "[\(host)]" : host
            return Connection(apiServer: "https://\(address):\(port)", token: token, caFile: serviceAccount + "/ca.crt")
        }
    }

    public let manifests: KubernetesManifests
    public let nodes: [ColdStartPlanner.Node]
    /// Workers fetch their whole stage before initialising (the fetch-then-start baseline).
    public var fetchFirst = false
    let connection: Connection
    let addresses: [String: String]
    let logger: Logger
    private let phases = LockedBox<[String: String]>([:])
    private let created = LockedBox<Set<String>>([])
    private let counter = LockedBox(0)
    private let stopped = LockedBox(false)

    /// Lists the GPU nodes, then polls the worker pods' phases in the background.
    public init(connection: Connection, manifests: KubernetesManifests, defaultNICGbps: Double, pollSeconds: Double = 1,
                logger: Logger = Logger(label: "hydra.kubernetes")) throws {
        self.connection = connection
        self.manifests = manifests
        self.logger = logger
        let selector = manifests.nodeLabel.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? manifests.nodeLabel
        let list = try Self.request(connection, "GET", "/api/v1/nodes?labelSelector=" + selector)
        var nodes: [ColdStartPlanner.Node] = []
        var addresses: [String: String] = [:]
        if case .array(let items)? = list["items"] {
            for item in items {
                guard let name = item["metadata"]?["name"]?.stringValue else { continue }
                let annotations = item["metadata"]?["annotations"]
                let nic = annotations?["hydraserve.io/nic-gbps"]?.stringValue.flatMap(Double.init) ?? defaultNICGbps
                let memory = annotations?["hydraserve.io/device-memory-gib"]?.stringValue.flatMap(Double.init).map { Int($0 * Double(1 << 30)) }
                    ?? item["status"]?["allocatable"]?["memory"]?.stringValue.flatMap(Self.quantityBytes) ?? 0
                if case .array(let list)? = item["status"]?["addresses"],
                   let internalIP = list.first(where: { $0["type"]?.stringValue == "InternalIP" })?["address"]?.stringValue {
                    addresses[name] = internalIP
                }
                nodes.append(ColdStartPlanner.Node(name: name, nicBytesPerSecond: nic * 1e9 / 8, freeMemoryBytes: memory))
            }
        }
        guard !nodes.isEmpty else { throw ControlError(status: 500, "no node carries the label \(manifests.nodeLabel)") }
        self.nodes = nodes.sorted { $0.name < $1.name }
        self.addresses = addresses
        let thread = Thread { [weak self] in
            while let self, !self.stopped.value {
                self.pollPhases()
                Thread.sleep(forTimeInterval: pollSeconds)
            }
        }
        thread.name = "hydra-k8s-poll"
        thread.start()
    }

    public func start(entry: String, plan: ColdStartPlanner.Plan, kvCacheMiB: Int, kvDType: KVDType) throws -> BackendInstance {
        let instance = counter.withValue { value -> Int in value += 1; return value }
        let base = 20_000 + (instance % 10_000) * 2  // host ports: HTTP, then pipeline
        let prefix = "hydra-\(Self.dnsLabel(entry))-\(instance)"
        var names: [String] = []
        var endpoints: [String] = []
        for stage in (0..<plan.pp).reversed() {
            let node = plan.nodes[stage]
            guard let address = addresses[node] else { throw ControlError(status: 500, "node \(node) reports no InternalIP address") }
            var arguments = ["worker", "--model", entry, "--stage", String(stage), "--pp", String(plan.pp),
                             "--cache-socket", manifests.socketDirectory + "/cache.sock", "--listen", "0.0.0.0:\(base)",
                             "--kv-cache-mib", String(kvCacheMiB), "--kv-dtype", kvDType.rawValue,
                             "--memory", stage == 0 && plan.stage0FullMemory ? "full" : "stage"]
            if stage > 0 { arguments += ["--pipeline-listen", "0.0.0.0:\(base + 1)"] }
            if fetchFirst { arguments.append("--fetch-first") }
            if stage < plan.pp - 1, let next = addresses[plan.nodes[stage + 1]] { arguments += ["--next", "\(next):\(base + 1)"] }
            let name = "\(prefix)-s\(stage)"
            let pod = manifests.workerPod(name: name, node: node, arguments: arguments,
                                         labels: ["hydraserve.io/model": Self.dnsLabel(entry), "hydraserve.io/instance": String(instance)])
            _ = try Self.request(connection, "POST", "/api/v1/namespaces/\(manifests.namespace)/pods", body: pod)
            created.withValue { _ = $0.insert(name) }
            phases.withValue { $0[name] = "Pending" }
            names.insert(name, at: 0)
            endpoints.insert("http://\(address):\(base)", at: 0)
        }
        return BackendInstance(endpoints: endpoints, podNames: names)
    }

    public func isAlive(_ instance: BackendInstance, consolidated: Bool) -> Bool {
        let pods = consolidated ? Array(instance.podNames.prefix(1)) : instance.podNames
        let known = phases.value
        return !pods.isEmpty && pods.allSatisfy { known[$0] == "Pending" || known[$0] == "Running" }
    }

    public func stop(_ instance: BackendInstance) {
        for name in instance.podNames {
            _ = try? Self.request(connection, "DELETE", "/api/v1/namespaces/\(manifests.namespace)/pods/\(name)")
            created.withValue { _ = $0.remove(name) }
        }
    }

    /// The node caches run on other machines; the planner then assumes nothing is cached.
    public func cachedChunks() -> [String: Set<String>] { [:] }

    /// Kubernetes restarts the caches' and the store's pods itself.
    public func heal() -> [String] { [] }

    public func shutdown() {
        stopped.value = true
        for name in created.value { _ = try? Self.request(connection, "DELETE", "/api/v1/namespaces/\(manifests.namespace)/pods/\(name)") }
        created.value = []
    }

    /// The worker pods' phases; a pod that is gone is "Gone".
    func pollPhases() {
        guard let list = try? Self.request(connection, "GET", "/api/v1/namespaces/\(manifests.namespace)/pods?labelSelector=app.kubernetes.io%2Fname%3Dhydra-worker"),
              case .array(let items)? = list["items"] else { return }
        var seen: [String: String] = [:]
        for item in items {
            guard let name = item["metadata"]?["name"]?.stringValue else { continue }
            seen[name] = item["status"]?["phase"]?.stringValue ?? "Pending"
        }
        let mine = created.value
        phases.value = Dictionary(uniqueKeysWithValues: mine.map { ($0, seen[$0] ?? "Gone") })
    }

    static func request(_ connection: Connection, _ method: String, _ path: String, body: JSONValue? = nil) throws -> JSONValue {
        let client = HTTPClient(bearerToken: connection.token, timeoutSeconds: 10, caFile: connection.caFile)
        let url = connection.apiServer + path
        let response: HTTPClient.Response
        switch method {
        case "POST": response = try client.post(url, json: try (body ?? .object([:])).encoded())
        case "DELETE": response = try client.delete(url)
        default: response = try client.get(url)
        }
        guard (200..<300).contains(response.status) || (method == "DELETE" && response.status == 404) else {
            let detail = (try? JSONValue.parse(response.body, file: path))?["message"]?.stringValue ?? String(decoding: response.body.prefix(300), as: UTF8.self)
            throw ControlError(status: 502, "Kubernetes API \(method) \(path): HTTP \(response.status): \(detail)")
        }
        return response.body.isEmpty ? .object([:]) : try JSONValue.parse(response.body, file: path)
    }

    /// A Kubernetes memory quantity ("64Gi", "128000Mi", "1000000Ki", plain bytes) in bytes.
    static func quantityBytes(_ text: String) -> Int? {
        let units: [(String, Double)] = [("Ki", 1024), ("Mi", 1_048_576), ("Gi", 1_073_741_824), ("Ti", 1_099_511_627_776), ("k", 1e3), ("M", 1e6), ("G", 1e9), ("T", 1e12)]
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            return Double(text.dropLast(suffix.count)).map { Int($0 * factor) }
        }
        return Int(text)
    }

    /// A name part Kubernetes accepts (lowercase letters, digits, '-'; at most 40 characters here).
    static func dnsLabel(_ text: String) -> String {
        let mapped = text.lowercased().map { ($0.isLetter && $0.isASCII) || ($0.isNumber && $0.isASCII) ? $0 : "-" }
        let trimmed = String(mapped).trimmingCharacters(in: CharacterSet(charactersIn: "-"))
        return String(trimmed.prefix(40)).trimmingCharacters(in: CharacterSet(charactersIn: "-"))
    }
}
