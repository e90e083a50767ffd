import Foundation
import HydraFormat

/// Splits text into words before BPE, as the tokenizer.json `pre_tokenizer` says. Supports
/// `ByteLevel` (GPT-2 regex, optional prefix space) and a `Sequence` of `Split` regexes followed
/// by `ByteLevel` (the Llama-3 form).
struct PreTokenizer {
    static let gpt2Pattern = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#

    let splits: [NSRegularExpression]
    let addPrefixSpace: Bool

    init(_ spec: JSONValue?, file: String) throws {
        func regex(_ pattern: String) throws -> NSRegularExpression {
            do { return try NSRegularExpression(pattern: pattern) } catch {
                throw FormatError(file, "pre-tokenizer regex does not compile: \(pattern)")
            }
        }
        func byteLevel(_ spec: JSONValue) throws -> (split: NSRegularExpression?, prefix: Bool) {
            let useRegex = spec["use_regex"]?.boolValue ?? true
            return (useRegex ? try regex(Self.gpt2Pattern) : nil, spec["add_prefix_space"]?.boolValue ?? false)
        }
        switch spec?["type"]?.stringValue {
        case "ByteLevel":
            let level = try byteLevel(spec!)
            splits = level.split.map { [$0] } ?? []
            addPrefixSpace = level.prefix
        case "Sequence":
            guard case .array(let steps)? = spec?["pretokenizers"] else { throw FormatError(file, "pre-tokenizer Sequence without pretokenizers") }
            var splits: [NSRegularExpression] = []
            var prefix = false
            for step in steps {
                switch step["type"]?.stringValue {
                case "Split":
                    guard let pattern = step["pattern"]?["Regex"]?.stringValue ?? step["pattern"]?["String"]?.stringValue.map(NSRegularExpression.escapedPattern) else {
                        throw FormatError(file, "Split pre-tokenizer without a pattern")
                    }
                    guard step["behavior"]?.stringValue ?? "Isolated" == "Isolated", step["invert"]?.boolValue != true else {
                        throw FormatError(file, "Split pre-tokenizer: only behavior Isolated without invert is supported")
                    }
                    splits.append(try regex(pattern))
                case "ByteLevel":
                    let level = try byteLevel(step)
                    if let split = level.split { splits.append(split) }
                    prefix = level.prefix
                default:
                    throw FormatError(file, "unsupported pre-tokenizer step '\(step["type"]?.stringValue ?? "?")'")
                }
            }
            self.splits = splits
            addPrefixSpace = prefix
        default:
            throw FormatError(file, "unsupported pre-tokenizer '\(spec?["type"]?.stringValue ?? "none")' (supported: ByteLevel, Sequence of Split and ByteLevel)")
        }
    }

    /// The words of `text`, each still plain text.
    func words(_ text: String) -> [Substring] {
        var pieces: [Substring] = [Substring(addPrefixSpace && !text.hasPrefix(" ") ? " " + text : text)]
        for regex in splits {
            pieces = pieces.flatMap { piece -> [Substring] in
                let string = String(piece)
                let matches = regex.matches(in: string, range: NSRange(string.startIndex..., in: string))
                var out: [Substring] = []
                var cursor = string.startIndex
                for match in matches {
                    guard let range = Range(match.range, in: string), !range.isEmpty else { continue }
                    if cursor < range.lowerBound { out.append(Substring(string[cursor..<range.lowerBound])) }
                    out.append(Substring(string[range]))
                    cursor = range.upperBound
                }
                if cursor < string.endIndex { out.append(Substring(string[cursor...])) }
                return out
            }
        }
        return pieces
    }
}
