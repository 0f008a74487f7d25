import Foundation
import Protocol
import Tensor

/// What one replica does for each kind of job, on the engine thread: rollouts, scores and
/// labeling; a gradient step's two halves around its all-reduce; snapshots out and in. A worker
/// runs it behind its socket (with a ring between the halves); `LocalCluster` runs several in
/// one process (with an in-memory sum between them), so both run the same code.
public final class ReplicaJobs: Sendable {
    public let settings: RunSettings
    public let replica: ModelReplica
    /// The run's labeler, or why it could not be built here (reported by each labeling job).
    public let labeler: Result<any AILabeler, JobSpecError>
    /// Where labeling jobs report each answer as it arrives (the run's answer journal).
    public let answers = AnswerSink()

    /// `labelerGate`: where the labeler asks for its budget's grants (the run's desk, or the
    /// coordinator's through this worker's connection); needed when the settings set a budget.
    public init(settings: RunSettings, labelerGate: (any LabelerGate)? = nil) throws {
        self.settings = settings
        replica = try ModelReplica(settings: settings)
        labeler = Result { () throws(JobSpecError) in
            if settings.labeler.budget != nil && labelerGate == nil {
                throw JobSpecError(message: "the run sets a labeler budget, and this replica has no line to it")
            }
            return try LabelerFactory.labeler(settings, gate: labelerGate)
        }
    }

    /// A rollout, scores or labeling job. `weightsVersion`: the version jobs that use the
    /// weights must run at.
    public func run(_ job: Job, weightsVersion: UInt64) async throws -> JobOutput {
        let replica = self.replica
        switch job {
        case .rollout(let spec):
            try requireVersion(weightsVersion)
            return .samples(try await Engine.shared.run { try replica.rollout(spec) })
        case .scores(let spec):
            try requireVersion(weightsVersion)
            return .scores(try await Engine.shared.run { try replica.scores(spec) })
        case .labeling(let spec):
            return try await label(spec)
        }
    }

    private func label(_ spec: LabelingSpec) async throws -> JobOutput {
        let labeler = RecordingLabeler(inner: try self.labeler.get(), known: spec.known, sink: answers)
        let l = settings.labeler
        if let items = spec.ratings {
            return .ratings(await DirectRating(rater: labeler, retries: l.retries).rate(items))
        }
        let labeling = PreferenceLabeling(
            labeler: labeler, bothOrders: l.bothOrders,
            retries: l.retries, ambiguityMargin: l.ambiguityMargin)
        return .preferences(await labeling.label(spec.pairs))
    }

    public func requireVersion(_ version: UInt64) throws {
        guard replica.version == version else {
            throw JobSpecError(message: "weights at version \(replica.version), the job needs \(version)")
        }
    }

    /// The first half of a step: this rank's exact gradient sum over its micro-batches (the
    /// reference and reward models are forked first when the spec asks).
    public func gradientSum(_ spec: GradientSpec, _ micros: [MicroBatch], at version: UInt64) async throws -> ExactSum {
        try requireVersion(version)
        let replica = self.replica
        let objective = spec.resolvedObjective
        return try await Engine.shared.run { () throws -> ExactSum in
            if spec.forkReference && replica.reference == nil { replica.forkReference() }
            if spec.forkReward && replica.reward == nil { replica.forkReward() }
            return try replica.gradientSum(objective, micros, normalizer: Float(spec.normalizer))
        }
    }

    /// The second half: applies the all-reduced gradient; the step's result (the same on every rank).
    public func apply(_ reduced: Tensor, _ spec: GradientSpec) async -> GradientResult {
        let replica = self.replica
        let objective = spec.resolvedObjective
        let (norm, metrics, fingerprint) = await Engine.shared.run {
            let (norm, metrics) = replica.apply(
                reduced, objective: objective, learningRate: Float(spec.learningRate), clipNorm: Float(spec.clipNorm))
            return (norm, metrics, replica.fingerprint())
        }
        return GradientResult(
            version: replica.version, fingerprint: fingerprint, metrics: metrics, gradientNorm: Double(norm))
    }

    /// Every model's state, as `weights` messages of the replica's version.
    public func snapshot() async -> [Wire.Weights] {
        let replica = self.replica
        let (states, version) = await Engine.shared.run { (replica.snapshot(), replica.version) }
        return states.map { $0.weights(version: version) }
    }

    /// Every model's weights without optimizer state (what a broadcast sends), and the version.
    public func weights() async -> (states: [ModelReplica.ModelState], version: UInt64) {
        let replica = self.replica
        return await Engine.shared.run { (replica.snapshot(moments: false), replica.version) }
    }

    /// Takes a snapshot's states (the policy last) as the replica at `version`.
    public func restore(_ states: [ModelReplica.ModelState], version: UInt64) async throws -> ReplicaReport {
        guard states.last?.role == .policy else {
            throw JobSpecError(message: "synchronize without a complete snapshot")
        }
        let replica = self.replica
        try await Engine.shared.run { try replica.restore(states, version: version) }
        let fingerprint = await Engine.shared.run { replica.fingerprint() }
        return ReplicaReport(version: replica.version, fingerprint: fingerprint)
    }
}
