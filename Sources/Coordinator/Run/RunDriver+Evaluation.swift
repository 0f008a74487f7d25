import Foundation
import Models
import Protocol
import RLAIF
import Tensor

/// The final evaluation against the SFT policy.
extension RunDriver {
    // MARK: Evaluation

    func evaluate() async throws -> (summary: RunSummary, pairs: [LabelingPair], labels: [PreferenceLabel]) {
        let prompts = task.heldOutPrompts(settings.evaluation.prompts)
        let n = prompts.count
        let ids = (0..<UInt64(n)).map { $0 }
        let seed = settings.run.seed ^ 0x4556_414C
        let policy = try await rollout(
            prompts, sampleIDs: ids, seed: seed, generator: .policy, score: true, phase: "eval-policy")
        let sft = try await rollout(
            prompts, sampleIDs: ids, seed: seed, generator: .reference, score: false, phase: "eval-sft")
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
            if let p = labels[i].probabilityA {
                labelerWins += p > 0.5 ? 1 : (p < 0.5 ? 0 : 0.5)
            } else {
                labelerWins += 0.5
            }
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
