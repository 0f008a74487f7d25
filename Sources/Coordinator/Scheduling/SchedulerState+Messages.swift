import Protocol
import RLAIF

/// Messages from workers, deaths and expired leases.
extension SchedulerState {
    /// What the message may have changed, so dispatch looks only there.
    mutating func receive(
        _ message: Wire.Message, from peer: PeerID, key: String?, at now: ContinuousClock.Instant,
        into out: inout [Directive]
    ) -> DispatchScope {
        switch message {
        case .hello(let h):
            register(h, peer: peer, key: key, at: now, into: &out)
        case .heartbeat(let h):
            guard let id = byPeer[peer], id.rawValue == h.workerID else { return .nothing }
            if membership.heartbeat(id, at: now) {
                // Echoed, so an idle worker knows the coordinator is still there.
                out.append(
                    .send(.heartbeat(.init(workerID: h.workerID, sequence: h.sequence)), to: peer))
            } else {
                out.append(.send(.reject(.init(reason: "declared dead; restart the worker to rejoin")), to: peer))
            }
            return .nothing
        case .result(let r):
            guard let id = byPeer[peer], id.rawValue == r.workerID else { return .nothing }
            _ = membership.heartbeat(id, at: now)
            // A batch job done: only its worker is freed (a failure queues the job again for anyone).
            let jobDone = r.status == .succeeded && assignments[r.jobID].map { $0.worker == id && $0.isJob } == true
            complete(r, from: id, at: now, into: &out)
            return jobDone ? .freed(id) : .everything
        case .weights(let w):
            guard let id = byPeer[peer], holds(id, .snapshotSource) else { return .nothing }
            receiveSnapshot(w, from: id, into: &out)
        default:
            out.append(.log(.debug, "ignoring \(message.kind) from a worker"))
            return .nothing
        }
        return .everything
    }

    mutating func register(
        _ h: Wire.Hello, peer: PeerID, key: String?, at now: ContinuousClock.Instant, into out: inout [Directive]
    ) {
        let id: WorkerID
        switch membership.register(name: h.workerName, incarnation: h.incarnation, at: now) {
        case .alreadyMember(let existing): id = existing
        case .joined(let new): id = new
        case .replaced(let old, let new):
            id = new
            lost(old, reason: "restarted", into: &out)
        }
        if workers[id] == nil {
            workers[id] = WorkerRecord(
                id: id, peer: peer, ringEndpoint: h.ringEndpoint, publicKey: key, role: h.role)
            byPeer[peer] = id
            membership.markUp(id)
            out.append(
                .log(
                    .info,
                    "worker \(id) joined (\(h.workerName), \(h.host), pid \(h.pid), role \(h.role), ring \(h.ringEndpoint))"
                ))
            out.append(
                .record(
                    .workerJoined(
                        worker: "\(id)", name: h.workerName, host: h.host, pid: Int(h.pid), ring: h.ringEndpoint,
                        key: key)))
        }
        let welcome = Wire.Welcome(
            workerID: id.rawValue,
            heartbeatIntervalMilliseconds: UInt32(clamping: timing.heartbeatInterval.milliseconds),
            heartbeatTimeoutMilliseconds: UInt32(clamping: timing.heartbeatTimeout.milliseconds),
            runName: identity.name,
            setup: identity.setup, ringKeys: identity.ringKeys)
        out.append(.send(.welcome(welcome), to: peer))
    }

    /// Silent workers are declared dead; assignments past their lease are put back.
    mutating func expire(at now: ContinuousClock.Instant, into out: inout [Directive]) {
        for id in membership.expire(now: now, timeout: timing.heartbeatTimeout) {
            lost(id, reason: "no heartbeat for \(timing.heartbeatTimeout.milliseconds) ms", into: &out)
        }
        for (job, a) in assignments.sorted(by: { $0.key < $1.key }) where a.deadline <= now {
            release(job)
            guard case .job(let id, let attempt) = a.work else {
                out.append(.log(.warning, "job \(job) on \(a.worker) passed its lease; handing it out again"))
                abandon(a.work, worker: a.worker, into: &out)
                continue
            }
            // Counted as a failed attempt: a job no worker can take (one that drops the
            // assignment unread) must end the run, not be handed out forever.
            let reason =
                "no result from \(a.worker) within the lease of \(timing.lease.milliseconds) ms "
                + "(a worker drops an assignment it cannot read; see its log)"
            jobAttemptFailed(id, attempt: attempt, by: a.worker, reason: reason, into: &out)
        }
    }

    mutating func lost(_ id: WorkerID, reason: String, into out: inout [Directive]) {
        membership.markDown(id)
        guard workers[id] != nil else { return }
        out.append(.log(.warning, "worker \(id) lost: \(reason)"))
        out.append(.record(.workerLost(worker: "\(id)", reason: reason)))
        for job in workers[id]?.assignments ?? [] {
            guard let a = assignments[job] else { continue }
            release(job)
            abandon(a.work, worker: id, into: &out)
        }
    }

    /// An assignment that will not be reported: put its work back.
    mutating func abandon(_ work: Work, worker: WorkerID, into out: inout [Directive]) {
        switch work {
        case .job(let job, let attempt):
            _ = batch?.ledger.fail(job, attempt: attempt, by: worker)
        case .step(let at):
            if step?.runsAt == at, step?.ring?.reports[worker] == nil { step?.ring?.reports[worker] = .some(nil) }
            if lookahead?.runsAt == at, lookahead?.ring?.reports[worker] == nil {
                lookahead?.ring?.reports[worker] = .some(nil)
            }
            finishStepIfReported(into: &out)
        case .snapshotSource:
            snapshotInbox = []
        case .synchronize, .broadcastSource:
            break
        }
    }

    func holds(_ worker: WorkerID, _ work: Work) -> Bool {
        workers[worker]?.assignments.contains { assignments[$0]?.work == work } ?? false
    }

    /// The assignment is over (reported, abandoned or expired).
    mutating func release(_ job: UInt64) {
        guard let a = assignments.removeValue(forKey: job) else { return }
        workers[a.worker]?.assignments.removeAll { $0 == job }
    }

    mutating func complete(
        _ r: Wire.Result, from id: WorkerID, at now: ContinuousClock.Instant, into out: inout [Directive]
    ) {
        guard let a = assignments[r.jobID], a.worker == id else {
            out.append(.log(.debug, "dropping a stale result of job \(r.jobID) from \(id)"))
            return
        }
        release(r.jobID)
        workers[id]?.jobsDone += 1
        if r.status == .failed, let report = try? ReplicaReport(wireBody: r.body, field: "result") {
            workers[id]?.version = report.version  // behind? it takes a snapshot before its next job
        }
        switch a.work {
        case .job(let job, let attempt):
            completeJob(r, job: job, attempt: attempt, from: id, seconds: (now - a.started).seconds, into: &out)
        case .step(let at):
            completeStep(r, at: at, from: id, into: &out)
        case .synchronize(let v):
            if r.status == .succeeded {
                workers[id]?.version = v
                out.append(.record(.synchronized(worker: "\(id)", version: v)))
            } else {
                out.append(.log(.warning, "worker \(id) could not take the snapshot: \(r.message)"))
            }
        case .snapshotSource:
            break
        case .broadcastSource:
            if r.status != .succeeded { out.append(.log(.warning, "worker \(id) could not broadcast: \(r.message)")) }
        }
    }

    mutating func completeJob(
        _ r: Wire.Result, job: JobID, attempt: UInt32, from id: WorkerID, seconds: Double,
        into out: inout [Directive]
    ) {
        guard batch != nil else { return }
        let index = Int(job.rawValue)
        guard r.status == .succeeded else {
            out.append(.log(.warning, "job \(r.jobID) failed on \(id): \(r.message)"))
            jobAttemptFailed(job, attempt: attempt, by: id, reason: r.message, into: &out)
            return
        }
        // Taken out while it changes, so its ledger is not copied (thousands of jobs, each result).
        var b = batch.take()!
        guard b.ledger.complete(job, attempt: attempt, by: id) == .accepted else {
            batch = b
            return
        }
        b.results[index] = r
        out.append(.jobResult(index: index, r))
        out.append(
            .record(
                .job(
                    job: r.jobID, kind: "\(b.requests[index].kind)", worker: "\(id)", attempt: Int(attempt),
                    seconds: seconds)))
        if b.ledger.isFinished {
            batch = nil
            out.append(.jobsFinished(.success(b.results.map { $0! })))
        } else {
            batch = b
        }
    }

    /// One attempt at a batch job failed (reported, or its lease passed): the job is queued
    /// again, or after `maxFailures` attempts the batch fails with the last reason.
    mutating func jobAttemptFailed(
        _ job: JobID, attempt: UInt32, by worker: WorkerID, reason: String, into out: inout [Directive]
    ) {
        guard var b = batch.take() else { return }
        guard b.ledger.fail(job, attempt: attempt, by: worker) else {
            batch = b
            return
        }
        let index = Int(job.rawValue)
        b.failures[index] += 1
        out.append(.record(.jobFailed(kind: "\(b.requests[index].kind)", worker: "\(worker)", reason: reason)))
        batch = b
        if b.failures[index] >= Self.maxFailures {
            batch = nil
            let message = "\(b.requests[index].kind) job \(index) failed \(Self.maxFailures) times; last: \(reason)"
            out.append(.jobsFinished(.failure(RunError(message: message))))
        }
    }

    /// A snapshot arrives model by model, the policy last.
    mutating func receiveSnapshot(_ w: Wire.Weights, from id: WorkerID, into out: inout [Directive]) {
        snapshotInbox.append(w)
        guard w.model == .policy else { return }
        snapshot = (w.version, snapshotInbox)
        snapshotInbox = []
        for job in workers[id]?.assignments ?? [] where assignments[job]?.work == .snapshotSource { release(job) }
        let purpose: RunEvent.SnapshotPurpose = snapshotWanted ? .checkpoint : .synchronize
        out.append(.record(.snapshot(version: w.version, from: "\(id)", purpose: purpose)))
    }

    /// A rank's report of the step running at `at`: the current step's, the one sent ahead, or
    /// one whose ring was given up (its report only says where the worker's replica is).
    mutating func completeStep(_ r: Wire.Result, at: UInt64, from id: WorkerID, into out: inout [Directive]) {
        var result: GradientResult?
        var reason = r.message
        if r.status == .succeeded {
            // A report that does not decode counts as a failed rank, and says why.
            do { result = try GradientResult(wireBody: r.body, field: "result") } catch {
                reason = "its report did not decode (\(error))"
            }
        }
        if let result { workers[id]?.version = result.version }
        if result == nil {
            out.append(.log(.warning, "step \(at + 1) failed on \(id): \(reason)"))
        }
        if step?.runsAt == at, step?.ring?.participants.contains(id) == true {
            step?.ring?.reports[id] = .some(result)
            if result == nil { step?.lastFailure = "\(id): \(reason)" }
            finishStepIfReported(into: &out)
        } else if lookahead?.runsAt == at, lookahead?.ring?.participants.contains(id) == true {
            lookahead?.ring?.reports[id] = .some(result)
            if result == nil { lookahead?.lastFailure = "\(id): \(reason)" }
        }
    }
}
