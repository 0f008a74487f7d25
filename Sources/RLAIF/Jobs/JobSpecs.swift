import Foundation
import Protocol
import Tensor

/// The parameters of each job kind, as they travel in an assignment's `spec` (JSON) and tensors.
/// Token ids and per-token numbers travel as raw tensor frames; only shapes and settings are JSON.
public enum JobSpecs {
    public static func encode<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try! encoder.encode(value), as: UTF8.self)
    }

    public static func decode<T: Decodable>(_ type: T.Type, _ text: String) throws -> T {
        do { return try JSONDecoder().decode(type, from: Data(text.utf8)) } catch {
            throw JobSpecError(message: "malformed \(T.self) spec: \(error)")
        }
    }
}

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

/// Rollout results: lengths in the spec, numbers in tensors (tokens, log-probs, reference
/// log-probs, values, rewards), all flat in sample order.
public struct RolloutResult: Codable, Sendable {
    public var lengths: [Int]
    public var scored: Bool
    public var hasReward: Bool

    public static func pack(_ samples: [RolloutSample]) -> (spec: String, tensors: [WireTensor]) {
        let scored = samples.allSatisfy { $0.logProbs.count == $0.tokens.count && !$0.tokens.isEmpty }
        let hasReward = samples.allSatisfy { $0.reward != nil }
        let tokens = samples.flatMap(\.tokens)
        var tensors: [WireTensor] = [.int32(TokenTensor(shape: [tokens.count], ids: tokens))]
        if scored {
            for list in [samples.flatMap(\.logProbs), samples.flatMap(\.referenceLogProbs), samples.flatMap(\.values)] {
                tensors.append(.float32(Tensor(shape: [list.count], scalars: list)))
            }
        }
        if hasReward { tensors.append(.float32(Tensor(shape: [samples.count], scalars: samples.map { $0.reward! }))) }
        let spec = RolloutResult(lengths: samples.map(\.tokens.count), scored: scored, hasReward: hasReward)
        return (JobSpecs.encode(spec), tensors)
    }

    public static func unpack(spec text: String, tensors: [WireTensor]) throws -> [RolloutSample] {
        let spec = try JobSpecs.decode(RolloutResult.self, text)
        let total = spec.lengths.reduce(0, +)
        guard spec.lengths.allSatisfy({ $0 >= 0 }), case .int32(let tokens)? = tensors.first, tokens.count == total
        else {
            throw JobSpecError(message: "rollout result: token tensor does not match the lengths")
        }
        let floats = try tensors.dropFirst().map { t -> [Float] in
            guard case .float32(let x) = t else { throw JobSpecError(message: "rollout result: expected float32") }
            return x.scalars
        }
        let expected = (spec.scored ? 3 : 0) + (spec.hasReward ? 1 : 0)
        guard floats.count == expected, !spec.scored || floats.prefix(3).allSatisfy({ $0.count == total }),
            !spec.hasReward || floats.last!.count == spec.lengths.count
        else { throw JobSpecError(message: "rollout result: per-token tensors do not match the lengths") }
        var samples: [RolloutSample] = []
        var offset = 0
        for (i, n) in spec.lengths.enumerated() {
            var s = RolloutSample(tokens: Array(tokens.ids[offset..<(offset + n)]))
            if spec.scored {
                s.logProbs = Array(floats[0][offset..<(offset + n)])
                s.referenceLogProbs = Array(floats[1][offset..<(offset + n)])
                s.values = Array(floats[2][offset..<(offset + n)])
            }
            if spec.hasReward { s.reward = floats.last![i] }
            samples.append(s)
            offset += n
        }
        return samples
    }
}

/// Labeling: pairs of texts for the run's labeler; the result spec is `[PreferenceLabel]`.
/// Pairs to judge (result: `[PreferenceLabel]`), or, for direct RLAIF, single responses to rate
/// (result: `[RatingLabel]`).
public struct LabelingSpec: Codable, Sendable, Equatable {
    public var pairs: [LabelingPair]
    public var ratings: [RatingItem]?
    public init(pairs: [LabelingPair]) { self.pairs = pairs }
    public init(ratings: [RatingItem]) {
        pairs = []
        self.ratings = ratings
    }
}

/// Reward-model scores of token sequences (a prompt's tokens, then the response's as sampled:
/// text would not do, since a sampled byte that is not UTF-8 reads back as three); the result
/// spec is `[Float]`.
public struct ScoreSpec: Codable, Sendable, Equatable {
    public var sequences: [[Int32]]
    public init(sequences: [[Int32]]) { self.sequences = sequences }
}

/// One rank's share of an optimizer step: its micro-batches, and the ring it reduces in.
public struct GradientSpec: Codable, Sendable, Equatable {
    public enum ObjectiveKind: String, Codable, Sendable {
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
    /// This rank's micro-batches: ids and sequence counts, in order.
    public var microBatchIDs: [Int] = []
    public var microBatchSizes: [Int] = []
    public var promptLengths: [Int] = []
    public var responseLengths: [Int] = []

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

    /// Fills the micro-batch fields and returns the tensors: prompt tokens, response tokens,
    /// advantages, returns, old log-probs (flat over response tokens), labels (per pair).
    public mutating func pack(_ micros: [MicroBatch]) -> [WireTensor] {
        microBatchIDs = micros.map(\.id)
        microBatchSizes = micros.map(\.batch.count)
        promptLengths = micros.flatMap { $0.batch.prompts.map(\.count) }
        responseLengths = micros.flatMap { $0.batch.responses.map(\.count) }
        let prompts = micros.flatMap { $0.batch.prompts.flatMap { $0 } }
        let responses = micros.flatMap { $0.batch.responses.flatMap { $0 } }
        func floats(_ list: [Float]) -> WireTensor { .float32(Tensor(shape: [list.count], scalars: list)) }
        return [
            .int32(TokenTensor(shape: [prompts.count], ids: prompts)),
            .int32(TokenTensor(shape: [responses.count], ids: responses)),
            floats(micros.flatMap { $0.advantages.flatMap { $0 } }),
            floats(micros.flatMap { $0.returns.flatMap { $0 } }),
            floats(micros.flatMap { $0.oldLogProbs.flatMap { $0 } }),
            floats(micros.flatMap(\.labels)),
        ]
    }

    /// The micro-batches back from the tensors, checking every length against the spec.
    public func unpack(_ tensors: [WireTensor]) throws -> [MicroBatch] {
        func fail(_ what: String) -> JobSpecError { JobSpecError(message: "gradient job: \(what)") }
        guard tensors.count == 6, case .int32(let p) = tensors[0], case .int32(let r) = tensors[1] else {
            throw fail("expected 6 tensors (prompt ids, response ids, advantages, returns, old log-probs, labels)")
        }
        let f = try tensors[2...].map { t -> [Float] in
            guard case .float32(let x) = t else { throw fail("expected float32 tensors") }
            return x.scalars
        }
        let sequences = microBatchSizes.reduce(0, +)
        let tokens = responseLengths.reduce(0, +)
        guard microBatchIDs.count == microBatchSizes.count, promptLengths.count == sequences,
            responseLengths.count == sequences, promptLengths.allSatisfy({ $0 >= 1 }),
            responseLengths.allSatisfy({ $0 >= 0 }), p.count == promptLengths.reduce(0, +), r.count == tokens
        else { throw fail("lengths do not match the token tensors") }
        let perToken = [f[0], f[1], f[2]].map { $0.count }
        guard perToken.allSatisfy({ $0 == 0 || $0 == tokens }), f[3].isEmpty || f[3].count * 2 == sequences else {
            throw fail("per-token or per-pair tensors do not match the lengths")
        }
        var micros: [MicroBatch] = []
        var (seq, po, ro) = (0, 0, 0)
        for (id, size) in zip(microBatchIDs, microBatchSizes) {
            var prompts: [[Int32]] = [], responses: [[Int32]] = []
            var adv: [[Float]] = [], ret: [[Float]] = [], old: [[Float]] = []
            for s in seq..<(seq + size) {
                prompts.append(Array(p.ids[po..<(po + promptLengths[s])]))
                let range = ro..<(ro + responseLengths[s])
                responses.append(Array(r.ids[range]))
                if !f[0].isEmpty { adv.append(Array(f[0][range])) }
                if !f[1].isEmpty { ret.append(Array(f[1][range])) }
                if !f[2].isEmpty { old.append(Array(f[2][range])) }
                po += promptLengths[s]
                ro += responseLengths[s]
            }
            var micro = MicroBatch(id: id, batch: SequenceBatch(prompts: prompts, responses: responses))
            micro.advantages = adv
            micro.returns = ret
            micro.oldLogProbs = old
            if !f[3].isEmpty { micro.labels = Array(f[3][(seq / 2)..<((seq + size) / 2)]) }
            micros.append(micro)
            seq += size
        }
        return micros
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
