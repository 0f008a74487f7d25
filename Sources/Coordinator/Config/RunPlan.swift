import Foundation
import RLAIF

/// What a run will do, from its settings alone: the phases with their step counts, memory per
/// worker and the size of a checkpoint. `rlaif launch --dry-run` prints it.
public struct RunPlan: Sendable {
    public let settings: RunSettings
    /// SFT demonstrations (the task's count; for JSONL data, the lines that fit).
    public let demonstrations: Int
    /// Preference pairs of the user's data that fit (`task.preferences`, when read).
    public let dataPairs: Int

    public init(settings: RunSettings, demonstrations: Int, dataPairs: Int = 0) {
        self.settings = settings
        self.demonstrations = demonstrations
        self.dataPairs = dataPairs
    }

    static func steps(_ items: Int, batch: Int, epochs: Int) -> Int { epochs * ((items + batch - 1) / max(1, batch)) }

    /// One line per phase, in run order.
    public var phases: [String] {
        let s = settings, sampled = s.preferences.source == .data ? 0 : s.preferences.pairs
        let pairs = sampled + (s.preferences.source == .labeler ? 0 : dataPairs)
        let asked = sampled * (s.labeler.bothOrders ? 2 : 1)
        // A tenth of the pairs is held out; the rest train when their label is valid.
        let trainPairs = pairs - (pairs + 9) / 10
        var lines = [
            "sft: \(Self.steps(demonstrations, batch: s.sft.batchSize, epochs: s.sft.epochs)) steps "
                + "(\(s.sft.epochs) epochs of \(demonstrations) demonstrations)"
        ]
        if s.run.method != .direct && sampled > 0 {
            lines.append("rollout: \(2 * sampled) responses to \(sampled) prompts")
            lines.append("labeling: \(asked) questions to the \(s.labeler.kind) labeler")
        }
        if s.run.method != .direct && s.preferences.source != .labeler {
            lines.append("preference data: \(dataPairs) pairs of \(s.task.preferences)")
        }
        let rlSteps = s.rl.iterations * (s.rl.algorithm == .ppo ? s.rl.ppoEpochs : 1)
        switch s.run.method {
        case .rlaif:
            let rm = Self.steps(trainPairs, batch: s.rewardModel.batchSize, epochs: s.rewardModel.epochs)
            lines.append("reward model: at most \(rm) steps (its valid labels of \(trainPairs) training pairs)")
            lines.append("rl: \(s.rl.iterations) iterations of \(s.rl.promptsPerIteration) prompts, \(rlSteps) steps")
        case .direct:
            lines.append(
                "rl: \(s.rl.iterations) iterations of \(s.rl.promptsPerIteration) prompts, each rated by the labeler, "
                    + "\(rlSteps) steps")
        case .dpo:
            let steps = Self.steps(pairs, batch: s.rewardModel.batchSize, epochs: s.rl.dpoEpochs)
            lines.append("dpo: at most \(steps) steps (its valid labels of \(pairs) pairs)")
        }
        lines.append("evaluation: \(s.evaluation.prompts) held-out prompts, policy against SFT")
        return lines
    }

    /// Bytes of one checkpoint: the policy and reward model with their AdamW moments, and the
    /// SFT reference (the preference data is small beside them).
    public var checkpointBytes: Double {
        let parameters = (try? RunModel.parameterCount(settings)) ?? settings.gpt2Config.parameterCount
        return Double(parameters) * 4 * 7
    }

    public static func size(_ bytes: Double) -> String {
        bytes >= Double(1 << 30)
            ? String(format: "%.1f GiB", bytes / Double(1 << 30)) : String(format: "%.1f MiB", bytes / Double(1 << 20))
    }
}
