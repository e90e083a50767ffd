import ArgumentParser
import Foundation
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
        `Authorization: Bearer <token>`. Stops gracefully on SIGINT or SIGTERM (in-flight responses \
        finish first). TLS is not built yet: put the server behind a TLS-terminating proxy or keep \
        it on a private network.
        """
    )

    @Option(help: "Store directory.") var root: String
    @Option(help: "HOST:PORT to listen on.") var listen: String = "127.0.0.1:8470"
    @Option(name: .customLong("token-file"), help: "File holding the bearer token clients must send.") var tokenFile: String?
    @Option(name: .customLong("max-concurrent-reads"), help: "Disk reads in flight at once.") var maxConcurrentReads: Int = 64

    func run() async throws {
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
        if let tokenFile {
            do { configuration.token = try readToken(tokenFile) } catch {
                Terminal.error("\(error)")
                throw ExitCode(1)
            }
        }
        var logger = Logger(label: "hydra.store")
        logger.logLevel = .info
        let host = configuration.host, root = self.root
        let app = RemoteStoreServer(configuration: configuration).application(logger: logger) { port in
            Terminal.note("serving \(root) on http://\(host):\(port)")
        }
        try await app.runService()
    }
}
