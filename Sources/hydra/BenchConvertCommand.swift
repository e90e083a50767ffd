import ArgumentParser
import Foundation
import Glibc
import HydraControl
import HydraFormat

struct BenchConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Time `hydra convert` against cp of the same bytes (plain, and followed by sync).",
        discussion: """
        Converts a synthetic ~2 GB bf16 safetensors model (written once into --work-dir) and, when \
        found, the SmolLM2 GGUF (--smollm2, default: the tools/fetch-smollm2 cache) to bf16. Contenders \
        alternate run by run; before each run the store is removed, dirty pages are synced and memory \
        is warmed. The source stays in the page cache for every contender. Prints a table of medians \
        and writes the figures as JSON.
        """
    )

    @Option(help: "Folder for the synthetic model and the stores (on the disk you want to measure).")
    var workDir: String = NSTemporaryDirectory() + "hydra-bench-convert"
    @Option(help: "Runs per contender.") var runs: Int = 5
    @Option(help: "SmolLM2-135M-Instruct.Q4_1.gguf (default: the fetch-smollm2 cache).") var smollm2: String?
    @Option(help: "Where to write the JSON figures.") var jsonOut: String = "bench-convert.json"

    struct Row: Codable {
        var model: String
        var contender: String
        var sourceBytes: Int
        var seconds: [Double]
        var peakRSSBytes: [Int]
        var medianSeconds: Double { median(seconds) }
        var megabytesPerSecond: Double { Double(sourceBytes) / medianSeconds / 1e6 }
    }

    func run() throws {
        try runReportingErrors {
            try FileManager.default.createDirectory(atPath: workDir, withIntermediateDirectories: true)
            let synthetic = workDir + "/synthetic-2gb"
            let model = SyntheticModel.twoGB
            let weights = synthetic + "/model.safetensors"
            let expectedSize = model.weightBytes
            let currentSize = (try? FileManager.default.attributesOfItem(atPath: weights)[.size] as? Int) ?? 0
            if currentSize < expectedSize || currentSize > expectedSize + (1 << 20) {
                Terminal.note("writing the synthetic model (\(formatBytes(expectedSize))) to \(synthetic)…")
                try model.write(to: synthetic)
            }
            var cases: [(name: String, source: String, copyFile: String, extra: [String])] = [
                ("synthetic-2GB (bf16 safetensors, --dtype keep)", synthetic, weights, []),
            ]
            let gguf = smollm2 ?? SmolLM2.defaultGGUFPath
            if FileManager.default.fileExists(atPath: gguf) {
                cases.append(("SmolLM2-135M (Q4_1 GGUF → --dtype bf16)", gguf, gguf, ["--dtype", "bf16"]))
            } else {
                Terminal.note("SmolLM2 GGUF not found at \(gguf): run tools/fetch-smollm2 to include it")
            }

            var rows: [Row] = []
            for item in cases {
                let sourceBytes = (try FileManager.default.attributesOfItem(atPath: item.copyFile)[.size] as? Int) ?? 0
                _ = try ChildProcess.run(["cat", item.copyFile])  // the source is read from the page cache by everyone
                var byContender: [String: Row] = [:]
                let copyTarget = workDir + "/copy"
                let store = workDir + "/store"
                let contenders: [(String, [String], Bool)] = [
                    ("cp", ["cp", item.copyFile, copyTarget], false),
                    ("cp + sync", ["cp", item.copyFile, copyTarget], true),
                    ("hydra convert", [ChildProcess.selfPath, "convert", item.source, store, "--name", "bench"] + item.extra, true),
                ]
                for run in 1...runs {
                    // Alternate the order so drift hits every contender alike.
                    let order = run % 2 == 1 ? contenders : contenders.reversed()
                    for (name, argv, syncAfter) in order {
                        try? FileManager.default.removeItem(atPath: copyTarget)
                        try? FileManager.default.removeItem(atPath: store)
                        sync()
                        warmMemory()
                        let started = DispatchTime.now()
                        let result = try ChildProcess.run(argv)
                        guard result.status == 0 else { throw BenchError("\(name) failed with status \(result.status)") }
                        if syncAfter { sync() }  // convert fsyncs itself; this adds only what is left
                        let seconds = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9
                        var row = byContender[name] ?? Row(model: item.name, contender: name, sourceBytes: sourceBytes, seconds: [], peakRSSBytes: [])
                        row.seconds.append(seconds)
                        row.peakRSSBytes.append(result.peakRSSBytes)
                        byContender[name] = row
                        Terminal.note(String(format: "  run %d %@: %.2f s", run, name, seconds))
                    }
                }
                try? FileManager.default.removeItem(atPath: copyTarget)
                try? FileManager.default.removeItem(atPath: store)
                rows += contenders.map { byContender[$0.0]! }
            }
            print(table(rows))
            try writeJSON(rows)
        }
    }

    func table(_ rows: [Row]) -> String {
        var lines = ["| model | contender | median s | min–max s | MB/s (source) | peak RSS MiB | convert vs this |",
                     "|---|---|---|---|---|---|---|"]
        for row in rows {
            let convert = rows.first { $0.model == row.model && $0.contender == "hydra convert" }!
            let ratio = row.medianSeconds / convert.medianSeconds
            lines.append(String(format: "| %@ | %@ | %.2f | %.2f–%.2f | %.0f | %.0f | %@ |", row.model, row.contender,
                                row.medianSeconds, row.seconds.min()!, row.seconds.max()!, row.megabytesPerSecond,
                                Double(row.peakRSSBytes.max()!) / 1048576,
                                row.contender == "hydra convert" ? "—" : String(format: "%.2f×", ratio)))
        }
        lines.append("\n`convert vs this` = this contender's median time / convert's: above 1 means convert is faster.")
        return lines.joined(separator: "\n")
    }

    func writeJSON(_ rows: [Row]) throws {
        struct Figures: Encodable {
            let benchmark = "convert"
            let runs: Int
            let rows: [Entry]
            struct Entry: Encodable {
                let model, contender: String
                let sourceBytes: Int
                let medianSeconds, megabytesPerSecond: Double
                let seconds: [Double]
                let peakRSSBytes: [Int]
            }
        }
        let figures = Figures(runs: runs, rows: rows.map {
            .init(model: $0.model, contender: $0.contender, sourceBytes: $0.sourceBytes, medianSeconds: $0.medianSeconds,
                  megabytesPerSecond: $0.megabytesPerSecond, seconds: $0.seconds, peakRSSBytes: $0.peakRSSBytes)
        })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(figures).write(to: URL(fileURLWithPath: jsonOut))
        Terminal.note("figures written to \(jsonOut)")
    }
}
