/// A single HTTP byte range (RFC 9110 §14), resolved against a representation's length.
public struct ByteRange: Equatable, Sendable {
    public let first: Int
    public let last: Int  // inclusive
    public var count: Int { last - first + 1 }

    public enum Outcome: Equatable, Sendable {
        /// No usable Range header: send the whole representation (200).
        case whole
        /// Send this range (206).
        case partial(ByteRange)
        /// The range cannot be satisfied for this length (416).
        case unsatisfiable
    }

    /// Parses `bytes=a-b`, `bytes=a-` and `bytes=-n`. A header that is not a byte range at all is
    /// ignored, as the RFC allows; several ranges are refused (416): clients of the store ask
    /// for one range per request.
    public static func resolve(_ header: String?, length: Int) -> Outcome {
        guard let header else { return .whole }
        let trimmed = header.trimmingWhitespace
        guard trimmed.hasPrefix("bytes=") else { return .whole }
        let spec = trimmed.dropFirst(6)
        guard !spec.contains(",") else { return .unsatisfiable }
        let parts = spec.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else { return .unsatisfiable }
        let start = parts[0].trimmingWhitespace, end = parts[1].trimmingWhitespace
        if start.isEmpty {
            // Suffix: the last n bytes.
            guard let suffix = Int(end), suffix > 0, length > 0 else { return .unsatisfiable }
            return .partial(ByteRange(first: max(0, length - suffix), last: length - 1))
        }
        guard let first = Int(start), first >= 0, first < length else { return .unsatisfiable }
        if end.isEmpty { return .partial(ByteRange(first: first, last: length - 1)) }
        guard let last = Int(end), last >= first else { return .unsatisfiable }
        return .partial(ByteRange(first: first, last: min(last, length - 1)))
    }
}

extension StringProtocol {
    var trimmingWhitespace: String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
