/// Element types a store can hold. Spelled as safetensors spells them.
public enum DType: String, Codable, Sendable, CaseIterable {
    case f64 = "F64", f32 = "F32", f16 = "F16", bf16 = "BF16"
    case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8", u8 = "U8", bool = "BOOL"

    public var elementBytes: Int {
        switch self {
        case .f64, .i64: 8
        case .f32, .i32: 4
        case .f16, .bf16, .i16: 2
        case .i8, .u8, .bool: 1
        }
    }

    public var isFloatingPoint: Bool {
        switch self {
        case .f64, .f32, .f16, .bf16: true
        default: false
        }
    }
}

/// What `hydra convert --dtype` asks for: keep each tensor's type, or store every
/// floating-point tensor as one type (integer tensors are always kept).
public enum DTypePolicy: String, Sendable, CaseIterable, Codable {
    case keep, bf16, f16, f32

    public func outputType(for source: DType) -> DType {
        guard source.isFloatingPoint else { return source }
        switch self {
        case .keep: return source
        case .bf16: return .bf16
        case .f16: return .f16
        case .f32: return .f32
        }
    }
}
