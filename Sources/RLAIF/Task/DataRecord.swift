import Models

/// One line of a prompt or demonstration file, in the forms TRL and the hub use: `{"prompt":
/// text}`, `{"prompt": text, "completion": text}`, conversational `{"messages": [turns]}`,
/// and `{"prompt": [turns]}` / `{"prompt": [turns], "completion": [turns]}`.
struct DataRecord: Decodable {
    enum Content {
        case text(String)
        case conversation([ChatMessage])
    }

    let prompt: Content?
    let completion: Content?
    let messages: [ChatMessage]?

    enum CodingKeys: String, CodingKey { case prompt, completion, messages }

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
            switch completion {
            case .text(let text): return (asked, text)
            case .conversation(let turns):
                try check(turns, key: key, at: place)
                guard !turns.isEmpty, turns.allSatisfy({ $0.role == "assistant" }) else {
                    throw Self.fail(key, place, "a completion's turns must all be the assistant's")
                }
                return (asked, turns.map(\.content).joined())
            }
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
    }
}
