import RLAIF
import Foundation

/// What TensorBoard shows of a run: each event of metrics.jsonl as scalars and text at a step.
/// A value, so the mapping is tested without files; `TensorBoardLog` writes what it returns.
public struct TensorBoardProjection: Sendable {
    public enum Value: Sendable, Equatable {
        case scalar(Double)
        /// Markdown, for TensorBoard's text tab.
        case text(String)
    }

    public struct Point: Sendable, Equatable {
        public var tag: String
        public var step: Int64
        public var value: Value
    }

    /// The newest committed optimizer step: the x axis of what is not itself a step.
    private var version: UInt64 = 0
    private var jobsByWorker: [String: Int] = [:]
    private var jobs = 0
    private var alive: Set<String> = []

    /// Driver keys that are positions, not measurements (the step axis already says them).
    static let positions: Set<String> = ["epoch", "iteration", "tokens"]

    public init() {}

    // size: field list
    public mutating func points(for event: RunEvent) -> [Point] {
        func at(_ step: UInt64, _ pairs: [(String, Double?)]) -> [Point] {
            pairs.compactMap { tag, v in v.map { Point(tag: tag, step: Int64(step), value: .scalar($0)) } }
        }
        switch event {
        case .metrics(let m):
            version = max(version, m.version)
            let values = m.values.filter { !Self.positions.contains($0.key) }.sorted { $0.key < $1.key }
            return at(
                m.version, [("\(m.phase)/gradient_norm", m.gradientNorm)] + values.map { ("\(m.phase)/\($0)", $1) })
        case .step(let v, _, _, _):
            version = max(version, v)
            return []
        case .labels(_, let valid, let ambiguous, let invalid, let retries):
            let total = Double(max(1, valid + ambiguous + invalid))
            return at(
                version,
                [
                    ("labeler/ambiguous_fraction", Double(ambiguous) / total),
                    ("labeler/invalid_fraction", Double(invalid) / total), ("labeler/retries", Double(retries)),
                ])
        case .labelerAudit(_, let pairsPerSecond, let audit, let alignment):
            return at(
                version,
                [
                    ("labeler/pairs_per_second", pairsPerSecond), ("labeler/order_agreement", audit.orderAgreement),
                    ("labeler/first_position", audit.firstPosition), ("labeler/alignment", alignment.debiased),
                    ("labeler/single_order_alignment", alignment.singleOrder),
                ])
        case .evaluation(let e):
            let step = UInt64(e.iteration ?? Int(version))
            return at(
                step,
                [
                    ("eval/win_rate_labeler", e.winRate.labeler), ("eval/win_rate_ground_truth", e.winRate.groundTruth),
                    ("eval/kl", e.kl), ("eval/response_length_policy", e.responseLength.policy),
                    ("eval/response_length_sft", e.responseLength.sft),
                    ("eval/ground_truth_quality_policy", e.groundTruthQuality.policy),
                ]) + [Point(tag: "eval/examples", step: Int64(step), value: .text(Self.markdown(e.examples)))]
        case .rewardModelAccuracy(let labeler, let groundTruth, _):
            return at(
                version,
                [("reward/held_out_accuracy_labeler", labeler), ("reward/held_out_accuracy_ground_truth", groundTruth)])
        case .job(_, _, let worker, _, _):
            jobs += 1
            jobsByWorker[worker, default: 0] += 1
            return at(UInt64(jobs), [("cluster/jobs/\(worker)", Double(jobsByWorker[worker]!))])
        case .workerJoined(let worker, _, _, _, _, _):
            alive.insert(worker)
            return at(version, [("cluster/workers", Double(alive.count))])
        case .workerLost(let worker, _):
            alive.remove(worker)
            return at(version, [("cluster/workers", Double(alive.count))])
        default:
            return []
        }
    }

    /// Examples as a table: the prompt, both responses and the labeler's P(policy's is better).
    static func markdown(_ examples: [RunEvent.Example]) -> String {
        func cell(_ s: String) -> String {
            s.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ")
        }
        var lines = ["| prompt | policy | SFT | P(policy better) |", "| --- | --- | --- | --- |"]
        for e in examples {
            let p = e.preference.map { String(format: "%.3f", $0) } ?? "—"
            lines.append("| \(cell(e.prompt)) | \(cell(e.policy)) | \(cell(e.sft)) | \(p) |")
        }
        return lines.joined(separator: "\n")
    }
}
