import Tensor
import Foundation
import Models

/// The method's settings: the `run`, task, model, labeler and training sections of `cluster.yaml`
/// (where and how the cluster runs is the coordinator's `Deployment`). Every field has a
/// default, so an empty file is a complete small run.
///
/// The coordinator reads it from YAML (`Coordinator.ClusterConfig`) and hands it, as JSON, to each
/// worker in its welcome: workers build their models and labelers from the same values.
public struct RunSettings: Codable, Sendable, Equatable {
    public var run = Run()
    public var task = TaskSection()
    public var model = ModelSection()
    public var sft = Optimization(epochs: 6, batchSize: 32, microBatch: 8, learningRate: 1e-3)
    public var labeler = LabelerSection()
    public var preferences = Preferences()
    public var rewardModel = Optimization(epochs: 3, batchSize: 32, microBatch: 8, learningRate: 5e-4)
    public var rl = RL()
    public var evaluation = Evaluation()
    public var checkpoint = CheckpointSection()

    public init() {}

    public struct CheckpointSection: Codable, Sendable, Equatable {
        /// A checkpoint every this many optimizer steps (RL: at the next iteration end), and at
        /// each phase end; 0 writes phase-end checkpoints only.
        public var everySteps = 200
        /// How many checkpoints are kept (the newest).
        public var keep = 3
    }

    public struct Run: Codable, Sendable, Equatable {
        /// Names the run directory (`runs/<name>`).
        public var name = "rlaif-small"
        /// The root of every random stream of the run.
        public var seed: UInt64 = 1234
        /// Where the run writes metrics, preferences and the summary ("" = runs/<name>).
        public var directory = ""
        /// What the policy is trained with after SFT (see `Method`).
        public var method = Method.rlaif
    }

    public struct TaskSection: Codable, Sendable, Equatable {
        /// `synthetic` (the built-in fact-summary task, with ground truth) or `jsonl`.
        public var kind = TaskKind.synthetic
        /// For `jsonl`: files of {"prompt": …} and {"prompt": …, "completion": …} lines.
        public var prompts = ""
        public var demonstrations = ""
        /// For `jsonl`: evaluation prompts; "" holds out the last evaluation.prompts of `prompts`.
        public var heldOutPrompts = ""
        /// For `jsonl`: preference pairs ({"prompt", "chosen", "rejected"}) that `preferences.source`
        /// trains the reward model or DPO on, instead of or beside the labeler's.
        public var preferences = ""
        /// For `jsonl`: a line that does not fit the model's context is an error, cut or skipped.
        public var overlong = Overlong.error
        /// The SHA-256 of each data file, set by rlaif when the config is read: a resume refuses
        /// files that changed.
        public var dataDigests: [DataDigest] = []
        /// Synthetic task sizes.
        public var demonstrationCount = 8192
        /// Demonstration flaws: each key fact left out, each minor fact put in, an invented fact.
        public var demoDropRate = 0.3
        public var demoExtraRate = 0.15
        public var demoInventRate = 0.1
    }

    /// A data file's SHA-256, by the key that names the file (`task.prompts`, …).
    public struct DataDigest: Codable, Sendable, Equatable {
        public var key: String
        public var sha256: String
        public init(key: String, sha256: String) {
            self.key = key
            self.sha256 = sha256
        }
    }

    public struct ModelSection: Codable, Sendable, Equatable {
        public var width = 128
        public var layers = 3
        public var heads = 4
        public var contextLength = 32
        /// Longest response sampled.
        public var maxNewTokens = 10
        public var temperature = 1.0
        /// A Hugging Face model directory the policy, reference and reward model start from, with
        /// its tokenizer ("" = a fresh byte-level GPT-2 of width × layers × heads).
        public var initDirectory = ""
        /// Recompute each block's activations in backward instead of keeping them: less memory
        /// for the same gradients, more time per step (docs/PERFORMANCE.md).
        public var gradientCheckpointing = false
        /// `bf16`: the weights' products take bfloat16 inputs and sum in Float32 (twice the
        /// arithmetic rate on AVX-512 BF16, half the bytes a decode step reads).
        public var precision = ProductPrecision.float32
        /// The SHA-256 of `initDirectory`'s files, set by rlaif when the config is read: a resume
        /// and every worker refuse a checkpoint that changed.
        public var initDigest = ""

        enum CodingKeys: String, CodingKey {
            case width, layers, heads, contextLength, maxNewTokens, temperature, gradientCheckpointing, precision
            case initDirectory = "init", initDigest
        }
    }

    public struct Optimization: Codable, Sendable, Equatable {
        public var epochs: Int
        /// Sequences (or pairs) per optimizer step, over all workers.
        public var batchSize: Int
        /// Sequences (or pairs) per gradient job's forward pass; fixed, so results do not depend
        /// on how many workers share a step.
        public var microBatch: Int
        public var learningRate: Double
        public var weightDecay = 0.0
        public var clipNorm = 1.0

        public init(
            epochs: Int, batchSize: Int, microBatch: Int, learningRate: Double, weightDecay: Double = 0,
            clipNorm: Double = 1
        ) {
            self.epochs = epochs
            self.batchSize = batchSize
            self.microBatch = microBatch
            self.learningRate = learningRate
            self.weightDecay = weightDecay
            self.clipNorm = clipNorm
        }
    }

    public struct LabelerSection: Codable, Sendable, Equatable {
        /// `rubric` (the synthetic task's stand-in for an AI labeler), `openai` or `command`.
        public var kind = LabelerKind.rubric
        /// Ask each pair in both orders and average (position-bias mitigation).
        public var bothOrders = true
        /// Preferences closer to 0.5 than this are counted as ambiguous and kept out of training.
        public var ambiguityMargin = 0.05
        /// Rubric stand-in flaws: score noise, a bonus for the first response, a bonus per character.
        public var noise = 0.6
        public var positionBias = 1.2
        public var lengthBias = 0.15
        /// Fraction of answers the stand-in garbles (counted invalid, retried, then ambiguous).
        public var invalidRate = 0.02
        /// `openai`: endpoint base URL, model, the environment variable holding the API key.
        public var url = ""
        public var model = ""
        public var apiKeyEnv = "OPENAI_API_KEY"
        public var chainOfThought = false
        public var concurrency = 4
        public var retries = 3
        public var timeoutMs = 30_000
        /// A labeling phase with fewer valid labels than this fraction stops the run with the
        /// labeler's commonest failure (a run with no valid label always stops).
        public var minValidFraction = 0.2
        /// `command`: the program (run through /bin/sh) reading pairs on stdin.
        public var command = ""
        /// `openai`: the rubric shown before each question ("" = the task's own) and a JSONL file
        /// of solved examples ({"prompt", "first", "second", "preferred": 1|2, "rationale"?}).
        public var preamble = ""
        public var fewShot = ""
        /// `openai`: the run's budget over all workers (0 = none), in requests (retries count)
        /// and tokens (the server's count) per window, `budget_window_ms` (a minute).
        public var requestsPerMinute = 0
        public var tokensPerMinute = 0
        public var budgetWindowMs = 60_000

        /// The budget's limits; nil when neither is set.
        public var budget: LabelBudget.Limits? {
            let limits = LabelBudget.Limits(
                requests: requestsPerMinute > 0 ? requestsPerMinute : nil,
                tokens: tokensPerMinute > 0 ? tokensPerMinute : nil, window: .milliseconds(budgetWindowMs))
            return limits.isUnlimited ? nil : limits
        }
    }

    public struct Preferences: Codable, Sendable, Equatable {
        /// Where the preference pairs come from (see `PreferenceSource`).
        public var source = PreferenceSource.labeler
        /// Prompts whose two sampled responses the labeler compares.
        public var pairs = 8192
        /// Pairs per labeling job, prompts per rollout job.
        public var jobSize = 64
    }

    public struct RL: Codable, Sendable, Equatable {
        /// `ppo`, `policy_gradient` (the paper's: one update per batch, value baseline), or the
        /// critic-free `grpo` and `rloo`.
        public var algorithm = Algorithm.ppo
        public var iterations = 80
        public var promptsPerIteration = 64
        /// Responses sampled per prompt in each iteration (a group; `grpo` and `rloo` need ≥ 2).
        public var samplesPerPrompt = 1
        /// Rollouts for iteration i are made by the policy of iteration i − lag (0: the current
        /// one), so a rollout can be made while the iteration before it trains; the clipped
        /// importance ratio of `ppo`, `grpo` and `rloo` corrects for the older policy.
        public var rolloutLag = 0
        public var microBatch = 16
        public var learningRate = 2.5e-4
        /// KL penalty towards the SFT policy.
        public var klBeta = 0.05
        /// Adaptive KL control: the KL per response β is steered towards (0 = β stays `kl_beta`),
        /// and the responses over which a full correction is spread.
        public var klTarget = 0.0
        public var klHorizon = 10_000.0
        public var ppoClip = 0.2
        public var ppoEpochs = 2
        public var gaeLambda = 0.95
        public var valueCoefficient = 0.5
        public var normalizeRewards = false
        public var clipNorm = 1.0
        /// DPO: β and epochs over the preference dataset.
        public var dpoBeta = 0.1
        public var dpoEpochs = 4
        /// DPO's step size: offline steps on a fixed dataset tolerate a larger one than PPO's.
        public var dpoLearningRate = 0.001
    }

    public struct Evaluation: Codable, Sendable, Equatable {
        /// Held-out prompts on which the final policy meets the SFT policy.
        public var prompts = 512
        /// RL iterations between evaluations on the first `slice` held-out prompts (0: none).
        public var everyIterations = 10
        public var slice = 64
        /// Pairs (prompt and both responses) each evaluation logs as text.
        public var examples = 3
    }
}

extension RunSettings {
    /// A constraint the values break, as (dotted key, what is wrong); nil when all hold.
    // size: field list
    public func violation() -> (key: String, message: String)? {
        let positive = SettingCheck.positive, fraction = SettingCheck.fraction
        let positiveRate = SettingCheck.positiveNumber, nonNegative = SettingCheck.nonNegative
        let checks: [(String, String)?] = [
            task.kind == .jsonl && task.prompts.isEmpty ? ("task.prompts", "is required by task.kind jsonl") : nil,
            task.kind == .jsonl && task.demonstrations.isEmpty
                ? ("task.demonstrations", "is required by task.kind jsonl") : nil,
            preferences.source != .labeler && task.preferences.isEmpty
                ? ("task.preferences", "is required by preferences.source \(preferences.source)") : nil,
            preferences.source == .labeler && !task.preferences.isEmpty
                ? (
                    "preferences.source",
                    "is labeler, so task.preferences is not read: say data (train on its pairs) or both (beside AI labels)"
                ) : nil,
            preferences.source != .labeler && task.kind != .jsonl
                ? ("task.preferences", "is read for task.kind jsonl only") : nil,
            preferences.source != .labeler && run.method == .direct
                ? ("preferences.source", "must be labeler for run.method direct, which trains on ratings, not pairs")
                : nil,
            labeler.kind == .rubric && task.kind != .synthetic
                ? (
                    "labeler.kind",
                    "rubric judges the synthetic task only; use openai or command for task.kind \(task.kind)"
                )
                : nil,
            labeler.kind == .openai && labeler.url.isEmpty
                ? ("labeler.url", "is required by labeler.kind openai (e.g. http://127.0.0.1:8000/v1)") : nil,
            labeler.kind == .openai && labeler.model.isEmpty
                ? ("labeler.model", "is required by labeler.kind openai") : nil,
            labeler.kind == .command && labeler.command.isEmpty
                ? ("labeler.command", "is required by labeler.kind command") : nil,
            positive("model.width", model.width), positive("model.layers", model.layers),
            positive("model.heads", model.heads),
            model.width % max(model.heads, 1) == 0
                ? nil : ("model.width", "must be a multiple of model.heads (\(model.heads))"),
            model.contextLength >= 16 ? nil : ("model.context_length", "must be at least 16"),
            positive("model.max_new_tokens", model.maxNewTokens),
            model.maxNewTokens < model.contextLength
                ? nil
                : ("model.max_new_tokens", "must be less than model.context_length (\(model.contextLength))"),
            positiveRate("model.temperature", model.temperature),
            positive("task.demonstration_count", task.demonstrationCount),
            fraction("task.demo_drop_rate", task.demoDropRate), fraction("task.demo_extra_rate", task.demoExtraRate),
            fraction("task.demo_invent_rate", task.demoInventRate),
            model.initDirectory.isEmpty || sft.epochs != 0
                ? positive("sft.epochs", sft.epochs) : nil,  // 0 skips SFT for a checkpoint that is tuned already
            positive("sft.batch_size", sft.batchSize),
            positive("sft.micro_batch", sft.microBatch),
            positiveRate("sft.learning_rate", sft.learningRate), positiveRate("sft.clip_norm", sft.clipNorm),
            nonNegative("sft.weight_decay", sft.weightDecay),
            positiveRate("reward_model.learning_rate", rewardModel.learningRate),
            positiveRate("reward_model.clip_norm", rewardModel.clipNorm),
            nonNegative("reward_model.weight_decay", rewardModel.weightDecay),
            positiveRate("rl.learning_rate", rl.learningRate), positiveRate("rl.clip_norm", rl.clipNorm),
            nonNegative("rl.value_coefficient", rl.valueCoefficient), positiveRate("rl.dpo_beta", rl.dpoBeta),
            positive("reward_model.epochs", rewardModel.epochs),
            positive("reward_model.batch_size", rewardModel.batchSize),
            positive("reward_model.micro_batch", rewardModel.microBatch),
            positive("preferences.pairs", preferences.pairs), positive("preferences.job_size", preferences.jobSize),
            fraction("labeler.ambiguity_margin", labeler.ambiguityMargin),
            fraction("labeler.invalid_rate", labeler.invalidRate),
            fraction("labeler.min_valid_fraction", labeler.minValidFraction),
            nonNegative("labeler.noise", labeler.noise),
            positive("labeler.concurrency", labeler.concurrency),
            labeler.retries >= 0 ? nil : ("labeler.retries", "must not be negative"),
            positive("labeler.timeout_ms", labeler.timeoutMs),
            labeler.requestsPerMinute >= 0
                ? nil : ("labeler.requests_per_minute", "must not be negative (0: no limit)"),
            labeler.tokensPerMinute >= 0 ? nil : ("labeler.tokens_per_minute", "must not be negative (0: no limit)"),
            positive("labeler.budget_window_ms", labeler.budgetWindowMs),
            labeler.budget != nil && labeler.kind != .openai
                ? (
                    "labeler.requests_per_minute",
                    "a budget meters the openai labeler's requests; labeler.kind is \(labeler.kind)"
                )
                : nil,
            positive("rl.iterations", rl.iterations), positive("rl.prompts_per_iteration", rl.promptsPerIteration),
            positive("rl.micro_batch", rl.microBatch), positive("rl.ppo_epochs", rl.ppoEpochs),
            positive("rl.samples_per_prompt", rl.samplesPerPrompt),
            rl.algorithm.needsGroups && rl.samplesPerPrompt < 2
                ? ("rl.samples_per_prompt", "must be at least 2 for rl.algorithm \(rl.algorithm) (groups of responses)")
                : nil,
            rl.rolloutLag >= 0 ? nil : ("rl.rollout_lag", "must not be negative, got \(rl.rolloutLag)"),
            rl.rolloutLag > 0 && rl.algorithm == .policyGradient
                ? (
                    "rl.rollout_lag",
                    "needs an importance ratio to correct for the older policy: use rl.algorithm ppo, grpo or rloo"
                ) : nil,
            nonNegative("rl.kl_beta", rl.klBeta),
            nonNegative("rl.kl_target", rl.klTarget),
            positiveRate("rl.kl_horizon", rl.klHorizon),
            fraction("rl.gae_lambda", rl.gaeLambda), fraction("rl.ppo_clip", rl.ppoClip),
            positive("rl.dpo_epochs", rl.dpoEpochs),
            checkpoint.everySteps >= 0 ? nil : ("checkpoint.every_steps", "must not be negative"),
            positive("checkpoint.keep", checkpoint.keep),
            positiveRate("rl.dpo_learning_rate", rl.dpoLearningRate),
            positive("evaluation.prompts", evaluation.prompts),
            nonNegative("evaluation.every_iterations", Double(evaluation.everyIterations)),
            positive("evaluation.slice", evaluation.slice),
            nonNegative("evaluation.examples", Double(evaluation.examples)),
        ]
        return SettingCheck.first(checks)
    }

    /// The run directory: the configured one, else runs/<name>.
    public var runDirectory: String { run.directory.isEmpty ? "runs/\(run.name)" : run.directory }

}

/// Settings sections as JSON with cluster.yaml's snake_case keys (`reward_model.learning_rate`),
/// sorted: what workers are sent and what run directories and checkpoints record.
public protocol SettingsSections: Codable {}

extension SettingsSections {
    public func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return String(decoding: try! encoder.encode(self), as: UTF8.self)
    }

    /// Reads `json()`'s form; sections of other types in the same object are ignored.
    public static func fromJSON(_ text: String) throws -> Self {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(Self.self, from: Data(text.utf8))
    }
}

extension RunSettings: SettingsSections {}

/// The checks every settings section makes of its values, and the one way they are reported.
public enum SettingCheck {
    public static func positive(_ key: String, _ v: Int) -> (String, String)? {
        v >= 1 ? nil : (key, "must be at least 1, got \(v)")
    }

    public static func positiveNumber(_ key: String, _ v: Double) -> (String, String)? {
        v > 0 && v.isFinite ? nil : (key, "must be a positive number, got \(v)")
    }

    public static func nonNegative(_ key: String, _ v: Double) -> (String, String)? {
        v >= 0 && v.isFinite ? nil : (key, "must not be negative, got \(v)")
    }

    public static func fraction(_ key: String, _ v: Double) -> (String, String)? {
        (0...1).contains(v) ? nil : (key, "must be between 0 and 1, got \(v)")
    }

    /// The first check that failed, as (dotted key, what is wrong).
    public static func first(_ checks: [(String, String)?]) -> (key: String, message: String)? {
        checks.compactMap { $0 }.first.map { (key: $0.0, message: $0.1) }
    }
}
