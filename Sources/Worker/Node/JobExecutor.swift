import Foundation
import Logging
import Models
import Protocol
import RLAIF
import Tensor

/// Runs one worker's jobs: rollouts, scoring and gradient steps on the model replica (through the
/// engine thread), labeling through the run's labeler, and weight snapshots in and out.
actor JobExecutor {
    let settings: RunSettings
    let workerID: UInt32
    let ring: RingLink
    let logger: Logger
    let replica: ModelReplica
    /// The run's labeler, or why it could not be built here (reported by each labeling job).
    let labeler: Result<any AILabeler, JobSpecError>
    /// Model states received for the next `synchronize` assignment.
    private var staged: [ModelReplica.ModelState] = []

    init(settings: RunSettings, workerID: UInt32, ring: RingLink, logger: Logger) throws {
        self.settings = settings
        self.workerID = workerID
        self.ring = ring
        self.logger = logger
        replica = try ModelReplica(config: settings.gpt2Config, seed: settings.run.seed)
        labeler = Result { () throws(JobSpecError) in try LabelerFactory.labeler(settings) }
    }

    func handle(_ message: Wire.Message) async -> [Wire.Message] {
        switch message {
        case .assign(let a):
            do {
                let (spec, tensors, metrics) = try await run(a)
                return [
                    .result(
                        .init(
                            jobID: a.jobID, attempt: a.attempt, workerID: workerID, status: .succeeded,
                            metrics: metrics, spec: spec, tensors: tensors))
                ]
            } catch {
                logger.warning("job \(a.jobID) (\(a.kind)) failed: \(error)")
                return [
                    .result(
                        .init(
                            jobID: a.jobID, attempt: a.attempt, workerID: workerID, status: .failed,
                            message: "\(error)", spec: JobSpecs.encode(ReplicaReport(version: replica.version))))
                ]
            }
        case .weightsRequest:
            return await snapshotMessages()
        case .weights(let w):
            if let state = ModelReplica.ModelState(w) { staged.append(state) }
            return []
        default:
            return []
        }
    }

    private func run(_ a: Wire.Assign) async throws -> (String, [WireTensor], [Wire.Metric]) {
        let replica = self.replica
        switch a.kind {
        case .rollout:
            let spec = try JobSpecs.decode(RolloutSpec.self, a.spec)
            try requireVersion(a.weightsVersion)
            let samples = try await Engine.shared.run { try replica.rollout(spec) }
            let (out, tensors) = RolloutResult.pack(samples)
            return (out, tensors, [])
        case .evaluation:
            let spec = try JobSpecs.decode(ScoreSpec.self, a.spec)
            try requireVersion(a.weightsVersion)
            let scores = try await Engine.shared.run { try replica.scores(spec) }
            return (JobSpecs.encode(scores), [], [])
        case .labeling:
            let spec = try JobSpecs.decode(LabelingSpec.self, a.spec)
            let labeler = try labeler.get()
            let l = settings.labeler
            if let items = spec.ratings {
                let labels = await DirectRating(rater: labeler, retries: l.retries).rate(items)
                return (JobSpecs.encode(labels), [], [])
            }
            let labeling = PreferenceLabeling(
                labeler: labeler, bothOrders: l.bothOrders, retries: l.retries, ambiguityMargin: l.ambiguityMargin)
            return (JobSpecs.encode(await labeling.label(spec.pairs)), [], [])
        case .gradient:
            return try await gradientStep(a)
        case .synchronize:
            let states = staged
            staged = []
            guard states.last?.role == .policy else {
                throw JobSpecError(message: "synchronize without a complete snapshot")
            }
            try await Engine.shared.run { try replica.restore(states, version: a.weightsVersion) }
            let fingerprint = await Engine.shared.run { replica.fingerprint() }
            return (JobSpecs.encode(ReplicaReport(version: replica.version, checksum: fingerprint)), [], [])
        }
    }

    private func requireVersion(_ version: UInt64) throws {
        guard replica.version == version else {
            throw JobSpecError(message: "weights at version \(replica.version), the job needs \(version)")
        }
    }

    private func gradientStep(_ a: Wire.Assign) async throws -> (String, [WireTensor], [Wire.Metric]) {
        let spec = try JobSpecs.decode(GradientSpec.self, a.spec)
        try requireVersion(a.step)
        guard let ringSpec = spec.ring else { throw JobSpecError(message: "gradient job without a ring") }
        let micros = try spec.unpack(a.tensors)
        let replica = self.replica
        let objective = spec.resolvedObjective
        let sum = try await Engine.shared.run { () throws -> ExactSum in
            if spec.forkReference && replica.reference == nil { replica.forkReference() }
            if spec.forkReward && replica.reward == nil { replica.forkReward() }
            return try replica.gradientSum(objective, micros, normalizer: Float(spec.normalizer))
        }
        let reduction = RingAllReduce(
            rank: ringSpec.rank, size: ringSpec.size, step: a.step, epoch: ringSpec.epoch,
            chunkTimeout: .milliseconds(ringSpec.timeoutMs))
        let reduced =
            if ringSpec.size > 1 {
                try await ring.reduce(reduction, consume sum, next: ringSpec.next, key: ringSpec.nextKey)
            } else {
                sum.value()
            }
        let (norm, metrics) = await Engine.shared.run {
            replica.apply(
                reduced, objective: objective, learningRate: Float(spec.learningRate), clipNorm: Float(spec.clipNorm))
        }
        let fingerprint = await Engine.shared.run { replica.fingerprint() }
        let result = GradientResult(
            version: replica.version, fingerprint: fingerprint, metrics: metrics, gradientNorm: Double(norm))
        return (JobSpecs.encode(result), [], [])
    }

    // MARK: Snapshots

    private func snapshotMessages() async -> [Wire.Message] {
        let replica = self.replica
        let (states, version) = await Engine.shared.run { (replica.snapshot(), replica.version) }
        return states.map { .weights($0.weights(version: version)) }
    }
}
