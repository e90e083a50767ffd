import Foundation

/// A parsed and validated safetensors file: https://huggingface.co/docs/safetensors
/// Layout: u64 little-endian header length N, N bytes of JSON, then the data section.
public struct SafetensorsFile: Sendable {
    public struct Entry: Sendable {
        public let name: String
        public let dtype: DType
        public let shape: [Int]
        /// Byte range inside the data section.
        public let dataRange: Range<Int>
    }

    static let maxHeaderBytes = 100 << 20

    public let file: SourceFile
    public let dataStart: Int
    /// Tensors in file order.
    public let entries: [Entry]

    public init(path: String) throws {
        let file = try SourceFile(path: path)
        self.file = file
        guard file.size >= 8 else {
            throw FormatError(path, "truncated safetensors: file is \(file.size) bytes, the header length alone needs 8")
        }
        let lengthBytes = try file.read(count: 8, at: 0)
        let headerLength = lengthBytes.withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
        guard headerLength <= Self.maxHeaderBytes else {
            throw FormatError(path, "safetensors header length \(headerLength) exceeds the \(Self.maxHeaderBytes)-byte limit")
        }
        guard 8 + headerLength <= file.size else {
            throw FormatError(path, "safetensors header length \(headerLength) runs past the end of the file (\(file.size) bytes): truncated or not safetensors")
        }
        dataStart = 8 + headerLength
        let header = try JSONValue.parse(try file.read(count: headerLength, at: 8), file: path)
        entries = try Self.entries(from: header, dataBytes: file.size - dataStart, path: path)
    }

    private static func entries(from header: JSONValue, dataBytes: Int, path: String) throws -> [Entry] {
        guard case .object(let members) = header else {
            throw FormatError(path, "safetensors header is not a JSON object")
        }
        var entries: [Entry] = []
        for (name, value) in members where name != "__metadata__" {
            guard let dtypeName = value["dtype"]?.stringValue else {
                throw FormatError(path, "tensor '\(name)': missing dtype")
            }
            guard let dtype = DType(rawValue: dtypeName) else {
                throw FormatError(path, "tensor '\(name)': unknown dtype '\(dtypeName)' (supported: \(DType.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            guard case .array(let dims)? = value["shape"], let shape = Optional(dims.compactMap(\.intValue)),
                  shape.count == dims.count, shape.allSatisfy({ $0 >= 0 }) else {
                throw FormatError(path, "tensor '\(name)': shape must be a list of non-negative integers")
            }
            guard case .array(let offsets)? = value["data_offsets"], offsets.count == 2,
                  let begin = offsets[0].intValue, let end = offsets[1].intValue else {
                throw FormatError(path, "tensor '\(name)': data_offsets must be [begin, end]")
            }
            guard begin >= 0, begin <= end, end <= dataBytes else {
                throw FormatError(path, "tensor '\(name)': data offsets [\(begin), \(end)) out of range: the data section has \(dataBytes) bytes (truncated file?)")
            }
            let expected = shape.reduce(1, *) * dtype.elementBytes
            guard end - begin == expected else {
                throw FormatError(path, "tensor '\(name)': data offsets hold \(end - begin) bytes but \(dtypeName) \(shape) needs \(expected)")
            }
            entries.append(Entry(name: name, dtype: dtype, shape: shape, dataRange: begin..<end))
        }
        entries.sort { ($0.dataRange.lowerBound, $0.name) < ($1.dataRange.lowerBound, $1.name) }
        for (previous, next) in zip(entries, entries.dropFirst())
        where next.dataRange.lowerBound < previous.dataRange.upperBound && !next.dataRange.isEmpty {
            throw FormatError(path, "tensors '\(previous.name)' and '\(next.name)' overlap: bytes \(previous.dataRange) and \(next.dataRange)")
        }
        return entries
    }

    public func sourceTensors() -> [SourceTensor] {
        entries.map { entry in
            SourceTensor(name: entry.name, shape: entry.shape, sourceType: entry.dtype,
                         reader: PlainTensorReader(file: file, offset: dataStart + entry.dataRange.lowerBound, storedType: entry.dtype))
        }
    }
}
