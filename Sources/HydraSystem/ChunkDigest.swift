import CXXH3

/// The hash functions a chunk can be checked with. SHA-256 names every chunk (its content
/// address); XXH3-64, when the manifest carries it, checks a transfer five to ten times faster —
/// it catches corruption in transit or at rest, not a store that lies (formats/store-v1.md §9).
public enum DigestAlgorithm: String, Sendable, CaseIterable, CustomStringConvertible {
    case sha256
    case xxh3

    public var description: String { self == .sha256 ? "SHA-256" : "XXH3-64" }

    /// The digest of `bytes` as lowercase hex.
    public func hex(_ bytes: UnsafeRawBufferPointer) -> String {
        switch self {
        case .sha256: SHA256Hasher.hex(bytes)
        case .xxh3: xxh3Hex(chydra_xxh3_64(bytes.baseAddress, bytes.count))
        }
    }

    /// True for a well-formed digest of this algorithm: lowercase hex of the right length.
    @inlinable public func isWellFormed(_ hex: some StringProtocol) -> Bool {
        hex.utf8.count == (self == .sha256 ? 64 : 16)
            && hex.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
    }
}

/// What a chunk's bytes must hash to.
public struct ExpectedDigest: Sendable, Equatable, CustomStringConvertible {
    public let algorithm: DigestAlgorithm
    public let hex: String

    public init(_ algorithm: DigestAlgorithm, _ hex: String) {
        self.algorithm = algorithm
        self.hex = hex
    }

    public var description: String { "\(algorithm) \(hex)" }
}

/// XXH3-64's canonical form: the 64-bit value big-endian, as 16 hex digits (what `xxhsum -H3`
/// and Python's `xxhash.xxh3_64_hexdigest` print).
func xxh3Hex(_ value: UInt64) -> String {
    hexString((0..<8).map { UInt8(truncatingIfNeeded: value >> (56 - 8 * $0)) })
}

/// A digest in progress that can be shared by reference: a transfer cut short keeps its state
/// and a retry resumes hashing where the bytes resume.
public final class IncrementalDigest: @unchecked Sendable {
    public let algorithm: DigestAlgorithm
    private var sha256: SHA256Hasher?
    private let xxh3: UnsafeMutableRawPointer?
    private var finished = false
    public private(set) var byteCount = 0

    public init(_ algorithm: DigestAlgorithm) {
        self.algorithm = algorithm
        switch algorithm {
        case .sha256:
            sha256 = SHA256Hasher()
            xxh3 = nil
        case .xxh3:
            guard let state = chydra_xxh3_create() else { fatalError("XXH3 state allocation failed: out of memory") }
            xxh3 = state
        }
    }

    deinit { if let xxh3 { chydra_xxh3_free(xxh3) } }

    public func update(_ bytes: UnsafeRawBufferPointer) {
        precondition(!finished, "update after finalizeHex")
        guard bytes.count > 0 else { return }
        if let xxh3 {
            chydra_xxh3_update(xxh3, bytes.baseAddress, bytes.count)
        } else {
            sha256!.update(bytes)
        }
        byteCount += bytes.count
    }

    public func finalizeHex() -> String {
        precondition(!finished, "finalizeHex called twice")
        finished = true
        if let xxh3 { return xxh3Hex(chydra_xxh3_digest(xxh3)) }
        return sha256.take()!.finalizeHex()
    }
}
