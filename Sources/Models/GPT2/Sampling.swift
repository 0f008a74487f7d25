import Tensor

/// How tokens are drawn from the model's next-token distribution.
public struct SamplingOptions: Sendable, Equatable {
    public var maxNewTokens: Int
    /// 0 means greedy (argmax); otherwise logits are divided by it before sampling.
    public var temperature: Float
    /// Keep only the k most likely tokens (nil: all).
    public var topK: Int?
    /// Keep the smallest set of most likely tokens whose probability reaches p (nil: all).
    public var topP: Float?
    /// Generation of a sequence ends after it emits one of these (the stop token is kept).
    public var stopTokens: Set<Int32>
    /// Root of every sequence's sampling stream: sequence `id` draws from (seed, sampling, 0, id).
    public var seed: UInt64

    public init(
        maxNewTokens: Int, temperature: Float = 1, topK: Int? = nil, topP: Float? = nil,
        stopTokens: Set<Int32> = [], seed: UInt64 = 0
    ) {
        self.maxNewTokens = maxNewTokens
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.stopTokens = stopTokens
        self.seed = seed
    }

    public static func greedy(maxNewTokens: Int, stopTokens: Set<Int32> = []) -> SamplingOptions {
        SamplingOptions(maxNewTokens: maxNewTokens, temperature: 0, stopTokens: stopTokens)
    }
}

/// One generated continuation.
public struct Generation: Sendable, Equatable {
    public var tokens: [Int32]
    /// log p(token | prefix) under the model's own distribution (temperature 1, no filtering):
    /// what KL penalties and PPO ratios need.
    public var logProbs: [Float]
    /// The value head's estimate at each generated token's position (empty without a value head).
    public var values: [Float]
    /// True when a stop token ended the sequence (false: it reached maxNewTokens or the context).
    public var stopped: Bool
}

enum TokenSampler {
    /// Draws the next token from `logits` (V floats); returns it and its raw log-probability.
    static func draw(_ logits: UnsafePointer<Float>, count v: Int, options: SamplingOptions, rng: inout RandomStream)
        -> (token: Int32, logProb: Float)
    {
        let top = Kernels.maximum(logits, v)
        if options.temperature != 0 && options.topK == nil && options.topP == nil {
            // The whole vocabulary: the weights in one pass (a plain loop, which vectorizes), then
            // their unnormalized CDF walked; no sorting.
            return withUnsafeTemporaryAllocation(of: Float.self, capacity: v) { buffer in
                let w = buffer.baseAddress!, t = Float(options.temperature)
                for i in 0..<v { w[i] = fastExp((logits[i] - top) / t) }
                // At temperature 1 the weights are the exponentials log Σ exp sums: no second pass.
                let lse =
                    t == 1
                    ? Kernels.logSumExp(exponentials: w, v, maximum: top) : Kernels.logSumExp(logits, v, maximum: top)
                var total = 0.0
                for i in 0..<v { total += Double(w[i]) }
                let u = Double(rng.nextUInt64() >> 11) * 0x1p-53 * total
                var acc = 0.0
                for i in 0..<v {
                    acc += Double(w[i])
                    if u < acc { return (Int32(i), logits[i] - lse) }
                }
                return (Int32(v - 1), logits[v - 1] - lse)
            }
        }
        let lse = Kernels.logSumExp(logits, v, maximum: top)
        if options.temperature == 0 {
            var best = 0
            for i in 1..<v where logits[i] > logits[best] { best = i }
            return (Int32(best), logits[best] - lse)
        }
        let t = Float(options.temperature)
        // Candidates in descending logit order, cut by top-k, then by top-p.
        var order = Array(0..<v)
        order.sort { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
        if let k = options.topK, k > 0, k < order.count { order.removeLast(order.count - k) }
        var weights = order.map { Double(fastExp((logits[$0] - top) / t)) }
        if let p = options.topP, p < 1 {
            let total = weights.reduce(0, +)
            var cumulative = 0.0
            var keep = 0
            while keep < weights.count {
                cumulative += weights[keep] / total
                keep += 1
                if cumulative >= Double(p) { break }
            }
            weights.removeLast(weights.count - keep)
            order.removeLast(order.count - keep)
        }
        // One 53-bit uniform per token, so a sequence's draws never depend on anything else.
        let u = Double(rng.nextUInt64() >> 11) * 0x1p-53 * weights.reduce(0, +)
        var acc = 0.0
        for (i, w) in weights.enumerated() {
            acc += w
            if u < acc { return (Int32(order[i]), logits[order[i]] - lse) }
        }
        let last = order[weights.count - 1]
        return (Int32(last), logits[last] - lse)
    }
}
