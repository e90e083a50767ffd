import HydraFormat

/// The tokenizer, chat template and stop tokens a store entry carries.
public enum LoadedTokenizer {
    public static func load(_ entry: StoreEntry) throws -> Tokenizer? {
        guard let json = try entry.file(named: "tokenizer.json") else { return nil }
        return try Tokenizer(tokenizerJSON: json, tokenizerConfig: try entry.file(named: "tokenizer_config.json"))
    }

    public static func chatTemplate(_ entry: StoreEntry) throws -> ChatTemplate? {
        if let jinja = try entry.file(named: "chat_template.jinja") { return ChatTemplate(template: String(decoding: jinja, as: UTF8.self)) }
        if let config = try entry.file(named: "tokenizer_config.json"),
           let template = try JSONValue.parse(config, file: "tokenizer_config.json")["chat_template"]?.stringValue {
            return ChatTemplate(template: template)
        }
        return nil
    }

    /// The tokens that end a generation: the config's and the tokenizer's end-of-sequence ids.
    public static func stopTokens(_ entry: StoreEntry, tokenizer: Tokenizer?) throws -> Set<Int> {
        var stops = Set(try ModelConfig(entry.manifest.config, name: entry.manifest.name).eosTokenIDs)
        if let eos = tokenizer?.eosTokenID { stops.insert(eos) }
        return stops
    }
}
