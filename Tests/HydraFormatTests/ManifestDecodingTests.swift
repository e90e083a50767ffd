import Foundation
import Testing
@testable import HydraFormat

/// `Manifest.decode` reads what `encoded()` writes, field for field, and names the field of a
/// manifest that is missing, mistyped or out of range.
@Suite struct ManifestDecodingTests {
    /// A converted tiny model's manifest, with the optional and unusual values a store can hold.
    func sampleManifest() throws -> Manifest {
        let store = TemporaryDirectory()
        _ = try Converter.convert(try Converter.loadSource(Fixtures.root + "/tiny/llama2-tiny"),
                                  into: StoreDirectory(root: store.path), options: ConvertOptions(name: "m"))
        var manifest = try StoreEntry(store: StoreDirectory(root: store.path), name: "m").manifest
        manifest.chunks[0].xxh3 = nil
        manifest.chunks[0].compression = .zstd(planes: 2)
        manifest.chunks[manifest.chunks.count - 1].compression = .zstd(planes: 1)
        manifest.config = .object(["nested": .array([.null, .bool(false), .int(-3), .double(0.25), .string("é\"\\")]),
                                   "big": .int(1 << 40), "empty": .object([:])])
        return manifest
    }

    /// The manifest's JSON with `edit` applied to member `key` of the element at `path`.
    func edited(_ manifest: Manifest, _ path: [String], _ key: String, _ replacement: JSONValue?) throws -> [UInt8] {
        func apply(_ value: JSONValue, _ path: ArraySlice<String>) -> JSONValue {
            switch value {
            case .object(var members):
                guard let first = path.first else {
                    members[key] = replacement
                    return .object(members)
                }
                members[first] = apply(members[first]!, path.dropFirst())
                return .object(members)
            case .array(var elements):
                let index = Int(path.first!)!
                elements[index] = apply(elements[index], path.dropFirst())
                return .array(elements)
            default:
                Issue.record("path runs through a scalar")
                return value
            }
        }
        return try apply(try JSONValue.parse(try manifest.encoded(), file: "sample"), path[...]).encoded()
    }

    func problem(_ bytes: [UInt8]) throws -> String {
        try #require(throws: FormatError.self) { try Manifest.decode(bytes, file: "m.json") }.problem
    }

    @Test func decodeReadsWhatEncodeWrites() throws {
        let manifest = try sampleManifest()
        #expect(try Manifest.decode(try manifest.encoded(), file: "m.json") == manifest)
        // Compact encoding (as a store might serve it) and unknown members from a newer minor version.
        let compact = try edited(manifest, [], "futureMember", .array([.int(1)]))
        let decoded = try Manifest.decode(compact, file: "m.json")
        #expect(decoded == manifest)
        #expect(decoded.chunks[0].xxh3 == nil && decoded.chunks[1].xxh3 != nil)
        #expect(decoded.chunks.contains { $0.layer == nil } && decoded.chunks.contains { $0.layer == 1 })
    }

    @Test func malformedFieldsAreNamed() throws {
        let manifest = try sampleManifest()
        let cases: [([String], String, JSONValue?, String)] = [
            (["chunks", "2"], "sha256", nil, "missing key 'sha256' at chunks[2]"),
            (["chunks", "1"], "storedBytes", .string("7"), "expected an integer at chunks[1].storedBytes"),
            (["chunks", "1"], "storedBytes", .double(7.5), "expected an integer at chunks[1].storedBytes"),
            (["chunks", "0"], "compression", .string("lz4"), "unknown compression 'lz4' at chunks[0]"),
            (["tensors", "3"], "dtype", .string("Q4_0"), "'Q4_0' at tensors[3].dtype is not one of"),
            (["tensors", "0"], "shape", .string("[2, 3]"), "expected an array at tensors[0].shape"),
            (["tensors", "0", "extents", "0"], "length", .bool(true), "expected an integer at tensors[0].extents[0].length"),
            (["stagePlans", "0", "stages", "0"], "head", .int(1), "expected true or false at stagePlans[0].stages[0].head"),
            (["source"], "kind", .string("onnx"), "'onnx' at source.kind is not one of 'safetensors', 'gguf'"),
            ([], "chunks", .object([:]), "expected an array at chunks"),
            ([], "tensors", .array([.int(4)]), "expected an object at tensors[0]"),
            ([], "layerCount", .null, "missing key 'layerCount' at top level"),
        ]
        for (path, key, replacement, expected) in cases {
            let found = try problem(try edited(manifest, path, key, replacement))
            #expect(found.hasPrefix("invalid manifest: ") && found.contains(expected), "\(path) \(key): \(found)")
        }
        // Structural checks still run after the fields read well; no number stops the reader
        // (each of these overflowed, or trapped converting, in some naive sum or product).
        let structural: [([String], String, JSONValue, String)] = [
            (["tensors", "0", "extents", "0"], "chunk", .int(Int64(manifest.chunks.count)), "extent outside its chunk"),
            (["tensors", "0", "extents", "0"], "offset", .int(.max), "extent outside its chunk"),
            (["tensors", "0"], "shape", .array([.int(1 << 40), .int(1 << 40)]), "extents hold"),
            (["chunks", "1"], "storedBytes", .double(1e300), "expected an integer at chunks[1].storedBytes"),
            (["chunks", "1"], "payloadBytes", .int(1 << 62), "chunk 1 sizes are invalid"),
            (["stagePlans", "0", "stages", "0"], "bytes", .int(-1), "has -1 bytes"),
        ]
        for (path, key, replacement, expected) in structural {
            let found = try problem(try edited(manifest, path, key, replacement))
            #expect(found.contains(expected), "\(path) \(key): \(found)")
        }
    }

    @Test func notAManifestIsToldApart() throws {
        #expect(try problem(Array("{\"format\": ".utf8)).contains("not valid JSON"))
        #expect(try problem(Array("[1]".utf8)).contains("not a HydraServe manifest"))
        #expect(try problem(Array("{\"format\": \"other\"}".utf8)).contains("format is 'other'"))
        #expect(try problem(Array("{\"format\": \"hydra-store\", \"formatVersion\": 1}".utf8)).contains("formatVersion is missing or not MAJOR.MINOR"))
    }
}
