import ArgumentParser
import Foundation
import Glibc
import HydraControl
import HydraFormat
import HydraStore
import HydraSystem

struct BenchFetchCommand: ChildMeasuredBenchmark {
    static let configuration = CommandConfiguration(
        commandName: "fetch",
        abstract: "Store → memory through the io_uring reader, cold and warm, next to fio and cat on the same chunk files.",
        discussion: """
        Reads every chunk of the synthetic ~2 GB model and of SmolLM2 (bf16), converted into \
        --work-dir on first use. Cold runs drop the chunk files from the page cache first \
        (posix_fadvise DONTNEED) and read with O_DIRECT; warm runs read through the page cache. The \
        destination memory is allocated and touched before timing, as a loaded device arena would be; \
        warm, the files are read once more after that, just before the timed read. \
        Peers: fio (io_uring, 4 MiB blocks, iodepth 16; O_DIRECT cold, buffered warm) and cat. \
        Contenders alternate run by run; medians over --runs, and each ratio of medians with its 90% \
        bootstrap interval (rounds resampled whole). Remote rows: `hydra store serve` → \
        `hydra fetch` and a cold `hydra cache serve` + attached worker, next to curl from nginx \
        (sendfile) and from our server, at 1 and 4 connections, plus the emulated 1 Gbit/s link; \
        then the verification pair: `hydra fetch` at 4 connections checked (XXH3) and unchecked, \
        back to back for --verify-runs rounds, and the checks' cost with its interval.
        """
    )

    @Option(help: "Folder for the models' stores (on the disk you want to measure).")
    var workDir: String = NSTemporaryDirectory() + "hydra-bench-fetch"
    @Option(help: "Runs per contender.") var runs: Int = 5
    @Option(help: "Rounds of the verification pair (XXH3-checked and unchecked `hydra fetch` at four connections, back to back).")
    var verifyRuns: Int = 31
    @Option(help: "Where to write the JSON figures.") var jsonOut: String = "bench-fetch.json"
    @Option(help: "(internal) measure one read of STORE:NAME and print JSON.") var measureEntry: String?
    @Flag(help: "(internal) with --measure-entry: cold (O_DIRECT after eviction) rather than warm.") var cold = false
    @Flag(help: "(internal) with --measure-entry: time the arena's allocation and first touch too (as the Python peers' figures include).")
    var includeAllocation = false
    @Flag(help: "(internal) with --measure-entry, warm: skip the files' second warm-up after the arena's fault-in.")
    var noRewarm = false

    func validate() throws {
        guard runs >= 1, verifyRuns >= 1 else { throw ValidationError("--runs and --verify-runs must be positive") }
    }

    func measureOnce(_ location: String) throws {
        let entry = try openMeasuredEntry(location)
        let reader = FileReaders.make()
        let fetcher = ChunkFetcher(entry: entry, reader: reader)
        let indices = Array(Set(entry.manifest.chunks.indices.map { entry.manifest.chunks[$0].sha256 }).enumerated()).map { pair in
            entry.manifest.chunks.firstIndex { $0.sha256 == pair.element }!
        }.sorted()
        let total = indices.reduce(0) { $0 + entry.manifest.chunks[$1].storedBytes }
        if cold { fetcher.evictFromPageCache(indices) }
        let allocationStarted = DispatchTime.now()
        let arena = AlignedBuffer(count: total)
        if !includeAllocation {
            memset(arena.baseAddress, 0, total)  // a loaded arena's pages are already resident
            if !cold && !noRewarm {
                // Warm again, just before the read, as the parent's `cat` is just before fio's
                // and cat's runs: faulting a fresh arena in can take seconds on this VM, and its
                // proactive reclaim (DAMON) drops megabytes of the files meanwhile.
                for index in indices { PageCache.load(entry.store.chunkPath(entry.manifest.chunks[index].sha256)) }
            }
        }
        var destinations: [UnsafeMutableRawPointer] = []
        var offset = 0
        for index in indices {
            destinations.append(arena.baseAddress + offset)
            offset += entry.manifest.chunks[index].storedBytes
        }
        let started = includeAllocation ? allocationStarted : DispatchTime.now()
        try fetcher.fetchBlocking(indices, into: destinations, direct: cold)
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9
        let json: [String: Any] = ["bytes": total, "seconds": seconds, "backend": reader.backend]
        print(String(decoding: try JSONSerialization.data(withJSONObject: json), as: UTF8.self))
    }

    struct Row: Codable {
        var model: String
        var contender: String
        var mode: String
        var bytes: Int
        var seconds: [Double]
        /// Our row's median GB/s over this one's, with its 90% bootstrap interval: on peers' rows,
        /// and on the verification pair's unchecked row (there: the checked fetch over it).
        var hydraVsThis: Ratio?
        /// The node cache with a reserve over this row (remote peers' rows only).
        var nodeCacheVsThis: Ratio?
        var gigabytesPerSecond: Double { Double(bytes) / median(seconds) / 1e9 }

        /// How many times faster `ours` ran than this row, by medians.
        func ratio(of ours: Row) -> Ratio {
            Ratio(ratio: median(seconds) / median(ours.seconds), interval90: ratioOfMediansInterval(seconds, ours.seconds).map { [$0.lowerBound, $0.upperBound] })
        }
    }

    struct Ratio: Codable {
        var ratio: Double
        var interval90: [Double]?
        var cell: String {
            String(format: "%.2f×", ratio) + (interval90.map { String(format: " (%.2f–%.2f)", $0[0], $0[1]) } ?? "")
        }
    }

    func compare() throws {
        try FileManager.default.createDirectory(atPath: workDir, withIntermediateDirectories: true)
        let store = workDir + "/store"
        let models = try prepareBenchModels(store: store, workDir: workDir, keepSource: true).map { ($0.label, $0.name) }
        let peersPython = SmolLM2.cacheDirectory + "/peers-venv/bin/python3"
        let havePeers = FileManager.default.isExecutableFile(atPath: peersPython)
        if !havePeers { Terminal.note("Python loading peers not installed (tools/bench/setup-python-peers): measuring without them") }
        let peerFile = syntheticSource(workDir) + "/model.safetensors"
        let haveFio = FileManager.default.isExecutableFile(atPath: "/usr/bin/fio")
        if !haveFio { Terminal.note("fio not found (apt-get install fio): measuring without it") }

        var rows: [Row] = []
        for (label, name) in models {
            let entry = try StoreEntry(store: StoreDirectory(root: store), name: name)
            let files = Array(Set(entry.manifest.chunks.map { entry.store.chunkPath($0.sha256) })).sorted()
            let bytes = Set(entry.manifest.chunks.map(\.sha256)).count > 0
                ? Dictionary(entry.manifest.chunks.map { ($0.sha256, $0.storedBytes) }, uniquingKeysWith: { a, _ in a }).values.reduce(0, +) : 0
            let fetcher = ChunkFetcher(entry: entry, reader: FileReaders.make())
            // fio reads a folder of hard links to exactly this entry's chunk files (same inodes,
            // so the same page-cache state); its --filename list cannot hold hundreds of paths.
            let fioFolder = workDir + "/fio-" + name
            try? FileManager.default.removeItem(atPath: fioFolder)
            try FileManager.default.createDirectory(atPath: fioFolder, withIntermediateDirectories: true)
            for file in files { link(file, fioFolder + "/" + URL(fileURLWithPath: file).lastPathComponent) }
            defer { try? FileManager.default.removeItem(atPath: fioFolder) }
            let all = Array(entry.manifest.chunks.indices)
            for mode in ["cold", "warm"] {
                var contenders: [(String, [String])] = [
                    ("hydra (io_uring)", [ChildProcess.selfPath, "bench", "fetch", "--measure-entry", store + ":" + name] + (mode == "cold" ? ["--cold"] : [])),
                    ("cat", Self.cat(files)),
                ]
                if mode == "warm" {
                    contenders.append((Self.withoutRewarmRow, [ChildProcess.selfPath, "bench", "fetch", "--measure-entry", store + ":" + name, "--no-rewarm"]))
                }
                if havePeers && name == "synthetic-2gb" {
                    let script = benchScript("load_peer.py")
                    contenders.append(("hydra (io_uring), arena allocated in the timing",
                                       [ChildProcess.selfPath, "bench", "fetch", "--measure-entry", store + ":" + name, "--include-allocation"] + (mode == "cold" ? ["--cold"] : [])))
                    contenders.append(("safetensors (Python, clone)", [peersPython, script, "safetensors", peerFile]))
                    for concurrency in [1, 4, 16] {
                        contenders.append(("runai-model-streamer ×\(concurrency)", [peersPython, script, "runai", peerFile, String(concurrency)]))
                    }
                }
                if haveFio {
                    contenders.append(("fio", ["fio", "--name=read", "--rw=read", "--bs=4M", "--iodepth=16", "--ioengine=io_uring",
                                               "--direct=\(mode == "cold" ? 1 : 0)", "--invalidate=0", "--output-format=json",
                                               "--file_service_type=sequential", "--opendir=" + fioFolder]))
                }
                var times = try alternate(contenders, what: "\(label), \(mode)") { contender, argv in
                    let peerFiles = havePeers && name == "synthetic-2gb" ? [peerFile] : []
                    if mode == "cold" {
                        fetcher.evictFromPageCache(all)
                        peerFiles.forEach(PageCache.evict)
                    } else {
                        _ = try ChildProcess.run(Self.cat(files + peerFiles))
                    }
                    warmMemory(bytes: 1 << 30)
                    let started = DispatchTime.now()
                    let (result, output) = try ChildProcess.runCapturing(argv)
                    var seconds = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9
                    guard result.status == 0 else { throw BenchError("\(contender) failed with status \(result.status)") }
                    if contender.hasPrefix("hydra") || contender.contains("Python") || contender.hasPrefix("runai"),
                       let json = try? JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any], let measured = json["seconds"] as? Double {
                        seconds = measured  // the load itself, without process (or interpreter) start and allocation
                    } else if contender == "fio", let start = output.firstIndex(of: "{"),
                              let json = try? JSONSerialization.jsonObject(with: Data(output[start...].utf8)) as? [String: Any],
                              let job = (json["jobs"] as? [[String: Any]])?.first, let read = job["read"] as? [String: Any],
                              let runtime = read["runtime"] as? Double, runtime > 0, let readBytes = read["io_bytes"] as? Double, readBytes > 0 {
                        // fio's own read time (ms), scaled to every byte: with 4 MiB blocks it
                        // skips each file's last partial block (SmolLM2: 180 of 269 MB read).
                        seconds = runtime / 1000 * Double(bytes) / readBytes
                    }
                    return seconds
                }
                if mode == "warm" {
                    // The warm goal's yardstick: one thread copying as many bytes between two
                    // resident buffers, measured here between the runs above.
                    let source = AlignedBuffer(count: bytes), destination = AlignedBuffer(count: bytes)
                    memset(source.baseAddress, 1, bytes)
                    memset(destination.baseAddress, 2, bytes)
                    contenders.append((Self.memcpyRow, []))
                    times[Self.memcpyRow] = (0..<runs).map { _ in
                        let started = DispatchTime.now().uptimeNanoseconds
                        memcpy(destination.baseAddress, source.baseAddress, bytes)
                        return Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
                    }
                }
                for (contender, _) in contenders {
                    rows.append(Row(model: label, contender: contender, mode: mode, bytes: bytes, seconds: times[contender]!))
                }
            }
        }
        rows += try remoteRows(store: store, models: models)
        var lines = ["| model | mode | contender | median GB/s | min–max s | hydra vs this | node cache (reserve) vs this |",
                     "|---|---|---|---|---|---|---|"]
        for index in rows.indices where !rows[index].contender.hasPrefix("hydra") {
            let row = rows[index]
            // Peers that pay for filling fresh memory compare with our run that pays for it too.
            let fresh = row.contender.contains("Python") || row.contender.hasPrefix("runai")
            let ours = rows.first { $0.model == row.model && $0.mode == row.mode && $0.contender.hasPrefix("hydra") && (!fresh || $0.contender.contains("allocated")) }!
            let cache = rows.first { $0.model == row.model && $0.mode == row.mode && $0.contender == Self.cacheWithReserve }
            rows[index].hydraVsThis = row.ratio(of: ours)
            rows[index].nodeCacheVsThis = cache.map(row.ratio(of:))
        }
        // The verification goal: how much of the unchecked fetch's throughput the check costs.
        var costs: [String] = []
        for index in rows.indices where rows[index].contender == Self.uncheckedRow {
            let checked = rows.first { $0.model == rows[index].model && $0.contender == Self.checkedRow }!
            let ratio = rows[index].ratio(of: checked)
            rows[index].hydraVsThis = ratio
            costs.append(String(format: "%@ %.1f%%", rows[index].model, 100 * (1 - ratio.ratio))
                         + (ratio.interval90.map { String(format: " (%.1f–%.1f%%)", 100 * (1 - $0[1]), 100 * (1 - $0[0])) } ?? ""))
        }
        for row in rows {
            lines.append(String(format: "| %@ | %@ | %@ | %.2f | %.2f–%.2f | %@ | %@ |", row.model, row.mode, row.contender, row.gigabytesPerSecond,
                                row.seconds.min()!, row.seconds.max()!, row.hydraVsThis?.cell ?? "—", row.nodeCacheVsThis?.cell ?? "—"))
        }
        lines.append("\nRemote rows: loopback, warm page cache on the server side. 'hydra cache' is a fresh `hydra cache serve` process per run and one `hydra cache attach` of the whole model, timed from connect to the last chunk-ready event (manifest, fetch, XXH3 check, sealing, descriptor passing); 'with a reserve' started with `--reserve-gib` as large as the store's chunks in their piece classes (4–32 MiB), faulted in before the cache listens (as a node's cache would be, long before an order) in the mix of chunk sizes its store's manifests show, the other with none (every chunk lands in fresh memory). `hydra fetch` is timed on its fetch (parallel keep-alive GETs into one resident arena, each chunk checked against the XXH3 its manifest carries, or its SHA-256 in the 'SHA-256' row); curl runs are whole processes writing to /dev/null, from nginx (sendfile) and from `hydra store serve`, at the same connection count.")
        lines.append("\nPython peers (synthetic model only: they read its safetensors source, the same 2 GB of bf16): every tensor materialised in process memory (safetensors' lazy mmap is cloned; runai's reused buffers are cloned), timed inside the interpreter after imports; runai-model-streamer with its default (direct) reads at concurrency 1, 4 and 16.")
        lines.append("\nhydra and fio time their reads alone (fio's own runtime; hydra excludes its process start and the allocation of the destination arena). Warm, every contender's run follows a `cat` of the files, and ours reads them once more after faulting its arena in, which can take seconds of fresh memory on a VM, while proactive reclaim drops pages of the files (the row 'not read again' skips that); cat is timed as a whole process and reads into one small, cache-hot buffer, where hydra fills a model-sized arena. memcpy (the warm goal's yardstick) is one thread copying as many bytes between two resident buffers, in the benchmark's process between the warm runs.")
        lines.append("\nRatios: the median over the median, with a 90% bootstrap interval (2000 resamples of the alternated rounds, each round taken whole, so a slow spell of the machine weighs on both contenders; memcpy, measured in one batch after the warm runs, is paired with them by run number); an interval that spans 1.00× is a tie on this machine.")
        if !costs.isEmpty {
            lines.append("\nVerification cost at four connections (the goal: at most 10% of the unchecked fetch's throughput): \(costs.joined(separator: ", ")), by the medians of the verification pair's \(verifyRuns) rounds, XXH3-checked and unchecked `hydra fetch` run back to back in alternating order (90% bootstrap interval). Its row 'hydra vs this' is the checked fetch's speed over the unchecked one's.")
        }
        print(lines.joined(separator: "\n"))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(rows).write(to: URL(fileURLWithPath: jsonOut))
        Terminal.note("figures written to \(jsonOut)")
    }
}

extension BenchFetchCommand {
    /// Store server → client over loopback, next to nginx (sendfile) + curl, at 1 and 4 connections.
    func remoteRows(store: String, models: [(String, String)]) throws -> [Row] {
        let hydraPort = 18_000 + Int(getpid() % 1000), nginxPort = hydraPort + 1000
        let server = try ChildProcess.start([ChildProcess.selfPath, "store", "serve", "--root", store, "--listen", "127.0.0.1:\(hydraPort)"])
        defer { ChildProcess.stop(server) }
        var nginx: pid_t?
        if FileManager.default.isExecutableFile(atPath: "/usr/sbin/nginx") {
            let conf = workDir + "/nginx.conf"
            try """
            daemon off; worker_processes 2; pid \(workDir)/nginx.pid; error_log \(workDir)/nginx-error.log;
            events { worker_connections 256; }
            http { sendfile on; tcp_nopush on; access_log off; keepalive_requests 100000;
                   client_body_temp_path \(workDir)/nginx-tmp; proxy_temp_path \(workDir)/nginx-tmp; fastcgi_temp_path \(workDir)/nginx-tmp;
                   uwsgi_temp_path \(workDir)/nginx-tmp; scgi_temp_path \(workDir)/nginx-tmp;
                   server { listen 127.0.0.1:\(nginxPort); root \(store); } }
            """.write(toFile: conf, atomically: true, encoding: .utf8)
            nginx = try ChildProcess.start(["/usr/sbin/nginx", "-c", conf, "-p", workDir, "-e", workDir + "/nginx-error.log"])
        } else {
            Terminal.note("nginx not found (apt-get install nginx-light): remote rows without the nginx peer")
        }
        defer { if let nginx { ChildProcess.stop(nginx, signal: SIGQUIT) } }
        let client = HTTPClient(timeoutSeconds: 2)
        for _ in 0..<100 where (try? client.get("http://127.0.0.1:\(hydraPort)/healthz").status) != 200 { usleep(50_000) }

        // A reserve as large as the store's chunks in their piece classes (the cache splits it
        // between the classes as the store's manifests do), plus a largest piece for each class.
        let sizing = SharedMemoryReserve(largestPieceBytes: NodeCache.Configuration.defaultReservePieceBytes, targetBytes: 0)
        var reserveBytes = sizing.largestPieceBytes * sizing.classes.count
        for (_, name) in models {
            let chunks = try StoreEntry(store: StoreDirectory(root: store), name: name).manifest.chunks
            for (_, bytes) in Dictionary(chunks.map { ($0.sha256, $0.storedBytes) }, uniquingKeysWith: { a, _ in a }) {
                reserveBytes += sizing.pieceBytes(for: bytes) ?? 0
            }
        }
        let reserveGiB = (Double(reserveBytes) / Double(1 << 30) * 100).rounded(.up) / 100

        var rows: [Row] = []
        for (label, name) in models {
            let entry = try StoreEntry(store: StoreDirectory(root: store), name: name)
            let hashes = Array(Set(entry.manifest.chunks.map(\.sha256))).sorted()
            let bytes = hashes.reduce(0) { total, hash in total + entry.manifest.chunks.first { $0.sha256 == hash }!.storedBytes }
            _ = try ChildProcess.run(Self.cat(hashes.map(entry.store.chunkPath)))
            func fetch(connections: Int, verify: String = "fast", extra: [String] = []) -> [String] {
                [ChildProcess.selfPath, "fetch", "http://127.0.0.1:\(hydraPort)", name, "--connections", String(connections), "--verify", verify, "--json"] + extra
            }
            func curl(_ urls: [String], _ connections: Int) -> [String] {
                ["curl", "-sf", "--no-progress-meter", "--parallel", "--parallel-max", String(connections)] + urls.flatMap { [$0, "-o", "/dev/null"] }
            }
            for connections in [1, 4] {
                var contenders: [(String, [String])] = [
                    ("hydra fetch", fetch(connections: connections)),
                    (Self.cacheWithReserve, coldCacheAttach(port: hydraPort, name: name, connections: connections, reserveGiB: reserveGiB)),
                    ("hydra cache (cold node cache, attached worker)", coldCacheAttach(port: hydraPort, name: name, connections: connections)),
                    ("curl ← hydra store serve", curl(hashes.map { "http://127.0.0.1:\(hydraPort)/v1/chunks/\($0)" }, connections)),
                ]
                if connections == 4 {
                    contenders.append(("hydra fetch, SHA-256", fetch(connections: 4, verify: "sha256")))
                    if bytes < 512 << 20 {  // the 2 GB model would take 16 s a run at 1 Gbit/s
                        contenders.append(("hydra fetch, emulated 1 Gbit/s link (0.125 GB/s)", fetch(connections: 4, extra: ["--nic-gbps", "1"])))
                        contenders.append(("hydra cache, emulated 1 Gbit/s link (0.125 GB/s)",
                                           coldCacheAttach(port: hydraPort, name: name, connections: 4, nicGbps: 1)))
                    }
                }
                if nginx != nil {
                    contenders.append(("curl ← nginx", curl(hashes.map { "http://127.0.0.1:\(nginxPort)/chunks/\($0.prefix(2))/\($0)" }, connections)))
                }
                let times = try alternate(contenders, what: "\(label), remote ×\(connections)", measure: measureRemote)
                for (contender, _) in contenders {
                    rows.append(Row(model: label, contender: contender, mode: "remote ×\(connections)", bytes: bytes, seconds: times[contender]!))
                }
            }
            // The verification goal's pair on its own: checked and unchecked back to back, more
            // rounds than the rest (the cost is a few percent of runs that vary by more than that).
            let pair = [(Self.checkedRow, fetch(connections: 4)), (Self.uncheckedRow, fetch(connections: 4, verify: "none"))]
            let pairTimes = try alternate(pair, what: "\(label), verification pair", runs: verifyRuns, measure: measureRemote)
            for (contender, _) in pair {
                rows.append(Row(model: label, contender: contender, mode: Self.verificationMode, bytes: bytes, seconds: pairTimes[contender]!))
            }
        }
        return rows
    }

    /// Each contender's times over `runs` runs, their order reversed every other run so drift
    /// hits them alike, with a progress line per run (`what`: the rows being measured).
    func alternate(_ contenders: [(String, [String])], what: String, runs: Int? = nil,
                   measure: (_ contender: String, _ argv: [String]) throws -> Double) throws -> [String: [Double]] {
        var times: [String: [Double]] = [:]
        let runs = runs ?? self.runs
        for run in 1...runs {
            Terminal.note("\(what): run \(run) of \(runs)")
            for (contender, argv) in run % 2 == 1 ? contenders : contenders.reversed() {
                times[contender, default: []].append(try measure(contender, argv))
            }
        }
        return times
    }

    /// One remote run: a gigabyte of memory touched first (`warmMemory`: every contender starts
    /// from the same state), then the child; ours are timed by what they print, peers as whole
    /// processes.
    func measureRemote(_ contender: String, _ argv: [String]) throws -> Double {
        warmMemory(bytes: 1 << 30)
        let (result, output) = try ChildProcess.runCapturing(argv)
        guard result.status == 0 else { throw BenchError("\(contender) failed with status \(result.status)") }
        if contender.hasPrefix("hydra"), let json = try? JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any],
           let measured = json["seconds"] as? Double {
            return measured  // the fetch itself: no process start, manifest or arena allocation
        }
        return result.seconds
    }

    /// `cat FILES > /dev/null`: the `cat` contender, and how every warm run's files are warmed.
    static func cat(_ files: [String]) -> [String] { ["/bin/sh", "-c", "cat \"$@\" > /dev/null", "cat"] + files }

    static let verificationMode = "remote ×4, verification pair"
    static let checkedRow = "hydra fetch (XXH3 checked)"
    static let uncheckedRow = "hydra fetch, no verify"
    static let cacheWithReserve = "hydra cache (cold node cache with a reserve, attached worker)"
    static let withoutRewarmRow = "hydra (io_uring), files not read again after the arena's fault-in"
    static let memcpyRow = "memcpy (one thread, resident buffers)"

    /// A fresh node cache process (cold), one worker attaching to the whole model; the figure is
    /// the attach's own time from connect to the last chunk-ready event (manifest fetch included).
    /// With `reserveGiB`, the cache faults that much shared memory in before it listens.
    func coldCacheAttach(port: Int, name: String, connections: Int, nicGbps: Double? = nil, reserveGiB: Double = 0) -> [String] {
        let hydra = ChildProcess.selfPath
        let socket = workDir + "/bench-cache.sock"
        let link = (nicGbps.map { " --nic-gbps \($0)" } ?? "") + (reserveGiB > 0 ? " --reserve-gib \(reserveGiB)" : "")
        let script = """
        "$0" cache serve --node bench --socket "$1" --capacity-gib 4 --remote http://127.0.0.1:\(port) --connections \(connections)\(link) >/dev/null 2>&1 &
        pid=$!
        for i in $(seq 200); do "$0" cache status --socket "$1" >/dev/null 2>&1 && break; sleep 0.05; done
        "$0" cache attach --socket "$1" "$2" --json; rc=$?
        kill $pid; wait $pid; exit $rc
        """
        return ["/bin/sh", "-c", script, hydra, socket, name]
    }
}
