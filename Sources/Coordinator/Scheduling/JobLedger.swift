/// The job queue with leases: every job is handed to one live worker at a time, handed out again
/// when its lease expires or its worker dies, and its result is accepted exactly once.
///
/// Pure state, decided from explicit instants: the scheduler actor feeds it events and sends the
/// messages it returns. Jobs are leased lowest id first, so the order of work is reproducible.
public struct JobLedger<Payload: Sendable>: Sendable {
    public enum State: Equatable, Sendable {
        case queued
        case leased(worker: WorkerID, attempt: UInt32, deadline: ContinuousClock.Instant)
        case done
    }

    public struct Lease: Sendable {
        public let job: JobID
        public let attempt: UInt32
        public let payload: Payload
    }

    public enum Completion: Equatable, Sendable {
        /// The first result of the job's current attempt: use it.
        case accepted
        /// The job already has its result: drop this one.
        case duplicate
        /// A result from an attempt that was re-leased (or from a worker that no longer holds it).
        case stale
        case unknownJob
    }

    private var payloads: [JobID: Payload] = [:]
    public private(set) var states: [JobID: State] = [:]
    private var attempts: [JobID: UInt32] = [:]
    /// Queued jobs, highest id first: leasing takes the lowest from the end, without shifting.
    private var queue: [JobID] = []
    private var done = 0

    public init() {}

    /// Every job has its result (a counter: a batch of thousands asks this after each result).
    public var isFinished: Bool { done == states.count }
    public var queuedCount: Int { queue.count }

    public mutating func enqueue(_ id: JobID, _ payload: Payload) {
        precondition(states[id] == nil, "JobLedger: \(id) enqueued twice")
        payloads[id] = payload
        states[id] = .queued
        attempts[id] = 0
        insertQueued(id)
    }

    /// Leases the lowest queued job that `worker` may take (`eligible`) until `now + duration`.
    public mutating func lease(
        to worker: WorkerID, now: ContinuousClock.Instant, duration: Duration,
        where eligible: (Payload) -> Bool = { _ in true }
    ) -> Lease? {
        guard let at = queue.lastIndex(where: { eligible(payloads[$0]!) }) else { return nil }
        let id = queue.remove(at: at)
        let attempt = attempts[id]!
        states[id] = .leased(worker: worker, attempt: attempt, deadline: now + duration)
        return Lease(job: id, attempt: attempt, payload: payloads[id]!)
    }

    /// A worker reports a result for (job, attempt).
    public mutating func complete(_ id: JobID, attempt: UInt32, by worker: WorkerID) -> Completion {
        guard let state = states[id] else { return .unknownJob }
        switch state {
        case .done: return .duplicate
        case .queued: return .stale
        case .leased(let holder, let current, _):
            guard holder == worker && current == attempt else { return .stale }
            states[id] = .done
            payloads[id] = nil
            done += 1
            return .accepted
        }
    }

    /// The holder of (job, attempt) reports that it could not do it: the job goes back to the
    /// queue with a new attempt. False when the report is stale (the job moved on).
    public mutating func fail(_ id: JobID, attempt: UInt32, by worker: WorkerID) -> Bool {
        guard case .leased(let holder, let current, _)? = states[id], holder == worker, current == attempt else {
            return false
        }
        requeue(id)
        return true
    }

    /// Re-queues jobs whose lease ran out; returns them in id order.
    public mutating func expireLeases(now: ContinuousClock.Instant) -> [JobID] {
        let expired = states.compactMap { id, s -> JobID? in
            if case .leased(_, _, let deadline) = s, deadline <= now { return id }
            return nil
        }.sorted()
        for id in expired { requeue(id) }
        return expired
    }

    /// Re-queues every job held by `worker` (it died or was replaced); returns them in id order.
    public mutating func workerLost(_ worker: WorkerID) -> [JobID] {
        let held = states.compactMap { id, s -> JobID? in
            if case .leased(let w, _, _) = s, w == worker { return id }
            return nil
        }.sorted()
        for id in held { requeue(id) }
        return held
    }

    private mutating func requeue(_ id: JobID) {
        attempts[id, default: 0] += 1
        states[id] = .queued
        insertQueued(id)
    }

    private mutating func insertQueued(_ id: JobID) {
        let at = queue.lastIndex { $0 > id }.map { $0 + 1 } ?? 0
        queue.insert(id, at: at)
    }
}
