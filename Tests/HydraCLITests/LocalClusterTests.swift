import Foundation
import Testing
import HydraEngine
import HydraFormat
import HydraSystem
import HydraWorker

/// Real processes on loopback: a store server, node caches, stage workers.
@Suite(.serialized) struct LocalClusterTests {
    static func cluster(nodes: Int, fixture: String) throws -> (LocalCluster, StoreEntry, String) {
        let root = NSTemporaryDirectory() + "hydra-cluster-" + UUID().uuidString.prefix(8)
        var options = ConvertOptions(name: "m")
        options.chunkSizeBytes = 64 << 10
        _ = try Converter.convert(try Converter.loadSource(HydraProcess.fixtures + "/tiny/" + fixture), into: StoreDirectory(root: root + "/store"), options: options)
        var configuration = LocalCluster.Configuration(executable: HydraProcess.binary, storeRoot: root + "/store", workDirectory: root + "/run")
        configuration.nodes = nodes
        configuration.cacheCapacityGiB = 0.25
        return (try LocalCluster(configuration: configuration), try StoreEntry(store: StoreDirectory(root: root + "/store"), name: "m"), root)
    }

    @Test func workerProcessesOfAPipelineGenerateTheSingleProcessTokens() throws {
        let (cluster, entry, root) = try Self.cluster(nodes: 2, fixture: "falcon-40b-tiny")
        defer { cluster.stop(); try? FileManager.default.removeItem(atPath: root) }
        let prompt = [1, 15, 27, 3, 99, 4]
        let expected = try Engine(runner: try StageRunner(entry: entry)).generate([Engine.Request(prompt: prompt, maxTokens: 12)])[0]
        for pp in [1, 2, 4] {
            let pipeline = try cluster.launch(model: "m", pp: pp, kvCacheMiB: 16)
            defer { cluster.stop(pipeline) }
            let generation = try WorkerClient(endpoint: pipeline.endpoint).generate(promptIDs: prompt, maxTokens: 12)
            #expect(generation.tokens == expected, "pp=\(pp)")
            #expect(generation.finishReason == "length")
            // Every stage reports its start-up timeline.
            for endpoint in pipeline.endpoints {
                let status = try WorkerClient(endpoint: endpoint).status()
                let events = status["timeline"].flatMap { timeline -> [String]? in
                    guard case .array(let marks) = timeline else { return nil }
                    return marks.compactMap { $0["event"]?.stringValue }
                } ?? []
                #expect(status["phase"]?.stringValue == "ready" && events.contains("last_chunk") && events.contains("runtime_ready"), "\(endpoint): \(events)")
            }
        }
    }

    @Test func aStageWorkerKilledMidGenerationFailsTheRequestClearly() throws {
        let (cluster, _, root) = try Self.cluster(nodes: 2, fixture: "llama3-tiny")
        defer { cluster.stop(); try? FileManager.default.removeItem(atPath: root) }
        let pipeline = try cluster.launch(model: "m", pp: 2, kvCacheMiB: 16)
        _ = try WorkerClient(endpoint: pipeline.endpoint).generate(promptIDs: [1, 2, 3], maxTokens: 1)  // started
        let started = Date()
        let killed = LockedBox(false)
        let response = try HTTPClient(timeoutSeconds: 30).post(pipeline.endpoint + "/v1/generate", json: Array("{\"prompt_ids\":[1,2,3],\"max_tokens\":100}".utf8)) { _ in
            if !killed.value { killed.value = true; pipeline.workers[1].kill() }  // after the first token
            return true
        }
        let seconds = Date().timeIntervalSince(started)
        let body = String(decoding: response.body, as: UTF8.self)
        #expect(body.contains("\"token\"") && body.contains("\"error\"") && body.contains("stage 1"), "\(body)")
        #expect(!body.contains("finish_reason"))
        #expect(seconds < 10, "failed after \(seconds) s")
        // Stage 0 stays up and says so; a new request fails fast with the same clear reason.
        #expect(try HTTPClient(timeoutSeconds: 5).get(pipeline.endpoint + "/healthz").status == 200)
        let again = try HTTPClient(timeoutSeconds: 10).post(pipeline.endpoint + "/v1/generate", json: Array("{\"prompt_ids\":[1,2,3],\"max_tokens\":4}".utf8))
        #expect(again.status == 502 && String(decoding: again.body, as: UTF8.self).contains("stage 1"))
    }
}

@Suite(.serialized) struct ConsolidationProcessTests {
    static func consolidate(_ endpoint: String, mode: String) throws -> JSONValue {
        let response = try HTTPClient(timeoutSeconds: 60).post(endpoint + "/v1/consolidate", json: Array("{\"mode\":\"\(mode)\"}".utf8))
        guard response.status == 200 else { throw WorkerClient.Failure(message: "consolidate answered \(response.status): \(String(decoding: response.body, as: UTF8.self))") }
        return try JSONValue.parse(response.body, file: endpoint)
    }

    @Test func consolidationRetiresStageOnlyWorkersAndTurnsFullMemoryOnesIntoReplicas() throws {
        let (cluster, entry, root) = try LocalClusterTests.cluster(nodes: 2, fixture: "llama3-tiny")
        defer { cluster.stop(); try? FileManager.default.removeItem(atPath: root) }
        let prompt = [1, 15, 27, 3, 99, 4]
        let expected = try Engine(runner: try StageRunner(entry: entry)).generate([Engine.Request(prompt: prompt, maxTokens: 12)])[0]

        // Stage 0 alone has room for the whole model: the other stages exit.
        let single = try cluster.launch(model: "m", pp: 4, kvCacheMiB: 16, fullMemory: [0])
        #expect(try WorkerClient(endpoint: single.endpoint).generate(promptIDs: prompt, maxTokens: 12).tokens == expected)
        let report = try Self.consolidate(single.endpoint, mode: "migrate")
        #expect(report["mode"]?.stringValue == "migrate")
        for _ in 0..<500 where single.workers.dropFirst().contains(where: \.isRunning) { usleep(10_000) }
        #expect(single.workers.dropFirst().allSatisfy { !$0.isRunning }, "retired stages exit")
        #expect(try WorkerClient(endpoint: single.endpoint).generate(promptIDs: prompt, maxTokens: 12).tokens == expected)
        // A second consolidation is refused clearly.
        let refused = try HTTPClient(timeoutSeconds: 10).post(single.endpoint + "/v1/consolidate", json: Array("{}".utf8))
        #expect(refused.status == 409)
        cluster.stop(single)

        // Every worker has room: pp independent replicas.
        let full = try cluster.launch(model: "m", pp: 2, kvCacheMiB: 16, fullMemory: [0, 1])
        #expect(try WorkerClient(endpoint: full.endpoint).generate(promptIDs: prompt, maxTokens: 12).tokens == expected)
        _ = try Self.consolidate(full.endpoint, mode: "drain")
        for endpoint in full.endpoints {
            let tokens = try WorkerClient(endpoint: endpoint).generate(promptIDs: prompt, maxTokens: 12).tokens
            #expect(tokens == expected, "\(endpoint)")
        }
        #expect(full.workers.allSatisfy { $0.isRunning })
        cluster.stop(full)
    }
}
