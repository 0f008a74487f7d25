import Foundation

/// What `tokenizer_config.json` (and `chat_template.jinja`) say about a tokenizer: its begin-,
/// end-of-sequence and padding tokens, and the chat template.
public struct TokenizerSettings: Sendable {
    public let beginOfSequence: Int32?
    public let endOfSequence: Int32
    public let padding: Int32?
    /// The Jinja chat template, when the checkpoint has one.
    public let chatTemplate: String?
    /// The token strings, for templates (`bos_token`, `eos_token`).
    public let beginOfSequenceText: String?, endOfSequenceText: String

    /// `vocabulary` maps a token string to its id; `modelConfig` (config.json) supplies
    /// `bos_token_id`/`eos_token_id` where tokenizer_config.json names none.
    init(directory: URL?, vocabulary: (String) -> Int32?, modelConfig: [String: Any]) throws(ModelError) {
        var config: [String: Any] = [:]
        let file = directory?.appendingPathComponent("tokenizer_config.json")
        if let file, FileManager.default.fileExists(atPath: file.path) {
            guard let data = try? Data(contentsOf: file),
                let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
            else { throw ModelError(message: "\(file.path): cannot be read as a JSON object") }
            config = json
        }
        func token(_ key: String) -> String? {
            if let s = config[key] as? String { return s }
            return (config[key] as? [String: Any])?["content"] as? String
        }
        func id(_ text: String?, fallback key: String) throws(ModelError) -> (Int32, String)? {
            if let text {
                guard let id = vocabulary(text) else {
                    throw ModelError(message: "tokenizer_config.json: \(text) is not in the vocabulary")
                }
                return (id, text)
            }
            let fromModel = (modelConfig[key] as? Int) ?? (modelConfig[key] as? [Int])?.first
            return fromModel.map { (Int32($0), "") }
        }
        let bos = try id(token("bos_token"), fallback: "bos_token_id")
        guard let eos = try id(token("eos_token"), fallback: "eos_token_id") else {
            throw ModelError(
                message: "the tokenizer has no end-of-sequence token: set eos_token in tokenizer_config.json")
        }
        let pad = try id(token("pad_token"), fallback: "pad_token_id")
        (beginOfSequence, beginOfSequenceText) = (bos?.0, bos?.1)
        (endOfSequence, endOfSequenceText) = (eos.0, eos.1)
        padding = pad?.0
        chatTemplate = Self.template(config["chat_template"], directory: directory)
    }

    /// The chat template, read; nil when the checkpoint has none.
    public func parsedChatTemplate() throws(TemplateError) -> ChatTemplate? {
        guard let chatTemplate else { return nil }
        return try ChatTemplate(chatTemplate)
    }

    /// The template string, a list's `default` entry, or `chat_template.jinja` beside the config.
    private static func template(_ value: Any?, directory: URL?) -> String? {
        if let s = value as? String { return s }
        if let list = value as? [[String: Any]] {
            return list.first { $0["name"] as? String == "default" }?["template"] as? String
        }
        guard let file = directory?.appendingPathComponent("chat_template.jinja") else { return nil }
        return try? String(contentsOf: file, encoding: .utf8)
    }
}
