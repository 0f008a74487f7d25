import Foundation
import Logging
import Protocol
import TestSupport
import Testing

@testable import Coordinator
@testable import RLAIF

/// Runs on a user's JSONL data with a command labeler, in process: responses that are not
/// UTF-8, and labelers that fail in every way a real one does.
@Suite(.serialized) struct UserDataRunTests {
    typealias Pipeline = PipelineInProcessTests

    /// Prompts of five words, demonstrations that answer in capitals: a small byte model's
    /// samples are mostly bytes that are not UTF-8.
    static func writeData(in dir: URL) throws {
        var rng = SplitMix64(seed: 1)
        let words = ["cat", "dog", "sun", "sky", "red", "big", "old", "new"]
        func phrase(_ n: Int) -> String { (0..<n).map { _ in words[Int(rng.next() % 8)] }.joined(separator: " ") }
        func line(_ object: [String: String]) throws -> String {
            String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
        }
        let prompts = try (0..<300).map { _ in try line(["prompt": phrase(5) + ":"]) }
        let demos = try (0..<100).map { _ in
            let p = phrase(2)
            return try line(["prompt": p + ":", "completion": " " + p.uppercased()])
        }
        try prompts.joined(separator: "\n").write(
            to: dir.appendingPathComponent("prompts.jsonl"), atomically: true, encoding: .utf8)
        try demos.joined(separator: "\n").write(
            to: dir.appendingPathComponent("demos.jsonl"), atomically: true, encoding: .utf8)
    }

    static func labeler(_ extra: String = "") -> String {
        "python3 '\(Fixtures.directory.appendingPathComponent("command_labeler.py").path)' \(extra)"
    }

    /// A small JSONL run with the default context (32 tokens).
    static func settings(in dir: URL, labeler: String = labeler(), _ overrides: [String] = []) throws -> RunSettings {
        try writeData(in: dir)
        let yaml = """
            run: {name: user-data, seed: 3}
            task: {kind: jsonl, prompts: prompts.jsonl, demonstrations: demos.jsonl}
            model: {width: 64, layers: 2, heads: 2}
            sft: {epochs: 2}
            preferences: {pairs: 64, job_size: 32}
            reward_model: {epochs: 1}
            rl: {iterations: 2, prompts_per_iteration: 16, micro_batch: 8}
            evaluation: {prompts: 32}
            checkpoint: {every_steps: 0}
            """
        return try ClusterConfig.parse(
            yaml: yaml, baseDirectory: dir.path,
            overrides: ["labeler.kind=command", "labeler.command=\(labeler)"] + overrides
        ).settings
    }

    /// The held-out pairs are scored as sampled: a response of bytes that are not UTF-8 reads back
    /// three times as long, and the run used to fail after the reward model on "a prompt and
    /// response to score do not fit the context length 32". So did its resume.
    @Test func responsesThatAreNotUTF8_areScoredAsSampled_inARunAndItsResume() async throws {
        let dir = try Pipeline.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let settings = try Self.settings(in: dir)
        let summary = try await Pipeline.run(settings, replicas: 2, in: dir)
        #expect(summary.rewardModelAccuracy.labeler != nil)
        let responses = try String(contentsOf: dir.appendingPathComponent("preferences.jsonl"), encoding: .utf8)
        #expect(responses.contains("\u{FFFD}"), "the data no longer makes responses that are not UTF-8")
        // From the checkpoint after labeling, as `rlaif resume` would; also one written before
        // sampled tokens were kept (text only), which is scored as trained.
        let store = CheckpointStore(runDirectory: dir, keep: 3)
        let afterLabeling = try #require(
            store.directories().compactMap { try? CheckpointStore.read($0) }.first { $0.cursor.phase == "reward_model" }
        )
        var textOnly = afterLabeling
        textOnly.cursor.preferences?.firstTokens = nil
        textOnly.cursor.preferences?.secondTokens = nil
        for checkpoint in [afterLabeling, textOnly] {
            let again = try Pipeline.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: again) }
            // Two replicas restored from one checkpoint value (each must own its optimizer state).
            let resumed = try await Pipeline.run(settings, replicas: 2, in: again, resume: checkpoint)
            #expect(resumed.weightsChecksum == summary.weightsChecksum)
        }
    }

    /// A labeler that never gives a usable answer stops the run after labeling with the counts
    /// and the labeler's own words, not on "score job before the reward model exists"; nothing
    /// after labeling is checkpointed, so a resume asks the labeler again.
    @Test(arguments: [
        ("--exit 2", "0 of 64 labels are valid (0 ambiguous, 64 invalid)", "out of quota"),
        ("--always-first", "0 of 64 labels are valid (64 ambiguous, 0 invalid)", "the first is better"),
    ])
    func labelerWithoutAUsableAnswer_stopsAfterLabeling_withTheCause(
        _ flag: String, counts: String, reason: String
    ) async throws {
        let dir = try Pipeline.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let settings = try Self.settings(in: dir, labeler: Self.labeler(flag), ["checkpoint.every_steps=200"])
        do {
            _ = try await Pipeline.run(settings, replicas: 1, in: dir)
            Issue.record("the run went on without a valid label")
        } catch let error as RunError {
            #expect(error.message.hasPrefix("labeling: \(counts)"), "\(error.message)")
            #expect(error.message.contains(reason), "\(error.message)")
        }
        let phases = try RunEventLine.read(dir.appendingPathComponent("metrics.jsonl")).compactMap {
            if case .phase(let p) = $0.event { p } else { nil }
        }
        #expect(phases.last == "labeling")
        let newest = CheckpointStore(runDirectory: dir, keep: 3).newest { _ in }
        #expect(newest?.cursor.phase == "rollout", "a checkpoint holds the unusable labels")
    }

    /// The floor is the user's: the fixture's labeler finds about a third of these pairs tied
    /// (ambiguous), so a floor above its yield stops the run and one below it does not.
    @Test func validFractionBelowTheFloor_stopsTheRun() async throws {
        let dir = try Pipeline.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let settings = try Self.settings(in: dir, ["labeler.min_valid_fraction=0.99", "sft.epochs=1"])
        await #expect(throws: RunError.self) { _ = try await Pipeline.run(settings, replicas: 1, in: dir) }
        let counts = try RunEventLine.read(dir.appendingPathComponent("metrics.jsonl")).compactMap { line in
            if case .labels(_, let valid, let ambiguous, let invalid, _) = line.event {
                (valid, ambiguous + invalid)
            } else {
                nil
            }
        }
        let (valid, other) = try #require(counts.first)
        #expect(valid > 0 && other > 0, "the fixture's yield is \(valid) valid, \(other) not")
    }

    /// Direct RLAIF stops in the first RL iteration when no rating can be used.
    @Test func directRLAIF_withARaterThatNeverAnswers_stopsWithTheCause() async throws {
        let dir = try Pipeline.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let settings = try Self.settings(in: dir, labeler: Self.labeler("--exit 3"), ["run.method=direct"])
        do {
            _ = try await Pipeline.run(settings, replicas: 1, in: dir)
            Issue.record("the run went on without a usable rating")
        } catch let error as RunError {
            #expect(error.message.hasPrefix("rl-rating: 0 of 16 labels are valid"), "\(error.message)")
            #expect(error.message.contains("out of quota"), "\(error.message)")
        }
    }
}
