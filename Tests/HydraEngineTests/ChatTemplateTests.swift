import Testing
@testable import HydraEngine

@Suite struct ChatTemplateTests {
    let messages = [ChatTemplate.Message(role: "system", content: "Be brief."), ChatTemplate.Message(role: "user", content: "Hi!")]

    @Test func llama3Format() throws {
        let template = try #require(ChatTemplate(template: "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' }}"))
        #expect(template.style == .llama3)
        #expect(template.render(messages) ==
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>" +
            "<|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")
    }

    @Test func llama2Format() throws {
        let template = try #require(ChatTemplate(template: "{{ bos_token + '[INST] ' + content + ' [/INST]' }}"))
        #expect(template.style == .llama2)
        let chat = messages + [ChatTemplate.Message(role: "assistant", content: "Hello."), ChatTemplate.Message(role: "user", content: "Bye")]
        #expect(template.render(chat) == "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi! [/INST] Hello. </s><s>[INST] Bye [/INST]")
    }

    @Test func chatMLWithoutDefaultSystem() throws {
        let template = try #require(ChatTemplate(template: "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n'}}"))
        #expect(template.style == .chatML(defaultSystem: nil))
        #expect(template.render([ChatTemplate.Message(role: "user", content: "Hi")]) == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
        #expect(ChatTemplate(template: "{{ messages | tojson }}") == nil)
    }
}
