/// One RL iteration's rollout as its steps use it: the samples, their rewards, and the replica
/// version of the policy that made them. Under `rl.rollout_lag` rollouts are made ahead of their
/// iteration; those not yet trained on travel in each checkpoint, because the policy that made
/// them is gone by the time a resumed run needs them.
public struct IterationRollout: Codable, Sendable, Equatable {
    public var iteration: Int
    /// Optimizer steps the policy that sampled these responses had taken.
    public var policyVersion: UInt64
    public var samples: [RolloutSample]
    public var rewards: [Double]

    public init(iteration: Int, policyVersion: UInt64, samples: [RolloutSample], rewards: [Double]) {
        self.iteration = iteration
        self.policyVersion = policyVersion
        self.samples = samples
        self.rewards = rewards
    }

    /// The iteration whose policy makes iteration `iteration`'s rollout under `lag` (the first
    /// `lag` iterations use the starting policy).
    public static func sourceIteration(of iteration: Int, lag: Int) -> Int { max(0, iteration - lag) }

    enum CodingKeys: String, CodingKey {
        case iteration
        case policyVersion = "policy_version"
        case samples, rewards
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        iteration = try c.decode(Int.self, forKey: .iteration)
        policyVersion = try c.decode(UInt64.self, forKey: .policyVersion)
        samples = try c.decode([RolloutSample].self, forKey: .samples)
        rewards = try c.decode([UInt64].self, forKey: .rewards).map(Double.init(bitPattern:))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(iteration, forKey: .iteration)
        try c.encode(policyVersion, forKey: .policyVersion)
        try c.encode(samples, forKey: .samples)
        try c.encode(rewards.map(\.bitPattern), forKey: .rewards)
    }
}

/// Floats travel as bit patterns (here and in `IterationRollout`): a checkpoint gives back exactly
/// what was sampled, infinities included, which JSON numbers would not.
extension RolloutSample: Codable {
    enum CodingKeys: String, CodingKey {
        case tokens
        case logProbs = "log_probs"
        case referenceLogProbs = "reference_log_probs"
        case values, reward
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(tokens: try c.decode([Int32].self, forKey: .tokens))
        let floats = { (key: CodingKeys) in try c.decode([UInt32].self, forKey: key).map(Float.init(bitPattern:)) }
        logProbs = try floats(.logProbs)
        referenceLogProbs = try floats(.referenceLogProbs)
        values = try floats(.values)
        reward = try c.decodeIfPresent(UInt32.self, forKey: .reward).map(Float.init(bitPattern:))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(tokens, forKey: .tokens)
        try c.encode(logProbs.map(\.bitPattern), forKey: .logProbs)
        try c.encode(referenceLogProbs.map(\.bitPattern), forKey: .referenceLogProbs)
        try c.encode(values.map(\.bitPattern), forKey: .values)
        try c.encodeIfPresent(reward?.bitPattern, forKey: .reward)
    }
}
