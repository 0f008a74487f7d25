import Models
import Tensor

/// What a gradient job minimizes. Each loss is a sum over the micro-batch divided by a normalizer
/// that covers the whole optimizer step (all micro-batches, on all workers), so the exact sum of
/// the micro-batch gradients is the step's gradient, whoever computed which part.
public enum Objective: Sendable, Equatable {
    /// Supervised fine-tuning: −Σ log π(response token) / normalizer.
    case sft
    /// Reward model on soft labels: cross-entropy between (p, 1 − p) and softmax(r_A, r_B).
    case reward
    /// The policy gradient with a value baseline (the paper's): −Σ A·log π, plus the value loss.
    case policyGradient(valueCoefficient: Float)
    /// PPO: clipped ratio objective plus the value loss.
    case ppo(clip: Float, valueCoefficient: Float)
    /// DPO on soft labels against the reference.
    case dpo(beta: Float)
    /// Critic-free (GRPO, RLOO): the clipped ratio objective on per-response advantages, plus
    /// `klBeta` times the k3 estimate of KL to the reference, exp(r − l) − (r − l) − 1 per token.
    case groupPolicy(clip: Float, klBeta: Float)

    public var role: ModelReplica.Role {
        switch self {
        case .reward: .reward
        case .sft, .policyGradient, .ppo, .dpo, .groupPolicy: .policy
        }
    }

    /// Names of the sums each loss reports (all-reduced with the gradient).
    public var metricNames: [String] {
        switch self {
        case .sft: ["loss"]
        case .reward, .dpo: ["loss", "accuracy"]
        case .policyGradient, .ppo: ["loss", "policy_loss", "value_loss", "clipped"]
        case .groupPolicy: ["loss", "policy_loss", "kl_k3", "clipped"]
        }
    }
}

/// One micro-batch's inputs. Pairs (reward, DPO) are laid out as sequences A₀, B₀, A₁, B₁, ….
public struct MicroBatch: Sendable {
    public var id: Int
    public var batch: SequenceBatch
    /// Per response token (PPO / policy gradient): advantages, returns, old log-probs.
    public var advantages: [[Float]] = []
    public var returns: [[Float]] = []
    public var oldLogProbs: [[Float]] = []
    /// Per pair (reward, DPO): P(A better).
    public var labels: [Float] = []

    public init(id: Int, batch: SequenceBatch) {
        self.id = id
        self.batch = batch
    }
}

extension ModelReplica {
    /// Policy log-probs of every response token and the value head's estimates at the same
    /// positions, each (B, T) with zeros outside the responses.
    func policyForward(_ batch: SequenceBatch) -> (logProbs: Variable, values: Variable) {
        let hidden = policy.hiddenStates(batch.padded.ids)
        let logProbs = policy.headLogProbs(hidden, targets: batch.responseTargets)
        let values = valueHead(hidden).reshaped([batch.count, batch.width]) * Variable(batch.responseMask)
        return (logProbs, values)
    }

    /// Reference log-probs of every response token (no graph).
    func referenceLogProbs(_ batch: SequenceBatch) -> Tensor {
        let model = reference ?? policy
        return Autograd.inferenceMode {
            model.headLogProbs(model.hiddenStates(batch.padded.ids), targets: batch.responseTargets).value
        }
    }

    /// The loss of one micro-batch and its metric sums (in `objective.metricNames` order).
    public func loss(_ objective: Objective, _ micro: MicroBatch, normalizer: Float) -> (Variable, [Float]) {
        let batch = micro.batch
        let scale = 1 / normalizer
        switch objective {
        case .sft:
            let lp = policyForward(batch).logProbs
            let loss = lp.sum() * (-scale)
            return (loss, [loss.value[flat: 0]])
        case .reward:
            guard let reward else { preconditionFailure("reward objective before the reward model exists") }
            let scores = reward.scores(batch.padded)  // (2P): A₀, B₀, A₁, B₁, …
            return pairLoss(scores.reshaped([batch.count / 2, 2]), labels: micro.labels, scale: scale)
        case .dpo(let beta):
            let lp = policyForward(batch).logProbs.sum(axis: 1)  // (2P)
            let ref = Variable(referenceLogProbs(batch)).sum(axis: 1).value
            let z = (lp - Variable(ref)) * beta
            return pairLoss(z.reshaped([batch.count / 2, 2]), labels: micro.labels, scale: scale)
        case .policyGradient(let valueCoefficient), .ppo(_, let valueCoefficient):
            let (lp, values) = policyForward(batch)
            let advantages = batch.perToken(micro.advantages)
            let returns = Variable(batch.perToken(micro.returns))
            let policyLoss: Variable
            var clipped: Float = 0
            if case .ppo(let clip, _) = objective {
                (policyLoss, clipped) = clippedRatioLoss(lp, micro, advantages, clip: clip, scale: scale)
            } else {
                policyLoss = (lp * Variable(advantages)).sum() * (-scale)
            }
            let error = values - returns
            let valueLoss = (error * error).sum() * (0.5 * scale)
            let loss = policyLoss + valueLoss * valueCoefficient
            return (loss, [loss.value[flat: 0], policyLoss.value[flat: 0], valueLoss.value[flat: 0], clipped * scale])
        case .groupPolicy(let clip, let klBeta):
            let lp = policyForward(batch).logProbs
            let advantages = batch.perToken(micro.advantages)
            let (policyLoss, clipped) = clippedRatioLoss(lp, micro, advantages, clip: clip, scale: scale)
            // k3 = exp(x) − x − 1 with x = log π_ref − log π: its gradient is that of exp(x) − x
            // (the −1 is reported, not differentiated); padded positions are masked out.
            let mask = Variable(batch.responseMask)
            let x = (Variable(referenceLogProbs(batch)) - lp) * mask
            let k3 = ((x.exp() - x) * mask).sum()
            let tokens = batch.responseMask.scalars.reduce(0, +)
            let kl = (k3.value[flat: 0] - tokens) * scale
            let loss = policyLoss + k3 * (klBeta * scale)
            return (loss, [policyLoss.value[flat: 0] + klBeta * kl, policyLoss.value[flat: 0], kl, clipped * scale])
        }
    }

    /// PPO's clipped objective: ratio = π/π_old; min(ratio·A, clip(ratio)·A). Where the clipped
    /// term is the smaller one its gradient is zero, so those tokens are masked out. The loss and
    /// the count of clipped tokens.
    private func clippedRatioLoss(
        _ lp: Variable, _ micro: MicroBatch, _ advantages: Tensor, clip: Float, scale: Float
    ) -> (Variable, Float) {
        let old = micro.batch.perToken(micro.oldLogProbs)
        let ratio = (lp - Variable(old)).exp()
        let keep = Tensor(zeros: advantages.shape)
        let mask = micro.batch.responseMask
        var clipped: Float = 0
        for i in 0..<keep.count where mask[flat: i] != 0 {
            let r = ratio.value[flat: i], a = advantages[flat: i]
            let unclipped = r * a, bounded = min(max(r, 1 - clip), 1 + clip) * a
            if unclipped <= bounded { keep[flat: i] = a } else { clipped += 1 }
        }
        return ((ratio * Variable(keep)).sum() * (-scale), clipped)
    }

    /// Soft-label pair loss on (P, 2) logits (A, B): −Σ p·log σ(a − b) + (1 − p)·log σ(b − a).
    private func pairLoss(_ logits: Variable, labels: [Float], scale: Float) -> (Variable, [Float]) {
        let p = logits.shape[0]
        precondition(labels.count == p, "pair loss: \(labels.count) labels for \(p) pairs")
        let target = Tensor(zeros: [p, 2])
        var correct: Float = 0
        for i in 0..<p {
            target[flat: 2 * i] = labels[i]
            target[flat: 2 * i + 1] = 1 - labels[i]
            let (a, b) = (logits.value[flat: 2 * i], logits.value[flat: 2 * i + 1])
            if labels[i] != 0.5 && (a > b) == (labels[i] > 0.5) { correct += 1 }
        }
        let loss = (logits.logSoftmax() * Variable(target)).sum() * (-scale)
        return (loss, [loss.value[flat: 0], correct * scale])
    }
}
