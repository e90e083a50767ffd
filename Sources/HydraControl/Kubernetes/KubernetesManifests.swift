import HydraFormat

/// The Kubernetes objects of a HydraServe deployment (`hydra k8s manifests`), and the pod of one
/// stage worker (what `KubernetesBackend` creates):
/// - `hydra-serve`: a Deployment whose pod runs the store server and the controller side by side
///   on the store's volume (the controller reads manifests and tokenizers from it), with a
///   Service for the endpoint (8000) and the store (8080), and a PersistentVolumeClaim;
/// - `hydra-cache`: a DaemonSet — one node cache per GPU node (chosen by label), its socket in a
///   host folder the workers on that node mount;
/// - RBAC for the controller: pods in its namespace, nodes read-only.
public struct KubernetesManifests: Sendable {
    public var namespace = "hydraserve"
    public var image = "hydraserve/hydra:latest"
    /// Nodes that run workers: `key=value` of a node label.
    public var nodeLabel = "hydraserve.io/gpu=true"
    /// The device resource a worker requests (e.g. `nvidia.com/gpu`, or a GPU-sharing
    /// resource such as `aliyun.com/gpu-mem`), and how much of it.
    public var gpuResource = "nvidia.com/gpu"
    public var gpuAmount = "1"
    public var storeSize = "100Gi"
    public var cacheCapacityGiB = 64.0
    /// Shared memory each node cache keeps faulted in ahead of fetches (`--reserve-gib`; 0: none).
    public var cacheReserveGiB = 0.0
    /// Host folder of the node cache's socket on every GPU node.
    public var socketDirectory = "/run/hydraserve"
    public var servePort = 8000
    public var storePort = 8080

    public init() {}

    var labelKey: String { String(nodeLabel.split(separator: "=", maxSplits: 1).first ?? "") }
    var labelValue: String { nodeLabel.split(separator: "=", maxSplits: 1).dropFirst().first.map(String.init) ?? "" }
    var storeURL: String { "http://hydra-serve.\(namespace).svc:\(storePort)" }

    public func validate() throws {
        guard !labelKey.isEmpty, nodeLabel.contains("=") else { throw ControlError(status: 400, "--node-label must be KEY=VALUE") }
        guard !namespace.isEmpty, !image.isEmpty, !gpuResource.isEmpty, cacheCapacityGiB > 0 else {
            throw ControlError(status: 400, "namespace, image and GPU resource must be given; cache capacity must be positive")
        }
        guard cacheReserveGiB >= 0 && cacheReserveGiB <= cacheCapacityGiB else {
            throw ControlError(status: 400, "the cache reserve must be 0…the cache capacity (\(cacheCapacityGiB) GiB)")
        }
    }

    /// Every object, in the order to apply them.
    public func all() -> [(file: String, object: JSONValue)] {
        [("namespace.yaml", object("v1", "Namespace", namespace: nil, name: namespace, spec: nil)),
         ("rbac.yaml", serviceAccount()), ("rbac-role.yaml", role()), ("rbac-rolebinding.yaml", roleBinding()),
         ("rbac-clusterrole.yaml", clusterRole()), ("rbac-clusterrolebinding.yaml", clusterRoleBinding()),
         ("store-volume.yaml", volumeClaim()), ("serve-deployment.yaml", serveDeployment()), ("serve-service.yaml", serveService()),
         ("cache-daemonset.yaml", cacheDaemonSet())]
    }

    /// The pod of one stage worker, pinned to its node, on the host network (the stages reach
    /// each other at their nodes' addresses), with the node cache's socket mounted.
    public func workerPod(name: String, node: String, arguments: [String], labels: [String: String]) -> JSONValue {
        var meta = labels
        meta["app.kubernetes.io/name"] = "hydra-worker"
        let container: JSONValue = .object([
            "name": .string("worker"), "image": .string(image), "command": .array((["hydra"] + arguments).map(JSONValue.string)),
            "resources": .object(["limits": .object([gpuResource: .string(gpuAmount)])]),
            "volumeMounts": .array([.object(["name": .string("cache-socket"), "mountPath": .string(socketDirectory)])]),
        ])
        return object("v1", "Pod", namespace: namespace, name: name, labels: meta, spec: .object([
            "nodeName": .string(node), "hostNetwork": .bool(true), "restartPolicy": .string("Never"),
            "containers": .array([container]),
            "volumes": .array([.object(["name": .string("cache-socket"), "hostPath": .object(["path": .string(socketDirectory), "type": .string("Directory")])])]),
        ]))
    }

    // MARK: Objects

    func object(_ apiVersion: String, _ kind: String, namespace: String?, name: String, labels: [String: String] = [:], spec: JSONValue?) -> JSONValue {
        var metadata: [String: JSONValue] = ["name": .string(name)]
        if let namespace { metadata["namespace"] = .string(namespace) }
        var allLabels = labels
        allLabels["app.kubernetes.io/part-of"] = "hydraserve"
        metadata["labels"] = .object(allLabels.mapValues(JSONValue.string))
        var fields: [String: JSONValue] = ["apiVersion": .string(apiVersion), "kind": .string(kind), "metadata": .object(metadata)]
        if let spec { fields["spec"] = spec }
        return .object(fields)
    }

    func serviceAccount() -> JSONValue { object("v1", "ServiceAccount", namespace: namespace, name: "hydra-controller", spec: nil) }

    func rule(_ groups: [String], _ resources: [String], _ verbs: [String]) -> JSONValue {
        .object(["apiGroups": .array(groups.map(JSONValue.string)), "resources": .array(resources.map(JSONValue.string)),
                 "verbs": .array(verbs.map(JSONValue.string))])
    }

    func role() -> JSONValue {
        var role = object("rbac.authorization.k8s.io/v1", "Role", namespace: namespace, name: "hydra-controller", spec: nil)
        role = merged(role, ["rules": .array([rule([""], ["pods"], ["create", "delete", "get", "list", "watch"])])])
        return role
    }

    func clusterRole() -> JSONValue {
        merged(object("rbac.authorization.k8s.io/v1", "ClusterRole", namespace: nil, name: "hydra-controller-nodes", spec: nil),
               ["rules": .array([rule([""], ["nodes"], ["get", "list", "watch"])])])
    }

    func binding(_ kind: String, roleKind: String, role: String, namespace: String?) -> JSONValue {
        merged(object("rbac.authorization.k8s.io/v1", kind, namespace: namespace, name: role, spec: nil), [
            "roleRef": .object(["apiGroup": .string("rbac.authorization.k8s.io"), "kind": .string(roleKind), "name": .string(role)]),
            "subjects": .array([.object(["kind": .string("ServiceAccount"), "name": .string("hydra-controller"), "namespace": .string(self.namespace)])]),
        ])
    }

    func roleBinding() -> JSONValue { binding("RoleBinding", roleKind: "Role", role: "hydra-controller", namespace: namespace) }
    func clusterRoleBinding() -> JSONValue { binding("ClusterRoleBinding", roleKind: "ClusterRole", role: "hydra-controller-nodes", namespace: nil) }

    func volumeClaim() -> JSONValue {
        object("v1", "PersistentVolumeClaim", namespace: namespace, name: "hydra-store", spec: .object([
            "accessModes": .array([.string("ReadWriteOnce")]),
            "resources": .object(["requests": .object(["storage": .string(storeSize)])]),
        ]))
    }

    func container(_ name: String, _ arguments: [String], port: Int, mounts: [JSONValue], env: [JSONValue] = []) -> JSONValue {
        var fields: [String: JSONValue] = [
            "name": .string(name), "image": .string(image), "command": .array((["hydra"] + arguments).map(JSONValue.string)),
            "volumeMounts": .array(mounts),
        ]
        if port > 0 {
            fields["ports"] = .array([.object(["containerPort": .int(Int64(port)), "name": .string(name)])])
            fields["readinessProbe"] = .object(["httpGet": .object(["path": .string("/healthz"), "port": .int(Int64(port))])])
        }
        if !env.isEmpty { fields["env"] = .array(env) }
        return .object(fields)
    }

    func serveDeployment() -> JSONValue {
        let labels = ["app.kubernetes.io/name": "hydra-serve"]
        let store = container("store", ["store", "serve", "--root", "/store", "--listen", "0.0.0.0:\(storePort)"], port: storePort,
                              mounts: [.object(["name": .string("store"), "mountPath": .string("/store")])])
        let serve = container("serve", ["serve", "--backend", "kubernetes", "--store", "/store", "--listen", "0.0.0.0:\(servePort)",
                                        "--k8s-image", image, "--k8s-node-label", nodeLabel, "--k8s-gpu-resource", gpuResource,
                                        "--k8s-gpu-amount", gpuAmount, "--k8s-socket-dir", socketDirectory],
                              port: servePort, mounts: [.object(["name": .string("store"), "mountPath": .string("/store"), "readOnly": .bool(true)])])
        return object("apps/v1", "Deployment", namespace: namespace, name: "hydra-serve", labels: labels, spec: .object([
            "replicas": .int(1),
            "strategy": .object(["type": .string("Recreate")]),  // one pod holds the volume at a time
            "selector": .object(["matchLabels": .object(labels.mapValues(JSONValue.string))]),
            "template": .object([
                "metadata": .object(["labels": .object(labels.mapValues(JSONValue.string))]),
                "spec": .object([
                    "serviceAccountName": .string("hydra-controller"),
                    "containers": .array([store, serve]),
                    "volumes": .array([.object(["name": .string("store"), "persistentVolumeClaim": .object(["claimName": .string("hydra-store")])])]),
                ]),
            ]),
        ]))
    }

    func serveService() -> JSONValue {
        object("v1", "Service", namespace: namespace, name: "hydra-serve", spec: .object([
            "selector": .object(["app.kubernetes.io/name": .string("hydra-serve")]),
            "ports": .array([
                .object(["name": .string("api"), "port": .int(Int64(servePort)), "targetPort": .int(Int64(servePort))]),
                .object(["name": .string("store"), "port": .int(Int64(storePort)), "targetPort": .int(Int64(storePort))]),
            ]),
        ]))
    }

    func cacheDaemonSet() -> JSONValue {
        let labels = ["app.kubernetes.io/name": "hydra-cache"]
        let nodeName: JSONValue = .object(["name": .string("NODE_NAME"),
                                           "valueFrom": .object(["fieldRef": .object(["fieldPath": .string("spec.nodeName")])])])
        let cache = container("cache", ["cache", "serve", "--node", "$(NODE_NAME)", "--socket", socketDirectory + "/cache.sock",
                                        "--capacity-gib", String(cacheCapacityGiB), "--remote", storeURL]
                                        + (cacheReserveGiB > 0 ? ["--reserve-gib", String(cacheReserveGiB)] : []),
                              port: 0, mounts: [.object(["name": .string("cache-socket"), "mountPath": .string(socketDirectory)])], env: [nodeName])
        return object("apps/v1", "DaemonSet", namespace: namespace, name: "hydra-cache", labels: labels, spec: .object([
            "selector": .object(["matchLabels": .object(labels.mapValues(JSONValue.string))]),
            "template": .object([
                "metadata": .object(["labels": .object(labels.mapValues(JSONValue.string))]),
                "spec": .object([
                    "nodeSelector": .object([labelKey: .string(labelValue)]),
                    "containers": .array([cache]),
                    "volumes": .array([.object(["name": .string("cache-socket"),
                                                "hostPath": .object(["path": .string(socketDirectory), "type": .string("DirectoryOrCreate")])])]),
                ]),
            ]),
        ]))
    }

    func merged(_ object: JSONValue, _ extra: [String: JSONValue]) -> JSONValue {
        guard case .object(var fields) = object else { return object }
        fields.merge(extra) { _, new in new }
        return .object(fields)
    }
}

extension KubernetesManifests {
    /// An object as a YAML document.
    public static func yaml(_ object: JSONValue) -> String { YAMLWriter.document(object) }
}
