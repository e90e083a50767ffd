import HydraFormat
import HydraSystem

/// What a prefetch or an attach asks of the node cache: stage `stage` of a `pp`-stage plan of
/// `model`, or with `complement` every chunk of the model that stage does not hold.
public struct CacheOrder: Sendable, Equatable, CustomStringConvertible {
    public enum Priority: String, Codable, Sendable, Comparable, CaseIterable {
        case low, high
        public static func < (a: Priority, b: Priority) -> Bool { a == .low && b == .high }
    }

    public var model: String
    public var stage: Int
    public var pp: Int
    public var complement: Bool
    public var priority: Priority

    public init(model: String, stage: Int = 0, pp: Int = 1, complement: Bool = false, priority: Priority = .high) {
        self.model = model
        self.stage = stage
        self.pp = pp
        self.complement = complement
        self.priority = priority
    }

    public var description: String {
        "\(model) \(complement ? "complement of " : "")stage \(stage) of \(pp) (\(priority.rawValue) priority)"
    }
}

/// What an attached worker receives: each chunk once, in order of arrival, then `done`; or a
/// failure that names the chunk and the reason.
public enum CacheEvent: Sendable {
    /// `index` is the chunk's position in the manifest; `memory` is sealed read-only.
    case chunk(index: Int, chunk: Manifest.Chunk, memory: SharedMemoryFile)
    case done
    case failed(String)
}

/// Counters and contents of a node cache at one moment.
public struct CacheStatus: Codable, Sendable, Equatable {
    public var node: String
    public var capacityBytes: Int
    /// Bytes held by chunks that are cached or being fetched.
    public var usedBytes: Int
    public var cachedChunks: [String]
    public var inFlightChunks: Int
    public var queuedChunks: Int
    public var attachedWorkers: Int
    public var bytesFetched: Int
    public var chunksPublished: Int
    public var transferErrors: Int
    public var verificationFailures: Int
    public var failedChunks: Int
    public var evictions: Int
    /// Shared memory faulted in ahead of chunks (`--reserve-gib`), and the chunks that landed in it.
    public var reservedBytes: Int
    public var chunksFromReserve: Int
}
