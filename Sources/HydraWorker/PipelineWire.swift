import HydraEngine
import HydraSystem

/// The pipeline link between stage workers, version 1. Every frame is a 12-byte header —
/// magic "HYPP", version (u16), kind (u8), reserved (u8, zero), payload length (u32) — then the
/// payload; all integers little-endian. No pickle, no eval: every field is bounds-checked before
/// use, and a frame that fails a check is answered with an `error` frame and the link closed.
public enum PipelineWire {
    public static let magic: [UInt8] = Array("HYPP".utf8)
    public static let version: UInt16 = 1
    public static let headerBytes = 12
    /// A batch's activations are at most a few hundred MB; anything larger is corrupt.
    public static let maxPayloadBytes = 1 << 30

    public enum Kind: UInt8, Sendable {
        case hello = 1, ready = 2, forward = 3, tokens = 4, error = 5
        /// Consolidation: stage 0 asks for the K/V of live blocks and the samplers; each stage
        /// answers with its layers' part (`kv`). `retire` tells the stages to exit.
        case migrate = 6, kv = 7, retire = 8, retired = 9
    }

    public struct Malformed: Error, CustomStringConvertible, Sendable {
        public let problem: String
        public init(_ problem: String) { self.problem = problem }
        public var description: String { "malformed pipeline frame: \(problem)" }
    }

    /// Reads one frame; nil on a clean end of stream between frames.
    public static func read(_ connection: TCPConnection) throws -> (Kind, [UInt8])? {
        var header = [UInt8](repeating: 0, count: headerBytes)
        guard try header.withUnsafeMutableBytes({ try connection.read(into: $0) }) else { return nil }
        guard Array(header[0..<4]) == magic else { throw Malformed("bad magic \(header[0..<4].map { String($0, radix: 16) })") }
        let version = UInt16(header[4]) | UInt16(header[5]) << 8
        guard version == Self.version else { throw Malformed("protocol version \(version), this worker speaks \(Self.version)") }
        guard let kind = Kind(rawValue: header[6]) else { throw Malformed("unknown frame kind \(header[6])") }
        guard header[7] == 0 else { throw Malformed("reserved byte is \(header[7])") }
        let length = Int(header[8]) | Int(header[9]) << 8 | Int(header[10]) << 16 | Int(header[11]) << 24
        guard length <= maxPayloadBytes else { throw Malformed("payload of \(length) bytes (limit \(maxPayloadBytes))") }
        var payload = [UInt8](repeating: 0, count: length)
        if length > 0 {
            guard try payload.withUnsafeMutableBytes({ try connection.read(into: $0) }) else {
                throw Malformed("connection closed before the payload")
            }
        }
        return (kind, payload)
    }

    public static func write(_ connection: TCPConnection, _ kind: Kind, _ payload: [UInt8]) throws {
        precondition(payload.count <= maxPayloadBytes)
        var frame = magic
        frame += [UInt8(version & 0xFF), UInt8(version >> 8), kind.rawValue, 0]
        let length = UInt32(payload.count)
        frame += [UInt8(length & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length >> 16 & 0xFF), UInt8(length >> 24)]
        frame += payload
        try frame.withUnsafeBytes { try connection.write($0) }
    }
}

/// Little-endian payload writer.
struct WireWriter {
    var bytes: [UInt8] = []

    mutating func u8(_ value: UInt8) { bytes.append(value) }
    mutating func u32(_ value: Int) {
        precondition(value >= 0 && value <= Int(UInt32.max))
        withUnsafeBytes(of: UInt32(value).littleEndian) { bytes += $0 }
    }
    mutating func u64(_ value: UInt64) { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }
    mutating func f32(_ value: Float) { withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes += $0 } }
    mutating func string(_ value: String) { let utf8 = Array(value.utf8); u32(utf8.count); bytes += utf8 }
    mutating func floats(_ values: [Float]) { values.withUnsafeBytes { bytes += $0 } }  // x86-64 and arm64 are little-endian

    /// Temperature, top_p, seed flag and seed.
    mutating func sampling(_ parameters: SamplingParameters) {
        f32(parameters.temperature)
        f32(parameters.topP)
        u8(parameters.seed == nil ? 0 : 1)
        u64(parameters.seed ?? 0)
    }
}

/// Little-endian payload reader: every read is bounds-checked and throws `Malformed`.
struct WireReader {
    let bytes: [UInt8]
    var offset = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    mutating func take(_ count: Int, _ what: String) throws -> ArraySlice<UInt8> {
        guard count >= 0, bytes.count - offset >= count else {
            throw PipelineWire.Malformed("truncated: \(what) needs \(count) bytes, \(bytes.count - offset) left")
        }
        defer { offset += count }
        return bytes[offset..<(offset + count)]
    }

    mutating func u8(_ what: String) throws -> UInt8 { try take(1, what).first! }
    mutating func u32(_ what: String) throws -> Int {
        let slice = try take(4, what)
        return slice.reversed().reduce(0) { $0 << 8 | Int($1) }
    }
    mutating func u64(_ what: String) throws -> UInt64 {
        let slice = try take(8, what)
        return slice.reversed().reduce(0) { $0 << 8 | UInt64($1) }
    }
    mutating func f32(_ what: String) throws -> Float { Float(bitPattern: UInt32(try u32(what))) }
    mutating func string(_ what: String, limit: Int = 4096) throws -> String {
        let count = try u32(what)
        guard count <= limit else { throw PipelineWire.Malformed("\(what) of \(count) bytes (limit \(limit))") }
        guard let text = String(validating: try take(count, what), as: UTF8.self) else { throw PipelineWire.Malformed("\(what) is not UTF-8") }
        return text
    }
    mutating func floats(_ count: Int, _ what: String) throws -> [Float] {
        guard count >= 0, count <= (bytes.count - offset) / 4 else {
            throw PipelineWire.Malformed("truncated: \(what) needs \(count) floats, \((bytes.count - offset) / 4) left")
        }
        let slice = try take(count * 4, what)
        return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            slice.withUnsafeBytes { UnsafeMutableRawBufferPointer(buffer).copyMemory(from: $0) }  // no alignment assumed
            initialized = count
        }
    }
    /// What `WireWriter.sampling` wrote, validated.
    mutating func sampling(_ what: String) throws -> SamplingParameters {
        let temperature = try f32("temperature")
        let topP = try f32("top_p")
        let hasSeed = try u8("seed flag")
        let seed = try u64("seed")
        let parameters = SamplingParameters(temperature: temperature, topP: topP, seed: hasSeed == 1 ? seed : nil)
        do { try parameters.validate() } catch { throw PipelineWire.Malformed("\(what): \(error)") }
        return parameters
    }

    func finish(_ what: String) throws {
        guard offset == bytes.count else { throw PipelineWire.Malformed("\(bytes.count - offset) trailing bytes after \(what)") }
    }
}
