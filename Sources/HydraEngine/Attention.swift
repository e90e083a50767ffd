import Foundation

extension Kernels {
    /// y += a · x over `count` floats, 8 at a time.
    @inline(__always)
    static func axpy(_ a: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ count: Int) {
        let rx = UnsafeRawPointer(x), ry = UnsafeMutableRawPointer(y)
        let scale = SIMD8<Float>(repeating: a)
        var d = 0
        while d + 8 <= count {
            var acc = ry.loadUnaligned(fromByteOffset: d * 4, as: SIMD8<Float>.self)
            acc.addProduct(scale, rx.loadUnaligned(fromByteOffset: d * 4, as: SIMD8<Float>.self))
            ry.storeBytes(of: acc, toByteOffset: d * 4, as: SIMD8<Float>.self)
            d += 8
        }
        while d < count { y[d] += a * x[d]; d += 1 }
    }

    /// Causal attention of a batch's queries over each sequence's cached keys and values
    /// (the batch's own K/V must already be written). Grouped-query: query head h reads kv
    /// head h / (heads / kvHeads). Returns [T, heads · headDim].
    static func attention(queries q: Matrix, batch: Batch, cache: KVCache, layer: Int,
                          heads: Int, kvHeads: Int, headDim: Int, scale: Float) -> Matrix {
        var out = Matrix(zeros: q.rows, heads * headDim)
        let group = heads / kvHeads
        let keys = cache.keyBase(layer), values = cache.valueBase(layer)
        // One work item per (row, head).
        var items: [(sequence: Int, index: Int)] = []
        for (s, sequence) in batch.sequences.enumerated() { for i in 0..<sequence.tokenCount { items.append((s, i)) } }
        q.values.withUnsafeBufferPointer { qs in
            out.values.withUnsafeMutableBufferPointer { os in
                let qBase = qs.baseAddress!, oBase = os.baseAddress!
                Parallel.forEachInterleaved(items.count * heads) { work in
                    let (s, i) = items[work / heads]
                    let head = work % heads
                    let sequence = batch.sequences[s]
                    let row = sequence.firstRow + i
                    let position = sequence.startPosition + i
                    let query = qBase + row * q.columns + head * headDim
                    let kvOffset = (head / group) * headDim
                    withUnsafeTemporaryAllocation(of: Float.self, capacity: position + 1) { scores in
                        var maximum = -Float.infinity
                        for j in 0...position {
                            let score = dot(query, keys + cache.slot(sequence.blockTable, j) + kvOffset, headDim) * scale
                            scores[j] = score
                            maximum = max(maximum, score)
                        }
                        var total: Float = 0
                        for j in 0...position {
                            scores[j] = exp(scores[j] - maximum)
                            total += scores[j]
                        }
                        let output = oBase + row * out.columns + head * headDim
                        for j in 0...position {
                            let value = values + cache.slot(sequence.blockTable, j) + kvOffset
                            axpy(scores[j] / total, value, output, headDim)
                        }
                    }
                }
            }
        }
        return out
    }
}
