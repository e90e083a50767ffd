import Foundation
import HydraFormat

/// A Hugging Face `tokenizer.json` byte-level BPE tokenizer (GPT-2, SmolLM2, Llama-3, OPT,
/// Falcon): added and special tokens matched first, then the pre-tokenizer, then merges by rank.
public final class Tokenizer: @unchecked Sendable {
    public let vocabulary: [String: Int]
    private let tokens: [Int: String]
    private let mergeRanks: [String: Int]
    private let preTokenizer: PreTokenizer
    /// Added tokens, longest first (so "<|im_start|>" wins over any prefix of it).
    private let addedTokens: [(content: String, id: Int, special: Bool)]
    private let addedByID: [Int: (content: String, special: Bool)]
    public let bosTokenID: Int?
    public let eosTokenID: Int?
    public let addBOS: Bool
    private var cache: [Substring: [Int]] = [:]
    private let lock = NSLock()

    public init(tokenizerJSON: [UInt8], tokenizerConfig: [UInt8]? = nil, file: String = "tokenizer.json") throws {
        let json = try JSONValue.parse(tokenizerJSON, file: file)
        guard json["model"]?["type"]?.stringValue == "BPE" else {
            throw FormatError(file, "unsupported tokenizer model '\(json["model"]?["type"]?.stringValue ?? "none")' (supported: BPE)")
        }
        guard case .object(let vocab)? = json["model"]?["vocab"] else { throw FormatError(file, "tokenizer has no vocabulary") }
        var vocabulary: [String: Int] = [:]
        var tokens: [Int: String] = [:]
        for (token, id) in vocab {
            guard let id = id.intValue else { throw FormatError(file, "vocabulary entry '\(token)' has no integer id") }
            vocabulary[token] = id
            tokens[id] = token
        }
        var ranks: [String: Int] = [:]
        if case .array(let merges)? = json["model"]?["merges"] {
            for (rank, merge) in merges.enumerated() {
                // Merges are "a b" strings (older files) or ["a", "b"] pairs (newer).
                switch merge {
                case .string(let text): ranks[text] = rank
                case .array(let pair) where pair.count == 2:
                    guard let a = pair[0].stringValue, let b = pair[1].stringValue else { fallthrough }
                    ranks[a + " " + b] = rank
                default: throw FormatError(file, "merge \(rank) is neither \"a b\" nor [\"a\", \"b\"]")
                }
            }
        }
        if let normalizer = json["normalizer"], normalizer != .null {
            throw FormatError(file, "unsupported normalizer '\(normalizer["type"]?.stringValue ?? "?")'")
        }
        var added: [(String, Int, Bool)] = []
        var addedByID: [Int: (String, Bool)] = [:]
        if case .array(let list)? = json["added_tokens"] {
            for token in list {
                guard let content = token["content"]?.stringValue, let id = token["id"]?.intValue else { continue }
                let special = token["special"]?.boolValue ?? false
                added.append((content, id, special))
                addedByID[id] = (content, special)
                tokens[id] = tokens[id] ?? content
            }
        }
        self.vocabulary = vocabulary
        self.tokens = tokens
        mergeRanks = ranks
        preTokenizer = try PreTokenizer(json["pre_tokenizer"], file: file)
        addedTokens = added.sorted { $0.0.count > $1.0.count }
        self.addedByID = addedByID

        let config = try tokenizerConfig.map { try JSONValue.parse($0, file: "tokenizer_config.json") }
        func tokenID(_ key: String) -> Int? {
            let value = config?[key]
            let text = value?.stringValue ?? value?["content"]?.stringValue
            return text.flatMap { vocabulary[$0] ?? addedByID.first(where: { $1.0 == text })?.key }
        }
        bosTokenID = tokenID("bos_token")
        eosTokenID = tokenID("eos_token")
        addBOS = config?["add_bos_token"]?.boolValue ?? false
    }

    public var vocabularySize: Int { (tokens.keys.max() ?? -1) + 1 }

    public func token(_ id: Int) -> String? { tokens[id] }

    /// Encodes text; added tokens written literally in the text (like "<|im_start|>") become their ids.
    public func encode(_ text: String, addSpecialTokens: Bool = true) -> [Int] {
        var ids: [Int] = []
        if addSpecialTokens && addBOS, let bos = bosTokenID { ids.append(bos) }
        var rest = Substring(text)
        while !rest.isEmpty {
            // The earliest added token in the rest, longest on ties.
            var found: (range: Range<Substring.Index>, id: Int)?
            for token in addedTokens {
                if let range = rest.range(of: token.content), found == nil || range.lowerBound < found!.range.lowerBound {
                    found = (range, token.id)
                }
            }
            let plain = found.map { rest[rest.startIndex..<$0.range.lowerBound] } ?? rest
            if !plain.isEmpty {
                for word in preTokenizer.words(String(plain)) { ids += encodeWord(word) }
            }
            guard let found else { break }
            ids.append(found.id)
            rest = rest[found.range.upperBound...]
        }
        return ids
    }

    private func encodeWord(_ word: Substring) -> [Int] {
        if let cached = lock.withLock({ cache[word] }) { return cached }
        var symbols = ByteLevel.encode(word).map(String.init)
        while symbols.count > 1 {
            var best: (rank: Int, index: Int)?
            for i in 0..<(symbols.count - 1) {
                if let rank = mergeRanks[symbols[i] + " " + symbols[i + 1]], best == nil || rank < best!.rank { best = (rank, i) }
            }
            guard let best else { break }
            symbols[best.index] += symbols[best.index + 1]
            symbols.remove(at: best.index + 1)
        }
        // Every byte has a token in a byte-level vocabulary; a symbol without one is dropped.
        let ids = symbols.compactMap { vocabulary[$0] }
        lock.withLock { if cache.count < 100_000 { cache[word] = ids } }
        return ids
    }

    /// The bytes a token stands for.
    public func bytes(_ id: Int, skipSpecial: Bool = false) -> [UInt8] {
        if let added = addedByID[id] { return skipSpecial && added.special ? [] : Array(added.content.utf8) }
        guard let token = tokens[id] else { return [] }
        return ByteLevel.decode(token) ?? Array(token.utf8)
    }

    public func decode(_ ids: [Int], skipSpecial: Bool = false) -> String {
        String(decoding: ids.flatMap { bytes($0, skipSpecial: skipSpecial) }, as: UTF8.self)
    }
}

/// Turns a stream of token ids into text pieces that are always whole UTF-8: bytes of a
/// character split across tokens are held back until the character is complete.
public struct StreamingDecoder {
    private let tokenizer: Tokenizer
    private let skipSpecial: Bool
    private var pending: [UInt8] = []

    public init(tokenizer: Tokenizer, skipSpecial: Bool = false) {
        self.tokenizer = tokenizer
        self.skipSpecial = skipSpecial
    }

    public mutating func push(_ id: Int) -> String {
        pending += tokenizer.bytes(id, skipSpecial: skipSpecial)
        let complete = Self.completePrefixLength(pending)
        let text = String(decoding: pending[..<complete], as: UTF8.self)
        pending.removeFirst(complete)
        return text
    }

    /// Whatever is left at the end (an incomplete character decodes to U+FFFD).
    public mutating func flush() -> String {
        defer { pending = [] }
        return String(decoding: pending, as: UTF8.self)
    }

    /// The length of the longest prefix that does not end inside a multi-byte character.
    static func completePrefixLength(_ bytes: [UInt8]) -> Int {
        var i = bytes.count - 1
        var back = 0
        while i >= 0 && back < 4 && bytes[i] & 0xC0 == 0x80 { i -= 1; back += 1 }
        guard i >= 0 else { return bytes.count }
        let lead = bytes[i]
        let length = lead < 0x80 ? 1 : lead >> 5 == 0b110 ? 2 : lead >> 4 == 0b1110 ? 3 : lead >> 3 == 0b11110 ? 4 : 1
        return i + length <= bytes.count ? bytes.count : i
    }
}
