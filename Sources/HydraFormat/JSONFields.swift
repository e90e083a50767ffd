/// The members of one parsed JSON object, read field by field: a missing or mistyped field
/// throws a `Problem` naming its path (`chunks[3].sha256`). Unknown members are ignored, so a
/// newer minor version's additions read as before.
public struct JSONFields: Sendable {
    public struct Problem: Error, CustomStringConvertible, Sendable {
        public let description: String

        public init(description: String) { self.description = description }
    }

    public let members: [String: JSONValue]
    public let path: String

    public init(_ value: JSONValue, path: String) throws {
        guard case .object(let members) = value else { throw Problem(description: "expected an object at \(path.isEmpty ? "top level" : path)") }
        self.members = members
        self.path = path
    }

    private func at(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    private func missing(_ key: String) -> Problem { Problem(description: "missing key '\(key)' at \(path.isEmpty ? "top level" : path)") }

    private func mistyped(_ key: String, _ expected: String) -> Problem { Problem(description: "expected \(expected) at \(at(key))") }

    /// Member `key` as `read` makes it: nil when absent or null, a problem naming `expected` when
    /// `read` refuses it.
    private func optional<T>(_ key: String, _ expected: String, _ read: (JSONValue) -> T?) throws -> T? {
        guard let value = members[key], value != .null else { return nil }
        guard let typed = read(value) else { throw mistyped(key, expected) }
        return typed
    }

    private func required<T>(_ key: String, _ value: T?) throws -> T {
        guard let value else { throw missing(key) }
        return value
    }

    public func value(_ key: String) throws -> JSONValue { try required(key, optional(key, "a value") { $0 }) }
    public func int(_ key: String) throws -> Int { try required(key, optionalInt(key)) }
    public func optionalInt(_ key: String) throws -> Int? { try optional(key, "an integer", \.intValue) }
    public func string(_ key: String) throws -> String { try required(key, optionalString(key)) }
    public func optionalString(_ key: String) throws -> String? { try optional(key, "a string", \.stringValue) }
    public func bool(_ key: String) throws -> Bool { try required(key, optionalBool(key)) }
    public func optionalBool(_ key: String) throws -> Bool? { try optional(key, "true or false", \.boolValue) }

    public func object(_ key: String) throws -> JSONFields { try JSONFields(try value(key), path: at(key)) }

    /// A string member that must be one of `T`'s raw values.
    public func enumeration<T: RawRepresentable & CaseIterable>(_ key: String, _: T.Type = T.self) throws -> T where T.RawValue == String {
        try required(key, optionalEnumeration(key, T.self))
    }

    public func optionalEnumeration<T: RawRepresentable & CaseIterable>(_ key: String, _: T.Type = T.self) throws -> T? where T.RawValue == String {
        guard let text = try optionalString(key) else { return nil }
        guard let value = T(rawValue: text) else {
            throw Problem(description: "'\(text)' at \(at(key)) is not one of \(T.allCases.map { "'\($0.rawValue)'" }.joined(separator: ", "))")
        }
        return value
    }

    /// An array member, each element read by `element` with its index in the path.
    public func array<T>(_ key: String, _ element: (JSONValue, String) throws -> T) throws -> [T] {
        guard case .array(let values) = try value(key) else { throw mistyped(key, "an array") }
        var result: [T] = []
        result.reserveCapacity(values.count)
        for (index, value) in values.enumerated() { result.append(try element(value, "\(at(key))[\(index)]")) }
        return result
    }

    /// An array of objects, each read by `element`.
    public func objects<T>(_ key: String, _ element: (JSONFields) throws -> T) throws -> [T] {
        try array(key) { value, path in try element(try JSONFields(value, path: path)) }
    }

    /// An array of integers.
    public func ints(_ key: String) throws -> [Int] {
        try array(key) { value, path in
            guard let int = value.intValue else { throw Problem(description: "expected an integer at \(path)") }
            return int
        }
    }
}
