import Glibc

/// Converts runs of elements between dtypes. Same type is a plain copy; floating-point types go
/// through f32 (f64 through Double to f32), rounding to nearest-even.
public enum ElementConversion {
    public static func convert(
        _ source: UnsafeRawBufferPointer, from sourceType: DType,
        into destination: UnsafeMutableRawBufferPointer, as destinationType: DType, count: Int
    ) {
        precondition(source.count >= count * sourceType.elementBytes, "conversion source too small")
        precondition(destination.count >= count * destinationType.elementBytes, "conversion destination too small")
        if sourceType == destinationType {
            memcpy(destination.baseAddress!, source.baseAddress!, count * sourceType.elementBytes)
            return
        }
        precondition(sourceType.isFloatingPoint && destinationType.isFloatingPoint,
                     "cannot convert \(sourceType) to \(destinationType)")
        switch sourceType {
        case .f32:
            let values = source.bindMemory(to: Float.self)
            store(count: count, into: destination, as: destinationType) { values[$0] }
        case .f16:
            let bits = source.bindMemory(to: UInt16.self)
            store(count: count, into: destination, as: destinationType) { FloatBits.f16ToFloat(bits[$0]) }
        case .bf16:
            let bits = source.bindMemory(to: UInt16.self)
            store(count: count, into: destination, as: destinationType) { FloatBits.bf16ToFloat(bits[$0]) }
        case .f64:
            let values = source.bindMemory(to: Double.self)
            store(count: count, into: destination, as: destinationType) { Float(values[$0]) }
        default:
            preconditionFailure("unreachable: \(sourceType) is not floating point")
        }
    }

    /// Writes `count` f32 values, produced by `value(i)`, as `type`.
    @inline(__always)
    public static func store(
        count: Int, into destination: UnsafeMutableRawBufferPointer, as type: DType, _ value: (Int) -> Float
    ) {
        switch type {
        case .f32:
            let out = destination.bindMemory(to: Float.self)
            for i in 0..<count { out[i] = value(i) }
        case .bf16:
            let out = destination.bindMemory(to: UInt16.self)
            for i in 0..<count { out[i] = FloatBits.floatToBF16(value(i)) }
        case .f16:
            let out = destination.bindMemory(to: UInt16.self)
            for i in 0..<count { out[i] = FloatBits.floatToF16(value(i)) }
        case .f64:
            let out = destination.bindMemory(to: Double.self)
            for i in 0..<count { out[i] = Double(value(i)) }
        default:
            preconditionFailure("cannot store floats as \(type)")
        }
    }
}
