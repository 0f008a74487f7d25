import Foundation
import Logging
import Protocol
import RLAIF
import Tensor

/// The coordinator's side of the cluster: registers workers, tracks heartbeats, leases jobs, runs
/// gradient steps as rings of the up-to-date workers, and brings stale or new workers up to date
/// with a snapshot from a peer.
///
/// The run driver calls `runJobs` and `gradientStep` one at a time and awaits them; arrivals,
/// deaths, expired leases and re-formed rings are handled here, so a phase of the run never sees
/// a failure it has to repair. What fails every time (a job rejected by every worker, a step no
/// ring can finish) ends the run with the workers' message instead of being retried forever.
public actor Scheduler {
    /// A job the driver wants done by any worker.
    public struct JobRequest: Sendable {
        public var kind: Wire.JobKind
        public var spec: String
        public var tensors: [WireTensor]
        /// Needs the replica at the current version (rollouts, scores); labeling does not.
        public var needsWeights: Bool
        public init(kind: Wire.JobKind, spec: String, tensors: [WireTensor] = [], needsWeights: Bool) {
            self.kind = kind
            self.spec = spec
            self.tensors = tensors
            self.needsWeights = needsWeights
        }
    }

    /// One optimizer step: the objective's settings and every micro-batch, in id order.
    public struct StepRequest: Sendable {
        public var spec: GradientSpec
        public var microBatches: [MicroBatch]
        public init(spec: GradientSpec, microBatches: [MicroBatch]) {
            self.spec = spec
            self.microBatches = microBatches
        }
    }

    /// Reported failures of one job, or failed rings of one step, after which the run stops.
    public static let maxFailures = 4

    struct WorkerState {
        let id: WorkerID
        let peer: PeerID
        let name: String
        let ringEndpoint: String
        /// The public key this worker authenticated with (nil in an open cluster): its ring
        /// listener's key, which its predecessor in a ring must expect.
        let publicKey: String?
        /// The replica version the worker last reported (0 at registration: every replica starts
        /// from the run seed).
        var version: UInt64 = 0
        /// The assignment this worker holds (one at a time), if any.
        var busyWith: UInt64?
        var jobsDone = 0
        var syncing = false
    }

    /// What an assignment (by its wire job id) stands for.
    enum Pending {
        case job(JobID, attempt: UInt32)
        case step
        case snapshotSource
        case synchronize(version: UInt64)
    }

    struct Assignment {
        let worker: WorkerID
        let pending: Pending
        let deadline: ContinuousClock.Instant
    }

    let endpoint: Endpoint
    let settings: RunSettings
    let logger: Logger
    let events: EventLog
    private let ringKeys: [String]
    private var membership = Membership()
    private var workers: [WorkerID: WorkerState] = [:]
    private var byPeer: [PeerID: WorkerID] = [:]
    private var nextJobID: UInt64 = 1
    private var assignments: [UInt64: Assignment] = [:]
    private var leaseDuration: Duration { .milliseconds(settings.coordinator.leaseMs) }

    /// The committed replica version: optimizer steps applied so far.
    public private(set) var version: UInt64 = 0

    // Independent jobs of the current batch: JobID(i) is request i.
    private var batch: [JobRequest] = []
    private var ledger = JobLedger<Int>()
    private var batchResults: [Wire.Result?] = []
    private var batchFailures: [Int] = []
    private var batchWaiter: CheckedContinuation<[Wire.Result], any Error>?

    // The current gradient step.
    private var step: StepRequest?
    private var stepWaiter: CheckedContinuation<GradientResult, any Error>?
    private var ringEpoch: UInt32 = 0
    private var stepParticipants: [WorkerID] = []
    private var stepReports: [WorkerID: GradientResult?] = [:]
    private var stepFailures = 0
    /// What the last rank that failed the step said (for the error that ends the run).
    private var lastStepFailure = ""
    private var stepRunning = false

    // Snapshot for syncing stale workers.
    private var snapshot: (version: UInt64, messages: [Wire.Weights])?
    private var snapshotInbox: [Wire.Weights] = []
    private var snapshotRequested = false
    /// Callers of `currentSnapshot` (checkpoints), answered when a snapshot of this version arrives.
    private var snapshotWaiters: [CheckedContinuation<[Wire.Weights], Never>] = []

    private var ticker: Task<Void, Never>?
    private var reader: Task<Void, Never>?

    /// `ringKeys`: in a cluster with keys, the public keys every worker's ring listener admits.
    public init(endpoint: Endpoint, settings: RunSettings, ringKeys: [String] = [], events: EventLog, logger: Logger) {
        self.endpoint = endpoint
        self.ringKeys = ringKeys
        self.settings = settings
        self.events = events
        self.logger = logger
    }

    public func start() {
        let endpoint = self.endpoint
        reader = Task { [weak self] in
            for await inbound in endpoint.incoming {
                guard let self, let peer = inbound.peer else { continue }
                await self.receive(inbound.message, from: peer, key: inbound.clientKey)
            }
        }
        ticker = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(50))
                await self?.tick()
            }
        }
    }

    /// Tells every live worker to stop, then stops listening.
    public func shutdown(reason: String) async {
        for w in workers.values where isAlive(w.id) { endpoint.post(.shutdown(.init(reason: reason)), to: w.peer) }
        ticker?.cancel()
        try? await Task.sleep(for: .milliseconds(200))  // let the shutdowns leave
        reader?.cancel()
    }

    /// Every model's weights and optimizer state at the current version, taken from an
    /// up-to-date worker (for a checkpoint). Call between steps.
    public func currentSnapshot() async -> [Wire.Weights] {
        if let snap = snapshot, snap.version == version { return snap.messages }
        return await withCheckedContinuation { continuation in
            snapshotWaiters.append(continuation)
            dispatch()
        }
    }

    /// Continues a run from a checkpoint: the replica version it had and the weights that every
    /// worker is brought to before its first job (workers join at version 0, so all are stale).
    public func resume(version: UInt64, weights: [Wire.Weights]) {
        self.version = version
        snapshot = (version, weights)
    }

    public var liveWorkerCount: Int { workers.keys.filter { isAlive($0) }.count }

    /// Waits until at least `count` workers have registered.
    public func waitForWorkers(_ count: Int, timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while liveWorkerCount < count {
            if ContinuousClock.now > deadline { return false }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return true
    }

    // MARK: Driver API

    /// Runs every job on some live worker and returns their results in request order. Jobs whose
    /// worker dies or whose lease runs out are handed out again; each result is taken once.
    public func runJobs(_ jobs: [JobRequest]) async throws -> [Wire.Result] {
        guard !jobs.isEmpty else { return [] }
        precondition(batchWaiter == nil && stepWaiter == nil, "Scheduler: one batch at a time")
        batch = jobs
        ledger = JobLedger()
        for i in jobs.indices { ledger.enqueue(JobID(UInt64(i)), i) }
        batchResults = Array(repeating: nil, count: jobs.count)
        batchFailures = Array(repeating: 0, count: jobs.count)
        return try await withCheckedThrowingContinuation { continuation in
            batchWaiter = continuation
            dispatch()
        }
    }

    /// Runs one optimizer step on every up-to-date worker (redone on the survivors when its ring
    /// breaks) and returns the step's result, identical on every rank.
    public func gradientStep(_ request: StepRequest) async throws -> GradientResult {
        precondition(batchWaiter == nil && stepWaiter == nil, "Scheduler: one step at a time")
        step = request
        stepFailures = 0
        lastStepFailure = ""
        return try await withCheckedThrowingContinuation { continuation in
            stepWaiter = continuation
            dispatch()
        }
    }

    // MARK: Events

    private func isAlive(_ id: WorkerID) -> Bool {
        guard let s = membership.status(of: id) else { return false }
        return s < .down
    }

    private func receive(_ message: Wire.Message, from peer: PeerID, key: String?) {
        let now = ContinuousClock.now
        switch message {
        case .hello(let h):
            register(h, peer: peer, key: key, now: now)
        case .heartbeat(let h):
            guard let id = byPeer[peer], id.rawValue == h.workerID else { return }
            if membership.heartbeat(id, at: now) {
                // Echoed, so an idle worker knows the coordinator is still there.
                endpoint.post(.heartbeat(.init(workerID: h.workerID, sequence: h.sequence, activeJobs: 0)), to: peer)
            } else {
                endpoint.post(.reject(.init(reason: "declared dead; restart the worker to rejoin")), to: peer)
            }
            return  // nothing to dispatch
        case .result(let r):
            guard let id = byPeer[peer], id.rawValue == r.workerID else { return }
            _ = membership.heartbeat(id, at: now)
            complete(r, from: id)
        case .weights(let w):
            guard let id = byPeer[peer], case .snapshotSource? = pendingOf(worker: id) else { return }
            snapshotInbox.append(w)
            if w.model == .policy {
                snapshot = (w.version, snapshotInbox)
                snapshotInbox = []
                snapshotRequested = false
                release(worker: id)
                events.write(["event": "snapshot", "version": w.version, "from": "\(id)"])
            }
        default:
            logger.debug("ignoring \(message.kind) from a worker")
        }
        dispatch()
    }

    private func register(_ h: Wire.Hello, peer: PeerID, key: String?, now: ContinuousClock.Instant) {
        let id: WorkerID
        switch membership.register(name: h.workerName, incarnation: h.incarnation, at: now) {
        case .alreadyMember(let existing): id = existing
        case .joined(let new): id = new
        case .replaced(let old, let new):
            id = new
            lost(old, reason: "restarted")
        }
        if workers[id] == nil {
            workers[id] = WorkerState(
                id: id, peer: peer, name: h.workerName, ringEndpoint: h.ringEndpoint, publicKey: key)
            byPeer[peer] = id
            membership.markUp(id)
            logger.info("worker \(id) joined (\(h.workerName), \(h.host), pid \(h.pid), ring \(h.ringEndpoint))")
            events.write([
                "event": "worker_joined", "worker": "\(id)", "name": h.workerName, "host": h.host,
                "pid": Int(h.pid), "ring": h.ringEndpoint, "key": key ?? NSNull(),
            ])
        }
        endpoint.post(
            .welcome(
                .init(
                    workerID: id.rawValue, heartbeatIntervalMilliseconds: UInt32(settings.coordinator.heartbeatIntervalMs),
                    heartbeatTimeoutMilliseconds: UInt32(settings.coordinator.heartbeatTimeoutMs),
                    runName: settings.run.name, setup: settings.json(), ringKeys: ringKeys)), to: peer)
    }

    private func tick() {
        let now = ContinuousClock.now
        for id in membership.expire(now: now, timeout: .milliseconds(settings.coordinator.heartbeatTimeoutMs)) {
            lost(id, reason: "no heartbeat for \(settings.coordinator.heartbeatTimeoutMs) ms")
        }
        for (job, a) in assignments where a.deadline <= now {
            logger.warning("job \(job) on \(a.worker) passed its lease; handing it out again")
            release(worker: a.worker)
            abandon(a.pending, worker: a.worker)
        }
        dispatch()
    }

    private func lost(_ id: WorkerID, reason: String) {
        membership.markDown(id)
        guard workers[id] != nil else { return }
        logger.warning("worker \(id) lost: \(reason)")
        events.write(["event": "worker_lost", "worker": "\(id)", "reason": reason])
        if let job = workers[id]?.busyWith, let a = assignments[job] {
            release(worker: id)
            abandon(a.pending, worker: id)
        }
    }

    /// An assignment that will not be reported: put its work back.
    private func abandon(_ pending: Pending, worker: WorkerID) {
        switch pending {
        case .job(let job, let attempt):
            _ = ledger.fail(job, attempt: attempt, by: worker)
        case .step:
            if stepReports[worker] == nil { stepReports[worker] = .some(nil) }
            finishStepIfReported()
        case .snapshotSource:
            snapshotRequested = false
            snapshotInbox = []
        case .synchronize:
            workers[worker]?.syncing = false
        }
    }

    private func pendingOf(worker: WorkerID) -> Pending? {
        workers[worker]?.busyWith.flatMap { assignments[$0]?.pending }
    }

    private func release(worker: WorkerID) {
        if let job = workers[worker]?.busyWith { assignments[job] = nil }
        workers[worker]?.busyWith = nil
    }

    private func complete(_ r: Wire.Result, from id: WorkerID) {
        guard let a = assignments[r.jobID], a.worker == id else {
            logger.debug("dropping a stale result of job \(r.jobID) from \(id)")
            return
        }
        release(worker: id)
        workers[id]?.jobsDone += 1
        if r.status == .failed, let report = try? JobSpecs.decode(ReplicaReport.self, r.spec) {
            workers[id]?.version = report.version  // behind? it takes a snapshot before its next job
        }
        switch a.pending {
        case .job(let job, let attempt):
            let index = Int(job.rawValue)
            guard r.status == .succeeded else {
                logger.warning("job \(r.jobID) failed on \(id): \(r.message)")
                guard ledger.fail(job, attempt: attempt, by: id) else { return }
                batchFailures[index] += 1
                if batchFailures[index] >= Self.maxFailures {
                    failBatch(RunError(message: "\(batch[index].kind) job \(index) failed \(Self.maxFailures) times; last: \(r.message)"))
                }
                return
            }
            guard ledger.complete(job, attempt: attempt, by: id) == .accepted else { return }
            batchResults[index] = r
            events.write([
                "event": "job", "job": Int(r.jobID), "kind": "\(batch[index].kind)", "worker": "\(id)",
                "attempt": Int(attempt),
            ])
            if ledger.isFinished, let waiter = batchWaiter {
                batchWaiter = nil
                let results = batchResults.map { $0! }
                batch = []
                batchResults = []
                waiter.resume(returning: results)
            }
        case .step:
            if r.status == .succeeded, let result = try? JobSpecs.decode(GradientResult.self, r.spec) {
                stepReports[id] = .some(result)
                workers[id]?.version = result.version
            } else {
                logger.warning("step \(version) failed on \(id): \(r.message)")
                lastStepFailure = "\(id): \(r.message)"
                stepReports[id] = .some(nil)
            }
            finishStepIfReported()
        case .synchronize(let v):
            workers[id]?.syncing = false
            if r.status == .succeeded {
                workers[id]?.version = v
                events.write(["event": "synchronized", "worker": "\(id)", "version": v])
            } else {
                logger.warning("worker \(id) could not take the snapshot: \(r.message)")
            }
        case .snapshotSource:
            break
        }
    }

    private func failBatch(_ error: RunError) {
        let waiter = batchWaiter
        batchWaiter = nil
        batch = []
        batchResults = []
        ledger = JobLedger()
        waiter?.resume(throwing: error)
    }

    private func finishStepIfReported() {
        guard stepRunning else { return }
        let waiting = stepParticipants.filter { stepReports[$0] == nil && isAlive($0) }
        guard waiting.isEmpty else { return }
        stepRunning = false
        let successes = stepParticipants.compactMap { stepReports[$0] ?? nil }
        guard let first = successes.first else {
            stepFailures += 1
            logger.warning("step \(version) failed on every rank; re-forming the ring")
            events.write(["event": "step_retry", "version": version, "epoch": Int(ringEpoch)])
            if stepFailures >= Self.maxFailures {
                let waiter = stepWaiter
                stepWaiter = nil
                step = nil
                waiter?.resume(
                    throwing: RunError(
                        message: "step \(version) failed on every rank \(Self.maxFailures) times; last: \(lastStepFailure)"))
            }
            return
        }
        if successes.contains(where: { $0.checksum != first.checksum }) {
            logger.critical("replicas disagree after step \(version): \(successes.map(\.checksum))")
        }
        // Ranks that did not finish keep the version they reported (or had): behind the new one,
        // they take a snapshot before their next job.
        events.write([
            "event": "step", "version": version + 1, "participants": stepParticipants.map { "\($0)" },
            "epoch": Int(ringEpoch), "checksum": first.checksum,
        ])
        version += 1
        step = nil
        let waiter = stepWaiter
        stepWaiter = nil
        waiter?.resume(returning: first)
    }

    // MARK: Dispatch

    private func idleWorkers() -> [WorkerID] {
        workers.values.filter { isAlive($0.id) && $0.busyWith == nil }.map(\.id).sorted()
    }

    private func assign(_ worker: WorkerID, _ pending: Pending) -> UInt64 {
        let job = nextJobID
        nextJobID += 1
        assignments[job] = Assignment(worker: worker, pending: pending, deadline: ContinuousClock.now + leaseDuration)
        workers[worker]?.busyWith = job
        return job
    }

    private func dispatch() {
        // Stale workers (fallen behind, or new at a later version) take a snapshot first.
        let stale = idleWorkers().filter { workers[$0]!.version != version && !workers[$0]!.syncing }
        if !stale.isEmpty || !snapshotWaiters.isEmpty {
            if let snap = snapshot, snap.version == version {
                for id in stale { synchronize(id, from: snap.messages) }
                let waiters = snapshotWaiters
                snapshotWaiters = []
                for w in waiters { w.resume(returning: snap.messages) }
            } else if !snapshotRequested, let source = idleWorkers().first(where: { workers[$0]!.version == version }) {
                snapshotRequested = true
                snapshotInbox = []
                _ = assign(source, .snapshotSource)
                endpoint.post(
                    .weightsRequest(.init(workerID: source.rawValue, model: .policy, version: version)),
                    to: workers[source]!.peer)
            }
        }
        if step != nil && !stepRunning { startStep() }
        dispatchJobs()
    }

    private func synchronize(_ id: WorkerID, from messages: [Wire.Weights]) {
        workers[id]?.syncing = true
        let peer = workers[id]!.peer
        for m in messages { endpoint.post(.weights(m), to: peer) }
        let job = assign(id, .synchronize(version: version))
        endpoint.post(
            .assign(
                .init(
                    jobID: job, kind: .synchronize, step: version, attempt: 0,
                    leaseMilliseconds: UInt32(settings.coordinator.leaseMs), weightsVersion: version, items: [])),
            to: peer)
    }

    private func startStep() {
        guard let request = step else { return }
        let ready = idleWorkers().filter { workers[$0]!.version == version }
        // Wait for busy up-to-date workers (they finish within their lease) so the ring is full.
        let busyCurrent = workers.values.filter {
            isAlive($0.id) && $0.busyWith != nil && $0.version == version && !$0.syncing
        }
        guard !ready.isEmpty, busyCurrent.isEmpty else { return }
        ringEpoch += 1
        stepParticipants = ready
        stepReports = [:]
        stepRunning = true
        let size = ready.count
        let micros = request.microBatches
        for (rank, id) in ready.enumerated() {
            let share = Array(micros[(rank * micros.count / size)..<((rank + 1) * micros.count / size)])
            var spec = request.spec
            let next = workers[ready[(rank + 1) % size]]!
            spec.ring = .init(
                rank: rank, size: size, epoch: ringEpoch, next: next.ringEndpoint, nextKey: next.publicKey,
                timeoutMs: settings.coordinator.ringTimeoutMs)
            let tensors = spec.pack(share)
            let job = assign(id, .step)
            endpoint.post(
                .assign(
                    .init(
                        jobID: job, kind: .gradient, step: version, attempt: 0,
                        leaseMilliseconds: UInt32(settings.coordinator.leaseMs), weightsVersion: version,
                        items: share.map { UInt64($0.id) }, spec: JobSpecs.encode(spec), tensors: tensors)),
                to: workers[id]!.peer)
        }
    }

    private func dispatchJobs() {
        guard batchWaiter != nil else { return }
        let now = ContinuousClock.now
        for id in idleWorkers() {
            let current = workers[id]!.version == version
            guard
                let lease = ledger.lease(to: id, now: now, duration: leaseDuration, where: { [batch] in
                    current || !batch[$0].needsWeights
                })
            else { continue }
            let request = batch[lease.payload]
            let job = assign(id, .job(lease.job, attempt: lease.attempt))
            endpoint.post(
                .assign(
                    .init(
                        jobID: job, kind: request.kind, step: UInt64(lease.payload), attempt: lease.attempt,
                        leaseMilliseconds: UInt32(settings.coordinator.leaseMs), weightsVersion: version,
                        items: [UInt64(lease.payload)], spec: request.spec, tensors: request.tensors)),
                to: workers[id]!.peer)
        }
    }

    /// Jobs done per worker (for the summary).
    public func jobCounts() -> [String: Int] {
        Dictionary(uniqueKeysWithValues: workers.values.map { ("\($0.id)", $0.jobsDone) })
    }
}
