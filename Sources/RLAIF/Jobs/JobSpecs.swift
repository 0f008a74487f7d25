import Protocol
import Tensor

/// The parameters and outputs of each job kind; their binary form is in `Job+Wire.swift`.
public struct JobSpecError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}

/// Rollout: sample a response to each prompt and (optionally) score it.
public struct RolloutSpec: Codable, Sendable, Equatable {
    public var prompts: [String]
    /// Address each sample's random stream: the same id gives the same sample on any worker.
    public var sampleIDs: [UInt64]
    public var seed: UInt64
    public var temperature: Double
    public var maxNewTokens: Int
    /// Which model samples: `policy` or `reference`.
    public var generator: ModelReplica.Role
    /// Also return policy and reference log-probs, values and (when a reward model exists) rewards.
    public var score: Bool
    /// Tokens that end a response (the task's): the synthetic task's period, end-of-text.
    public var stopTokens: [Int32]

    public init(
        prompts: [String], sampleIDs: [UInt64], seed: UInt64, temperature: Double, maxNewTokens: Int,
        generator: ModelReplica.Role, score: Bool, stopTokens: [Int32]
    ) {
        self.prompts = prompts
        self.sampleIDs = sampleIDs
        self.seed = seed
        self.temperature = temperature
        self.maxNewTokens = maxNewTokens
        self.generator = generator
        self.score = score
        self.stopTokens = stopTokens
    }
}

/// One sampled response and what the scorer computed for it.
public struct RolloutSample: Sendable, Equatable {
    public var tokens: [Int32]
    public var logProbs: [Float] = []
    public var referenceLogProbs: [Float] = []
    public var values: [Float] = []
    public var reward: Float?

    public init(tokens: [Int32]) { self.tokens = tokens }
}

/// Labeling: pairs to judge (result: `[PreferenceLabel]`), or, for direct RLAIF, single responses to rate
/// (result: `[RatingLabel]`).
public struct LabelingSpec: Codable, Sendable, Equatable {
    public var pairs: [LabelingPair]
    public var ratings: [RatingItem]?
    /// Answers the run's journal already holds for these pairs' questions, by
    /// `AnswerSink.key`: replayed, not asked again.
    public var known: [String: LabelerAnswer] = [:]

    enum CodingKeys: String, CodingKey { case pairs, ratings }  // the journal's answers travel in the wire body only

    public init(pairs: [LabelingPair], known: [String: LabelerAnswer] = [:]) {
        self.pairs = pairs
        self.known = known
    }
    public init(ratings: [RatingItem], known: [String: LabelerAnswer] = [:]) {
        pairs = []
        self.ratings = ratings
        self.known = known
    }
}

/// Reward-model scores of token sequences (a prompt's tokens, then the response's as sampled:
/// text would not do, since a sampled byte that is not UTF-8 reads back as three); the output is
/// one score per sequence.
public struct ScoreSpec: Codable, Sendable, Equatable {
    public var sequences: [[Int32]]
    public init(sequences: [[Int32]]) { self.sequences = sequences }
}

/// An optimizer step's settings, and the ring a rank reduces in (its micro-batches travel beside
/// it in a `GradientJob`).
public struct GradientSpec: Codable, Sendable, Equatable {
    public enum ObjectiveKind: String, Codable, Sendable, CaseIterable {
        case sft, reward, policyGradient = "policy_gradient", ppo, dpo
        case groupPolicy = "group_policy"
    }

    public struct Ring: Codable, Sendable, Equatable {
        public var rank: Int
        public var size: Int
        public var epoch: UInt32
        /// The successor's ring listener.
        public var next: String
        /// In a cluster with keys: the successor's public key (the one it authenticated with to
        /// the coordinator), which its ring listener proves it holds.
        public var nextKey: String?
        public var timeoutMs: Int
        public init(rank: Int, size: Int, epoch: UInt32, next: String, nextKey: String? = nil, timeoutMs: Int) {
            self.rank = rank
            self.size = size
            self.epoch = epoch
            self.next = next
            self.nextKey = nextKey
            self.timeoutMs = timeoutMs
        }
    }

    public var objective: ObjectiveKind
    public var learningRate: Double
    public var clipNorm: Double
    /// Divides every micro-batch's loss sum: the step's token (or pair) count over all ranks.
    public var normalizer: Double
    public var ppoClip: Double = 0.2
    public var valueCoefficient: Double = 0.5
    public var dpoBeta: Double = 0.1
    /// `group_policy`: the weight of the KL term in the loss (GRPO; 0 for RLOO).
    public var klBeta: Double = 0
    /// Before the step: freeze the policy as the reference / start the reward model from it.
    public var forkReference = false
    public var forkReward = false
    public var ring: Ring?
    public init(objective: ObjectiveKind, learningRate: Double, clipNorm: Double, normalizer: Double) {
        self.objective = objective
        self.learningRate = learningRate
        self.clipNorm = clipNorm
        self.normalizer = normalizer
    }

    public var resolvedObjective: Objective {
        switch objective {
        case .sft: .sft
        case .reward: .reward
        case .policyGradient: .policyGradient(valueCoefficient: Float(valueCoefficient))
        case .ppo: .ppo(clip: Float(ppoClip), valueCoefficient: Float(valueCoefficient))
        case .dpo: .dpo(beta: Float(dpoBeta))
        case .groupPolicy: .groupPolicy(clip: Float(ppoClip), klBeta: Float(klBeta))
        }
    }
}

/// What a rank reports after its step: the replica's new version and checksum, and the step's
/// metric sums over all ranks (all-reduced with the gradient, so every rank reports the same).
public struct GradientResult: Codable, Sendable, Equatable {
    public var version: UInt64
    /// `ModelReplica.fingerprint()` after the step: every rank's must be the same.
    public var fingerprint: String
    public var metrics: [String: Double]
    public var gradientNorm: Double
    public init(version: UInt64, fingerprint: String, metrics: [String: Double], gradientNorm: Double) {
        self.version = version
        self.fingerprint = fingerprint
        self.metrics = metrics
        self.gradientNorm = gradientNorm
    }
}

/// What a worker says about its replica in a failed result and after a synchronize: the
/// coordinator learns from it whether the worker must take a snapshot before its next job.
public struct ReplicaReport: Codable, Sendable, Equatable {
    public var version: UInt64
    /// `ModelReplica.fingerprint()` after a synchronize (nil in a failed result).
    public var fingerprint: String?
    public init(version: UInt64, fingerprint: String? = nil) {
        self.version = version
        self.fingerprint = fingerprint
    }
}
