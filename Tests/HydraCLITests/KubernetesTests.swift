import Foundation
import Testing
@testable import HydraControl
import HydraEngine
import HydraFormat
import HydraSystem
import Hummingbird
import NIOCore

/// The manifests against Kubernetes' official schemas, and the backend against a stand-in API
/// server that keeps pods in memory (the request shapes are the real API's; no cluster runs here).
@Suite(.serialized) struct KubernetesTests {
    @Test func theManifestsAndAWorkerPodValidateStrictlyAgainstTheOfficialSchemas() throws {
        let out = NSTemporaryDirectory() + "hydra-k8s-" + UUID().uuidString.prefix(8)
        defer { try? FileManager.default.removeItem(atPath: out) }
        let written = try HydraProcess.run(["k8s", "manifests", "--out", out, "--k8s-gpu-resource", "aliyun.com/gpu-mem", "--k8s-gpu-amount", "8",
                                            "--k8s-node-label", "gpu=a10", "--cache-reserve-gib", "8"])
        try #require(written.status == 0, "\(written.stderr)")
        let files = try FileManager.default.contentsOfDirectory(atPath: out).filter { $0.hasSuffix(".yaml") }.map { out + "/" + $0 }
        #expect(files.count == 10)
        let (status, output) = try ServeTests.python(["-m", "kubernetes_validate", "--strict", "--quiet"] + files + [out + "/examples/worker-pod.yaml"])
        #expect(status == 0, "\(output)")
        let daemonSet = try String(contentsOfFile: out + "/cache-daemonset.yaml", encoding: .utf8)
        #expect(daemonSet.contains("gpu: \"a10\"") && daemonSet.contains("kind: \"DaemonSet\""))
        #expect(daemonSet.contains("\"--reserve-gib\"\n") && daemonSet.contains("\"8.0\""), "\(daemonSet)")
        // A reserve beyond the capacity is refused.
        let refused = try HydraProcess.run(["k8s", "manifests", "--out", out + "/refused", "--cache-capacity-gib", "4", "--cache-reserve-gib", "8"])
        #expect(refused.status != 0 && refused.stderr.contains("reserve"), "\(refused.stderr)")
        let pod = try String(contentsOfFile: out + "/examples/worker-pod.yaml", encoding: .utf8)
        #expect(pod.contains("aliyun.com/gpu-mem: \"8\"") && pod.contains("nodeName: \"gpu-node-1\""))
        // A broken object fails the same check (the check can fail).
        try (pod.replacingOccurrences(of: "  hostNetwork: true", with: "  hostNetwork: true\n  bogusField: 1")).write(toFile: out + "/bad.yaml", atomically: true, encoding: .utf8)
        #expect(try ServeTests.python(["-m", "kubernetes_validate", "--strict", "--quiet", out + "/bad.yaml"]).0 != 0)
    }

    /// Pods and nodes in memory, answering the API paths the backend uses.
    final class FakeAPIServer: @unchecked Sendable {
        let pods = LockedBox<[String: JSONValue]>([:])
        let phases = LockedBox<[String: String]>([:])

        func application(onRunning: @escaping @Sendable (Int) async -> Void) -> some ApplicationProtocol {
            let router = Router()
            router.get("/api/v1/nodes") { request, _ -> Response in
                #expect(request.uri.query?.contains("labelSelector=gpu%3Da10") == true || request.uri.query?.contains("labelSelector=gpu=a10") == true)
                let nodes: [JSONValue] = [("gpu-a", "10.0.0.1", "16"), ("gpu-b", "10.0.0.2", "24")].map { name, address, memory in
                    .object(["metadata": .object(["name": .string(name), "annotations": .object(["hydraserve.io/device-memory-gib": .string(memory)])]),
                             "status": .object(["addresses": .array([.object(["type": .string("InternalIP"), "address": .string(address)])]),
                                                "allocatable": .object(["memory": .string("64Gi")])])])
                }
                return Self.json(.object(["items": .array(nodes)]))
            }
            router.post("/api/v1/namespaces/:namespace/pods") { [self] request, _ -> Response in
                let body = try await request.body.collect(upTo: 1 << 20)
                let pod = try JSONValue.parse(Array(buffer: body), file: "pod")
                let name = pod["metadata"]?["name"]?.stringValue ?? "?"
                pods.withValue { $0[name] = pod }
                phases.withValue { $0[name] = "Running" }
                return Self.json(pod, status: .created)
            }
            router.get("/api/v1/namespaces/:namespace/pods") { [self] _, _ -> Response in
                let known = phases.value
                let items = pods.value.keys.sorted().map { name -> JSONValue in
                    .object(["metadata": .object(["name": .string(name)]), "status": .object(["phase": .string(known[name] ?? "Pending")])])
                }
                return Self.json(.object(["items": .array(items)]))
            }
            router.delete("/api/v1/namespaces/:namespace/pods/:name") { [self] _, context -> Response in
                let name = context.parameters.get("name") ?? ""
                pods.withValue { $0[name] = nil }
                return Self.json(.object(["status": .string("Success")]))
            }
            return Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                               onServerRunning: { await onRunning($0.localAddress?.port ?? 0) })
        }

        static func json(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
            Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: try! value.encoded())))
        }
    }

    @Test func theBackendPinsStagePodsToThePlannedNodesAndWiresThePipeline() async throws {
        let fake = FakeAPIServer()
        let port = LockedBox(0)
        let app = fake.application { port.value = $0 }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await app.runService() }
            while port.value == 0 { try await Task.sleep(nanoseconds: 10_000_000) }
            let manifests = { var manifests = KubernetesManifests(); manifests.nodeLabel = "gpu=a10"; return manifests }()
            let connection = KubernetesBackend.Connection(apiServer: "http://127.0.0.1:\(port.value)", token: "t", caFile: nil)
            let backend = try await offPool { try KubernetesBackend(connection: connection, manifests: manifests, defaultNICGbps: 10, pollSeconds: 0.05) }
            #expect(backend.nodes.map(\.name) == ["gpu-a", "gpu-b"])
            #expect(backend.nodes.map(\.freeMemoryBytes) == [16 << 30, 24 << 30] && backend.nodes[0].nicBytesPerSecond == 10e9 / 8)

            let plan = ColdStartPlanner.Plan(pp: 2, nodes: ["gpu-b", "gpu-a"], stage0FullMemory: true, predictedTTFTSeconds: 1, meetsSLO: true,
                                             fetchBytes: [1, 1], reservations: [])
            let instance = try await offPool { try backend.start(entry: "SmolLM2-135M-Instruct", plan: plan, kvCacheMiB: 128, kvDType: .f16) }
            #expect(instance.podNames.count == 2 && instance.endpoints[0].hasPrefix("http://10.0.0.2:"))
            let pods = fake.pods.value
            let stage0 = try #require(pods[instance.podNames[0]])
            let stage1 = try #require(pods[instance.podNames[1]])
            #expect(stage0["spec"]?["nodeName"]?.stringValue == "gpu-b" && stage1["spec"]?["nodeName"]?.stringValue == "gpu-a")
            func command(_ pod: JSONValue) -> [String] {
                if case .array(let containers)? = pod["spec"]?["containers"], case .array(let words)? = containers.first?["command"] {
                    return words.compactMap(\.stringValue)
                }
                return []
            }
            let first = command(stage0), second = command(stage1)
            // Stage 0 holds the whole model and sends activations to stage 1 on its node's address.
            #expect(first.contains("full") && first.contains { $0.hasPrefix("10.0.0.1:") } && !first.contains("--pipeline-listen"), "\(first)")
            #expect(second.contains("--pipeline-listen") && !second.contains("--next") && second.contains("stage"), "\(second)")
            // Every stage keeps its KV cache in the model's dtype.
            #expect([first, second].allSatisfy { words in words.indices.contains { words[$0] == "--kv-dtype" && words[$0 + 1] == "f16" } })
            try await Task.sleep(nanoseconds: 200_000_000)
            #expect(backend.isAlive(instance, consolidated: false))
            // A stage pod that failed is noticed by the poll.
            fake.phases.withValue { $0[instance.podNames[1]] = "Failed" }
            try await Task.sleep(nanoseconds: 300_000_000)
            #expect(!backend.isAlive(instance, consolidated: false) && backend.isAlive(instance, consolidated: true))
            await offPool { backend.stop(instance) }
            #expect(fake.pods.value.isEmpty)
            backend.shutdown()
            group.cancelAll()
        }
    }
}
