/// y = x · Wᵀ (+ bias) with W in its stored dtype. Weight rows are split across the compute
/// threads; each thread converts a weight row to f32 once and reuses it for up to four
/// activation rows at a time, with fused multiply-adds on 8-wide vectors.
extension Kernels {
    public static func linear(_ x: Matrix, _ weight: Weight, bias: Weight? = nil) -> Matrix {
        let m = x.rows, k = x.columns, n = weight.rows
        precondition(weight.columns == k, "\(weight.name): expects \(weight.columns) inputs, got \(k)")
        var out = [Float](repeating: 0, count: m * n)
        x.values.withUnsafeBufferPointer { xs in
            out.withUnsafeMutableBufferPointer { ys in
                let xBase = xs.baseAddress!, yBase = ys.baseAddress!
                Parallel.forEach(n, minimumPerThread: 16) { rows in
                    if m == 1 && weight.dtype == .bf16 {
                        // Decode: stream each bf16 row once, converting in registers.
                        for j in rows {
                            let w = weight.pointer.advanced(by: j * k * 2).assumingMemoryBound(to: UInt16.self)
                            yBase[j] = dotBF16(w, xBase, k) + (bias?.value(j) ?? 0)
                        }
                        return
                    }
                    // Tiles of 3 weight rows (converted to f32 once) × 4 activation rows.
                    let scratch = UnsafeMutablePointer<Float>.allocate(capacity: 3 * k)
                    defer { scratch.deallocate() }
                    var j = rows.lowerBound
                    while j < rows.upperBound {
                        let tile = min(3, rows.upperBound - j)
                        var w = [UnsafePointer<Float>]()
                        for t in 0..<tile {
                            if weight.dtype == .f32 {
                                w.append(weight.pointer.advanced(by: (j + t) * k * 4).assumingMemoryBound(to: Float.self))
                            } else {
                                weight.loadRow(j + t, into: scratch + t * k)
                                w.append(UnsafePointer(scratch + t * k))
                            }
                        }
                        let b = (0..<tile).map { bias?.value(j + $0) ?? 0 }
                        var i = 0
                        if tile == 3 {
                            while i + 4 <= m {
                                let d = dot4x3(w[0], w[1], w[2], xBase + i * k, k)
                                for r in 0..<4 {
                                    yBase[(i + r) * n + j] = d[r] + b[0]
                                    yBase[(i + r) * n + j + 1] = d[4 + r] + b[1]
                                    yBase[(i + r) * n + j + 2] = d[8 + r] + b[2]
                                }
                                i += 4
                            }
                        }
                        for t in 0..<tile {
                            var r = i
                            while r + 4 <= m {
                                let d = dot4(w[t], xBase + r * k, k)
                                yBase[r * n + j + t] = d.0 + b[t]
                                yBase[(r + 1) * n + j + t] = d.1 + b[t]
                                yBase[(r + 2) * n + j + t] = d.2 + b[t]
                                yBase[(r + 3) * n + j + t] = d.3 + b[t]
                                r += 4
                            }
                            while r < m {
                                yBase[r * n + j + t] = dot(xBase + r * k, w[t], k) + b[t]
                                r += 1
                            }
                        }
                        j += tile
                    }
                }
            }
        }
        return Matrix(rows: m, columns: n, values: out)
    }

    /// The 12 dot products of three f32 weight rows with four consecutive activation rows
    /// (stride k): seven loads feed twelve fused multiply-adds per 8 columns. Returns
    /// [w0·x0…x3, w1·x0…x3, w2·x0…x3].
    @inline(__always)
    static func dot4x3(_ w0: UnsafePointer<Float>, _ w1: UnsafePointer<Float>, _ w2: UnsafePointer<Float>,
                       _ x: UnsafePointer<Float>, _ k: Int) -> [Float] {
        var c00 = SIMD8<Float>(), c01 = SIMD8<Float>(), c02 = SIMD8<Float>(), c03 = SIMD8<Float>()
        var c10 = SIMD8<Float>(), c11 = SIMD8<Float>(), c12 = SIMD8<Float>(), c13 = SIMD8<Float>()
        var c20 = SIMD8<Float>(), c21 = SIMD8<Float>(), c22 = SIMD8<Float>(), c23 = SIMD8<Float>()
        let r0 = UnsafeRawPointer(w0), r1 = UnsafeRawPointer(w1), r2 = UnsafeRawPointer(w2), rx = UnsafeRawPointer(x)
        let stride = k * 4
        var i = 0
        while i + 8 <= k {
            let o = i * 4
            let x0 = rx.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
            let x1 = rx.loadUnaligned(fromByteOffset: stride + o, as: SIMD8<Float>.self)
            let x2 = rx.loadUnaligned(fromByteOffset: 2 * stride + o, as: SIMD8<Float>.self)
            let x3 = rx.loadUnaligned(fromByteOffset: 3 * stride + o, as: SIMD8<Float>.self)
            let a = r0.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
            c00.addProduct(a, x0); c01.addProduct(a, x1); c02.addProduct(a, x2); c03.addProduct(a, x3)
            let b = r1.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
            c10.addProduct(b, x0); c11.addProduct(b, x1); c12.addProduct(b, x2); c13.addProduct(b, x3)
            let c = r2.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
            c20.addProduct(c, x0); c21.addProduct(c, x1); c22.addProduct(c, x2); c23.addProduct(c, x3)
            i += 8
        }
        var out = [c00.sum(), c01.sum(), c02.sum(), c03.sum(), c10.sum(), c11.sum(), c12.sum(), c13.sum(),
                   c20.sum(), c21.sum(), c22.sum(), c23.sum()]
        while i < k {
            for r in 0..<4 {
                let xv = x[r * k + i]
                out[r] += w0[i] * xv
                out[4 + r] += w1[i] * xv
                out[8 + r] += w2[i] * xv
            }
            i += 1
        }
        return out
    }

    /// Dot products of one f32 weight row with four consecutive activation rows (stride k).
    @inline(__always)
    static func dot4(_ w: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ k: Int) -> (Float, Float, Float, Float) {
        var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
        let rw = UnsafeRawPointer(w), rx = UnsafeRawPointer(x)
        let stride = k * 4
        var i = 0
        while i + 8 <= k {
            let wv = rw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            a0.addProduct(rx.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self), wv)
            a1.addProduct(rx.loadUnaligned(fromByteOffset: stride + i * 4, as: SIMD8<Float>.self), wv)
            a2.addProduct(rx.loadUnaligned(fromByteOffset: 2 * stride + i * 4, as: SIMD8<Float>.self), wv)
            a3.addProduct(rx.loadUnaligned(fromByteOffset: 3 * stride + i * 4, as: SIMD8<Float>.self), wv)
            i += 8
        }
        var s0 = a0.sum(), s1 = a1.sum(), s2 = a2.sum(), s3 = a3.sum()
        while i < k {
            s0 += x[i] * w[i]; s1 += x[k + i] * w[i]; s2 += x[2 * k + i] * w[i]; s3 += x[3 * k + i] * w[i]
            i += 1
        }
        return (s0, s1, s2, s3)
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
