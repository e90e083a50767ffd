/// An open file shared by reference: kept open for as long as any reader (an in-flight batch,
/// a streamed response) holds it, closed once.
public final class SharedFile: Sendable {
    public let descriptor: FileDescriptor

    public init(_ descriptor: consuming FileDescriptor) {
        self.descriptor = descriptor
    }

    public var fd: Int32 { descriptor.rawValue }
    public var path: String { descriptor.path }
    public func size() throws -> Int { try descriptor.size() }
}
