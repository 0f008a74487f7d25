import Foundation
import Models
import Protocol
import Tensor

/// Rollouts and AI labeling through the cluster.
extension RunDriver {
    // MARK: Rollout and labeling

    /// Samples from `generator` for each prompt; sample ids address the random streams.
    func rollout(
        _ prompts: [String], sampleIDs: [UInt64], seed: UInt64, generator: ModelReplica.Role, score: Bool,
        phase: String
    ) async throws -> [RolloutSample] {
        let jobs = rolloutJobs(prompts, sampleIDs: sampleIDs, seed: seed, generator: generator, score: score)
        let progress = Progress(phase: phase, total: jobs.count, quiet: quiet)
        let outputs = try await cluster.runJobs(jobs)
        progress.update(jobs.count)
        return try rolloutSamples(outputs)
    }

    /// Rollout jobs of `preferences.job_size` prompts each.
    func rolloutJobs(
        _ prompts: [String], sampleIDs: [UInt64], seed: UInt64, generator: ModelReplica.Role, score: Bool
    ) -> [Job] {
        let size = settings.preferences.jobSize
        return stride(from: 0, to: prompts.count, by: size).map { start -> Job in
            let range = start..<min(start + size, prompts.count)
            let spec = RolloutSpec(
                prompts: Array(prompts[range]), sampleIDs: Array(sampleIDs[range]), seed: seed,
                temperature: settings.model.temperature, maxNewTokens: settings.model.maxNewTokens,
                generator: generator, score: score, stopTokens: task.stopTokens)
            return .rollout(spec)
        }
    }

    func rolloutSamples(_ outputs: [JobOutput]) throws -> [RolloutSample] {
        try outputs.flatMap { output -> [RolloutSample] in
            guard case .samples(let samples) = output else { throw JobOutput.mismatch("rollout samples", output) }
            return samples
        }
    }

    func text(_ tokens: [Int32]) -> String {
        tokenizer.decode(tokens.filter { $0 != tokenizer.endOfText })
    }

    /// Two responses to each prompt, as text (what the labeler judges) and as sampled tokens.
    func samplePairs(_ prompts: [String]) async throws -> (text: [(String, String)], tokens: [([Int32], [Int32])]) {
        let doubled = prompts.flatMap { [$0, $0] }
        let ids = (0..<UInt64(doubled.count)).map { $0 }
        let samples = try await rollout(
            doubled, sampleIDs: ids, seed: settings.run.seed ^ 0x5052_4546, generator: .policy, score: false,
            phase: "rollout")
        let tokens = stride(from: 0, to: samples.count, by: 2).map { (samples[$0].tokens, samples[$0 + 1].tokens) }
        return (tokens.map { (text($0.0), text($0.1)) }, tokens)
    }

    /// Labeling jobs of `preferences.job_size` questions each (pairs or ratings), on any worker;
    /// one answer per question, in order (`answers` takes each job's output apart). Questions
    /// the label journal has answered are not asked again; each job's answers are journaled as
    /// they arrive.
    func runLabeling<Question: Encodable & Sendable, Answer: Codable & Sendable>(
        _ questions: [Question], phase: String, spec: ([Question]) -> LabelingSpec,
        answers: @escaping @Sendable (JobOutput) throws -> [Answer]
    ) async throws -> [Answer] {
        let journal = self.journal
        let keys = questions.map { LabelJournal.key($0, phase: phase) }
        var found: [Answer?] = keys.map { key in journal?.answer(key, as: Answer.self) }
        let asked = found.indices.filter { found[$0] == nil }
        if asked.count < questions.count {
            events.record(.labelsFromJournal(phase: phase, count: questions.count - asked.count))
        }
        if !asked.isEmpty {
            events.record(.labelsRequested(phase: phase, questions: asked.count, journaled: journal?.count ?? 0))
        }
        let size = settings.preferences.jobSize
        let chunks = stride(from: 0, to: asked.count, by: size).map { Array(asked[$0..<min($0 + size, asked.count)]) }
        let jobs = chunks.map { chunk in Job.labeling(spec(chunk.map { questions[$0] })) }
        let progress = Progress(phase: phase, total: jobs.count, quiet: quiet)
        let outputs = try await cluster.runJobs(jobs) { index, output in
            guard let journal, let got = try? answers(output), got.count == chunks[index].count else { return }
            journal.record(zip(chunks[index], got).map { (keys[$0], $1) })
        }
        progress.update(jobs.count)
        for (chunk, output) in zip(chunks, outputs) {
            let got = try answers(output)
            guard got.count == chunk.count else {
                throw RunError(message: "\(phase) job returned \(got.count) answers for \(chunk.count) questions")
            }
            for (i, answer) in zip(chunk, got) { found[i] = answer }
        }
        return found.map { $0! }
    }

    func label(_ pairs: [LabelingPair], phase: String) async throws -> [PreferenceLabel] {
        let started = ContinuousClock.now
        let labels = try await runLabeling(
            pairs, phase: phase, spec: { LabelingSpec(pairs: $0, known: knownAnswers($0)) }
        ) {
            output in
            guard case .preferences(let labels) = output else { throw JobOutput.mismatch("preference labels", output) }
            return labels
        }
        let counts = Dictionary(grouping: labels, by: \.status).mapValues(\.count)
        events.record(
            .labels(
                phase: phase, valid: counts[.valid] ?? 0, ambiguous: counts[.ambiguous] ?? 0,
                invalid: counts[.invalid] ?? 0, retries: labels.reduce(0) { $0 + $1.retries }))
        events.record(
            .labelerAudit(
                phase: phase, pairsPerSecond: Double(pairs.count) / (ContinuousClock.now - started).seconds,
                audit: LabelAudit(labels),
                alignment: alignment(
                    prompts: pairs.map(\.prompt), pairs: pairs.map { ($0.first, $0.second) }, labels: labels)))
        return labels
    }

    /// The answers the answer journal holds for every question `pairs` can lead to: both orders,
    /// every attempt (a crash in a job loses only the questions then in flight).
    func knownAnswers(_ pairs: [LabelingPair]) -> [String: LabelerAnswer] {
        known {
            pairs.flatMap { pair in
                (0...settings.labeler.retries).flatMap { attempt in
                    [pair, pair.swapped].map { AnswerSink.key($0, attempt: attempt) }
                }
            }
        }
    }

    /// The answers the answer journal holds for rating `items`, at every attempt.
    func knownRatings(_ items: [RatingItem]) -> [String: LabelerAnswer] {
        known { items.flatMap { item in (0...settings.labeler.retries).map { AnswerSink.key(item, attempt: $0) } } }
    }

    /// `keys` are only made when the journal holds answers (a fresh run's is empty, and hashing
    /// every question of a phase took a tenth of a test-sized run's CPU).
    private func known(_ keys: () -> [String]) -> [String: LabelerAnswer] {
        guard let answers, answers.count > 0 else { return [:] }
        var known: [String: LabelerAnswer] = [:]
        for key in keys() { if let found = answers.answer(key, as: JournaledAnswer.self) { known[key] = found.answer } }
        return known
    }

    /// Stops the run when too few of a phase's labels can be used, naming the labeler's failure.
    func requireYield(_ yield: LabelYield, phase: String) throws {
        if let shortfall = yield.shortfall(phase: phase, floor: settings.labeler.minValidFraction) {
            throw RunError(message: shortfall)
        }
    }

    func writePreferences(prompts: [String], pairs: [(String, String)], labels: [PreferenceLabel]) throws {
        var out = Data()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        struct Record: Encodable {
            let id: UInt64, prompt: String, a: String, b: String, label: PreferenceLabel, groundTruth: Double?
            enum CodingKeys: String, CodingKey {
                case id, prompt, a, b, label
                case groundTruth = "ground_truth"
            }
        }
        for (i, l) in labels.enumerated() {
            let gt = task.groundTruthPreference(pairs[i].0, pairs[i].1, prompt: prompts[i])
            out += try encoder.encode(
                Record(id: l.pairID, prompt: prompts[i], a: pairs[i].0, b: pairs[i].1, label: l, groundTruth: gt))
            out += Data("\n".utf8)
        }
        try out.write(to: directory.appendingPathComponent("preferences.jsonl"))
    }
}
