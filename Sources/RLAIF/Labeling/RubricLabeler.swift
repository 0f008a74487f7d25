import Foundation
import Tensor

/// A stand-in for an AI labeler on the synthetic task — not a language model. It judges with the
/// task's rubric but has the flaws of real LLM judges, each configurable: noisy scores, a bonus
/// for whichever response it reads first (position bias), a bonus per character (length bias),
/// and occasional unusable answers. Its verdicts are probabilities, like a judge's token
/// log-probs, and are a pure function of (seed, pair id, order, attempt).
public struct RubricLabeler: PairLabeler, ResponseRater {
    public let seed: UInt64
    public let noise: Double
    public let positionBias: Double
    public let lengthBias: Double
    public let invalidRate: Double

    public init(seed: UInt64, noise: Double, positionBias: Double, lengthBias: Double, invalidRate: Double) {
        self.seed = seed
        self.noise = noise
        self.positionBias = positionBias
        self.lengthBias = lengthBias
        self.invalidRate = invalidRate
    }

    public func judge(_ pairs: [LabelingPair], attempt: Int) async -> [PairVerdict] {
        pairs.map { judge($0, attempt: attempt) }
    }

    func judge(_ pair: LabelingPair, attempt: Int) -> PairVerdict {
        guard let post = FactSummaryTask.post(fromPrompt: pair.prompt) else {
            return PairVerdict(probabilityFirst: nil, rationale: "the prompt is not a fact-summary post")
        }
        // Each question (pair, order, attempt) draws its own noise.
        let order = UInt64(pair.order)
        var rng = RandomStream(seed: seed, purpose: .labeler, step: UInt64(attempt) * 2 + order, index: pair.id)
        if Double(rng.nextUniform()) < invalidRate {
            return PairVerdict(probabilityFirst: nil, rationale: "Summary 3 is best.")  // garbage
        }
        func score(_ r: String) -> Double {
            FactSummaryTask.quality(of: r, for: post) + lengthBias * Double(r.count) + noise * Double(rng.nextNormal())
        }
        let (s1, s2) = (score(pair.first) + positionBias, score(pair.second))
        let p = 1 / (1 + exp(-(s1 - s2) * 2))
        let better = p >= 0.5 ? "1" : "2"
        return PairVerdict(
            probabilityFirst: p,
            rationale: String(format: "Summary %@ covers the post better (rubric %.2f vs %.2f).", better, s1, s2))
    }

    public func rate(_ items: [RatingItem], attempt: Int) async -> [RatingVerdict] {
        items.map { rate($0, attempt: attempt) }
    }

    /// A 1–10 rating as a judge's token probabilities would give it: a discretized normal around
    /// 5.5 + 1.5 × (noisy, length-biased quality), so the ideal summary rates about 10.
    func rate(_ item: RatingItem, attempt: Int) -> RatingVerdict {
        guard let post = FactSummaryTask.post(fromPrompt: item.prompt) else {
            return RatingVerdict(distribution: nil, rationale: "the prompt is not a fact-summary post")
        }
        var rng = RandomStream(seed: seed, purpose: .labeler, step: 1 << 20 | UInt64(attempt), index: item.id)
        if Double(rng.nextUniform()) < invalidRate {
            return RatingVerdict(distribution: nil, rationale: "Rating: great!")
        }
        let quality =
            FactSummaryTask.quality(of: item.response, for: post) + lengthBias * Double(item.response.count)
            + noise * Double(rng.nextNormal())
        let center = 5.5 + 1.5 * quality
        let weights = (1...10).map { exp(-pow(Double($0) - center, 2) / 2) }
        let total = weights.reduce(0, +)
        return RatingVerdict(
            distribution: weights.map { $0 / total }, rationale: String(format: "Rubric score %.2f.", quality))
    }
}
