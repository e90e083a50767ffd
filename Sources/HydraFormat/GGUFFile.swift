/// A parsed GGUF file (versions 2 and 3): metadata and tensor infos. Tensor data is read lazily.
/// Spec: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md
public struct GGUFFile: Sendable {
    public struct TensorInfo: Sendable {
        public let name: String
        /// Dimensions as GGUF lists them: fastest-varying first.
        public let dimensions: [Int]
        public let type: GGMLType
        /// Absolute file offset of the tensor's data.
        public let offset: Int
        public var elementCount: Int { dimensions.reduce(1, *) }
        public var byteCount: Int { elementCount / type.blockElements * type.blockBytes }
    }

    public let file: SourceFile
    public let version: UInt32
    public let metadata: [String: GGUFValue]
    public let tensors: [TensorInfo]

    public init(path: String) throws {
        let file = try SourceFile(path: path)
        self.file = file
        var cursor = GGUFCursor(file: file)
        guard try cursor.u32() == 0x4655_4747 else { throw FormatError(path, "not a GGUF file (bad magic)") }
        version = try cursor.u32()
        guard version == 2 || version == 3 else {
            throw FormatError(path, "unsupported GGUF version \(version) (supported: 2, 3)")
        }
        let tensorCount = try cursor.count("tensor count")
        let metadataCount = try cursor.count("metadata count")
        var metadata: [String: GGUFValue] = [:]
        for _ in 0..<metadataCount {
            let key = try cursor.string()
            metadata[key] = try cursor.value(typeCode: try cursor.u32(), depth: 0)
        }
        self.metadata = metadata

        var infos: [(name: String, dims: [Int], type: GGMLType, relative: Int)] = []
        for _ in 0..<tensorCount {
            let name = try cursor.string()
            let dimensionCount = Int(try cursor.u32())
            guard dimensionCount >= 1 && dimensionCount <= 4 else {
                throw FormatError(path, "tensor '\(name)': \(dimensionCount) dimensions (GGUF allows 1 to 4)")
            }
            var dims: [Int] = []
            for _ in 0..<dimensionCount { dims.append(try cursor.count("dimension of \(name)")) }
            let typeCode = try cursor.u32()
            guard let type = GGMLType(rawValue: typeCode) else {
                throw FormatError(path, "tensor '\(name)': unsupported GGML type \(typeCode) (\(GGMLType.describe(typeCode))); supported: \(GGMLType.supportedList)")
            }
            guard dims[0] % type.blockElements == 0 else {
                throw FormatError(path, "tensor '\(name)': row of \(dims[0]) elements is not a whole number of \(type) blocks")
            }
            infos.append((name, dims, type, try cursor.count("offset of \(name)")))
        }
        let alignment = metadata["general.alignment"]?.intValue ?? 32
        guard alignment > 0 && alignment & (alignment - 1) == 0 else {
            throw FormatError(path, "general.alignment \(alignment) is not a power of two")
        }
        let dataStart = (cursor.position + alignment - 1) / alignment * alignment
        tensors = try infos.map { info in
            let tensor = TensorInfo(name: info.name, dimensions: info.dims, type: info.type, offset: dataStart + info.relative)
            guard tensor.offset + tensor.byteCount <= file.size else {
                throw FormatError(path, "tensor '\(info.name)' data ends at byte \(tensor.offset + tensor.byteCount), past the end of the file (\(file.size) bytes): truncated")
            }
            return tensor
        }
    }
}

/// A GGUF metadata value.
public indirect enum GGUFValue: Sendable {
    case int(Int64), uint(UInt64), float(Double), bool(Bool), string(String), array([GGUFValue])

    public var intValue: Int? {
        switch self {
        case .int(let v): Int(v)
        case .uint(let v): v <= UInt64(Int.max) ? Int(v) : nil
        default: nil
        }
    }
    public var doubleValue: Double? {
        switch self {
        case .float(let v): v
        case .int(let v): Double(v)
        case .uint(let v): Double(v)
        default: nil
        }
    }
    public var stringValue: String? { if case .string(let v) = self { v } else { nil } }
    public var boolValue: Bool? { if case .bool(let v) = self { v } else { nil } }
    public var arrayValue: [GGUFValue]? { if case .array(let v) = self { v } else { nil } }
}

/// Sequential reads over the GGUF header through a window, with bounds checks that turn
/// garbage lengths into clear errors instead of huge allocations.
struct GGUFCursor {
    let file: SourceFile
    private(set) var position = 0
    private var window: [UInt8] = []
    private var windowStart = 0
    static let windowBytes = 1 << 20

    init(file: SourceFile) { self.file = file }

    mutating func bytes(_ count: Int) throws -> ArraySlice<UInt8> {
        guard count >= 0, position + count <= file.size else {
            throw FormatError(file.path, "GGUF header truncated at byte \(position) (needs \(count) more, file has \(file.size))")
        }
        if position < windowStart || position + count > windowStart + window.count {
            windowStart = position
            window = try file.read(count: min(max(count, Self.windowBytes), file.size - position), at: position)
        }
        let start = position - windowStart
        position += count
        return window[start..<start + count]
    }

    mutating func load<T: FixedWidthInteger>(_: T.Type) throws -> T {
        let raw = try bytes(MemoryLayout<T>.size)
        return raw.withUnsafeBytes { T(littleEndian: $0.loadUnaligned(as: T.self)) }
    }

    mutating func u32() throws -> UInt32 { try load(UInt32.self) }

    /// A u64 count or size that must fit in the file.
    mutating func count(_ what: String) throws -> Int {
        let value = try load(UInt64.self)
        guard value <= UInt64(Int32.max) * 64 else {
            throw FormatError(file.path, "GGUF \(what) \(value) is implausible: corrupt header")
        }
        return Int(value)
    }

    mutating func string() throws -> String {
        let length = try count("string length")
        return String(decoding: try bytes(length), as: UTF8.self)
    }

    mutating func value(typeCode: UInt32, depth: Int) throws -> GGUFValue {
        switch typeCode {
        case 0: return .uint(UInt64(try load(UInt8.self)))
        case 1: return .int(Int64(try load(Int8.self)))
        case 2: return .uint(UInt64(try load(UInt16.self)))
        case 3: return .int(Int64(try load(Int16.self)))
        case 4: return .uint(UInt64(try load(UInt32.self)))
        case 5: return .int(Int64(try load(Int32.self)))
        case 6: return .float(Double(Float(bitPattern: try load(UInt32.self))))
        case 7: return .bool(try load(UInt8.self) != 0)
        case 8: return .string(try string())
        case 9:
            guard depth < 4 else { throw FormatError(file.path, "GGUF arrays nested too deeply") }
            let elementType = try u32()
            let count = try count("array length")
            guard count <= file.size - position else {
                throw FormatError(file.path, "GGUF array of \(count) elements cannot fit in the file: corrupt header")
            }
            var values: [GGUFValue] = []
            values.reserveCapacity(count)
            for _ in 0..<count { values.append(try value(typeCode: elementType, depth: depth + 1)) }
            return .array(values)
        case 10: return .uint(try load(UInt64.self))
        case 11: return .int(try load(Int64.self))
        case 12: return .float(Double(bitPattern: try load(UInt64.self)))
        default: throw FormatError(file.path, "GGUF metadata value type \(typeCode) is unknown: corrupt header")
        }
    }
}
