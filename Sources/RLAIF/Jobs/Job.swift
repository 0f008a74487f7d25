import Protocol

/// A self-contained job the run hands to any worker, as a value (a gradient step is not one: it
/// needs a ring, and travels as a `GradientSpec` with its micro-batches).
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

/// The wire form of jobs and their outputs, and only here: an assignment's kind, spec document
/// and tensors (docs/PROTOCOL.md, Job specs).
extension Job {
    public var wire: (kind: Wire.JobKind, spec: String, tensors: [WireTensor]) {
        switch self {
        case .rollout(let s): (.rollout, JobSpecs.encode(s), [])
        case .labeling(let s): (.labeling, JobSpecs.encode(s), [])
        case .scores(let s): (.evaluation, JobSpecs.encode(s), [])
        }
    }

    public init(kind: Wire.JobKind, spec: String) throws {
        switch kind {
        case .rollout: self = .rollout(try JobSpecs.decode(RolloutSpec.self, spec))
        case .labeling: self = .labeling(try JobSpecs.decode(LabelingSpec.self, spec))
        case .evaluation: self = .scores(try JobSpecs.decode(ScoreSpec.self, spec))
        case .gradient, .synchronize: throw JobSpecError(message: "a \(kind) job is not a self-contained job")
        }
    }
}

extension JobOutput {
    public var wire: (spec: String, tensors: [WireTensor]) {
        switch self {
        case .samples(let samples): RolloutResult.pack(samples)
        case .preferences(let labels): (JobSpecs.encode(labels), [])
        case .ratings(let labels): (JobSpecs.encode(labels), [])
        case .scores(let scores): (JobSpecs.encode(scores), [])
        }
    }

    /// Reads the output of `job` from a result's spec and tensors.
    public init(of job: Job, spec: String, tensors: [WireTensor]) throws {
        switch job {
        case .rollout: self = .samples(try RolloutResult.unpack(spec: spec, tensors: tensors))
        case .labeling(let s) where s.ratings != nil: self = .ratings(try JobSpecs.decode([RatingLabel].self, spec))
        case .labeling: self = .preferences(try JobSpecs.decode([PreferenceLabel].self, spec))
        case .scores: self = .scores(try JobSpecs.decode([Float].self, spec))
        }
    }
}
