import ArgumentParser
import Foundation
import Models
import Tensor

/// `rlaif-bench decode`: the products of one decode step — a few rows times every projection weight
/// of a preset's blocks — through `cblas_sgemm` (the engine's matmul) and through weights packed
/// once into panels (`PanelMatrix`, what `GPT2.generate` uses), the two paths interleaved.
struct DecodeBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decode", abstract: "Decode-step products: sgemm vs packed panels.")

    @Option(help: "Model preset: small or gpt2-124M.") var preset = "gpt2-124M"
    @Option(help: "Rows (sequences) per step.") var rows = 8
    @Option(help: "Timed steps per path (best and median are kept).") var reps = 7

    func run() async throws {
        guard let config = GPT2Config.preset(named: preset) else { throw ValidationError("unknown preset \(preset)") }
        let (c, rows, reps) = (config.width, rows, reps)
        var rng = RandomStream(seed: 3, purpose: .scratch)
        // (in, out) of c_attn, attn.c_proj, c_fc, mlp.c_proj for every layer: weights too many to
        // stay in cache at 124M, as in a real step.
        let shapes = (0..<config.layers).flatMap { _ in [(c, 3 * c), (c, c), (c, 4 * c), (4 * c, c)] }
        let weights = shapes.map { Tensor.randomUniform([$0.0, $0.1], low: -0.1, high: 0.1, rng: &rng) }
        let inputs = shapes.map { Tensor.randomUniform([rows, $0.0], low: -1, high: 1, rng: &rng) }
        let packed = await Engine.shared.run { weights.map { PanelMatrix($0) } }
        let flops = shapes.reduce(0.0) { $0 + 2.0 * Double(rows * $1.0 * $1.1) }
        var sgemm: [Double] = [], panels: [Double] = []
        for round in 0...reps {
            let (s, p) = await Engine.shared.run { () -> (Double, Double) in
                let t0 = ContinuousClock.now
                for (x, w) in zip(inputs, weights) { _ = x.matmul(w) }
                let t1 = ContinuousClock.now
                for (x, w) in zip(inputs, packed) { _ = w.product(x) }
                let t2 = ContinuousClock.now
                return ((t1 - t0).seconds, (t2 - t1).seconds)
            }
            if round > 0 {  // the first is a warm-up
                sgemm.append(s)
                panels.append(p)
            }
        }
        func line(_ name: String, _ times: [Double]) -> String {
            let best = times.min()!, median = times.sorted()[times.count / 2]
            return String(
                format: "%-8@ best %8.3f ms (%6.1f GF/s)  median %8.3f ms", name, best * 1000, flops / best / 1e9,
                median * 1000)
        }
        emit("\(preset), \(rows) rows, block weights of one step, \(Engine.shared.threads) thread(s):")
        emit(line("sgemm", sgemm))
        emit(line("panels", panels))
        emit(String(format: "sgemm/panels: best %.2fx", sgemm.min()! / panels.min()!))
    }
}
