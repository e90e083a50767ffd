import CHydraShims

/// Eight-lane transcendental functions for the activation and softmax kernels, where calling the
/// scalar libm `exp` per element cost more than the arithmetic around it.
extension Kernels {
    /// eˣ in eight lanes, within 3e-7 (relative) of the exact value for x in [-87.3, 88.3] (where
    /// eˣ is a normal float); below that range the result is about 1e-38 rather than 0, above it
    /// about 2e38 rather than infinity. x = n·ln 2 + r with |r| ≤ ln 2 / 2, eʳ from its degree-6
    /// Taylor polynomial (error below 1.2e-7), 2ⁿ put straight into the exponent bits.
    @inline(__always)
    static func exp(_ x: SIMD8<Float>) -> SIMD8<Float> {
        let x = hydra_clamp8(x, -87.3, 88.3)
        // Adding 1.5·2²³ rounds x·log₂e to an integer held in the low mantissa bits.
        let magic = SIMD8<Float>(repeating: 12_582_912)
        let shifted = magic.addingProduct(x, SIMD8(repeating: 1.442_695_04))
        let n = shifted - magic
        // ln 2 split in two so that n·ln2High is exact.
        let r = x.addingProduct(n, SIMD8(repeating: -0.693_359_375)).addingProduct(n, SIMD8(repeating: 2.121_944_4e-4))
        var p = SIMD8<Float>(repeating: 1.0 / 720)
        p = SIMD8(repeating: 1.0 / 120).addingProduct(p, r)
        p = SIMD8(repeating: 1.0 / 24).addingProduct(p, r)
        p = SIMD8(repeating: 1.0 / 6).addingProduct(p, r)
        p = SIMD8(repeating: 0.5).addingProduct(p, r)
        p = SIMD8(repeating: 1).addingProduct(p, r)
        p = SIMD8(repeating: 1).addingProduct(p, r)
        let exponent = (unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- 0x4B40_0000 &+ 127) &<< 23
        return p * unsafeBitCast(exponent, to: SIMD8<Float>.self)
    }

    /// x · σ(x) in eight lanes.
    @inline(__always)
    static func silu(_ x: SIMD8<Float>) -> SIMD8<Float> {
        x / (1 + exp(-x))
    }

    /// The largest of v[0..<count] (−∞ when empty).
    static func maximum(_ v: UnsafePointer<Float>, _ count: Int) -> Float {
        let raw = UnsafeRawPointer(v)
        var best = SIMD8<Float>(repeating: -.infinity)
        var i = 0
        while i + 8 <= count {
            best = hydra_max8(best, raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self))
            i += 8
        }
        var result = best.max()
        while i < count { result = max(result, v[i]); i += 1 }
        return result
    }

    /// v[i] ← e^(v[i] − shift) for i in 0..<count; returns their sum.
    static func exponentiate(_ v: UnsafeMutablePointer<Float>, _ count: Int, minus shift: Float) -> Float {
        let raw = UnsafeMutableRawPointer(v)
        let s = SIMD8<Float>(repeating: shift)
        var total = SIMD8<Float>()
        var i = 0
        while i + 8 <= count {
            let e = exp(raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) - s)
            raw.storeBytes(of: e, toByteOffset: i * 4, as: SIMD8<Float>.self)
            total += e
            i += 8
        }
        if i < count {
            var tail = SIMD8<Float>(repeating: -.infinity)
            for t in i..<count { tail[t - i] = v[t] }
            let e = exp(tail - s)
            for t in i..<count { v[t] = e[t - i] }
            var sum = total.sum()
            for t in i..<count { sum += e[t - i] }
            return sum
        }
        return total.sum()
    }
}
