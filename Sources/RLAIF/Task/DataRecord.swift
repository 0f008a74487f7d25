import Models

/// One line of a prompt or demonstration file, in the forms TRL and the hub use: `{"prompt":
/// text}`, `{"prompt": text, "completion": text}`, conversational `{"messages": [turns]}`,
/// and `{"prompt": [turns]}` / `{"prompt": [turns], "completion": [turns]}`; preference lines
/// add `"chosen"` and `"rejected"` (text, assistant turns, or whole conversations whose shared
/// beginning is the prompt).
struct DataRecord: Decodable {
    enum Content {
        case text(String)
        case conversation([ChatMessage])
    }

    let prompt: Content?
    let completion: Content?
    let messages: [ChatMessage]?
    let chosen: Content?
    let rejected: Content?

    enum CodingKeys: String, CodingKey { case prompt, completion, messages, chosen, rejected }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func content(_ key: CodingKeys) throws -> Content? {
            guard c.contains(key) else { return nil }
            if let text = try? c.decode(String.self, forKey: key) { return .text(text) }
            return .conversation(try c.decode([ChatMessage].self, forKey: key))
        }
        prompt = try content(.prompt)
        completion = try content(.completion)
        messages = try c.decodeIfPresent([ChatMessage].self, forKey: .messages)
        chosen = try content(.chosen)
        rejected = try content(.rejected)
    }
}

/// Turns records into the text the model sees: plain text as it is, conversations through the
/// checkpoint's chat template (prompts with the generation prompt, so the response follows).
struct ConversationRenderer {
    let template: ChatTemplate?
    let beginOfSequence: String?, endOfSequence: String?

    static let roles: Set<String> = ["system", "user", "assistant", "tool"]

    init(tokenizer: any Tokenizer) {
        let settings = (tokenizer as? HuggingFaceTokenizer)?.settings
        template = try? settings?.parsedChatTemplate()  // a bad template was refused with model.init
        beginOfSequence = settings?.beginOfSequenceText
        endOfSequence = settings?.endOfSequenceText
    }

    /// A prompt file's line: text, or a conversation up to its last non-assistant turn.
    func prompt(_ record: DataRecord, key: String, at place: String) throws(JSONLTask.LoadError) -> String {
        switch (record.prompt, record.messages) {
        case (.text(let text)?, _): return text
        case (.conversation(let turns)?, _): return try render(turns, key: key, at: place)
        case (nil, let turns?):
            let asked = Array(turns.reversed().drop { $0.role == "assistant" }.reversed())
            return try render(asked, key: key, at: place)
        default:
            throw Self.fail(key, place, "missing \"prompt\" (text or a list of turns) or \"messages\"")
        }
    }

    /// A demonstration's line: its prompt as `prompt` renders it, and the reply to train on.
    func demonstration(_ record: DataRecord, key: String, at place: String) throws(JSONLTask.LoadError) -> (
        prompt: String, completion: String
    ) {
        switch (record.prompt, record.completion, record.messages) {
        case (let prompt?, let completion?, _):
            let asked = try self.prompt(DataRecord(prompt: prompt), key: key, at: place)
            return (asked, try reply(completion, key: key, at: place))
        case (nil, nil, let turns?):
            try check(turns, key: key, at: place)
            guard let last = turns.last, last.role == "assistant", turns.count > 1 else {
                throw Self.fail(key, place, "\"messages\" must end with an assistant turn after the user's")
            }
            return (try render(Array(turns.dropLast()), key: key, at: place), last.content)
        case (_?, nil, nil): throw Self.fail(key, place, "missing \"completion\"")
        default:
            throw Self.fail(
                key, place, "missing \"prompt\" and \"completion\", or \"messages\" ending with an assistant turn")
        }
    }

    /// A preference line: its prompt as `prompt` renders it, and the preferred and the other
    /// reply. Without a prompt, chosen and rejected are whole conversations that differ in their
    /// last (assistant) turn only, and the turns before it are the prompt (TRL's implicit prompt).
    func preference(_ record: DataRecord, key: String, at place: String) throws(JSONLTask.LoadError) -> PreferencePair {
        guard let chosen = record.chosen, let rejected = record.rejected else {
            throw Self.fail(key, place, "a preference line needs \"chosen\" and \"rejected\"")
        }
        if let prompt = record.prompt {
            let asked = try self.prompt(DataRecord(prompt: prompt), key: key, at: place)
            return PreferencePair(
                prompt: asked, chosen: try reply(chosen, key: key, at: place),
                rejected: try reply(rejected, key: key, at: place))
        }
        guard case .conversation(let a) = chosen, case .conversation(let b) = rejected else {
            throw Self.fail(key, place, "text \"chosen\" and \"rejected\" need a \"prompt\"")
        }
        try check(a + b, key: key, at: place)
        guard let last = a.last, let other = b.last, last.role == "assistant", other.role == "assistant",
            a.count > 1, Array(a.dropLast()) == Array(b.dropLast())
        else {
            throw Self.fail(
                key, place,
                "without a \"prompt\", \"chosen\" and \"rejected\" must be the same conversation up to a last, "
                    + "assistant turn")
        }
        return PreferencePair(
            prompt: try render(Array(a.dropLast()), key: key, at: place), chosen: last.content,
            rejected: other.content)
    }

    /// A completion, chosen or rejected reply: text, or assistant turns joined.
    private func reply(_ content: DataRecord.Content, key: String, at place: String) throws(JSONLTask.LoadError)
        -> String
    {
        switch content {
        case .text(let text): return text
        case .conversation(let turns):
            try check(turns, key: key, at: place)
            guard !turns.isEmpty, turns.allSatisfy({ $0.role == "assistant" }) else {
                throw Self.fail(key, place, "a reply's turns must all be the assistant's")
            }
            return turns.map(\.content).joined()
        }
    }

    private func check(_ turns: [ChatMessage], key: String, at place: String) throws(JSONLTask.LoadError) {
        if let bad = turns.first(where: { !Self.roles.contains($0.role) }) {
            throw Self.fail(key, place, "unknown role \"\(bad.role)\" (system, user, assistant or tool)")
        }
    }

    private func render(_ turns: [ChatMessage], key: String, at place: String) throws(JSONLTask.LoadError)
        -> String
    {
        try check(turns, key: key, at: place)
        guard !turns.isEmpty else { throw Self.fail(key, place, "the conversation has no turn to answer") }
        guard let template else {
            throw Self.fail(
                key, place,
                "conversational data needs a chat template: start from a checkpoint (model.init) whose "
                    + "tokenizer_config.json has chat_template, or write the prompt as text")
        }
        do {
            return try template.render(
                messages: turns, addGenerationPrompt: true, beginOfSequence: beginOfSequence,
                endOfSequence: endOfSequence)
        } catch { throw Self.fail(key, place, error.message) }
    }

    static func fail(_ key: String, _ place: String, _ message: String) -> JSONLTask.LoadError {
        JSONLTask.LoadError(key: key, message: "\(place): \(message)")
    }
}

extension DataRecord {
    init(prompt: Content) {
        self.prompt = prompt
        completion = nil
        messages = nil
        chosen = nil
        rejected = nil
    }
}
