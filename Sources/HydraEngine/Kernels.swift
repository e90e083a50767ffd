import Foundation

/// CPU kernels over f32 activations and f32/f16/bf16 weights.
public enum Kernels {
    /// Dot product of an f32 vector with f32 (or f16, widened in registers) elements: four SIMD8
    /// accumulators, fused multiply-adds.
    @inline(__always)
    static func dot<Element: StoredFloat>(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Element>, _ count: Int) -> Float {
        var s0 = SIMD8<Float>(), s1 = SIMD8<Float>(), s2 = SIMD8<Float>(), s3 = SIMD8<Float>()
        var i = 0
        let ra = UnsafeRawPointer(a)
        let rb = { (index: Int) in Element.widen8(UnsafeRawPointer(b + index)) }
        while i + 32 <= count {
            s0.addProduct(ra.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self), rb(i))
            s1.addProduct(ra.loadUnaligned(fromByteOffset: (i + 8) * 4, as: SIMD8<Float>.self), rb(i + 8))
            s2.addProduct(ra.loadUnaligned(fromByteOffset: (i + 16) * 4, as: SIMD8<Float>.self), rb(i + 16))
            s3.addProduct(ra.loadUnaligned(fromByteOffset: (i + 24) * 4, as: SIMD8<Float>.self), rb(i + 24))
            i += 32
        }
        while i + 8 <= count {
            s0.addProduct(ra.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self), rb(i))
            i += 8
        }
        var sum = ((s0 + s1) + (s2 + s3)).sum()
        while i < count { sum += a[i] * b[i].widened; i += 1 }
        return sum
    }

    public static func rmsNorm(_ x: Matrix, _ weight: Weight, eps: Float) -> Matrix {
        let n = x.columns
        let gain = weightAsFloats(weight)
        return mapRows(x) { row in
            var sum: Float = 0
            for i in 0..<n { sum += row[i] * row[i] }
            let scale = 1 / (sum / Float(n) + eps).squareRoot()
            for i in 0..<n { row[i] = row[i] * scale * gain[i] }
        }
    }

    public static func layerNorm(_ x: Matrix, _ weight: Weight, _ bias: Weight?, eps: Float) -> Matrix {
        let n = x.columns
        let gain = weightAsFloats(weight)
        let shift = bias.map(weightAsFloats) ?? [Float](repeating: 0, count: n)
        return mapRows(x) { row in
            var mean: Float = 0
            for i in 0..<n { mean += row[i] }
            mean /= Float(n)
            var variance: Float = 0
            for i in 0..<n { variance += (row[i] - mean) * (row[i] - mean) }
            variance /= Float(n)
            let scale = 1 / (variance + eps).squareRoot()
            for i in 0..<n { row[i] = (row[i] - mean) * scale * gain[i] + shift[i] }
        }
    }

    /// A copy of `x` with `transform` applied to each row in place, rows split across threads.
    static func mapRows(_ x: Matrix, _ transform: (UnsafeMutablePointer<Float>) -> Void) -> Matrix {
        var out = x
        let n = x.columns
        out.values.withUnsafeMutableBufferPointer { v in
            let base = v.baseAddress!
            Parallel.forEach(x.rows, minimumPerThread: 16) { rows in
                for r in rows { transform(base + r * n) }
            }
        }
        return out
    }

    /// A vector weight (norm gain or bias) as f32.
    static func weightAsFloats(_ weight: Weight) -> [Float] {
        [Float](unsafeUninitializedCapacity: weight.elementCount) { buffer, count in
            weight.loadRow(0, into: buffer.baseAddress!)
            count = weight.elementCount
        }
    }

    /// Applies `f` to every element, split across the compute threads.
    static func elementwise(_ x: inout Matrix, _ f: (Float) -> Float) {
        x.values.withUnsafeMutableBufferPointer { v in
            let base = v.baseAddress!
            Parallel.forEach(v.count, minimumPerThread: 4096) { range in
                for i in range { base[i] = f(base[i]) }
            }
        }
    }

    /// x ← f(x, y) eight lanes at a time (a partial last vector padded with zeros), split across
    /// the compute threads.
    @inline(__always)
    static func lanewise(_ x: inout Matrix, _ y: Matrix, _ f: (SIMD8<Float>, SIMD8<Float>) -> SIMD8<Float>) {
        precondition(y.values.count == x.values.count)
        x.values.withUnsafeMutableBufferPointer { v in
            y.values.withUnsafeBufferPointer { w in
                let first = UnsafeMutableRawPointer(v.baseAddress!), second = UnsafeRawPointer(w.baseAddress!)
                Parallel.forEach(v.count / 8, minimumPerThread: 512) { vectors in
                    for i in vectors {
                        let a = first.loadUnaligned(fromByteOffset: i * 32, as: SIMD8<Float>.self)
                        let b = second.loadUnaligned(fromByteOffset: i * 32, as: SIMD8<Float>.self)
                        first.storeBytes(of: f(a, b), toByteOffset: i * 32, as: SIMD8<Float>.self)
                    }
                }
                let tail = v.count / 8 * 8
                guard tail < v.count else { return }
                var a = SIMD8<Float>(), b = SIMD8<Float>()
                for i in tail..<v.count { a[i - tail] = v[i]; b[i - tail] = w[i] }
                let result = f(a, b)
                for i in tail..<v.count { v[i] = result[i - tail] }
            }
        }
    }

    /// gate ← silu(gate) ⊙ up: SwiGLU's activation in one pass.
    public static func siluMultiply(_ gate: inout Matrix, by up: Matrix) {
        lanewise(&gate, up) { a, b in silu(a) * b }
    }

    /// The exact (erf) GELU.
    public static func gelu(_ x: inout Matrix) {
        elementwise(&x) { 0.5 * $0 * (1 + erf($0 / Float(2).squareRoot())) }
    }

    public static func relu(_ x: inout Matrix) {
        x.values.withUnsafeMutableBufferPointer { v in for i in 0..<v.count { v[i] = max(v[i], 0) } }
    }

    /// Rows of `table` (a [V, C] weight) for `ids`, as f32.
    public static func gather(_ table: Weight, ids: [Int]) -> Matrix {
        let c = table.columns
        var out = [Float](repeating: 0, count: ids.count * c)
        out.withUnsafeMutableBufferPointer { v in
            for (r, id) in ids.enumerated() {
                precondition(id >= 0 && id < table.rows, "token id \(id) outside the vocabulary of \(table.rows)")
                table.loadRow(id, into: v.baseAddress! + r * c)
            }
        }
        return Matrix(rows: ids.count, columns: c, values: out)
    }
}

/// Elements the kernels read as f32, eight at a time (f32 itself; f16 KV caches).
protocol StoredFloat {
    static func widen8(_ pointer: UnsafeRawPointer) -> SIMD8<Float>
    var widened: Float { get }
}

extension Float: StoredFloat {
    @inline(__always)
    static func widen8(_ pointer: UnsafeRawPointer) -> SIMD8<Float> { pointer.loadUnaligned(as: SIMD8<Float>.self) }
    var widened: Float { self }
}

extension Float16: StoredFloat {
    /// One `vcvtph2ps` on x86 with F16C (the engine's haswell target has it).
    @inline(__always)
    static func widen8(_ pointer: UnsafeRawPointer) -> SIMD8<Float> { SIMD8<Float>(pointer.loadUnaligned(as: SIMD8<Float16>.self)) }
    var widened: Float { Float(self) }
}
