import Foundation
import Models
import Protocol
import Tensor

/// The policy against the SFT policy on held-out prompts: at the end of the run, and every
/// `evaluation.every_iterations` RL iterations on a slice of them.
extension RunDriver {
    // MARK: Evaluation

    /// One comparison: both responses to each prompt, the labeler's verdicts and, where the task
    /// has it, ground truth.
    struct Comparison {
        let pairs: [LabelingPair]
        let labels: [PreferenceLabel]
        let policy: [RolloutSample]
        let sft: [RolloutSample]
        /// Each pair's ground-truth qualities and preference, where the task has them.
        let truth: [(policy: Double, sft: Double, preference: Double)?]

        /// The policy's win rate by the labeler (ties and failures count half) and by ground truth.
        var winRate: RunSummary.WinRate {
            let labeler = labels.reduce(0.0) { total, label in
                guard let p = label.probabilityA else { return total + 0.5 }
                return total + (p > 0.5 ? 1 : (p < 0.5 ? 0 : 0.5))
            }
            return .init(
                labeler: labeler / Double(max(1, labels.count)), groundTruth: mean(truth.map { $0?.preference }))
        }

        /// Per-token log-ratio of the policy to the reference on the policy's own responses.
        var kl: Double {
            policy.reduce(0.0) { total, s in
                total + zip(s.logProbs, s.referenceLogProbs).reduce(0.0) { $0 + Double($1.0 - $1.1) }
            } / Double(max(1, policy.count))
        }

        var meanResponseLength: RunSummary.Pair {
            func length(_ s: [RolloutSample]) -> Double {
                Double(s.reduce(0) { $0 + $1.tokens.count }) / Double(max(1, s.count))
            }
            return .init(sft: length(sft), policy: length(policy))
        }

        var groundTruthQuality: RunSummary.Pair {
            .init(sft: mean(truth.map { $0?.sft }), policy: mean(truth.map { $0?.policy }))
        }

        /// The first `count` pairs as text, for a reader of the logs.
        func examples(_ count: Int) -> [RunEvent.Example] {
            zip(pairs, labels).prefix(count).map {
                .init(prompt: $0.prompt, policy: $0.first, sft: $0.second, preference: $1.probabilityA)
            }
        }

        private func mean(_ values: [Double?]) -> Double? {
            let known = values.compactMap { $0 }
            return known.isEmpty ? nil : known.reduce(0, +) / Double(known.count)
        }
    }

    /// The policy's and the SFT policy's responses to `prompts`, labeled. `sft` reuses responses
    /// of the SFT policy to these prompts (it does not change, so periodic evaluations share them).
    func compare(_ prompts: [String], sft cached: [RolloutSample]? = nil, phase: String) async throws -> Comparison {
        let n = prompts.count
        let ids = (0..<UInt64(n)).map { $0 }
        let seed = settings.run.seed ^ 0x4556_414C
        let policy = try await rollout(
            prompts, sampleIDs: ids, seed: seed, generator: .policy, score: true, phase: "\(phase)-policy")
        var sft = cached ?? []
        if cached == nil {
            sft = try await rollout(
                prompts, sampleIDs: ids, seed: seed, generator: .reference, score: false, phase: "\(phase)-sft")
        }
        let pairs = (0..<n).map {
            LabelingPair(
                id: 1 << 40 + UInt64($0), prompt: prompts[$0], first: text(policy[$0].tokens),
                second: text(sft[$0].tokens))
        }
        let labels = try await label(pairs, phase: "\(phase)-label")
        let truth = pairs.map { pair -> (policy: Double, sft: Double, preference: Double)? in
            guard let qp = task.groundTruthQuality(of: pair.first, prompt: pair.prompt),
                let qs = task.groundTruthQuality(of: pair.second, prompt: pair.prompt),
                let gt = task.groundTruthPreference(pair.first, pair.second, prompt: pair.prompt)
            else { return nil }
            return (qp, qs, gt)
        }
        return Comparison(pairs: pairs, labels: labels, policy: policy, sft: sft, truth: truth)
    }

    /// The final evaluation on every held-out prompt; evaluation.jsonl holds its pairs.
    func evaluate() async throws -> (summary: RunSummary, pairs: [LabelingPair], labels: [PreferenceLabel]) {
        let prompts = task.heldOutPrompts(settings.evaluation.prompts)
        let c = try await compare(prompts, phase: "eval")
        try writeEvaluation(pairs: c.pairs, labels: c.labels, truth: c.truth.map { $0.map { ($0.policy, $0.sft) } })
        record(c, iteration: settings.run.method == .dpo ? nil : settings.rl.iterations)
        var summary = RunSummary()
        summary.winRateVsSFT = c.winRate
        summary.klToSFT = c.kl
        summary.meanResponseLength = c.meanResponseLength
        summary.groundTruthQuality = c.groundTruthQuality
        summary.evaluationPrompts = prompts.count
        return (summary, c.pairs, c.labels)
    }

    /// After RL iteration `iteration` (counting from 1): the policy against SFT on the first
    /// `evaluation.slice` held-out prompts, when `evaluation.every_iterations` says so.
    func evaluateDuringRL(after iteration: Int) async throws {
        let e = settings.evaluation
        guard e.everyIterations > 0, iteration % e.everyIterations == 0, iteration < settings.rl.iterations else {
            return
        }
        let prompts = task.heldOutPrompts(min(e.slice, e.prompts))
        let c = try await compare(prompts, sft: evaluationReference, phase: "rl-eval")
        evaluationReference = c.sft
        record(c, iteration: iteration)
    }

    private func record(_ c: Comparison, iteration: Int?) {
        events.record(
            .evaluation(
                .init(
                    iteration: iteration, prompts: c.pairs.count, winRate: c.winRate, kl: c.kl,
                    responseLength: c.meanResponseLength, groundTruthQuality: c.groundTruthQuality,
                    examples: c.examples(settings.evaluation.examples))))
    }

    /// evaluation.jsonl: each held-out prompt with the policy's and the SFT policy's responses, the
    /// labeler's verdict and the ground-truth qualities, so a user can read what the numbers mean.
    func writeEvaluation(
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
    func alignment(prompts: [String], pairs: [(String, String)], labels: [PreferenceLabel])
        -> RunSummary
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
