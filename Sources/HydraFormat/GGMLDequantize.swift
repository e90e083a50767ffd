/// Block dequantisation, matching the reference (gguf-py) arithmetic in f32 exactly.
public enum GGMLDequantize {
    /// Dequantises `blockCount` blocks of `type` from `source` into `destination` (f32 values).
    public static func dequantize(
        _ type: GGMLType, blocks source: UnsafeRawBufferPointer, blockCount: Int,
        into destination: UnsafeMutableBufferPointer<Float>
    ) {
        precondition(source.count >= blockCount * type.blockBytes)
        precondition(destination.count >= blockCount * type.blockElements)
        let out = destination.baseAddress!
        switch type {
        case .f32:
            for i in 0..<blockCount { out[i] = Float(bitPattern: source.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self)) }
        case .f16:
            for i in 0..<blockCount { out[i] = FloatBits.f16ToFloat(source.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)) }
        case .bf16:
            for i in 0..<blockCount { out[i] = FloatBits.bf16ToFloat(source.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)) }
        case .q8_0:
            for block in 0..<blockCount {
                let base = block * 34
                let d = FloatBits.f16ToFloat(source.loadUnaligned(fromByteOffset: base, as: UInt16.self))
                for j in 0..<32 {
                    out[block * 32 + j] = d * Float(Int8(bitPattern: source[base + 2 + j]))
                }
            }
        case .q4_0:
            for block in 0..<blockCount {
                let base = block * 18
                let d = FloatBits.f16ToFloat(source.loadUnaligned(fromByteOffset: base, as: UInt16.self))
                for j in 0..<16 {
                    let byte = source[base + 2 + j]
                    out[block * 32 + j] = d * Float(Int(byte & 0x0F) - 8)
                    out[block * 32 + 16 + j] = d * Float(Int(byte >> 4) - 8)
                }
            }
        case .q4_1:
            for block in 0..<blockCount {
                let base = block * 20
                let d = FloatBits.f16ToFloat(source.loadUnaligned(fromByteOffset: base, as: UInt16.self))
                let m = FloatBits.f16ToFloat(source.loadUnaligned(fromByteOffset: base + 2, as: UInt16.self))
                for j in 0..<16 {
                    let byte = source[base + 4 + j]
                    // Two roundings, (d·q) then (+m), as numpy does: no fused multiply-add.
                    let low = d * Float(byte & 0x0F)
                    let high = d * Float(byte >> 4)
                    out[block * 32 + j] = low + m
                    out[block * 32 + 16 + j] = high + m
                }
            }
        }
    }
}
