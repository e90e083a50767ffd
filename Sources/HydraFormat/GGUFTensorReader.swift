import HydraSystem

/// Reads a GGUF tensor in the Hugging Face layout: dequantised to f32 (or its float type), rows
/// optionally reordered to undo llama.cpp's rotary permutation of q/k.
struct GGUFTensorReader: TensorReader {
    let file: SourceFile
    let info: GGUFFile.TensorInfo
    /// For q/k projections: the number of heads whose rows llama.cpp interleaved.
    let permutedHeads: Int?

    var rowElements: Int { info.dimensions[0] }
    var rowBytes: Int { rowElements / info.type.blockElements * info.type.blockBytes }

    func read(elements range: Range<Int>, into destination: UnsafeMutableRawBufferPointer, as type: DType) throws {
        var written = 0
        var element = range.lowerBound
        // Work row by row (a row is a whole number of blocks): bounded memory, and the
        // row reordering of q/k falls out naturally.
        let rowBuffer = AlignedBuffer(count: rowBytes)
        var values = [Float](repeating: 0, count: rowElements)
        while element < range.upperBound {
            let row = element / rowElements
            let column = element % rowElements
            let take = min(rowElements - column, range.upperBound - element)
            try file.read(into: rowBuffer.bytes, at: info.offset + sourceRow(row) * rowBytes)
            values.withUnsafeMutableBufferPointer {
                GGMLDequantize.dequantize(info.type, blocks: UnsafeRawBufferPointer(rowBuffer.bytes),
                                          blockCount: rowElements / info.type.blockElements, into: $0)
            }
            let outBytes = type.elementBytes
            values.withUnsafeBufferPointer { row in
                let target = UnsafeMutableRawBufferPointer(rebasing: destination[(written * outBytes)...])
                ElementConversion.store(count: take, into: target, as: type) { row[column + $0] }
            }
            written += take
            element += take
        }
    }

    /// The GGUF row that holds Hugging Face row `row`. llama.cpp stores each head's rows as
    /// (pair index, half) where Hugging Face has (half, pair index).
    func sourceRow(_ row: Int) -> Int {
        guard let heads = permutedHeads else { return row }
        let rows = info.elementCount / rowElements
        let headDim = rows / heads
        let half = headDim / 2
        let head = row / headDim, within = row % headDim
        let i = within / half, j = within % half
        return head * headDim + j * 2 + i
    }
}
