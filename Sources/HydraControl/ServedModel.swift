import Foundation
import HydraEngine
import HydraFormat

/// A model the endpoint serves: its store entry, what the planner needs to know of it
/// (bytes per stage for each pipeline depth), its tokenizer and its service levels.
public struct ServedModel: Sendable {
    /// Per-model service settings (from the configuration, else the defaults).
    public struct Settings: Sendable, Equatable, Codable {
        /// Time-to-first-token objective the cold-start planner plans for.
        public var ttftSLOSeconds = 5.0
        /// An instance idle this long is stopped (scale to zero).
        public var keepAliveSeconds = 30.0
        /// Largest pipeline depth a cold start may use.
        public var maxPP = 4
        /// Requests one instance runs at once (batched by its engine).
        public var maxConcurrency = 8
        /// Instances of this model at most.
        public var maxInstances = 2
        /// Independent copies served as `name/0`, `name/1`, … (the original HydraServe's replicas).
        public var replicas = 1
        /// KV cache of each worker, MiB.
        public var kvCacheMiB = 256
        /// The KV cache's elements: f32 (exact) or f16 (twice the tokens in the same MiB).
        public var kvDType = KVDType.f32

        public init() {}

        enum CodingKeys: String, CodingKey {
            case ttftSLOSeconds = "ttft_slo_seconds", keepAliveSeconds = "keep_alive_seconds", maxPP = "max_pp",
                 maxConcurrency = "max_concurrency", maxInstances = "max_instances", replicas, kvCacheMiB = "kv_cache_mib",
                 kvDType = "kv_dtype"
        }

        public init(from decoder: Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            let defaults = Settings()
            ttftSLOSeconds = try container.decodeIfPresent(Double.self, forKey: .ttftSLOSeconds) ?? defaults.ttftSLOSeconds
            keepAliveSeconds = try container.decodeIfPresent(Double.self, forKey: .keepAliveSeconds) ?? defaults.keepAliveSeconds
            maxPP = try container.decodeIfPresent(Int.self, forKey: .maxPP) ?? defaults.maxPP
            maxConcurrency = try container.decodeIfPresent(Int.self, forKey: .maxConcurrency) ?? defaults.maxConcurrency
            maxInstances = try container.decodeIfPresent(Int.self, forKey: .maxInstances) ?? defaults.maxInstances
            replicas = try container.decodeIfPresent(Int.self, forKey: .replicas) ?? defaults.replicas
            kvCacheMiB = try container.decodeIfPresent(Int.self, forKey: .kvCacheMiB) ?? defaults.kvCacheMiB
            if let name = try container.decodeIfPresent(String.self, forKey: .kvDType) {
                guard let dtype = KVDType(rawValue: name) else {
                    throw ControlError(status: 400, "kv_dtype '\(name)' is not one of \(KVDType.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                kvDType = dtype
            }
        }

        public func validate(_ model: String) throws {
            guard ttftSLOSeconds > 0, keepAliveSeconds >= 0, maxPP >= 1, maxConcurrency >= 1, maxInstances >= 1, replicas >= 1, kvCacheMiB >= 1 else {
                throw ControlError(status: 400, "model '\(model)': ttft_slo_seconds, max_pp, max_concurrency, max_instances, replicas and kv_cache_mib must be positive, keep_alive_seconds not negative")
            }
        }
    }

    /// The store entry's name.
    public let entryName: String
    public let settings: Settings
    public let tokenizer: Tokenizer?
    public let chatTemplate: ChatTemplate?
    public let stopTokens: Set<Int>
    /// Prompt plus generated tokens at most (the model's positions, capped by the KV cache).
    public let contextLength: Int
    /// pp → bytes each stage fetches.
    public let stageBytes: [Int: [Int]]
    public let wholeBytes: Int

    public init(entry: StoreEntry, settings: Settings) throws {
        try settings.validate(entry.manifest.name)
        entryName = entry.manifest.name
        self.settings = settings
        tokenizer = try LoadedTokenizer.load(entry)
        chatTemplate = try LoadedTokenizer.chatTemplate(entry)
        stopTokens = try LoadedTokenizer.stopTokens(entry, tokenizer: tokenizer)
        let config = try ModelConfig(entry.manifest.config, name: entryName)
        // Every stage sizes its KV blocks for the whole model (so it can consolidate): the same capacity.
        let blockSize = 16
        let blocks = StageRunner.blockCount(config: config, layers: config.layerCount, kvCacheBytes: settings.kvCacheMiB << 20, blockSize: blockSize,
                                              kvDType: settings.kvDType)
        contextLength = min(config.maxPositions, blocks * blockSize)
        var stageBytes: [Int: [Int]] = [:]
        var stageChunks: [Int: [[String]]] = [:]
        let manifest = entry.manifest
        for plan in manifest.stagePlans where plan.pp <= settings.maxPP {
            stageBytes[plan.pp] = plan.stages.map(\.bytes)
            stageChunks[plan.pp] = try (0..<plan.pp).map { stage in try manifest.chunkIndices(stage: stage, of: plan.pp).map { manifest.chunks[$0].sha256 } }
        }
        self.stageBytes = stageBytes
        self.stageChunks = stageChunks
        chunkBytes = Dictionary(manifest.chunks.map { ($0.sha256, $0.storedBytes) }) { first, _ in first }
        wholeBytes = manifest.chunks.reduce(0) { $0 + $1.storedBytes }
    }

    /// pp → each stage's chunk digests; each chunk's stored bytes.
    public let stageChunks: [Int: [[String]]]
    public let chunkBytes: [String: Int]

    /// What the planner knows of this model.
    public func plannerModel(_ function: String) -> ColdStartPlanner.Model {
        var model = ColdStartPlanner.Model(name: function, stageBytes: stageBytes, wholeBytes: wholeBytes, ttftSLOSeconds: settings.ttftSLOSeconds)
        model.stageChunks = stageChunks
        model.chunkBytes = chunkBytes
        return model
    }

    /// The names clients call this model by: the entry's, and `entry/k` per replica.
    public var functionNames: [String] {
        settings.replicas == 1 ? [entryName] : [entryName] + (0..<settings.replicas).map { "\(entryName)/\($0)" }
    }
}
