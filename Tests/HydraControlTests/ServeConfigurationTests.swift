import Foundation
import Testing
import HydraEngine
@testable import HydraControl

@Suite struct ServeConfigurationTests {
    func load(_ text: String) throws -> ServeConfiguration {
        let path = NSTemporaryDirectory() + "hydra-cluster-\(UUID().uuidString.prefix(8)).yaml"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return try ServeConfiguration.load(path)
    }

    @Test func aYAMLClusterFileSetsTheClusterDefaultsAndModels() throws {
        let configuration = try load("""
        # four emulated nodes
        cluster:
          nodes: 4
          node_memory_gib: 12.5
          nic_gbps: 0.25
        defaults:
          keep_alive_seconds: 10
        models:
          SmolLM2-135M-Instruct:
            ttft_slo_seconds: 2
            replicas: 2
          "opt-125m":
            max_pp: 1
        serve_all: false
        """)
        #expect(configuration.cluster.nodes == 4 && configuration.cluster.nodeMemoryGiB == 12.5 && configuration.cluster.nicGbps == 0.25)
        #expect(configuration.defaults.keepAliveSeconds == 10 && configuration.defaults.ttftSLOSeconds == 5)
        #expect(configuration.models["SmolLM2-135M-Instruct"]?.replicas == 2 && configuration.models["SmolLM2-135M-Instruct"]?.ttftSLOSeconds == 2)
        #expect(configuration.models["opt-125m"]?.maxPP == 1 && !configuration.serveAll)
        // The same file as JSON reads the same.
        let json = try load(#"{"cluster": {"nodes": 4, "node_memory_gib": 12.5, "nic_gbps": 0.25}, "serve_all": false}"#)
        #expect(json.cluster.nodeMemoryGiB == 12.5 && !json.serveAll)
    }

    @Test func theStartupIsOverlappedUnlessTheBaselineIsAskedFor() throws {
        #expect(try load("cluster:\n  nodes: 2\n").cluster.startup == .overlapped)
        #expect(try load("cluster:\n  startup: fetch-then-start\n").cluster.startup == .fetchThenStart)
        #expect { try load("cluster:\n  startup: lazily\n") } throws: {
            ($0 as? ControlError)?.message.contains("startup must be overlapped or fetch-then-start, not 'lazily'") == true
        }
    }

    @Test func aModelCanKeepItsKVCacheInF16() throws {
        let configuration = try load("defaults:\n  kv_cache_mib: 64\nmodels:\n  a:\n    kv_dtype: f16\n  b:\n    max_pp: 1\n")
        #expect(configuration.models["a"]?.kvDType == .f16 && configuration.models["b"]?.kvDType == .f32)
        #expect(configuration.defaults.kvDType == .f32)
        #expect { try load("models:\n  a:\n    kv_dtype: int4\n") } throws: {
            "\($0)".contains("kv_dtype 'int4' is not one of f32, f16")
        }
    }

    @Test func badFilesNameTheirProblem() throws {
        #expect { try load("cluster:\n  nodes: four\n") } throws: { ($0 as? ControlError)?.message.contains("nodes") == true }
        #expect { try load("cluster nodes 4\n") } throws: { ($0 as? ControlError)?.message.contains(":1:") == true }
        let zero = try load("defaults:\n  max_pp: 0\n")
        #expect(throws: ControlError.self) { try zero.validate() }
    }
}
