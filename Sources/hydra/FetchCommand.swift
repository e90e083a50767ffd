import ArgumentParser
import Foundation
import Glibc
import HydraFormat
import HydraStore
import HydraSystem

struct FetchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fetch",
        abstract: "Fetch one pipeline stage of a model from a remote store into memory, without a node cache.",
        discussion: "For debugging and benchmarks: prints chunks, bytes and throughput. Every chunk is checked as it streams in: against its XXH3 where the manifest has one, its SHA-256 otherwise (--verify)."
    )

    @Argument(help: "Remote store URL, e.g. http://127.0.0.1:8470") var url: String
    @Argument(help: "Model name.") var name: String
    @Option(help: "Stage index.") var stage: Int = 0
    @Option(help: "Pipeline depth.") var pp: Int = 1
    @Option(help: "Parallel connections.") var connections: Int = 4
    @Option(name: .customLong("token-file"), help: "File holding the bearer token.") var tokenFile: String?
    @Option(name: .customLong("ca-file"), help: "PEM certificate authorities to trust for an https store.") var caFile: String?
    @Option(help: "fast (XXH3 where the manifest has it, else SHA-256), sha256, or none (to measure the checks' cost).")
    var verify: ChunkVerification = .fast
    @Flag(help: "Print the figures as one JSON line.") var json = false
    @Option(name: .customLong("nic-gbps"), help: "Emulate a node link of this many Gbit/s (token bucket over all connections).")
    var nicGbps: Double?

    func validate() throws {
        if let nicGbps, !(nicGbps > 0) { throw ValidationError("--nic-gbps must be positive") }
    }

    func run() throws {
        try runReportingErrors {
            let token = try tokenFile.map(readToken)
            let fetcher = RemoteFetcher(baseURL: url, token: token, connections: connections, verification: verify,
                                        link: nicGbps.map { SharedTokenBucket(gigabitsPerSecond: $0) }, caFile: caFile)
            let manifest = try fetcher.manifest(name)
            var seen = Set<String>()
            let chunks = try manifest.chunkIndices(stage: stage, of: pp).map { manifest.chunks[$0] }.filter { seen.insert($0.sha256).inserted }
            let arena = AlignedBuffer(count: chunks.reduce(0) { $0 + $1.storedBytes })
            // Make the arena resident first, as device memory would be: first-touch page faults
            // are not what this command measures.
            memset(arena.baseAddress, 0, arena.count)
            var offset = 0
            var destinations: [UnsafeMutableRawPointer] = []
            for chunk in chunks {
                destinations.append(arena.baseAddress + offset)
                offset += chunk.storedBytes
            }
            let stats = try fetcher.fetch(chunks, into: destinations)
            if json {
                print("{\"chunks\":\(stats.chunks),\"bytes\":\(stats.bytes),\"seconds\":\(stats.seconds)}")
                return
            }
            let checks = Set(chunks.compactMap { $0.expectedDigest(verify)?.algorithm.description }).sorted()
            print(String(format: "fetched stage %d of pp=%d: %d chunks, %@ in %.2f s (%.0f MB/s), %@", stage, pp, stats.chunks,
                         formatBytes(stats.bytes), stats.seconds, Double(stats.bytes) / stats.seconds / 1e6,
                         checks.isEmpty ? "unverified" : "verified (\(checks.joined(separator: ", ")))"))
        }
    }
}
