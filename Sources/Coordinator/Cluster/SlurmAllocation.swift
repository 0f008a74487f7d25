import Foundation

/// A Slurm allocation `rlaif launch` runs inside (an `sbatch` script or `salloc`): the
/// coordinator runs here, on the allocation's first node, and one `srun` step starts a worker
/// on each of its tasks. Read from the environment Slurm sets, so it is decided without Slurm.
public struct SlurmAllocation: Sendable, Equatable {
    public let jobID: String
    /// Worker processes: one per task.
    public let tasks: Int
    /// Engine threads of each worker: the task's CPUs.
    public let cpusPerTask: Int
    /// This node's name, which the allocation's other nodes resolve.
    public let node: String

    /// Nil outside an allocation, and inside a job step (a worker `srun` started is not a launcher).
    public init?(environment: [String: String]) {
        guard let job = environment["SLURM_JOB_ID"], !job.isEmpty, environment["SLURM_STEP_ID"] == nil else {
            return nil
        }
        jobID = job
        tasks = max(1, Int(environment["SLURM_NTASKS"] ?? "") ?? 1)
        if let perTask = Int(environment["SLURM_CPUS_PER_TASK"] ?? ""), perTask > 0 {
            cpusPerTask = perTask
        } else {
            // Without --cpus-per-task, the node's CPUs are shared among its tasks.
            let cpus = Int(environment["SLURM_CPUS_ON_NODE"] ?? "") ?? 1
            let perNode = Int((environment["SLURM_TASKS_PER_NODE"] ?? "").prefix { $0.isNumber }) ?? tasks
            cpusPerTask = max(1, cpus / max(1, perNode))
        }
        node = environment["SLURMD_NODENAME"] ?? ProcessInfo.processInfo.hostName
    }

    /// The `srun` command line that starts every worker (`--kill-on-bad-exit=0`: one worker's
    /// failure is the scheduler's to handle, not a reason to end the others).
    public func workerCommand(executable: String, coordinator: String, extra: [String]) -> [String] {
        [
            "srun", "--ntasks=\(tasks)", "--cpus-per-task=\(cpusPerTask)", "--kill-on-bad-exit=0",
            "--job-name=rlaif-workers", executable, "worker", "--connect", coordinator, "--threads", "\(cpusPerTask)",
        ] + extra
    }
}
