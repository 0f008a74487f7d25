import ArgumentParser
import Foundation
import Models
import Tensor

/// `rlaif-bench bf16`: the products of a training step of the small preset (forward, dX and dW of
/// each block projection and the head, batch 8 × 128) and of one gpt2-124M decode step (8 rows,
/// weights packed once) and of its attention over the caches, in Float32 and in bf16, the two
/// interleaved round by round.
struct BFloat16Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bf16", abstract: "Products in Float32 vs bfloat16: a training step's and a decode step's.")

    @Option(help: "Timed rounds per path (best and median are kept).") var reps = 7

    /// (rows, in, out) of the small preset's products: c_attn, attn.c_proj, c_fc, mlp.c_proj (×4
    /// layers) and the tied head.
    static func trainingShapes() -> [(Int, Int, Int)] {
        let c = GPT2Config.small.width, rows = 8 * 128
        let block = [(rows, c, 3 * c), (rows, c, c), (rows, c, 4 * c), (rows, 4 * c, c)]
        return Array(repeating: block, count: GPT2Config.small.layers).flatMap { $0 } + [(rows, c, 512)]
    }

    func run() async throws {
        try await training()
        try await decoding()
        try await attending()
    }

    /// Each shape's three products: y = x·W, dX = dY·Wᵀ, dW = Xᵀ·dY.
    private func training() async throws {
        var rng = RandomStream(seed: 3, purpose: .scratch)
        let shapes = Self.trainingShapes()
        let operands = shapes.map { (m, k, n) in
            (
                Tensor.randomUniform([m, k], low: -1, high: 1, rng: &rng),
                Tensor.randomUniform([k, n], low: -0.1, high: 0.1, rng: &rng),
                Tensor.randomUniform([m, n], low: -1, high: 1, rng: &rng)
            )
        }
        let flops = shapes.reduce(0.0) { $0 + 3 * 2.0 * Double($1.0 * $1.1 * $1.2) }
        let times = await Self.interleaved(reps) { precision in
            for (x, w, dy) in operands {
                _ = x.matmul(w, precision: precision)
                _ = dy.matmul(w, transposeOther: true, precision: precision)
                _ = x.matmul(dy, transposeSelf: true, precision: precision)
            }
        }
        Self.report("small preset, training products (x·W, dY·Wᵀ, Xᵀ·dY), 8×128 rows", flops: flops, times)
    }

    /// gpt2-124M's block projections at 8 rows, from weights packed once per precision.
    private func decoding() async throws {
        let config = GPT2Config.gpt2, c = config.width, rows = 8
        var rng = RandomStream(seed: 4, purpose: .scratch)
        let shapes = (0..<config.layers).flatMap { _ in [(c, 3 * c), (c, c), (c, 4 * c), (4 * c, c)] }
        let weights = shapes.map { Tensor.randomUniform([$0.0, $0.1], low: -0.1, high: 0.1, rng: &rng) }
        let inputs = shapes.map { Tensor.randomUniform([rows, $0.0], low: -1, high: 1, rng: &rng) }
        let packed = await Engine.shared.run {
            [
                ProductPrecision.float32: weights.map { PanelMatrix($0) },
                .bf16: weights.map { PanelMatrix($0, precision: .bf16) },
            ]
        }
        let flops = shapes.reduce(0.0) { $0 + 2.0 * Double(rows * $1.0 * $1.1) }
        let times = await Self.interleaved(reps) { precision in
            for (x, w) in zip(inputs, packed[precision]!) { _ = w.product(x) }
        }
        Self.report("gpt2-124M decode step, block projections, \(rows) rows (packed weights)", flops: flops, times)
    }

    /// gpt2-124M's attention in one decode step: 8 sequences × 12 layers, each over a cache of 64
    /// positions (a 32 + 64 generation's mean), Float32 rows or bfloat16 (`BFloat16KeyValues`),
    /// the sequences in parallel as `generate` runs them.
    private func attending() async throws {
        let config = GPT2Config.gpt2, c = config.width, heads = config.heads, d = c / heads
        let (sequences, length, caches) = (8, 64, 8 * config.layers)
        var rng = RandomStream(seed: 5, purpose: .scratch)
        let keys = (0..<caches).map { _ in Tensor.randomUniform([length, c], low: -1, high: 1, rng: &rng) }
        let values = (0..<caches).map { _ in Tensor.randomUniform([length, c], low: -1, high: 1, rng: &rng) }
        let query = Tensor.randomUniform([sequences, c], low: -1, high: 1, rng: &rng)
        let packed = zip(keys, values).map { k, v in
            let cache = BFloat16KeyValues(capacity: length, kvHeads: heads, headDim: d)
            for p in 0..<length { cache.store(position: p, key: k.pointer + p * c, value: v.pointer + p * c) }
            return cache
        }
        let out = Tensor(zeros: [sequences, c])
        let scratch = Tensor(zeros: [sequences, max(packed[0].scratchCount, length)])
        let width = scratch.shape[1]
        let flops = Double(caches) * 2 * 2.0 * Double(length * c)
        let times = await Self.interleaved(reps) { precision in
            for layer in 0..<config.layers {
                Engine.parallelFor(sequences) { r in
                    let (i, q, o, s) = (
                        layer * sequences + r, query.pointer + r * c, out.pointer + r * c, scratch.pointer + r * width
                    )
                    if precision == .bf16 {
                        packed[i].attend(query: q, length: length, heads: heads, out: o, scratch: s)
                    } else {
                        Kernels.cachedAttention(
                            query: q, keys: keys[i].pointer, values: values[i].pointer, length: length, heads: heads,
                            kvHeads: heads, headDim: d, out: o, scratch: s)
                    }
                }
            }
        }
        Self.report(
            "gpt2-124M decode step, attention, \(sequences) sequences × \(length) positions", flops: flops, times)
    }

    /// Seconds of `body` per precision, Float32 then bf16 in each round, after a warm-up round.
    static func interleaved(
        _ reps: Int, _ body: @escaping @Sendable (ProductPrecision) -> Void
    ) async -> [ProductPrecision: [Double]] {
        var times: [ProductPrecision: [Double]] = [:]
        for round in 0...reps {
            for precision in ProductPrecision.allCases {
                let seconds = await Engine.shared.run { () -> Double in
                    let start = ContinuousClock.now
                    body(precision)
                    return (ContinuousClock.now - start).seconds
                }
                if round > 0 { times[precision, default: []].append(seconds) }
            }
        }
        return times
    }

    static func report(_ title: String, flops: Double, _ times: [ProductPrecision: [Double]]) {
        emit("\(title), \(Engine.shared.threads) thread(s):")
        var best: [ProductPrecision: Double] = [:]
        for precision in ProductPrecision.allCases {
            let t = times[precision]!.sorted()
            best[precision] = t[0]
            emit(
                String(
                    format: "  %-8@ best %8.2f ms (%6.1f GFLOP/s)   median %8.2f ms", precision.rawValue as NSString,
                    t[0] * 1000, flops / t[0] / 1e9, t[t.count / 2] * 1000))
        }
        emit(String(format: "  bf16 / float32 speed: %.2f×", best[.float32]! / best[.bf16]!))
    }
}
