import CZstd

/// One-shot zstd compression of chunk payloads.
public enum Zstd {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let message: String
        public var description: String { "zstd: \(message)" }
    }

    public static func compress(_ source: UnsafeRawBufferPointer, level: Int32 = 3) throws -> [UInt8] {
        let bound = ZSTD_compressBound(source.count)
        var out = [UInt8](repeating: 0, count: bound)
        let written = out.withUnsafeMutableBytes {
            ZSTD_compress($0.baseAddress, bound, source.baseAddress, source.count, level)
        }
        if ZSTD_isError(written) != 0 { throw Failure(message: String(cString: ZSTD_getErrorName(written))) }
        out.removeLast(bound - written)
        return out
    }

    /// Decompresses into `destination`, which must be exactly the frame's content size.
    public static func decompress(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer) throws {
        let written = ZSTD_decompress(destination.baseAddress, destination.count, source.baseAddress, source.count)
        if ZSTD_isError(written) != 0 { throw Failure(message: String(cString: ZSTD_getErrorName(written))) }
        if written != destination.count {
            throw Failure(message: "frame holds \(written) bytes, expected \(destination.count)")
        }
    }
}
