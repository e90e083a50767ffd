import Foundation

/// Reads a Hugging Face model directory: config.json, model.safetensors or a sharded
/// model.safetensors.index.json, and the tokenizer files.
public enum HuggingFaceSource {
    /// Files carried into the store verbatim when present.
    public static let carriedFiles = [
        "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
        "special_tokens_map.json", "chat_template.jinja", "chat_template.json",
    ]

    public static func load(directory: String) throws -> SourceModel {
        let fm = FileManager.default
        let configPath = directory + "/config.json"
        guard let configBytes = fm.contents(atPath: configPath) else {
            throw FormatError(configPath, "missing config.json: a Hugging Face model directory needs one")
        }
        let config = try JSONValue.parse(Array(configBytes), file: configPath)
        guard case .object = config else { throw FormatError(configPath, "config.json is not a JSON object") }

        var files: [(name: String, bytes: [UInt8])] = []
        for name in carriedFiles {
            if let bytes = fm.contents(atPath: directory + "/" + name) {
                if name.hasSuffix(".json") { _ = try JSONValue.parse(Array(bytes), file: directory + "/" + name) }
                files.append((name, Array(bytes)))
            }
        }

        let tensors = try loadTensors(directory: directory)
        let bytes = tensors.reduce(0) { $0 + $1.elementCount * $1.sourceType.elementBytes }
        return SourceModel(kind: .safetensors, config: config, files: files, tensors: tensors, sourceBytes: bytes)
    }

    static func loadTensors(directory: String) throws -> [SourceTensor] {
        let single = directory + "/model.safetensors"
        let index = directory + "/model.safetensors.index.json"
        let fm = FileManager.default
        if fm.fileExists(atPath: single) {
            return try SafetensorsFile(path: single).sourceTensors()
        }
        guard let indexBytes = fm.contents(atPath: index) else {
            throw FormatError(directory, "no model.safetensors or model.safetensors.index.json")
        }
        guard case .object(let weightMap)? = try JSONValue.parse(Array(indexBytes), file: index)["weight_map"] else {
            throw FormatError(index, "missing weight_map object")
        }
        var shardOf: [String: String] = [:]
        for (name, value) in weightMap {
            guard let shard = value.stringValue, !shard.contains("/"), !shard.hasPrefix(".") else {
                throw FormatError(index, "weight_map entry '\(name)' must name a shard file in the same directory")
            }
            shardOf[name] = shard
        }
        var tensors: [SourceTensor] = []
        for shard in Set(shardOf.values).sorted() {
            let file = try SafetensorsFile(path: directory + "/" + shard)
            for tensor in file.sourceTensors() where shardOf[tensor.name] == shard {
                tensors.append(tensor)
                shardOf[tensor.name] = nil
            }
        }
        if let missing = shardOf.keys.sorted().first {
            throw FormatError(index, "tensor '\(missing)' is mapped to \(shardOf[missing]!) but that shard does not hold it")
        }
        return tensors
    }
}
