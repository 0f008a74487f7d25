import Foundation
import Models
import Tensor

/// Where a run's prompts and demonstrations come from, how its responses end, and its ground
/// truth where it has one (the synthetic task does; a user's JSONL data does not).
public protocol TaskData: Sendable {
    /// The run's tokenizer, which every prompt and completion is encoded with.
    var tokenizer: any Tokenizer { get }
    /// SFT demonstrations, in a fixed order.
    func demonstrations() -> [(prompt: String, completion: String)]
    /// The training prompts at `indices` (preference pairs, RL): defined for every index ≥ 0.
    func trainingPrompts(_ indices: Range<Int>) -> [String]
    /// The first `count` held-out prompts (evaluation), fewer when the task has fewer.
    func heldOutPrompts(_ count: Int) -> [String]
    /// Tokens that end a response when sampled; a demonstration is trained to end with them.
    var stopTokens: [Int32] { get }
    /// The tokens a demonstration's completion is trained on (its text, then its ending).
    func completionTokens(_ completion: String) -> [Int32]
    /// The ground truth's quality of a response; nil when the task has no ground truth.
    func groundTruthQuality(of response: String, prompt: String) -> Double?
    /// Which response the ground truth prefers: 1 (first), 0 (second), 0.5 (a tie); nil without one.
    func groundTruthPreference(_ a: String, _ b: String, prompt: String) -> Double?
    /// What reading the data changed (lines cut or skipped to fit the context), for the user.
    var notices: [ContextFit.Notice] { get }
    /// Preference pairs the data brings (`task.preferences`), in file order.
    var preferencePairs: [PreferencePair] { get }
}

extension TaskData {
    public var notices: [ContextFit.Notice] { [] }
    public var preferencePairs: [PreferencePair] { [] }
}

/// One preference of the user's data: a prompt as the model sees it, the reply preferred and the
/// other one. `line` is where it was read, for the run's preferences.jsonl.
public struct PreferencePair: Sendable, Equatable {
    public var prompt: String
    public var chosen: String
    public var rejected: String
    public var line = 0

    public init(prompt: String, chosen: String, rejected: String, line: Int = 0) {
        self.prompt = prompt
        self.chosen = chosen
        self.rejected = rejected
        self.line = line
    }
}

/// The built-in fact-summary task: generated on demand, with its ground-truth rubric.
public struct SyntheticTask: TaskData {
    public let task: FactSummaryTask
    public let demonstrationCount: Int
    public let tokenizer: any Tokenizer

    public init(task: FactSummaryTask, demonstrationCount: Int, tokenizer: any Tokenizer) {
        self.task = task
        self.demonstrationCount = demonstrationCount
        self.tokenizer = tokenizer
    }

    public func demonstrations() -> [(prompt: String, completion: String)] {
        (0..<demonstrationCount).map { task.demonstration($0) }
    }
    public func trainingPrompts(_ indices: Range<Int>) -> [String] { indices.map { task.post(.training, $0).prompt } }
    public func heldOutPrompts(_ count: Int) -> [String] { (0..<count).map { task.post(.heldOut, $0).prompt } }
    /// A summary ends at its period (which is part of the summary) or at end-of-text.
    public var stopTokens: [Int32] { tokenizer.encode(String(FactSummaryTask.summaryEnd)) + [tokenizer.endOfText] }
    public func completionTokens(_ completion: String) -> [Int32] { tokenizer.encode(completion) }
    public func groundTruthQuality(of response: String, prompt: String) -> Double? {
        FactSummaryTask.post(fromPrompt: prompt).map { FactSummaryTask.quality(of: response, for: $0) }
    }
    public func groundTruthPreference(_ a: String, _ b: String, prompt: String) -> Double? {
        FactSummaryTask.post(fromPrompt: prompt).map { FactSummaryTask.preference(a, b, for: $0) }
    }
}

/// A user's data: prompts and demonstrations from JSON Lines files, as text
/// (`{"prompt": …}`, `{"prompt": …, "completion": …}`) or conversations rendered by the
/// checkpoint's chat template (see `DataRecord`). No ground truth: evaluation reports the
/// labeler's judgement only. Responses end with the end-of-text token, which SFT teaches.
public struct JSONLTask: TaskData {
    public struct LoadError: Error, CustomStringConvertible, Equatable, Sendable {
        public let key: String
        public let message: String
        public var description: String { "\(key): \(message)" }
    }

    let training: [String]
    let heldOut: [String]
    let demos: [(prompt: String, completion: String)]
    public let preferencePairs: [PreferencePair]
    let seed: UInt64
    public let tokenizer: any Tokenizer
    public let notices: [ContextFit.Notice]

    /// Reads the files the settings name. Without `held_out_prompts`, the last `heldOutCount`
    /// prompts of `prompts` are held out for evaluation and the rest are trained on.
    public init(settings: RunSettings, tokenizer: any Tokenizer) throws(LoadError) {
        let t = settings.task
        let fit = ContextFit(
            contextLength: settings.model.contextLength, maxNewTokens: settings.model.maxNewTokens,
            policy: t.overlong, tokenizer: tokenizer)
        func read<T: Decodable>(_ type: T.Type, _ key: String, _ path: String) throws(LoadError) -> [(
            line: Int, value: T
        )] {
            let rows: [(line: Int, value: T)]
            do { rows = try JSONLines.numbered(T.self, path: path) } catch {
                throw LoadError(key: key, message: error.description)
            }
            guard !rows.isEmpty else { throw LoadError(key: key, message: "\(path) has no lines") }
            return rows
        }
        var notices: [ContextFit.Notice?] = []
        let renderer = ConversationRenderer(tokenizer: tokenizer)
        func prompts(_ key: String, _ path: String) throws(LoadError) -> [String] {
            var lines: [ContextFit.Line<String>] = []
            for row in try read(DataRecord.self, key, path) {
                lines.append(
                    .init(number: row.line, value: try renderer.prompt(row.value, key: key, at: "\(path):\(row.line)")))
            }
            let (kept, notice) = try fit.prompts(lines, key: key, path: path)
            notices.append(notice)
            return kept
        }
        let all = try prompts("task.prompts", t.prompts)
        if t.heldOutPrompts.isEmpty {
            let held = settings.evaluation.prompts
            guard all.count > held else {
                throw LoadError(
                    key: "task.prompts",
                    message:
                        "\(t.prompts) has \(all.count) usable prompts; holding out evaluation.prompts (\(held)) leaves none to train on"
                )
            }
            training = Array(all.dropLast(held))
            heldOut = Array(all.suffix(held))
        } else {
            training = all
            heldOut = try prompts("task.held_out_prompts", t.heldOutPrompts)
        }
        var demoLines: [ContextFit.Line<(prompt: String, completion: String)>] = []
        for row in try read(DataRecord.self, "task.demonstrations", t.demonstrations) {
            let demo = try renderer.demonstration(
                row.value, key: "task.demonstrations", at: "\(t.demonstrations):\(row.line)")
            demoLines.append(.init(number: row.line, value: demo))
        }
        let (kept, notice) = try fit.demonstrations(demoLines, key: "task.demonstrations", path: t.demonstrations)
        demos = kept
        notices.append(notice)
        preferencePairs = try Self.preferences(t.preferences, fit: fit, renderer: renderer, notices: &notices)
        self.notices = notices.compactMap { $0 }
        seed = settings.run.seed
        self.tokenizer = tokenizer
    }

    /// `task.preferences`' pairs that fit the context (none when the key is unset).
    static func preferences(
        _ path: String, fit: ContextFit, renderer: ConversationRenderer, notices: inout [ContextFit.Notice?]
    ) throws(LoadError) -> [PreferencePair] {
        guard !path.isEmpty else { return [] }
        let key = "task.preferences"
        let rows: [(line: Int, value: DataRecord)]
        do { rows = try JSONLines.numbered(DataRecord.self, path: path) } catch {
            throw LoadError(key: key, message: error.description)
        }
        guard !rows.isEmpty else { throw LoadError(key: key, message: "\(path) has no lines") }
        var lines: [ContextFit.Line<PreferencePair>] = []
        for row in rows {
            var pair = try renderer.preference(row.value, key: key, at: "\(path):\(row.line)")
            pair.line = row.line
            lines.append(.init(number: row.line, value: pair))
        }
        let (kept, notice) = try fit.preferences(lines, key: key, path: path)
        notices.append(notice)
        return kept
    }

    public func demonstrations() -> [(prompt: String, completion: String)] { demos }

    /// Each pass over the training prompts is in its own seeded order, so a run that needs more
    /// prompts than the file has sees them all before any repeats. Each pass's order is drawn
    /// once per call, however many of its prompts are asked for.
    public func trainingPrompts(_ indices: Range<Int>) -> [String] {
        var orders: [Int: [Int]] = [:]
        return indices.map { index in
            let pass = index / training.count
            if orders[pass] == nil {
                var order = Array(0..<training.count)
                var rng = RandomStream(seed: seed, purpose: .promptOrder, step: UInt64(pass))
                for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, rng.next(below: i + 1)) }
                orders[pass] = order
            }
            return training[orders[pass]![index % training.count]]
        }
    }

    public func heldOutPrompts(_ count: Int) -> [String] { Array(heldOut.prefix(count)) }
    public var stopTokens: [Int32] { [tokenizer.endOfText] }
    public func completionTokens(_ completion: String) -> [Int32] {
        tokenizer.encode(completion) + [tokenizer.endOfText]
    }
    public func groundTruthQuality(of response: String, prompt: String) -> Double? { nil }
    public func groundTruthPreference(_ a: String, _ b: String, prompt: String) -> Double? { nil }
}

public enum TaskDataFactory {
    public static func make(_ settings: RunSettings, tokenizer: any Tokenizer) throws(JSONLTask.LoadError)
        -> any TaskData
    {
        switch settings.task.kind {
        case .jsonl: return try JSONLTask(settings: settings, tokenizer: tokenizer)
        case .synthetic:
            return SyntheticTask(
                task: FactSummaryTask(
                    seed: settings.run.seed, dropRate: settings.task.demoDropRate,
                    extraRate: settings.task.demoExtraRate, inventRate: settings.task.demoInventRate),
                demonstrationCount: settings.task.demonstrationCount, tokenizer: tokenizer)
        }
    }
}
