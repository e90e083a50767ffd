import HydraSystem

/// Chunk compression: optional byte-plane split (all first bytes of each element, then all
/// second bytes, …), then one zstd frame. Exponent bytes of bf16/f16 compress well once grouped.
public enum ChunkCodec {
    public static func compress(_ payload: UnsafeRawBufferPointer, planes: Int, level: Int32 = 3) throws -> [UInt8] {
        guard planes > 1 else { return try Zstd.compress(payload, level: level) }
        let split = AlignedBuffer(count: payload.count)
        splitPlanes(payload, planes: planes, into: split.bytes)
        return try Zstd.compress(UnsafeRawBufferPointer(split.bytes), level: level)
    }

    /// Decodes a stored chunk into `payload` (exactly `payloadBytes` long).
    public static func decode(_ stored: UnsafeRawBufferPointer, compression: Compression, into payload: UnsafeMutableRawBufferPointer) throws {
        switch compression {
        case .none:
            precondition(stored.count == payload.count)
            payload.copyMemory(from: stored)
        case .zstd(let planes) where planes <= 1:
            try Zstd.decompress(stored, into: payload)
        case .zstd(let planes):
            let split = AlignedBuffer(count: payload.count)
            try Zstd.decompress(stored, into: split.bytes)
            joinPlanes(UnsafeRawBufferPointer(split.bytes), planes: planes, into: payload)
        }
    }

    static func splitPlanes(_ source: UnsafeRawBufferPointer, planes: Int, into destination: UnsafeMutableRawBufferPointer) {
        let count = source.count / planes
        for plane in 0..<planes {
            for i in 0..<count { destination[plane * count + i] = source[i * planes + plane] }
        }
    }

    static func joinPlanes(_ source: UnsafeRawBufferPointer, planes: Int, into destination: UnsafeMutableRawBufferPointer) {
        let count = source.count / planes
        for plane in 0..<planes {
            for i in 0..<count { destination[i * planes + plane] = source[plane * count + i] }
        }
    }
}
