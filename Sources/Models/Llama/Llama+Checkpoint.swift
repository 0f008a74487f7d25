import Foundation
import Tensor

/// Hugging Face layout on disk: `config.json` + `model.safetensors` (or sharded with an index),
/// names as `LlamaForCausalLM` / `Qwen2ForCausalLM` / `MistralForCausalLM` save them.
extension Llama {
    /// Loads a directory written by transformers or by `save(to:)`. Names may carry the `model.`
    /// prefix (…ForCausalLM) or not (the bare model); a tied `lm_head.weight` and rotary buffers
    /// older versions saved are skipped. Any other problem names the tensor.
    public static func load(from directory: URL) throws(ModelError) -> Llama {
        let config = try LlamaConfig.read(directory.appendingPathComponent("config.json"))
        let files = try CheckpointFiles(directory: directory)
        let model = try Llama(zeroedFor: config)
        var expected = Dictionary(uniqueKeysWithValues: model.namedParameters.map { ($0.0, $0.1) })
        for name in files.names {
            let canonical = name.hasPrefix("model.") || name == "lm_head.weight" ? name : "model." + name
            if canonical.hasSuffix(".rotary_emb.inv_freq") || (canonical == "lm_head.weight" && config.tiedEmbeddings) {
                continue
            }
            guard let parameter = expected.removeValue(forKey: canonical) else {
                throw ModelError(
                    message:
                        "\(directory.path): tensor \(name) is not a parameter of \(config.family.architecture) as config.json describes it"
                )
            }
            parameter.value.assign(try files.float32(name, shape: parameter.shape))
        }
        if let missing = expected.keys.sorted().first {
            throw ModelError(message: "\(directory.path): tensor \(missing) is missing")
        }
        return model
    }

    /// The checkpoint's own `config.json` (dtype Float32), or one built from the config; the
    /// tokenizer's end-of-text id as `eos_token_id` where the checkpoint names none.
    public func configObject(endOfText: Int32?) -> [String: Any] {
        var json = config.jsonObject()
        if let endOfText, json["eos_token_id"] == nil || config.source == nil { json["eos_token_id"] = Int(endOfText) }
        return json
    }

    public var sequenceClassificationArchitecture: String {
        config.family.architecture.replacingOccurrences(of: "ForCausalLM", with: "ForSequenceClassification")
    }
}
