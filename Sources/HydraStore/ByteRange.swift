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

    /// What a GET with this Range header sends of a representation of `length` bytes: `range`,
    /// a part of it (206, with `contentRange` to send) or the whole (200, `contentRange` nil);
    /// nil when the range cannot be satisfied (416).
    public static func selection(_ header: String?, length: Int) -> (range: ByteRange, contentRange: String?)? {
        switch resolve(header, length: length) {
        case .whole: return (ByteRange(first: 0, last: length - 1), nil)
        case .partial(let part): return (part, "bytes \(part.first)-\(part.last)/\(length)")
        case .unsatisfiable: return nil
        }
    }

    /// Parses `bytes=a-b`, `bytes=a-` and `bytes=-n`. A header that is not a byte range at all is
    /// ignored, as the RFC allows; several ranges are refused (416): clients of the store ask
    /// for one range per request. Positions are decimal digits only (RFC 9110's 1*DIGIT).
    /// Works on the header's UTF-8 bytes: the store server resolves one on every chunk request
    /// (the String operations it used before were an eighth of a small request's CPU).
    public static func resolve(_ header: String?, length: Int) -> Outcome {
        guard var header else { return .whole }
        return header.withUTF8 { resolve(Slice(base: $0, bounds: $0.indices), length: length) }
    }

    private static func resolve(_ header: Slice<UnsafeBufferPointer<UInt8>>, length: Int) -> Outcome {
        let trimmed = trimmingBlanks(header)
        let unit = "bytes=".utf8
        guard trimmed.count >= unit.count, trimmed.prefix(unit.count).elementsEqual(unit) else { return .whole }
        let spec = trimmed.dropFirst(unit.count)
        guard !spec.contains(UInt8(ascii: ",")), let dash = spec.firstIndex(of: UInt8(ascii: "-")) else { return .unsatisfiable }
        let start = trimmingBlanks(spec[..<dash]), end = trimmingBlanks(spec[(dash + 1)...])
        if start.isEmpty {
            // Suffix: the last n bytes.
            guard let suffix = decimal(end), suffix > 0, length > 0 else { return .unsatisfiable }
            return .partial(ByteRange(first: max(0, length - suffix), last: length - 1))
        }
        guard let first = decimal(start), first < length else { return .unsatisfiable }
        if end.isEmpty { return .partial(ByteRange(first: first, last: length - 1)) }
        guard let last = decimal(end), last >= first else { return .unsatisfiable }
        return .partial(ByteRange(first: first, last: min(last, length - 1)))
    }

    private static func trimmingBlanks(_ bytes: Slice<UnsafeBufferPointer<UInt8>>) -> Slice<UnsafeBufferPointer<UInt8>> {
        let blank = { (byte: UInt8) in byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        guard let first = bytes.firstIndex(where: { !blank($0) }), let last = bytes.lastIndex(where: { !blank($0) }) else {
            return bytes[bytes.endIndex...]
        }
        return bytes[first...last]
    }

    /// A non-negative decimal number; nil for anything else, empty, or past Int.max.
    private static func decimal(_ digits: Slice<UnsafeBufferPointer<UInt8>>) -> Int? {
        guard !digits.isEmpty else { return nil }
        var value = 0
        for byte in digits {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let (times, overflow) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times.addingReportingOverflow(Int(byte - UInt8(ascii: "0")))
            guard !overflow, !overflow2 else { return nil }
            value = sum
        }
        return value
    }
}
