import Foundation
import Models
import Protocol

/// The run's final models in Hugging Face's layout, so `transformers` loads them as they are:
/// `models/policy` (the policy's class: `GPT2LMHeadModel`, `LlamaForCausalLM`, …) and
/// `models/reward` (the same trunk's …ForSequenceClassification with one label, the score read
/// at the last non-padding token), each `config.json` + `model.safetensors`. A run that started
/// from `model.init` copies that checkpoint's tokenizer files beside both; a fresh run uses
/// rlaif's byte tokenizer (token ids are the UTF-8 bytes, 256 is end-of-text and the reward
/// model's padding token), which `rlaif_tokenizer.json` describes.
public enum ModelExport {
    public struct ExportError: Error, CustomStringConvertible, Sendable {
        public let message: String
        public var description: String { message }
    }

    /// The files of a Hugging Face tokenizer, copied from the starting checkpoint when present.
    static let tokenizerFiles = [
        "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt",
        "chat_template.jinja", "added_tokens.json",
    ]

    public static func write(weights: [Wire.Weights], settings: RunSettings, to models: URL) throws(ExportError) {
        let replica: ModelReplica
        let source: RunModel
        do {
            source = try RunModel(settings: settings)
            replica = try ModelReplica(model: source, settings: settings)
            let states = weights.compactMap { ModelReplica.ModelState($0) }
            try replica.restore(states, version: weights.first?.version ?? 0)
        } catch {
            throw ExportError(message: "cannot rebuild the final models: \(error)")
        }
        let tokenizer = replica.tokenizer
        let policy = models.appendingPathComponent("policy")
        do { try replica.policy.save(to: policy, endOfText: tokenizer.endOfText) } catch {
            throw ExportError(message: error.message)
        }
        try writeTokenizer(tokenizer, from: source.initDirectory, to: policy)
        guard let reward = replica.reward else { return }  // DPO and direct RLAIF train none
        let directory = models.appendingPathComponent("reward")
        var config = reward.backbone.configObject(endOfText: tokenizer.endOfText)
        config["architectures"] = [reward.backbone.sequenceClassificationArchitecture]
        config["num_labels"] = 1
        config["id2label"] = ["0": "LABEL_0"]
        config["label2id"] = ["LABEL_0": 0]
        if config["pad_token_id"] == nil || config["pad_token_id"] is NSNull {
            config["pad_token_id"] = Int(tokenizer.endOfText)
        }
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys])
                .write(to: directory.appendingPathComponent("config.json"), options: .atomic)
        } catch {
            throw ExportError(message: "cannot write \(directory.path)/config.json: \(error.localizedDescription)")
        }
        // The classifier keeps the trunk's own names (`transformer.`, `model.`) beside `score.weight`.
        let tensors = reward.namedParameters.map { ($0.0, $0.1.value) }
        do { try SafeTensors.write(tensors, to: directory.appendingPathComponent("model.safetensors")) } catch {
            throw ExportError(message: error.description)
        }
        try writeTokenizer(tokenizer, from: source.initDirectory, to: directory)
    }

    /// Copies the tokenizer files `origin` has (see `tokenizerFiles`) into `directory`.
    public static func copyTokenizerFiles(from origin: URL, to directory: URL) throws(ExportError) {
        for name in tokenizerFiles {
            let from = origin.appendingPathComponent(name), to = directory.appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: from.path) else { continue }
            do {
                try? FileManager.default.removeItem(at: to)
                try FileManager.default.copyItem(at: from, to: to)
            } catch {
                throw ExportError(
                    message: "cannot copy \(from.path) to \(directory.path): \(error.localizedDescription)")
            }
        }
    }

    private static func writeTokenizer(_ tokenizer: any Tokenizer, from origin: URL?, to directory: URL)
        throws(ExportError)
    {
        if let origin {
            try copyTokenizerFiles(from: origin, to: directory)
            return
        }
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
