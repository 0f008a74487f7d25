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
}
