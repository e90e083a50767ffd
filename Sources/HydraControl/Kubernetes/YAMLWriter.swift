import HydraFormat

/// Writes JSON values as block-style YAML (what `kubectl` users read and write). Strings are
/// always double-quoted with JSON escapes, which YAML reads the same way, so no value can be
/// mistaken for a number, a boolean or a null.
enum YAMLWriter {
    static func document(_ value: JSONValue) -> String { write(value, indent: 0, inList: false) }

    static func documents(_ values: [JSONValue]) -> String { values.map(document).joined(separator: "---\n") }

    private static func write(_ value: JSONValue, indent: Int, inList: Bool) -> String {
        let pad = String(repeating: "  ", count: indent)
        switch value {
        case .object(let fields) where !fields.isEmpty:
            var out = ""
            for (index, key) in fields.keys.sorted().enumerated() {
                let prefix = inList && index == 0 ? "" : pad
                out += prefix + self.key(key) + ":" + nested(fields[key]!, indent: indent)
            }
            return out
        case .array(let items) where !items.isEmpty:
            return items.map { pad + "- " + listItem($0, indent: indent + 1) }.joined()
        default:
            return pad + scalar(value) + "\n"
        }
    }

    /// The text after `key:`.
    private static func nested(_ value: JSONValue, indent: Int) -> String {
        switch value {
        case .object(let fields) where !fields.isEmpty: return "\n" + write(value, indent: indent + 1, inList: false)
        case .array(let items) where !items.isEmpty: return "\n" + write(value, indent: indent, inList: false)
        default: return " " + scalar(value) + "\n"
        }
    }

    /// The text after `- `.
    private static func listItem(_ value: JSONValue, indent: Int) -> String {
        switch value {
        case .object(let fields) where !fields.isEmpty: return write(value, indent: indent, inList: true)
        case .array(let items) where !items.isEmpty: return "\n" + write(value, indent: indent, inList: false)
        default: return scalar(value) + "\n"
        }
    }

    /// Keys such as `apiVersion` or `app.kubernetes.io/name` plain, anything else quoted.
    private static func key(_ text: String) -> String {
        let plain = text.first?.isLetter == true && text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "_./-".contains($0)) }
            && !["true", "false", "null", "yes", "no", "on", "off", "y", "n"].contains(text.lowercased())
        return plain ? text : scalar(.string(text))
    }

    private static func scalar(_ value: JSONValue) -> String {
        switch value {
        case .object: return "{}"
        case .array: return "[]"
        default: return String(decoding: (try? value.encoded()) ?? [], as: UTF8.self)
        }
    }
}
