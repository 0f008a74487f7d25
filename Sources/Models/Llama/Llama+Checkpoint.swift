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

    /// Writes `config.json` (the checkpoint's own, or one built from the config) and Float32
    /// `model.safetensors` that transformers loads as the same class.
    public func configObject(endOfText: Int32?) -> [String: Any] {
        var json = config.jsonObject()
        if let endOfText, json["eos_token_id"] == nil || config.source == nil { json["eos_token_id"] = Int(endOfText) }
        return json
    }

    public var sequenceClassificationArchitecture: String {
        config.family.architecture.replacingOccurrences(of: "ForCausalLM", with: "ForSequenceClassification")
    }

    public func save(to directory: URL, endOfText: Int32? = nil) throws(ModelError) {
        let json = configObject(endOfText: endOfText)
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let data = try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys])
            try data.write(to: directory.appendingPathComponent("config.json"), options: .atomic)
        } catch {
            throw ModelError(message: "cannot write \(directory.path)/config.json: \(error.localizedDescription)")
        }
        do {
            try SafeTensors.write(
                namedParameters.map { ($0.0, $0.1.value) },
                to: directory.appendingPathComponent(CheckpointFiles.single))
        } catch {
            throw ModelError(message: error.description)
        }
    }
}
