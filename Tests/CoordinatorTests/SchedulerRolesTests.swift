import Protocol
import Tensor
import Testing

@testable import Coordinator
@testable import RLAIF

/// Worker roles at explicit instants: a `train` worker takes rings and no jobs; a `rollout`
/// worker takes jobs and no ring, and is sent the weights without optimizer state only when a
/// batch needs them, never after each step it took no part in.
@Suite struct SchedulerRolesTests {
    typealias H = SchedulerHarness

    /// A snapshot source's answer with real model states, AdamW moments included.
    static func sendStates(_ h: inout H, from id: UInt32) {
        let v = h.replicaVersion[id] ?? 0
        for role in [ModelReplica.Role.reward, .policy] {
            let values = Tensor(shape: [3], scalars: [1, 2, 3])
            let state = ModelReplica.ModelState(
                role: role, values: values, firstMoment: values, secondMoment: values, optimizerStep: Int(v))
            h.handle(.message(.weights(state.weights(version: v)), from: h.peers[id]!, key: nil))
        }
    }

    @Test func rolloutAndTrainWorkers_splitJobsAndSteps_andTheRolloutWorkerIsSyncedOnlyForJobs() throws {
        var h = H()
        let r = h.join("r", role: .rollout), t = h.join("t", role: .train)
        for _ in 0..<3 {
            let ring = h.assignments(in: h.handle(.stepRequested(H.stepRequest(), next: nil)))
            #expect(ring.map(\.worker) == [t])
            for a in ring { h.reportStep(a.worker, a.assign) }
        }
        #expect(h.state.version == 3 && h.synchronizations == 0 && h.weightsRequests(in: h.log).isEmpty)

        // Rollouts need the weights: the rollout worker is brought to version 3 from the trainer.
        let jobs = (0..<2).map { _ in SchedulerState.JobRequest(kind: .rollout, body: [], needsWeights: true) }
        let batchStart = h.log.count
        h.handle(.jobsRequested(jobs))
        #expect(h.weightsRequests(in: h.log) == [t])
        Self.sendStates(&h, from: t)
        let sent = h.log[batchStart...].compactMap { d -> Wire.Weights? in
            guard case .send(.weights(let w), let peer) = d, h.worker(of: peer) == r else { return nil }
            return w
        }
        #expect(sent.count == 2)
        for w in sent {
            let state = try #require(ModelReplica.ModelState(w))
            #expect(state.firstMoment == nil && state.secondMoment == nil && state.values.count == 3)
        }
        let sync = try #require(h.assignments(in: h.log).last { $0.worker == r })
        #expect(sync.assign.kind == .synchronize && sync.assign.weightsVersion == 3)
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
        // The trainer was given no job, and the rollout worker no ring.
        #expect(!h.assignments(in: h.log).contains { $0.worker == t && $0.assign.kind != .gradient })
        #expect(!h.assignments(in: h.log).contains { $0.worker == r && $0.assign.kind == .gradient })
        #expect(h.synchronizations == 1)

        // Labeling needs no weights: after another step the rollout worker takes it as it is.
        let ring = h.assignments(in: h.handle(.stepRequested(H.stepRequest(), next: nil)))
        for a in ring { h.reportStep(a.worker, a.assign) }
        let label = h.assignments(
            in: h.handle(.jobsRequested([.init(kind: .labeling, body: [], needsWeights: false)])))
        #expect(label.map(\.worker) == [r] && h.synchronizations == 1)
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
