import Protocol
import RLAIF

/// Handing out work: snapshots for workers that are behind, rings for steps, jobs of a batch.
extension SchedulerState {
    func isIdle(_ id: WorkerID) -> Bool { isAlive(id) && workers[id]?.assignments.isEmpty == true }

    func isCurrent(_ id: WorkerID) -> Bool { workers[id]?.version == version }

    /// Finished its share of a running step (or of the one sent ahead), which is not committed
    /// yet: it is ahead, not behind.
    func isFinishingStep(_ id: WorkerID) -> Bool {
        guard let v = workers[id]?.version, v > version else { return false }
        return [step, lookahead].contains { s in
            guard let s, let ring = s.ring else { return false }
            return ring.participants.contains(id) && v <= s.runsAt + 1
        }
    }

    /// An idle worker whose replica is not at the committed version (and not ahead of it mid-step).
    /// A rollout worker is brought up to date only when a batch needs the weights, not after
    /// every step it takes no part in.
    func needsSnapshot(_ id: WorkerID) -> Bool {
        // The cheapest test first: most are current.
        !isCurrent(id) && isIdle(id) && !isFinishingStep(id) && (trains(id) || batchNeedsCommittedWeights)
    }

    /// The running batch's jobs need the weights at the committed version (not an older one).
    var batchNeedsCommittedWeights: Bool { batch.map { $0.needsWeights && $0.pinnedVersion == version } ?? false }

    /// A step waits for a batch pinned to the committed version that no rollout worker can make
    /// while the trainers step: the trainers make it first.
    var stepWaitsForBatch: Bool {
        batchNeedsCommittedWeights && !liveWorkers.contains { workers[$0]?.role == .rollout }
    }

    mutating func dispatch(at now: ContinuousClock.Instant, into out: inout [Directive]) {
        synchronizeBehindWorkers(at: now, into: &out)
        startStepIfReady(at: now, into: &out)
        sendNextStepAhead(at: now, into: &out)
        leaseJobs(to: liveWorkers, at: now, into: &out)
        failIfCommittedStateIsLost(into: &out)
        failIfPinnedStateIsLost(into: &out)
    }

    /// After a job's success: the worker it freed may be a snapshot source, a rank a step
    /// waits for, or take the next job. No other worker's state changed, so leasing looks at
    /// it alone (a walk over a thousand workers cost more than the job itself).
    mutating func dispatch(freed id: WorkerID, at now: ContinuousClock.Instant, into out: inout [Directive]) {
        synchronizeBehindWorkers(at: now, into: &out)
        startStepIfReady(at: now, into: &out)
        sendNextStepAhead(at: now, into: &out)
        leaseJobs(to: [id], at: now, into: &out)
    }

    /// No live worker holds the committed weights (or is a step past them) and no snapshot of
    /// them is kept: the workers that had them were lost. Nothing can bring a worker up to date.
    var committedStateIsLost: Bool {
        guard version > 0, snapshot?.version != version else { return false }
        return !liveTrainers.contains { (workers[$0]?.version ?? 0) >= version }  // rollout workers hold no moments
    }

    /// Ends what the run waits for that needs the committed weights, with what to do, rather
    /// than waiting for ever.
    mutating func failIfCommittedStateIsLost(into out: inout [Directive]) {
        guard committedStateIsLost else { return }
        let error = RunError(
            message: "no live worker holds the weights of version \(version), and no snapshot of them is kept "
                + "(the workers that had them were lost): the run cannot go on. `rlaif resume RUN_DIR` "
                + "continues it from its newest checkpoint")
        if step != nil {
            step = nil
            lookahead = nil
            out.append(.stepFinished(.failure(error)))
        }
        if snapshotWanted {
            snapshotWanted = false
            out.append(.snapshotReady(.failure(error)))
        }
        if let b = batch, b.requests.contains(where: \.needsWeights) {
            batch = nil
            out.append(.jobsFinished(.failure(error)))
        }
    }

    /// The batch's jobs need the weights of a version steps have moved past, and no live worker
    /// that takes jobs holds them: no worker can ever make them.
    mutating func failIfPinnedStateIsLost(into out: inout [Directive]) {
        guard let b = batch, b.needsWeights, b.pinnedVersion < version, snapshot?.version != b.pinnedVersion else {
            return
        }
        let holders = liveWorkers.filter {
            workers[$0]?.role.takesJobs == true
                && (workers[$0]?.version == b.pinnedVersion || holds($0, .synchronize(version: b.pinnedVersion)))
        }
        guard holders.isEmpty else { return }
        batch = nil
        let message =
            "no live worker holds the policy of version \(b.pinnedVersion) that this batch's jobs come from "
            + "(the rollout workers that had it were lost while the trainers stepped on): `rlaif resume RUN_DIR` "
            + "continues the run from its newest checkpoint"
        out.append(.jobsFinished(.failure(RunError(message: message))))
    }

    /// A model's snapshot message with its AdamW moments left out.
    static func withoutOptimizerState(_ message: Wire.Weights) -> Wire.Weights {
        guard var state = ModelReplica.ModelState(message), state.firstMoment != nil else { return message }
        state.firstMoment = nil
        state.secondMoment = nil
        return state.weights(version: message.version)
    }

    mutating func assign(_ worker: WorkerID, _ work: Work, at now: ContinuousClock.Instant) -> UInt64 {
        let job = nextWireJob
        nextWireJob += 1
        assignments[job] = Assignment(worker: worker, work: work, deadline: now + timing.lease, started: now)
        workers[worker]?.assignments.append(job)
        return job
    }

    var leaseMilliseconds: UInt32 { UInt32(clamping: timing.lease.milliseconds) }

    /// Workers that are behind take the newest snapshot; a snapshot at the committed version is
    /// read from a current worker when one is needed and none is at hand.
    mutating func synchronizeBehindWorkers(at now: ContinuousClock.Instant, into out: inout [Directive]) {
        // Fast path, after most results: every worker is at the committed version (one pass over
        // the records in place, no lookups).
        guard snapshotWanted || workers.values.contains(where: { $0.version != version }) else { return }
        var behind = liveWorkers.filter { needsSnapshot($0) }
        guard !behind.isEmpty || snapshotWanted else { return }
        // Rollout workers take the weights down a chain from a current trainer: one copy leaves it.
        let chain = behind.filter { workers[$0]?.role == .rollout }
        if !chain.isEmpty, let source = liveTrainers.first(where: { isIdle($0) && isCurrent($0) }) {
            broadcast(from: source, down: chain, at: now, into: &out)
            behind.removeAll { chain.contains($0) }
        }
        if let snap = snapshot, snap.version == version {
            for id in behind { synchronize(id, from: snap.messages, at: now, into: &out) }
            if snapshotWanted {
                snapshotWanted = false
                out.append(.snapshotReady(.success(snap.messages)))
            }
            return
        }
        let reading = assignments.values.contains { $0.work == .snapshotSource }
        let source = liveTrainers.first { isIdle($0) && isCurrent($0) }
        guard !reading, let source else { return }
        snapshotInbox = []
        _ = assign(source, .snapshotSource, at: now)
        out.append(
            .send(
                .weightsRequest(.init(workerID: source.rawValue, model: .policy, version: version)),
                to: workers[source]!.peer))
    }

    /// Sends `source`'s weights down `chain`: the source and each link are told the next.
    mutating func broadcast(
        from source: WorkerID, down chain: [WorkerID], at now: ContinuousClock.Instant, into out: inout [Directive]
    ) {
        ringEpoch += 1
        let links = [source] + chain
        for (i, id) in links.enumerated() {
            let next = i + 1 < links.count ? workers[links[i + 1]] : nil
            // Half the step's wait: a link whose predecessor died fails, and is sent to again,
            // while the step still waits for it.
            let spec = BroadcastSpec(
                version: version, epoch: ringEpoch, next: next?.ringEndpoint, nextKey: next?.publicKey,
                timeoutMs: Int(timing.stepWait.milliseconds / 2))
            let job = assign(id, i == 0 ? .broadcastSource(version: version) : .synchronize(version: version), at: now)
            let assign = Wire.Assign(
                jobID: job, kind: i == 0 ? .broadcast : .synchronize, step: version, attempt: 0,
                leaseMilliseconds: leaseMilliseconds, weightsVersion: version, body: spec.wireBody)
            out.append(.send(.assign(assign), to: workers[id]!.peer))
        }
        out.append(.record(.broadcast(version: version, from: "\(source)", chain: chain.map(\.description))))
    }

    mutating func synchronize(
        _ id: WorkerID, from messages: [Wire.Weights], at now: ContinuousClock.Instant, into out: inout [Directive]
    ) {
        let peer = workers[id]!.peer
        // A rollout worker keeps no optimizer state: it is sent the weights alone.
        let sent = trains(id) ? messages : messages.map(Self.withoutOptimizerState)
        for m in sent { out.append(.send(.weights(m), to: peer)) }
        let job = assign(id, .synchronize(version: version), at: now)
        let assign = Wire.Assign(
            jobID: job, kind: .synchronize, step: version, attempt: 0, leaseMilliseconds: leaseMilliseconds,
            weightsVersion: version)
        out.append(.send(.assign(assign), to: peer))
    }

    /// Starts the step's ring on every idle current worker, once no live worker is still syncing
    /// or busy, or once the step has waited `timing.stepWait` for them.
    mutating func startStepIfReady(at now: ContinuousClock.Instant, into out: inout [Directive]) {
        guard let request = step?.request, step?.ring == nil, !stepWaitsForBatch else { return }
        let since = step?.waitingSince ?? now
        step?.waitingSince = since
        let trainers = liveTrainers
        let ready = trainers.filter { isIdle($0) && isCurrent($0) }
        // Rollout workers on their way to the weights a batch is pinned to are waited for too:
        // should a link of their chain die, a trainer still holds the weights to send again.
        let rolloutsBehind =
            batchNeedsCommittedWeights
            ? liveWorkers.filter { !trains($0) && (needsSnapshot($0) || holds($0, .synchronize(version: version))) }
            : []
        let pending = trainers.filter { !isIdle($0) || needsSnapshot($0) } + rolloutsBehind
        guard !ready.isEmpty else { return }
        if !pending.isEmpty {
            guard now - since >= timing.stepWait else { return }
            out.append(.log(.warning, "step \(version + 1) starts without \(pending.map(\.description)): still busy"))
        }
        let ring = sendRing(request, to: ready, runsAt: version, at: now, into: &out)
        step?.ring = ring
    }

    /// Sends the step the run named as next to the running step's ring, to run right after it,
    /// when that ring holds every live worker (a worker syncing or behind waits for a ring
    /// formed after a commit instead).
    mutating func sendNextStepAhead(at now: ContinuousClock.Instant, into out: inout [Directive]) {
        guard lookahead == nil, let next = nextRequest, let s = step, let ring = s.ring else { return }
        guard liveTrainers == ring.participants, !ring.reports.values.contains(where: { $0 == nil }) else { return }
        nextRequest = nil
        let participants = ring.participants
        let sent = sendRing(next, to: participants, runsAt: s.runsAt + 1, at: now, into: &out)
        lookahead = Step(runsAt: s.runsAt + 1, request: next, waitingSince: now, ring: sent)
    }

    /// Assigns each participant its share of the request's micro-batches, in one new ring.
    mutating func sendRing(
        _ request: StepRequest, to participants: [WorkerID], runsAt: UInt64, at now: ContinuousClock.Instant,
        into out: inout [Directive]
    ) -> Ring {
        ringEpoch += 1
        let shares = request.shares(of: participants.count)
        for (rank, id) in participants.enumerated() {
            var share = shares[rank]
            let next = workers[participants[(rank + 1) % participants.count]]!
            share.spec.ring = .init(
                rank: rank, size: participants.count, epoch: ringEpoch, next: next.ringEndpoint,
                nextKey: next.publicKey, timeoutMs: Int(timing.ringTimeout.milliseconds))
            let job = assign(id, .step(at: runsAt), at: now)
            let assign = Wire.Assign(
                jobID: job, kind: .gradient, step: runsAt, attempt: 0, leaseMilliseconds: leaseMilliseconds,
                weightsVersion: runsAt, body: share.wireBody)
            out.append(.send(.assign(assign), to: workers[id]!.peer))
        }
        return Ring(epoch: ringEpoch, participants: participants)
    }

    /// Commits the step once every live participant has reported; a ring on which every rank
    /// failed is formed again (at most `maxFailures` times).
    mutating func finishStepIfReported(into out: inout [Directive]) {
        guard var s = step, let ring = s.ring else { return }
        guard ring.participants.allSatisfy({ ring.reports[$0] != nil || !isAlive($0) }) else { return }
        let successes = ring.participants.compactMap { ring.reports[$0] ?? nil }
        guard let first = successes.first else {
            s.failedRings += 1
            s.ring = nil
            s.waitingSince = nil
            lookahead = nil  // its ranks find their replicas at the wrong version and say so
            out.append(.log(.warning, "step \(version + 1) failed on every rank; re-forming the ring"))
            out.append(.record(.stepRetry(version: version, epoch: Int(ring.epoch))))
            if s.failedRings >= Self.maxFailures {
                step = nil
                let message = "step \(version) failed on every rank \(Self.maxFailures) times; last: \(s.lastFailure)"
                out.append(.stepFinished(.failure(RunError(message: message))))
            } else {
                step = s
            }
            return
        }
        if successes.contains(where: { $0.fingerprint != first.fingerprint }) {
            out.append(.log(.critical, "replicas disagree after step \(version + 1): \(successes.map(\.fingerprint))"))
        }
        // Ranks that did not finish keep the version they reported: behind, they take a snapshot.
        out.append(
            .record(
                .step(
                    version: version + 1, participants: ring.participants.map(\.description), epoch: Int(ring.epoch),
                    fingerprint: first.fingerprint)))
        version += 1
        step = nil
        nextRequest = nil
        out.append(.stepFinished(.success(StepTiming.merged(successes) ?? first)))
    }

    /// Leases queued jobs of the batch to idle workers, lowest id first; jobs that need the
    /// weights go to workers at the batch's pinned version only.
    mutating func leaseJobs(to candidates: [WorkerID], at now: ContinuousClock.Instant, into out: inout [Directive]) {
        guard var b = batch.take() else { return }  // taken out: its ledger changes in place
        defer { batch = b }
        for id in candidates {
            guard let record = workers[id], record.assignments.isEmpty, record.role.takesJobs, isAlive(id) else {
                continue
            }
            // A trainer is kept for the step that is asked for, unless that step waits for the batch.
            if record.role.trains, step != nil, !stepWaitsForBatch { continue }
            let current = record.version == b.pinnedVersion
            let requests = b.requests
            guard
                let lease = b.ledger.lease(
                    to: id, now: now, duration: timing.lease, where: { current || !requests[$0].needsWeights })
            else { continue }
            let request = b.requests[lease.payload]
            let job = assign(id, .job(lease.job, attempt: lease.attempt), at: now)
            let assign = Wire.Assign(
                jobID: job, kind: request.kind, step: UInt64(lease.payload), attempt: lease.attempt,
                leaseMilliseconds: leaseMilliseconds, weightsVersion: b.pinnedVersion, body: request.body)
            out.append(.send(.assign(assign), to: record.peer))
        }
    }
}
