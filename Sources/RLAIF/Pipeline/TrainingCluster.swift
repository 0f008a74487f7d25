import Protocol

/// What the run asks of a cluster, and all it asks: run these jobs, take a gradient step, give me
/// a snapshot. The `Scheduler` does it over sockets with worker processes; `LocalCluster` does it
/// with replicas in this process, so the pipeline runs (and is tested) without either.
public protocol TrainingCluster: Sendable {
    /// The committed replica version: optimizer steps applied so far.
    var version: UInt64 { get async }
    /// Runs every job and returns their outputs in request order; `onOutput` is told each job's
    /// output (by its index) as it arrives, in whatever order jobs finish.
    func runJobs(_ jobs: [Job], onOutput: (@Sendable (Int, JobOutput) -> Void)?) async throws -> [JobOutput]
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
    public func runJobs(_ jobs: [Job]) async throws -> [JobOutput] { try await runJobs(jobs, onOutput: nil) }
}
