import HydraSystem

/// Reads a tensor's elements from wherever a source model keeps them.
public protocol TensorReader: Sendable {
    /// Writes elements `range` (row-major, in the Hugging Face layout) into `destination` as `type`.
    func read(elements range: Range<Int>, into destination: UnsafeMutableRawBufferPointer, as type: DType) throws
}

/// One tensor of a model being converted: its Hugging Face name and shape, the dtype the source
/// yields it in (dequantised GGUF tensors yield f32), and how to read it.
public struct SourceTensor: Sendable {
    public let name: String
    public let shape: [Int]
    public let sourceType: DType
    public let reader: any TensorReader

    public init(name: String, shape: [Int], sourceType: DType, reader: any TensorReader) {
        self.name = name
        self.shape = shape
        self.sourceType = sourceType
        self.reader = reader
    }

    public var elementCount: Int { shape.reduce(1, *) }
}

/// A model read from disk, ready to convert: config, auxiliary files and tensors.
public struct SourceModel: Sendable {
    public enum Kind: String, Codable, Sendable, CaseIterable { case safetensors, gguf }

    public let kind: Kind
    /// The Hugging Face config.json, parsed.
    public let config: JSONValue
    /// Files carried into the store as they are (tokenizer.json, tokenizer_config.json, …), by name.
    public let files: [(name: String, bytes: [UInt8])]
    public let tensors: [SourceTensor]
    /// Total bytes the source reads for all tensors (for progress).
    public let sourceBytes: Int
}

/// An open source file shared by the readers of its tensors.
public final class SourceFile: Sendable {
    public let path: String
    private let descriptor: FileDescriptor
    public let size: Int

    public init(path: String) throws {
        do {
            descriptor = try FileDescriptor.open(path)
            size = try descriptor.size()
        } catch let error as SystemError {
            throw FormatError(path, "cannot open: \(error.description)")
        }
        self.path = path
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int) throws {
        do {
            try descriptor.read(into: buffer, at: offset)
        } catch is FileTooShort {
            throw FormatError(path, "truncated: needs bytes up to \(offset + buffer.count), file has \(size)")
        }
    }

    public func read(count: Int, at offset: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        try bytes.withUnsafeMutableBytes { try read(into: $0, at: offset) }
        return bytes
    }
}

/// Reads a tensor stored as plain little-endian elements at a file offset (safetensors, and
/// unquantised GGUF tensors), converting on the way.
public struct PlainTensorReader: TensorReader {
    let file: SourceFile
    let offset: Int
    let storedType: DType

    public func read(elements range: Range<Int>, into destination: UnsafeMutableRawBufferPointer, as type: DType) throws {
        let start = offset + range.lowerBound * storedType.elementBytes
        let byteCount = range.count * storedType.elementBytes
        if type == storedType {
            try file.read(into: UnsafeMutableRawBufferPointer(rebasing: destination[0..<byteCount]), at: start)
            return
        }
        let scratch = AlignedBuffer(count: byteCount)
        try file.read(into: scratch.bytes, at: start)
        ElementConversion.convert(UnsafeRawBufferPointer(scratch.bytes), from: storedType,
                                  into: destination, as: type, count: range.count)
    }
}
