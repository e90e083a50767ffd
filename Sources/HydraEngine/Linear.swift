/// y = x · Wᵀ (+ bias) with W in its stored dtype. Weight rows are split across the compute
/// threads; each thread converts a weight row to f32 once and reuses it for up to four
/// activation rows at a time, with fused multiply-adds on 8-wide vectors.
extension Kernels {
    /// A weight and its optional bias, as one projection of a linear layer.
    public typealias Projection = (weight: Weight, bias: Weight?)

    public static func linear(_ x: Matrix, _ weight: Weight, bias: Weight? = nil) -> Matrix {
        let y = written(x.rows * weight.rows) { y in project(x, [(weight, bias, y)]) }
        return Matrix(rows: x.rows, columns: weight.rows, values: y)
    }

    /// Two projections of the same input (gate and up) in one parallel pass.
    public static func linear(_ x: Matrix, _ a: Projection, _ b: Projection) -> (Matrix, Matrix) {
        var yb: [Float] = []
        let ya = written(x.rows * a.weight.rows) { pa in
            yb = written(x.rows * b.weight.rows) { pb in project(x, [(a.weight, a.bias, pa), (b.weight, b.bias, pb)]) }
        }
        return (Matrix(rows: x.rows, columns: a.weight.rows, values: ya), Matrix(rows: x.rows, columns: b.weight.rows, values: yb))
    }

    /// Three projections of the same input (q, k and v) in one parallel pass.
    public static func linear(_ x: Matrix, _ a: Projection, _ b: Projection, _ c: Projection) -> (Matrix, Matrix, Matrix) {
        var yb: [Float] = [], yc: [Float] = []
        let ya = written(x.rows * a.weight.rows) { pa in
            yb = written(x.rows * b.weight.rows) { pb in
                yc = written(x.rows * c.weight.rows) { pc in
                    project(x, [(a.weight, a.bias, pa), (b.weight, b.bias, pb), (c.weight, c.bias, pc)])
                }
            }
        }
        return (Matrix(rows: x.rows, columns: a.weight.rows, values: ya), Matrix(rows: x.rows, columns: b.weight.rows, values: yb),
                Matrix(rows: x.rows, columns: c.weight.rows, values: yc))
    }

    /// An array of `count` floats that `fill` writes in full (no zeroing first).
    @inline(__always)
    static func written(_ count: Int, _ fill: (UnsafeMutablePointer<Float>) -> Void) -> [Float] {
        [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            if count > 0 { fill(buffer.baseAddress!) }
            initialized = count
        }
    }

    /// Computes every projection of `x` into its output ([x.rows, weight.rows] each). The threads
    /// split the projections' rows taken together, so a decode step waits for its threads once
    /// per group of projections rather than once per weight.
    static func project(_ x: Matrix, _ projections: [(weight: Weight, bias: Weight?, out: UnsafeMutablePointer<Float>)]) {
        var starts: [Int] = []
        var total = 0
        for p in projections {
            precondition(p.weight.columns == x.columns, "\(p.weight.name): expects \(p.weight.columns) inputs, got \(x.columns)")
            starts.append(total)
            total += p.weight.rows
        }
        x.values.withUnsafeBufferPointer { xs in
            Parallel.forEach(total, minimumPerThread: 16) { rows in
                for (p, start) in zip(projections, starts) {
                    let lower = max(rows.lowerBound, start), upper = min(rows.upperBound, start + p.weight.rows)
                    if lower < upper {
                        projectRows((lower - start)..<(upper - start), of: p.weight, bias: p.bias, x: xs.baseAddress!, m: x.rows, into: p.out)
                    }
                }
            }
        }
    }

    /// Output columns `rows` (rows of the weight) for all `m` activation rows.
    static func projectRows(_ rows: Range<Int>, of weight: Weight, bias: Weight?, x xBase: UnsafePointer<Float>, m: Int,
                            into yBase: UnsafeMutablePointer<Float>) {
        let k = weight.columns, n = weight.rows
        if m == 1 && weight.dtype == .bf16 {
            // Decode: stream each bf16 row once, converting in registers (a register tile over
            // several activation rows spills here: converting rows once per call wins from m = 2).
            for j in rows {
                let w = weight.pointer.advanced(by: j * k * 2).assumingMemoryBound(to: UInt16.self)
                yBase[j] = dotBF16(w, xBase, k) + (bias?.value(j) ?? 0)
            }
            return
        }
        // Weight rows are taken in groups (about 1 MiB once converted to f32) and activation rows
        // in blocks of 64, so both stay in L2 while tiles of 3 weight rows × 4 activation rows run
        // over them.
        let groupRows = max(3, min(rows.count, (1 << 20) / (4 * k)) / 3 * 3)
        let converted = UnsafeMutablePointer<Float>.allocate(capacity: groupRows * k)
        defer { converted.deallocate() }
        var group = rows.lowerBound
        while group < rows.upperBound {
            let groupEnd = min(group + groupRows, rows.upperBound)
            func row(_ j: Int) -> UnsafePointer<Float> {
                weight.dtype == .f32 ? weight.pointer.advanced(by: j * k * 4).assumingMemoryBound(to: Float.self)
                    : UnsafePointer(converted + (j - group) * k)
            }
            if weight.dtype != .f32 {
                for j in group..<groupEnd { weight.loadRow(j, into: converted + (j - group) * k) }
            }
            var block = 0
            while block < m {
                let blockEnd = min(block + 64, m)
                var j = group
                while j < groupEnd {
                    let tile = min(3, groupEnd - j)
                    let b = (0..<tile).map { bias?.value(j + $0) ?? 0 }
                    var i = block
                    if tile == 3 {
                        while i + 4 <= blockEnd {
                            dot4x3(row(j), row(j + 1), row(j + 2), xBase + i * k, k, into: yBase + i * n + j, stride: n,
                                   bias: (b[0], b[1], b[2]))
                            i += 4
                        }
                    }
                    for t in 0..<tile {
                        for r in i..<blockEnd { yBase[r * n + j + t] = dot(xBase + r * k, row(j + t), k) + b[t] }
                    }
                    j += tile
                }
                block = blockEnd
            }
            group = groupEnd
        }
    }

    /// The 12 dot products of three f32 weight rows with four consecutive activation rows
    /// (stride k): seven loads feed twelve fused multiply-adds per 8 columns. Writes
    /// y[r·stride + t] = w_t·x_r + bias_t for r in 0..<4, t in 0..<3.
    @inline(__always)
    static func dot4x3(_ w0: UnsafePointer<Float>, _ w1: UnsafePointer<Float>, _ w2: UnsafePointer<Float>,
                       _ x: UnsafePointer<Float>, _ k: Int, into y: UnsafeMutablePointer<Float>, stride n: Int,
                       bias: (Float, Float, Float)) {
        var c00 = SIMD8<Float>(), c01 = SIMD8<Float>(), c02 = SIMD8<Float>(), c03 = SIMD8<Float>()
        var c10 = SIMD8<Float>(), c11 = SIMD8<Float>(), c12 = SIMD8<Float>(), c13 = SIMD8<Float>()
        var c20 = SIMD8<Float>(), c21 = SIMD8<Float>(), c22 = SIMD8<Float>(), c23 = SIMD8<Float>()
        // Walk raw pointers with wrapping arithmetic: no overflow checks in the hot loop.
        var p0 = UnsafeRawPointer(w0), p1 = UnsafeRawPointer(w1), p2 = UnsafeRawPointer(w2)
        var q0 = UnsafeRawPointer(x), q1 = q0 + k &* 4, q2 = q1 + k &* 4, q3 = q2 + k &* 4
        let vectorEnd = k & ~7
        for _ in 0..<(vectorEnd >> 3) {
            // Three weight vectors stay in registers; activation rows stream one at a time
            // (12 accumulators + 3 weights + 1 activation = the 16 vector registers).
            let a = p0.loadUnaligned(as: SIMD8<Float>.self)
            let b = p1.loadUnaligned(as: SIMD8<Float>.self)
            let c = p2.loadUnaligned(as: SIMD8<Float>.self)
            let x0 = q0.loadUnaligned(as: SIMD8<Float>.self)
            c00.addProduct(a, x0); c10.addProduct(b, x0); c20.addProduct(c, x0)
            let x1 = q1.loadUnaligned(as: SIMD8<Float>.self)
            c01.addProduct(a, x1); c11.addProduct(b, x1); c21.addProduct(c, x1)
            let x2 = q2.loadUnaligned(as: SIMD8<Float>.self)
            c02.addProduct(a, x2); c12.addProduct(b, x2); c22.addProduct(c, x2)
            let x3 = q3.loadUnaligned(as: SIMD8<Float>.self)
            c03.addProduct(a, x3); c13.addProduct(b, x3); c23.addProduct(c, x3)
            p0 += 32; p1 += 32; p2 += 32; q0 += 32; q1 += 32; q2 += 32; q3 += 32
        }
        var i = vectorEnd
        var s0 = SIMD4<Float>(c00.sum(), c01.sum(), c02.sum(), c03.sum())
        var s1 = SIMD4<Float>(c10.sum(), c11.sum(), c12.sum(), c13.sum())
        var s2 = SIMD4<Float>(c20.sum(), c21.sum(), c22.sum(), c23.sum())
        while i < k {
            let xv = SIMD4<Float>(x[i], x[k + i], x[2 * k + i], x[3 * k + i])
            s0 += w0[i] * xv
            s1 += w1[i] * xv
            s2 += w2[i] * xv
            i += 1
        }
        for r in 0..<4 {
            y[r * n] = s0[r] + bias.0
            y[r * n + 1] = s1[r] + bias.1
            y[r * n + 2] = s2[r] + bias.2
        }
    }

    /// Dot product of a bf16 row with an f32 vector: bf16 → f32 is a 16-bit shift.
    @inline(__always)
    static func dotBF16(_ w: UnsafePointer<UInt16>, _ x: UnsafePointer<Float>, _ k: Int) -> Float {
        var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
        let rw = UnsafeRawPointer(w), rx = UnsafeRawPointer(x)
        @inline(__always) func widen(_ offset: Int) -> SIMD8<Float> {
            unsafeBitCast(SIMD8<UInt32>(truncatingIfNeeded: rw.loadUnaligned(fromByteOffset: offset * 2, as: SIMD8<UInt16>.self)) &<< 16,
                          to: SIMD8<Float>.self)
        }
        var i = 0
        while i + 32 <= k {
            a0.addProduct(rx.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self), widen(i))
            a1.addProduct(rx.loadUnaligned(fromByteOffset: (i + 8) * 4, as: SIMD8<Float>.self), widen(i + 8))
            a2.addProduct(rx.loadUnaligned(fromByteOffset: (i + 16) * 4, as: SIMD8<Float>.self), widen(i + 16))
            a3.addProduct(rx.loadUnaligned(fromByteOffset: (i + 24) * 4, as: SIMD8<Float>.self), widen(i + 24))
            i += 32
        }
        while i + 8 <= k {
            a0.addProduct(rx.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self), widen(i))
            i += 8
        }
        var sum = ((a0 + a1) + (a2 + a3)).sum()
        while i < k {
            sum += x[i] * Float(bitPattern: UInt32(w[i]) << 16)
            i += 1
        }
        return sum
    }
}

