/// A control-plane error that knows the HTTP status it maps to and whether the client caused it
/// (4xx) or the platform did (5xx); its message names the problem.
public struct ControlError: Error, CustomStringConvertible, Sendable, Equatable {
    public let status: Int
    public let message: String
    /// OpenAI's error type for the status.
    public var type: String {
        switch status {
        case 404: "not_found_error"
        case 400..<500: "invalid_request_error"
        default: "server_error"
        }
    }

    public init(status: Int, _ message: String) {
        self.status = status
        self.message = message
    }

    public var description: String { message }
}
