/// Rewards into per-token advantages and returns, on the coordinator, in Double and in sample
/// order, so every run computes the same numbers.
public enum Advantages {
    public struct Output: Sendable {
        public var advantages: [[Float]]
        public var returns: [[Float]]
        public var meanKL: Double
        public var meanReward: Double
    }

    /// γ = 1; the reward (normalized over the batch when asked) arrives at the last token, and
    /// every token pays −β·(log π − log π_ref). `gaeLambda` nil gives the paper's policy gradient
    /// (A = G − V); a value gives PPO's GAE(λ), whitened over the batch.
    public static func compute(
        samples: [RolloutSample], rewards: [Double], klBeta: Double, normalizeRewards: Bool, gaeLambda: Double?
    ) -> Output {
        precondition(samples.count == rewards.count && !samples.isEmpty)
        var r = rewards
        let meanReward = rewards.reduce(0, +) / Double(rewards.count)
        if normalizeRewards {
            let variance = rewards.reduce(0) { $0 + ($1 - meanReward) * ($1 - meanReward) } / Double(rewards.count)
            let std = variance.squareRoot()
            r = rewards.map { ($0 - meanReward) / (std + 1e-8) }
        }
        var advantages: [[Double]] = [], returns: [[Double]] = []
        var klTotal = 0.0
        for (i, s) in samples.enumerated() {
            let n = s.tokens.count
            var tokenRewards = (0..<n).map { t in -klBeta * Double(s.logProbs[t] - s.referenceLogProbs[t]) }
            klTotal += (0..<n).reduce(0.0) { $0 + Double(s.logProbs[$1] - s.referenceLogProbs[$1]) }
            tokenRewards[n - 1] += r[i]
            var adv = [Double](repeating: 0, count: n), ret = [Double](repeating: 0, count: n)
            if let lambda = gaeLambda {
                var next = 0.0, running = 0.0
                for t in stride(from: n - 1, through: 0, by: -1) {
                    let v = Double(s.values[t])
                    let delta = tokenRewards[t] + next - v
                    running = delta + lambda * running
                    adv[t] = running
                    ret[t] = running + v
                    next = v
                }
            } else {
                var g = 0.0
                for t in stride(from: n - 1, through: 0, by: -1) {
                    g += tokenRewards[t]
                    ret[t] = g
                    adv[t] = g - Double(s.values[t])
                }
            }
            advantages.append(adv)
            returns.append(ret)
        }
        if gaeLambda != nil {
            let all = advantages.flatMap { $0 }
            let mean = all.reduce(0, +) / Double(all.count)
            let std = (all.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(all.count)).squareRoot()
            advantages = advantages.map { $0.map { ($0 - mean) / (std + 1e-8) } }
        }
        return Output(
            advantages: advantages.map { $0.map(Float.init) }, returns: returns.map { $0.map(Float.init) },
            meanKL: klTotal / Double(samples.count), meanReward: meanReward)
    }

    /// Critic-free advantages on groups of `groupSize` consecutive samples (responses to one
    /// prompt), the same for every token of a response. GRPO: (r − the group's mean) / (its
    /// standard deviation + 1e-6), KL left to the loss. RLOO: r − β·KL(response) minus the mean
    /// of the others' in the group. Returns are zero (no value head is trained).
    public static func grouped(
        samples: [RolloutSample], rewards: [Double], groupSize k: Int, algorithm: RunSettings.Algorithm,
        klBeta: Double
    ) -> Output {
        precondition(samples.count == rewards.count && k >= 2 && samples.count % k == 0)
        let kl = samples.map { s in
            (0..<s.tokens.count).reduce(0.0) { $0 + Double(s.logProbs[$1] - s.referenceLogProbs[$1]) }
        }
        let r = algorithm == .rloo ? zip(rewards, kl).map { $0 - klBeta * $1 } : rewards
        var perSample = [Double](repeating: 0, count: samples.count)
        for start in stride(from: 0, to: samples.count, by: k) {
            let group = r[start..<(start + k)]
            let total = group.reduce(0, +), mean = total / Double(k)
            let std = (group.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(k)).squareRoot()
            for i in start..<(start + k) {
                perSample[i] = algorithm == .rloo ? r[i] - (total - r[i]) / Double(k - 1) : (r[i] - mean) / (std + 1e-6)
            }
        }
        return Output(
            advantages: samples.indices.map {
                [Float](repeating: Float(perSample[$0]), count: samples[$0].tokens.count)
            },
            returns: samples.map { [Float](repeating: 0, count: $0.tokens.count) },
            meanKL: kl.reduce(0, +) / Double(samples.count), meanReward: rewards.reduce(0, +) / Double(rewards.count))
    }
}
