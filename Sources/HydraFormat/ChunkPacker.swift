import Glibc
import HydraSystem

/// Packs tensors into chunks as the converter streams them: one section/layer per chunk,
/// tensor payloads at 4 KiB-aligned offsets, tensors larger than a chunk split across chunks.
/// Fills one buffer at a time and hands each closed chunk to the `ChunkSink`.
final class ChunkPacker {
    let chunkSizeBytes: Int
    let sink: ChunkSink
    private var buffer: SharedBuffer
    private var fill = 0
    private var owner: (section: Section, layer: Int?)?
    private var elementSizes = Set<Int>()
    private var nextIndex = 0

    init(chunkSizeBytes: Int, sink: ChunkSink) {
        precondition(chunkSizeBytes % Manifest.alignmentBytes == 0 && chunkSizeBytes > 0)
        self.chunkSizeBytes = chunkSizeBytes
        self.sink = sink
        buffer = sink.freeBuffers.take()!
    }

    /// Appends a tensor of `byteCount` bytes; `produce(elementRange, destination)` writes its
    /// elements. Returns the tensor's extents.
    func append(
        section: Section, layer: Int?, byteCount: Int, elementBytes: Int,
        progress: (Int) -> Void,
        produce: (Range<Int>, UnsafeMutableRawBufferPointer) throws -> Void
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
            extents.append(Manifest.Extent(chunk: nextIndex, offset: offset, length: length))
            elementSizes.insert(elementBytes)
            fill = offset + length
            offset = fill
            done += length
            progress(length)
        } while done < byteCount
        return extents
    }

    /// Closes the current chunk: pads it and hands it to the sink, taking a free buffer.
    func flush() throws {
        guard let owner else { return }
        let payloadBytes = alignUp(fill, to: Manifest.alignmentBytes)
        memset(buffer.baseAddress + fill, 0, payloadBytes - fill)
        // Byte planes only help when every element in the chunk has the same width.
        let planes = elementSizes.count == 1 && [2, 4].contains(elementSizes.first!) ? elementSizes.first! : 1
        try sink.submit(ChunkSink.Job(index: nextIndex, buffer: buffer, payloadBytes: payloadBytes,
                                  section: owner.section, layer: owner.layer, planes: planes))
        nextIndex += 1
        buffer = sink.freeBuffers.take()!
        self.owner = nil
        fill = 0
        elementSizes = []
    }
}
