import ArgumentParser
import Foundation
import Models
import Tensor

/// `rlaif-bench gpt`: training steps and KV-cache generation on the engine, timed, for GPT-2
/// presets and SmolLM2-135M's Llama shape. bench/gpt_vs_pytorch.py runs it beside the same work
/// in PyTorch and prints the ratios. The line also reports the process's peak resident memory.
struct GPTBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gpt", abstract: "Training step and generation timings (GPT-2 or SmolLM2 shapes).")

    @Option(help: "Model preset: small, gpt2-124M or smollm2-135M.") var preset = "small"
    @Option(help: "train or generate.") var task = "train"
    @Option(help: "Batch size.") var batch = 8
    @Option(help: "Tokens per sequence (train) or prompt tokens (generate).") var tokens = 128
    @Option(help: "New tokens per sequence (generate).") var newTokens = 64
    @Option(help: "Timed repetitions (after one warm-up).") var repeats = 3
    @Flag(help: "Gradient checkpointing (Llama shapes): blocks and loss chunks recomputed in backward.")
    var checkpointing = false
    @Flag(help: "Generate: keep the decode weights packed across calls (one policy version), as rollouts do.")
    var keepDecodeWeights = false
    @Option(help: "Products' precision: float32 or bf16 (bfloat16 inputs, Float32 sums).")
    var precision = ProductPrecision.float32

    func run() async throws {
        var built: any CausalLanguageModel
        if preset == "smollm2-135M" {
            let llama = try Llama(config: .smolLM2, seed: 1)
            llama.gradientCheckpointing = checkpointing
            built = llama
        } else if let config = GPT2Config.preset(named: preset) {
            built = try GPT2(config: config, seed: 1)
        } else {
            throw ValidationError("unknown preset \(preset)")
        }
        built.productPrecision = precision
        if keepDecodeWeights { built.decodeWeightsVersion = 1 }
        let model = built
        let (batch, tokens, newTokens, repeats, task) = (
            self.batch, self.tokens, self.newTokens, self.repeats, self.task
        )
        var rng = RandomStream(seed: 2, purpose: .scratch)
        let ids = (0..<(batch * tokens)).map { _ in Int32(rng.next(below: model.vocabularySize)) }
        let seconds: [Double] = await Engine.shared.run {
            var times: [Double] = []
            if task == "train" {
                let params = ParameterSet(model.namedParameters)
                var optimizer = AdamW()
                optimizer.reserveState(for: params)  // the replica's whole steady state before the first step
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
                    "{\"preset\": \"%@\", \"task\": \"%@\", \"precision\": \"%@\", \"best_ms\": %.1f, \"median_ms\": %.1f, \"times_ms\": [%@], \"vm_hwm_kb\": %d}",
                preset, task, precision.rawValue, best * 1000, median * 1000, all, Self.peakResidentKilobytes()))
    }

    /// VmHWM from /proc/self/status: the most memory the process has held resident (0 where absent).
    static func peakResidentKilobytes() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") })
        else { return 0 }
        return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0
    }
}

extension ProductPrecision: ExpressibleByArgument {}
