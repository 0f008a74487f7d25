import Foundation
import Testing

@testable import Models

/// Chat templates against transformers' apply_chat_template: fixtures made by
/// tools/make_chat_template_reference.py (ChatML, Llama 3, Zephyr, a Mistral-style template
/// that raises, one using namespace, loop filters and tojson; five conversations each, with and
/// without the generation prompt).
@Suite struct ChatTemplateTests {
    struct Fixture: Decodable {
        struct Case: Decodable {
            let template: String
            let messages: [ChatMessage]
            let add_generation_prompt: Bool
            let expected: String?
            let error: Bool?
        }
        let bos_token: String, eos_token: String
        let templates: [String: String]
        let cases: [Case]
    }

    static let fixture: Fixture = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures/chat-templates.json")
        return try! JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
    }()

    @Test(arguments: ["chatml", "llama3", "zephyr", "mistral", "namespace"])
    func rendering_equalsTransformers(template name: String) throws {
        let f = Self.fixture
        let template = try ChatTemplate(f.templates[name]!)
        let cases = f.cases.filter { $0.template == name }
        #expect(cases.count == 10)
        for c in cases {
            let render = { () throws(TemplateError) -> String in
                try template.render(
                    messages: c.messages, addGenerationPrompt: c.add_generation_prompt, beginOfSequence: f.bos_token,
                    endOfSequence: f.eos_token)
            }
            if c.error == true {
                #expect(throws: TemplateError.self) { try render() }
            } else {
                let text = try render()
                #expect(text == c.expected, "\(name), \(c.messages.count) messages, prompt \(c.add_generation_prompt)")
            }
        }
    }

    @Test func raiseException_carriesTheTemplatesMessage() throws {
        let template = try ChatTemplate("{{ raise_exception('roles must alternate') }}")
        #expect {
            _ = try template.render(messages: [], addGenerationPrompt: false)
        } throws: { ($0 as? TemplateError)?.message.contains("roles must alternate") == true }
    }

    /// What the subset does not implement is refused by name, never rendered differently.
    @Test(arguments: [
        ("{% macro m() %}x{% endmacro %}", "{% macro %} is not supported"),
        ("{% generation %}x{% endgeneration %}", "{% generation %} is not supported"),
        ("{{ messages | wordcount }}", "filter |wordcount is not supported"),
        ("{{ strftime_now('%Y') }}", "function strftime_now() is not supported"),
        ("{% if true %}never closed", "{% if %} is never closed"),
        ("{{ 'a' is palindrome }}", "test 'is palindrome' is not supported"),
    ])
    func unsupportedConstructs_areRefusedByName(source: String, message: String) {
        #expect {
            _ = try ChatTemplate(source).render(
                messages: [ChatMessage(role: "user", content: "x")], addGenerationPrompt: true)
        } throws: { ($0 as? TemplateError)?.message.contains(message) == true }
    }

    @Test func whitespaceControl_followsTrimAndLstripBlocks() throws {
        let source = "A\n  {% if true %}\n    B\n  {%- endif %}\n{{- ' C' }}\n{# note #}\nD {%+ if true %}E{% endif %}"
        let text = try ChatTemplate(source).render(messages: [], addGenerationPrompt: false)
        #expect(text == "A\n    B C\nD E")
    }
}
