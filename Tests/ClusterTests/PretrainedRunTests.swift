import Foundation
import Models
import Tensor
import Testing

/// examples/pretrained.yaml as a user runs it: `rlaif new-model` makes the random Llama
/// checkpoint (the example's config, BPE tokenizer and ChatML template), `rlaif launch` trains
/// from it on conversational data with the stand-in judge, over real processes and sockets.
@Suite(.serialized) struct PretrainedRunTests {
    typealias Run = ClusterRunTests
    static let example = Run.root.appendingPathComponent("examples/pretrained")

    /// The checkpoint in a temporary directory, as examples/make_pretrained.sh writes it.
    static func checkpoint(in dir: URL) throws -> URL {
        let out = dir.appendingPathComponent("checkpoint")
        let p = try Run.start(
            [
                "new-model", "--config", example.appendingPathComponent("config.json").path, "--tokenizer",
                example.path, "--seed", "1", "--out", out.path,
            ], log: dir.appendingPathComponent("new-model.log"))
        #expect(Run.wait(p, seconds: 60) && p.terminationStatus == 0)
        return out
    }

    static func arguments(_ checkpoint: URL, run: URL, workers: Int) -> [String] {
        [
            "launch", Run.root.appendingPathComponent("examples/pretrained.yaml").path, "--run-dir", run.path,
            "--workers", "\(workers)", "--quiet", "--set", "model.init=\(checkpoint.path)", "--set",
            "labeler.command=python3 '\(example.appendingPathComponent("labeler.py").path)'",
        ]
    }

    /// Settings both the shared two-worker run and the runs compared with it use: a checkpoint
    /// every 4 steps, and enough reward-model steps for a kill in the middle of them.
    static let compared = ["--set", "checkpoint.every_steps=4", "--set", "reward_model.epochs=6"]

    /// The checkpoint and the example's whole two-worker run, made once for the suite's tests and
    /// removed when the test process exits.
    struct Shared: Sendable {
        let dir: URL
        let checkpoint: URL
        let run: URL
        let checksum: String
    }

    final class SharedRun: @unchecked Sendable {
        let lock = NSLock()
        var result: Shared?
    }
    static let sharedRun = SharedRun()

    static func shared() throws -> Shared {
        try sharedRun.lock.withLock {
            if let done = sharedRun.result { return done }
            let dir = try Run.temporaryDirectory()
            atexit {
                if let dir = PretrainedRunTests.sharedRun.result?.dir { try? FileManager.default.removeItem(at: dir) }
            }
            let checkpoint = try checkpoint(in: dir)
            let run = dir.appendingPathComponent("run-2")
            let p = try Run.start(
                arguments(checkpoint, run: run, workers: 2) + compared, log: dir.appendingPathComponent("l2.log"))
            #expect(Run.wait(p, seconds: 240), "the run with 2 workers did not finish")
            let log = (try? String(contentsOf: dir.appendingPathComponent("l2.log"), encoding: .utf8)) ?? ""
            try #require(p.terminationStatus == 0, "launch failed: \(log.suffix(3000))")
            let done = Shared(
                dir: dir, checkpoint: checkpoint, run: run,
                checksum: try Run.summary(run)["weights_checksum"] as? String ?? "")
            sharedRun.result = done
            return done
        }
    }

    @Test func pretrainedExample_runsEveryPhase_onOneAndTwoWorkers_andExportsWhatRlaifScoreReads() throws {
        let shared = try Self.shared()
        let dir = try Run.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let one = dir.appendingPathComponent("run-1")
        let p = try Run.start(
            Self.arguments(shared.checkpoint, run: one, workers: 1) + Self.compared,
            log: dir.appendingPathComponent("l1.log"))
        #expect(Run.wait(p, seconds: 240), "the run with 1 worker did not finish")
        let log = (try? String(contentsOf: dir.appendingPathComponent("l1.log"), encoding: .utf8)) ?? ""
        try #require(p.terminationStatus == 0, "launch failed: \(log.suffix(3000))")
        let checksums = [shared.checksum, try Run.summary(one)["weights_checksum"] as? String ?? ""]
        for run in [shared.run, one] {
            var steps: [String: Int] = [:]
            for case .metrics(let m) in Run.events(run) { steps[m.phase, default: 0] += 1 }
            #expect(steps["sft", default: 0] > 0 && steps["reward", default: 0] > 0 && steps["rl", default: 0] > 0)
        }
        #expect(!checksums[0].isEmpty && checksums[0] == checksums[1], "1 and 2 workers differ")
        // The export: the checkpoint's class and tokenizer, and `rlaif score` reads it as the library does.
        let policy = shared.run.appendingPathComponent("models/policy")
        let model = try ModelDirectory(policy.path)
        #expect(model.model is Llama && model.tokenizer is HuggingFaceTokenizer)
        for file in ["tokenizer.json", "tokenizer_config.json"] {
            #expect(FileManager.default.fileExists(atPath: policy.appendingPathComponent(file).path))
        }
        let input = dir.appendingPathComponent("pair.jsonl")
        let prompt = "<|im_start|>user\nDescribe the sea.<|im_end|>\n<|im_start|>assistant\n"
        let pair = try JSONSerialization.data(withJSONObject: [
            "prompt": prompt, "completion": "The sea is salt water.",
        ])
        try pair.write(to: input)
        let score = try Run.start(
            ["score", "--model", policy.path, "--input", input.path], log: dir.appendingPathComponent("score.log"))
        #expect(Run.wait(score, seconds: 60) && score.terminationStatus == 0)
        let line = try String(contentsOf: dir.appendingPathComponent("score.log"), encoding: .utf8)
        let total = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
        let expected = Autograd.inferenceMode {
            model.model.continuationLogProbs(
                prompts: [model.tokenizer.encode(prompt)],
                continuations: [model.tokenizer.encode("The sea is salt water.")]
            ).sum().value.item
        }
        #expect(abs(total["total_logprob"] as! Double - Double(expected)) < 1e-4)
    }

    /// examples/pretrained-dpo.yaml: DPO on the example's conversational preference pairs over two
    /// worker processes, with no rollout or labeling phase.
    @Test func preferenceDataExample_trainsDPO_onTheFilesPairs() throws {
        let checkpoint = try Self.shared().checkpoint
        let dir = try Run.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let run = dir.appendingPathComponent("run")
        var arguments = Self.arguments(checkpoint, run: run, workers: 2)
        arguments[1] = Run.root.appendingPathComponent("examples/pretrained-dpo.yaml").path
        let p = try Run.start(arguments, log: dir.appendingPathComponent("launch.log"))
        #expect(Run.wait(p, seconds: 180), "the DPO example did not finish")
        let log = (try? String(contentsOf: dir.appendingPathComponent("launch.log"), encoding: .utf8)) ?? ""
        try #require(p.terminationStatus == 0, "launch failed: \(log.suffix(3000))")
        #expect(try Run.summary(run)["preference_pairs_from_data"] as? Int == 200)
        var steps: [String: Int] = [:]
        var phases: [String] = []
        for event in Run.events(run) {
            if case .metrics(let m) = event { steps[m.phase, default: 0] += 1 }
            if case .phase(let name) = event { phases.append(name) }
        }
        #expect(steps["dpo", default: 0] > 0 && !phases.contains("rollout") && !phases.contains("labeling"))
    }

    /// kill -9 of the whole cluster in the reward model's training, then `rlaif resume`: the
    /// same weights as the uninterrupted run, from a pretrained start.
    @Test func killedAndResumed_fromAPretrainedStart_endsWithTheUninterruptedWeights() throws {
        let shared = try Self.shared()
        let dir = try Run.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let run = dir.appendingPathComponent("run")
        let p = try Run.start(
            Self.arguments(shared.checkpoint, run: run, workers: 2) + Self.compared,
            log: dir.appendingPathComponent("a.log"))
        var reached = false
        let deadline = Date().addingTimeInterval(240)
        while !reached && p.isRunning && Date() < deadline {
            usleep(5_000)
            reached = ResumeTests.progress(run).steps["reward", default: 0] >= 6
        }
        #expect(reached, "the run never reached the reward model's sixth step")
        ResumeTests.killCluster(p)
        let resume = try Run.start(["resume", run.path, "--quiet"], log: dir.appendingPathComponent("b.log"))
        #expect(Run.wait(resume, seconds: 240))
        let log = (try? String(contentsOf: dir.appendingPathComponent("b.log"), encoding: .utf8)) ?? ""
        #expect(resume.terminationStatus == 0, "resume failed: \(log.suffix(2000))")
        let resumed = try Run.summary(run)["weights_checksum"] as? String
        #expect(!shared.checksum.isEmpty && resumed == shared.checksum)
    }

    /// A checkpoint changed after the run began: `rlaif resume` refuses it before any worker
    /// starts (workers that found it changed used to leave the coordinator waiting for them).
    @Test func resumeWithAChangedCheckpoint_isRefusedAtOnce() throws {
        let dir = try Run.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        // A copy: the test changes it.
        let checkpoint = dir.appendingPathComponent("checkpoint")
        try FileManager.default.copyItem(at: try Self.shared().checkpoint, to: checkpoint)
        let run = dir.appendingPathComponent("run")
        let first = try Run.start(
            Self.arguments(checkpoint, run: run, workers: 1) + ["--set", "rl.iterations=1"],
            log: dir.appendingPathComponent("a.log"))
        #expect(Run.wait(first, seconds: 240) && first.terminationStatus == 0)
        try "{}".write(
            to: checkpoint.appendingPathComponent("special_tokens_map.json"), atomically: true, encoding: .utf8)
        let resume = try Run.start(["resume", run.path, "--quiet"], log: dir.appendingPathComponent("b.log"))
        #expect(Run.wait(resume, seconds: 30), "resume did not stop")
        #expect(resume.terminationStatus != 0)
        let log = try String(contentsOf: dir.appendingPathComponent("b.log"), encoding: .utf8)
        #expect(log.contains("changed since the run began"), "\(log)")
    }
}
