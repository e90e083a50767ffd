import Foundation
import Testing
@testable import HydraControl

@Suite struct KubeconfigTests {
    /// As `kubectl config view --raw` writes one (two clusters; the current context picks the second).
    static let text = """
    apiVersion: v1
    clusters:
    - cluster:
        server: https://10.0.0.1:6443
      name: other
    - cluster:
        certificate-authority-data: \(Data("-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----\\n".utf8).base64EncodedString())
        server: "https://127.0.0.1:41234"
      name: kind-hydra
    contexts:
    - context:
        cluster: kind-hydra
        namespace: hydraserve
        user: kind-hydra
      name: kind-hydra
    current-context: kind-hydra
    kind: Config
    preferences: {}
    users:
    - name: kind-hydra
      user:
        token: 'abc.def'
    """

    @Test func theCurrentContextGivesServerAuthorityAndToken() throws {
        let path = NSTemporaryDirectory() + "hydra-kubeconfig-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Self.text.write(toFile: path, atomically: true, encoding: .utf8)
        let connection = try Kubeconfig.connection(path: path)
        #expect(connection.apiServer == "https://127.0.0.1:41234" && connection.token == "abc.def")
        let ca = try String(contentsOfFile: try #require(connection.caFile), encoding: .utf8)
        #expect(ca.hasPrefix("-----BEGIN CERTIFICATE-----"))
    }

    @Test func clientCertificateUsersAndBrokenFilesAreRefusedClearly() throws {
        let path = NSTemporaryDirectory() + "hydra-kubeconfig-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Self.text.replacingOccurrences(of: "    token: 'abc.def'", with: "    client-certificate-data: AAAA\n    client-key-data: BBBB")
            .write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: ControlError.self) { try Kubeconfig.connection(path: path) }
        try "current-context: nowhere\ncontexts: []\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect { try Kubeconfig.connection(path: path) } throws: { ($0 as? ControlError)?.message.contains("nowhere") == true }
    }
}
