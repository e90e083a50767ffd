/// Rebuilds Hugging Face tokenizer files from a GGUF vocabulary (byte-level BPE, `gpt2` model).
enum GGUFTokenizer {
    /// GGUF token types.
    static let controlType = 3, userDefinedType = 4

    static func files(gguf: GGUFFile, path: String) throws -> [(name: String, bytes: [UInt8])] {
        let meta = gguf.metadata
        guard let tokens = meta["tokenizer.ggml.tokens"]?.arrayValue?.compactMap(\.stringValue) else {
            throw FormatError(path, "GGUF has no tokenizer.ggml.tokens: cannot build a tokenizer")
        }
        let model = meta["tokenizer.ggml.model"]?.stringValue ?? "(none)"
        guard model == "gpt2" else {
            throw FormatError(path, "GGUF tokenizer model '\(model)' is not supported (supported: gpt2 byte-level BPE)")
        }
        let types = meta["tokenizer.ggml.token_type"]?.arrayValue?.compactMap(\.intValue) ?? []
        let merges = meta["tokenizer.ggml.merges"]?.arrayValue?.compactMap(\.stringValue) ?? []

        var vocab: [String: JSONValue] = [:]
        var added: [JSONValue] = []
        for (id, token) in tokens.enumerated() {
            vocab[token] = .int(Int64(id))
            let type = id < types.count ? types[id] : 1
            if type == controlType || type == userDefinedType {
                added.append(.object([
                    "id": .int(Int64(id)), "content": .string(token), "single_word": .bool(false),
                    "lstrip": .bool(false), "rstrip": .bool(false), "normalized": .bool(type == userDefinedType),
                    "special": .bool(type == controlType),
                ]))
            }
        }
        let mergePairs: [JSONValue] = try merges.map { merge in
            let parts = merge.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2 else { throw FormatError(path, "GGUF merge '\(merge)' is not two tokens separated by a space") }
            return .array([.string(String(parts[0])), .string(String(parts[1]))])
        }
        let byteLevel: [String: JSONValue] = [
            "type": .string("ByteLevel"), "add_prefix_space": .bool(false), "trim_offsets": .bool(true), "use_regex": .bool(true),
        ]
        var decoder = byteLevel
        decoder["add_prefix_space"] = .bool(true)
        let tokenizer: JSONValue = .object([
            "version": .string("1.0"), "truncation": .null, "padding": .null,
            "added_tokens": .array(added), "normalizer": .null,
            "pre_tokenizer": .object(byteLevel), "post_processor": .null, "decoder": .object(decoder),
            "model": .object([
                "type": .string("BPE"), "dropout": .null, "unk_token": .null,
                "continuing_subword_prefix": .string(""), "end_of_word_suffix": .string(""),
                "fuse_unk": .bool(false), "byte_fallback": .bool(false), "ignore_merges": .bool(false),
                "vocab": .object(vocab), "merges": .array(mergePairs),
            ]),
        ])

        var tokenizerConfig: [String: JSONValue] = [
            "add_bos_token": .bool(meta["tokenizer.ggml.add_bos_token"]?.boolValue ?? false),
            "add_eos_token": .bool(meta["tokenizer.ggml.add_eos_token"]?.boolValue ?? false),
            "tokenizer_class": .string("PreTrainedTokenizerFast"),
        ]
        if let context = meta["llama.context_length"]?.intValue { tokenizerConfig["model_max_length"] = .int(Int64(context)) }
        for (key, name) in [("bos", "bos_token"), ("eos", "eos_token"), ("unknown", "unk_token"), ("padding", "pad_token")] {
            if let id = meta["tokenizer.ggml.\(key)_token_id"]?.intValue, id >= 0, id < tokens.count {
                tokenizerConfig[name] = .string(tokens[id])
            }
        }
        var files: [(name: String, bytes: [UInt8])] = [("tokenizer.json", try tokenizer.encoded())]
        if let template = meta["tokenizer.chat_template"]?.stringValue {
            tokenizerConfig["chat_template"] = .string(template)
            files.append(("chat_template.jinja", Array(template.utf8)))
        }
        files.append(("tokenizer_config.json", try JSONValue.object(tokenizerConfig).encoded(pretty: true)))
        return files
    }
}
