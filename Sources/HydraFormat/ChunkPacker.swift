import Glibc
import HydraSystem

/// Packs tensors into chunks as the converter streams them: one section/layer per chunk,
/// tensor payloads at 4 KiB-aligned offsets, tensors larger than a chunk split across chunks.
/// Holds one chunk buffer; each full chunk is hashed and written to the staging folder.
struct ChunkPacker: ~Copyable {
    let chunkSizeBytes: Int
    let compression: Compression
    let stagingDirectory: String
    /// Chunk files already in the store: not written again.
    let alreadyStored: (String) -> Bool

    private let buffer: AlignedBuffer
    private var fill = 0
    private var owner: (section: Section, layer: Int?)?
    private var elementSizes = Set<Int>()
    private(set) var chunks: [Manifest.Chunk] = []
    /// Hashes written to staging by this conversion, and their stored sizes.
    private(set) var staged: [String: Int] = [:]
    private(set) var bytesWritten = 0

    init(chunkSizeBytes: Int, compression: Compression, stagingDirectory: String, alreadyStored: @escaping (String) -> Bool) {
        precondition(chunkSizeBytes % Manifest.alignmentBytes == 0 && chunkSizeBytes > 0)
        self.chunkSizeBytes = chunkSizeBytes
        self.compression = compression
        self.stagingDirectory = stagingDirectory
        self.alreadyStored = alreadyStored
        buffer = AlignedBuffer(count: chunkSizeBytes)
    }

    /// Appends a tensor of `byteCount` bytes; `fill(elementRange, destination)` writes its elements.
    /// Returns the tensor's extents.
    mutating func append(
        section: Section, layer: Int?, byteCount: Int, elementBytes: Int,
        progress: (Int) -> Void,
        fill produce: (Range<Int>, UnsafeMutableRawBufferPointer) throws -> Void
    ) throws -> [Manifest.Extent] {
        if let owner, owner.section != section || owner.layer != layer { try flush() }
        owner = (section, layer)
        var offset = alignUp(fill, to: Manifest.alignmentBytes)
        if offset + byteCount > chunkSizeBytes && fill > 0 && byteCount <= chunkSizeBytes {
            try flush()
            owner = (section, layer)
            offset = 0
        }
        var extents: [Manifest.Extent] = []
        var done = 0
        // Zero-length tensors still get an (empty) extent in the current chunk.
        repeat {
            if offset >= chunkSizeBytes {
                try flush()
                owner = (section, layer)
                offset = 0
            }
            memset(buffer.baseAddress + fill, 0, offset - fill)  // alignment padding
            let length = min(byteCount - done, chunkSizeBytes - offset)
            let elements = (done / elementBytes)..<((done + length) / elementBytes)
            try produce(elements, UnsafeMutableRawBufferPointer(start: buffer.baseAddress + offset, count: length))
            extents.append(Manifest.Extent(chunk: chunks.count, offset: offset, length: length))
            elementSizes.insert(elementBytes)
            fill = offset + length
            offset = fill
            done += length
            progress(length)
        } while done < byteCount
        return extents
    }

    /// Closes the current chunk: pads it, compresses if asked, hashes and stages it.
    mutating func flush() throws {
        guard let owner else { return }
        let payloadBytes = alignUp(fill, to: Manifest.alignmentBytes)
        memset(buffer.baseAddress + fill, 0, payloadBytes - fill)
        let payload = UnsafeRawBufferPointer(start: buffer.baseAddress, count: payloadBytes)
        var usedCompression = Compression.none
        var compressed: [UInt8] = []
        if case .zstd = compression {
            let planes = elementSizes.count == 1 && [2, 4].contains(elementSizes.first!) ? elementSizes.first! : 1
            compressed = try ChunkCodec.compress(payload, planes: planes)
            if compressed.count < payloadBytes { usedCompression = .zstd(planes: planes) } else { compressed = [] }
        }
        let hash: String
        let storedBytes: Int
        if usedCompression == .none {
            hash = SHA256Hasher.hex(payload)
            storedBytes = payloadBytes
            try stage(hash, payload)
        } else {
            hash = SHA256Hasher.hex(compressed)
            storedBytes = compressed.count
            try compressed.withUnsafeBytes { try stage(hash, $0) }
        }
        chunks.append(Manifest.Chunk(sha256: hash, storedBytes: storedBytes, payloadBytes: payloadBytes,
                                     compression: usedCompression, section: owner.section, layer: owner.layer))
        self.owner = nil
        fill = 0
        elementSizes = []
    }

    /// Stages a blob (chunk or carried file) under its hash unless it is already there.
    mutating func stage(_ hash: String, _ bytes: UnsafeRawBufferPointer) throws {
        guard staged[hash] == nil else { return }
        staged[hash] = bytes.count
        if alreadyStored(hash) { return }
        let file = try FileDescriptor.create(stagingDirectory + "/" + hash)
        try file.write(bytes, at: 0)
        bytesWritten += bytes.count
    }
}
