import Foundation
import Glibc
import HydraSystem

/// What `hydra convert` asks for.
public struct ConvertOptions: Sendable {
    public var name: String
    public var chunkSizeBytes: Int = 32 << 20
    public var dtype: DTypePolicy = .keep
    public var compress: Bool = false
    public var maxPP: Int = 8

    public init(name: String) { self.name = name }
}

/// Reports progress (bytes done, bytes total) and asks whether to stop.
public struct ConvertMonitor: Sendable {
    public var progress: @Sendable (Int, Int) -> Void
    public var isCancelled: @Sendable () -> Bool

    public init(progress: @escaping @Sendable (Int, Int) -> Void = { _, _ in }, isCancelled: @escaping @Sendable () -> Bool = { false }) {
        self.progress = progress
        self.isCancelled = isCancelled
    }
}

public struct ConvertResult: Sendable {
    public let manifest: Manifest
    /// Bytes written to new chunk files (0 when every chunk was already stored).
    public let bytesWritten: Int
    public let manifestPath: String
}

public struct ConversionCancelled: Error, CustomStringConvertible {
    public var description: String { "conversion interrupted: nothing was stored" }
}

/// Converts a source model into a store entry. Streams: memory holds one chunk buffer plus one
/// tensor piece, whatever the model size. Atomic: chunks and manifest are written to a staging
/// folder and renamed into place only when everything succeeded.
public enum Converter {
    public static func convert(_ source: SourceModel, into store: StoreDirectory, options: ConvertOptions,
                               monitor: ConvertMonitor = ConvertMonitor()) throws -> ConvertResult {
        guard StoreDirectory.isValidModelName(options.name) else {
            throw FormatError(options.name, "invalid model name: use letters, digits, '.', '_' and '-' (at most 128, no '..')")
        }
        guard options.chunkSizeBytes >= Manifest.alignmentBytes, options.chunkSizeBytes % Manifest.alignmentBytes == 0 else {
            throw FormatError(options.name, "chunk size must be a positive multiple of \(Manifest.alignmentBytes) bytes")
        }
        let layout = try ModelLayout(source: source, name: options.name)

        try makeDirectory(store.chunksDirectory)
        try makeDirectory(store.modelsDirectory)
        try makeDirectory(store.stagingDirectory)
        store.removeStaleStaging()
        let staging = store.stagingDirectory + "/\(options.name).\(getpid()).\(UInt32.random(in: 0...UInt32.max))"
        try makeDirectory(staging)
        defer { try? FileManager.default.removeItem(atPath: staging) }

        let sink = ChunkSink(chunkSizeBytes: options.chunkSizeBytes, compress: options.compress, stagingDirectory: staging,
                             alreadyStored: { FileManager.default.fileExists(atPath: store.chunkPath($0)) })
        let packer = ChunkPacker(chunkSizeBytes: options.chunkSizeBytes, sink: sink)
        // On any exit the pipeline threads must stop before the staging folder goes away.
        var finished = false
        defer { if !finished { _ = try? sink.finish() } }

        let totalBytes = layout.ordered.reduce(0) { $0 + $1.tensor.elementCount * options.dtype.outputType(for: $1.tensor.sourceType).elementBytes }
        var doneBytes = 0
        var tensors: [Manifest.Tensor] = []
        for (tensor, section, layer) in layout.ordered {
            if monitor.isCancelled() { throw ConversionCancelled() }
            let type = options.dtype.outputType(for: tensor.sourceType)
            let extents = try packer.append(
                section: section, layer: layer, byteCount: tensor.elementCount * type.elementBytes, elementBytes: type.elementBytes,
                progress: { doneBytes += $0; monitor.progress(doneBytes, totalBytes) },
                produce: { range, destination in
                    if monitor.isCancelled() { throw ConversionCancelled() }
                    try tensor.reader.read(elements: range, into: destination, as: type)
                })
            tensors.append(Manifest.Tensor(name: tensor.name, dtype: type, shape: tensor.shape, section: section, layer: layer, extents: extents))
        }
        try packer.flush()
        finished = true
        let chunks = try sink.finish()

        var files: [Manifest.FileEntry] = []
        for file in source.files {
            let hash = SHA256Hasher.hex(file.bytes)
            try file.bytes.withUnsafeBytes { try sink.stage(hash, $0) }
            files.append(Manifest.FileEntry(name: file.name, sha256: hash, bytes: file.bytes.count))
        }

        let plans = StagePlans.make(chunks: chunks, tensors: tensors, layerCount: layout.layerCount,
                                    tied: layout.tied, maxPP: options.maxPP)
        let manifest = Manifest(
            format: Manifest.formatName, formatVersion: Manifest.version.description, name: options.name,
            architecture: layout.architecture, layerCount: layout.layerCount, tiedEmbeddings: layout.tied,
            alignmentBytes: Manifest.alignmentBytes, chunkSizeBytes: options.chunkSizeBytes,
            source: .init(kind: source.kind, dtypePolicy: options.dtype), config: source.config,
            files: files, chunks: chunks, tensors: tensors, stagePlans: plans)
        try manifest.validate(file: options.name)
        if monitor.isCancelled() { throw ConversionCancelled() }
        try StorePublisher.publish(manifest, staged: sink.staged, staging: staging, store: store)
        return ConvertResult(manifest: manifest, bytesWritten: sink.bytesWritten, manifestPath: store.manifestPath(options.name))
    }

    /// Loads a source: a `.gguf` file or a Hugging Face directory.
    public static func loadSource(_ path: String) throws -> SourceModel {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw FormatError(path, "no such file or directory")
        }
        if isDirectory.boolValue { return try HuggingFaceSource.load(directory: path) }
        if path.lowercased().hasSuffix(".gguf") { return try GGUFLlamaSource.load(path: path) }
        throw FormatError(path, "not a Hugging Face model directory or a .gguf file")
    }

    /// The default entry name for a source path: its last component without the extension.
    public static func defaultName(for path: String) -> String {
        var base = URL(fileURLWithPath: path).lastPathComponent
        if base.lowercased().hasSuffix(".gguf") { base = String(base.dropLast(5)) }
        let cleaned = base.map { c -> Character in c.isLetter || c.isNumber || c == "." || c == "_" || c == "-" ? c : "-" }
        return String(cleaned)
    }
}
