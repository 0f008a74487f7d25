import ArgumentParser
import Foundation
import Models
import Tensor

/// `rlaif sample`: continue a prompt with a model directory.
struct Sample: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Generate a continuation of a prompt.")

    @Option(help: "Model directory (config.json, model.safetensors, tokenizer files).") var model: String
    @Option(help: "The prompt text.") var prompt: String
    @Option(help: "Tokens to generate at most.") var maxNewTokens = 64
    @Option(help: "Sampling temperature; 0 is greedy.") var temperature: Float = 1
    @Option(help: "Keep only the k most likely tokens.") var topK: Int?
    @Option(help: "Keep the most likely tokens up to this total probability.") var topP: Float?
    @Option(help: "Seed of the sampling stream.") var seed: UInt64 = 0
    @Flag(help: "Keep the end of a prompt longer than the model's context (default: refuse it).")
    var truncateLeft = false

    func validate() throws {
        guard maxNewTokens >= 0 else {
            throw ValidationError("--max-new-tokens must be at least 0, got \(maxNewTokens).")
        }
        guard temperature >= 0 else { throw ValidationError("--temperature must be at least 0, got \(temperature).") }
        if let topP, !(topP > 0 && topP <= 1) { throw ValidationError("--top-p must be in (0, 1], got \(topP).") }
        if let topK, topK < 1 { throw ValidationError("--top-k must be at least 1, got \(topK).") }
    }

    func run() async throws {
        let directory: ModelDirectory
        do { directory = try ModelDirectory(model) } catch { throw CommandFailure(error.message) }
        var ids = directory.tokenizer.encode(prompt)
        guard !ids.isEmpty else {
            throw ValidationError("--prompt is empty after tokenization; give at least one character.")
        }
        // At least one position must be left to sample into.
        let room = directory.model.contextLength - 1
        var shown = prompt
        if ids.count > room {
            guard truncateLeft else {
                throw CommandFailure(
                    "the prompt is \(ids.count) tokens and the model's context \(room + 1): shorten it, or pass "
                        + "--truncate-left to keep its last \(room) tokens")
            }
            ids = Array(ids.suffix(room))
            shown = directory.tokenizer.decode(ids)
        }
        let options = SamplingOptions(
            maxNewTokens: maxNewTokens, temperature: temperature, topK: topK, topP: topP,
            stopTokens: [directory.tokenizer.endOfText], seed: seed)
        let kept = ids
        let g = await Engine.shared.run { directory.model.generate(prompts: [kept], options: options)[0] }
        print(shown + directory.tokenizer.decode(g.tokens.filter { $0 != directory.tokenizer.endOfText }))
    }
}
