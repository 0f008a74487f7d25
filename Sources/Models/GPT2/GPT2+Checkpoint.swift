import Foundation
import Tensor

/// Hugging Face layout on disk: `config.json` + `model.safetensors`, parameter names as
/// `GPT2LMHeadModel.save_pretrained` writes them.
extension GPT2 {
    /// Loads a directory written by transformers or by `save(to:)`. Names may carry the
    /// `transformer.` prefix (GPT2LMHeadModel) or not (GPT2Model); the tied `lm_head.weight` and the
    /// attention-mask buffers older versions saved are skipped. Any other problem names the tensor.
    public static func load(from directory: URL) throws(ModelError) -> GPT2 {
        let config = try GPT2Config.read(directory.appendingPathComponent("config.json"))
        let file: SafeTensors
        do { file = try SafeTensors.read(directory.appendingPathComponent("model.safetensors")) } catch {
            throw ModelError(message: error.description)
        }
        let model = try GPT2(zeroedFor: config)
        var expected = Dictionary(uniqueKeysWithValues: model.namedParameters.map { ($0.0, $0.1) })
        for name in file.entries.keys.sorted() {
            let canonical = name.hasPrefix("transformer.") || name == "lm_head.weight" ? name : "transformer." + name
            if canonical == "lm_head.weight" || canonical.hasSuffix(".attn.bias")
                || canonical.hasSuffix(".attn.masked_bias")
            {
                continue
            }
            guard let parameter = expected.removeValue(forKey: canonical) else {
                throw ModelError(
                    message: "\(file.file): tensor \(name) is not a parameter of GPT-2 with \(config.layers) layers")
            }
            do { parameter.value.assign(try file.float32(name, shape: parameter.shape)) } catch {
                throw ModelError(message: error.description)
            }
        }
        if let missing = expected.keys.sorted().first {
            throw ModelError(message: "\(file.file): tensor \(missing) is missing")
        }
        return model
    }

    /// The `config.json` `GPT2LMHeadModel.from_pretrained` reads (see `GPT2Config.jsonObject`).
    public func configObject(endOfText: Int32?) -> [String: Any] { config.jsonObject(endOfText: endOfText) }
    public var sequenceClassificationArchitecture: String { "GPT2ForSequenceClassification" }
}
