import Protocol
import Testing

@testable import Coordinator
@testable import RLAIF

/// A batch and a step at once (`rl.rollout_lag`'s overlap), at explicit instants: the batch's
/// jobs run at the version committed when it was asked for, on rollout workers, while the
/// trainers step; with no rollout worker the step waits for the batch.
@Suite struct SchedulerOverlapTests {
    typealias H = SchedulerHarness

    static func succeed(_ h: inout H, _ job: (worker: UInt32, assign: Wire.Assign)) {
        h.handle(
            .message(
                .result(
                    .init(jobID: job.assign.jobID, attempt: 0, workerID: job.worker, status: .succeeded, body: [1])),
                from: h.peers[job.worker]!, key: nil))
    }

    static var jobsSucceeded: (SchedulerState.Directive) -> Bool {
        { if case .jobsFinished(.success) = $0 { true } else { false } }
    }

    @Test func rolloutsPinnedToTheirVersion_runOnTheRolloutWorker_whileTheTrainerCommitsSteps() throws {
        var h = H()
        let r = h.join("r", role: .rollout), t = h.join("t", role: .train)
        let first = h.assignments(in: h.handle(.jobsRequested(H.rollouts(3))))
        #expect(first.map(\.worker) == [r] && first[0].assign.weightsVersion == 0)
        // Two steps commit while the rollout worker still holds its first job.
        for _ in 0..<2 {
            let ring = h.assignments(in: h.handle(.stepRequested(H.stepRequest(), next: nil)))
            #expect(ring.map(\.worker) == [t])
            for a in ring { h.reportStep(a.worker, a.assign) }
        }
        #expect(h.state.version == 2)
        var job = first[0]
        for _ in 0..<3 {
            let start = h.log.count
            Self.succeed(&h, job)
            guard let next = h.assignments(in: Array(h.log[start...])).first else { break }
            #expect(next.worker == r && next.assign.weightsVersion == 0)  // still the pinned version
            job = next
        }
        #expect(h.log.contains(where: Self.jobsSucceeded))
        #expect(h.synchronizations == 0 && h.weightsRequests(in: h.log).isEmpty)

        // The next batch is pinned to version 2: the rollout worker is brought there first.
        let links = h.assignments(in: h.handle(.jobsRequested(H.rollouts(1))))
        #expect(links.map(\.worker) == [t, r] && links.allSatisfy { $0.assign.weightsVersion == 2 })
    }

    @Test func withoutRolloutWorkers_theStepWaitsForTheBatch_onTheMixedWorkers() {
        var h = H()
        let a = h.join("a"), b = h.join("b")
        let jobs = h.assignments(in: h.handle(.jobsRequested(H.rollouts(2))))
        #expect(Set(jobs.map(\.worker)) == [a, b])
        let asked = h.log.count
        h.handle(.stepRequested(H.stepRequest(), next: nil))
        for _ in 0..<5 {  // past the bounded wait (2 s): the batch is what it waits for
            h.advance(.seconds(2))
            h.heartbeat([a, b])
            h.handle(.tick)
        }
        #expect(h.assignments(in: Array(h.log[asked...])).isEmpty)
        for j in jobs { Self.succeed(&h, j) }
        #expect(h.log.contains(where: Self.jobsSucceeded))
        let ring = h.assignments(in: Array(h.log[asked...]))
        #expect(Set(ring.map(\.worker)) == [a, b] && ring.allSatisfy { $0.assign.kind == .gradient })
    }

    /// The step waits for rollout workers syncing to the batch's version: a link that fails
    /// (its predecessor died) is sent the weights again by a trainer that still holds them.
    @Test func stepWaitsForTheChain_soAFailedLinkIsSentTheWeightsAgain() throws {
        var h = H()
        let (r1, r2, t, links) = h.chainOfTwoRolloutWorkers(rollouts: 2)
        #expect(links.map(\.worker) == [t, r1, r2])
        h.reportSynchronized(t, links[0].assign)  // the source is done sending
        let asked = h.log.count
        h.handle(.stepRequested(H.stepRequest(), next: nil))
        #expect(h.assignments(in: Array(h.log[asked...])).isEmpty)  // r1 and r2 are still syncing
        h.handle(
            .message(
                .result(
                    .init(
                        jobID: links[2].assign.jobID, attempt: 0, workerID: r2, status: .failed,
                        message: "no broadcast slice", body: ReplicaReport(version: 0).wireBody)),
                from: h.peers[r2]!, key: nil))
        let again = h.assignments(in: Array(h.log[asked...]))
        #expect(again.map(\.worker) == [t, r2] && again[0].assign.kind == .broadcast)
        #expect(again.allSatisfy { $0.assign.weightsVersion == 1 })
        h.reportSynchronized(t, again[0].assign)
        h.reportSynchronized(r1, links[1].assign)
        let before = h.log.count
        h.reportSynchronized(r2, again[1].assign)
        let after = h.assignments(in: Array(h.log[before...]))
        #expect(after.contains { $0.worker == t && $0.assign.kind == .gradient })
        #expect(after.contains { $0.worker == r2 && $0.assign.kind == .rollout && $0.assign.weightsVersion == 1 })
    }

    @Test func rolloutWorkerLost_afterTheStepsMovedOn_failsTheBatch_sayingHowToResume() throws {
        var h = H()
        let r = h.join("r", role: .rollout), t = h.join("t", role: .train)
        _ = h.handle(.jobsRequested(H.rollouts(2)))
        let ring = h.assignments(in: h.handle(.stepRequested(H.stepRequest(), next: nil)))
        for a in ring { h.reportStep(a.worker, a.assign) }
        // Only the trainer keeps heartbeating: the rollout worker is declared dead.
        for _ in 0..<3 {
            h.advance(.seconds(2))
            h.heartbeat([t])
        }
        h.handle(.tick)
        #expect(!h.state.liveWorkers.contains(WorkerID(r)))
        let failure = h.log.compactMap { d -> RunError? in
            if case .jobsFinished(.failure(let e)) = d { e } else { nil }
        }
        #expect(failure.count == 1)
        #expect(failure.first?.message.contains("version 0") == true)
        #expect(failure.first?.message.contains("rlaif resume") == true)
    }
}
