import Foundation
import Logging
import Synchronization
import Models
import Protocol
import Tensor

/// The run's state machine: SFT → rollout → labeling → reward-model training → RL iterations →
/// evaluation (or DPO in place of the reward model and RL). Every stage is jobs and steps on a
/// `TrainingCluster` (worker processes, or replicas in this process), the same code whatever
/// the number of workers; every batch, shuffle and sample is
/// addressed by the run seed, so the same config gives the same weights.
public final class RunDriver: @unchecked Sendable {
    public enum Phase: String, Sendable, CaseIterable {
        case sft, rollout, labeling, rewardModel = "reward_model", rl, dpo, evaluation, done
    }

    let settings: RunSettings
    /// Where jobs and steps run: the scheduler's workers, or replicas in this process.
    let cluster: any TrainingCluster
    let events: EventLog
    let directory: URL
    let logger: Logger
    let quiet: Bool
    let task: any TaskData
    /// Where checkpoints go (nil: none are written).
    let checkpoints: CheckpointStore?
    /// The checkpoint this run continues from, if any.
    let resumeFrom: RunCursor?
    /// The configuration each checkpoint records, for `rlaif resume` (`ClusterConfig.sectionsJSON`).
    let recordedSettings: String
    /// What the next checkpoint will record.
    var cursor: RunCursor
    /// Every label the labeler has given this run (nil: the file could not be opened; labels are
    /// then asked for again after a crash).
    let journal: LabelJournal?
    /// Every answer the labeler has given this run, question by question as each arrived.
    let answers: LabelJournal?
    /// The SFT policy's responses to the evaluation slice, made once for every evaluation during RL.
    var evaluationReference: [RolloutSample]?
    /// The run's tokenizer (the task encodes with it too).
    var tokenizer: any Tokenizer { task.tokenizer }
    private let started = Date()
    private let stopRequested = Mutex(false)

    /// Asks the run to stop at its next checkpoint, which it then writes whatever
    /// `checkpoint.every_steps` says (SIGTERM, Ctrl-C). `run()` throws `RunStopped` after it.
    public func requestStop() { stopRequested.withLock { $0 = true } }
    var isStopRequested: Bool { stopRequested.withLock { $0 } }

    public init(
        settings: RunSettings, cluster: any TrainingCluster, events: EventLog, directory: URL, logger: Logger,
        task: any TaskData, checkpoints: CheckpointStore? = nil, resumeFrom: RunCursor? = nil,
        recordedSettings: String? = nil, quiet: Bool = false
    ) {
        self.settings = settings
        self.cluster = cluster
        self.events = events
        self.directory = directory
        self.logger = logger
        self.quiet = quiet
        self.task = task
        self.checkpoints = checkpoints
        self.resumeFrom = resumeFrom
        self.recordedSettings = recordedSettings ?? settings.json()
        journal = try? LabelJournal(directory: directory)
        answers = try? LabelJournal(directory: directory, fileName: LabelJournal.answerFileName)
        cursor =
            resumeFrom
            ?? RunCursor(phase: Phase.sft.rawValue, done: 0, version: 0, metricsBytes: 0, weightsChecksum: "")
    }

    func say(_ line: String) { if !quiet { print(line) } }

    func phase(_ p: Phase) {
        events.record(.phase(p.rawValue))
    }

    // MARK: The run

    /// The preference dataset: prompts, the sampled pairs (as text, and as tokens where known)
    /// and the labeler's verdicts.
    typealias Preferences = (
        prompts: [String], pairs: [(String, String)], labels: [PreferenceLabel], tokens: [([Int32], [Int32])]?
    )

    /// Where a resumed run picks up: phases before the checkpoint's are skipped, and so are the
    /// steps done in that one.
    struct ResumePoint {
        let at: Int
        let done: Int
        func shouldRun(_ p: Phase) -> Bool { at <= RunDriver.order(p.rawValue) }
        func skip(_ p: Phase) -> Int { RunDriver.order(p.rawValue) == at ? done : 0 }
    }

    /// Runs every phase and returns the summary (also written to summary.json).
    public func run() async throws -> RunSummary {
        if let answers { await cluster.journalAnswers(in: answers) }
        let resume = ResumePoint(at: Self.order(resumeFrom?.phase ?? Phase.sft.rawValue), done: resumeFrom?.done ?? 0)
        if resume.shouldRun(.sft) {
            begin(.sft, resume)
            try await supervisedFineTuning(demonstrations(), skip: resume.skip(.sft))
            try await checkpoint(next: .rollout, done: 0)
        }
        let preferences = try await preferenceDataset()
        try await optimizePolicy(preferences, resume)
        return try await finish(preferences)
    }

    /// A phase's event, unless a resumed run is inside it (its event is already logged).
    private func begin(_ p: Phase, _ resume: ResumePoint) { if resume.skip(p) == 0 { phase(p) } }

    /// The saved preference dataset, or a new one from rollout and labeling and/or the user's
    /// pairs (`preferences.source`); nil for direct RLAIF, whose labeler rates each RL response.
    private func preferenceDataset() async throws -> Preferences? {
        if let saved = resumeFrom?.preferences {
            let tokens = saved.firstTokens.flatMap { a in saved.secondTokens.map { Array(zip(a, $0)) } }
            return (saved.prompts, Array(zip(saved.first, saved.second)), saved.labels, tokens)
        }
        guard settings.run.method != .direct else { return nil }
        let source = settings.preferences.source
        var dataset: Preferences = ([], [], [], [])
        if source != .data {
            phase(.rollout)
            dataset.prompts = task.trainingPrompts(0..<settings.preferences.pairs)
            let sampled = try await samplePairs(dataset.prompts)
            (dataset.pairs, dataset.tokens) = (sampled.text, sampled.tokens)
            phase(.labeling)
            dataset.labels = try await label(
                dataset.pairs.enumerated().map { i, p in
                    LabelingPair(id: UInt64(i), prompt: dataset.prompts[i], first: p.0, second: p.1)
                },
                phase: "labeling")
        }
        let labeled = dataset.labels
        if source != .labeler { appendDataPairs(&dataset) }
        try writePreferences(prompts: dataset.prompts, pairs: dataset.pairs, labels: dataset.labels)
        // Before the checkpoint: a resumed run asks the labeler again.
        if source != .data { try requireYield(LabelYield(preferences: labeled), phase: "labeling") }
        let tokens = dataset.tokens ?? []
        cursor.preferences = .init(
            prompts: dataset.prompts, first: dataset.pairs.map(\.0), second: dataset.pairs.map(\.1),
            labels: dataset.labels, firstTokens: tokens.map(\.0), secondTokens: tokens.map(\.1))
        try await checkpoint(next: settings.run.method == .dpo ? .dpo : .rewardModel, done: 0)
        return dataset
    }

    /// DPO on the preferences; or the reward model and RL against it; or (direct) RL on ratings.
    private func optimizePolicy(_ preferences: Preferences?, _ resume: ResumePoint) async throws {
        switch (settings.run.method, preferences) {
        case (.dpo, let p?):
            guard resume.shouldRun(.dpo) else { return }
            begin(.dpo, resume)
            try await dpo(prompts: p.prompts, pairs: p.pairs, labels: p.labels, skip: resume.skip(.dpo))
        case (_, let p?):
            if resume.shouldRun(.rewardModel) {
                begin(.rewardModel, resume)
                let accuracy = try await trainRewardModel(p, skip: resume.skip(.rewardModel))
                (cursor.rewardAccuracyLabeler, cursor.rewardAccuracyGroundTruth) = accuracy
                try await checkpoint(next: .rl, done: 0)
            }
            guard resume.shouldRun(.rl) else { return }
            begin(.rl, resume)
            try await reinforce(direct: false, skip: resume.skip(.rl))
        case (_, nil):
            guard resume.shouldRun(.rl) else { return }
            begin(.rl, resume)
            try await reinforce(direct: true, skip: resume.skip(.rl))
        }
        try await checkpoint(next: .evaluation, done: 0)
    }

    /// Evaluation, the summary and the exported models.
    private func finish(_ preferences: Preferences?) async throws -> RunSummary {
        phase(.evaluation)
        let evaluation = try await evaluate()
        var summary = evaluation.summary
        summary.rewardModelAccuracy = .init(
            labeler: cursor.rewardAccuracyLabeler, groundTruth: cursor.rewardAccuracyGroundTruth)
        // Alignment on the preference pairs, or (direct RLAIF) on the evaluation's pairs.
        summary.labelerAlignment =
            preferences.map { alignment(prompts: $0.prompts, pairs: $0.pairs, labels: $0.labels) }
            ?? alignment(
                prompts: evaluation.pairs.map(\.prompt), pairs: evaluation.pairs.map { ($0.first, $0.second) },
                labels: evaluation.labels)
        summary.wallSeconds = Date().timeIntervalSince(started)
        summary.method = settings.run.method.rawValue
        summary.rlAlgorithm = settings.run.method == .dpo ? nil : settings.rl.algorithm.rawValue
        if settings.preferences.source != .labeler { summary.preferencePairsFromData = task.preferencePairs.count }
        if !task.notices.isEmpty {
            summary.linesFittedToContext = Dictionary(
                task.notices.map { ($0.key, $0.lines.count) }, uniquingKeysWith: +)
        }
        summary.finalVersion = await cluster.version
        summary.weightsChecksum = cursor.weightsChecksum
        // The final policy and reward model, for transformers.
        if await cluster.version > 0 {
            let final = try await cluster.currentSnapshot()
            summary.weightsChecksum = Self.checksum(final)
            do {
                try ModelExport.write(
                    weights: final, settings: settings, to: directory.appendingPathComponent("models"))
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

    /// Saves the run's state with `done` units of phase `next` finished (no-op before the first
    /// step); then, when a stop was asked for, ends the run with `RunStopped`.
    func checkpoint(next: Phase, done: Int) async throws {
        let version = await cluster.version
        guard let checkpoints, version > 0 else {
            if isStopRequested { throw RunStopped(checkpoint: nil, phase: next.rawValue) }
            return
        }
        let weights = try await cluster.currentSnapshot()
        cursor.weightsChecksum = Self.checksum(weights)
        cursor.phase = next.rawValue
        cursor.done = done
        cursor.version = version
        cursor.metricsBytes = events.offset
        let written: URL
        do {
            written = try checkpoints.write(Checkpoint(cursor: cursor, settings: recordedSettings, weights: weights))
        } catch {
            throw RunError(message: error.message)
        }
        events.record(
            .checkpoint(directory: written.lastPathComponent, phase: next.rawValue, done: done, version: version))
        if isStopRequested { throw RunStopped(checkpoint: written.lastPathComponent, phase: next.rawValue) }
    }

    /// `ModelReplica.checksum()` of the replica a snapshot restores.
    static func checksum(_ weights: [Wire.Weights]) -> String {
        ModelReplica.checksum(of: weights.compactMap(ModelReplica.ModelState.init))
    }

    /// After each step of a loop: a checkpoint every `checkpoint.every_steps` optimizer steps.
    func periodicCheckpoint(_ p: Phase, done: Int) async throws {
        let every = settings.checkpoint.everySteps
        let version = await cluster.version
        let due = every > 0 && version % UInt64(every) == 0
        guard due || isStopRequested else { return }
        try await checkpoint(next: p, done: done)
    }
}
