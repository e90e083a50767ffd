import Foundation

extension Kernels {
    /// out = scale · Σⱼ weights[j] · base[offsets[j] ..< offsets[j] + width]: the attention-weighted
    /// sum of value rows, 64 columns at a time held in eight registers across all rows (enough
    /// independent accumulators to hide the fused multiply-add latency).
    @inline(__always)
    static func weightedSum<Element: StoredFloat>(_ weights: UnsafePointer<Float>, _ count: Int, rows base: UnsafePointer<Element>,
                                                  at offsets: UnsafePointer<Int>, width: Int, scale: Float, into out: UnsafeMutablePointer<Float>) {
        let rawOut = UnsafeMutableRawPointer(out)
        let s = SIMD8<Float>(repeating: scale)
        var d = 0
        while d + 64 <= width {
            var a = (SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>())
            for j in 0..<count {
                let p = SIMD8<Float>(repeating: weights[j])
                let row = base + offsets[j] + d
                a.0.addProduct(p, Element.widen8(row))
                a.1.addProduct(p, Element.widen8(row + 8))
                a.2.addProduct(p, Element.widen8(row + 16))
                a.3.addProduct(p, Element.widen8(row + 24))
                a.4.addProduct(p, Element.widen8(row + 32))
                a.5.addProduct(p, Element.widen8(row + 40))
                a.6.addProduct(p, Element.widen8(row + 48))
                a.7.addProduct(p, Element.widen8(row + 56))
            }
            let o = rawOut + d * 4
            o.storeBytes(of: a.0 * s, as: SIMD8<Float>.self)
            o.storeBytes(of: a.1 * s, toByteOffset: 32, as: SIMD8<Float>.self)
            o.storeBytes(of: a.2 * s, toByteOffset: 64, as: SIMD8<Float>.self)
            o.storeBytes(of: a.3 * s, toByteOffset: 96, as: SIMD8<Float>.self)
            o.storeBytes(of: a.4 * s, toByteOffset: 128, as: SIMD8<Float>.self)
            o.storeBytes(of: a.5 * s, toByteOffset: 160, as: SIMD8<Float>.self)
            o.storeBytes(of: a.6 * s, toByteOffset: 192, as: SIMD8<Float>.self)
            o.storeBytes(of: a.7 * s, toByteOffset: 224, as: SIMD8<Float>.self)
            d += 64
        }
        while d + 8 <= width {
            var a = SIMD8<Float>()
            for j in 0..<count {
                a.addProduct(SIMD8(repeating: weights[j]), Element.widen8(base + offsets[j] + d))
            }
            rawOut.storeBytes(of: a * s, toByteOffset: d * 4, as: SIMD8<Float>.self)
            d += 8
        }
        while d < width {
            var a: Float = 0
            for j in 0..<count { a += weights[j] * base[offsets[j] + d].widened }
            out[d] = a * scale
            d += 1
        }
    }

    /// Causal attention of a batch's queries over each sequence's cached keys and values
    /// (the batch's own K/V must already be written). Grouped-query: query head h reads kv
    /// head h / (heads / kvHeads). Returns [T, heads · headDim].
    ///
    /// Work items are (row, kv head, part of the positions): the query heads that share a kv
    /// head read each cached key once, and when the batch has few rows (decode) the positions
    /// are split into parts, each with its own softmax maximum and sum, merged afterwards
    /// (split-K attention), so that every compute thread has work.
    static func attention(queries q: Matrix, batch: Batch, cache: KVCache, layer: Int,
                          heads: Int, kvHeads: Int, headDim: Int, scale: Float) -> Matrix {
        switch cache.dtype {
        case .f32: attention(queries: q, batch: batch, cache: cache, layer: layer, heads: heads, kvHeads: kvHeads, headDim: headDim,
                             scale: scale, stored: Float.self)
        case .f16: attention(queries: q, batch: batch, cache: cache, layer: layer, heads: heads, kvHeads: kvHeads, headDim: headDim,
                             scale: scale, stored: Float16.self)
        }
    }

    private static func attention<Element: StoredFloat>(queries q: Matrix, batch: Batch, cache: KVCache, layer: Int, heads: Int, kvHeads: Int,
                                                        headDim: Int, scale: Float, stored: Element.Type) -> Matrix {
        precondition(cache.heads == kvHeads && cache.headWidth == headDim, "the cache is laid out for other heads")
        var out = Matrix(zeros: q.rows, heads * headDim)
        let group = heads / kvHeads
        let keys = cache.keyBytes(layer).assumingMemoryBound(to: Element.self)
        let values = cache.valueBytes(layer).assumingMemoryBound(to: Element.self)
        // Where each position of each sequence sits in the cache, worked out once per call.
        let offsets = batch.sequences.map { sequence in
            (0..<(sequence.startPosition + sequence.tokenCount)).map { cache.slot(sequence.blockTable, $0) }
        }
        var rows: [(sequence: Int, index: Int)] = []
        for (s, sequence) in batch.sequences.enumerated() { for i in 0..<sequence.tokenCount { rows.append((s, i)) } }
        let longest = offsets.map(\.count).max() ?? 0
        // Parts: none when the (row, kv head) items alone give every thread four; else enough for
        // that, a multiple of the thread count, none shorter than 32 positions.
        let threads = Parallel.threadCount, items = rows.count * kvHeads
        let wanted = items >= 4 * threads ? 1 : ((4 * threads + items - 1) / items + threads - 1) / threads * threads
        let parts = max(1, min(longest / 32, wanted))
        // Split parts leave, per (row, head, part): maximum, sum, then headDim unnormalised outputs.
        let partialWidth = headDim + 2
        var partials = [Float](repeating: 0, count: parts > 1 ? rows.count * heads * parts * partialWidth : 0)
        q.values.withUnsafeBufferPointer { qs in
            out.values.withUnsafeMutableBufferPointer { os in
                partials.withUnsafeMutableBufferPointer { ps in
                    let qBase = qs.baseAddress!, oBase = os.baseAddress!, pBase = ps.baseAddress
                    Parallel.forEachInterleaved(rows.count * kvHeads * parts) { work in
                        let part = work % parts, kvHead = (work / parts) % kvHeads, item = work / (parts * kvHeads)
                        let (s, i) = rows[item]
                        let sequence = batch.sequences[s]
                        let row = sequence.firstRow + i
                        let count = sequence.startPosition + i + 1
                        let lower = count * part / parts, length = count * (part + 1) / parts - lower
                        let firstHead = kvHead * group
                        let kvOffset = kvHead * cache.headStride
                        func partial(_ h: Int) -> UnsafeMutablePointer<Float> {
                            pBase! + ((item * heads + firstHead + h) * parts + part) * partialWidth
                        }
                        guard length > 0 else {
                            for h in 0..<group { partial(h)[0] = -.infinity }
                            return
                        }
                        offsets[s].withUnsafeBufferPointer { slots in
                            let slot = slots.baseAddress! + lower
                            withUnsafeTemporaryAllocation(of: Float.self, capacity: group * length) { scores in
                                let p = scores.baseAddress!
                                let query = qBase + row * q.columns + firstHead * headDim
                                for j in 0..<length {
                                    let key = keys + slot[j] + kvOffset
                                    for h in 0..<group { p[h * length + j] = dot(query + h * headDim, key, headDim) * scale }
                                }
                                for h in 0..<group {
                                    let weights = p + h * length
                                    let maximum = Kernels.maximum(weights, length)
                                    let total = exponentiate(weights, length, minus: maximum)
                                    if parts == 1 {
                                        weightedSum(weights, length, rows: values + kvOffset, at: slot, width: headDim, scale: 1 / total,
                                                    into: oBase + row * out.columns + (firstHead + h) * headDim)
                                    } else {
                                        let target = partial(h)
                                        target[0] = maximum
                                        target[1] = total
                                        weightedSum(weights, length, rows: values + kvOffset, at: slot, width: headDim, scale: 1, into: target + 2)
                                    }
                                }
                            }
                        }
                    }
                    guard parts > 1 else { return }
                    for item in 0..<rows.count {
                        let row = batch.sequences[rows[item].sequence].firstRow + rows[item].index
                        for head in 0..<heads {
                            let first = pBase! + (item * heads + head) * parts * partialWidth
                            var maximum = -Float.infinity
                            for part in 0..<parts { maximum = max(maximum, first[part * partialWidth]) }
                            let output = oBase + row * out.columns + head * headDim
                            var total: Float = 0
                            for part in 0..<parts {
                                let partial = first + part * partialWidth
                                guard partial[0] > -.infinity else { continue }
                                let weight = Foundation.exp(partial[0] - maximum)
                                total += weight * partial[1]
                                for d in 0..<headDim { output[d] += weight * partial[2 + d] }
                            }
                            for d in 0..<headDim { output[d] /= total }
                        }
                    }
                }
            }
        }
        return out
    }
}
