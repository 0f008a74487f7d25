import Protocol

/// A self-contained job the run hands to any worker, as a value (a gradient step is not one: it
/// needs a ring, and travels as a `GradientJob`).
public enum Job: Sendable, Equatable {
    case rollout(RolloutSpec)
    case labeling(LabelingSpec)
    /// Reward-model scores of (prompt, response) texts.
    case scores(ScoreSpec)

    /// Rollouts and scores need the replica at the committed version; labeling does not.
    public var needsWeights: Bool {
        switch self {
        case .rollout, .scores: true
        case .labeling: false
        }
    }
}

/// What a job gives back, by kind.
public enum JobOutput: Sendable, Equatable {
    case samples([RolloutSample])
    case preferences([PreferenceLabel])
    case ratings([RatingLabel])
    case scores([Float])

    /// The error a caller reports when it gets another kind than it asked for.
    public static func mismatch(_ expected: String, _ got: JobOutput) -> JobSpecError {
        JobSpecError(message: "expected \(expected) from the job, got \(got.kindName)")
    }

    var kindName: String {
        switch self {
        case .samples: "rollout samples"
        case .preferences: "preference labels"
        case .ratings: "ratings"
        case .scores: "scores"
        }
    }
}
