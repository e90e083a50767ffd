import Foundation
import HydraFormat

/// Reads the current context of a kubeconfig file (as `kubectl config view --raw` writes it):
/// the server, its certificate authority, and a bearer token.
public enum Kubeconfig {
    public static func connection(path: String) throws -> KubernetesBackend.Connection {
        guard let data = FileManager.default.contents(atPath: path) else { throw ControlError(status: 500, "\(path): cannot read the kubeconfig") }
        let config = try YAMLReader.parse(String(decoding: data, as: UTF8.self), file: path)
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
}
