/// The manifest of a store entry (formats/store-v1.md is its specification).
public struct Manifest: Encodable, Sendable, Equatable {
    public static let formatName = "hydra-store"
    public static let version = FormatVersion(major: 1, minor: 1)
    public static let alignmentBytes = 4096
    /// The largest chunk a manifest may describe (64 GiB, far above the converter's 32 MiB):
    /// sizes past it are refused, so no arithmetic on a manifest's numbers can overflow.
    public static let maxChunkBytes = 1 << 36

    public var format: String
    public var formatVersion: String
    public var name: String
    public var architecture: String
    public var layerCount: Int
    /// The head reuses the token embedding: the last stage needs the embedding's chunks too.
    public var tiedEmbeddings: Bool
    public var alignmentBytes: Int
    public var chunkSizeBytes: Int
    public var source: SourceInfo
    /// The Hugging Face config.json, verbatim (synthesised for GGUF sources).
    public var config: JSONValue
    public var files: [FileEntry]
    public var chunks: [Chunk]
    public var tensors: [Tensor]
    public var stagePlans: [StagePlan]

    public struct SourceInfo: Encodable, Sendable, Equatable {
        public var kind: SourceModel.Kind
        public var dtypePolicy: DTypePolicy
    }

    /// A file carried beside the weights (tokenizer.json, …), stored as a blob named by its SHA-256.
    public struct FileEntry: Encodable, Sendable, Equatable {
        public var name: String
        public var sha256: String
        public var bytes: Int
    }

    public struct Chunk: Encodable, Sendable, Equatable {
        public var sha256: String
        /// XXH3-64 of the stored bytes (format 1.1; absent in 1.0 entries): the fast transfer check.
        public var xxh3: String? = nil
        /// Bytes of the chunk file (compressed size when compressed).
        public var storedBytes: Int
        /// Bytes of the payload once decompressed: a multiple of `alignmentBytes`.
        public var payloadBytes: Int
        public var compression: Compression
        public var section: Section
        public var layer: Int?
    }

    public struct Tensor: Encodable, Sendable, Equatable {
        public var name: String
        public var dtype: DType
        public var shape: [Int]
        public var section: Section
        public var layer: Int?
        /// Where the tensor's bytes are, in order; more than one when it spans chunks.
        public var extents: [Extent]

        public var byteCount: Int { extents.reduce(0) { $0 + $1.length } }
    }

    public struct Extent: Encodable, Sendable, Equatable {
        public var chunk: Int
        public var offset: Int
        public var length: Int
    }

    public struct StagePlan: Encodable, Sendable, Equatable {
        public var pp: Int
        public var stages: [Stage]
    }

    public struct Stage: Encodable, Sendable, Equatable {
        public var index: Int
        public var firstLayer: Int
        /// One past the last layer this stage runs.
        public var endLayer: Int
        public var embed: Bool
        public var head: Bool
        /// Chunk indices in execution order: embedding, layers, head (and, when tied, the
        /// embedding chunks again on the last stage unless it is also the first).
        public var chunks: [Int]
        public var bytes: Int
    }
}

/// Where a tensor runs: before the layers, in one layer, or after them.
public enum Section: String, Codable, Sendable, Comparable, CaseIterable {
    case embed, layer, head

    private var order: Int { self == .embed ? 0 : self == .layer ? 1 : 2 }
    public static func < (a: Section, b: Section) -> Bool { a.order < b.order }
}

public enum Compression: Encodable, Sendable, Equatable, Hashable {
    case none
    /// A zstd frame; `planes` > 1 means the payload was split into byte planes first.
    case zstd(planes: Int)

    /// The compression a manifest names (`none`, `zstd`, `zstd-planes2`, `zstd-planes4`).
    public init?(name: String) {
        switch name {
        case "none": self = .none
        case "zstd": self = .zstd(planes: 1)
        case "zstd-planes2": self = .zstd(planes: 2)
        case "zstd-planes4": self = .zstd(planes: 4)
        default: return nil
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(name)
    }

    public var name: String {
        switch self {
        case .none: "none"
        case .zstd(let planes): planes == 1 ? "zstd" : "zstd-planes\(planes)"
        }
    }
}

public struct FormatVersion: Sendable, Equatable, CustomStringConvertible {
    public let major: Int
    public let minor: Int
    public var description: String { "\(major).\(minor)" }

    public init(major: Int, minor: Int) {
        self.major = major
        self.minor = minor
    }

    public init?(_ text: String) {
        let parts = text.split(separator: ".")
        guard parts.count == 2, let major = Int(parts[0]), let minor = Int(parts[1]) else { return nil }
        self.init(major: major, minor: minor)
    }
}

extension Manifest {
    /// Stage `stage` of the `pp`-stage plan.
    public func stage(_ stage: Int, of pp: Int) throws -> Stage {
        guard let plan = stagePlans.first(where: { $0.pp == pp }) else {
            let available = stagePlans.map(\.pp)
            throw FormatError(name, "no stage plan for pp=\(pp) (available: \(available.map(String.init).joined(separator: ", ")))")
        }
        guard stage >= 0 && stage < pp else { throw FormatError(name, "stage \(stage) out of range for pp=\(pp)") }
        return plan.stages[stage]
    }

    /// The chunk indices of stage `stage` of `pp` in execution order, or with `complement` every
    /// other chunk of the model (what a stage worker lacks to become the whole model).
    public func chunkIndices(stage: Int, of pp: Int, complement: Bool = false) throws -> [Int] {
        let own = try self.stage(stage, of: pp).chunks
        guard complement else { return own }
        let held = Set(own)
        return chunks.indices.filter { !held.contains($0) }
    }
}
