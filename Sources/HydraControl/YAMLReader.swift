import HydraFormat

/// Reads the YAML that configuration files are written in — block mappings and sequences,
/// plain and quoted scalars, `{}` and `[]`, comments — into JSON values: enough for a kubeconfig
/// and for `hydra serve --config cluster.yaml`, without a YAML dependency. Flow collections with
/// content, anchors and multi-line scalars are not read.
enum YAMLReader {
    /// Parses `text`; plain scalars stay strings unless `typed`, where numbers and booleans
    /// become numbers and booleans (quoted scalars are strings either way).
    static func parse(_ text: String, file: String, typed: Bool = false) throws -> JSONValue {
        var lines: [(indent: Int, text: String, number: Int)] = []
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = raw.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") || trimmed == "---" { continue }
            lines.append((raw.prefix { $0 == " " }.count, trimmed, index + 1))
        }
        var position = 0
        let value = try block(&lines[...], at: &position, indent: lines.first?.indent ?? 0, file: file, typed: typed)
        guard position == lines.count else { throw ControlError(status: 500, "\(file):\(lines[position].number): unexpected indentation") }
        return value
    }

    private static func block(_ lines: inout ArraySlice<(indent: Int, text: String, number: Int)>, at position: inout Int, indent: Int,
                              file: String, typed: Bool) throws -> JSONValue {
        if lines[position].text.hasPrefix("- ") || lines[position].text == "-" {
            var items: [JSONValue] = []
            while position < lines.count, lines[position].indent == indent, lines[position].text.hasPrefix("-") {
                let rest = String(lines[position].text.dropFirst()).trimmingCharacters(in: .whitespaces)
                if rest.isEmpty {
                    position += 1
                    items.append(position < lines.count && lines[position].indent > indent
                                 ? try block(&lines, at: &position, indent: lines[position].indent, file: file, typed: typed) : .null)
                } else if !rest.contains(": ") && !rest.hasSuffix(":") {
                    items.append(value(rest, typed: typed))
                    position += 1
                } else {
                    // "- key: value" opens a mapping whose keys sit two columns in.
                    lines[position] = (indent + 2, rest, lines[position].number)
                    items.append(try block(&lines, at: &position, indent: indent + 2, file: file, typed: typed))
                }
            }
            return .array(items)
        }
        var fields: [String: JSONValue] = [:]
        while position < lines.count, lines[position].indent == indent, !lines[position].text.hasPrefix("- ") {
            let line = lines[position]
            guard let colon = line.text.range(of: ":") else { throw ControlError(status: 500, "\(file):\(line.number): expected 'key: value'") }
            let key = scalar(String(line.text[..<colon.lowerBound]))
            let rest = String(line.text[colon.upperBound...]).trimmingCharacters(in: .whitespaces)
            position += 1
            if !rest.isEmpty {
                fields[key] = rest == "{}" ? .object([:]) : rest == "[]" ? .array([]) : value(rest, typed: typed)
            } else if position < lines.count, lines[position].indent > indent
                        || (lines[position].indent == indent && lines[position].text.hasPrefix("-")) {
                fields[key] = try block(&lines, at: &position, indent: lines[position].indent, file: file, typed: typed)
            } else {
                fields[key] = .null
            }
        }
        return .object(fields)
    }

    private static func value(_ text: String, typed: Bool) -> JSONValue {
        let quoted = text.count >= 2 && ((text.hasPrefix("\"") && text.hasSuffix("\"")) || (text.hasPrefix("'") && text.hasSuffix("'")))
        guard typed, !quoted else { return .string(scalar(text)) }
        if let number = Int64(text) { return .int(number) }
        if let number = Double(text) { return .double(number) }
        switch text.lowercased() {
        case "true": return .bool(true)
        case "false": return .bool(false)
        case "null", "~": return .null
        default: return .string(text)
        }
    }

    private static func scalar(_ text: String) -> String {
        if text.count >= 2, (text.hasPrefix("\"") && text.hasSuffix("\"")) || (text.hasPrefix("'") && text.hasSuffix("'")) {
            return String(text.dropFirst().dropLast())
        }
        return text
    }
}
