import Foundation
import TestSupport
import Testing

@testable import Coordinator
@testable import RLAIF

/// Runs that train on the user's preference pairs (`task.preferences`): instead of the labeler's
/// (no rollout or labeling), beside them, and for DPO, in process.
@Suite(.serialized) struct PreferenceDataRunTests {
    typealias Pipeline = PipelineInProcessTests

    /// 200 pairs over the user-data prompts' words: the reply in capitals is preferred to the same
    /// words in lower case, a preference a small reward model learns from 180 pairs.
    static func writePreferences(in dir: URL, extra: [String] = []) throws {
        var rng = SplitMix64(seed: 7)
        let words = ["cat", "dog", "sun", "sky", "red", "big", "old", "new"]
        let lines = try (0..<200).map { _ in
            let p = (0..<2).map { _ in words[Int(rng.next() % 8)] }.joined(separator: " ")
            let object = ["prompt": p + ":", "chosen": " " + p.uppercased(), "rejected": " " + p]
            return String(
                decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
        }
        try (lines + extra).joined(separator: "\n").write(
            to: dir.appendingPathComponent("prefs.jsonl"), atomically: true, encoding: .utf8)
    }

    static func settings(in dir: URL, _ overrides: [String], extra: [String] = []) throws -> RunSettings {
        try writePreferences(in: dir, extra: extra)
        return try UserDataRunTests.settings(
            in: dir, ["task.preferences=prefs.jsonl", "reward_model.epochs=3"] + overrides)
    }

    static func phases(_ dir: URL) throws -> [String] {
        try RunEventLine.read(dir.appendingPathComponent("metrics.jsonl")).compactMap {
            if case .phase(let p) = $0.event { p } else { nil }
        }
    }

    static func preferenceLines(_ dir: URL) throws -> [[String: Any]] {
        try String(contentsOf: dir.appendingPathComponent("preferences.jsonl"), encoding: .utf8)
            .split(separator: "\n").map {
                try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
            }
    }

    @Test func dataOnly_skipsRolloutAndLabeling_andTheRewardModelLearnsThePairs() async throws {
        let dir = try Pipeline.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        // Two more pairs whose prompts outgrow the context (32 tokens), cut to fit and counted.
        let long = #"{"prompt": "\#(String(repeating: "sky ", count: 20)):", "chosen": " SKY", "rejected": " sky"}"#
        let settings = try Self.settings(
            in: dir, ["preferences.source=data", "task.overlong=truncate"], extra: [long, long])
        let summary = try await Pipeline.run(settings, replicas: 2, in: dir)
        #expect(summary.linesFittedToContext == ["task.preferences": 2])
        let phases = try Self.phases(dir)
        #expect(!phases.contains("rollout") && !phases.contains("labeling") && phases.contains("rl"), "\(phases)")
        #expect(summary.preferencePairsFromData == 202)
        // Held out: every tenth pair (20); the model must prefer the capitals on nearly all.
        let accuracy = try #require(summary.rewardModelAccuracy.labeler)
        #expect(accuracy >= 0.9, "reward model accuracy on held-out data pairs \(accuracy)")
        let lines = try Self.preferenceLines(dir)
        #expect(lines.count == 202)
        let label = try #require(lines[4]["label"] as? [String: Any])
        #expect(label["probabilityA"] as? Double == 1 && label["status"] as? String == "valid")
        #expect((label["rationales"] as? [String])?.first == settings.task.preferences + ":5")
    }

    /// `both`: the labeler's pairs first, then the file's; 1 and 2 replicas give the same DPO weights.
    @Test func both_appendsTheFilesPairs_toTheLabelersForDPO_onAnyNumberOfReplicas() async throws {
        var checksums: [String] = []
        for replicas in [1, 2] {
            let dir = try Pipeline.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: dir) }
            let settings = try Self.settings(
                in: dir, ["preferences.source=both", "run.method=dpo", "rl.dpo_epochs=1", "sft.epochs=1"])
            let summary = try await Pipeline.run(settings, replicas: replicas, in: dir)
            checksums.append(summary.weightsChecksum)
            #expect(try Self.phases(dir).contains("labeling"))
            let lines = try Self.preferenceLines(dir)
            #expect(lines.count == settings.preferences.pairs + 200)
            #expect(lines.map { $0["id"] as? Int } == Array(0..<lines.count).map { $0 })
            #expect(lines.last?["a"] as? String == (lines.last?["b"] as? String)?.uppercased())
            #expect(try Pipeline.steps(dir)["dpo"] ?? 0 > 0)
        }
        #expect(!checksums[0].isEmpty && checksums[0] == checksums[1])
    }

    /// Every data file's SHA-256 is recorded when the config is read; a resume (the recorded
    /// settings) refuses a file that changed since, naming its key and what to do.
    @Test func changedDataFiles_areRefusedOnResume() throws {
        let dir = try Pipeline.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let settings = try Self.settings(in: dir, ["preferences.source=data"])
        #expect(
            settings.task.dataDigests.map(\.key) == ["task.prompts", "task.demonstrations", "task.preferences"]
                && settings.task.dataDigests.allSatisfy { $0.sha256.count == 64 })
        let recorded = try ClusterConfig(
            json: ClusterConfig(keys: nil, settings: settings, deployment: .init()).sectionsJSON())
        #expect(recorded.settings.task.dataDigests == settings.task.dataDigests)
        _ = try ClusterRun.taskData(recorded.settings)
        let prefs = dir.appendingPathComponent("prefs.jsonl")
        let handle = try FileHandle(forWritingTo: prefs)
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("\n{\"prompt\": \"p:\", \"chosen\": \" A\", \"rejected\": \" a\"}".utf8))
        try handle.close()
        #expect {
            _ = try ClusterRun.taskData(recorded.settings)
        } throws: { error in
            let message = (error as? RunError)?.message ?? ""
            return message.hasPrefix("task.preferences: \(prefs.path) changed since the run began")
                && message.hasSuffix("restore it, or start a new run with --fresh")
        }
    }
}
