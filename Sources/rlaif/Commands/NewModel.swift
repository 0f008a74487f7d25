import ArgumentParser
import Foundation
import Models
import RLAIF

/// `rlaif new-model`: a randomly initialized model directory from a `config.json` and tokenizer
/// files, so a run from `model.init` can be tried without downloading a checkpoint.
struct NewModel: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "new-model",
        abstract: "Write a model directory with random weights (GPT-2 or the Llama family).",
        discussion: """
            The architecture and shape come from --config (a Hugging Face config.json); the tokenizer
            files (tokenizer.json, tokenizer_config.json, or vocab.json and merges.txt) are copied from
            --tokenizer. The result loads in rlaif and in transformers like a downloaded checkpoint.
            """)

    @Option(help: "A config.json (model_type gpt2, llama, qwen2 or mistral).") var config: String
    @Option(help: "A directory with the tokenizer files to copy.") var tokenizer: String
    @Option(help: "Seed of the random weights.") var seed: UInt64 = 0
    @Option(help: "The directory to write (created; existing files are replaced).") var out: String

    func run() throws {
        let configURL = URL(fileURLWithPath: config), outURL = URL(fileURLWithPath: out)
        do {
            let data = try Data(contentsOf: configURL)
            let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
            let model: any CausalLanguageModel
            if (json["model_type"] as? String ?? "gpt2") == "gpt2" {
                model = try GPT2(config: try GPT2Config.read(configURL), seed: seed)
            } else {
                model = try Llama(config: try LlamaConfig.parse(data, file: config), seed: seed)
            }
            try model.save(to: outURL, endOfText: nil)
            try ModelExport.copyTokenizerFiles(from: URL(fileURLWithPath: tokenizer), to: outURL)
            let check = try ModelDirectory(out)
            print(
                "rlaif: wrote \(out): \(check.model.vocabularySize)-token vocabulary, \(check.model.layerCount) layers")
        } catch let error as ModelError {
            throw CommandFailure(error.message)
        } catch let error as ModelExport.ExportError {
            throw CommandFailure(error.message)
        } catch {
            throw CommandFailure("cannot write \(out): \(error.localizedDescription)")
        }
    }
}
