import Foundation
import Models
import Protocol

/// The run's final models in Hugging Face's layout, so `transformers` loads them as they are:
/// `models/policy` (`GPT2LMHeadModel`) and `models/reward` (`GPT2ForSequenceClassification` with
/// one label, the score read at the last non-padding token), each `config.json` +
/// `model.safetensors`. Both use rlaif's byte tokenizer: token ids are the UTF-8 bytes, 256 is
/// end-of-text (also the reward model's padding token); `rlaif_tokenizer.json` says so.
public enum ModelExport {
    public struct ExportError: Error, CustomStringConvertible, Sendable {
        public let message: String
        public var description: String { message }
    }

    public static func write(weights: [Wire.Weights], settings: RunSettings, to models: URL) throws(ExportError) {
        let replica: ModelReplica
        do {
            replica = try ModelReplica(config: settings.gpt2Config, seed: settings.run.seed)
            let states = weights.compactMap { ModelReplica.ModelState($0) }
            try replica.restore(states, version: weights.first?.version ?? 0)
        } catch {
            throw ExportError(message: "cannot rebuild the final models: \(error)")
        }
        let tokenizer = ModelReplica.tokenizer
        let policy = models.appendingPathComponent("policy")
        do { try replica.policy.save(to: policy, endOfText: tokenizer.endOfText) } catch {
            throw ExportError(message: error.message)
        }
        try writeTokenizer(to: policy)
        guard let reward = replica.reward else { return }  // DPO and direct RLAIF train none
        let directory = models.appendingPathComponent("reward")
        var config = settings.gpt2Config.jsonObject(endOfText: tokenizer.endOfText)
        config["architectures"] = ["GPT2ForSequenceClassification"]
        config["num_labels"] = 1
        config["id2label"] = ["0": "LABEL_0"]
        config["label2id"] = ["LABEL_0": 0]
        config["pad_token_id"] = Int(tokenizer.endOfText)
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys])
                .write(to: directory.appendingPathComponent("config.json"), options: .atomic)
        } catch {
            throw ExportError(message: "cannot write \(directory.path)/config.json: \(error.localizedDescription)")
        }
        // The sequence classifier keeps the backbone under `transformer.`.
        let tensors = reward.namedParameters.map { name, v in
            (name.hasPrefix("score.") ? name : "transformer.\(name)", v.value)
        }
        do { try SafeTensors.write(tensors, to: directory.appendingPathComponent("model.safetensors")) } catch {
            throw ExportError(message: error.description)
        }
        try writeTokenizer(to: directory)
    }

    private static func writeTokenizer(to directory: URL) throws(ExportError) {
        let tokenizer = ModelReplica.tokenizer
        let description: [String: Any] = [
            "kind": "bytes", "vocabulary_size": tokenizer.vocabularySize, "end_of_text": Int(tokenizer.endOfText),
            "note": "rlaif's byte tokenizer: token i < 256 is the byte i of the UTF-8 text",
        ]
        do {
            try JSONSerialization.data(withJSONObject: description, options: [.prettyPrinted, .sortedKeys])
                .write(to: directory.appendingPathComponent("rlaif_tokenizer.json"), options: .atomic)
        } catch {
            throw ExportError(
                message: "cannot write \(directory.path)/rlaif_tokenizer.json: \(error.localizedDescription)")
        }
    }
}
