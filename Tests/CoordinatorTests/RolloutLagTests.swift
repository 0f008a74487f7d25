import Foundation
import Testing

@testable import Coordinator
@testable import RLAIF

/// `rl.rollout_lag`: iteration i trains on responses the policy of iteration i − lag sampled. The
/// lag is fixed, so the bits are the same on any number of replicas and across a crash and resume
/// (the rollouts made ahead travel in the checkpoint).
@Suite(.serialized) struct RolloutLagTests {
    typealias P = PipelineInProcessTests

    static func rlLines(_ dir: URL) throws -> [RunEvent.StepMetrics] {
        try RunEventLine.read(dir.appendingPathComponent("metrics.jsonl")).compactMap { line in
            if case .metrics(let m) = line.event, m.phase == "rl" { m } else { nil }
        }
    }

    @Test func laggedRollouts_giveTheSameWeights_onOneAndTwoReplicas_andComeFromTheOlderPolicy() async throws {
        var checksums: [String] = []
        for (lag, replicas) in [(1, 1), (1, 2), (0, 2)] {
            let settings = try P.settings([
                "rl.iterations=5", "evaluation.prompts=32", "rl.rollout_lag=\(lag)", "checkpoint.every_steps=0",
            ])
            let dir = try P.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: dir) }
            let summary = try await P.run(settings, replicas: replicas, in: dir)
            checksums.append(summary.weightsChecksum)
            // Iteration i's responses come from the policy after iteration max(0, i − lag).
            let lines = try Self.rlLines(dir)
            let versions = lines.compactMap { $0.values["rollout_version"].map { UInt64($0) } }
            #expect(versions.count == settings.rl.iterations)
            let start = try #require(versions.first), epochs = UInt64(settings.rl.ppoEpochs)
            let expected = (0..<settings.rl.iterations).map {
                start + UInt64(IterationRollout.sourceIteration(of: $0, lag: lag)) * epochs
            }
            #expect(versions == expected, "lag \(lag)")
        }
        #expect(!checksums[0].isEmpty && checksums[0] == checksums[1])
        #expect(checksums[1] != checksums[2], "a lag of 1 trained on the same rollouts as none")
    }

    /// A crash two thirds into RL with rollouts made ahead: the resumed run (on another number of
    /// replicas) reads them from its checkpoint and ends with the uninterrupted run's weights.
    @Test func crashInRL_withRolloutsAhead_resumesToTheSameWeights() async throws {
        let settings = try P.settings([
            "rl.iterations=6", "evaluation.prompts=32", "rl.rollout_lag=2", "checkpoint.every_steps=4",
            "evaluation.every_iterations=0",
        ])
        let referenceDir = try P.temporaryDirectory(), dir = try P.temporaryDirectory()
        defer { for d in [referenceDir, dir] { try? FileManager.default.removeItem(at: d) } }
        let reference = try await P.run(settings, replicas: 2, in: referenceDir)
        let counts = try P.steps(referenceDir)
        let before = try #require(counts["sft"]) + (try #require(counts["reward"]))
        let crashAt = before + settings.rl.ppoEpochs * 4 + 1  // in iteration 4; checkpoint after 4
        await #expect(throws: RunError.self) {
            _ = try await P.run(settings, replicas: 2, in: dir, failAfterSteps: crashAt)
        }
        let resume = try #require(CheckpointStore(runDirectory: dir, keep: 3).newest { Issue.record("\($0)") })
        #expect(resume.cursor.phase == "rl" && resume.cursor.done == 4)
        // Iterations 4 and 5 were made ahead, by the policies after iterations 2 and 3.
        let ahead = try #require(resume.cursor.rolloutsAhead)
        #expect(ahead.map(\.iteration) == [4, 5])
        let resumed = try await P.run(settings, replicas: 1, in: dir, resume: resume)
        #expect(resumed.weightsChecksum == reference.weightsChecksum)
        // Every RL step logged once, with the uninterrupted run's weights after it.
        let steps = { (d: URL) in try Self.rlLines(d).map { "\($0.version) \($0.fingerprint)" } }
        #expect(try steps(dir) == steps(referenceDir))
    }

    /// A checkpoint without the rollouts it should carry is refused with what to do, not trained
    /// on rollouts from the wrong policy.
    @Test func checkpointMissingTheRolloutsAhead_isRefused() async throws {
        let settings = try P.settings([
            "rl.iterations=4", "evaluation.prompts=32", "rl.rollout_lag=1", "checkpoint.every_steps=2",
            "evaluation.every_iterations=0",
        ])
        let dir = try P.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        _ = try await P.run(settings, replicas: 1, in: dir, keep: 10)
        let store = CheckpointStore(runDirectory: dir, keep: 10)
        var mid = try #require(
            store.directories().compactMap { try? CheckpointStore.read($0) }.first {
                $0.cursor.phase == "rl" && $0.cursor.done > 0
            })
        #expect(mid.cursor.rolloutsAhead?.count == 1)
        mid.cursor.rolloutsAhead = nil
        let error = await #expect(throws: RunError.self) {
            _ = try await P.run(settings, replicas: 1, in: dir, resume: mid)
        }
        #expect(error?.message.contains("rl.rollout_lag") == true)
    }

    @Test func policyGradient_refusesALag() throws {
        #expect(throws: ConfigError.self) {
            _ = try P.settings(["rl.rollout_lag=1", "rl.algorithm=policy_gradient"])
        }
        #expect(
            try P.settings(["rl.rollout_lag=1", "rl.algorithm=grpo", "rl.samples_per_prompt=2"]).rl.rolloutLag == 1)
    }
}
