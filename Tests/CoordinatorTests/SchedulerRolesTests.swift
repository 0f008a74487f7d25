import Protocol
import Tensor
import Testing

@testable import Coordinator
@testable import RLAIF

/// Worker roles at explicit instants: a `train` worker takes rings and no jobs; a `rollout`
/// worker takes jobs and no ring, and takes the weights, down a chain from a trainer, only when
/// a batch needs them, never after each step it took no part in.
@Suite struct SchedulerRolesTests {
    typealias H = SchedulerHarness

    @Test func rolloutAndTrainWorkers_splitJobsAndSteps_andTheRolloutWorkerIsSyncedOnlyForJobs() throws {
        var h = H()
        let r = h.join("r", role: .rollout), t = h.join("t", role: .train)
        for _ in 0..<3 {
            let ring = h.assignments(in: h.handle(.stepRequested(H.stepRequest(), next: nil)))
            #expect(ring.map(\.worker) == [t])
            for a in ring { h.reportStep(a.worker, a.assign) }
        }
        #expect(h.state.version == 3 && h.synchronizations == 0 && h.weightsRequests(in: h.log).isEmpty)

        // Rollouts need the weights: the trainer broadcasts version 3 to the rollout worker
        // (weights only, ring to ring); the coordinator reads and sends no snapshot.
        let jobs = (0..<2).map { _ in SchedulerState.JobRequest(kind: .rollout, body: [], needsWeights: true) }
        let batchStart = h.log.count
        let links = h.assignments(in: h.handle(.jobsRequested(jobs)))
        #expect(links.map(\.worker) == [t, r])
        #expect(links.map(\.assign.kind) == [.broadcast, .synchronize])
        let source = try BroadcastSpec(wireBody: links[0].assign.body, field: "broadcast")
        let last = try BroadcastSpec(wireBody: links[1].assign.body, field: "synchronize")
        #expect(source.version == 3 && source.next == "tcp://r:1" && last.next == nil && last.epoch == source.epoch)
        #expect(h.weightsRequests(in: h.log).isEmpty)
        #expect(!h.log[batchStart...].contains { if case .send(.weights, _) = $0 { true } else { false } })
        let sync = links[1]
        h.reportSynchronized(t, links[0].assign)
        h.reportSynchronized(r, sync.assign)
        var done = 0
        while let job = h.assignments(in: h.log).last(where: { $0.worker == r && $0.assign.kind == .rollout }),
            done < jobs.count
        {
            h.handle(
                .message(
                    .result(.init(jobID: job.assign.jobID, attempt: 0, workerID: r, status: .succeeded, body: [1])),
                    from: h.peers[r]!, key: nil))
            done += 1
        }
        #expect(h.log.contains { if case .jobsFinished(.success(let out)) = $0 { out.count == 2 } else { false } })
        // The trainer was given no job (only the broadcast), and the rollout worker no ring.
        #expect(
            h.assignments(in: h.log).filter { $0.worker == t }.allSatisfy {
                [.gradient, .broadcast].contains($0.assign.kind)
            })
        #expect(!h.assignments(in: h.log).contains { $0.worker == r && $0.assign.kind == .gradient })
        #expect(h.synchronizations == 1)

        // Labeling needs no weights: after another step the rollout worker takes it as it is.
        let ring = h.assignments(in: h.handle(.stepRequested(H.stepRequest(), next: nil)))
        for a in ring { h.reportStep(a.worker, a.assign) }
        let label = h.assignments(
            in: h.handle(.jobsRequested([.init(kind: .labeling, body: [], needsWeights: false)])))
        #expect(label.map(\.worker) == [r] && h.synchronizations == 1)
    }

    @Test func rolloutWorkers_formOneChainFromTheTrainer_andEachNamesTheNext() throws {
        var h = H()
        let (r1, r2, t, links) = h.chainOfTwoRolloutWorkers(rollouts: 4)
        #expect(links.map(\.worker) == [t, r1, r2])
        let specs = try links.map { try BroadcastSpec(wireBody: $0.assign.body, field: "link") }
        #expect(specs.map(\.next) == ["tcp://r1:1", "tcp://r2:1", nil])
        #expect(specs.allSatisfy { $0.version == 1 && $0.epoch == specs[0].epoch })
        #expect(h.log.contains { if case .record(.broadcast(1, "w3", ["w1", "w2"])) = $0 { true } else { false } })
        // Both take jobs once synchronized; the trainer none.
        h.reportSynchronized(t, links[0].assign)
        let before = h.log.count
        h.reportSynchronized(r1, links[1].assign)
        h.reportSynchronized(r2, links[2].assign)
        let jobs = h.assignments(in: Array(h.log[before...]))
        #expect(jobs.map(\.worker) == [r1, r2] && jobs.allSatisfy { $0.assign.kind == .rollout })
    }

    /// A link that times out (its predecessor died) fails its synchronize: a new chain is formed.
    @Test func failedLink_isBroadcastToAgain() throws {
        var h = H()
        let r = h.join("r", role: .rollout), t = h.join("t", role: .train)
        let ring = h.assignments(in: h.handle(.stepRequested(H.stepRequest(), next: nil)))
        for a in ring { h.reportStep(a.worker, a.assign) }
        let links = h.assignments(in: h.handle(.jobsRequested(H.rollouts(1))))
        h.reportSynchronized(t, links[0].assign)
        let before = h.log.count
        h.handle(
            .message(
                .result(
                    .init(
                        jobID: links[1].assign.jobID, attempt: 0, workerID: r, status: .failed,
                        message: "no broadcast slice", body: ReplicaReport(version: 0).wireBody)), from: h.peers[r]!,
                key: nil))
        let again = h.assignments(in: Array(h.log[before...]))
        #expect(again.map(\.worker) == [t, r] && again.map(\.assign.kind) == [.broadcast, .synchronize])
    }

    /// The committed state lives on trainers: a rollout worker holds no moments to restore it from.
    @Test func losingTheOnlyTrainer_endsTheStep_evenWithACurrentRolloutWorker() {
        var h = H()
        _ = h.join("r", role: .rollout)
        let t = h.join("t", role: .train)
        let ring = h.assignments(in: h.handle(.stepRequested(H.stepRequest(), next: nil)))
        for a in ring { h.reportStep(a.worker, a.assign) }
        h.advance(.seconds(2))
        h.heartbeat([1])
        h.advance(.seconds(2))
        h.heartbeat([1])
        h.handle(.tick)  // t is silent past the timeout
        #expect(!h.state.liveWorkers.contains(WorkerID(t)))
        h.handle(.stepRequested(H.stepRequest(), next: nil))
        #expect(h.stepOutcomes.count == 2)
        if case .failure(let e) = h.stepOutcomes.last { #expect(e.message.contains("no live worker holds")) }
    }
}
