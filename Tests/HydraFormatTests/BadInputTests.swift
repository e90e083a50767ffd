import Foundation
import Testing
@testable import HydraFormat

/// Each bad source fails with a one-line error naming the file and the problem, and leaves no
/// entry and no stray files in the store.
@Suite struct BadInputTests {
    /// Converts `dir` (or `file` inside it) into a fresh store, expecting failure; returns the error.
    func failingConvert(_ dir: TemporaryDirectory, _ file: String? = nil, existingStore: TemporaryDirectory? = nil) throws -> FormatError {
        let path = file.map { dir.path + "/" + $0 } ?? dir.path
        let store = existingStore ?? TemporaryDirectory()
        let before = store.files()
        var caught: FormatError?
        do {
            _ = try Converter.convert(try Converter.loadSource(path), into: StoreDirectory(root: store.path), options: ConvertOptions(name: "bad"))
        } catch let error as FormatError {
            caught = error
        }
        let error = try #require(caught, "conversion of \(path) should fail")
        withExtendedLifetime(dir) {}
        #expect(!error.description.contains("\n"))
        #expect(store.files() == before, "a failed conversion must leave the store as it was")
        return error
    }

    func hfDir(safetensors: [UInt8], config: String = "{\"num_hidden_layers\": 1}") -> TemporaryDirectory {
        let dir = TemporaryDirectory()
        dir.write("model.safetensors", safetensors)
        dir.write("config.json", Array(config.utf8))
        return dir
    }

    let goodTensors: [(String, String, [Int], [UInt8])] = [
        ("model.embed_tokens.weight", "F32", [2, 2], floatBytes([1, 2, 3, 4])),
        ("model.layers.0.mlp.up_proj.weight", "F32", [2, 2], floatBytes([5, 6, 7, 8])),
    ]

    @Test func truncatedSafetensors() throws {
        let full = makeSafetensors(goodTensors)
        let dir = hfDir(safetensors: Array(full.dropLast(5)))
        let error = try failingConvert(dir)
        #expect(error.file.hasSuffix("model.safetensors"))
        #expect(error.problem.contains("out of range") && error.problem.contains("truncated"))
        let tiny = hfDir(safetensors: [1, 2, 3])
        #expect(try failingConvert(tiny).problem.contains("truncated safetensors"))
    }

    @Test func headerLengthPastEndOfFile() throws {
        var bytes = makeSafetensors(goodTensors)
        bytes[0] = 0xFF; bytes[1] = 0xFF  // 65535-byte header in a much smaller file
        let error = try failingConvert(hfDir(safetensors: bytes))
        #expect(error.problem.contains("header length 65535 runs past the end of the file"))
    }

    @Test func overlappingOffsets() throws {
        let header = """
        {"a.embed_tokens.weight":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},\
        "model.layers.0.x.weight":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}
        """
        let error = try failingConvert(hfDir(safetensors: makeSafetensors(goodTensors, headerOverride: header)))
        #expect(error.problem.contains("overlap"))
        #expect(error.problem.contains("a.embed_tokens.weight") && error.problem.contains("model.layers.0.x.weight"))
    }

    @Test func outOfRangeOffsets() throws {
        let header = "{\"model.layers.0.x.weight\":{\"dtype\":\"F32\",\"shape\":[8],\"data_offsets\":[16,48]}}"
        let error = try failingConvert(hfDir(safetensors: makeSafetensors(goodTensors, headerOverride: header)))
        #expect(error.problem.contains("data offsets [16, 48) out of range"))
    }

    @Test func unknownDType() throws {
        let header = "{\"model.layers.0.x.weight\":{\"dtype\":\"F8_E9\",\"shape\":[4],\"data_offsets\":[0,4]}}"
        let error = try failingConvert(hfDir(safetensors: makeSafetensors(goodTensors, headerOverride: header)))
        #expect(error.problem.contains("unknown dtype 'F8_E9'"))
    }

    @Test func missingConfig() throws {
        let dir = TemporaryDirectory()
        dir.write("model.safetensors", makeSafetensors(goodTensors))
        let error = try failingConvert(dir)
        #expect(error.file.hasSuffix("config.json") && error.problem.contains("missing config.json"))
    }

    @Test func invalidJSON() throws {
        let error = try failingConvert(hfDir(safetensors: makeSafetensors(goodTensors), config: "{\"num_hidden_layers\": 1,"))
        #expect(error.file.hasSuffix("config.json") && error.problem.contains("invalid JSON"))
        let header = "{\"model.layers.0.x.weight\": [}"
        let headerError = try failingConvert(hfDir(safetensors: makeSafetensors(goodTensors, headerOverride: header)))
        #expect(headerError.file.hasSuffix("model.safetensors") && headerError.problem.contains("invalid JSON"))
    }

    @Test func unplaceableTensorAndMissingLayer() throws {
        let stray = goodTensors + [("some.random.thing", "F32", [1], floatBytes([1]))]
        #expect(try failingConvert(hfDir(safetensors: makeSafetensors(stray))).problem.contains("cannot place tensor 'some.random.thing'"))
        let missing = hfDir(safetensors: makeSafetensors(goodTensors), config: "{\"num_hidden_layers\": 2}")
        #expect(try failingConvert(missing).problem.contains("layer 1 has no tensors"))
    }

    @Test func ggufUnsupportedType() throws {
        var writer = GGUFWriter()
        writer.metadata = [("general.architecture", .string("llama"))]
        writer.tensors = [("token_embd.weight", [32, 1], 12, [UInt8](repeating: 0, count: 144))]  // Q4_K
        let dir = TemporaryDirectory()
        dir.write("m.gguf", writer.bytes())
        let error = try failingConvert(dir, "m.gguf")
        #expect(error.file.hasSuffix("m.gguf") && error.problem.contains("unsupported GGML type 12 (Q4_K)"))
    }

    @Test func ggufTruncatedData() throws {
        let bytes = makeLlamaGGUF().bytes
        let dir = TemporaryDirectory()
        dir.write("t.gguf", Array(bytes.dropLast(100)))
        let error = try failingConvert(dir, "t.gguf")
        #expect(error.problem.contains("past the end of the file") && error.problem.contains("truncated"))
        dir.write("h.gguf", Array(bytes.prefix(200)))
        #expect(try failingConvert(dir, "h.gguf").problem.contains("GGUF header truncated"))
    }

    @Test func ggufOtherArchitecture() throws {
        var writer = GGUFWriter()
        writer.metadata = [("general.architecture", .string("mamba"))]
        let dir = TemporaryDirectory()
        dir.write("m.gguf", writer.bytes())
        #expect(try failingConvert(dir, "m.gguf").problem.contains("GGUF architecture 'mamba' is not supported"))
    }

    @Test func failureLeavesExistingEntryIntact() throws {
        let store = TemporaryDirectory()
        _ = try Converter.convert(try Converter.loadSource(Fixtures.root + "/tiny/opt-tiny"),
                                  into: StoreDirectory(root: store.path), options: ConvertOptions(name: "bad"))
        let truncated = hfDir(safetensors: Array(makeSafetensors(goodTensors).dropLast(3)))
        _ = try failingConvert(truncated, existingStore: store)
        let entry = try StoreEntry(store: StoreDirectory(root: store.path), name: "bad")
        #expect(Verifier.verify(entry).problems.isEmpty)
    }
}

@Suite struct ManifestTests {
    func storeWithManifest(_ text: String) -> TemporaryDirectory {
        let store = TemporaryDirectory()
        try! FileManager.default.createDirectory(atPath: store.path + "/models", withIntermediateDirectories: true)
        store.write("models/m.json", Array(text.utf8))
        return store
    }

    @Test func unknownMajorVersionIsRejected() throws {
        let store = storeWithManifest("{\"format\": \"hydra-store\", \"formatVersion\": \"2.0\", \"whatever\": [1]}")
        let error = try #require(throws: FormatError.self) { try StoreEntry(store: StoreDirectory(root: store.path), name: "m") }
        #expect(error.problem.contains("format version 2.0 is not supported"))
        #expect(error.file.hasSuffix("m.json"))
    }

    @Test func newerMinorVersionIsRead() throws {
        let store = TemporaryDirectory()
        _ = try Converter.convert(try Converter.loadSource(Fixtures.root + "/tiny/llama2-tiny"),
                                  into: StoreDirectory(root: store.path), options: ConvertOptions(name: "m"))
        let path = store.path + "/models/m.json"
        var text = try String(contentsOfFile: path, encoding: .utf8)
        let current = "\"formatVersion\" : \"\(Manifest.version)\""
        #expect(text.contains(current))
        text = text.replacingOccurrences(of: current, with: "\"formatVersion\" : \"1.7\", \"futureField\" : 3")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try StoreEntry(store: StoreDirectory(root: store.path), name: "m").manifest.formatVersion == "1.7")
    }

    @Test func notAManifestAndBadNames() throws {
        let store = storeWithManifest("[1, 2]")
        #expect(throws: FormatError.self) { try StoreEntry(store: StoreDirectory(root: store.path), name: "m") }
        for name in ["../etc/passwd", "a/b", "", ".hidden", "a..b"] {
            #expect(!StoreDirectory.isValidModelName(name), "\(name)")
            #expect(throws: FormatError.self) { try StoreEntry(store: StoreDirectory(root: store.path), name: name) }
        }
        let missing = try #require(throws: FormatError.self) { try StoreEntry(store: StoreDirectory(root: store.path), name: "nope") }
        #expect(missing.problem.contains("no model 'nope'") && missing.problem.contains("has: m"))
    }

    @Test func extentOutsideChunkIsRejected() throws {
        let store = TemporaryDirectory()
        _ = try Converter.convert(try Converter.loadSource(Fixtures.root + "/tiny/llama2-tiny"),
                                  into: StoreDirectory(root: store.path), options: ConvertOptions(name: "m"))
        let path = store.path + "/models/m.json"
        var manifest = try Manifest.decode(Array(FileManager.default.contents(atPath: path)!), file: path)
        manifest.tensors[0].extents[0].offset = manifest.chunks[manifest.tensors[0].extents[0].chunk].payloadBytes
        _ = FileManager.default.createFile(atPath: path, contents: Data(try manifest.encoded()))
        let error = try #require(throws: FormatError.self) { try StoreEntry(store: StoreDirectory(root: store.path), name: "m") }
        #expect(error.problem.contains("extent outside its chunk"))
    }
}
