import Protocol
import Tensor

/// A setting that takes one of a fixed set of words: decoded in one place, with an error that
/// lists the words (`must be ppo or policy_gradient, got "ppx"`), and compared as cases after.
public protocol SettingChoice: RawRepresentable<String>, CaseIterable, Codable, Sendable, CustomStringConvertible {}

extension SettingChoice {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let word = try container.decode(String.self)
        guard let value = Self(rawValue: word) else {
            let words = Self.allCases.map(\.rawValue).joined(separator: " or ")
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "must be \(words), got \"\(word)\"")
        }
        self = value
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    public var description: String { rawValue }
}

/// `model.precision`: how the models' weight products multiply (Float32, or bfloat16 inputs with
/// Float32 sums; master weights, optimizer state and everything else stay Float32).
extension ProductPrecision: SettingChoice {}

/// `workers.local_roles`: what each local worker does (`rlaif worker --role`).
extension Wire.WorkerRole: SettingChoice {}

extension RunSettings {
    /// `run.method`: how the policy is trained after SFT.
    public enum Method: String, SettingChoice {
        /// A reward model on the AI preferences, then RL against it.
        case rlaif
        /// RL with the labeler's 1–10 rating of each response as the reward.
        case direct
        /// Offline, on the AI preference pairs.
        case dpo
    }

    /// `task.kind`: where prompts and demonstrations come from.
    public enum TaskKind: String, SettingChoice {
        case synthetic, jsonl
    }

    /// `task.overlong`: what happens to a prompt or demonstration of the user's data that does
    /// not fit the model's context (see `ContextFit`).
    public enum Overlong: String, SettingChoice {
        /// Stop at load time, naming the file and line.
        case error
        /// Cut it to fit: prompts keep their end, completions their beginning.
        case truncate
        /// Leave the line out.
        case skip
    }

    /// `preferences.source`: which preference pairs the reward model (or DPO) trains on.
    public enum PreferenceSource: String, SettingChoice {
        /// The policy's sampled pairs, judged by the labeler (RLAIF).
        case labeler
        /// The pairs of `task.preferences` only: no rollout or labeling phase.
        case data
        /// The labeler's pairs, then the file's.
        case both
    }

    /// `labeler.kind`: who judges.
    public enum LabelerKind: String, SettingChoice {
        case rubric, openai, command
    }

    /// `rl.algorithm`.
    public enum Algorithm: String, SettingChoice {
        case ppo
        case policyGradient = "policy_gradient"
        /// Critic-free, on groups of `rl.samples_per_prompt` responses: group-normalized
        /// advantages, the clipped ratio, KL to SFT as a loss term (the k3 estimator).
        case grpo
        /// Critic-free: each response's baseline is the mean reward of the others in its group;
        /// KL to SFT in the reward; the clipped ratio.
        case rloo

        /// Needs groups of responses to one prompt (`rl.samples_per_prompt` ≥ 2).
        public var needsGroups: Bool { self == .grpo || self == .rloo }
    }
}
