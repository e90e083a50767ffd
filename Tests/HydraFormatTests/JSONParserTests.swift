import Testing
@testable import HydraFormat

@Suite struct JSONParserTests {
    func parse(_ text: String) throws -> JSONValue { try JSONValue.parse(Array(text.utf8), file: "t.json") }

    @Test func valuesAndNumberKinds() throws {
        let value = try parse(#"{"a": [1, -2, 3.5, 1e-5, 10000.0], "b": true, "c": null, "d": "x"}"#)
        #expect(value["a"] == .array([.int(1), .int(-2), .double(3.5), .double(1e-5), .double(10000)]))
        if case .int = value["a"]!.arrayValueForTest[0] {} else { Issue.record("1 must stay an integer") }
        if case .double = value["a"]!.arrayValueForTest[4] {} else { Issue.record("10000.0 must stay a double") }
        #expect(value["b"] == .bool(true) && value["c"] == .null && value["d"] == .string("x"))
        #expect(JSONValue.int(0) == JSONValue.double(0))
    }

    @Test func stringEscapesAndSurrogates() throws {
        #expect(try parse(#""a\"b\\c\/d\n\t\u00e9\ud83e\udd16""#) == .string("a\"b\\c/d\n\té🤖"))
        #expect(try parse("\"Ġcapital ĊĊ\"") == .string("Ġcapital ĊĊ"))
    }

    @Test func quotedStringsParseBack() throws {
        for text in ["", "plain", "a\"b\\c/d", "line\nbreak\r\ttab", "\u{01}\u{1f}\u{7f}", "é🤖 Ġ"] {
            #expect(try parse(JSONValue.quoted(text)) == .string(text), "\(text.debugDescription)")
        }
    }

    @Test func errorsNameTheProblem() throws {
        for bad in ["{", "[1,]", "{\"a\" 1}", "tru", "\"abc", "1 2", "{\"a\":\"\u{01}\"}", "\"\\x\""] {
            let error = try #require(throws: FormatError.self) { try parse(bad) }
            #expect(error.problem.hasPrefix("invalid JSON:") && error.problem.contains("at byte"), "\(bad)")
        }
        let deep = String(repeating: "[", count: 600) + String(repeating: "]", count: 600)
        #expect(throws: FormatError.self) { try parse(deep) }
    }
}

extension JSONValue {
    var arrayValueForTest: [JSONValue] { if case .array(let items) = self { items } else { [] } }
}
