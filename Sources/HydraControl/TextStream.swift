import HydraEngine

/// Turns a request's tokens into text pieces as they come: detokenizes incrementally (a
/// character split over tokens waits for its last byte), leaves out the end-of-sequence
/// token, and ends at the first stop string — holding back text that could be the start of
/// one, so no part of a stop string is ever sent.
struct TextStream {
    private var decoder: StreamingDecoder?
    private let stopTokens: Set<Int>
    private let stopStrings: [String]
    private var held = ""
    private(set) var stopped = false

    init(tokenizer: Tokenizer?, stopTokens: Set<Int>, stopStrings: [String]) {
        decoder = tokenizer.map { StreamingDecoder(tokenizer: $0, skipSpecial: true) }
        self.stopTokens = stopTokens
        self.stopStrings = stopStrings
    }

    /// The text `token` adds that is safe to send now.
    mutating func push(_ token: Int) -> String {
        guard !stopped, !stopTokens.contains(token) else { return "" }
        let piece = decoder.map { decoder -> String in
            var decoder = decoder
            defer { self.decoder = decoder }
            return decoder.push(token)
        } ?? "\(token) "
        return release(held + piece, final: false)
    }

    /// What remains once generation ended.
    mutating func finish() -> String {
        guard !stopped else { return "" }
        let rest = decoder.map { decoder -> String in
            var decoder = decoder
            defer { self.decoder = decoder }
            return decoder.flush()
        } ?? ""
        return release(held + rest, final: true)
    }

    private mutating func release(_ text: String, final: Bool) -> String {
        if let cut = stopStrings.compactMap({ text.range(of: $0)?.lowerBound }).min() {
            stopped = true
            held = ""
            return String(text[..<cut])
        }
        guard !final else { held = ""; return text }
        // Keep back the longest tail that is a prefix of some stop string.
        var keep = 0
        for stop in stopStrings {
            for length in stride(from: min(stop.count - 1, text.count), to: 0, by: -1) where text.hasSuffix(stop.prefix(length)) {
                keep = max(keep, length)
                break
            }
        }
        let split = text.index(text.endIndex, offsetBy: -keep)
        held = String(text[split...])
        return String(text[..<split])
    }
}
