import Protocol

/// What the run asks of a cluster, and all it asks: run these jobs, take a gradient step, give me
/// a snapshot. The `Scheduler` does it over sockets with worker processes; `LocalCluster` does it
/// with replicas in this process, so the pipeline runs (and is tested) without either.
public protocol TrainingCluster: Sendable {
    /// The committed replica version: optimizer steps applied so far.
    var version: UInt64 { get async }
    /// Starts every job on the replicas at the committed version and returns the task that ends
    /// with their outputs in request order; `onOutput` is told each job's output (by its index)
    /// as it arrives, in whatever order jobs finish. Gradient steps may be asked for before the
    /// task ends: the jobs still run at the version committed when they were started. One batch
    /// at a time: await the task before starting another.
    func startJobs(_ jobs: [Job], onOutput: (@Sendable (Int, JobOutput) -> Void)?) async throws
        -> Task<[JobOutput], any Error>
    /// One optimizer step; `next` is the step the run asks for right after it, if nothing falls
    /// between them (it may be started early).
    func gradientStep(_ request: GradientJob, next: GradientJob?) async throws
        -> GradientResult
    /// Every model's weights and optimizer state at the committed version.
    func currentSnapshot() async throws -> [Wire.Weights]
    /// Sends each labeler answer the jobs report, as it arrives, to `journal`.
    func journalAnswers(in journal: LabelJournal) async
}

extension TrainingCluster {
    /// Runs every job (see `startJobs`) and returns their outputs in request order.
    public func runJobs(
        _ jobs: [Job], onOutput: (@Sendable (Int, JobOutput) -> Void)? = nil
    ) async throws -> [JobOutput] {
        try await startJobs(jobs, onOutput: onOutput).value
    }
}
