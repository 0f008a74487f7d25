import Coordinator
import RLAIF
import CoreMetrics
import Foundation
import Metrics
import Prometheus

/// The run's state as Prometheus metrics: swift-metrics objects on this run's own registry (no
/// process-wide bootstrap), moved by the run's events; `MetricsServer` serves the registry.
public final class RunMetrics: RunObserver, @unchecked Sendable {
    public let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory
    private let lock = NSLock()
    private var alive: Set<String> = []
    private var lastCheckpoint: Date?
    private let started = Date()
    private var occupancySource: (@Sendable () async -> [String: JobOccupancy])?
    private var kinds: Set<String> = []

    private lazy var workersAlive = Gauge(label: "rlaif_workers_alive", factory: factory)
    private lazy var policyVersion = Gauge(label: "rlaif_policy_version", factory: factory)
    private lazy var steps = Counter(label: "rlaif_steps_total", factory: factory)
    private lazy var stepRetries = Counter(label: "rlaif_step_retries_total", factory: factory)
    private lazy var labelerRetries = Counter(label: "rlaif_labeler_retries_total", factory: factory)
    private lazy var labelerRequests = Counter(label: "rlaif_labeler_requests_total", factory: factory)
    /// Questions the labeler is asked per pair: both orders, or one.
    private let questionsPerPair: Int
    private lazy var labelerLatency = Metrics.Timer(label: "rlaif_labeler_latency_seconds", factory: factory)
    private lazy var allReduce = Metrics.Timer(label: "rlaif_allreduce_seconds", factory: factory)
    /// The rest of a logged step's time: each `StepTiming` key and the histogram it goes to.
    private static let stepPartLabels = [
        (StepTiming.compute, "rlaif_step_compute_seconds"), (StepTiming.straggler, "rlaif_step_straggler_seconds"),
        (StepTiming.update, "rlaif_step_update_seconds"),
    ]
    private lazy var stepParts = Self.stepPartLabels.map { key, label in
        (key, Metrics.Timer(label: label, factory: factory))
    }
    private lazy var checkpointAge = Gauge(label: "rlaif_checkpoint_age_seconds", factory: factory)
    private lazy var uptime = Gauge(label: "rlaif_run_seconds", factory: factory)

    public init(questionsPerPair: Int = 2) {
        self.questionsPerPair = questionsPerPair
        var factory = PrometheusMetricsFactory(registry: registry)
        // Labeling jobs take from milliseconds (the rubric) to minutes (a hosted model).
        factory.durationHistogramBuckets["rlaif_labeler_latency_seconds"] = [
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120,
        ].map { Duration.milliseconds($0 * 1000) }
        factory.durationHistogramBuckets["rlaif_allreduce_seconds"] = [
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1,
        ].map { Duration.microseconds($0 * 1_000_000) }
        // A step's parts run from a fraction of a millisecond (a straggler's lead) to seconds.
        for (_, label) in Self.stepPartLabels {
            factory.durationHistogramBuckets[label] = [
                0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 2.5, 10,
            ].map { Duration.microseconds($0 * 1_000_000) }
        }
        self.factory = factory
    }

    /// Buckets of the labeler latency histogram, in seconds (for readers of its quantiles).
    public static let labelerLatencyBuckets = [
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120,
    ]

    public func replay(_ lines: [RunEventLine]) {
        for line in lines { observe(line) }
    }

    // size: field list
    public func observe(_ line: RunEventLine) {
        lock.lock()
        defer { lock.unlock() }
        switch line.event {
        case .workerJoined(let worker, _, _, _, _, _):
            alive.insert(worker)
            workersAlive.record(alive.count)
        case .workerLost(let worker, _):
            alive.remove(worker)
            workersAlive.record(alive.count)
        case .job(_, let kind, _, _, let seconds):
            Counter(label: "rlaif_jobs_total", dimensions: [("kind", kind)], factory: factory).increment()
            if kind == "labeling" { labelerLatency.recordNanoseconds(Int64(seconds * 1e9)) }
        case .jobFailed(let kind, _, _):
            Counter(label: "rlaif_job_failures_total", dimensions: [("kind", kind)], factory: factory).increment()
        case .step(let version, _, _, _):
            steps.increment()
            policyVersion.record(Double(version))
        case .stepRetry:
            stepRetries.increment()
        case .metrics(let m):
            if let s = m.values[StepTiming.allReduce] { allReduce.recordNanoseconds(Int64(s * 1e9)) }
            for (key, timer) in stepParts {
                if let s = m.values[key] { timer.recordNanoseconds(Int64(s * 1e9)) }
            }
        case .labels(_, let valid, let ambiguous, let invalid, let retries):
            for (status, n) in [("valid", valid), ("ambiguous", ambiguous), ("invalid", invalid)] {
                Counter(label: "rlaif_labels_total", dimensions: [("status", status)], factory: factory)
                    .increment(by: n)
            }
            labelerRetries.increment(by: retries)
            labelerRequests.increment(by: (valid + ambiguous + invalid) * questionsPerPair + retries)
        case .ratings(_, let rated):
            labelerRequests.increment(by: rated)
        case .checkpoint:
            lastCheckpoint = Date()
        default:
            break
        }
    }

    /// Where `rlaif_jobs_queued` and `rlaif_jobs_running` are read at each scrape (the scheduler).
    public func readOccupancy(from source: @escaping @Sendable () async -> [String: JobOccupancy]) {
        lock.withLock { occupancySource = source }
    }

    /// Reads the scheduler's queue, then renders every metric: what a scrape answers.
    public func scrape() async -> [UInt8] {
        if let source = lock.withLock({ occupancySource }) {
            let occupancy = await source()
            lock.withLock {
                kinds.formUnion(occupancy.keys)
                for kind in kinds {  // a kind with no batch now reads 0, not its last value
                    let o = occupancy[kind] ?? .init()
                    Gauge(label: "rlaif_jobs_queued", dimensions: [("kind", kind)], factory: factory).record(o.queued)
                    Gauge(label: "rlaif_jobs_running", dimensions: [("kind", kind)], factory: factory).record(o.running)
                }
            }
        }
        return exposition()
    }

    /// The figures that change with time alone, set just before a scrape reads them.
    public func refresh() {
        lock.lock()
        defer { lock.unlock() }
        uptime.record(Date().timeIntervalSince(started))
        if let lastCheckpoint { checkpointAge.record(Date().timeIntervalSince(lastCheckpoint)) }
    }

    /// The Prometheus text format of every metric.
    public func exposition() -> [UInt8] {
        refresh()
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return buffer
    }

    public func close() {}
}
