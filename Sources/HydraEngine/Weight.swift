import HydraFormat

/// A weight tensor resident in device memory, in its stored dtype (f32, f16 or bf16).
public struct Weight: @unchecked Sendable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    public let pointer: UnsafeRawPointer

    /// Rows of a matrix (the output features of a linear layer); 1 for a vector.
    public var rows: Int { shape.count >= 2 ? shape[0] : 1 }
    /// Elements per row.
    public var columns: Int { shape.last ?? 1 }
    public var elementCount: Int { shape.reduce(1, *) }

    /// Element `index` as f32.
    @inline(__always)
    public func value(_ index: Int) -> Float {
        switch dtype {
        case .f32: return pointer.load(fromByteOffset: index * 4, as: Float.self)
        case .bf16: return FloatBits.bf16ToFloat(pointer.load(fromByteOffset: index * 2, as: UInt16.self))
        case .f16: return FloatBits.f16ToFloat(pointer.load(fromByteOffset: index * 2, as: UInt16.self))
        default: preconditionFailure("weight \(name) has non-float dtype \(dtype)")
        }
    }

    /// Row `row` converted to f32 into `out` (at least `columns` long).
    @inline(__always)
    public func loadRow(_ row: Int, into out: UnsafeMutablePointer<Float>) {
        let n = columns
        switch dtype {
        case .f32:
            out.update(from: pointer.advanced(by: row * n * 4).assumingMemoryBound(to: Float.self), count: n)
        case .bf16:
            let source = pointer.advanced(by: row * n * 2).assumingMemoryBound(to: UInt16.self)
            for i in 0..<n { out[i] = Float(bitPattern: UInt32(source[i]) << 16) }
        case .f16:
            let source = pointer.advanced(by: row * n * 2).assumingMemoryBound(to: UInt16.self)
            for i in 0..<n { out[i] = FloatBits.f16ToFloat(source[i]) }
        default:
            preconditionFailure("weight \(name) has non-float dtype \(dtype)")
        }
    }
}
