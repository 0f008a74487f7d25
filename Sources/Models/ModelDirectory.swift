import Foundation

/// A model directory in Hugging Face's layout: `config.json`, `model.safetensors` (or shards with
/// an index), and tokenizer files. `model_type` picks the architecture (gpt2, llama, qwen2,
/// mistral). The tokenizer is `tokenizer.json` where present, else GPT-2's `vocab.json` +
/// `merges.txt`; a model without tokenizer files whose vocabulary is the byte tokenizer's size
/// uses the byte tokenizer.
public struct ModelDirectory: Sendable {
    public let url: URL
    public let model: any CausalLanguageModel
    public let tokenizer: any Tokenizer

    public init(_ path: String) throws(ModelError) {
        url = URL(fileURLWithPath: path)
        let configURL = url.appendingPathComponent("config.json")
        guard let data = try? Data(contentsOf: configURL),
            let config = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
        else { throw ModelError(message: "\(configURL.path): missing or not a JSON object") }
        let type = config["model_type"] as? String ?? "gpt2"
        model = type == "gpt2" ? try GPT2.load(from: url) : try Llama.load(from: url)
        tokenizer = try Self.tokenizer(in: url, modelConfig: config, vocabularySize: model.vocabularySize)
        guard tokenizer.vocabularySize <= model.vocabularySize else {
            throw ModelError(
                message:
                    "\(path): the tokenizer has \(tokenizer.vocabularySize) tokens but the model only \(model.vocabularySize)"
            )
        }
    }

    static func tokenizer(in url: URL, modelConfig: [String: Any], vocabularySize: Int) throws(ModelError)
        -> any Tokenizer
    {
        let fm = FileManager.default
        if fm.fileExists(atPath: url.appendingPathComponent("tokenizer.json").path) {
            return try HuggingFaceTokenizer(directory: url, modelConfig: modelConfig)
        }
        let vocab = url.appendingPathComponent("vocab.json"), merges = url.appendingPathComponent("merges.txt")
        if fm.fileExists(atPath: vocab.path) && fm.fileExists(atPath: merges.path) {
            return try BPETokenizer(vocabulary: vocab, merges: merges)
        }
        if vocabularySize == ByteTokenizer().vocabularySize { return ByteTokenizer() }
        throw ModelError(
            message: "\(url.path) has no tokenizer: add tokenizer.json, or vocab.json and merges.txt")
    }
}
