import HydraSystem

/// How a consumer checks the chunks it fetches over a network (formats/store-v1.md §9).
public enum ChunkVerification: String, Sendable, CaseIterable {
    /// XXH3-64 where the manifest carries it (format 1.1), SHA-256 otherwise: catches corruption
    /// at a small fraction of SHA-256's cost. The default.
    case fast
    /// Always SHA-256, the chunk's name: also holds against a store that serves other bytes under
    /// a name another store's manifest uses.
    case sha256
    /// No check (benchmarks only: it is what the checks are measured against).
    case none
}

extension Manifest.Chunk {
    /// What this chunk's stored bytes must hash to under `verification` (nil: not checked).
    public func expectedDigest(_ verification: ChunkVerification) -> ExpectedDigest? {
        switch verification {
        case .none: nil
        case .sha256: ExpectedDigest(.sha256, sha256)
        case .fast: xxh3.map { ExpectedDigest(.xxh3, $0) } ?? ExpectedDigest(.sha256, sha256)
        }
    }
}
