import Foundation
import Models
import Testing

@testable import Coordinator
@testable import RLAIF

/// Runs that start from a Hugging Face checkpoint (`model.init`): a tiny random Llama with a
/// byte-level BPE tokenizer (the Llama 3 pattern family's fixture), on the synthetic task.
@Suite(.serialized) struct PretrainedStartTests {
    typealias P = PipelineInProcessTests
    static let tokenizerFixture = P.root.appendingPathComponent("Tests/ModelsTests/Fixtures/tokenizers/llama3")

    /// A checkpoint directory: the model, the tokenizer files, a ChatML template.
    static func checkpoint(tokenizerJSON: String? = nil, chatTemplate: String? = nil) throws -> URL {
        let dir = try P.temporaryDirectory().appendingPathComponent("llama")
        let config = LlamaConfig(
            family: .llama, vocabularySize: 600, width: 32, intermediateSize: 64, layers: 2, heads: 4, kvHeads: 2,
            contextLength: 128, tiedEmbeddings: true)
        try Llama(config: config, seed: 11).save(to: dir)
        for file in ["tokenizer.json", "tokenizer_config.json"] {
            try FileManager.default.copyItem(
                at: tokenizerFixture.appendingPathComponent(file), to: dir.appendingPathComponent(file))
        }
        if let tokenizerJSON {
            try tokenizerJSON.write(to: dir.appendingPathComponent("tokenizer.json"), atomically: true, encoding: .utf8)
        }
        if let chatTemplate {
            try chatTemplate.write(
                to: dir.appendingPathComponent("chat_template.jinja"), atomically: true, encoding: .utf8)
        }
        return dir
    }

    static let small = [
        "sft.epochs=1", "preferences.pairs=64", "reward_model.epochs=1", "rl.iterations=2", "evaluation.prompts=32",
        "evaluation.every_iterations=0",
    ]

    @Test func llamaCheckpoint_runsEveryPhase_withTheSameWeightsOnOneAndTwoReplicas_andExportsItsClass()
        async throws
    {
        let checkpoint = try Self.checkpoint()
        defer { try? FileManager.default.removeItem(at: checkpoint.deletingLastPathComponent()) }
        let settings = try P.settings(Self.small + ["model.init=\(checkpoint.path)"])
        #expect(settings.model.initDigest.count == 64)
        var checksums: [String] = []
        for replicas in [1, 2] {
            let dir = try P.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: dir) }
            let summary = try await P.run(settings, replicas: replicas, in: dir)
            checksums.append(summary.weightsChecksum)
            let steps = try P.steps(dir)
            #expect(steps["sft"] ?? 0 > 0 && steps["reward"] ?? 0 > 0 && steps["rl"] ?? 0 > 0, "\(steps)")
            // The export keeps the checkpoint's class and tokenizer.
            let policy = try ModelDirectory(dir.appendingPathComponent("models/policy").path)
            #expect(policy.model is Llama)
            #expect(policy.tokenizer is HuggingFaceTokenizer)
            let reward = try String(
                contentsOf: dir.appendingPathComponent("models/reward/config.json"), encoding: .utf8)
            #expect(reward.contains("LlamaForSequenceClassification"))
        }
        #expect(!checksums[0].isEmpty && checksums[0] == checksums[1])
    }

    @Test func sftEpochsZero_skipsSFT_forATunedCheckpoint() async throws {
        let checkpoint = try Self.checkpoint()
        defer { try? FileManager.default.removeItem(at: checkpoint.deletingLastPathComponent()) }
        let settings = try P.settings(
            Self.small.filter { !$0.hasPrefix("sft.") } + ["sft.epochs=0", "model.init=\(checkpoint.path)"])
        let dir = try P.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        _ = try await P.run(settings, replicas: 1, in: dir)
        let steps = try P.steps(dir)
        #expect(steps["sft"] == nil && steps["rl"] ?? 0 > 0, "\(steps)")
    }

    @Test func aCheckpointChangedAfterTheRunBegan_isRefused() throws {
        let checkpoint = try Self.checkpoint()
        defer { try? FileManager.default.removeItem(at: checkpoint.deletingLastPathComponent()) }
        let settings = try P.settings(["model.init=\(checkpoint.path)"])
        try "{}".write(
            to: checkpoint.appendingPathComponent("special_tokens_map.json"), atomically: true, encoding: .utf8)
        #expect {
            _ = try ModelReplica(settings: settings)
        } throws: { "\($0)".contains("changed since the run began") }
    }

    /// Each bad checkpoint is refused when the config is read, naming model.init and the problem.
    @Test func badCheckpoints_areRefusedWhenTheConfigIsRead() throws {
        let missing = try P.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: missing) }
        let unknown = try Self.checkpoint()
        var config =
            try JSONSerialization.jsonObject(with: Data(contentsOf: unknown.appendingPathComponent("config.json")))
            as! [String: Any]
        config["architectures"] = ["FalconForCausalLM"]
        try JSONSerialization.data(withJSONObject: config).write(to: unknown.appendingPathComponent("config.json"))
        let metaspace = try Self.checkpoint(
            tokenizerJSON:
                #"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "Metaspace"}}"#)
        let macro = try Self.checkpoint(chatTemplate: "{% macro m() %}{% endmacro %}")
        defer {
            for d in [unknown, metaspace, macro] {
                try? FileManager.default.removeItem(at: d.deletingLastPathComponent())
            }
        }
        for (dir, expected) in [
            (missing, "config.json"), (unknown, "FalconForCausalLM"), (metaspace, "Metaspace"), (macro, "{% macro %}"),
        ] {
            #expect {
                _ = try P.settings(["model.init=\(dir.path)"])
            } throws: { error in
                let text = "\(error)"
                return text.contains("model.init") && text.contains(expected)
            }
        }
    }
}
