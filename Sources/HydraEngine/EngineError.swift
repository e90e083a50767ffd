/// A request the engine cannot serve, with a message for the caller.
public struct EngineError: Error, CustomStringConvertible, Sendable, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
