import Foundation

/// One line of `metrics.jsonl`. The writer (`EventLog`), `rlaif status` and the tests all read and
/// write this type, so the schema lives here and nowhere else: `{"event": <kind>, …fields, "t": s}`.
public enum RunEvent: Sendable, Equatable {
    case runStarted(name: String, seed: String, coordinator: String)
    case resumed(phase: String, done: Int, version: UInt64)
    case phase(String)
    case workerJoined(worker: String, name: String, host: String, pid: Int, ring: String, key: String?)
    case workerLost(worker: String, reason: String)
    /// One job's accepted result, the worker that produced it and seconds from sending to result.
    case job(job: UInt64, kind: String, worker: String, attempt: Int, seconds: Double)
    /// One failed attempt at a job (reported, or its lease passed); it is queued again.
    case jobFailed(kind: String, worker: String, reason: String)
    /// An optimizer step committed by every participant of one ring.
    case step(version: UInt64, participants: [String], epoch: Int, fingerprint: String)
    case stepRetry(version: UInt64, epoch: Int)
    /// A worker's full state read for a checkpoint or to bring other workers up to date.
    case snapshot(version: UInt64, from: String, purpose: SnapshotPurpose)
    /// A snapshot shipped to a worker that was behind (a joiner, or one back after a failure).
    case synchronized(worker: String, version: UInt64)
    /// A trainer's weights sent down a chain of rollout workers, one copy leaving it.
    case broadcast(version: UInt64, from: String, chain: [String])
    case metrics(StepMetrics)
    case checkpoint(directory: String, phase: String, done: Int, version: UInt64)
    case labels(phase: String, valid: Int, ambiguous: Int, invalid: Int, retries: Int)
    case rewardModelAccuracy(labeler: Double?, groundTruth: Double?, heldOut: Int)
    /// Preference pairs read from the user's data (`task.preferences`) into the dataset.
    case preferenceData(path: String, pairs: Int)
    case ratings(failed: Int, rated: Int)
    /// Questions of a phase answered from the label journal, not asked again.
    case labelsFromJournal(phase: String, count: Int)
    /// Questions sent to the labeler, and the journal's size then: what `rlaif status` counts as
    /// in flight is the questions not yet journaled since.
    case labelsRequested(phase: String, questions: Int, journaled: Int)
    /// The labeler budget's use over its last window, and its limits (nil: that one is unset).
    case labelerBudget(requests: Int, tokens: Int, requestLimit: Int?, tokenLimit: Int?)
    /// What a phase's labels say about the labeler: both orders agreeing, the first position's
    /// pull, and (where the task has ground truth) how often it is right, debiased and single-order.
    case labelerAudit(phase: String, pairsPerSecond: Double, audit: LabelAudit, alignment: RunSummary.Alignment)
    /// The policy against SFT on held-out prompts, during RL and at the end.
    case evaluation(Evaluation)
    case runFinished(jobsPerWorker: [String: Int])
    case interrupted

    public enum SnapshotPurpose: String, Codable, Sendable {
        case checkpoint, synchronize
    }

    /// A logged optimizer step: what every rank agreed on, and the phase's own figures.
    public struct StepMetrics: Sendable, Equatable {
        public var phase: String
        public var version: UInt64
        public var gradientNorm: Double
        /// `ModelReplica.fingerprint()` of the weights after the step.
        public var fingerprint: String
        /// The objective's metrics (loss, accuracy, …) and the driver's (reward, kl, epoch, …).
        public var values: [String: Double]
        public init(phase: String, version: UInt64, gradientNorm: Double, fingerprint: String, values: [String: Double])
        {
            self.phase = phase
            self.version = version
            self.gradientNorm = gradientNorm
            self.fingerprint = fingerprint
            self.values = values
        }
    }

    /// One comparison of the policy with the SFT policy.
    public struct Evaluation: Codable, Sendable, Equatable {
        /// The RL iterations done when it ran (nil: a method without RL iterations).
        public var iteration: Int?
        public var prompts: Int
        public var winRate: RunSummary.WinRate
        public var kl: Double
        public var responseLength: RunSummary.Pair
        public var groundTruthQuality: RunSummary.Pair
        public var examples: [Example]

        public init(
            iteration: Int?, prompts: Int, winRate: RunSummary.WinRate, kl: Double, responseLength: RunSummary.Pair,
            groundTruthQuality: RunSummary.Pair, examples: [Example]
        ) {
            self.iteration = iteration
            self.prompts = prompts
            self.winRate = winRate
            self.kl = kl
            self.responseLength = responseLength
            self.groundTruthQuality = groundTruthQuality
            self.examples = examples
        }

        enum CodingKeys: String, CodingKey {
            case iteration, prompts, kl, examples
            case winRate = "win_rate"
            case responseLength = "response_length"
            case groundTruthQuality = "ground_truth_quality"
        }
    }

    /// A held-out prompt with both responses and the labeler's P(policy's is better).
    public struct Example: Codable, Sendable, Equatable {
        public var prompt: String
        public var policy: String
        public var sft: String
        public var preference: Double?

        public init(prompt: String, policy: String, sft: String, preference: Double?) {
            self.prompt = prompt
            self.policy = policy
            self.sft = sft
            self.preference = preference
        }
    }

    /// The `event` field.
    public var kind: String {
        switch self {
        case .runStarted: "run_started"
        case .resumed: "resumed"
        case .phase: "phase"
        case .workerJoined: "worker_joined"
        case .workerLost: "worker_lost"
        case .job: "job"
        case .jobFailed: "job_failed"
        case .step: "step"
        case .stepRetry: "step_retry"
        case .snapshot: "snapshot"
        case .synchronized: "synchronized"
        case .broadcast: "broadcast"
        case .metrics: "metrics"
        case .checkpoint: "checkpoint"
        case .labels: "labels"
        case .rewardModelAccuracy: "reward_model_accuracy"
        case .preferenceData: "preference_data"
        case .ratings: "ratings"
        case .labelsFromJournal: "labels_from_journal"
        case .labelsRequested: "labels_requested"
        case .labelerBudget: "labeler_budget"
        case .labelerAudit: "labeler_audit"
        case .evaluation: "evaluation"
        case .runFinished: "run_finished"
        case .interrupted: "interrupted"
        }
    }
}

/// A line as written: the event and the seconds since the log was opened.
public struct RunEventLine: Codable, Sendable, Equatable {
    public var event: RunEvent
    public var time: Double

    public init(_ event: RunEvent, time: Double) {
        self.event = event
        self.time = time
    }

    /// Every line of a `metrics.jsonl`; lines that are not events (a torn last line) are skipped.
    public static func read(_ url: URL) throws -> [RunEventLine] {
        let decoder = JSONDecoder()
        return try String(contentsOf: url, encoding: .utf8).split(separator: "\n").compactMap {
            try? decoder.decode(RunEventLine.self, from: Data($0.utf8))
        }
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: EventKey.self)
        time = try c.decodeIfPresent(Double.self, forKey: "t") ?? 0
        event = try RunEvent(from: c)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: EventKey.self)
        try c.encode(event.kind, forKey: "event")
        try c.encode(time, forKey: "t")
        try event.encodeFields(into: &c)
    }
}

/// Field names of event lines, open-ended because a step's metrics are named by its objective.
struct EventKey: CodingKey, ExpressibleByStringLiteral {
    let stringValue: String
    init(stringValue: String) { self.stringValue = stringValue }
    init(stringLiteral value: String) { stringValue = value }
    var intValue: Int? { nil }
    init?(intValue: Int) { nil }
}
