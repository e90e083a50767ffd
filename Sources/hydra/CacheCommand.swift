import ArgumentParser
import Foundation
import Glibc
import HydraFormat
import HydraStore
import HydraSystem
import Logging

struct CacheCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cache",
        abstract: "The node cache: chunks in shared memory, prefetched from remote stores, streamed to the node's workers.",
        subcommands: [CacheServeCommand.self, CachePrefetchCommand.self, CacheAttachCommand.self, CacheStatusCommand.self]
    )
}

/// The order options shared by `prefetch` and `attach`.
struct CacheOrderOptions: ParsableArguments {
    @Argument(help: "Model name in the remote store.") var model: String
    @Option(help: "Stage index.") var stage: Int = 0
    @Option(help: "Pipeline depth.") var pp: Int = 1
    @Flag(help: "Every chunk of the model except the stage's (what consolidation needs).") var complement = false
    @Option(help: "high or low; low-priority fetches yield to high-priority ones.") var priority: String = "high"

    func order() throws -> CacheOrder {
        guard let priority = CacheOrder.Priority(rawValue: priority) else { throw ValidationError("--priority must be high or low") }
        guard pp >= 1, (0..<pp).contains(stage) else { throw ValidationError("--stage must be in 0..<--pp") }
        return CacheOrder(model: model, stage: stage, pp: pp, complement: complement, priority: priority)
    }
}

struct CacheServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run a node cache on a Unix socket.",
        discussion: """
        Chunks are fetched from the remote stores (--remote, tried in turn) over parallel keep-alive \
        range requests, verified (XXH3 by default, see --verify), sealed read-only in memfd shared \
        memory and handed to attached workers by descriptor passing, each the moment it lands. \
        With --reserve-gib, that much shared memory is faulted in before the socket listens and \
        refilled once no fetch has run for a quarter of a second, so chunks land in memory that is \
        already there; the store manifests read for its mix are kept. A manifest the cache knows is \
        checked with the store (ETag, one round trip) before each order, the order's chunks already \
        queued. Unattached chunks are evicted least-recently-used first when --capacity-gib \
        is reached. A failed transfer resumes where it stopped (with backoff, moving to the next \
        remote); a chunk that cannot be fetched within --fetch-timeout fails its orders with a \
        clear error. Stops on SIGINT or SIGTERM.
        """
    )

    @Option(help: "This node's name (reported in status).") var node: String
    @Option(help: "Unix socket path to listen on.") var socket: String
    @Option(name: .customLong("capacity-gib"), help: "Shared memory for chunks, in GiB.") var capacityGiB: Double
    @Option(help: "Remote store URL(s), comma-separated.") var remote: String
    @Option(name: .customLong("nic-gbps"), help: "Emulate a node link of this many Gbit/s for all fetches.") var nicGbps: Double?
    @Option(name: .customLong("token-file"), help: "File holding the remote stores' bearer token.") var tokenFile: String?
    @Option(name: .customLong("ca-file"), help: "PEM certificate authorities to trust for https remotes.") var caFile: String?
    @Option(help: "Parallel transfers.") var connections: Int = 4
    @Option(name: .customLong("piece-mib"), help: "MiB per range request of a low-priority fetch: the unit at which it yields to high priority (high-priority fetches ask for the rest of a chunk at once).")
    var pieceMiB: Int = 8
    @Option(name: .customLong("fetch-timeout"), help: "Seconds after which a chunk that cannot be fetched fails.") var fetchTimeout: Double = 120
    @Option(help: """
        How each chunk is checked before it is published: fast (XXH3 where the manifest has it, \
        SHA-256 otherwise) or sha256 (always the chunk's name: for remotes you do not trust).
        """)
    var verify: ChunkVerification = .fast
    @Option(name: .customLong("reserve-gib"), help: """
        Shared memory to fault in ahead of fetches, in GiB (within --capacity-gib; 0: none). \
        Fresh memory is the slowest part of a fetch on a VM; a reserve moves that cost to idle time.
        """)
    var reserveGiB: Double = 0

    func validate() throws {
        if let nicGbps, !(nicGbps > 0) { throw ValidationError("--nic-gbps must be positive") }
        guard verify != .none else { throw ValidationError("--verify none is for hydra fetch only: a node cache always checks what it publishes") }
        guard capacityGiB > 0 else { throw ValidationError("--capacity-gib must be positive") }
        guard reserveGiB >= 0 && reserveGiB <= capacityGiB else { throw ValidationError("--reserve-gib must be 0…--capacity-gib") }
        guard connections >= 1 && connections <= 64 else { throw ValidationError("--connections must be 1…64") }
        guard pieceMiB >= 1 && pieceMiB <= 1024 else { throw ValidationError("--piece-mib must be 1…1024") }
        guard fetchTimeout > 0 else { throw ValidationError("--fetch-timeout must be positive") }
    }

    func run() throws {
        ParentWatch.start()
        try runReportingErrors {
            let remotes = remote.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            guard !remotes.isEmpty else { throw ValidationError("--remote needs at least one URL") }
            var configuration = NodeCache.Configuration(node: node, capacityBytes: Int(capacityGiB * Double(1 << 30)), remotes: remotes)
            configuration.token = try tokenFile.map(readToken)
            configuration.caFile = caFile
            configuration.nicGigabitsPerSecond = nicGbps
            configuration.connections = connections
            configuration.pieceBytes = pieceMiB << 20
            configuration.orderTimeoutSeconds = fetchTimeout
            configuration.verification = verify
            configuration.reserveBytes = Int(reserveGiB * Double(1 << 30))
            var logger = Logger(label: "hydra.cache")
            logger.logLevel = .info
            let cache = NodeCache(configuration: configuration, logger: logger)
            if configuration.reserveBytes > 0 {
                let started = DispatchTime.now().uptimeNanoseconds
                var shown = 0
                cache.fillReserve { ready in
                    if ready - shown >= 1 << 30 { Terminal.note("reserve: \(formatBytes(ready)) faulted in…"); shown = ready }
                }
                let status = cache.status()
                if status.reservedBytes == 0 { Terminal.note("reserve: no memory could be faulted in (capacity full, or refused)") }
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
                Terminal.note("reserve: \(formatBytes(status.reservedBytes)) of shared memory faulted in (\(String(format: "%.1f", seconds)) s)")
            }
            let server = try NodeCacheServer(cache: cache, socketPath: socket, logger: logger)
            let signals = [SIGINT, SIGTERM].map { number -> DispatchSourceSignal in
                signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
                source.setEventHandler { server.shutdown() }
                source.resume()
                return source
            }
            Terminal.note("node cache \(node) on \(socket): \(formatBytes(configuration.capacityBytes)), remotes \(remotes.joined(separator: ", "))"
                          + (nicGbps.map { ", link \($0) Gbit/s" } ?? ""))
            server.run()
            cache.shutdown()
            withExtendedLifetime(signals) {}
            Terminal.note("node cache \(node) stopped")
        }
    }
}

struct CachePrefetchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prefetch",
        abstract: "Order a node cache to start fetching a stage (returns at once).")

    @Option(help: "The node cache's Unix socket.") var socket: String
    @OptionGroup var order: CacheOrderOptions

    func run() throws {
        try runReportingErrors {
            let (chunks, bytes) = try NodeCacheClient.prefetch(socketPath: socket, order: try order.order())
            print("ordered \(chunks) chunks, \(formatBytes(bytes))")
        }
    }
}

struct CacheAttachCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attach",
        abstract: "Attach like a worker: receive a stage's chunks as they land and report their timing.",
        discussion: "For debugging and benchmarks. The chunks are mapped, not copied; timing starts at connect.")

    @Option(help: "The node cache's Unix socket.") var socket: String
    @OptionGroup var order: CacheOrderOptions
    @Flag(help: "Print the figures as one JSON line.") var json = false

    func run() throws {
        try runReportingErrors {
            let started = DispatchTime.now()
            let seconds = { Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9 }
            let attachment = try NodeCacheClient.attach(socketPath: socket, order: try order.order())
            defer { attachment.close() }
            var bytes = 0, chunks = 0
            var firstChunkSeconds: Double?
            while let chunk = try attachment.next() {
                bytes += chunk.chunk.storedBytes
                chunks += 1
                if firstChunkSeconds == nil { firstChunkSeconds = seconds() }
                if !json { print(String(format: "%7.3f s  chunk %d  %@", seconds(), chunk.index, formatBytes(chunk.chunk.storedBytes))) }
            }
            let total = seconds()
            if json {
                print("{\"chunks\":\(chunks),\"bytes\":\(bytes),\"first_chunk_seconds\":\(firstChunkSeconds ?? 0),\"seconds\":\(total)}")
            } else {
                print(String(format: "%d chunks, %@ in %.2f s (%.0f MB/s)", chunks, formatBytes(bytes), total, Double(bytes) / total / 1e6))
            }
        }
    }
}

struct CacheStatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "What a node cache holds, fetches and serves, with its counters.")

    @Option(help: "The node cache's Unix socket.") var socket: String
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        try runReportingErrors {
            let status = try NodeCacheClient.status(socketPath: socket)
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try encoder.encode(status), as: UTF8.self))
                return
            }
            print("""
            node            \(status.node)
            memory          \(formatBytes(status.usedBytes)) of \(formatBytes(status.capacityBytes))
            chunks          \(status.cachedChunks.count) cached, \(status.inFlightChunks) in flight, \(status.queuedChunks) queued
            attached        \(status.attachedWorkers) workers
            fetched         \(formatBytes(status.bytesFetched)), \(status.chunksPublished) chunks published
            errors          \(status.transferErrors) transfer, \(status.verificationFailures) verification, \(status.failedChunks) failed chunks
            evictions       \(status.evictions)
            reserve         \(formatBytes(status.reservedBytes)) faulted in ahead, \(status.chunksFromReserve) chunks landed in it
            """)
        }
    }
}

/// Reads a bearer token from a file (trimmed; empty is an error).
func readToken(_ file: String) throws -> String {
    guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { throw FormatError(file, "cannot read the token file") }
    let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
    guard !token.isEmpty else { throw FormatError(file, "the token file is empty") }
    return token
}
