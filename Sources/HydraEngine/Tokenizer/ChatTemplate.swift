import Foundation

/// Chat formatting for the supported families. Rather than a Jinja interpreter, the engine
/// recognises the template's family from its text and formats messages the same way:
/// ChatML (SmolLM2, with the default system prompt its template inserts), Llama-3 and Llama-2.
public struct ChatTemplate: Sendable, Equatable {
    public struct Message: Sendable, Equatable, Codable {
        public var role: String
        public var content: String
        public init(role: String, content: String) {
            self.role = role
            self.content = content
        }
    }

    public enum Style: Sendable, Equatable {
        case chatML(defaultSystem: String?)
        case llama3
        case llama2
    }

    public let style: Style

    public init(style: Style) { self.style = style }

    /// Recognises a Jinja chat template; nil when it matches no supported family.
    public init?(template: String) {
        if template.contains("<|im_start|>") {
            // SmolLM2's template opens with a fixed system message when the chat has none
            // (its newline is a real one in chat_template.jinja, an escaped one in JSON-escaped copies).
            let pattern = #"<\|im_start\|>system(?:\\n|\n)(.*?)<\|im_end\|>"#
            var system: String?
            if let regex = try? NSRegularExpression(pattern: pattern, options: .dotMatchesLineSeparators),
               let match = regex.firstMatch(in: template, range: NSRange(template.startIndex..., in: template)),
               let range = Range(match.range(at: 1), in: template), template.contains("!= 'system'") {
                system = String(template[range])
            }
            style = .chatML(defaultSystem: system)
        } else if template.contains("<|start_header_id|>") {
            style = .llama3
        } else if template.contains("[INST]") {
            style = .llama2
        } else {
            return nil
        }
    }

    public func render(_ messages: [Message], addGenerationPrompt: Bool = true) -> String {
        switch style {
        case .chatML(let defaultSystem):
            var all = messages
            if let defaultSystem, all.first?.role != "system" { all.insert(Message(role: "system", content: defaultSystem), at: 0) }
            var text = all.map { "<|im_start|>\($0.role)\n\($0.content)<|im_end|>\n" }.joined()
            if addGenerationPrompt { text += "<|im_start|>assistant\n" }
            return text
        case .llama3:
            var text = "<|begin_of_text|>"
            for message in messages {
                text += "<|start_header_id|>\(message.role)<|end_header_id|>\n\n\(message.content.trimmingCharacters(in: .whitespacesAndNewlines))<|eot_id|>"
            }
            if addGenerationPrompt { text += "<|start_header_id|>assistant<|end_header_id|>\n\n" }
            return text
        case .llama2:
            // The system prompt folds into the first user turn; each exchange is <s>[INST] … [/INST] … </s>.
            var text = ""
            var system: String?
            for message in messages {
                switch message.role {
                case "system": system = message.content
                case "user":
                    var content = message.content.trimmingCharacters(in: .whitespaces)
                    if let s = system { content = "<<SYS>>\n\(s)\n<</SYS>>\n\n" + content; system = nil }
                    text += "<s>[INST] \(content) [/INST]"
                default:
                    text += " \(message.content.trimmingCharacters(in: .whitespaces)) </s>"
                }
            }
            return text
        }
    }
}
