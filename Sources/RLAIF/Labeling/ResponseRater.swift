import Foundation

/// One response for a labeler to rate on its own (direct RLAIF).
public struct RatingItem: Codable, Sendable, Equatable {
    /// Unique within the run: addresses the labeler's random stream.
    public var id: UInt64
    public var prompt: String
    public var response: String

    public init(id: UInt64, prompt: String, response: String) {
        self.id = id
        self.prompt = prompt
        self.response = response
    }
}

/// A labeler's 1–10 rating of one response: a distribution over the scores when the labeler
/// gives probabilities (token log-probs), else the one score it named.
public struct RatingVerdict: Codable, Sendable, Equatable {
    /// P(score = k) for k = 1…10 (sums to 1), or nil when the answer could not be used.
    public var distribution: [Double]?
    public var rationale: String
    /// False when asking again cannot help (see `PairVerdict.retryable`).
    public var retryable = true

    enum CodingKeys: String, CodingKey { case distribution, rationale }

    public init(distribution: [Double]?, rationale: String = "", retryable: Bool = true) {
        self.distribution = distribution
        self.rationale = rationale
        self.retryable = retryable
    }

    /// A definite score: all the probability on `score`.
    public init(score: Int, rationale: String = "") {
        precondition((1...10).contains(score), "RatingVerdict: score \(score) outside 1…10")
        var d = [Double](repeating: 0, count: 10)
        d[score - 1] = 1
        self.init(distribution: d, rationale: rationale)
    }

    /// The probability-weighted score mapped from [1, 10] to [−1, 1] (the direct-RLAIF reward).
    public var reward: Double? {
        guard let distribution, distribution.count == 10 else { return nil }
        let total = distribution.reduce(0, +)
        guard total > 0 else { return nil }
        let mean = zip(1...10, distribution).reduce(0.0) { $0 + Double($1.0) * $1.1 } / total
        return (mean - 5.5) / 4.5
    }

    /// A distribution over 1…10 from the log-probs of the scores (nil: not listed), normalized
    /// over the scores present; nil when none is.
    public static func distribution(fromLogProbs logProbs: [Double?]) -> [Double]? {
        guard logProbs.count == 10, let top = logProbs.compactMap({ $0 }).max() else { return nil }
        let weights = logProbs.map { $0.map { exp($0 - top) } ?? 0 }
        let total = weights.reduce(0, +)
        return weights.map { $0 / total }
    }
}

/// A labeler that rates single responses 1–10 (direct RLAIF: the rating is the reward).
public protocol ResponseRater: Sendable {
    /// `attempt` counts retries of the same items (0 first).
    func rate(_ items: [RatingItem], attempt: Int) async -> [RatingVerdict]
}

/// A rating as the pipeline keeps it: the reward, or nil when every attempt failed (the sample
/// then gets the neutral reward 0 and is counted).
public struct RatingLabel: Codable, Sendable, Equatable {
    public var id: UInt64
    public var reward: Double?
    public var rationale: String
    public var retries: Int
}

/// Asks a rater about responses, retrying unusable answers.
public struct DirectRating: Sendable {
    public let rater: any ResponseRater
    public let retries: Int

    public init(rater: any ResponseRater, retries: Int) {
        self.rater = rater
        self.retries = retries
    }

    public func rate(_ items: [RatingItem]) async -> [RatingLabel] {
        let (verdicts, retried) = await askingAgain(
            items, retries: retries, settled: { $0.reward != nil || !$0.retryable }
        ) {
            await rater.rate($0, attempt: $1)
        }
        return items.indices.map {
            RatingLabel(
                id: items[$0].id, reward: verdicts[$0].reward, rationale: verdicts[$0].rationale, retries: retried[$0])
        }
    }
}
