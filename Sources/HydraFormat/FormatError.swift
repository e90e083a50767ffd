/// A problem with a model file, a store entry or a manifest: names the file and the problem
/// in one line, so a CLI can print it as is.
public struct FormatError: Error, CustomStringConvertible, Sendable, Equatable {
    public let file: String
    public let problem: String

    public init(_ file: String, _ problem: String) {
        self.file = file
        self.problem = problem
    }

    public var description: String { "\(file): \(problem)" }
}
