/// The members of one parsed JSON object, read field by field: a missing or mistyped field
/// throws a `Problem` naming its path (`chunks[3].sha256`). Unknown members are ignored, so a
/// newer minor version's additions read as before.
struct JSONFields {
    struct Problem: Error, CustomStringConvertible {
        let description: String
    }

    let members: [String: JSONValue]
    let path: String

    init(_ value: JSONValue, path: String) throws {
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

    func value(_ key: String) throws -> JSONValue { try required(key) }

    func int(_ key: String) throws -> Int {
        guard let value = try required(key).intValue else { throw mistyped(key, "an integer") }
        return value
    }

    func optionalInt(_ key: String) throws -> Int? {
        guard let value = members[key], value != .null else { return nil }
        guard let int = value.intValue else { throw mistyped(key, "an integer") }
        return int
    }

    func string(_ key: String) throws -> String {
        guard let value = try required(key).stringValue else { throw mistyped(key, "a string") }
        return value
    }

    func optionalString(_ key: String) throws -> String? {
        guard let value = members[key], value != .null else { return nil }
        guard let string = value.stringValue else { throw mistyped(key, "a string") }
        return string
    }

    func bool(_ key: String) throws -> Bool {
        guard let value = try required(key).boolValue else { throw mistyped(key, "true or false") }
        return value
    }

    func object(_ key: String) throws -> JSONFields { try JSONFields(try required(key), path: at(key)) }

    /// A string member that must be one of `T`'s raw values.
    func enumeration<T: RawRepresentable & CaseIterable>(_ key: String, _: T.Type = T.self) throws -> T where T.RawValue == String {
        let text = try string(key)
        guard let value = T(rawValue: text) else {
            throw Problem(description: "'\(text)' at \(at(key)) is not one of \(T.allCases.map { "'\($0.rawValue)'" }.joined(separator: ", "))")
        }
        return value
    }

    /// An array member, each element read by `element` with its index in the path.
    func array<T>(_ key: String, _ element: (JSONValue, String) throws -> T) throws -> [T] {
        guard case .array(let values) = try required(key) else { throw mistyped(key, "an array") }
        var result: [T] = []
        result.reserveCapacity(values.count)
        for (index, value) in values.enumerated() { result.append(try element(value, "\(at(key))[\(index)]")) }
        return result
    }

    /// An array of objects, each read by `element`.
    func objects<T>(_ key: String, _ element: (JSONFields) throws -> T) throws -> [T] {
        try array(key) { value, path in try element(try JSONFields(value, path: path)) }
    }

    /// An array of integers.
    func ints(_ key: String) throws -> [Int] {
        try array(key) { value, path in
            guard let int = value.intValue else { throw Problem(description: "expected an integer at \(path)") }
            return int
        }
    }
}
