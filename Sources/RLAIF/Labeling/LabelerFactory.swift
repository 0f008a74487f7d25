import Foundation

/// What every labeler kind offers: pairs judged (RLAIF, DPO) and single responses rated (direct RLAIF).
public typealias AILabeler = PairLabeler & ResponseRater

/// Builds the labeler a run's settings name.
public enum LabelerFactory {
    /// `environment` supplies the API key of an `openai` labeler (by the variable the settings
    /// name); the key is used in requests only.
    /// `gate`: the run's labeler budget, asked before each request (set when the settings name one).
    public static func labeler(
        _ settings: RunSettings, environment: [String: String] = ProcessInfo.processInfo.environment,
        gate: (any LabelerGate)? = nil
    ) throws(JobSpecError) -> any AILabeler {
        let l = settings.labeler
        switch l.kind {
        case .rubric:
            return RubricLabeler(
                seed: settings.run.seed, noise: l.noise, positionBias: l.positionBias, lengthBias: l.lengthBias,
                invalidRate: l.invalidRate)
        case .openai:
            guard let url = URL(string: l.url), url.scheme == "http" || url.scheme == "https" else {
                throw JobSpecError(message: "labeler.url '\(l.url)' is not an http(s) URL")
            }
            let key = l.apiKeyEnv.isEmpty ? nil : environment[l.apiKeyEnv]
            let client = ChatCompletionsClient(
                baseURL: url, model: l.model, apiKey: key, retries: l.retries,
                timeout: Double(l.timeoutMs) / 1000, concurrency: l.concurrency, gate: gate)
            return OpenAILabeler(client: client, prompt: try judgePrompt(settings), chainOfThought: l.chainOfThought)
        case .command:
            return CommandLabeler(command: l.command, timeout: Double(l.timeoutMs) / 1000)
        }
    }

    /// The preamble (configured, or the task's own) and the few-shot examples file, if any.
    public static func judgePrompt(_ settings: RunSettings) throws(JobSpecError) -> JudgePrompt {
        let l = settings.labeler
        let preamble =
            !l.preamble.isEmpty
            ? l.preamble
            : (settings.task.kind == .synthetic ? JudgePrompt.factSummaryPreamble : JudgePrompt.generalPreamble)
        var examples: [JudgePrompt.Example] = []
        if !l.fewShot.isEmpty {
            do {
                examples = try JSONLines.read(JudgePrompt.Example.self, path: l.fewShot)
            } catch {
                throw JobSpecError(message: "labeler.few_shot: \(error)")
            }
        }
        return JudgePrompt(preamble: preamble, examples: examples)
    }
}
