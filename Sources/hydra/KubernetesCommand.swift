import ArgumentParser
import Foundation
import HydraControl

struct KubernetesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "k8s",
        abstract: "Run HydraServe on Kubernetes.",
        subcommands: [KubernetesManifestsCommand.self]
    )
}

struct KubernetesManifestsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "manifests",
        abstract: "Write the Kubernetes manifests of a HydraServe deployment.",
        discussion: """
        Writes one YAML file per object into --out: the namespace; RBAC for the controller (pods in \
        its namespace, nodes read-only); the store's volume claim; the hydra-serve Deployment (the \
        store server and `hydra serve --backend kubernetes` in one pod on that volume) and its \
        Service (8000: the endpoint, 8080: the store); and the hydra-cache DaemonSet (a node cache \
        on every node with --k8s-node-label). Apply them with `kubectl apply -f DIR`, then put \
        models in the store (`hydra convert` into the volume). Workers are pods the controller \
        creates on demand, one per stage, pinned to the node the planner chose.
        """
    )

    @Option(help: "Folder to write the manifests into.") var out: String = "k8s"
    @Option(name: .customLong("store-size"), help: "Size of the store's volume.") var storeSize: String = "100Gi"
    @Option(name: .customLong("cache-capacity-gib"), help: "Each node cache's capacity, GiB.") var cacheCapacityGiB: Double = 64
    @Option(name: .customLong("cache-reserve-gib"), help: "Shared memory each node cache faults in ahead of fetches, GiB (hydra cache serve --reserve-gib; 0: none).")
    var cacheReserveGiB: Double = 0
    @OptionGroup var kubernetes: KubernetesOptions

    func run() throws {
        try runReportingErrors {
            var manifests = kubernetes.manifests
            manifests.storeSize = storeSize
            manifests.cacheCapacityGiB = cacheCapacityGiB
            manifests.cacheReserveGiB = cacheReserveGiB
            try manifests.validate()
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            for (file, object) in manifests.all() {
                try Data(KubernetesManifests.yaml(object).utf8).write(to: URL(fileURLWithPath: out + "/" + file))
            }
            // What the controller creates per stage, for reference (a subfolder: `kubectl apply -f DIR` skips it).
            try FileManager.default.createDirectory(atPath: out + "/examples", withIntermediateDirectories: true)
            let pod = manifests.workerPod(name: "hydra-example-1-s0", node: "gpu-node-1", arguments: [
                "worker", "--model", "EXAMPLE", "--stage", "0", "--pp", "2", "--cache-socket", manifests.socketDirectory + "/cache.sock",
                "--listen", "0.0.0.0:20002", "--kv-cache-mib", "256", "--memory", "full", "--next", "10.0.0.2:20003"],
                labels: ["hydraserve.io/model": "example", "hydraserve.io/instance": "1"])
            try Data(KubernetesManifests.yaml(pod).utf8).write(to: URL(fileURLWithPath: out + "/examples/worker-pod.yaml"))
            Terminal.note("wrote \(manifests.all().count) manifests into \(out) (and examples/worker-pod.yaml, a stage worker as the controller creates it)")
        }
    }
}
