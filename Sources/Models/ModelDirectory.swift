import Foundation

/// A model directory in Hugging Face's layout: `config.json`, `model.safetensors`, and tokenizer
/// files (`vocab.json` + `merges.txt`). A model without tokenizer files whose vocabulary is the
/// byte tokenizer's size uses the byte tokenizer.
public struct ModelDirectory: Sendable {
    public let url: URL
    public let model: GPT2
    public let tokenizer: any Tokenizer

    public init(_ path: String) throws(ModelError) {
        url = URL(fileURLWithPath: path)
        model = try GPT2.load(from: url)
        let vocab = url.appendingPathComponent("vocab.json"), merges = url.appendingPathComponent("merges.txt")
        if FileManager.default.fileExists(atPath: vocab.path) && FileManager.default.fileExists(atPath: merges.path) {
            tokenizer = try BPETokenizer(vocabulary: vocab, merges: merges)
        } else if model.config.vocabularySize == ByteTokenizer().vocabularySize {
            tokenizer = ByteTokenizer()
        } else {
            throw ModelError(
                message: "\(path) has no tokenizer: add vocab.json and merges.txt (as transformers saves them)")
        }
        guard tokenizer.vocabularySize <= model.config.vocabularySize else {
            throw ModelError(
                message:
                    "\(path): the tokenizer has \(tokenizer.vocabularySize) tokens but the model only \(model.config.vocabularySize)"
            )
        }
    }
}
