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
                    let scratch = UnsafeMutablePointer<Float>.allocate(capacity: k + 8)
                    defer { scratch.deallocate() }
                    for j in rows {
                        let b = bias?.value(j) ?? 0
                        if m == 1 && weight.dtype == .bf16 {
                            // Decode: stream the bf16 row once, converting in registers.
                            let w = weight.pointer.advanced(by: j * k * 2).assumingMemoryBound(to: UInt16.self)
                            yBase[j] = dotBF16(w, xBase, k) + b
                            continue
                        }
                        let w: UnsafePointer<Float>
                        if weight.dtype == .f32 {
                            w = weight.pointer.advanced(by: j * k * 4).assumingMemoryBound(to: Float.self)
                        } else {
                            weight.loadRow(j, into: scratch)
                            w = UnsafePointer(scratch)
                        }
                        var i = 0
                        while i + 4 <= m {
                            let d = dot4(w, xBase + i * k, k)
                            yBase[i * n + j] = d.0 + b
                            yBase[(i + 1) * n + j] = d.1 + b
                            yBase[(i + 2) * n + j] = d.2 + b
                            yBase[(i + 3) * n + j] = d.3 + b
                            i += 4
                        }
                        while i < m {
                            yBase[i * n + j] = dot(xBase + i * k, w, k) + b
                            i += 1
                        }
                    }
                }
            }
        }
        return Matrix(rows: m, columns: n, values: out)
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
        var a0 = SIMD8<Float>(), a1 = SIMD8<Float>()
        let rw = UnsafeRawPointer(w), rx = UnsafeRawPointer(x)
        var i = 0
        while i + 16 <= k {
            let w0 = SIMD8<UInt32>(truncatingIfNeeded: rw.loadUnaligned(fromByteOffset: i * 2, as: SIMD8<UInt16>.self)) &<< 16
            let w1 = SIMD8<UInt32>(truncatingIfNeeded: rw.loadUnaligned(fromByteOffset: (i + 8) * 2, as: SIMD8<UInt16>.self)) &<< 16
            a0.addProduct(rx.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self), unsafeBitCast(w0, to: SIMD8<Float>.self))
            a1.addProduct(rx.loadUnaligned(fromByteOffset: (i + 8) * 4, as: SIMD8<Float>.self), unsafeBitCast(w1, to: SIMD8<Float>.self))
            i += 16
        }
        var sum = (a0 + a1).sum()
        while i < k {
            sum += x[i] * Float(bitPattern: UInt32(w[i]) << 16)
            i += 1
        }
        return sum
    }
}
