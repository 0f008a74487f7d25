import Protocol
import Tensor

/// The cluster as replicas in this process, no sockets: jobs go round the replicas, a step's
/// micro-batches are shared out as the scheduler shares them, and the ranks' exact sums are added
/// in memory where a ring would all-reduce them. It runs the workers' job code (`ReplicaJobs`)
/// on the same inputs (micro-batches through the wire's codec), so a run gives the bits a run
/// with worker processes gives.
public actor LocalCluster: TrainingCluster {
    let ranks: [ReplicaJobs]
    public private(set) var version: UInt64 = 0
    /// Steps this cluster takes before it fails every later one (a crash, for tests); nil: none.
    let failAfterSteps: Int?
    private var steps = 0

    public init(settings: RunSettings, replicas: Int, failAfterSteps: Int? = nil) throws {
        precondition(replicas >= 1, "LocalCluster: at least one replica")
        // One budget for the run, as the coordinator keeps it for its workers.
        let desk = settings.labeler.budget.map { LabelBudgetDesk($0) }
        ranks = try (0..<replicas).map { _ in try ReplicaJobs(settings: settings, labelerGate: desk) }
        self.failAfterSteps = failAfterSteps
    }

    /// Continues from a checkpoint: every replica takes its state.
    public func resume(version: UInt64, weights: [Wire.Weights]) async throws {
        let states = weights.compactMap(ModelReplica.ModelState.init)
        for rank in ranks { _ = try await rank.restore(states, version: version) }
        self.version = version
    }

    /// Runs the jobs now, before any later step: the versions they see are the ones a cluster
    /// of workers pins them to.
    public func startJobs(
        _ jobs: [Job], onOutput: (@Sendable (Int, JobOutput) -> Void)?
    ) async throws -> Task<[JobOutput], any Error> {
        var outputs: [JobOutput] = []
        for (i, job) in jobs.enumerated() {
            let output = try await ranks[i % ranks.count].run(job, weightsVersion: version)
            outputs.append(try JobOutput(of: job, body: output.wireBody))  // as the coordinator reads it
            onOutput?(i, outputs[i])
        }
        return Task { [outputs] in outputs }
    }

    public func gradientStep(_ request: GradientJob, next: GradientJob?) async throws
        -> GradientResult
    {
        if let failAfterSteps, steps >= failAfterSteps {
            throw RunError(message: "LocalCluster: stopped after \(failAfterSteps) steps, as asked")
        }
        var total: ExactSum?
        for (jobs, share) in zip(ranks, request.shares(of: ranks.count)) {
            let job = try GradientJob(wireBody: share.wireBody, field: "gradient")  // as a worker reads it
            let sum = try await jobs.gradientSum(job.spec, job.microBatches, at: version)
            if total == nil { total = sum } else { try total!.add(sum) }
        }
        let reduced = total!.value()
        var results: [GradientResult] = []
        for jobs in ranks { results.append(await jobs.apply(reduced, request.spec)) }
        guard results.allSatisfy({ $0.fingerprint == results[0].fingerprint }) else {
            throw RunError(message: "replicas disagree after step \(version + 1): \(results.map(\.fingerprint))")
        }
        version += 1
        steps += 1
        return results[0]
    }

    public func currentSnapshot() async -> [Wire.Weights] { await ranks[0].snapshot() }

    public func journalAnswers(in journal: LabelJournal) async {
        for rank in ranks { rank.answers.connect { journal.recordAnswers($0) } }
    }
}
