import ArgumentParser
import Foundation
import Models
import Tensor

/// `rlaif-bench gpt`: GPT-2 training steps and KV-cache generation on the engine, timed.
/// bench/gpt_vs_pytorch.py runs it beside the same work in PyTorch and prints the ratios.
struct GPTBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gpt", abstract: "GPT-2 training step and generation timings.")

    @Option(help: "Model preset: small or gpt2-124M.") var preset = "small"
    @Option(help: "train or generate.") var task = "train"
    @Option(help: "Batch size.") var batch = 8
    @Option(help: "Tokens per sequence (train) or prompt tokens (generate).") var tokens = 128
    @Option(help: "New tokens per sequence (generate).") var newTokens = 64
    @Option(help: "Timed repetitions (after one warm-up).") var repeats = 3

    func run() async throws {
        guard let config = GPT2Config.preset(named: preset) else { throw ValidationError("unknown preset \(preset)") }
        let (batch, tokens, newTokens, repeats, task) = (
            self.batch, self.tokens, self.newTokens, self.repeats, self.task
        )
        let model = try GPT2(config: config, seed: 1)
        var rng = RandomStream(seed: 2, purpose: .scratch)
        let ids = (0..<(batch * tokens)).map { _ in Int32(rng.next(below: config.vocabularySize)) }
        let seconds: [Double] = await Engine.shared.run {
            var times: [Double] = []
            if task == "train" {
                let params = ParameterSet(model.namedParameters)
                var optimizer = AdamW()
                let input = TokenTensor(shape: [batch, tokens], ids: ids)
                for _ in 0...repeats {
                    let start = ContinuousClock.now
                    params.zeroGradients()
                    model.languageModelLoss(input).backward()
                    optimizer.update(params, learningRate: 1e-4)
                    times.append((ContinuousClock.now - start).seconds)
                }
            } else {
                let prompts = (0..<batch).map { Array(ids[($0 * tokens)..<(($0 + 1) * tokens)]) }
                for r in 0...repeats {
                    let start = ContinuousClock.now
                    let out = model.generate(
                        prompts: prompts,
                        options: SamplingOptions(maxNewTokens: newTokens, temperature: 1, seed: UInt64(r)))
                    precondition(out.allSatisfy { $0.tokens.count == newTokens })
                    times.append((ContinuousClock.now - start).seconds)
                }
            }
            return Array(times.dropFirst())  // the first is a warm-up
        }
        let best = seconds.min()!
        let median = seconds.sorted()[seconds.count / 2]
        let all = seconds.map { String(format: "%.2f", $0 * 1000) }.joined(separator: ", ")
        emit(
            String(
                format:
                    "{\"preset\": \"%@\", \"task\": \"%@\", \"best_ms\": %.1f, \"median_ms\": %.1f, \"times_ms\": [%@]}",
                preset, task, best * 1000, median * 1000, all))
    }
}
