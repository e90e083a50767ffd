import Foundation
import HydraFormat

/// Reads the current context of a kubeconfig file (as `kubectl config view --raw` writes it):
/// the server, its certificate authority, and a bearer token. Only what kubeconfigs use is read:
/// block mappings and sequences, plain and quoted scalars, `{}` and `[]`.
public enum Kubeconfig {
    public static func connection(path: String) throws -> KubernetesBackend.Connection {
        guard let data = FileManager.default.contents(atPath: path) else { throw ControlError(status: 500, "\(path): cannot read the kubeconfig") }
        let config = try parse(String(decoding: data, as: UTF8.self), file: path)
        func named(_ list: String, _ name: String?) -> JSONValue? {
            guard case .array(let items)? = config[list] else { return nil }
            return items.first { $0["name"]?.stringValue == name }
        }
        let contextName = config["current-context"]?.stringValue
        guard let context = named("contexts", contextName)?["context"] else {
            throw ControlError(status: 500, "\(path): no context named '\(contextName ?? "")' (current-context)")
        }
        guard let cluster = named("clusters", context["cluster"]?.stringValue)?["cluster"], let server = cluster["server"]?.stringValue else {
            throw ControlError(status: 500, "\(path): the current context's cluster has no server")
        }
        let user = named("users", context["user"]?.stringValue)?["user"]
        var token = user?["token"]?.stringValue
        if token == nil, let file = user?["tokenFile"]?.stringValue {
            token = try String(contentsOfFile: file, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        if token == nil, user?["client-certificate-data"] != nil || user?["client-certificate"] != nil || user?["exec"] != nil {
            throw ControlError(status: 500, "\(path): the user authenticates with a client certificate or a plugin; give it a token (a service account's) instead")
        }
        var caFile = cluster["certificate-authority"]?.stringValue
        if let encoded = cluster["certificate-authority-data"]?.stringValue {
            guard let pem = Data(base64Encoded: encoded) else { throw ControlError(status: 500, "\(path): certificate-authority-data is not base64") }
            let written = NSTemporaryDirectory() + "hydra-kube-ca-\(getpid()).crt"
            try pem.write(to: URL(fileURLWithPath: written))
            caFile = written
        }
        return KubernetesBackend.Connection(apiServer: server, token: token, caFile: caFile)
    }

    /// Parses the YAML subset kubeconfigs are written in.
    static func parse(_ text: String, file: String) throws -> JSONValue {
        var lines: [(indent: Int, text: String, number: Int)] = []
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = raw.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") || trimmed == "---" { continue }
            lines.append((raw.prefix { $0 == " " }.count, trimmed, index + 1))
        }
        var position = 0
        let value = try block(&lines[...], at: &position, indent: lines.first?.indent ?? 0, file: file)
        guard position == lines.count else { throw ControlError(status: 500, "\(file):\(lines[position].number): unexpected indentation") }
        return value
    }

    private static func block(_ lines: inout ArraySlice<(indent: Int, text: String, number: Int)>, at position: inout Int, indent: Int,
                              file: String) throws -> JSONValue {
        if lines[position].text.hasPrefix("- ") || lines[position].text == "-" {
            var items: [JSONValue] = []
            while position < lines.count, lines[position].indent == indent, lines[position].text.hasPrefix("-") {
                let rest = String(lines[position].text.dropFirst()).trimmingCharacters(in: .whitespaces)
                if rest.isEmpty {
                    position += 1
                    items.append(position < lines.count && lines[position].indent > indent
                                 ? try block(&lines, at: &position, indent: lines[position].indent, file: file) : .null)
                } else {
                    // "- key: value" opens a mapping whose keys sit two columns in.
                    lines[position] = (indent + 2, rest, lines[position].number)
                    items.append(try block(&lines, at: &position, indent: indent + 2, file: file))
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
                fields[key] = rest == "{}" ? .object([:]) : rest == "[]" ? .array([]) : .string(scalar(rest))
            } else if position < lines.count, lines[position].indent > indent
                        || (lines[position].indent == indent && lines[position].text.hasPrefix("-")) {
                fields[key] = try block(&lines, at: &position, indent: lines[position].indent, file: file)
            } else {
                fields[key] = .null
            }
        }
        return .object(fields)
    }

    private static func scalar(_ text: String) -> String {
        if text.count >= 2, (text.hasPrefix("\"") && text.hasSuffix("\"")) || (text.hasPrefix("'") && text.hasSuffix("'")) {
            return String(text.dropFirst().dropLast())
        }
        return text
    }
}
