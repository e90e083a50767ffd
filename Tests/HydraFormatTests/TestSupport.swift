import Foundation
import HydraFormat

/// Paths and scratch folders for the tests.
enum Fixtures {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures").path

    /// Every tiny fixture directory, dtype variants included.
    static let tinyModels: [String] = {
        let names = ["opt-tiny", "opt-tiny-postln", "llama2-tiny", "llama3-tiny", "falcon-7b-tiny", "falcon-40b-tiny"]
        var dirs: [String] = []
        for name in names {
            for variant in ["", "/bfloat16", "/float16"] {
                let dir = root + "/tiny/" + name + variant
                if FileManager.default.fileExists(atPath: dir + "/model.safetensors") { dirs.append(dir) }
            }
        }
        return dirs
    }()
}

/// A temporary folder removed when the value goes away.
final class TemporaryDirectory {
    let path: String

    init() {
        path = NSTemporaryDirectory() + "hydra-test-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// Every regular file below the folder, relative paths, sorted.
    func files(under sub: String = "") -> [String] {
        let base = sub.isEmpty ? path : path + "/" + sub
        guard let walker = FileManager.default.enumerator(atPath: base) else { return [] }
        var out: [String] = []
        while let item = walker.nextObject() as? String {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: base + "/" + item, isDirectory: &isDir), !isDir.boolValue { out.append(item) }
        }
        return out.sorted()
    }

    func write(_ name: String, _ bytes: [UInt8]) {
        _ = FileManager.default.createFile(atPath: path + "/" + name, contents: Data(bytes))
    }
}

/// Reads a safetensors file with nothing but JSONSerialization: an independent oracle for the
/// converter's own parser.
func referenceSafetensors(_ path: String) -> [String: (dtype: String, shape: [Int], bytes: [UInt8])] {
    let data = [UInt8](FileManager.default.contents(atPath: path)!)
    let headerLength = data[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
    let header = try! JSONSerialization.jsonObject(with: Data(data[8..<(8 + headerLength)])) as! [String: Any]
    var out: [String: (String, [Int], [UInt8])] = [:]
    for (name, value) in header where name != "__metadata__" {
        let info = value as! [String: Any]
        let offsets = info["data_offsets"] as! [Int]
        let start = 8 + headerLength
        out[name] = (info["dtype"] as! String, info["shape"] as! [Int], Array(data[(start + offsets[0])..<(start + offsets[1])]))
    }
    return out
}

/// Builds a safetensors file from (name, dtype, shape, bytes).
func makeSafetensors(_ tensors: [(String, String, [Int], [UInt8])], headerOverride: String? = nil) -> [UInt8] {
    var offset = 0
    var entries: [String] = []
    var body: [UInt8] = []
    for (name, dtype, shape, bytes) in tensors {
        entries.append("\"\(name)\":{\"dtype\":\"\(dtype)\",\"shape\":\(shape),\"data_offsets\":[\(offset),\(offset + bytes.count)]}")
        offset += bytes.count
        body += bytes
    }
    let header = Array((headerOverride ?? "{" + entries.joined(separator: ",") + "}").utf8)
    var out: [UInt8] = []
    var length = UInt64(header.count)
    for _ in 0..<8 { out.append(UInt8(length & 0xFF)); length >>= 8 }
    return out + header + body
}

func floatBytes(_ values: [Float]) -> [UInt8] {
    values.withUnsafeBytes { Array($0) }
}

func floats(_ bytes: [UInt8]) -> [Float] {
    bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
}

/// A minimal llama-shaped Hugging Face directory: `layers` layers of small f32 tensors.
func makeTinyLlama(in dir: TemporaryDirectory, layers: Int = 2, hidden: Int = 8, identicalLayers: Bool = false) {
    var tensors: [(String, String, [Int], [UInt8])] = []
    func values(_ count: Int, seed: Int) -> [UInt8] { floatBytes((0..<count).map { Float(($0 * 31 + seed * 17) % 97) / 97 }) }
    tensors.append(("model.embed_tokens.weight", "F32", [16, hidden], values(16 * hidden, seed: 1)))
    for layer in 0..<layers {
        let seed = identicalLayers ? 5 : 10 + layer
        tensors.append(("model.layers.\(layer).self_attn.q_proj.weight", "F32", [hidden, hidden], values(hidden * hidden, seed: seed)))
        tensors.append(("model.layers.\(layer).input_layernorm.weight", "F32", [hidden], values(hidden, seed: seed + 1)))
    }
    tensors.append(("model.norm.weight", "F32", [hidden], values(hidden, seed: 3)))
    dir.write("model.safetensors", makeSafetensors(tensors))
    dir.write("config.json", Array("{\"model_type\":\"llama\",\"num_hidden_layers\":\(layers),\"hidden_size\":\(hidden)}".utf8))
}
