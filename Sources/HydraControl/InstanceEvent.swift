import Foundation

/// One change in an instance's life, as `hydra serve --event-log` writes it (a JSON line each)
/// and `hydra analyze --controller-log` reads it: what the instance holds of its nodes' device
/// memory from this moment on, so a run's cost (GB·s) is the area under these steps.
public struct InstanceEvent: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        /// The planner placed it and its workers were started.
        case started
        /// Its first token: the cold start is over.
        case firstToken = "first_token"
        /// Its pipeline became one worker (the other stages' memory is released).
        case consolidated
        case consolidationFailed = "consolidation_failed"
        /// Stopped after its keep-alive, or at shutdown.
        case stopped
        /// Its workers died or failed to start.
        case lost
    }

    /// Wall-clock time (seconds since 1970), comparable with `hydra load`'s records.
    public var unixSeconds: Double
    public var instance: Int
    public var function: String
    public var kind: Kind
    public var pp: Int
    public var nodes: [String]
    /// Device memory the instance holds from now on: weights as placed plus its KV cache.
    public var heldBytes: Int
    /// Each stage's start-up timeline, seconds since its process started (first_token only).
    public var timelines: [[String: Double]]?

    enum CodingKeys: String, CodingKey {
        case unixSeconds = "unix_seconds", instance, function, kind = "event", pp, nodes, heldBytes = "held_bytes", timelines
    }

    public init(unixSeconds: Double, instance: Int, function: String, kind: Kind, pp: Int, nodes: [String], heldBytes: Int,
                timelines: [[String: Double]]? = nil) {
        self.unixSeconds = unixSeconds
        self.instance = instance
        self.function = function
        self.kind = kind
        self.pp = pp
        self.nodes = nodes
        self.heldBytes = heldBytes
        self.timelines = timelines
    }

    /// Reads a log of JSON lines; a line that is not an event is an error naming the line.
    public static func load(_ path: String) throws -> [InstanceEvent] {
        guard let data = FileManager.default.contents(atPath: path) else { throw ControlError(status: 400, "\(path): cannot read the controller log") }
        let decoder = JSONDecoder()
        return try data.split(separator: UInt8(ascii: "\n")).enumerated().map { index, line in
            do { return try decoder.decode(InstanceEvent.self, from: Data(line)) } catch {
                throw ControlError(status: 400, "\(path) line \(index + 1): not an instance event")
            }
        }
    }
}

/// Where the controller's instance events go: appended to a file as JSON lines, if it has one.
public final class InstanceEventLog: @unchecked Sendable {
    private let file: FileHandle?
    private let lock = NSLock()

    /// A log that keeps nothing.
    public init() { file = nil }

    /// Events are appended to `path` (created or truncated).
    public init(path: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path) else {
            throw ControlError(status: 400, "\(path): cannot create the event log")
        }
        file = handle
    }

    public func record(_ event: InstanceEvent) {
        guard let file, var line = try? JSONEncoder().encode(event) else { return }
        line.append(UInt8(ascii: "\n"))
        lock.withLock { try? file.write(contentsOf: line) }
    }

    static func now() -> Double { Date().timeIntervalSince1970 }
}
