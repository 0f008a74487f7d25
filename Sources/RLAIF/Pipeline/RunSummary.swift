import Foundation

/// What a run measured, as written to `summary.json` (fractions in [0, 1]; null where the task
/// has no ground truth).
public struct RunSummary: Codable, Sendable {
    public struct WinRate: Codable, Sendable, Equatable {
        public var labeler: Double?
        public var groundTruth: Double?
        public init(labeler: Double? = nil, groundTruth: Double? = nil) {
            self.labeler = labeler
            self.groundTruth = groundTruth
        }
        enum CodingKeys: String, CodingKey {
            case labeler
            case groundTruth = "ground_truth"
        }
    }
    public struct Alignment: Codable, Sendable, Equatable {
        public var debiased: Double?
        public var singleOrder: Double?
        public init(debiased: Double? = nil, singleOrder: Double? = nil) {
            self.debiased = debiased
            self.singleOrder = singleOrder
        }
        enum CodingKeys: String, CodingKey {
            case debiased
            case singleOrder = "single_order"
        }
    }
    public struct Pair: Codable, Sendable, Equatable {
        public var sft: Double?
        public var policy: Double?
        public init(sft: Double? = nil, policy: Double? = nil) {
            self.sft = sft
            self.policy = policy
        }
    }

    public var method = "rlaif"
    /// The RL algorithm (`rl.algorithm`), for the methods that run RL.
    public var rlAlgorithm: String?
    public var winRateVsSFT = WinRate()
    public var labelerAlignment = Alignment()
    public var rewardModelAccuracy = WinRate()
    public var klToSFT: Double = 0
    public var meanResponseLength = Pair()
    public var groundTruthQuality = Pair()
    public var evaluationPrompts = 0
    /// Preference pairs read from `task.preferences` (nil when the labeler's are the only ones).
    public var preferencePairsFromData: Int?
    /// Lines of the user's data cut to fit the context or skipped (`task.overlong`), by key.
    public var linesFittedToContext: [String: Int]?
    public var finalVersion: UInt64 = 0
    /// FNV-1a of every model's final weights: equal across worker counts and failures.
    public var weightsChecksum = ""
    public var wallSeconds: Double = 0

    enum CodingKeys: String, CodingKey {
        case method
        case rlAlgorithm = "rl_algorithm"
        case winRateVsSFT = "win_rate_vs_sft"
        case labelerAlignment = "labeler_alignment"
        case rewardModelAccuracy = "reward_model_accuracy"
        case klToSFT = "kl_to_sft"
        case meanResponseLength = "mean_response_length"
        case groundTruthQuality = "ground_truth_quality"
        case evaluationPrompts = "evaluation_prompts"
        case preferencePairsFromData = "preference_pairs_from_data"
        case linesFittedToContext = "lines_fitted_to_context"
        case finalVersion = "final_version"
        case weightsChecksum = "weights_checksum"
        case wallSeconds = "wall_seconds"
    }

    public func write(to url: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        try encoder.encode(self).write(to: url, options: .atomic)
    }

    public static func read(from url: URL) throws -> RunSummary {
        try JSONDecoder().decode(RunSummary.self, from: Data(contentsOf: url))
    }

    /// The summary as an aligned two-column table.
    /// The summary as a table (the CLI prints it at the end of a run).
    public var table: String {
        let width = rows.map(\.0.count).max()!
        return rows.map { $0.0.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + $0.1 }.joined(
            separator: "\n")
    }

    /// (what, value) for each figure, formatted.
    public var rows: [(String, String)] {
        func f(_ v: Double?) -> String { v.map { String(format: "%.3f", $0) } ?? "—" }
        let fitted = linesFittedToContext.map { lines in
            lines.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        }
        let data =
            (preferencePairsFromData.map { [("preference pairs from data", "\($0)")] } ?? [])
            + (fitted.map { [("lines cut or skipped to fit", $0)] } ?? [])
        return [
            ("method", method + (rlAlgorithm.map { " (\($0))" } ?? "")),
            ("win rate vs SFT (ground truth)", f(winRateVsSFT.groundTruth)),
            ("win rate vs SFT (labeler)", f(winRateVsSFT.labeler)),
            ("labeler alignment, both orders", f(labelerAlignment.debiased)),
            ("labeler alignment, single order", f(labelerAlignment.singleOrder)),
            ("reward model accuracy (labeler)", f(rewardModelAccuracy.labeler)),
            ("reward model accuracy (ground truth)", f(rewardModelAccuracy.groundTruth)),
            ("KL to SFT (nats/response)", f(klToSFT)),
            ("mean response length SFT → policy", "\(f(meanResponseLength.sft)) → \(f(meanResponseLength.policy))"),
            ("ground-truth quality SFT → policy", "\(f(groundTruthQuality.sft)) → \(f(groundTruthQuality.policy))"),
            ("evaluation prompts", "\(evaluationPrompts)"),
        ] + data + [
            ("optimizer steps", "\(finalVersion)"),
            ("weights checksum", weightsChecksum),
            ("wall time", String(format: "%.1f s", wallSeconds)),
        ]
    }
}
