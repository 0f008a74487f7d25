import COpenBLAS
import Dispatch
import Foundation
import Synchronization

/// The process's one tensor engine: it owns the thread budget and runs compute off Swift's
/// cooperative pool.
///
/// Jobs run one at a time, in submission order, on a dedicated engine thread; each job may use
/// every thread of the budget (BLAS threads and the engine's own pool take turns, never both at
/// once), so concurrent callers never oversubscribe the cores. Because a job's result depends only
/// on its inputs, concurrent callers get exactly what serial calls would give.
///
/// ```swift
/// Engine.configure(threads: 2)            // once, before first use (optional)
/// let loss = try await Engine.shared.run {
///     let l = model.loss(batch)
///     l.backward()
///     return l.value.item
/// }
/// ```
public final class Engine: Sendable {
    /// The thread budget: BLAS threads and the engine's pool width.
    public let threads: Int
    let pool: ComputePool
    private let queue: JobQueue

    private static let sharedThreads = Mutex<Int?>(nil)

    /// The engine of this process, created on first use with the configured budget
    /// (`configure(threads:)`, else `RLAIF_THREADS`, else the number of active cores).
    public static let shared: Engine = {
        let configured = sharedThreads.withLock { $0 }
        let fromEnvironment = ProcessInfo.processInfo.environment["RLAIF_THREADS"].flatMap(Int.init)
        return Engine(threads: configured ?? fromEnvironment ?? ProcessInfo.processInfo.activeProcessorCount)
    }()

    /// Sets the thread budget of `Engine.shared`. Has effect only before its first use.
    public static func configure(threads: Int) {
        sharedThreads.withLock { $0 = max(1, threads) }
    }

    private init(threads: Int) {
        self.threads = max(1, threads)
        // The engine parallelizes BLAS calls itself (see Kernels.gemm): BLAS runs single-threaded.
        openblas_set_num_threads(1)
        self.pool = ComputePool(width: self.threads)
        self.queue = JobQueue(name: "rlaif-engine")
    }

    /// Runs `body` on the engine thread and returns its result. Long compute inside `body` blocks
    /// only the engine thread, never the caller's executor.
    public func run<T: Sendable, E: Error>(_ body: @escaping @Sendable () throws(E) -> T) async throws(E) -> T {
        let result: Result<T, E> = await withCheckedContinuation { continuation in
            queue.submit {
                let outcome: Result<T, E>
                do throws(E) { outcome = .success(try body()) } catch { outcome = .failure(error) }
                continuation.resume(returning: outcome)
            }
        }
        return try result.get()
    }

    /// Runs `body` on the engine thread in inference mode: no autograd graph is recorded.
    public func infer<T: Sendable, E: Error>(_ body: @escaping @Sendable () throws(E) -> T) async throws(E) -> T {
        try await run { () throws(E) -> T in try Autograd.inferenceMode(body) }
    }

    /// Runs `body(i)` for `i` in `0..<chunks` on the engine's pool when called from an engine job,
    /// serially otherwise (a caller outside the engine holds no share of the budget). Calls made
    /// from inside `body` run inline on its thread.
    public static func parallelFor(_ chunks: Int, _ body: (Int) -> Void) {
        if ThreadFlags.isEngineThread {
            shared.pool.parallelFor(chunks, body)
        } else {
            for i in 0..<chunks { body(i) }
        }
    }

    /// Splits `0..<count` into ranges of at least `grain` elements and runs them in parallel.
    /// `perThread` ranges per thread (the pool hands them out as threads free up) even out a
    /// helper that starts late: in a decode step's short products, one range per thread left the
    /// engine thread waiting for its helper.
    static func parallelRanges(_ count: Int, grain: Int, perThread: Int = 1, _ body: (Range<Int>) -> Void) {
        let width = ThreadFlags.isEngineThread ? shared.threads : 1
        let chunks = max(1, min(width == 1 ? 1 : width * perThread, count / max(grain, 1)))
        if chunks == 1 {
            body(0..<count)
            return
        }
        let size = (count + chunks - 1) / chunks
        parallelFor(chunks) { c in
            let lo = c * size
            let hi = min(count, lo + size)
            if lo < hi { body(lo..<hi) }
        }
    }
}

/// A FIFO of closures drained by one dedicated OS thread.
private final class JobQueue: @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [() -> Void] = []

    init(name: String) {
        let thread = Thread { [unowned self] in self.loop() }
        thread.name = name
        thread.stackSize = 1 << 24  // deep autograd graphs recurse in user code
        thread.start()
    }

    func submit(_ job: @escaping () -> Void) {
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    private func loop() {
        ThreadFlags.isEngineThread = true
        while true {
            condition.lock()
            while jobs.isEmpty { condition.wait() }
            let job = jobs.removeFirst()
            condition.unlock()
            job()
        }
    }
}
