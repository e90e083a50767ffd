import ArgumentParser
import HydraEngine
import HydraFormat

/// How a command takes its prompt: text (through the entry's tokenizer, optionally in its chat
/// template) or token ids.
struct PromptOptions: ParsableArguments {
    @Option(help: "Prompt text (encoded with the entry's tokenizer).") var prompt: String?
    @Option(name: .customLong("prompt-ids"), help: "Prompt as comma-separated token ids.") var promptIDs: String?
    @Flag(help: "Wrap the prompt as a user message in the model's chat template.") var chat = false

    func validate() throws {
        guard (prompt == nil) != (promptIDs == nil) else { throw ValidationError("give exactly one of --prompt and --prompt-ids") }
        if chat && promptIDs != nil { throw ValidationError("--chat needs --prompt text") }
    }

    /// The prompt's token ids.
    func encode(_ entry: StoreEntry, tokenizer: Tokenizer?) throws -> [Int] {
        if let promptIDs {
            return try promptIDs.split(separator: ",").map {
                guard let id = Int($0.trimmingCharacters(in: .whitespaces)) else { throw ValidationError("--prompt-ids: '\($0)' is not an integer") }
                return id
            }
        }
        guard let tokenizer else { throw EngineError("entry '\(entry.manifest.name)' carries no tokenizer.json: use --prompt-ids") }
        var text = prompt!
        if chat {
            guard let template = try LoadedTokenizer.chatTemplate(entry) else {
                throw EngineError("entry '\(entry.manifest.name)' has no chat template of a supported family (ChatML, Llama-2, Llama-3)")
            }
            text = template.render([ChatTemplate.Message(role: "user", content: text)])
        }
        return tokenizer.encode(text)
    }
}
