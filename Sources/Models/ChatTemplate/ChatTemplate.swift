/// One turn of a conversation, as `{"role": …, "content": …}` in the data and in templates.
public struct ChatMessage: Sendable, Equatable, Codable {
    public var role: String
    public var content: String

    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }
}

/// A checkpoint's chat template (`tokenizer_config.json`'s `chat_template`): the subset of Jinja
/// that real templates use, rendered as transformers' `apply_chat_template(tokenize=False)`
/// renders it (`trim_blocks` and `lstrip_blocks` on). `for` (with `loop.*`, `else`, a filter),
/// `if`/`elif`/`else`, `set` (with `namespace`), `break`/`continue`, Python's string and dict
/// methods, Jinja's common filters and tests, and `raise_exception`. Anything else — macros,
/// `{% generation %}`, unknown filters — is refused by name when read or rendered.
public struct ChatTemplate: Sendable {
    public let source: String
    private let nodes: [TemplateNode]

    public init(_ source: String) throws(TemplateError) {
        self.source = source
        nodes = try TemplateParser.parse(source)
    }

    /// The prompt text for `messages`; with `addGenerationPrompt`, ending where the assistant's
    /// reply begins. `extra` adds variables (a template may read e.g. `tools` or `date_string`).
    public func render(
        messages: [ChatMessage], addGenerationPrompt: Bool, beginOfSequence: String? = nil,
        endOfSequence: String? = nil, extra: [String: TemplateValue] = [:]
    ) throws(TemplateError) -> String {
        var globals: [String: TemplateValue] = [
            "messages": .list(
                messages.map { .dict(TemplateDict([("role", .string($0.role)), ("content", .string($0.content))])) }),
            "add_generation_prompt": .bool(addGenerationPrompt),
        ]
        if let beginOfSequence { globals["bos_token"] = .string(beginOfSequence) }
        if let endOfSequence { globals["eos_token"] = .string(endOfSequence) }
        globals.merge(extra) { $1 }
        var evaluator = TemplateEvaluator(globals: globals)
        _ = try evaluator.run(nodes)
        return evaluator.output
    }
}

extension TemplateNode: @unchecked Sendable {}
