import Foundation
import HydraFormat
import HydraSystem

/// The node cache's Unix-socket protocol, version 2: JSON frames (FrameSocket), one request per
/// connection. `attach` answers `attached` (chunk indices), then a frame holding the model's
/// manifest as the remote store served it (passed on verbatim: neither side re-encodes it), then
/// one `chunk` frame per chunk carrying its sealed memfd, then `done` — or `error` at any point.
/// The connection stays open while the worker holds the chunks; closing it unpins them.
enum CacheProtocol {
    static let version = 2

    struct Request: Codable {
        enum Operation: String, Codable { case attach, prefetch, status }
        var version: Int
        var op: Operation
        var model: String?
        var stage: Int?
        var pp: Int?
        var complement: Bool?
        var priority: CacheOrder.Priority?

        init(_ op: Operation, order: CacheOrder? = nil) {
            version = CacheProtocol.version
            self.op = op
            model = order?.model
            stage = order?.stage
            pp = order?.pp
            complement = order?.complement
            priority = order?.priority
        }

        /// The order named by an attach or prefetch request, checked field by field.
        func order() throws -> CacheOrder {
            guard let model else { throw FormatError("request", "'model' is missing") }
            let pp = self.pp ?? 1
            let stage = self.stage ?? 0
            guard pp >= 1 && pp <= 1024 else { throw FormatError("request", "'pp' must be 1…1024, got \(pp)") }
            guard stage >= 0 && stage < pp else { throw FormatError("request", "'stage' must be 0…\(pp - 1), got \(stage)") }
            return CacheOrder(model: model, stage: stage, pp: pp, complement: complement ?? false, priority: priority ?? .high)
        }
    }

    struct Reply: Codable {
        enum Event: String, Codable { case attached, chunk, done, ordered, status, error }
        var event: Event
        var message: String?
        var indices: [Int]?
        var index: Int?
        var chunks: Int?
        var bytes: Int?
        var status: CacheStatus?

        init(_ event: Event) { self.event = event }
        static func error(_ message: String) -> Reply { var reply = Reply(.error); reply.message = message; return reply }
    }

    static func encode<T: Encodable>(_ value: T) throws -> [UInt8] { Array(try JSONEncoder().encode(value)) }

    static func decode<T: Decodable>(_ type: T.Type, _ bytes: [UInt8]) throws -> T {
        do { return try JSONDecoder().decode(type, from: Data(bytes)) } catch {
            throw FormatError("node cache frame", "malformed \(type): \(describe(error))")
        }
    }
}
