import Foundation
import Testing

@testable import RLAIF

/// Worker roles with real processes: rollout workers (jobs, no optimizer state, weights down a
/// chain from the trainer) beside a train worker (the steps) end with the weights of one worker
/// doing both, with `rl.rollout_lag` 0 and 1, and a rollout worker killed mid-RL changes nothing.
@Suite(.serialized) struct RoleRunTests {
    typealias Run = ClusterRunTests

    static let split = ["--set", "workers.local_roles=[rollout,train]"]
    static let lagOne = ["--set", "rl.rollout_lag=1"]

    /// Every step on the train worker's ring alone, every job on the rollout worker.
    static func expectWorkSplit(_ events: [RunEvent]) {
        let joined = Run.joined(events)
        let rollout = joined.first { $0.name.hasPrefix("local-0-") }?.worker
        let train = joined.first { $0.name.hasPrefix("local-1-") }?.worker
        var steps = 0, jobs = 0
        for event in events {
            switch event {
            case .step(_, let participants, _, _):
                steps += 1
                #expect(participants == [train].compactMap { $0 })
            case .job(_, _, let worker, _, _):
                jobs += 1
                #expect(worker == rollout)
            default: break
            }
        }
        #expect(steps > 0 && jobs > 0)
        // The rollout worker's weights came down from the trainer, never through the coordinator.
        let broadcasts = events.compactMap { e -> (String, [String])? in
            if case .broadcast(_, let from, let chain) = e { (from, chain) } else { nil }
        }
        #expect(!broadcasts.isEmpty && broadcasts.allSatisfy { $0.0 == train && $0.1 == [rollout].compactMap { $0 } })
        #expect(!events.contains { if case .snapshot(_, _, .synchronize) = $0 { true } else { false } })
    }

    /// One worker with rollouts one iteration ahead: launched once for the tests that compare with
    /// it (checkpoints, which some of them add, change no weight).
    static func laggedReference() throws -> Run.Launched {
        try laggedRun.lock.withLock {
            if let done = laggedRun.result { return done }
            let result = try Run.launch(workers: 1, extra: lagOne)
            laggedRun.result = result
            return result
        }
    }
    static let laggedRun = Run.ReferenceRun()

    @Test func rolloutAndTrainWorkers_endWithTheWeightsOfOneWorkerDoingBoth() throws {
        let reference = try Run.reference()
        let split = try Run.launch(workers: 2, extra: Self.split)
        #expect(!split.checksum.isEmpty && split.checksum == reference.checksum)
        Self.expectWorkSplit(split.events)
        let lagged = try Self.laggedReference()
        let laggedSplit = try Run.launch(workers: 2, extra: Self.lagOne + Self.split)
        let laggedMixed = try Run.launch(workers: 2, extra: Self.lagOne)  // two workers doing both
        #expect(laggedSplit.checksum == lagged.checksum && laggedMixed.checksum == lagged.checksum)
        #expect(lagged.checksum != reference.checksum)
        Self.expectWorkSplit(laggedSplit.events)
    }

    /// Direct RLAIF one iteration ahead: the labeler's ratings are a second batch, asked while
    /// the trainer steps; split or mixed, the weights are those of one worker.
    @Test func directRatingsAhead_giveTheWeightsOfOneWorker_splitOrMixed() throws {
        let direct = Self.lagOne + ["--set", "run.method=direct"]
        let one = try Run.launch(workers: 1, extra: direct)
        let split = try Run.launch(workers: 2, extra: direct + Self.split)
        let mixed = try Run.launch(workers: 2, extra: direct)
        #expect(!one.checksum.isEmpty && split.checksum == one.checksum && mixed.checksum == one.checksum)
        #expect(split.events.contains { if case .ratings = $0 { true } else { false } })
    }

    /// A rollout + train cluster with rollouts one iteration ahead, `kill -9` mid-RL (coordinator
    /// and workers) and resumed: the rollout made ahead comes back from the checkpoint, and the
    /// weights are those of one worker doing both without a break.
    @Test func splitLaggedRun_killedInRLAndResumed_endsWithTheUninterruptedWeights() throws {
        let every = ["--set", "checkpoint.every_steps=6"]
        let reference = try Self.laggedReference().checksum
        let dir = try Run.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let launch = try Run.start(
            ["launch", Run.quick, "--workers", "2", "--run-dir", dir.path, "--quiet"] + Self.split + Self.lagOne
                + every, log: dir.appendingPathComponent("launch.log"))
        var inRL = false
        for _ in 0..<2400 where !inRL && launch.isRunning {
            usleep(20_000)
            inRL = ResumeTests.progress(dir).steps["rl", default: 0] >= 7
        }
        #expect(inRL, "the run never reached RL")
        ResumeTests.killCluster(launch)
        let resume = try Run.start(["resume", dir.path, "--quiet"], log: dir.appendingPathComponent("resume.log"))
        #expect(Run.wait(resume, seconds: 120), "the resume did not finish")
        let log = (try? String(contentsOf: dir.appendingPathComponent("resume.log"), encoding: .utf8)) ?? ""
        #expect(resume.terminationStatus == 0, "\(log.suffix(3000))")
        #expect(try Run.summary(dir)["weights_checksum"] as? String == reference)
        #expect(Run.events(dir).contains { if case .resumed = $0 { true } else { false } })
    }

    /// Two rollout workers and a train worker; one rollout worker is killed with SIGKILL once RL
    /// has started. Its jobs go to the other, and the weights are those of an undisturbed run.
    @Test func rolloutWorkerKilledInRL_leavesTheWeightsUnchanged() throws {
        let longer = Self.lagOne + ["--set", "rl.iterations=200"]  // RL outlasts the heartbeat timeout
        let reference = try Run.launch(workers: 1, extra: longer).checksum
        let dir = try Run.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let run = dir.appendingPathComponent("run")
        let launch = try Run.start(
            [
                "launch", Run.quick, "--workers", "3", "--run-dir", run.path, "--quiet", "--set",
                "workers.local_roles=[rollout,rollout,train]",
            ] + longer, log: dir.appendingPathComponent("launch.log"))
        var inRL = false
        for _ in 0..<2400 where !inRL {
            usleep(20_000)
            inRL = Run.events(run).contains(.phase("rl"))
        }
        #expect(inRL, "the run never reached RL")
        let victim = try #require(WorkerKillTests.localWorker(0, of: launch.processIdentifier))
        kill(victim, SIGKILL)
        #expect(Run.wait(launch, seconds: 120), "the run stalled")
        let log = (try? String(contentsOf: dir.appendingPathComponent("launch.log"), encoding: .utf8)) ?? ""
        #expect(launch.terminationStatus == 0, "\(log.suffix(3000))")
        let events = Run.events(run)
        #expect(events.contains { if case .workerLost = $0 { true } else { false } })
        // Before the kill, both rollout workers took the weights down one chain.
        #expect(events.contains { if case .broadcast(_, _, let chain) = $0 { chain.count == 2 } else { false } })
        // The killed worker's jobs were done by the other rollout worker after it died.
        let lost = events.firstIndex { if case .workerLost = $0 { true } else { false } } ?? events.endIndex
        #expect(events[lost...].contains { if case .job = $0 { true } else { false } })
        #expect(try Run.summary(run)["weights_checksum"] as? String == reference)
    }
}
