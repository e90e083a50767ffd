import Foundation
import HydraFormat
import HydraSystem

/// The node cache's Unix-socket protocol, version 2: JSON frames (FrameSocket), one request per
/// connection. `attach` answers `attached` (chunk indices), then a frame holding the model's
/// manifest as the remote store served it (passed on verbatim: neither side re-encodes it), then
/// one `chunk` frame per chunk carrying its sealed memfd, then `done` — or `error` at any point.
/// The connection stays open while the worker holds the chunks; closing it unpins them.
///
/// Frames are written by hand and read field by field from the parsed JSON: a worker and the
/// cache each paid 1–3 ms of Swift runtime look-ups for their first `JSONEncoder` or
/// `JSONDecoder`, on the two cores the fetch itself was using. Only the status reply, neither
/// hot nor small, goes through `Codable`.
enum CacheProtocol {
    static let version = 2

    struct Request {
        enum Operation: String, CaseIterable { case attach, prefetch, status }
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

        init(parsing bytes: [UInt8]) throws {
            self.init(.status)
            let fields = try CacheProtocol.fields(bytes, "request")
            do {
                version = try fields.int("version")
                op = try fields.enumeration("op")
                model = try fields.optionalString("model")
                stage = try fields.optionalInt("stage")
                pp = try fields.optionalInt("pp")
                complement = try fields.optionalBool("complement")
                priority = try fields.optionalEnumeration("priority")
            } catch let problem as JSONFields.Problem {
                throw FormatError("node cache frame", "malformed request: \(problem)")
            }
        }

        func encoded() -> [UInt8] {
            var members = ["\"version\":\(version)", "\"op\":\"\(op.rawValue)\""]
            if let model { members.append("\"model\":\(JSONValue.quoted(model))") }
            if let stage { members.append("\"stage\":\(stage)") }
            if let pp { members.append("\"pp\":\(pp)") }
            if let complement { members.append("\"complement\":\(complement)") }
            if let priority { members.append("\"priority\":\"\(priority.rawValue)\"") }
            return CacheProtocol.object(members)
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
        enum Event: String, Codable, CaseIterable { case attached, chunk, done, ordered, status, error }
        var event: Event
        var message: String?
        var indices: [Int]?
        var index: Int?
        var chunks: Int?
        var bytes: Int?
        var status: CacheStatus?

        init(_ event: Event) { self.event = event }
        static func error(_ message: String) -> Reply { var reply = Reply(.error); reply.message = message; return reply }

        init(parsing frame: [UInt8]) throws {
            let fields = try CacheProtocol.fields(frame, "reply")
            do {
                self.init(try fields.enumeration("event"))
                if event == .status {
                    do { self = try JSONDecoder().decode(Reply.self, from: Data(frame)) } catch {
                        throw FormatError("node cache frame", "malformed status reply: \(describe(error))")
                    }
                    return
                }
                message = try fields.optionalString("message")
                indices = fields.members["indices"] == nil ? nil : try fields.ints("indices")
                index = try fields.optionalInt("index")
                chunks = try fields.optionalInt("chunks")
                self.bytes = try fields.optionalInt("bytes")
            } catch let problem as JSONFields.Problem {
                throw FormatError("node cache frame", "malformed reply: \(problem)")
            }
        }

        func encoded() throws -> [UInt8] {
            if status != nil { return Array(try JSONEncoder().encode(self)) }
            var members = ["\"event\":\"\(event.rawValue)\""]
            if let message { members.append("\"message\":\(JSONValue.quoted(message))") }
            if let indices { members.append("\"indices\":[\(indices.map(String.init).joined(separator: ","))]") }
            for (key, value) in [("index", index), ("chunks", chunks), ("bytes", bytes)] {
                if let value { members.append("\"\(key)\":\(value)") }
            }
            return CacheProtocol.object(members)
        }
    }

    private static func object(_ members: [String]) -> [UInt8] { Array("{\(members.joined(separator: ","))}".utf8) }

    private static func fields(_ bytes: [UInt8], _ what: String) throws -> JSONFields {
        do { return try JSONFields(try JSONValue.parse(bytes, file: "node cache frame"), path: "") } catch let problem as JSONFields.Problem {
            throw FormatError("node cache frame", "malformed \(what): \(problem)")
        }
    }
}
