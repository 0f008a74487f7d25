import Foundation
import Logging
import Models
import Protocol
import RLAIF
import Tensor

/// The run's state machine: SFT → rollout → labeling → reward-model training → RL iterations →
/// evaluation (or DPO in place of the reward model and RL). Every stage is jobs through the
/// scheduler, the same code whatever the number of workers; every batch, shuffle and sample is
/// addressed by the run seed, so the same config gives the same weights.
public final class RunDriver: @unchecked Sendable {
    public enum Phase: String, Sendable, CaseIterable {
        case sft, rollout, labeling, rewardModel = "reward_model", rl, dpo, evaluation, done
    }

    let settings: RunSettings
    let scheduler: Scheduler
    let events: EventLog
    let directory: URL
    let logger: Logger
    let quiet: Bool
    let task: any TaskData
    /// Where checkpoints go (nil: none are written).
    let checkpoints: CheckpointStore?
    /// The checkpoint this run continues from, if any.
    let resumeFrom: RunCursor?
    /// What the next checkpoint will record.
    private var cursor: RunCursor
    let tokenizer = ModelReplica.tokenizer
    private let started = Date()

    public init(
        settings: RunSettings, scheduler: Scheduler, events: EventLog, directory: URL, logger: Logger,
        task: any TaskData, checkpoints: CheckpointStore? = nil, resumeFrom: RunCursor? = nil, quiet: Bool = false
    ) {
        self.settings = settings
        self.scheduler = scheduler
        self.events = events
        self.directory = directory
        self.logger = logger
        self.quiet = quiet
        self.task = task
        self.checkpoints = checkpoints
        self.resumeFrom = resumeFrom
        cursor =
            resumeFrom
            ?? RunCursor(phase: Phase.sft.rawValue, done: 0, version: 0, metricsBytes: 0, weightsChecksum: "")
    }

    func say(_ line: String) { if !quiet { print(line) } }

    private func phase(_ p: Phase) {
        events.record(.phase(p.rawValue))
    }

    // MARK: The run

    /// Runs every phase and returns the summary (also written to summary.json).
    public func run() async throws -> RunSummary {
        // A resumed run skips the phases before its checkpoint's and the steps done in that one.
        let at = Self.order(resumeFrom?.phase ?? Phase.sft.rawValue)
        func done(_ p: Phase) -> Int { Self.order(p.rawValue) == at ? resumeFrom?.done ?? 0 : 0 }
        func begin(_ p: Phase) { if done(p) == 0 { phase(p) } }  // a resumed phase's event is already logged

        if at <= Self.order(Phase.sft.rawValue) {
            begin(.sft)
            try await supervisedFineTuning(demonstrations(), skip: done(.sft))
            try await checkpoint(next: .rollout, done: 0)
        }

        // Direct RLAIF needs no preference pairs: its labeler rates each RL response instead.
        var preferences: (prompts: [String], pairs: [(String, String)], labels: [PreferenceLabel])?
        if let saved = resumeFrom?.preferences {
            preferences = (saved.prompts, Array(zip(saved.first, saved.second)), saved.labels)
        } else if settings.run.method != "direct" {
            phase(.rollout)
            let prompts = task.trainingPrompts(0..<settings.preferences.pairs)
            let pairs = try await samplePairs(prompts)
            phase(.labeling)
            let labels = try await label(
                pairs.enumerated().map { i, p in LabelingPair(id: UInt64(i), prompt: prompts[i], first: p.0, second: p.1) },
                phase: "labeling")
            try writePreferences(prompts: prompts, pairs: pairs, labels: labels)
            preferences = (prompts, pairs, labels)
            cursor.preferences = .init(prompts: prompts, first: pairs.map(\.0), second: pairs.map(\.1), labels: labels)
            try await checkpoint(next: settings.run.method == "dpo" ? .dpo : .rewardModel, done: 0)
        }

        switch (settings.run.method, preferences) {
        case ("dpo", let p?):
            if at <= Self.order(Phase.dpo.rawValue) {
                begin(.dpo)
                try await dpo(prompts: p.prompts, pairs: p.pairs, labels: p.labels, skip: done(.dpo))
                try await checkpoint(next: .evaluation, done: 0)
            }
        case (_, let p?):
            if at <= Self.order(Phase.rewardModel.rawValue) {
                begin(.rewardModel)
                let accuracy = try await trainRewardModel(
                    prompts: p.prompts, pairs: p.pairs, labels: p.labels, skip: done(.rewardModel))
                (cursor.rewardAccuracyLabeler, cursor.rewardAccuracyGroundTruth) = accuracy
                try await checkpoint(next: .rl, done: 0)
            }
            if at <= Self.order(Phase.rl.rawValue) {
                begin(.rl)
                try await reinforce(direct: false, skip: done(.rl))
                try await checkpoint(next: .evaluation, done: 0)
            }
        case (_, nil):
            if at <= Self.order(Phase.rl.rawValue) {
                begin(.rl)
                try await reinforce(direct: true, skip: done(.rl))
                try await checkpoint(next: .evaluation, done: 0)
            }
        }
        let rewardAccuracy = (labeler: cursor.rewardAccuracyLabeler, groundTruth: cursor.rewardAccuracyGroundTruth)
        phase(.evaluation)
        let evaluation = try await evaluate()
        var summary = evaluation.summary
        summary.rewardModelAccuracy = .init(labeler: rewardAccuracy.labeler, groundTruth: rewardAccuracy.groundTruth)
        // Alignment on the preference pairs, or (direct RLAIF) on the evaluation's pairs.
        summary.labelerAlignment =
            preferences.map { alignment(prompts: $0.prompts, pairs: $0.pairs, labels: $0.labels) }
            ?? alignment(
                prompts: evaluation.pairs.map(\.prompt), pairs: evaluation.pairs.map { ($0.first, $0.second) },
                labels: evaluation.labels)
        summary.wallSeconds = Date().timeIntervalSince(started)
        summary.method = settings.run.method
        summary.finalVersion = await scheduler.version
        summary.weightsChecksum = cursor.weightsChecksum
        // The final policy and reward model, for transformers.
        if await scheduler.version > 0 {
            let final = await scheduler.currentSnapshot()
            summary.weightsChecksum = Self.checksum(final)
            do {
                try ModelExport.write(weights: final, settings: settings, to: directory.appendingPathComponent("models"))
            } catch {
                throw RunError(message: error.message)
            }
        }
        try summary.write(to: directory.appendingPathComponent("summary.json"))
        phase(.done)
        return summary
    }

    // MARK: Checkpoints

    /// Phases in run order; rollout and labeling are redone whole (a checkpoint follows them).
    static func order(_ phase: String) -> Int {
        switch Phase(rawValue: phase) {
        case .sft: 0
        case .rollout, .labeling: 1
        case .rewardModel, .dpo: 2
        case .rl: 3
        case .evaluation, .done, nil: 4
        }
    }

    /// Saves the run's state with `done` units of phase `next` finished (no-op before the first step).
    private func checkpoint(next: Phase, done: Int) async throws {
        guard let checkpoints else { return }
        let version = await scheduler.version
        guard version > 0 else { return }
        let weights = await scheduler.currentSnapshot()
        cursor.weightsChecksum = Self.checksum(weights)
        cursor.phase = next.rawValue
        cursor.done = done
        cursor.version = version
        cursor.metricsBytes = events.offset
        let written: URL
        do {
            written = try checkpoints.write(Checkpoint(cursor: cursor, settings: settings.json(), weights: weights))
        } catch {
            throw RunError(message: error.message)
        }
        events.record(.checkpoint(directory: written.lastPathComponent, phase: next.rawValue, done: done, version: version))
    }

    /// `ModelReplica.checksum()` of the replica a snapshot restores.
    static func checksum(_ weights: [Wire.Weights]) -> String {
        ModelReplica.checksum(of: weights.compactMap(ModelReplica.ModelState.init))
    }

    /// After each step of a loop: a checkpoint every `checkpoint.every_steps` optimizer steps.
    private func periodicCheckpoint(_ p: Phase, done: Int) async throws {
        let every = settings.checkpoint.everySteps
        guard every > 0, await scheduler.version % UInt64(every) == 0 else { return }
        try await checkpoint(next: p, done: done)
    }

    // MARK: Data


    private func demonstrations() -> [(prompt: String, completion: String)] { task.demonstrations() }

    /// Deterministic order of `count` items for `epoch`.
    private func shuffled(_ count: Int, epoch: Int, salt: UInt64) -> [Int] {
        var order = Array(0..<count)
        var rng = RandomStream(seed: settings.run.seed, purpose: .dataShuffle, step: salt << 32 | UInt64(epoch))
        for i in stride(from: count - 1, to: 0, by: -1) { order.swapAt(i, rng.next(below: i + 1)) }
        return order
    }

    private func microBatches(_ sequences: [(prompt: [Int32], response: [Int32])], size: Int) -> [MicroBatch] {
        stride(from: 0, to: sequences.count, by: size).enumerated().map { id, start in
            let part = sequences[start..<min(start + size, sequences.count)]
            return MicroBatch(
                id: id, batch: SequenceBatch(prompts: part.map(\.prompt), responses: part.map(\.response)))
        }
    }

    // MARK: SFT

    private func supervisedFineTuning(_ demos: [(prompt: String, completion: String)], skip: Int) async throws {
        let o = settings.sft
        let stepsPerEpoch = (demos.count + o.batchSize - 1) / o.batchSize
        let progress = Progress(phase: "sft", total: o.epochs * stepsPerEpoch, quiet: quiet)
        let encoded = demos.map { (tokenizer.encode($0.prompt), task.completionTokens($0.completion)) }
        var done = skip
        for epoch in 0..<o.epochs {
            let order = shuffled(demos.count, epoch: epoch, salt: 1)
            for s in 0..<stepsPerEpoch where epoch * stepsPerEpoch + s >= skip {
                let chosen = order[(s * o.batchSize)..<min((s + 1) * o.batchSize, order.count)].map { encoded[$0] }
                let tokens = chosen.reduce(0) { $0 + $1.1.count }
                let spec = GradientSpec(
                    objective: .sft, learningRate: o.learningRate, clipNorm: o.clipNorm, normalizer: Double(tokens))
                let result = try await scheduler.gradientStep(
                    .init(spec: spec, microBatches: microBatches(chosen.map { ($0.0, $0.1) }, size: o.microBatch)))
                done += 1
                logStep("sft", result, extra: ["epoch": Double(epoch)])
                progress.update(done, String(format: "loss %.3f", result.metrics["loss"] ?? .nan))
                try await periodicCheckpoint(.sft, done: epoch * stepsPerEpoch + s + 1)
            }
        }
    }

    private func logStep(_ phase: String, _ r: GradientResult, extra: [String: Double] = [:]) {
        let values = r.metrics.merging(extra) { _, driver in driver }
        events.record(
            .metrics(.init(phase: phase, version: r.version, gradientNorm: r.gradientNorm, fingerprint: r.fingerprint, values: values)))
    }

    // MARK: Rollout and labeling

    /// Samples from `generator` for each prompt; sample ids address the random streams.
    private func rollout(
        _ prompts: [String], sampleIDs: [UInt64], seed: UInt64, generator: ModelReplica.Role, score: Bool,
        phase: String
    ) async throws -> [RolloutSample] {
        let size = settings.preferences.jobSize
        let jobs = stride(from: 0, to: prompts.count, by: size).map { start -> Scheduler.JobRequest in
            let range = start..<min(start + size, prompts.count)
            let spec = RolloutSpec(
                prompts: Array(prompts[range]), sampleIDs: Array(sampleIDs[range]), seed: seed,
                temperature: settings.model.temperature, maxNewTokens: settings.model.maxNewTokens,
                generator: generator, score: score, stopTokens: task.stopTokens)
            return .init(kind: .rollout, spec: JobSpecs.encode(spec), needsWeights: true)
        }
        let progress = Progress(phase: phase, total: jobs.count, quiet: quiet)
        let results = try await scheduler.runJobs(jobs)
        progress.update(jobs.count)
        return try results.flatMap { try RolloutResult.unpack(spec: $0.spec, tensors: $0.tensors) }
    }

    private func text(_ tokens: [Int32]) -> String {
        tokenizer.decode(tokens.filter { $0 != tokenizer.endOfText })
    }

    private func samplePairs(_ prompts: [String]) async throws -> [(String, String)] {
        let doubled = prompts.flatMap { [$0, $0] }
        let ids = (0..<UInt64(doubled.count)).map { $0 }
        let samples = try await rollout(
            doubled, sampleIDs: ids, seed: settings.run.seed ^ 0x5052_4546, generator: .policy, score: false,
            phase: "rollout")
        return stride(from: 0, to: samples.count, by: 2).map { (text(samples[$0].tokens), text(samples[$0 + 1].tokens)) }
    }

    /// Labeling jobs of `preferences.job_size` questions each (pairs or ratings), on any worker;
    /// one answer per question, in order.
    private func runLabeling<Question, Answer: Decodable>(
        _ questions: [Question], phase: String, spec: ([Question]) -> LabelingSpec
    ) async throws -> [Answer] {
        let size = settings.preferences.jobSize
        let jobs = stride(from: 0, to: questions.count, by: size).map { start in
            Scheduler.JobRequest(
                kind: .labeling, spec: JobSpecs.encode(spec(Array(questions[start..<min(start + size, questions.count)]))),
                needsWeights: false)
        }
        let progress = Progress(phase: phase, total: jobs.count, quiet: quiet)
        let results = try await scheduler.runJobs(jobs)
        progress.update(jobs.count)
        let answers = try results.flatMap { try JobSpecs.decode([Answer].self, $0.spec) }
        guard answers.count == questions.count else {
            throw RunError(message: "\(phase) jobs returned \(answers.count) answers for \(questions.count) questions")
        }
        return answers
    }

    private func label(_ pairs: [LabelingPair], phase: String) async throws -> [PreferenceLabel] {
        let labels: [PreferenceLabel] = try await runLabeling(pairs, phase: phase) { LabelingSpec(pairs: $0) }
        let counts = Dictionary(grouping: labels, by: \.status).mapValues(\.count)
        events.record(
            .labels(
                phase: phase, valid: counts[.valid] ?? 0, ambiguous: counts[.ambiguous] ?? 0,
                invalid: counts[.invalid] ?? 0, retries: labels.reduce(0) { $0 + $1.retries }))
        return labels
    }

    private func writePreferences(prompts: [String], pairs: [(String, String)], labels: [PreferenceLabel]) throws {
        var out = Data()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        struct Record: Encodable {
            let id: UInt64, prompt: String, a: String, b: String, label: PreferenceLabel, groundTruth: Double?
            enum CodingKeys: String, CodingKey {
                case id, prompt, a, b, label
                case groundTruth = "ground_truth"
            }
        }
        for (i, l) in labels.enumerated() {
            let gt = task.groundTruthPreference(pairs[i].0, pairs[i].1, prompt: prompts[i])
            out += try encoder.encode(
                Record(id: l.pairID, prompt: prompts[i], a: pairs[i].0, b: pairs[i].1, label: l, groundTruth: gt))
            out += Data("\n".utf8)
        }
        try out.write(to: directory.appendingPathComponent("preferences.jsonl"))
    }

    // MARK: Reward model

    /// Pairs whose id is a multiple of 10 are held out for accuracy.
    private static func heldOut(_ id: Int) -> Bool { id % 10 == 0 }

    /// Each pair as two sequences (prompt + A, prompt + B), tokenized once for every epoch.
    private func pairSequences(_ prompts: [String], _ pairs: [(String, String)]) -> [[(
        prompt: [Int32], response: [Int32]
    )]] {
        Self.pairSequences(prompts, pairs, tokenizer: tokenizer, contextLength: settings.model.contextLength)
    }

    /// Pairs are kept as the text the labeler judged. A sampled response that is not valid UTF-8
    /// reads back with U+FFFD (three bytes) for each bad byte, so its tokens can outgrow the
    /// context it was sampled in; such a response is cut to fit (a run failed on "a sequence of
    /// 33 tokens exceeds the context length 32" without this).
    static func pairSequences(
        _ prompts: [String], _ pairs: [(String, String)], tokenizer: ByteTokenizer, contextLength: Int
    ) -> [[(prompt: [Int32], response: [Int32])]] {
        zip(prompts, pairs).map { prompt, pair in
            let p = tokenizer.encode(prompt)
            let room = max(0, contextLength - p.count)
            return [pair.0, pair.1].map { (p, Array(tokenizer.encode($0).prefix(room))) }
        }
    }

    private func pairSteps(
        _ o: RunSettings.Optimization, epochs: Int, prompts: [String], pairs: [(String, String)],
        labels: [PreferenceLabel], train: [Int], salt: UInt64, phase: String, runPhase: Phase, skip: Int,
        makeSpec: (Int, Bool) -> GradientSpec
    ) async throws {
        let stepsPerEpoch = (train.count + o.batchSize - 1) / o.batchSize
        let progress = Progress(phase: phase, total: epochs * stepsPerEpoch, quiet: quiet)
        let sequences = pairSequences(prompts, pairs)
        var done = skip
        for epoch in 0..<epochs {
            let order = shuffled(train.count, epoch: epoch, salt: salt).map { train[$0] }
            for s in 0..<stepsPerEpoch where epoch * stepsPerEpoch + s >= skip {
                let chosen = Array(order[(s * o.batchSize)..<min((s + 1) * o.batchSize, order.count)])
                var micros = microBatches(chosen.flatMap { sequences[$0] }, size: 2 * o.microBatch)
                for m in micros.indices {
                    let ids = chosen[(m * o.microBatch)..<min((m + 1) * o.microBatch, chosen.count)]
                    micros[m].labels = ids.map { Float(labels[$0].probabilityA!) }
                }
                let result = try await scheduler.gradientStep(
                    .init(spec: makeSpec(chosen.count, done == 0), microBatches: micros))
                done += 1
                logStep(phase, result, extra: ["epoch": Double(epoch)])
                progress.update(
                    done,
                    String(
                        format: "loss %.3f  acc %.2f", result.metrics["loss"] ?? .nan,
                        result.metrics["accuracy"] ?? .nan))
                try await periodicCheckpoint(runPhase, done: done)
            }
        }
    }

    private func trainRewardModel(prompts: [String], pairs: [(String, String)], labels: [PreferenceLabel], skip: Int)
        async throws -> (labeler: Double?, groundTruth: Double?)
    {
        let usable = labels.indices.filter { labels[$0].status == .valid }
        let train = usable.filter { !Self.heldOut($0) }
        let o = settings.rewardModel
        try await pairSteps(
            o, epochs: o.epochs, prompts: prompts, pairs: pairs, labels: labels, train: train, salt: 2,
            phase: "reward", runPhase: .rewardModel, skip: skip
        ) { count, first in
            var spec = GradientSpec(
                objective: .reward, learningRate: o.learningRate, clipNorm: o.clipNorm, normalizer: Double(count))
            spec.forkReference = first
            spec.forkReward = first
            return spec
        }
        // Held-out accuracy against the labeler's debiased decision and against ground truth.
        let test = labels.indices.filter { Self.heldOut($0) }
        guard !test.isEmpty else { return (nil, nil) }
        let scoreSpec = ScoreSpec(
            prompts: test.flatMap { [prompts[$0], prompts[$0]] }, responses: test.flatMap { [pairs[$0].0, pairs[$0].1] })
        let results = try await scheduler.runJobs([
            .init(kind: .evaluation, spec: JobSpecs.encode(scoreSpec), needsWeights: true)
        ])
        let scores = try JobSpecs.decode([Float].self, results[0].spec)
        var labelerHits = 0.0, labelerCount = 0.0, truthHits = 0.0, truthCount = 0.0
        for (k, i) in test.enumerated() {
            let prefersA = scores[2 * k] > scores[2 * k + 1]
            if labels[i].status == .valid, let p = labels[i].probabilityA {
                labelerCount += 1
                if prefersA == (p > 0.5) { labelerHits += 1 }
            }
            if let gt = task.groundTruthPreference(pairs[i].0, pairs[i].1, prompt: prompts[i]) {
                if gt != 0.5 {
                    truthCount += 1
                    if prefersA == (gt == 1) { truthHits += 1 }
                }
            }
        }
        let accuracy = (
            labelerCount > 0 ? labelerHits / labelerCount : nil, truthCount > 0 ? truthHits / truthCount : nil
        )
        events.record(.rewardModelAccuracy(labeler: accuracy.0, groundTruth: accuracy.1, heldOut: test.count))
        return accuracy
    }

    // MARK: DPO

    private func dpo(prompts: [String], pairs: [(String, String)], labels: [PreferenceLabel], skip: Int) async throws {
        let train = labels.indices.filter { labels[$0].status == .valid }
        let o = RunSettings.Optimization(
            epochs: settings.rl.dpoEpochs, batchSize: settings.rewardModel.batchSize,
            microBatch: settings.rewardModel.microBatch, learningRate: settings.rl.dpoLearningRate,
            clipNorm: settings.rl.clipNorm)
        try await pairSteps(
            o, epochs: o.epochs, prompts: prompts, pairs: pairs, labels: labels, train: train, salt: 3, phase: "dpo",
            runPhase: .dpo, skip: skip
        ) { count, first in
            var spec = GradientSpec(
                objective: .dpo, learningRate: o.learningRate, clipNorm: o.clipNorm, normalizer: Double(count))
            spec.dpoBeta = settings.rl.dpoBeta
            spec.forkReference = first
            return spec
        }
    }

    // MARK: RL

    /// Direct RLAIF's rewards: each response rated 1–10 by the labeler, the probability-weighted
    /// score mapped to [−1, 1]; a response whose rating failed every retry gets 0 and is counted.
    private func ratingRewards(prompts: [String], responses: [String], ids: [UInt64]) async throws -> [Double] {
        let items = responses.indices.map { RatingItem(id: 1 << 41 + ids[$0], prompt: prompts[$0], response: responses[$0]) }
        let labels: [RatingLabel] = try await runLabeling(items, phase: "rl-rating") { LabelingSpec(ratings: $0) }
        let failed = labels.filter { $0.reward == nil }.count
        if failed > 0 { events.record(.ratings(failed: failed, rated: labels.count)) }
        return labels.map { $0.reward ?? 0 }
    }

    private func reinforce(direct: Bool, skip: Int) async throws {
        let rl = settings.rl
        let ppo = rl.algorithm == "ppo"
        let stepsPerIteration = ppo ? rl.ppoEpochs : 1
        let progress = Progress(phase: "rl", total: rl.iterations, quiet: quiet)
        // Checkpoints fall between iterations: an iteration's rollout and its PPO epochs go together.
        let checkpointIterations = max(1, settings.checkpoint.everySteps / stepsPerIteration)
        for iteration in skip..<rl.iterations {
            let base = settings.preferences.pairs + iteration * rl.promptsPerIteration
            let prompts = task.trainingPrompts(base..<(base + rl.promptsPerIteration))
            let ids = (0..<UInt64(prompts.count)).map { UInt64(base) + $0 }
            let samples = try await rollout(
                prompts, sampleIDs: ids, seed: settings.run.seed ^ 0x524C_0000, generator: .policy, score: true,
                phase: "rl-rollout")
            let responses = samples.map { text($0.tokens) }
            let rewards =
                direct
                ? try await ratingRewards(prompts: prompts, responses: responses, ids: ids)
                : samples.map { Double($0.reward ?? 0) }
            let adv = Advantages.compute(
                samples: samples, rewards: rewards, klBeta: rl.klBeta, normalizeRewards: rl.normalizeRewards,
                gaeLambda: ppo ? rl.gaeLambda : nil)
            let sequences = zip(prompts, samples).map { (tokenizer.encode($0), $1.tokens) }
            var micros = microBatches(sequences, size: rl.microBatch)
            for m in micros.indices {
                let range = (m * rl.microBatch)..<min((m + 1) * rl.microBatch, samples.count)
                micros[m].advantages = Array(adv.advantages[range])
                micros[m].returns = Array(adv.returns[range])
                micros[m].oldLogProbs = range.map { samples[$0].logProbs }
            }
            let tokens = samples.reduce(0) { $0 + $1.tokens.count }
            // The ground truth's mean quality of this batch (NaN where the task has none).
            let qualities = zip(prompts, responses).compactMap { task.groundTruthQuality(of: $1, prompt: $0) }
            let truth = qualities.isEmpty ? Double.nan : qualities.reduce(0, +) / Double(qualities.count)
            var last: GradientResult?
            for step in 0..<stepsPerIteration {
                var spec = GradientSpec(
                    objective: ppo ? .ppo : .policyGradient, learningRate: rl.learningRate, clipNorm: rl.clipNorm,
                    normalizer: Double(tokens))
                spec.ppoClip = rl.ppoClip
                spec.forkReference = direct && iteration == 0 && step == 0  // no reward phase forked it
                spec.valueCoefficient = rl.valueCoefficient
                last = try await scheduler.gradientStep(.init(spec: spec, microBatches: micros))
            }
            let meanLength = Double(tokens) / Double(samples.count)
            var extra: [String: Double] = [
                "iteration": Double(iteration), "reward": adv.meanReward, "kl": adv.meanKL, "response_length": meanLength,
            ]
            if !truth.isNaN { extra["ground_truth_quality"] = truth }
            logStep("rl", last!, extra: extra)
            progress.update(
                iteration + 1,
                String(
                    format: "reward %.3f  kl %.3f  len %.1f", adv.meanReward, adv.meanKL, meanLength)
                    + (truth.isNaN ? "" : String(format: "  gt %.2f", truth)))
            if settings.checkpoint.everySteps > 0, (iteration + 1) % checkpointIterations == 0,
                iteration + 1 < rl.iterations
            {
                try await checkpoint(next: .rl, done: iteration + 1)
            }
        }
    }

    // MARK: Evaluation

    private func evaluate() async throws -> (summary: RunSummary, pairs: [LabelingPair], labels: [PreferenceLabel]) {
        let prompts = task.heldOutPrompts(settings.evaluation.prompts)
        let n = prompts.count
        let ids = (0..<UInt64(n)).map { $0 }
        let seed = settings.run.seed ^ 0x4556_414C
        let policy = try await rollout(
            prompts, sampleIDs: ids, seed: seed, generator: .policy, score: true, phase: "eval-policy")
        let sft = try await rollout(prompts, sampleIDs: ids, seed: seed, generator: .reference, score: false, phase: "eval-sft")
        let pairs = (0..<n).map {
            LabelingPair(
                id: 1 << 40 + UInt64($0), prompt: prompts[$0], first: text(policy[$0].tokens),
                second: text(sft[$0].tokens))
        }
        let labels = try await label(pairs, phase: "eval-label")
        // Ground truth (where the task has one): each pair's qualities and preferred response.
        let truth = pairs.map { pair -> (policy: Double, sft: Double, preference: Double)? in
            guard let qp = task.groundTruthQuality(of: pair.first, prompt: pair.prompt),
                let qs = task.groundTruthQuality(of: pair.second, prompt: pair.prompt),
                let gt = task.groundTruthPreference(pair.first, pair.second, prompt: pair.prompt)
            else { return nil }
            return (qp, qs, gt)
        }
        try writeEvaluation(pairs: pairs, labels: labels, truth: truth.map { $0.map { ($0.policy, $0.sft) } })
        var labelerWins = 0.0, truthWins = 0.0, truthPolicy = 0.0, truthSFT = 0.0, truthCount = 0.0
        for i in 0..<n {
            if let p = labels[i].probabilityA { labelerWins += p > 0.5 ? 1 : (p < 0.5 ? 0 : 0.5) } else { labelerWins += 0.5 }
            if let t = truth[i] {
                truthWins += t.preference
                truthPolicy += t.policy
                truthSFT += t.sft
                truthCount += 1
            }
        }
        func mean(_ total: Double) -> Double? { truthCount > 0 ? total / truthCount : nil }
        var summary = RunSummary()
        summary.winRateVsSFT = .init(labeler: labelerWins / Double(n), groundTruth: mean(truthWins))
        summary.klToSFT =
            policy.reduce(0.0) { total, s in
                total + zip(s.logProbs, s.referenceLogProbs).reduce(0.0) { $0 + Double($1.0 - $1.1) }
            } / Double(n)
        summary.meanResponseLength = .init(
            sft: Double(sft.reduce(0) { $0 + $1.tokens.count }) / Double(n),
            policy: Double(policy.reduce(0) { $0 + $1.tokens.count }) / Double(n))
        summary.groundTruthQuality = .init(sft: mean(truthSFT), policy: mean(truthPolicy))
        summary.evaluationPrompts = n
        return (summary, pairs, labels)
    }

    /// evaluation.jsonl: each held-out prompt with the policy's and the SFT policy's responses, the
    /// labeler's verdict and the ground-truth qualities, so a user can read what the numbers mean.
    private func writeEvaluation(
        pairs: [LabelingPair], labels: [PreferenceLabel], truth: [(policy: Double, sft: Double)?]
    ) throws {
        struct Record: Encodable {
            let prompt: String, policy: String, sft: String, label: PreferenceLabel
            let quality: [String: Double]?
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var out = Data()
        for (i, pair) in pairs.enumerated() {
            let quality = truth[i].map { ["policy": $0.policy, "sft": $0.sft] }
            out += try encoder.encode(
                Record(prompt: pair.prompt, policy: pair.first, sft: pair.second, label: labels[i], quality: quality))
            out += Data("\n".utf8)
        }
        try out.write(to: directory.appendingPathComponent("evaluation.jsonl"))
    }

    /// How often the labeler's preference matches ground truth (pairs where ground truth is not a tie).
    private func alignment(prompts: [String], pairs: [(String, String)], labels: [PreferenceLabel]) -> RunSummary
        .Alignment
    {
        var debiased = 0.0, single = 0.0, count = 0.0
        for (i, l) in labels.enumerated() {
            guard let gt = task.groundTruthPreference(pairs[i].0, pairs[i].1, prompt: prompts[i]), gt != 0.5 else {
                continue
            }
            count += 1
            func credit(_ p: Double?) -> Double {
                guard let p else { return 0.5 }
                return p == 0.5 ? 0.5 : ((p > 0.5) == (gt == 1) ? 1 : 0)
            }
            debiased += credit(l.probabilityA)
            single += credit(l.forward)
        }
        guard count > 0 else { return .init(debiased: nil, singleOrder: nil) }
        return .init(debiased: debiased / count, singleOrder: single / count)
    }
}
