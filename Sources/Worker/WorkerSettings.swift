import Tensor

/// How a worker process uses its host: its share of the cores goes to the one tensor engine.
///
/// The worker's actors, its connection to the coordinator and the all-reduce ring arrive with the
/// coordinator/worker issue; this holds what a worker decides at start-up.
public struct WorkerSettings: Sendable, Equatable {
    /// Threads of the engine (BLAS and kernel pool together).
    public var threads: Int

    public init(threads: Int) {
        precondition(threads >= 1, "WorkerSettings: threads must be at least 1")
        self.threads = threads
    }

    /// Sizes the process's engine. Call once, before the first tensor operation.
    public func configureEngine() {
        Engine.configure(threads: threads)
    }
}
