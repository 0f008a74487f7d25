import Models
import Tensor

/// The models one worker holds: the policy with its value head, the frozen reference (the SFT
/// policy, for the KL penalty and DPO) and the reward model, each with its optimizer state.
///
/// Every replica in a run starts from the same seed and applies the same all-reduced updates, so
/// replicas at the same `version` hold the same bits. `version` counts the optimizer steps applied
/// to any model; a replica that fell behind is overwritten from a peer's snapshot.
public final class ModelReplica: @unchecked Sendable {
    public enum Role: String, Codable, Sendable, CaseIterable {
        case policy, reference, reward
    }

    /// The longest sequence a job may bring: the run's context, within the model's.
    public let contextLength: Int
    public let seed: UInt64
    public let tokenizer: any Tokenizer
    public let policy: any CausalLanguageModel
    public let valueHead: ScalarHead
    public let policyParameters: ParameterSet
    var policyOptimizer: AdamW
    public private(set) var reference: (any CausalLanguageModel)?
    private var referenceParameters: ParameterSet?
    public private(set) var reward: RewardModel?
    public private(set) var rewardParameters: ParameterSet?
    var rewardOptimizer: AdamW
    public var version: UInt64 = 0

    public static let valueHeadPrefix = "v_head.summary"

    public convenience init(settings: RunSettings, weightDecay: Float = 0) throws {
        try self.init(
            model: try RunModel(settings: settings), settings: settings, weightDecay: weightDecay)
    }

    public convenience init(model: RunModel, settings: RunSettings, weightDecay: Float = 0) throws {
        let policy = try model.policy(seed: settings.run.seed, expectedDigest: settings.model.initDigest)
        policy.gradientCheckpointing = settings.model.gradientCheckpointing
        policy.productPrecision = settings.model.precision
        self.init(
            policy: policy, tokenizer: model.tokenizer, seed: settings.run.seed,
            contextLength: min(settings.model.contextLength, policy.contextLength), weightDecay: weightDecay)
    }

    /// A replica around `policy` (built from `seed` or read from a checkpoint); the value head is
    /// drawn from `seed`.
    public init(
        policy: any CausalLanguageModel, tokenizer: any Tokenizer, seed: UInt64, contextLength: Int,
        weightDecay: Float = 0
    ) {
        self.seed = seed
        self.tokenizer = tokenizer
        self.policy = policy
        self.contextLength = contextLength
        valueHead = ScalarHead(width: policy.width, bias: true, seed: seed, index: 7)
        policyParameters = ParameterSet(
            policy.namedParameters + valueHead.namedParameters(prefix: Self.valueHeadPrefix))
        policyOptimizer = AdamW(weightDecay: weightDecay)
        rewardOptimizer = AdamW(weightDecay: weightDecay)
    }

    /// Freezes a copy of the policy as the reference (done once, when SFT ends).
    public func forkReference() {
        let copy = policy.copy()
        reference = copy
        referenceParameters = ParameterSet(copy.namedParameters)
    }

    /// Starts the reward model from the policy's backbone with a fresh score head (as the paper
    /// initializes its reward model from the SFT model).
    public func forkReward() {
        let model = RewardModel(backbone: policy.copy(), seed: seed)
        reward = model
        rewardParameters = ParameterSet(model.namedParameters)
        rewardOptimizer = AdamW(weightDecay: rewardOptimizer.weightDecay)
    }

    public func parameters(_ role: Role) -> ParameterSet? {
        switch role {
        case .policy: policyParameters
        case .reference: referenceParameters
        case .reward: rewardParameters
        }
    }

    /// Applies one optimizer step to `role` from `gradients` (the reduced sum, laid out like its
    /// parameters), clipped to `clipNorm` (0: not clipped); returns the norm before clipping.
    public func step(_ role: Role, gradients: UnsafePointer<Float>, learningRate: Float, clipNorm: Float) -> Float {
        guard let parameters = parameters(role) else { return 0 }
        let norm = ParameterSet.norm(of: gradients, count: parameters.count)
        // The clip factor goes into the update's own pass over the gradients.
        let scale = clipNorm > 0 ? ParameterSet.clipScale(norm: norm, maxNorm: clipNorm) : 1
        switch role {
        case .policy:
            policyOptimizer.update(parameters, gradients: gradients, scale: scale, learningRate: learningRate)
        case .reward:
            rewardOptimizer.update(parameters, gradients: gradients, scale: scale, learningRate: learningRate)
        case .reference: preconditionFailure("the reference model is frozen")
        }
        return norm
    }

    // MARK: Snapshots

    /// One model's full state: weights, optimizer moments and step count.
    public struct ModelState: Sendable {
        public var role: Role
        public var values: Tensor
        public var firstMoment: Tensor?
        public var secondMoment: Tensor?
        public var optimizerStep: Int
        public init(role: Role, values: Tensor, firstMoment: Tensor?, secondMoment: Tensor?, optimizerStep: Int) {
            self.role = role
            self.values = values
            self.firstMoment = firstMoment
            self.secondMoment = secondMoment
            self.optimizerStep = optimizerStep
        }
    }

    /// The state of every model this replica has, policy last (receivers commit on the policy);
    /// without `moments`, the AdamW moments are left out (not copied).
    public func snapshot(moments: Bool = true) -> [ModelState] {
        var out: [ModelState] = []
        if let referenceParameters {
            out.append(
                ModelState(
                    role: .reference, values: referenceParameters.values.copy(), firstMoment: nil, secondMoment: nil,
                    optimizerStep: 0))
        }
        if let rewardParameters {
            out.append(
                ModelState(
                    role: .reward, values: rewardParameters.values.copy(),
                    firstMoment: moments ? rewardOptimizer.firstMoment?.copy() : nil,
                    secondMoment: moments ? rewardOptimizer.secondMoment?.copy() : nil,
                    optimizerStep: rewardOptimizer.step))
        }
        out.append(
            ModelState(
                role: .policy, values: policyParameters.values.copy(),
                firstMoment: moments ? policyOptimizer.firstMoment?.copy() : nil,
                secondMoment: moments ? policyOptimizer.secondMoment?.copy() : nil, optimizerStep: policyOptimizer.step)
        )
        return out
    }

    /// Takes a snapshot's states; models it lacks are dropped (they did not exist at that version).
    public func restore(_ states: [ModelState], version: UInt64) throws {
        // New weights: what was packed for decode steps is stale, whatever the version says.
        policy.decodeWeightsVersion = nil
        reference?.decodeWeightsVersion = nil
        var roles = Set<Role>()
        for state in states {
            roles.insert(state.role)
            switch state.role {
            case .reference: if reference == nil { forkReference() }
            case .reward: if reward == nil { forkReward() }
            case .policy: break
            }
            let parameters = parameters(state.role)!
            guard state.values.count == parameters.count else {
                throw ReplicaError(
                    message: "snapshot of \(state.role) has \(state.values.count) values, the model \(parameters.count)"
                )
            }
            parameters.values.assign(state.values.reshaped([parameters.count]))
            if let m = state.firstMoment, let v = state.secondMoment {
                guard m.count == parameters.count, v.count == parameters.count else {
                    throw ReplicaError(message: "snapshot of \(state.role) has optimizer state of the wrong size")
                }
                switch state.role {
                case .policy: policyOptimizer.restore(step: state.optimizerStep, firstMoment: m, secondMoment: v)
                case .reward: rewardOptimizer.restore(step: state.optimizerStep, firstMoment: m, secondMoment: v)
                case .reference: break
                }
            } else {
                switch state.role {
                case .policy: policyOptimizer = AdamW(weightDecay: policyOptimizer.weightDecay)
                case .reward: rewardOptimizer = AdamW(weightDecay: rewardOptimizer.weightDecay)
                case .reference: break
                }
            }
        }
        if !roles.contains(.reference) {
            reference = nil
            referenceParameters = nil
        }
        if !roles.contains(.reward) {
            reward = nil
            rewardParameters = nil
        }
        self.version = version
    }

    /// The weights' values in checksum order: policy, then the reference and reward models if
    /// they exist.
    private var weightTensors: [Tensor] {
        [policyParameters.values] + [referenceParameters?.values, rewardParameters?.values].compactMap { $0 }
    }

    /// FNV-1a over the bits of every model's weights: equal replicas give equal checksums.
    public func checksum() -> String { weightTensors.map(\.checksum).joined(separator: "-") }

    /// `checksum()` of the replica a snapshot restores (the run's summary and checkpoints).
    public static func checksum(of states: [ModelState]) -> String {
        let byRole = Dictionary(states.map { ($0.role, $0.values) }) { _, last in last }
        return [Role.policy, .reference, .reward].compactMap { byRole[$0]?.checksum }.joined(separator: "-")
    }

    /// A fast hash of every model's weights, compared across ranks after each step.
    public func fingerprint() -> String {
        weightTensors.map { Tensor.hex($0.fingerprint) }.joined(separator: "-")
    }
}

public struct ReplicaError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public var description: String { message }
}
