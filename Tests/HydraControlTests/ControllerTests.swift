import Foundation
import Testing
import HydraEngine
import HydraFormat
@testable import HydraControl

/// The controller driven through a backend that never has room: every start fails to place.
@Suite struct ControllerTests {
    final class FullBackend: ClusterBackend, @unchecked Sendable {
        let nodes = [ColdStartPlanner.Node(name: "n0", nicBytesPerSecond: 1e9, freeMemoryBytes: 0)]
        func start(entry: String, plan: ColdStartPlanner.Plan, kvCacheMiB: Int, kvDType: KVDType) throws -> BackendInstance {
            Issue.record("nothing fits: no start should reach the backend")
            throw ControlError(status: 500, "unreachable")
        }
        func isAlive(_ instance: BackendInstance, consolidated: Bool) -> Bool { false }
        func stop(_ instance: BackendInstance) {}
        func cachedChunks() -> [String: Set<String>] { [:] }
        func heal() -> [String] { [] }
        func shutdown() {}
    }

    static func model() throws -> ServedModel {
        let root = NSTemporaryDirectory() + "hydra-controller-" + UUID().uuidString.prefix(8)
        let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures/tiny/llama3-tiny").path
        _ = try Converter.convert(try Converter.loadSource(fixtures), into: StoreDirectory(root: root), options: ConvertOptions(name: "m"))
        var settings = ServedModel.Settings()
        settings.maxConcurrency = 4
        settings.maxInstances = 3
        settings.kvCacheMiB = 4
        return try ServedModel(entry: StoreEntry(store: StoreDirectory(root: root), name: "m"), settings: settings)
    }

    /// A burst larger than one instance takes, while starts keep failing: the requests wait,
    /// retries are spaced, and each fails with 503 at its queue time-out. Nine requests at
    /// concurrency 4 make three starts in one action list (4 + 4 + 1); when the first fails, its
    /// requests must not be sent to the third, whose start is still to come — that once recursed
    /// until the stack overflowed (this test then crashes with SIGSEGV).
    @Test func requestsNoNodeCanTakeWaitThenFailClearly() async throws {
        let controller = Controller(models: [try Self.model()], backend: FullBackend(), queueTimeoutSeconds: 2.5)
        await controller.start()
        let outcomes = try await withThrowingTaskGroup(of: Int?.self) { group in
            for _ in 0..<9 {
                group.addTask {
                    do {
                        for try await _ in controller.generate(function: "m", promptIDs: [1, 2, 3], parameters: .init(maxTokens: 2)) {}
                        return nil
                    } catch let error as ControlError { return error.status }
                }
            }
            return try await group.reduce(into: [Int?]()) { $0.append($1) }
        }
        #expect(outcomes.count == 9 && outcomes.allSatisfy { $0 == 503 }, "\(outcomes)")
        let (instances, depth) = (await controller.status(), await controller.queueDepth("m"))
        #expect(instances.isEmpty && depth == 0)
        await controller.shutdown()
    }

    /// What an instance holds, as its events report it: every stage's weights (stage 0 the whole
    /// model when it will consolidate) and the KV cache; after consolidation, one worker's.
    @Test func heldMemoryFollowsThePlacementAndConsolidation() throws {
        let model = try Self.model()
        let stages = try #require(model.stageBytes[2])
        let plan = ColdStartPlanner.Plan(pp: 2, nodes: ["n0", "n1"], stage0FullMemory: true, predictedTTFTSeconds: 1, meetsSLO: true,
                                         fetchBytes: stages, reservations: [])
        var record = Controller.InstanceRecord(function: "m", model: model, plan: plan, backend: BackendInstance(endpoints: ["http://x"]),
                                               startedSeconds: 0, queueSeconds: 0)
        let kvCache = 4 << 20
        #expect(Controller.heldBytes(record) == model.wholeBytes + stages[1] + kvCache)
        record.plan.stage0FullMemory = false
        #expect(Controller.heldBytes(record) == stages[0] + stages[1] + kvCache)
        record.consolidation = .done
        #expect(Controller.heldBytes(record) == model.wholeBytes + kvCache)
    }
}
