import Foundation
import HydraFormat

/// `hydra serve --config FILE`: the cluster to emulate and per-model settings, in YAML (or
/// JSON), e.g.
///
///     cluster:
///       nodes: 4
///       nic_gbps: 1
///     defaults:
///       keep_alive_seconds: 30
///     models:
///       SmolLM2-135M-Instruct:
///         ttft_slo_seconds: 2
///         replicas: 2
///
/// Models not listed under `models` are served with `defaults` when `serve_all` is true (the
/// default); command-line options override the file.
public struct ServeConfiguration: Sendable, Decodable {
    /// How a worker starts: HydraServe's overlapped start-up, or the serverless baseline.
    public enum Startup: String, Sendable, CaseIterable {
        /// A worker initialises its runtime while its chunks arrive.
        case overlapped
        /// A worker fetches its whole stage into its node cache, then initialises and loads.
        case fetchThenStart = "fetch-then-start"

        public init(parsing text: String) throws {
            guard let startup = Startup(rawValue: text) else {
                throw ControlError(status: 400, "cluster: startup must be overlapped or fetch-then-start, not '\(text)'")
            }
            self = startup
        }
    }

    public struct Cluster: Sendable, Decodable {
        public var nodes = 4
        public var nodeMemoryGiB = 8.0
        public var nicGbps = 1.0
        public var startup = Startup.overlapped

        enum CodingKeys: String, CodingKey { case nodes, nodeMemoryGiB = "node_memory_gib", nicGbps = "nic_gbps", startup }

        public init() {}

        public init(from decoder: Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            nodes = try container.decodeIfPresent(Int.self, forKey: .nodes) ?? 4
            nodeMemoryGiB = try container.decodeIfPresent(Double.self, forKey: .nodeMemoryGiB) ?? 8
            nicGbps = try container.decodeIfPresent(Double.self, forKey: .nicGbps) ?? 1
            startup = try container.decodeIfPresent(String.self, forKey: .startup).map(Startup.init(parsing:)) ?? .overlapped
        }
    }

    public var cluster = Cluster()
    public var defaults = ServedModel.Settings()
    public var models: [String: ServedModel.Settings] = [:]
    public var serveAll = true

    enum CodingKeys: String, CodingKey { case cluster, defaults, models, serveAll = "serve_all" }

    public init() {}

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        cluster = try container.decodeIfPresent(Cluster.self, forKey: .cluster) ?? Cluster()
        defaults = try container.decodeIfPresent(ServedModel.Settings.self, forKey: .defaults) ?? ServedModel.Settings()
        models = try container.decodeIfPresent([String: ServedModel.Settings].self, forKey: .models) ?? [:]
        serveAll = try container.decodeIfPresent(Bool.self, forKey: .serveAll) ?? true
    }

    public static func load(_ path: String) throws -> ServeConfiguration {
        guard let data = FileManager.default.contents(atPath: path) else { throw ControlError(status: 400, "\(path): cannot read the configuration") }
        do {
            // JSON as it is; anything else is read as YAML.
            let json = (try? JSONValue.parse(Array(data), file: path)) != nil ? data
                : Data(try YAMLReader.parse(String(decoding: data, as: UTF8.self), file: path, typed: true).encoded())
            return try JSONDecoder().decode(ServeConfiguration.self, from: json)
        } catch let error as ControlError {
            throw error
        } catch {
            throw ControlError(status: 400, "\(path): \(describe(error))")
        }
    }

    public func validate() throws {
        guard cluster.nodes >= 1, cluster.nodeMemoryGiB > 0, cluster.nicGbps > 0 else {
            throw ControlError(status: 400, "cluster: nodes, node_memory_gib and nic_gbps must be positive")
        }
        try defaults.validate("defaults")
        for (name, settings) in models { try settings.validate(name) }
    }

    /// The entries to serve from `store` and each one's settings.
    public func servedModels(store: StoreDirectory) throws -> [ServedModel] {
        let names = serveAll ? Set(try store.modelNames()).union(models.keys) : Set(models.keys)
        return try names.sorted().map { name in
            try ServedModel(entry: StoreEntry(store: store, name: name), settings: models[name] ?? defaults)
        }
    }
}
