import Foundation
import HydraSystem
import Logging

/// What a worker did when, in seconds since its process started: the cold start, stage by stage.
public final class StartupTimeline: @unchecked Sendable {
    public struct Mark: Codable, Sendable, Equatable {
        public var event: String
        public var seconds: Double
    }

    private let marks = LockedBox<[Mark]>([])
    private let clock: @Sendable () -> Double
    private let logger: Logger?

    /// `clock` gives seconds since the process started (tests inject their own).
    public init(logger: Logger? = nil, clock: @escaping @Sendable () -> Double = ProcessClock.secondsSinceStart) {
        self.clock = clock
        self.logger = logger
        record("process_start", at: 0)
    }

    public func mark(_ event: String) { record(event, at: clock()) }

    /// Marks `event` only the first time (e.g. the first token of the first request).
    public func markOnce(_ event: String) {
        let now = clock()
        let added = marks.withValue { marks -> Bool in
            guard !marks.contains(where: { $0.event == event }) else { return false }
            marks.append(Mark(event: event, seconds: now))
            return true
        }
        if added { logger?.info("startup", metadata: ["event": "\(event)", "seconds": "\(String(format: "%.3f", now))"]) }
    }

    private func record(_ event: String, at seconds: Double) {
        marks.withValue { $0.append(Mark(event: event, seconds: seconds)) }
        logger?.info("startup", metadata: ["event": "\(event)", "seconds": "\(String(format: "%.3f", seconds))"])
    }

    public var all: [Mark] { marks.value }

    public func seconds(_ event: String) -> Double? { marks.value.first { $0.event == event }?.seconds }
}
