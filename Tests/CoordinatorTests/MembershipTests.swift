import Testing

@testable import Coordinator

@Suite struct MembershipTests {
    let t0 = ContinuousClock.now

    // MARK: Registration

    @Test func register_assignsIncreasingIDs_andARetryKeepsItsID() {
        var m = Membership()
        let a = m.register(name: "a", incarnation: 1, at: t0)
        let b = m.register(name: "b", incarnation: 7, at: t0)
        let retry = m.register(name: "a", incarnation: 1, at: t0 + .seconds(1))
        #expect(a == .joined(WorkerID(1)))
        #expect(b == .joined(WorkerID(2)))
        #expect(retry == .alreadyMember(WorkerID(1)))
        #expect(m.status(of: WorkerID(1)) == .joining)
    }

    @Test func aliveList_isEveryMemberNotDown_inIDOrder_asStatusesMove() {
        var m = Membership()
        for name in ["a", "b", "c", "d"] { _ = m.register(name: name, incarnation: 1, at: t0) }
        m.markUp(WorkerID(2))
        m.markLeaving(WorkerID(3))
        m.markDown(WorkerID(1))
        _ = m.register(name: "d", incarnation: 2, at: t0)  // d restarts: 4 goes down, 5 joins
        _ = m.heartbeat(WorkerID(2), at: t0 + .seconds(10))
        _ = m.heartbeat(WorkerID(5), at: t0 + .seconds(10))
        _ = m.expire(now: t0 + .seconds(10), timeout: .seconds(3))  // 3 was silent
        m.markDown(WorkerID(1))  // twice: no change
        #expect(m.alive == [WorkerID(2), WorkerID(5)])
        #expect(m.alive == m.members.values.filter { $0.status < .down }.map(\.id).sorted())
    }

    @Test func restartedProcess_replacesItsFormerSelf_whichGoesDown() {
        var m = Membership()
        _ = m.register(name: "a", incarnation: 1, at: t0)
        m.markUp(WorkerID(1))
        let restart = m.register(name: "a", incarnation: 2, at: t0)
        #expect(restart == .replaced(old: WorkerID(1), new: WorkerID(2)))
        #expect(m.status(of: WorkerID(1)) == .down)
        let stale = m.heartbeat(WorkerID(1), at: t0)
        #expect(!stale)  // the old incarnation's messages are stale
    }

    // MARK: Heartbeats and timeouts

    @Test func silentMembers_goDownAfterTheTimeout_inIDOrder() {
        var m = Membership()
        for name in ["a", "b", "c"] { _ = m.register(name: name, incarnation: 1, at: t0) }
        for i in 1...3 { m.markUp(WorkerID(UInt32(i))) }
        let heard = m.heartbeat(WorkerID(2), at: t0 + .seconds(4))
        let early = m.expire(now: t0 + .seconds(3), timeout: .seconds(5))
        let late = m.expire(now: t0 + .seconds(6), timeout: .seconds(5))
        #expect(heard && early.isEmpty)
        #expect(late == [WorkerID(1), WorkerID(3)])
        #expect(m.available == [WorkerID(2)])
        // Already down: not reported twice.
        let later = m.expire(now: t0 + .seconds(60), timeout: .seconds(5))
        #expect(later == [WorkerID(2)])
    }

    // MARK: Status only moves forward

    @Test func statusNeverMovesBackward() {
        var m = Membership()
        _ = m.register(name: "a", incarnation: 1, at: t0)
        m.markUp(WorkerID(1))
        m.markDown(WorkerID(1))
        m.markUp(WorkerID(1))
        m.markLeaving(WorkerID(1))
        #expect(m.status(of: WorkerID(1)) == .down)
        #expect(m.available.isEmpty)
    }
}

@Suite struct JobLedgerTests {
    let t0 = ContinuousClock.now
    let w1 = WorkerID(1), w2 = WorkerID(2)

    func ledger(_ n: UInt64) -> JobLedger<String> {
        var l = JobLedger<String>()
        // Enqueued out of order on purpose: leasing is by id, not arrival.
        for i in (0..<n).reversed() { l.enqueue(JobID(i), "payload \(i)") }
        return l
    }

    @Test func leases_goLowestIDFirst() {
        var l = ledger(3)
        let first = l.lease(to: w1, now: t0, duration: .seconds(10))
        let second = l.lease(to: w2, now: t0, duration: .seconds(10))
        #expect(first?.job == JobID(0))
        #expect(second?.payload == "payload 1")
    }

    @Test func finished_onlyWhenEveryJobHasItsResult_andARequeuedJobGoesBeforeHigherOnes() {
        var l = ledger(3)
        let a = l.lease(to: w1, now: t0, duration: .seconds(10))!
        let b = l.lease(to: w2, now: t0, duration: .seconds(10))!
        let failed = l.fail(a.job, attempt: a.attempt, by: w1)
        #expect(failed)
        let again = l.lease(to: w1, now: t0, duration: .seconds(10))!
        #expect(again.job == JobID(0) && again.attempt == 1)
        let c = l.lease(to: w1, now: t0, duration: .seconds(10))!
        #expect(c.job == JobID(2))
        let results = [
            l.complete(b.job, attempt: b.attempt, by: w2), l.complete(b.job, attempt: b.attempt, by: w2),
            l.complete(again.job, attempt: again.attempt, by: w1),
        ]
        #expect(results == [.accepted, .duplicate, .accepted] && !l.isFinished)
        let last = l.complete(c.job, attempt: c.attempt, by: w1)
        #expect(last == .accepted && l.isFinished)
    }

    @Test func resultIsAcceptedExactlyOnce() {
        var l = ledger(1)
        let lease = l.lease(to: w1, now: t0, duration: .seconds(10))!
        let first = l.complete(lease.job, attempt: lease.attempt, by: w1)
        let again = l.complete(lease.job, attempt: lease.attempt, by: w1)
        let unknown = l.complete(JobID(99), attempt: 0, by: w1)
        #expect(first == .accepted && again == .duplicate && unknown == .unknownJob)
        #expect(l.isFinished)
    }

    @Test func expiredLease_isRequeuedWithANewAttempt_andTheLateResultIsStale() {
        var l = ledger(2)
        let first = l.lease(to: w1, now: t0, duration: .seconds(5))!
        let notYet = l.expireLeases(now: t0 + .seconds(4))
        let expired = l.expireLeases(now: t0 + .seconds(5))
        #expect(notYet.isEmpty && expired == [first.job])
        let second = l.lease(to: w2, now: t0 + .seconds(5), duration: .seconds(5))!
        #expect(second.job == first.job && second.attempt == first.attempt + 1)
        let late = l.complete(first.job, attempt: first.attempt, by: w1)
        let current = l.complete(second.job, attempt: second.attempt, by: w2)
        #expect(late == .stale && current == .accepted)
    }

    @Test func deadWorkersJobs_areRequeued_andResultsFromOthersAreStale() {
        var l = ledger(3)
        let a = l.lease(to: w1, now: t0, duration: .seconds(60))!
        let b = l.lease(to: w2, now: t0, duration: .seconds(60))!
        let c = l.lease(to: w1, now: t0, duration: .seconds(60))!
        let lost = l.workerLost(w1)
        #expect(lost == [a.job, c.job])
        #expect(l.queuedCount == 2)
        let wrongWorker = l.complete(b.job, attempt: b.attempt, by: w1)  // w1 never held b
        let rightWorker = l.complete(b.job, attempt: b.attempt, by: w2)
        #expect(wrongWorker == .stale && rightWorker == .accepted)
        // The requeued jobs come back lowest id first.
        let next = l.lease(to: w2, now: t0, duration: .seconds(60))
        #expect(next?.job == a.job)
    }

    @Test func eligibility_skipsJobsAWorkerMayNotTake_withoutReorderingTheRest() {
        var l = ledger(3)
        let odd = l.lease(to: w1, now: t0, duration: .seconds(10)) { $0.hasSuffix("1") }
        let none = l.lease(to: w1, now: t0, duration: .seconds(10)) { _ in false }
        let next = l.lease(to: w2, now: t0, duration: .seconds(10))
        #expect(odd?.job == JobID(1) && none == nil && next?.job == JobID(0))
    }

    @Test func reportedFailure_requeuesWithANewAttempt_onlyFromTheHolder() {
        var l = ledger(1)
        let first = l.lease(to: w1, now: t0, duration: .seconds(10))!
        let byOther = l.fail(first.job, attempt: first.attempt, by: w2)
        let byHolder = l.fail(first.job, attempt: first.attempt, by: w1)
        let again = l.fail(first.job, attempt: first.attempt, by: w1)  // already back in the queue
        #expect(!byOther && byHolder && !again)
        let second = l.lease(to: w2, now: t0, duration: .seconds(10))!
        #expect(second.job == first.job && second.attempt == first.attempt + 1)
    }
}
