import Foundation
import HydraFormat
import HydraStore
import HydraSystem
import Hummingbird
import Logging
import ServiceLifecycle

/// Where the test models live (a copy of shared/fixtures inside the repository).
public enum TestFixtures {
    public static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures").path
    /// A self-signed certificate for 127.0.0.1 (test data: see Fixtures/tls/README.txt).
    public static var tlsCertificate: String { root + "/tls/cert.pem" }
}

/// A store with one converted fixture, served on a port the test picks (0: the kernel's choice).
public final class ServedStore: @unchecked Sendable {
    public let root: String
    public let entry: StoreEntry
    public private(set) var port = 0
    /// The server, for its counters.
    public let server: RemoteStoreServer
    private var task: Task<Void, Error>?
    private let group: ServiceGroup

    /// With `tls`, serves HTTPS with the test certificate (`TestFixtures.tlsCertificate`);
    /// `configure` adjusts the rest, `reader` replaces the io_uring reader.
    public init(token: String? = nil, model: String = "llama2-tiny", tls: Bool = false,
                configure: (inout RemoteStoreServer.Configuration) -> Void = { _ in },
                reader: (any FileBatchReader)? = nil) async throws {
        root = NSTemporaryDirectory() + "hydra-served-" + UUID().uuidString
        entry = try Self.convert(model, as: "m", into: root)
        var configuration = RemoteStoreServer.Configuration(root: root)
        configuration.port = 0
        configuration.token = token
        configuration.pieceBytes = 16 << 10  // several pieces per chunk
        if tls {
            configuration.tlsCertificatePath = TestFixtures.tlsCertificate
            configuration.tlsKeyPath = TestFixtures.root + "/tls/key.pem"
        }
        configure(&configuration)
        let ready = LockedBox<Int>(0)
        var quiet = Logger(label: "hydra.store.test")
        quiet.logLevel = .critical  // cancelling the server task at the end logs a harmless close error
        server = RemoteStoreServer(configuration: configuration, reader: reader)
        let app = try server.application(logger: quiet) { ready.value = $0 }
        let group = ServiceGroup(configuration: .init(services: [app], logger: quiet))
        self.group = group
        task = Task { try await group.run() }
        for _ in 0..<500 where ready.value == 0 { try await Task.sleep(for: .milliseconds(10)) }
        port = ready.value
        guard port != 0 else { throw POSIXError(.ETIMEDOUT) }
    }

    /// Asks the server to stop as SIGTERM does (in-flight answers finish, then it exits) and
    /// waits until it has.
    public func shutDownGracefully() async {
        await group.triggerGracefulShutdown()
        _ = await task?.result
    }

    public func stop() async {
        task?.cancel()
        _ = await task?.result
        try? FileManager.default.removeItem(atPath: root)
    }

    /// Runs `body` against a served store and always stops the server afterwards.
    public static func with(token: String? = nil, model: String = "llama2-tiny", tls: Bool = false,
                            configure: (inout RemoteStoreServer.Configuration) -> Void = { _ in },
                            reader: (any FileBatchReader)? = nil,
                            _ body: (ServedStore) async throws -> Void) async throws {
        let served = try await ServedStore(token: token, model: model, tls: tls, configure: configure, reader: reader)
        do { try await body(served) } catch {
            await served.stop()
            throw error
        }
        await served.stop()
    }

    /// Converts a tiny fixture into the store at `root` (64 KiB chunks: several per model).
    @discardableResult
    public static func convert(_ fixture: String, as name: String, into root: String) throws -> StoreEntry {
        var options = ConvertOptions(name: name)
        options.chunkSizeBytes = 64 << 10
        _ = try Converter.convert(try Converter.loadSource(TestFixtures.root + "/tiny/" + fixture), into: StoreDirectory(root: root), options: options)
        return try StoreEntry(store: StoreDirectory(root: root), name: name)
    }

    public func chunkBytes(_ hash: String) -> [UInt8] {
        Array(FileManager.default.contents(atPath: entry.store.chunkPath(hash))!)
    }
}

