import Foundation
import TestSupport
import Testing

/// examples/quick.yaml end to end with each method, and with the `openai` labeler against the
/// stand-in chat-completions server.
@Suite(.serialized) struct MethodRunTests {
    typealias Run = ClusterRunTests

    /// Launches quick.yaml with overrides; the run directory is left for the caller to inspect and remove.
    static func launch(_ overrides: [String], environment: [String: String] = [:]) throws -> (dir: URL, ok: Bool) {
        let dir = try Run.temporaryDirectory()
        let p = try Run.start(
            ["launch", Run.quick, "--run-dir", dir.path, "--quiet"] + overrides.flatMap { ["--set", $0] },
            log: dir.appendingPathComponent("launch.log"), environment: environment)
        let finished = Run.wait(p, seconds: 300)
        return (dir, finished && p.terminationStatus == 0)
    }

    static func winRate(_ summary: [String: Any], _ judge: String) -> Double {
        (summary["win_rate_vs_sft"] as? [String: Any])?[judge] as? Double ?? -1
    }

    @Test(arguments: ["direct", "dpo"])
    func method_beatsSFT_onGroundTruth(_ method: String) throws {
        let run = try Self.launch(["run.method=\(method)"])
        defer { try? FileManager.default.removeItem(at: run.dir) }
        #expect(run.ok, "\(method) run failed: \((try? String(contentsOf: run.dir.appendingPathComponent("launch.log"), encoding: .utf8)) ?? "")")
        let summary = try Run.summary(run.dir)
        #expect(summary["method"] as? String == method)
        let truth = Self.winRate(summary, "ground_truth")
        #expect(truth > 0.6, "\(method): ground-truth win rate \(truth) against SFT")
        if method == "direct" {
            // No preference dataset and no reward model: the rewards came from rating jobs.
            #expect(!FileManager.default.fileExists(atPath: run.dir.appendingPathComponent("preferences.jsonl").path))
            #expect((summary["reward_model_accuracy"] as? [String: Any])?["labeler"] as? Double == nil)
        } else {
            #expect(FileManager.default.fileExists(atPath: run.dir.appendingPathComponent("preferences.jsonl").path))
        }
    }

    /// The whole pipeline with an `openai` labeler: soft labels from the stand-in's logprobs, the key
    /// read from an environment variable by each worker, and never written anywhere in the run.
    @Test func openAILabeler_runsThePipeline_andTheKeyIsNeverWritten() async throws {
        let secret = "sk-rlaif-\(UInt64.random(in: 1...UInt64.max))"
        let server = try await StandInServer.start(key: secret)
        let run = try Self.launch(
            [
                "labeler.kind=openai", "labeler.url=\(server.url.absoluteString)", "labeler.model=standin",
                "labeler.api_key_env=RLAIF_TEST_LABELER_KEY", "preferences.pairs=256", "rl.iterations=12",
            ], environment: ["RLAIF_TEST_LABELER_KEY": secret])
        defer { try? FileManager.default.removeItem(at: run.dir) }
        #expect(run.ok, "openai run failed: \((try? String(contentsOf: run.dir.appendingPathComponent("launch.log"), encoding: .utf8)) ?? "")")
        let summary = try Run.summary(run.dir)
        #expect(Self.winRate(summary, "ground_truth") > 0.6)

        // Every pair asked in both orders, with soft labels from logprobs (not 0/1 from text).
        let lines = try String(contentsOf: run.dir.appendingPathComponent("preferences.jsonl"), encoding: .utf8)
            .split(separator: "\n")
        #expect(lines.count == 256)
        let labels = lines.compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["label"] as? [String: Any]
        }
        let soft = labels.filter {
            guard let f = $0["forward"] as? Double, let b = $0["backward"] as? Double else { return false }
            return f > 0 && f < 1 && b > 0 && b < 1
        }
        #expect(soft.count > 200, "\(soft.count) of \(labels.count) labels have soft forward and backward probabilities")

        let stats = try await server.stats()
        // 256 pairs and 128 evaluation pairs, both orders; every request carried the key.
        #expect(stats.requests >= (256 + 128) * 2)
        #expect(stats.authHeadersSeen == stats.requests && stats.statuses["401"] == nil)
        let files = FileManager.default.enumerator(at: run.dir, includingPropertiesForKeys: nil)?
            .compactMap { $0 as? URL } ?? []
        #expect(files.count > 3)
        for file in files {
            if let data = try? Data(contentsOf: file) {
                #expect(!String(decoding: data, as: UTF8.self).contains(secret), "\(file.lastPathComponent) holds the key")
            }
        }
    }
}
