import Foundation

/// A model type that reads itself from a directory.
public protocol LoadableModel: CausalLanguageModel {
    static func load(from directory: URL) throws(ModelError) -> Self
}

extension GPT2: LoadableModel {}
extension Llama: LoadableModel {}

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
        let config = try Self.config(url)
        model = try Self.architecture(config, url).load(from: url)
        tokenizer = try Self.tokenizer(in: url, modelConfig: config, vocabularySize: model.vocabularySize)
        guard tokenizer.vocabularySize <= model.vocabularySize else {
            throw ModelError(
                message:
                    "\(path): the tokenizer has \(tokenizer.vocabularySize) tokens but the model only \(model.vocabularySize)"
            )
        }
    }

    /// The tokenizer alone, without reading the weights (what a coordinator needs).
    public static func tokenizer(at url: URL) throws(ModelError) -> any Tokenizer {
        let config = try config(url)
        return try tokenizer(in: url, modelConfig: config, vocabularySize: config["vocab_size"] as? Int ?? 0)
    }

    /// Parameters of the model the directory holds, from its config.json alone.
    public static func parameterCount(at url: URL) throws(ModelError) -> Int { try shape(at: url).parameterCount }

    /// The directory's model shape, from config.json alone (no tokenizer, no weights).
    public static func shape(at url: URL) throws(ModelError) -> ModelShape {
        let json = try config(url)
        if try architecture(json, url) == GPT2.self {
            return ModelShape(try GPT2Config.read(url.appendingPathComponent("config.json")))
        }
        let c = try LlamaConfig.read(url.appendingPathComponent("config.json"))
        return ModelShape(
            vocabularySize: c.vocabularySize, width: c.width, mlpWidth: c.intermediateSize, layers: c.layers,
            heads: c.heads, contextLength: c.contextLength, parameterCount: c.parameterCount)
    }

    static func config(_ url: URL) throws(ModelError) -> [String: Any] {
        let configURL = url.appendingPathComponent("config.json")
        guard let data = try? Data(contentsOf: configURL),
            let config = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
        else {
            throw ModelError(
                message: "\(configURL.path): missing or not a JSON object; is \(url.path) a model directory?")
        }
        return config
    }

    /// The class that reads the directory: `model_type`, checked against `architectures`.
    static func architecture(_ config: [String: Any], _ url: URL) throws(ModelError) -> any LoadableModel.Type {
        let known =
            ["GPT2LMHeadModel", "GPT2Model"]
            + LlamaConfig.Family.allCases.flatMap {
                [$0.architecture, $0.architecture.replacingOccurrences(of: "ForCausalLM", with: "Model")]
            }
        if let unknown = (config["architectures"] as? [String])?.first(where: { !known.contains($0) }) {
            throw ModelError(
                message:
                    "\(url.path)/config.json: architecture \(unknown) is not one rlaif reads (GPT-2, Llama, Qwen2, Mistral)"
            )
        }
        return (config["model_type"] as? String ?? "gpt2") == "gpt2" ? GPT2.self : Llama.self
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

/// What memory planning needs of a model: its sizes and parameter count.
public struct ModelShape: Sendable, Equatable {
    public var vocabularySize: Int
    public var width: Int
    /// Width of the MLP's hidden layer.
    public var mlpWidth: Int
    public var layers: Int
    public var heads: Int
    public var contextLength: Int
    public var parameterCount: Int

    public init(
        vocabularySize: Int, width: Int, mlpWidth: Int, layers: Int, heads: Int, contextLength: Int,
        parameterCount: Int
    ) {
        (self.vocabularySize, self.width, self.mlpWidth) = (vocabularySize, width, mlpWidth)
        (self.layers, self.heads, self.contextLength, self.parameterCount) = (
            layers, heads, contextLength, parameterCount
        )
    }

    public init(_ c: GPT2Config) {
        self.init(
            vocabularySize: c.vocabularySize, width: c.width, mlpWidth: 4 * c.width, layers: c.layers, heads: c.heads,
            contextLength: c.contextLength, parameterCount: c.parameterCount)
    }
}
