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

    private func required(_ key: String) throws -> JSONValue {
        guard let value = members[key], value != .null else { throw Problem(description: "missing key '\(key)' at \(path.isEmpty ? "top level" : path)") }
        return value
    }

    private func mistyped(_ key: String, _ expected: String) -> Problem { Problem(description: "expected \(expected) at \(at(key))") }

    public func value(_ key: String) throws -> JSONValue { try required(key) }

    public func int(_ key: String) throws -> Int {
        guard let value = try required(key).intValue else { throw mistyped(key, "an integer") }
        return value
    }

    public func optionalInt(_ key: String) throws -> Int? {
        guard let value = members[key], value != .null else { return nil }
        guard let int = value.intValue else { throw mistyped(key, "an integer") }
        return int
    }

    public func string(_ key: String) throws -> String {
        guard let value = try required(key).stringValue else { throw mistyped(key, "a string") }
        return value
    }

    public func optionalString(_ key: String) throws -> String? {
        guard let value = members[key], value != .null else { return nil }
        guard let string = value.stringValue else { throw mistyped(key, "a string") }
        return string
    }

    public func bool(_ key: String) throws -> Bool {
        guard let value = try required(key).boolValue else { throw mistyped(key, "true or false") }
        return value
    }

    public func optionalBool(_ key: String) throws -> Bool? {
        guard let value = members[key], value != .null else { return nil }
        guard let bool = value.boolValue else { throw mistyped(key, "true or false") }
        return bool
    }

    public func object(_ key: String) throws -> JSONFields { try JSONFields(try required(key), path: at(key)) }

    /// A string member that must be one of `T`'s raw values.
    public func enumeration<T: RawRepresentable & CaseIterable>(_ key: String, _: T.Type = T.self) throws -> T where T.RawValue == String {
        guard let value = try optionalEnumeration(key, T.self) else { throw Problem(description: "missing key '\(key)' at \(path.isEmpty ? "top level" : path)") }
        return value
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
        guard case .array(let values) = try required(key) else { throw mistyped(key, "an array") }
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
