import Foundation
import Models
import Protocol
import Tensor

/// Steps over preference pairs: the reward model and DPO.
extension RunDriver {
    // MARK: The user's preference pairs

    /// Appends `task.preferences`' pairs after the labeler's (ids go on from theirs), each the
    /// chosen reply first with a certain preference for it.
    func appendDataPairs(_ dataset: inout Preferences) {
        let data = task.preferencePairs
        let first = dataset.labels.count
        dataset.prompts += data.map(\.prompt)
        dataset.pairs += data.map { ($0.chosen, $0.rejected) }
        dataset.labels += data.indices.map { i in
            PreferenceLabel(
                pairID: UInt64(first + i), forward: 1, backward: nil, probabilityA: 1, status: .valid,
                rationales: ["\(settings.task.preferences):\(data[i].line)"], retries: 0)
        }
        dataset.tokens? += pairSequences(data.map(\.prompt), data.map { ($0.chosen, $0.rejected) }).map {
            ($0[0].response, $0[1].response)
        }
        events.record(.preferenceData(path: settings.task.preferences, pairs: data.count))
    }

    // MARK: Reward model

    /// Pairs whose id is a multiple of 10 are held out for accuracy.
    static func heldOut(_ id: Int) -> Bool { id % 10 == 0 }

    /// Each pair as two sequences (prompt + A, prompt + B), tokenized once for every epoch.
    func pairSequences(_ prompts: [String], _ pairs: [(String, String)]) -> [[(
        prompt: [Int32], response: [Int32]
    )]] {
        Self.pairSequences(prompts, pairs, tokenizer: tokenizer, contextLength: settings.model.contextLength)
    }

    /// Pairs are kept as the text the labeler judged. A sampled response that is not valid UTF-8
    /// reads back with U+FFFD (three bytes) for each bad byte, so its tokens can outgrow the
    /// context it was sampled in; such a response is cut to fit (a run failed on "a sequence of
    /// 33 tokens exceeds the context length 32" without this).
    static func pairSequences(
        _ prompts: [String], _ pairs: [(String, String)], tokenizer: any Tokenizer, contextLength: Int
    ) -> [[(prompt: [Int32], response: [Int32])]] {
        zip(prompts, pairs).map { prompt, pair in
            let p = tokenizer.encode(prompt)
            let room = max(0, contextLength - p.count)
            return [pair.0, pair.1].map { (p, Array(tokenizer.encode($0).prefix(room))) }
        }
    }

    func pairSteps(
        _ o: RunSettings.Optimization, epochs: Int, prompts: [String], pairs: [(String, String)],
        labels: [PreferenceLabel], train: [Int], salt: UInt64, phase: String, runPhase: Phase, skip: Int,
        makeSpec: (Int, Bool) -> GradientSpec
    ) async throws {
        let stepsPerEpoch = (train.count + o.batchSize - 1) / o.batchSize
        let progress = Progress(phase: phase, total: epochs * stepsPerEpoch, quiet: quiet)
        let sequences = pairSequences(prompts, pairs)
        var orders: [Int: [Int]] = [:]
        func request(_ i: Int) -> GradientJob {
            let epoch = i / stepsPerEpoch, s = i % stepsPerEpoch
            let order = orders[epoch] ?? shuffled(train.count, epoch: epoch, salt: salt).map { train[$0] }
            orders[epoch] = order
            let chosen = Array(order[(s * o.batchSize)..<min((s + 1) * o.batchSize, order.count)])
            var micros = microBatches(chosen.flatMap { sequences[$0] }, size: 2 * o.microBatch)
            for m in micros.indices {
                let ids = chosen[(m * o.microBatch)..<min((m + 1) * o.microBatch, chosen.count)]
                micros[m].labels = ids.map { Float(labels[$0].probabilityA!) }
            }
            return .init(spec: makeSpec(chosen.count, i == 0), microBatches: micros)
        }
        try await runSteps(skip..<(epochs * stepsPerEpoch), make: request) { i, result, pace in
            logStep(phase, result, pace: pace, extra: ["epoch": Double(i / stepsPerEpoch)])
            progress.update(
                i + 1,
                String(
                    format: "loss %.3f  acc %.2f", result.metrics["loss"] ?? .nan, result.metrics["accuracy"] ?? .nan))
            try await periodicCheckpoint(runPhase, done: i + 1)
        }
    }

    func trainRewardModel(_ preferences: Preferences, skip: Int) async throws -> (
        labeler: Double?, groundTruth: Double?
    ) {
        let (prompts, pairs, labels) = (preferences.prompts, preferences.pairs, preferences.labels)
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
        // Held-out pairs are scored as sampled (older checkpoints kept text only: as trained).
        let scoreSpec = ScoreSpec(
            sequences: test.flatMap { i -> [[Int32]] in
                if let sampled = preferences.tokens?[i] {
                    let p = tokenizer.encode(prompts[i])
                    return [p + sampled.0, p + sampled.1]
                }
                return Self.pairSequences(
                    [prompts[i]], [pairs[i]], tokenizer: tokenizer, contextLength: settings.model.contextLength)[0].map
                { $0.prompt + $0.response }
            })
        guard case .scores(let scores)? = try await cluster.runJobs([.scores(scoreSpec)]).first else {
            throw RunError(message: "the score job returned no scores")
        }
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

    func dpo(prompts: [String], pairs: [(String, String)], labels: [PreferenceLabel], skip: Int) async throws {
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
}
