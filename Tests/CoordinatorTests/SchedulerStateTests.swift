import Protocol
import RLAIF
import Testing

@testable import Coordinator

/// The scheduler's decisions at explicit instants: who is in each ring, when snapshots move,
/// what happens when a worker joins, dies, stalls or fails mid-step.
@Suite struct SchedulerStateTests {
    typealias H = SchedulerHarness

    /// Commits one step on whoever gets it; ranks answer in `order` (default: as assigned).
    func commitStep(_ h: inout H, reversed: Bool = false) -> [UInt32] {
        let out = h.handle(.stepRequested(H.stepRequest(), next: nil))
        var ring = h.assignments(in: out)
        if reversed { ring.reverse() }
        for (i, r) in ring.enumerated() {
            if i > 0 {  // the others finish later, with a tick in between
                h.advance(.milliseconds(20))
                h.heartbeat(Array(h.replicaVersion.keys))
                h.handle(.tick)
            }
            h.reportStep(r.worker, r.assign)
        }
        return ring.map(\.worker).sorted()
    }

    /// Commits a step, then joins worker "c", which is sent a snapshot it never answers.
    func joinAfterAStep_andStallItsSync(_ h: inout H) -> UInt32 {
        _ = commitStep(&h)
        let c = h.join("c")
        h.handle(.tick)
        h.sendSnapshot(from: h.weightsRequests(in: h.log)[0])
        return c
    }

    @Test func undisturbedRun_keepsEveryWorkerInEveryRing_andShipsNoSnapshot() {
        var h = H()
        let a = h.join("a"), b = h.join("b")
        for step in 0..<30 {
            #expect(commitStep(&h, reversed: step % 2 == 1) == [a, b])
            if step % 10 == 9 {  // a checkpoint between steps reads one worker's state
                let sources = h.weightsRequests(in: h.handle(.snapshotRequested))
                #expect(sources.count == 1)
                h.sendSnapshot(from: sources[0])
            }
        }
        #expect(h.committedSteps.count == 30)
        #expect(h.committedSteps.allSatisfy { $0.participants == ["w1", "w2"] })
        #expect(h.synchronizations == 0)
        #expect(h.state.version == 30)
        let ready = h.log.filter { if case .snapshotReady = $0 { true } else { false } }
        #expect(ready.count == 3)
    }

    @Test func committedStep_reportsTheRingsTimings_notTheFirstRanks() throws {
        var h = H()
        _ = h.join("a")
        _ = h.join("b")
        let ring = h.assignments(in: h.handle(.stepRequested(H.stepRequest(), next: nil)))
        let reports: [[String: Double]] = [
            [StepTiming.compute: 0.010, StepTiming.allReduce: 0.004, StepTiming.update: 0.001, "loss": 2],
            [StepTiming.compute: 0.013, StepTiming.allReduce: 0.001, StepTiming.update: 0.002, "loss": 2],
        ]
        for (r, metrics) in zip(ring, reports) { h.reportStep(r.worker, r.assign, metrics: metrics) }
        let result = try #require(try h.stepOutcomes.last?.get())
        #expect(result.metrics[StepTiming.compute] == 0.013)
        #expect(result.metrics[StepTiming.allReduce] == 0.001)
        #expect(result.metrics[StepTiming.update] == 0.002)
        #expect(abs(result.metrics[StepTiming.straggler]! - 0.003) < 1e-12)
        #expect(result.metrics["loss"] == 2)
    }

    @Test func workerJoiningMidStep_isSyncedOnce_andTheNextRingWaitsForIt() {
        var h = H()
        let a = h.join("a"), b = h.join("b")
        _ = commitStep(&h)
        let ring = h.assignments(in: h.handle(.stepRequested(H.stepRequest(), next: nil)))
        let c = h.join("c")  // behind (version 0 of 1), while every current worker is in the ring
        #expect(h.assignments(in: h.log).allSatisfy { $0.worker != c })
        for r in ring { h.reportStep(r.worker, r.assign) }
        #expect(h.committedSteps.last?.participants == ["w1", "w2"])
        #expect(h.weightsRequests(in: h.log) == [a])

        // The next step waits for the snapshot and the sync rather than starting without them.
        let next = h.handle(.stepRequested(H.stepRequest(), next: nil))
        #expect(h.assignments(in: next).isEmpty)
        h.sendSnapshot(from: a)
        let sync = h.assignments(in: h.log).last!
        #expect(sync.worker == c && sync.assign.kind == .synchronize && sync.assign.weightsVersion == 2)
        h.reportSynchronized(c, sync.assign)
        let full = h.assignments(in: h.log).suffix(3)
        #expect(full.map(\.worker).sorted() == [a, b, c])
        #expect(full.allSatisfy { $0.assign.kind == .gradient && $0.assign.step == 2 })
        #expect(h.synchronizations == 1)
    }

    @Test func workerDyingMidStep_ringIsFormedAgainOnTheSurvivors() {
        var h = H()
        let a = h.join("a"), b = h.join("b"), _ = h.join("c")
        let first = h.assignments(in: h.handle(.stepRequested(H.stepRequest(), next: nil)))
        #expect(first.count == 3)
        h.advance(.seconds(2))
        h.heartbeat([a, b])
        h.advance(.milliseconds(1500))
        h.handle(.tick)  // c silent for 3.5 s: declared dead, its share abandoned
        #expect(h.log.contains { if case .record(.workerLost(worker: "w3", _)) = $0 { true } else { false } })
        for r in first where r.worker != 3 { h.reportStep(r.worker, r.assign, succeeded: false) }  // ring timed out
        #expect(h.log.contains { if case .record(.stepRetry) = $0 { true } else { false } })
        let second = h.assignments(in: h.log).suffix(2)
        #expect(second.map(\.worker).sorted() == [a, b])
        for r in second { h.reportStep(r.worker, r.assign) }
        #expect(h.committedSteps.map(\.participants) == [["w1", "w2"]])
        #expect(h.synchronizations == 0)
    }

    @Test func expiredLease_handsTheJobOutAgain_andTheLateAnswerIsDropped() throws {
        var timing = H.timing
        timing.lease = .seconds(1)
        var h = H(timing: timing)
        let a = h.join("a"), b = h.join("b")
        let jobs = (0..<2).map { _ in SchedulerState.JobRequest(kind: .labeling, body: [], needsWeights: false) }
        let first = h.assignments(in: h.handle(.jobsRequested(jobs)))
        #expect(first.map(\.worker) == [a, b])
        func answer(_ id: UInt32, _ x: Wire.Assign) {
            h.handle(
                .message(
                    .result(
                        .init(
                            jobID: x.jobID, attempt: x.attempt, workerID: id, status: .succeeded, body: [UInt8(x.step)])
                    ),
                    from: h.peers[id]!, key: nil))
        }
        #expect(h.state.occupancy == ["labeling": .init(queued: 0, running: 2)])
        answer(b, first[1].assign)
        #expect(h.state.occupancy == ["labeling": .init(queued: 0, running: 1)])
        h.advance(.milliseconds(1500))
        h.heartbeat([a, b])
        let again = h.assignments(in: h.handle(.tick))
        #expect(again.count == 1 && again[0].assign.step == 0 && again[0].assign.attempt == 1)
        // The lapsed lease is a failed attempt, in the log.
        #expect(h.log.contains { if case .record(.jobFailed(kind: "labeling", _, _)) = $0 { true } else { false } })
        answer(a, first[0].assign)  // the first attempt, too late: dropped
        #expect(!h.log.contains { if case .jobsFinished = $0 { true } else { false } })
        answer(again[0].worker, again[0].assign)
        guard case .jobsFinished(.success(let results))? = h.log.last else {
            Issue.record("the batch did not finish")
            return
        }
        #expect(results.map(\.body) == [[0], [1]])
        #expect(h.state.occupancy.isEmpty)
    }

    @Test func workerReportingAnOldVersion_takesASnapshotBeforeItsNextWeightedJob() {
        var h = H()
        let a = h.join("a"), b = h.join("b")
        _ = commitStep(&h)
        let jobs = (0..<3).map { _ in SchedulerState.JobRequest(kind: .rollout, body: [], needsWeights: true) }
        let first = h.assignments(in: h.handle(.jobsRequested(jobs)))
        let batchStart = h.log.count
        let onB = first.first { $0.worker == b }!
        h.replicaVersion[b] = 0  // b's replica turns out to be behind: the job fails and says so
        h.handle(
            .message(
                .result(
                    .init(
                        jobID: onB.assign.jobID, attempt: 0, workerID: b, status: .failed,
                        message: "weights at version 0",
                        body: ReplicaReport(version: 0).wireBody)), from: h.peers[b]!, key: nil))
        #expect(h.assignments(in: Array(h.log[batchStart...])).isEmpty)  // nothing for b until a can lend its state
        let onA = first.first { $0.worker == a }!
        h.handle(
            .message(
                .result(.init(jobID: onA.assign.jobID, attempt: 0, workerID: a, status: .succeeded, body: [1])),
                from: h.peers[a]!, key: nil))
        #expect(h.weightsRequests(in: h.log) == [a])
        h.sendSnapshot(from: a)
        let sync = h.assignments(in: h.log).last { $0.worker == b }!
        #expect(sync.assign.kind == .synchronize && sync.assign.weightsVersion == 1)
        h.reportSynchronized(b, sync.assign)
        let afterSync = h.assignments(in: h.log).last { $0.worker == b }!
        #expect(afterSync.assign.kind == .rollout && afterSync.assign.weightsVersion == 1)
        let retried = h.assignments(in: h.log).filter {
            $0.assign.kind == .rollout && $0.assign.step == onB.assign.step
        }
        #expect(retried.map(\.assign.attempt) == [0, 1])
        #expect(h.synchronizations == 1)
    }

    @Test func stepReportThatDoesNotDecode_countsAsAFailedRank_namingTheField() {
        var h = H()
        let a = h.join("a"), b = h.join("b")
        let first = h.assignments(in: h.handle(.stepRequested(H.stepRequest(), next: nil)))
        let garbled = GradientResult(version: 1, fingerprint: "f1", metrics: ["loss": 1], gradientNorm: 1).wireBody
            .dropLast(3)
        for r in first {
            guard r.worker == a else { continue }
            h.handle(
                .message(
                    .result(
                        .init(jobID: r.assign.jobID, attempt: 0, workerID: a, status: .succeeded, body: Array(garbled))),
                    from: h.peers[a]!, key: nil))
        }
        for r in first where r.worker == b { h.reportStep(b, r.assign) }
        // The ring reduced together, so b's report commits the step; a's word is not taken for
        // its replica's version, and the warning says which field broke.
        #expect(h.state.version == 1 && h.committedSteps.count == 1)
        #expect(
            h.log.contains { if case .log(.warning, let line) = $0 { line.contains("result.metric") } else { false } })
    }

    @Test func stepFailingOnEveryRank_endsTheRunAfterMaxFailures_withTheWorkersMessage() {
        var h = H()
        _ = h.join("a")
        _ = h.join("b")
        var rings = 0
        var pending = h.assignments(in: h.handle(.stepRequested(H.stepRequest(), next: nil)))
        while !pending.isEmpty {
            rings += 1
            let before = h.log.count
            for r in pending { h.reportStep(r.worker, r.assign, succeeded: false) }
            pending = h.assignments(in: Array(h.log[before...]))
        }
        #expect(rings == SchedulerState.maxFailures)
        guard case .failure(let error)? = h.stepOutcomes.last else {
            Issue.record("the step did not fail")
            return
        }
        #expect(error.message.contains("failed on every rank 4 times"))
        #expect(error.message.contains("ring timed out"))
        #expect(h.state.version == 0)
    }

    @Test func checkpointAskedDuringAStep_readsTheCommittedState_andKeepsItsSourceInTheNextRing() {
        var h = H()
        let a = h.join("a"), b = h.join("b")
        let ring = h.assignments(in: h.handle(.stepRequested(H.stepRequest(), next: nil)))
        #expect(h.weightsRequests(in: h.handle(.snapshotRequested)).isEmpty)  // every current worker is busy
        h.reportStep(ring[0].worker, ring[0].assign)
        #expect(h.weightsRequests(in: h.log).isEmpty)  // a rank ahead of the commit is no source
        h.reportStep(ring[1].worker, ring[1].assign)
        #expect(h.weightsRequests(in: h.log) == [a])
        let next = h.handle(.stepRequested(H.stepRequest(), next: nil))
        #expect(h.assignments(in: next).isEmpty)  // waits for the source
        h.sendSnapshot(from: a)
        #expect(h.log.contains { if case .snapshotReady = $0 { true } else { false } })
        #expect(h.assignments(in: h.log).suffix(2).map(\.worker).sorted() == [a, b])
        #expect(h.synchronizations == 0)
    }

    @Test func stepWaitsForASyncingWorker_atMostStepWait() {
        var h = H()
        let a = h.join("a"), b = h.join("b")
        let c = joinAfterAStep_andStallItsSync(&h)
        let sync = h.assignments(in: h.log).last!
        #expect(sync.worker == c && sync.assign.kind == .synchronize)
        #expect(h.assignments(in: h.handle(.stepRequested(H.stepRequest(), next: nil))).isEmpty)
        h.advance(.seconds(1))
        h.heartbeat([a, b, c])
        #expect(h.assignments(in: h.handle(.tick)).isEmpty)
        h.advance(.milliseconds(1100))
        h.heartbeat([a, b, c])
        let ring = h.assignments(in: h.handle(.tick))
        #expect(ring.map(\.worker).sorted() == [a, b])
    }

    // MARK: Steps sent ahead

    @Test func nextStep_isSentToTheSameRing_andAdoptedWhenTheRunAsksForIt() {
        var h = H()
        let a = h.join("a"), b = h.join("b")
        let sent = h.assignments(in: h.handle(.stepRequested(H.stepRequest(), next: H.stepRequest())))
        #expect(sent.map(\.worker) == [a, b, a, b])
        #expect(sent.map(\.assign.step) == [0, 0, 1, 1])
        let epochs = sent.map { (try? GradientJob(wireBody: $0.assign.body, field: "gradient"))?.spec.ring?.epoch }
        #expect(epochs[0] == epochs[1] && epochs[2] == epochs[3] && epochs[0] != epochs[2])
        h.reportStep(a, sent[0].assign)
        h.reportStep(a, sent[2].assign)  // a is two steps on before b finishes the first
        #expect(h.weightsRequests(in: h.log).isEmpty && h.synchronizations == 0)
        h.reportStep(b, sent[1].assign)
        #expect(h.state.version == 1)
        let adopted = h.handle(.stepRequested(H.stepRequest(), next: nil))
        #expect(h.assignments(in: adopted).isEmpty)  // already running
        h.reportStep(b, sent[3].assign)
        #expect(h.state.version == 2)
        #expect(h.committedSteps.map(\.participants) == [["w1", "w2"], ["w1", "w2"]])
        #expect(h.stepOutcomes.count == 2 && h.synchronizations == 0)
    }

    @Test func stepFailingEverywhere_dropsTheStepSentAhead_andIsRedone() {
        var h = H()
        let a = h.join("a"), b = h.join("b")
        let sent = h.assignments(in: h.handle(.stepRequested(H.stepRequest(), next: H.stepRequest())))
        let before = h.log.count
        h.reportStep(a, sent[0].assign, succeeded: false)
        h.reportStep(b, sent[1].assign, succeeded: false)
        #expect(h.assignments(in: Array(h.log[before...])).isEmpty)  // the ranks still hold the step sent ahead
        h.reportStep(a, sent[2].assign, succeeded: false)  // at version 0, it cannot run at 1
        h.reportStep(b, sent[3].assign, succeeded: false)
        let again = h.assignments(in: Array(h.log[before...]))
        #expect(again.map(\.worker) == [a, b] && again.allSatisfy { $0.assign.step == 0 })
        for r in again { h.reportStep(r.worker, r.assign) }
        #expect(h.state.version == 1 && h.synchronizations == 0)
        // The step sent ahead was dropped: the run's next request forms a new ring.
        #expect(h.assignments(in: h.handle(.stepRequested(H.stepRequest(), next: nil))).count == 2)
    }

    @Test func nothingIsSentAhead_whileALiveWorkerIsOutsideTheRing() {
        var h = H()
        let a = h.join("a"), b = h.join("b")
        let c = joinAfterAStep_andStallItsSync(&h)
        _ = h.handle(.stepRequested(H.stepRequest(), next: H.stepRequest()))
        h.advance(.milliseconds(2100))
        h.heartbeat([a, b, c])
        let ring = h.assignments(in: h.handle(.tick))
        #expect(ring.map(\.worker) == [a, b] && ring.allSatisfy { $0.assign.step == 1 })
    }

    /// The only worker that held the committed weights dies while the other is behind: the run
    /// is told so, with what to do, instead of waiting for ever.
    @Test func losingTheLastWorkerWithTheCommittedWeights_endsTheStepWithWhatToDo() {
        var h = H()
        let a = h.join("a"), b = h.join("b")
        let ring = h.assignments(in: h.handle(.stepRequested(H.stepRequest(), next: nil)))
        h.reportStep(a, ring[0].assign)
        h.reportStep(b, ring[1].assign, succeeded: false)  // committed on a alone; b stays at 0
        #expect(h.state.version == 1)
        h.advance(.seconds(2))
        h.heartbeat([b])
        _ = h.handle(.stepRequested(H.stepRequest(), next: nil))  // waits: a is lending its state to b
        h.advance(.milliseconds(1500))
        h.heartbeat([b])
        h.handle(.tick)  // a silent for 3.5 s: lost with the only copy of version 1
        guard case .failure(let error)? = h.stepOutcomes.last else {
            Issue.record("the step did not end")
            return
        }
        #expect(error.message.contains("no live worker holds the weights of version 1"))
        #expect(error.message.contains("rlaif resume"))
        // A fresh run (version 0) never counts as lost: every replica starts from the seed.
        var fresh = H()
        _ = fresh.join("a")
        #expect(!fresh.state.committedStateIsLost)
    }

    // MARK: Found by probing (issue 26)

    /// The probe's stall: one worker stepped alone while the other synchronized from it, and
    /// was then killed. The survivor finishes its sync from the snapshot it already has and
    /// takes the next step alone; nothing waits for the dead worker.
    @Test func workerKilledWhileTheOtherSyncsFromIt_theSurvivorTakesTheNextStep() {
        var h = H()
        let a = h.join("a"), b = h.join("b")
        let ring = h.assignments(in: h.handle(.stepRequested(H.stepRequest(), next: nil)))
        h.reportStep(a, ring[0].assign)
        h.reportStep(b, ring[1].assign, succeeded: false)  // committed on a alone; b is behind
        _ = h.handle(.stepRequested(H.stepRequest(), next: nil))
        #expect(h.weightsRequests(in: h.log) == [a])
        h.sendSnapshot(from: a)
        let sync = h.assignments(in: h.log).last!
        #expect(sync.worker == b && sync.assign.kind == .synchronize)
        h.advance(.seconds(2))
        h.heartbeat([b])
        h.advance(.milliseconds(1500))
        h.heartbeat([b])
        h.handle(.tick)  // a is lost; b holds the snapshot of version 1
        #expect(h.log.contains { if case .record(.workerLost(worker: "w1", _)) = $0 { true } else { false } })
        h.reportSynchronized(b, sync.assign)
        let alone = h.assignments(in: h.log).last!
        #expect(alone.worker == b && alone.assign.kind == .gradient && alone.assign.step == 1)
        h.reportStep(b, alone.assign)
        #expect(h.state.version == 2 && h.committedSteps.last?.participants == ["w2"])
    }

    /// A job that no worker answers (one that drops an assignment it cannot read) fails the
    /// batch after `maxFailures` leases, instead of being handed out at every lease expiry.
    @Test func jobThatNoWorkerAnswers_failsTheBatchAfterMaxFailureLeases() {
        var timing = H.timing
        timing.lease = .seconds(1)
        var h = H(timing: timing)
        let a = h.join("a")
        let job = SchedulerState.JobRequest(kind: .rollout, body: [], needsWeights: false)
        var leases = h.assignments(in: h.handle(.jobsRequested([job]))).count
        for _ in 0..<(SchedulerState.maxFailures + 2) {
            h.advance(.milliseconds(1100))
            h.heartbeat([a])
            leases += h.assignments(in: h.handle(.tick)).count
        }
        #expect(leases == SchedulerState.maxFailures)
        guard
            case .jobsFinished(.failure(let error))? = h.log.last(where: {
                if case .jobsFinished = $0 { true } else { false }
            })
        else {
            Issue.record("the batch did not end")
            return
        }
        #expect(error.message.contains("rollout job 0 failed \(SchedulerState.maxFailures) times"))
        #expect(error.message.contains("within the lease of 1000 ms"))
    }

    /// An assignment larger than a worker's decoder accepts is never sent: the batch fails at
    /// once with the size and the likely cause.
    @Test func jobTooLargeForAWorkersDecoder_failsAtOnce_withItsSize() {
        var h = H()
        _ = h.join("a")
        let huge = [UInt8](repeating: 0, count: WireLimits.default.maxBodyBytes + 1)
        let jobs = [
            SchedulerState.JobRequest(kind: .labeling, body: [], needsWeights: false),
            SchedulerState.JobRequest(kind: .rollout, body: huge, needsWeights: false),
        ]
        let out = h.handle(.jobsRequested(jobs))
        #expect(h.assignments(in: out).isEmpty)
        guard case .jobsFinished(.failure(let error))? = out.last else {
            Issue.record("the batch was not refused")
            return
        }
        #expect(error.message.hasPrefix("rollout job 1 is described in \(huge.count) bytes"))
    }
}
