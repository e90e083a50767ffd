import ArgumentParser
import Foundation
import HydraFormat

struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert a Hugging Face model directory or a GGUF file into a store entry.",
        discussion: """
        SRC is a directory with config.json and model.safetensors (or a sharded \
        model.safetensors.index.json) plus tokenizer files, or a .gguf file (llama architecture; \
        F32, F16, BF16, Q8_0, Q4_0 and Q4_1 are dequantised). The entry appears atomically; \
        rerunning over an existing entry is idempotent.
        """
    )

    @Argument(help: "Hugging Face model directory or .gguf file.") var src: String
    @Argument(help: "Store directory (created if missing).") var store: String
    @Option(help: "Entry name (default: the source's file or directory name).") var name: String?
    @Option(name: .customLong("chunk-size-mib"), help: "Target chunk size in MiB.") var chunkSizeMiB: Int = 32
    @Option(help: "Stored dtype of floating-point tensors: keep, bf16, f16 or f32.") var dtype: String = "keep"
    @Option(help: "Chunk compression: none or zstd.") var compress: String = "none"
    @Option(name: .customLong("max-pp"), help: "Write stage plans for pp = 1…N.") var maxPP: Int = 8

    func validate() throws {
        guard DTypePolicy(rawValue: dtype) != nil else { throw ValidationError("--dtype must be keep, bf16, f16 or f32") }
        guard ["none", "zstd"].contains(compress) else { throw ValidationError("--compress must be none or zstd") }
        guard (1...4096).contains(chunkSizeMiB) else { throw ValidationError("--chunk-size-mib must be 1…4096") }
        guard (1...64).contains(maxPP) else { throw ValidationError("--max-pp must be 1…64") }
    }

    func run() throws {
        try runReportingErrors {
            Interrupt.install()
            let started = Date()
            let source = try Converter.loadSource(src)
            var options = ConvertOptions(name: name ?? Converter.defaultName(for: src))
            options.chunkSizeBytes = chunkSizeMiB << 20
            options.dtype = DTypePolicy(rawValue: dtype)!
            options.compress = compress == "zstd"
            options.maxPP = maxPP
            let bar = ProgressBar(label: "converting \(options.name)")
            let monitor = ConvertMonitor(progress: { bar.update($0, $1) }, isCancelled: { Interrupt.requested })
            let result = try Converter.convert(source, into: StoreDirectory(root: store), options: options, monitor: monitor)
            bar.finish()
            let manifest = result.manifest
            let stored = manifest.chunks.reduce(0) { $0 + $1.storedBytes }
            let seconds = Date().timeIntervalSince(started)
            print("converted \(manifest.name): \(manifest.tensors.count) tensors, \(manifest.chunks.count) chunks, " +
                  "\(formatBytes(stored)) stored (\(formatBytes(result.bytesWritten)) new) in " +
                  String(format: "%.2f s", seconds))
            print("manifest: \(result.manifestPath)")
        }
    }
}
