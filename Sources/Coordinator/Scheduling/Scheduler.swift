import Foundation
import Logging
import Protocol
import RLAIF
import Tensor

/// The coordinator's side of the cluster: registers workers, tracks heartbeats, leases jobs, runs
/// gradient steps as rings of the up-to-date workers, and brings stale or new workers up to date
/// with a snapshot from a peer.
///
/// The run driver calls `runJobs` and `gradientStep` one at a time and awaits them; everything
/// else (arrivals, deaths, expired leases, re-formed rings) is handled here, so a phase of the run
/// never sees a failure it has to repair.
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

    struct WorkerState {
        let id: WorkerID
        let peer: PeerID
        let name: String
        let ringEndpoint: String
        var version: UInt64 = 0
        /// The job this worker holds (one at a time), if any.
        var busyWith: UInt64?
        var jobsDone = 0
        var syncing = false
    }

    enum Pending {
        case job(index: Int)
        case step(rank: Int)
        case snapshotSource
        case synchronize(version: UInt64)
    }

    let endpoint: Endpoint
    let settings: RunSettings
    let logger: Logger
    let events: EventLog
    private var membership = Membership()
    private var workers: [WorkerID: WorkerState] = [:]
    private var byPeer: [PeerID: WorkerID] = [:]
    private var nextJobID: UInt64 = 1
    private var leases: [UInt64: (worker: WorkerID, attempt: UInt32, pending: Pending, deadline: ContinuousClock.Instant)] =
        [:]

    /// The committed replica version: optimizer steps applied so far.
    public private(set) var version: UInt64 = 0

    // Independent jobs of the current batch.
    private var batch: [JobRequest] = []
    private var batchResults: [Wire.Result?] = []
    private var batchQueue: [Int] = []
    private var batchAttempts: [Int] = []
    private var batchWaiter: CheckedContinuation<[Wire.Result], Never>?

    // The current gradient step.
    private var step: StepRequest?
    private var stepWaiter: CheckedContinuation<GradientResult, Never>?
    private var ringEpoch: UInt32 = 0
    private var stepParticipants: [WorkerID] = []
    private var stepReports: [WorkerID: GradientResult?] = [:]
    private var stepRunning = false

    // Snapshot for syncing stale workers.
    private var snapshot: (version: UInt64, messages: [Wire.Weights])?
    private var snapshotInbox: [Wire.Weights] = []
    private var snapshotRequested = false

    private var ticker: Task<Void, Never>?
    private var reader: Task<Void, Never>?

    public init(endpoint: Endpoint, settings: RunSettings, events: EventLog, logger: Logger) {
        self.endpoint = endpoint
        self.settings = settings
        self.events = events
        self.logger = logger
    }

    public func start() {
        let endpoint = self.endpoint
        reader = Task { [weak self] in
            for await inbound in endpoint.incoming {
                guard let self, let peer = inbound.peer else { continue }
                await self.receive(inbound.message, from: peer)
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
    public func runJobs(_ jobs: [JobRequest]) async -> [Wire.Result] {
        guard !jobs.isEmpty else { return [] }
        precondition(batchWaiter == nil && stepWaiter == nil, "Scheduler: one batch at a time")
        batch = jobs
        batchResults = Array(repeating: nil, count: jobs.count)
        batchQueue = Array(jobs.indices)
        batchAttempts = Array(repeating: 0, count: jobs.count)
        return await withCheckedContinuation { continuation in
            batchWaiter = continuation
            dispatch()
        }
    }

    /// Runs one optimizer step on every up-to-date worker (redone on the survivors when its ring
    /// breaks) and returns the step's result, identical on every rank.
    public func gradientStep(_ request: StepRequest) async -> GradientResult {
        precondition(batchWaiter == nil && stepWaiter == nil, "Scheduler: one step at a time")
        step = request
        return await withCheckedContinuation { continuation in
            stepWaiter = continuation
            dispatch()
        }
    }

    // MARK: Events

    private func isAlive(_ id: WorkerID) -> Bool {
        guard let s = membership.status(of: id) else { return false }
        return s < .down
    }

    private func receive(_ message: Wire.Message, from peer: PeerID) {
        let now = ContinuousClock.now
        switch message {
        case .hello(let h):
            register(h, peer: peer, now: now)
        case .heartbeat(let h):
            guard let id = byPeer[peer], id.rawValue == h.workerID else { return }
            if !membership.heartbeat(id, at: now) {
                endpoint.post(.reject(.init(reason: "declared dead; restart the worker to rejoin")), to: peer)
            }
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

    private func register(_ h: Wire.Hello, peer: PeerID, now: ContinuousClock.Instant) {
        let registration = membership.register(name: h.workerName, incarnation: h.incarnation, at: now)
        let id: WorkerID
        switch registration {
        case .alreadyMember(let existing): id = existing
        case .joined(let new): id = new
        case .replaced(let old, let new):
            id = new
            lost(old, reason: "restarted")
        }
        if workers[id] == nil {
            workers[id] = WorkerState(id: id, peer: peer, name: h.workerName, ringEndpoint: h.ringEndpoint)
            byPeer[peer] = id
            membership.markUp(id)
            logger.info("worker \(id) joined (\(h.workerName), \(h.host), pid \(h.pid), ring \(h.ringEndpoint))")
            events.write([
                "event": "worker_joined", "worker": "\(id)", "name": h.workerName, "host": h.host,
                "pid": Int(h.pid),
            ])
        }
        endpoint.post(
            .welcome(
                .init(
                    workerID: id.rawValue, heartbeatIntervalMilliseconds: UInt32(settings.coordinator.heartbeatIntervalMs),
                    heartbeatTimeoutMilliseconds: UInt32(settings.coordinator.heartbeatTimeoutMs),
                    runName: settings.run.name, setup: settings.json())), to: peer)
    }

    private func tick() {
        let now = ContinuousClock.now
        for id in membership.expire(now: now, timeout: .milliseconds(settings.coordinator.heartbeatTimeoutMs)) {
            lost(id, reason: "no heartbeat for \(settings.coordinator.heartbeatTimeoutMs) ms")
        }
        for (job, lease) in leases where lease.deadline <= now {
            logger.warning("job \(job) on \(lease.worker) passed its lease; handing it out again")
            leases[job] = nil
            workers[lease.worker]?.busyWith = nil
            abandon(lease.pending, worker: lease.worker)
        }
        dispatch()
    }

    private func lost(_ id: WorkerID, reason: String) {
        membership.markDown(id)
        guard workers[id] != nil else { return }
        logger.warning("worker \(id) lost: \(reason)")
        events.write(["event": "worker_lost", "worker": "\(id)", "reason": reason])
        for (job, lease) in leases where lease.worker == id {
            leases[job] = nil
            abandon(lease.pending, worker: id)
        }
        workers[id]?.busyWith = nil
    }

    /// A leased piece of work that will not be reported: put it back.
    private func abandon(_ pending: Pending, worker: WorkerID) {
        switch pending {
        case .job(let index):
            if batchResults.indices.contains(index), batchResults[index] == nil {
                batchQueue.append(index)
                batchQueue.sort()
                batchAttempts[index] += 1
            }
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
        guard let job = workers[worker]?.busyWith else { return nil }
        return leases[job]?.pending
    }

    private func release(worker: WorkerID) {
        if let job = workers[worker]?.busyWith { leases[job] = nil }
        workers[worker]?.busyWith = nil
    }

    private func complete(_ r: Wire.Result, from id: WorkerID) {
        guard let lease = leases[r.jobID], lease.worker == id, lease.attempt == r.attempt else {
            logger.debug("dropping a stale result of job \(r.jobID) from \(id)")
            return
        }
        leases[r.jobID] = nil
        workers[id]?.busyWith = nil
        workers[id]?.jobsDone += 1
        switch lease.pending {
        case .job(let index):
            guard r.status == .succeeded else {
                logger.warning("job \(r.jobID) failed on \(id): \(r.message)")
                if r.message.contains("weights at version") { workers[id]?.version = .max }  // resync
                abandon(lease.pending, worker: id)
                return
            }
            if batchResults[index] == nil {
                batchResults[index] = r
                events.write([
                    "event": "job", "job": Int(r.jobID), "kind": "\(batch[index].kind)", "worker": "\(id)",
                    "attempt": Int(r.attempt),
                ])
            }
            if batchResults.allSatisfy({ $0 != nil }), let waiter = batchWaiter {
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

    private func finishStepIfReported() {
        guard stepRunning else { return }
        let waiting = stepParticipants.filter { stepReports[$0] == nil && isAlive($0) }
        guard waiting.isEmpty else { return }
        stepRunning = false
        let successes = stepParticipants.compactMap { stepReports[$0] ?? nil }
        if let first = successes.first {
            if successes.contains(where: { $0.checksum != first.checksum }) {
                logger.critical("replicas disagree after step \(version): \(successes.map(\.checksum))")
            }
            for id in stepParticipants where (stepReports[id] ?? nil) == nil {
                workers[id]?.version = .max  // must resync before its next job
            }
            events.write([
                "event": "step", "version": version + 1, "participants": stepParticipants.map { "\($0)" },
                "epoch": Int(ringEpoch), "checksum": first.checksum,
            ])
            version += 1
            step = nil
            let waiter = stepWaiter
            stepWaiter = nil
            waiter?.resume(returning: first)
        } else {
            logger.warning("step \(version) failed on every rank; re-forming the ring")
            events.write(["event": "step_retry", "version": version, "epoch": Int(ringEpoch)])
        }
    }

    // MARK: Dispatch

    private func idleWorkers() -> [WorkerID] {
        workers.values.filter { isAlive($0.id) && $0.busyWith == nil }.map(\.id).sorted()
    }

    private func lease(_ worker: WorkerID, _ pending: Pending, attempt: UInt32 = 0) -> UInt64 {
        let job = nextJobID
        nextJobID += 1
        leases[job] = (worker, attempt, pending, ContinuousClock.now + .milliseconds(settings.coordinator.leaseMs))
        workers[worker]?.busyWith = job
        return job
    }

    private func dispatch() {
        // Stale workers (fallen behind, or new at a later version) take a snapshot first.
        let stale = idleWorkers().filter { workers[$0]!.version != version && !workers[$0]!.syncing }
        if !stale.isEmpty {
            if let snap = snapshot, snap.version == version {
                for id in stale { synchronize(id, from: snap.messages) }
            } else if !snapshotRequested, let source = idleWorkers().first(where: { workers[$0]!.version == version }) {
                snapshotRequested = true
                snapshotInbox = []
                _ = lease(source, .snapshotSource)
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
        let job = lease(id, .synchronize(version: version))
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
            spec.ring = .init(
                rank: rank, size: size, epoch: ringEpoch, next: workers[ready[(rank + 1) % size]]!.ringEndpoint,
                timeoutMs: settings.coordinator.ringTimeoutMs)
            let tensors = spec.pack(share)
            let job = lease(id, .step(rank: rank))
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
        for id in idleWorkers() {
            guard let at = batchQueue.firstIndex(where: { !batch[$0].needsWeights || workers[id]!.version == version })
            else { continue }
            let index = batchQueue.remove(at: at)
            let request = batch[index]
            let attempt = UInt32(batchAttempts[index])
            let job = lease(id, .job(index: index), attempt: attempt)
            endpoint.post(
                .assign(
                    .init(
                        jobID: job, kind: request.kind, step: UInt64(index), attempt: attempt,
                        leaseMilliseconds: UInt32(settings.coordinator.leaseMs), weightsVersion: version,
                        items: [UInt64(index)], spec: request.spec, tensors: request.tensors)),
                to: workers[id]!.peer)
        }
    }

    /// Jobs done per worker (for the summary).
    public func jobCounts() -> [String: Int] {
        Dictionary(uniqueKeysWithValues: workers.values.map { ("\($0.id)", $0.jobsDone) })
    }
}
