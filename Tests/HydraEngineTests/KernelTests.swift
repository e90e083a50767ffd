import Foundation
import Testing
import HydraFormat
@testable import HydraEngine

/// The vector kernels against plain double-precision references, on inputs shaped to reach every
/// path: partial vectors, split-K attention, projections fused into one pass.
@Suite struct KernelTests {
    /// Deterministic values in [-1, 1).
    struct Numbers {
        var state: UInt64
        mutating func next() -> Float {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Float(Int64(bitPattern: state >> 11) % (1 << 20)) / Float(1 << 20)
        }
        mutating func array(_ count: Int) -> [Float] { (0..<count).map { _ in next() } }
    }

    @Test func vectorExpMatchesLibm() {
        var worst: Double = 0
        var x: Float = -87
        while x < 88 {
            let lanes = SIMD8<Float>((0..<8).map { x + Float($0) * 0.0137 })
            let result = Kernels.exp(lanes)
            for lane in 0..<8 {
                let exact = Foundation.exp(Double(lanes[lane]))
                worst = max(worst, abs(Double(result[lane]) - exact) / exact)
            }
            x += 0.173
        }
        #expect(worst < 3e-7, "largest relative error \(worst)")
        let extremes = Kernels.exp(SIMD8<Float>(-1000, -200, -87.3, 0, 1, 88.3, 200, 1000))
        #expect(extremes[0] < 1e-37 && extremes[1] < 1e-37 && extremes[0] >= 0, "far below the range: about 0")
        #expect(extremes[3] == 1 && abs(extremes[4] - Float(M_E)) < 1e-6)
        #expect(extremes[6].isFinite && extremes[6] > 1e38 && extremes[7] == extremes[6], "far above the range: large, not infinite")
    }

    @Test func siluMultiplyCoversThePartialLastVector() {
        var numbers = Numbers(state: 1)
        for count in [1, 7, 8, 13, 1536 * 3 + 5] {
            let gate = numbers.array(count).map { $0 * 12 }, up = numbers.array(count)
            var out = Matrix(rows: 1, columns: count, values: gate)
            Kernels.siluMultiply(&out, by: Matrix(rows: 1, columns: count, values: up))
            for i in 0..<count {
                let g = Double(gate[i]), expected = g / (1 + Foundation.exp(-g)) * Double(up[i])
                #expect(abs(Double(out.values[i]) - expected) < 1e-5 * max(1, abs(expected)), "element \(i) of \(count)")
            }
        }
    }

    /// Attention computed naively in Double from the same cache contents.
    static func reference(q: Matrix, batch: Batch, keys: [[[Float]]], values: [[[Float]]], heads: Int, kvHeads: Int,
                          headDim: Int, scale: Float) -> [Double] {
        var out = [Double](repeating: 0, count: q.rows * heads * headDim)
        for (s, sequence) in batch.sequences.enumerated() {
            for i in 0..<sequence.tokenCount {
                let row = sequence.firstRow + i, count = sequence.startPosition + i + 1
                for h in 0..<heads {
                    let g = h / (heads / kvHeads)
                    let scores = (0..<count).map { j in
                        (0..<headDim).reduce(0.0) { $0 + Double(q.values[row * q.columns + h * headDim + $1]) * Double(keys[s][j][g * headDim + $1]) }
                            * Double(scale)
                    }
                    let top = scores.max()!
                    let weights = scores.map { Foundation.exp($0 - top) }
                    let total = weights.reduce(0, +)
                    for d in 0..<headDim {
                        out[row * heads * headDim + h * headDim + d] = (0..<count).reduce(0.0) { $0 + weights[$1] * Double(values[s][$1][g * headDim + d]) } / total
                    }
                }
            }
        }
        return out
    }

    /// One decode row over a long context (split into parts and merged), a batch of decodes, and
    /// a prefill of many rows, with grouped-query heads and a head size that is not a multiple of 64;
    /// from an f32 cache and from an f16 one (against the definition over the f16-rounded K and V).
    @Test(arguments: [(heads: 9, kvHeads: 3, headDim: 64), (heads: 4, kvHeads: 1, headDim: 40), (heads: 2, kvHeads: 2, headDim: 130)],
          KVDType.allCases)
    func attentionMatchesTheDefinition(shape: (heads: Int, kvHeads: Int, headDim: Int), dtype: KVDType) {
        let (heads, kvHeads, headDim) = shape
        var numbers = Numbers(state: UInt64(heads * 1000 + headDim))
        let width = kvHeads * headDim, blockSize = 16
        let cases: [[(cached: Int, new: Int)]] = [[(300, 1)], [(5, 1), (70, 1), (129, 1)], [(0, 40), (20, 9)]]
        for shape in cases {
            let cache = KVCache(device: CPUDevice(), layerCount: 1, width: width, heads: kvHeads, blockSize: blockSize, blockCount: 32, dtype: dtype)
            var sequences: [Batch.Sequence] = []
            var keys: [[[Float]]] = [], values: [[[Float]]] = []
            var row = 0
            for (cached, new) in shape {
                let total = cached + new
                let table = cache.blocks.allocate((total + blockSize - 1) / blockSize)!
                let k = (0..<total).map { _ in numbers.array(width) }, v = (0..<total).map { _ in numbers.array(width) }
                keys.append(k)
                values.append(v)
                // Earlier positions go in as their own prefill; the new ones with the queries.
                if cached > 0 {
                    let earlier = Batch(sequences: [.init(firstRow: 0, tokenCount: cached, startPosition: 0, blockTable: table)])
                    cache.write(layer: 0, keys: Matrix(rows: cached, columns: width, values: Array(k[..<cached].joined())),
                                values: Matrix(rows: cached, columns: width, values: Array(v[..<cached].joined())), batch: earlier)
                }
                sequences.append(.init(firstRow: row, tokenCount: new, startPosition: cached, blockTable: table))
                row += new
            }
            let batch = Batch(sequences: sequences)
            let newK = zip(shape, keys).flatMap { s, k in k[s.cached...].joined() }
            let newV = zip(shape, values).flatMap { s, v in v[s.cached...].joined() }
            cache.write(layer: 0, keys: Matrix(rows: row, columns: width, values: newK),
                        values: Matrix(rows: row, columns: width, values: newV), batch: batch)
            let q = Matrix(rows: row, columns: heads * headDim, values: numbers.array(row * heads * headDim).map { $0 * 4 })
            let scale = 1 / Float(headDim).squareRoot()
            let out = Kernels.attention(queries: q, batch: batch, cache: cache, layer: 0, heads: heads, kvHeads: kvHeads,
                                        headDim: headDim, scale: scale)
            let stored = { (rows: [[[Float]]]) in dtype == .f16 ? rows.map { $0.map { $0.map { Float(Float16($0)) } } } : rows }
            let expected = Self.reference(q: q, batch: batch, keys: stored(keys), values: stored(values), heads: heads, kvHeads: kvHeads,
                                          headDim: headDim, scale: scale)
            let error = zip(out.values, expected).map { abs(Double($0) - $1) }.max()!
            #expect(error < 2e-6, "shape \(shape): largest error \(error)")
        }
    }

    /// An f16 cache holds half the bytes and exchanges blocks with an f32 one in f32 (what
    /// migration and consolidation send): its values come back rounded to f16, no further.
    @Test func f16CachesExchangeBlocksWithF32Caches() {
        var numbers = Numbers(state: 7)
        let make = { (dtype: KVDType) in KVCache(device: CPUDevice(), layerCount: 2, width: 24, heads: 2, blockSize: 4, blockCount: 8, dtype: dtype) }
        let exact = make(.f32), half = make(.f16)
        #expect(half.byteCount * 2 == exact.byteCount)
        let blocks = [5, 2, 7]
        let data = numbers.array(2 * blocks.count * exact.floatsPerBlock).map { $0 * 300 }
        exact.writeBlocks(layer: 1, blocks: blocks, data[...])
        #expect(exact.readBlocks(layer: 1, blocks: blocks) == data)
        half.writeBlocks(layer: 1, blocks: blocks, exact.readBlocks(layer: 1, blocks: blocks)[...])
        let rounded = data.map { Float(Float16($0)) }
        #expect(half.readBlocks(layer: 1, blocks: blocks) == rounded)
        #expect(zip(rounded, data).allSatisfy { abs($0 - $1) <= abs($1) / 1024 })
        exact.writeBlocks(layer: 0, blocks: blocks, half.readBlocks(layer: 1, blocks: blocks)[...])
        #expect(exact.readBlocks(layer: 0, blocks: blocks) == rounded)
    }

    /// q, k and v (or gate and up) in one pass give what three separate projections give, for
    /// decode (one row, bf16 streamed) and prefill (tiles over many rows), with and without bias.
    @Test(arguments: [1, 2, 11, 70])
    func fusedProjectionsMatchTheDefinition(rows m: Int) {
        var numbers = Numbers(state: UInt64(m))
        let k = 45
        func weight(_ name: String, rows: Int, dtype: DType) -> (Weight, [Float], UnsafeMutableRawPointer) {
            let values = numbers.array(rows * k)
            let stored = UnsafeMutableRawPointer.allocate(byteCount: values.count * 4, alignment: 64)
            var exact = values
            for (i, value) in values.enumerated() {
                if dtype == .bf16 {
                    let bits = UInt16(value.bitPattern >> 16)  // truncated: exactly representable
                    stored.storeBytes(of: bits, toByteOffset: i * 2, as: UInt16.self)
                    exact[i] = Float(bitPattern: UInt32(bits) << 16)
                } else {
                    stored.storeBytes(of: value, toByteOffset: i * 4, as: Float.self)
                }
            }
            return (Weight(name: name, dtype: dtype, shape: rows == 1 ? [k] : [rows, k], pointer: UnsafeRawPointer(stored)), exact, stored)
        }
        for dtype in [DType.bf16, .f32] {
            let (a, av, ap) = weight("a", rows: 31, dtype: dtype), (b, bv, bp) = weight("b", rows: 8, dtype: dtype)
            let (c, cv, cp) = weight("c", rows: 17, dtype: dtype), (bias, biasv, biasp) = weight("bias", rows: 1, dtype: .f32)
            defer { [ap, bp, cp, biasp].forEach { $0.deallocate() } }
            let x = Matrix(rows: m, columns: k, values: numbers.array(m * k))
            let (ya, yb, yc) = Kernels.linear(x, (a, nil), (b, nil), (c, nil))
            let (yb2, ya2) = Kernels.linear(x, (b, nil), (a, nil))
            for (y, w, n) in [(ya, av, 31), (yb, bv, 8), (yc, cv, 17), (ya2, av, 31), (yb2, bv, 8)] {
                #expect(y.rows == m && y.columns == n)
                for r in 0..<m {
                    for j in 0..<n {
                        let exact = (0..<k).reduce(0.0) { $0 + Double(x.values[r * k + $1]) * Double(w[j * k + $1]) }
                        #expect(abs(Double(y.values[r * n + j]) - exact) < 1e-5, "\(dtype) row \(r) column \(j)")
                    }
                }
            }
            // A bias of k values on a projection of k rows.
            let (square, squarev, squarep) = weight("square", rows: k, dtype: dtype)
            defer { squarep.deallocate() }
            let biased = Kernels.linear(x, square, bias: bias)
            for r in 0..<m {
                for j in 0..<k {
                    let exact = (0..<k).reduce(Double(biasv[j])) { $0 + Double(x.values[r * k + $1]) * Double(squarev[j * k + $1]) }
                    #expect(abs(Double(biased.values[r * k + j]) - exact) < 1e-5, "\(dtype) biased row \(r) column \(j)")
                }
            }
        }
    }
}
