import ArgumentParser
import Foundation
import HydraSystem
import HydraStore
import Hummingbird
import Logging

struct StoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "store",
        abstract: "The remote store: serves a store's manifests and chunks to node caches.",
        subcommands: [StoreServeCommand.self]
    )
}

struct StoreServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve a store over HTTP/1.1 (Range requests, ETag = chunk hash).",
        discussion: """
        Endpoints: GET /v1/models, GET /v1/models/NAME/manifest, GET|HEAD /v1/chunks/SHA256 (with \
        Range), GET /healthz. With --token-file every request but /healthz needs \
        `Authorization: Bearer <token>`. With --tls-cert and --tls-key it serves HTTPS (clients \
        trust a private authority with --ca-file). Stops gracefully on SIGINT or SIGTERM (in-flight \
        responses finish first).
        """
    )

    @Option(help: "Store directory.") var root: String
    @Option(help: "HOST:PORT to listen on.") var listen: String = "127.0.0.1:8470"
    @Option(name: .customLong("token-file"), help: "File holding the bearer token clients must send.") var tokenFile: String?
    @Option(name: .customLong("max-concurrent-reads"), help: "Disk reads in flight at once.") var maxConcurrentReads: Int = 64
    @Option(name: .customLong("tls-cert"), help: "PEM certificate chain: serve HTTPS (with --tls-key).") var tlsCert: String?
    @Option(name: .customLong("tls-key"), help: "PEM private key of --tls-cert.") var tlsKey: String?
    @Flag(name: .customLong("no-sendfile"), help: "Read every chunk body through io_uring and write it, even when the page cache holds it (plain HTTP sends those with sendfile by default).")
    var noSendfile = false

    func validate() throws {
        guard (tlsCert == nil) == (tlsKey == nil) else { throw ValidationError("--tls-cert and --tls-key go together") }
    }

    func run() async throws {
        ParentWatch.start()
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]), (0...65535).contains(port) else {
            throw ValidationError("--listen must be HOST:PORT")
        }
        guard FileManager.default.fileExists(atPath: root + "/models") else {
            Terminal.error("\(root): not a store (no models/ folder); create one with hydra convert")
            throw ExitCode(1)
        }
        var configuration = RemoteStoreServer.Configuration(root: root)
        configuration.host = String(listen[..<colon])
        configuration.port = port
        configuration.maxConcurrentReads = maxConcurrentReads
        configuration.tlsCertificatePath = tlsCert
        configuration.tlsKeyPath = tlsKey
        configuration.sendfile = !noSendfile
        if let tokenFile {
            do { configuration.token = try readToken(tokenFile) } catch {
                Terminal.error("\(error)")
                throw ExitCode(1)
            }
        }
        var logger = Logger(label: "hydra.store")
        logger.logLevel = .info
        let host = configuration.host, root = self.root
        let scheme = tlsCert == nil ? "http" : "https"
        let server = RemoteStoreServer(configuration: configuration)
        do { _ = try server.serverBuilder() } catch {  // a clear error for a bad certificate or key, before listening
            Terminal.error("\(error)")
            throw ExitCode(1)
        }
        let app = try server.application(logger: logger) { port in
            Terminal.note("serving \(root) on \(scheme)://\(host):\(port)")
        }
        try await app.runService()
    }
}
