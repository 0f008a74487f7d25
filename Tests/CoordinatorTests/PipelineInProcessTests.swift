import Foundation
import Logging
import Protocol
import TestSupport
import Testing

@testable import Coordinator
@testable import RLAIF

/// The whole pipeline on `LocalCluster` (replicas in this process, no sockets, no processes):
/// the same bits whatever the number of replicas, each method beating SFT, and a run that
/// crashes and resumes from its checkpoints ending where the uninterrupted one does.
@Suite(.serialized) struct PipelineInProcessTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let quick = root.appendingPathComponent("examples/quick.yaml").path

    static func settings(_ overrides: [String] = []) throws -> RunSettings {
        try ClusterConfig.load(path: quick, overrides: overrides).settings
    }

    static func temporaryDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rlaif-inprocess-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Runs the pipeline in `directory` on `replicas` replicas, from `resume` if given; with
    /// `failAfterSteps`, the cluster fails every step after that many (a crash). `keep`:
    /// checkpoints kept.
    static func run(
        _ settings: RunSettings, replicas: Int, in directory: URL, resume: Checkpoint? = nil,
        failAfterSteps: Int? = nil,
        keep: Int = 3
    ) async throws -> RunSummary {
        let events = try EventLog(
            url: directory.appendingPathComponent("metrics.jsonl"), truncatingTo: resume?.cursor.metricsBytes)
        defer { events.close() }
        let cluster = try LocalCluster(settings: settings, replicas: replicas, failAfterSteps: failAfterSteps)
        if let resume { try await cluster.resume(version: resume.cursor.version, weights: resume.weights) }
        let driver = RunDriver(
            settings: settings, cluster: cluster, events: events, directory: directory,
            logger: Logger(label: "test"),
            task: try TaskDataFactory.make(settings, tokenizer: try RunModel(settings: settings).tokenizer),
            checkpoints: CheckpointStore(runDirectory: directory, keep: keep), resumeFrom: resume?.cursor, quiet: true)
        return try await driver.run()
    }

    /// Optimizer steps logged per phase.
    static func steps(_ directory: URL) throws -> [String: Int] {
        var steps: [String: Int] = [:]
        for line in try RunEventLine.read(directory.appendingPathComponent("metrics.jsonl")) {
            if case .metrics(let m) = line.event { steps[m.phase, default: 0] += 1 }
        }
        return steps
    }

    @Test func oneAndThreeReplicas_giveTheSameWeights() async throws {
        let settings = try Self.settings(["rl.iterations=4", "evaluation.prompts=32"])
        var checksums: [String] = []
        for replicas in [1, 3] {
            let dir = try Self.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: dir) }
            checksums.append(try await Self.run(settings, replicas: replicas, in: dir).weightsChecksum)
        }
        #expect(!checksums[0].isEmpty && checksums[0] == checksums[1])
    }

    /// Two RL iterations on 2 replicas, Float32, no checkpointing: the run the next two tests
    /// vary one setting of, made once for both.
    static let plainShortRun = Task { () throws -> String in
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let plain = try Self.settings(["rl.iterations=2", "evaluation.prompts=32"])
        return try await Self.run(plain, replicas: 2, in: dir).weightsChecksum
    }

    /// `model.gradient_checkpointing` recomputes blocks in backward: the run's weights are the same.
    @Test func gradientCheckpointing_leavesTheWeightsAsTheyWere() async throws {
        let settings = try Self.settings([
            "rl.iterations=2", "evaluation.prompts=32", "model.gradient_checkpointing=true",
        ])
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let checkpointed = try await Self.run(settings, replicas: 2, in: dir).weightsChecksum
        let plain = try await Self.plainShortRun.value
        #expect(!plain.isEmpty && checkpointed == plain)
    }

    /// `model.precision: bf16` changes the run (its products round their inputs) but not its
    /// invariance: 1 and 2 replicas end with the same weights.
    @Test func bf16Products_giveTheSameWeights_onOneAndTwoReplicas() async throws {
        var checksums: [String] = []
        for (precision, replicas) in [("bf16", 1), ("bf16", 2)] {
            let settings = try Self.settings([
                "rl.iterations=2", "evaluation.prompts=32", "model.precision=\(precision)",
            ])
            #expect(settings.model.precision.rawValue == precision)
            let dir = try Self.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: dir) }
            checksums.append(try await Self.run(settings, replicas: replicas, in: dir).weightsChecksum)
        }
        let float32 = try await Self.plainShortRun.value
        #expect(!checksums[0].isEmpty && checksums[0] == checksums[1] && checksums[1] != float32)
    }

    /// A crash in SFT, in the reward model and in RL (every checkpoint 6 steps apart): each
    /// resume continues from the newest checkpoint, and the run ends with the uninterrupted
    /// run's weights and every step logged once.
    @Test func crashedRun_resumedFromItsCheckpoints_endsWithTheUninterruptedWeights() async throws {
        let settings = try Self.settings([
            "checkpoint.every_steps=6", "rl.iterations=6", "evaluation.prompts=32", "evaluation.every_iterations=2",
            "evaluation.slice=16", "rl.kl_target=0.5", "rl.kl_horizon=200",
        ])
        let referenceDir = try Self.temporaryDirectory(), dir = try Self.temporaryDirectory()
        defer { for d in [referenceDir, dir] { try? FileManager.default.removeItem(at: d) } }
        let reference = try await Self.run(settings, replicas: 2, in: referenceDir)
        let counts = try Self.steps(referenceDir)
        let sft = try #require(counts["sft"]), reward = try #require(counts["reward"])
        let rl = try #require(counts["rl"]) * settings.rl.ppoEpochs  // one line per iteration
        var resume: Checkpoint?
        for crashAt in [sft / 2, sft + reward / 2, sft + reward + rl * 2 / 3] {
            let taken = crashAt - Int(resume?.cursor.version ?? 0)
            await #expect(throws: RunError.self) {
                _ = try await Self.run(settings, replicas: 2, in: dir, resume: resume, failAfterSteps: taken)
            }
            resume = CheckpointStore(runDirectory: dir, keep: 3).newest { Issue.record("\($0)") }
            #expect(resume != nil)
        }
        let resumed = try await Self.run(settings, replicas: 1, in: dir, resume: resume)
        #expect(resumed.weightsChecksum == reference.weightsChecksum)
        #expect(try Self.steps(dir) == Self.steps(referenceDir))
        // Evaluations during RL (after iterations 2 and 4) and the final one, each logged once,
        // with the same figures as the uninterrupted run's.
        let evaluations = try Self.evaluations(dir)
        #expect(evaluations.map(\.iteration) == [2, 4, 6])
        #expect(evaluations.map(\.prompts) == [16, 16, 32])
        #expect(evaluations == (try Self.evaluations(referenceDir)))
        // The adaptive KL controller moved β, and the resumed run restored it from its checkpoint.
        let betas = try RunEventLine.read(dir.appendingPathComponent("metrics.jsonl")).compactMap { line in
            if case .metrics(let m) = line.event, m.phase == "rl" { m.values["kl_beta"] } else { nil }
        }
        #expect(betas.count == settings.rl.iterations && Set(betas).count > 1 && betas[0] == settings.rl.klBeta)
    }

    static func evaluations(_ directory: URL) throws -> [RunEvent.Evaluation] {
        try RunEventLine.read(directory.appendingPathComponent("metrics.jsonl")).compactMap {
            if case .evaluation(let e) = $0.event { e } else { nil }
        }
    }

    /// The critic-free methods on groups of 4 responses per prompt beat SFT on the ground truth,
    /// on 2 replicas, and GRPO's group rollouts and steps give the same bits on 1 (RLOO differs
    /// from it only in the advantage, which the coordinator computes whatever the replicas).
    @Test(arguments: [RunSettings.Algorithm.grpo, .rloo])
    func groupMethod_beatsSFT_onGroundTruth(_ algorithm: RunSettings.Algorithm) async throws {
        // Groups of 4 over 8 prompts: the 32 responses per iteration of the other methods.
        let settings = try Self.settings([
            "rl.algorithm=\(algorithm)", "rl.samples_per_prompt=4", "rl.prompts_per_iteration=8",
        ])
        var checksums: [String] = []
        for replicas in algorithm == .grpo ? [1, 2] : [2] {
            let dir = try Self.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: dir) }
            let summary = try await Self.run(settings, replicas: replicas, in: dir)
            checksums.append(summary.weightsChecksum)
            let truth = try #require(summary.winRateVsSFT.groundTruth)
            #expect(truth > 0.6, "\(algorithm): ground-truth win rate \(truth) against SFT")
            #expect(summary.rlAlgorithm == algorithm.rawValue)
            // One line per iteration, each with the loss's own KL estimate beside the batch's.
            let rl = try RunEventLine.read(dir.appendingPathComponent("metrics.jsonl")).compactMap { line in
                if case .metrics(let m) = line.event, m.phase == "rl" { m } else { nil }
            }
            #expect(rl.count == settings.rl.iterations && rl.allSatisfy { $0.values["kl_k3"] != nil })
        }
        if algorithm == .grpo { #expect(checksums.count == 2 && checksums[0] == checksums[1]) }
    }

    @Test(arguments: [RunSettings.Method.direct, .dpo])
    func method_beatsSFT_onGroundTruth(_ method: RunSettings.Method) async throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let summary = try await Self.run(Self.settings(["run.method=\(method)"]), replicas: 1, in: dir)
        #expect(summary.method == method.rawValue)
        let truth = try #require(summary.winRateVsSFT.groundTruth)
        #expect(truth > 0.6, "\(method): ground-truth win rate \(truth) against SFT")
        // The final policy is exported for transformers; these methods train no reward model.
        let models = dir.appendingPathComponent("models")
        #expect(FileManager.default.fileExists(atPath: models.appendingPathComponent("policy/model.safetensors").path))
        let config =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: models.appendingPathComponent("policy/config.json"))) as? [String: Any]
        // The byte tokenizer's end-of-text (256), not GPT-2's 50256, which its vocabulary lacks.
        #expect(config?["eos_token_id"] as? Int == 256 && config?["bos_token_id"] as? Int == 256)
        #expect(!FileManager.default.fileExists(atPath: models.appendingPathComponent("reward").path))
        let preferences = FileManager.default.fileExists(atPath: dir.appendingPathComponent("preferences.jsonl").path)
        // Direct RLAIF: no preference dataset and no reward model; the rewards came from ratings.
        #expect(preferences == (method != .direct))
        if method == .direct { #expect(summary.rewardModelAccuracy.labeler == nil) }
    }
}

/// The label journal: a run that goes back before its labeling asks the labeler nothing it has
/// already answered, and ends with the same weights.
@Suite(.serialized) struct LabelJournalRunTests {
    typealias P = PipelineInProcessTests

    /// Removes every checkpoint but the first (the end of SFT) and returns it.
    static func rewindToTheFirstCheckpoint(_ dir: URL) throws -> Checkpoint {
        let store = CheckpointStore(runDirectory: dir, keep: 10)
        let names = try FileManager.default.contentsOfDirectory(atPath: store.root.path).filter {
            $0.hasPrefix("ckpt-")
        }.sorted()
        for name in names.dropFirst() {
            try FileManager.default.removeItem(at: store.root.appendingPathComponent(name))
        }
        return try #require(store.newest { Issue.record("\($0)") })
    }

    @Test func runRedoingItsLabeling_takesEveryLabelFromTheJournal() async throws {
        let server = try await StandInServer.start(key: "journal-key")
        setenv("RLAIF_JOURNAL_TEST_KEY", "journal-key", 1)
        let settings = try P.settings([
            "labeler.kind=openai", "labeler.url=\(server.url.absoluteString)", "labeler.model=standin",
            "labeler.api_key_env=RLAIF_JOURNAL_TEST_KEY", "preferences.pairs=128", "rl.iterations=2",
            "evaluation.prompts=32", "evaluation.every_iterations=0", "checkpoint.every_steps=0",
        ])
        let dir = try P.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        func run(from resume: Checkpoint?) async throws -> RunSummary {
            try await P.run(settings, replicas: 2, in: dir, resume: resume, keep: 10)
        }
        let first = try await run(from: nil)
        let asked = try await server.stats().requests
        #expect(asked >= (128 + 32) * 2)
        // Back to the end of SFT, as if the run had crashed while labeling.
        let sft = try Self.rewindToTheFirstCheckpoint(dir)
        #expect(sft.cursor.phase == "rollout")
        let again = try await run(from: sft)
        #expect(try await server.stats().requests == asked, "the labeler was asked again")
        #expect(again.weightsChecksum == first.weightsChecksum)
        let reused = try RunEventLine.read(dir.appendingPathComponent("metrics.jsonl")).compactMap {
            if case .labelsFromJournal(let phase, let count) = $0.event { (phase, count) } else { nil }
        }
        #expect(reused.map(\.0) == ["labeling", "eval-label"] && reused.map(\.1) == [128, 32])
        // Without the labels' journal (a crash inside a labeling job, before its labels were
        // written), the answers' journal, written answer by answer, still asks nothing again.
        #expect(LabelJournal.recordedCount(in: dir) == 128 + 32)
        let answers = try String(contentsOf: dir.appendingPathComponent(LabelJournal.answerFileName), encoding: .utf8)
        #expect(answers.split(separator: "\n").count == asked, "one journaled answer per request")
        try FileManager.default.removeItem(at: dir.appendingPathComponent(LabelJournal.fileName))
        let third = try await run(from: sft)
        #expect(try await server.stats().requests == asked, "the labeler was asked again")
        #expect(third.weightsChecksum == first.weightsChecksum)
    }

    /// Direct RLAIF: every rating the labeler gave is journaled as it arrives, and a run that
    /// goes back to the end of SFT without its labels' journal asks for none of them again.
    @Test func directRLAIF_rerunWithoutTheLabelsJournal_asksNoRatingAgain() async throws {
        let server = try await StandInServer.start()
        let settings = try P.settings([
            "run.method=direct", "labeler.kind=openai", "labeler.url=\(server.url.absoluteString)",
            "labeler.model=standin", "rl.iterations=2", "evaluation.prompts=16", "evaluation.every_iterations=0",
            "checkpoint.every_steps=0",
        ])
        let dir = try P.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        func run(from resume: Checkpoint?) async throws -> RunSummary {
            try await P.run(settings, replicas: 2, in: dir, resume: resume, keep: 10)
        }
        let first = try await run(from: nil)
        let asked = try await server.stats().requests
        let ratings = 2 * settings.rl.promptsPerIteration * settings.rl.samplesPerPrompt
        #expect(asked >= ratings + 16 * 2)
        let sft = try Self.rewindToTheFirstCheckpoint(dir)
        try FileManager.default.removeItem(at: dir.appendingPathComponent(LabelJournal.fileName))
        let again = try await run(from: sft)
        #expect(try await server.stats().requests == asked, "the labeler was asked again")
        #expect(again.weightsChecksum == first.weightsChecksum)
    }
}
