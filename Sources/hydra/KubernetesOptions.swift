import ArgumentParser
import HydraControl

/// How HydraServe runs on Kubernetes: shared by `hydra k8s manifests` and `hydra serve --backend kubernetes`.
struct KubernetesOptions: ParsableArguments {
    @Option(name: .customLong("k8s-namespace"), help: "Namespace of every object.") var namespace: String = "hydraserve"
    @Option(name: .customLong("k8s-image"), help: "Container image with the hydra binary.") var image: String = "hydraserve/hydra:latest"
    @Option(name: .customLong("k8s-node-label"), help: "KEY=VALUE label of the GPU nodes.") var nodeLabel: String = "hydraserve.io/gpu=true"
    @Option(name: .customLong("k8s-gpu-resource"), help: "Device resource a worker requests (e.g. nvidia.com/gpu, or a GPU-sharing resource).")
    var gpuResource: String = "nvidia.com/gpu"
    @Option(name: .customLong("k8s-gpu-amount"), help: "How much of it.") var gpuAmount: String = "1"
    @Option(name: .customLong("k8s-socket-dir"), help: "Host folder of each node cache's socket.") var socketDirectory: String = "/run/hydraserve"

    var manifests: KubernetesManifests {
        var manifests = KubernetesManifests()
        manifests.namespace = namespace
        manifests.image = image
        manifests.nodeLabel = nodeLabel
        manifests.gpuResource = gpuResource
        manifests.gpuAmount = gpuAmount
        manifests.socketDirectory = socketDirectory
        return manifests
    }
}
