import Foundation

/// An LLM judge behind any OpenAI-compatible chat-completions endpoint.
///
/// Each pair is one question (or two with chain-of-thought: the rationale first, then the
/// decision after it, as in the RLAIF paper). The soft label comes from the log-probs of the
/// tokens "1" and "2" when the server returns them; otherwise the decision is parsed from the
/// text. Unusable answers come back as nil verdicts, which `PreferenceLabeling` retries and then
/// counts as invalid.
public struct OpenAILabeler: PairLabeler, ResponseRater {
    public let client: ChatCompletionsClient
    public let prompt: JudgePrompt
    public let chainOfThought: Bool

    public init(client: ChatCompletionsClient, prompt: JudgePrompt, chainOfThought: Bool) {
        self.client = client
        self.prompt = prompt
        self.chainOfThought = chainOfThought
    }

    /// One request per pair, whatever the batch.
    public var answersEachPairAlone: Bool { true }

    public func judge(_ pairs: [LabelingPair], attempt: Int) async -> [PairVerdict] {
        await withTaskGroup(of: (Int, PairVerdict).self) { group in
            for (i, pair) in pairs.enumerated() { group.addTask { (i, await judge(pair)) } }
            var out = [PairVerdict](repeating: PairVerdict(probabilityFirst: nil), count: pairs.count)
            for await (i, v) in group { out[i] = v }
            return out
        }
    }

    func judge(_ pair: LabelingPair) async -> PairVerdict {
        var messages: [ChatCompletionsClient.Message]
        var rationale = ""
        if chainOfThought {
            messages = [.init(role: "user", content: prompt.rationale(pair))]
            switch await client.complete(messages, maxTokens: 512, alternatives: 0) {
            case .failure(let f):
                return PairVerdict(probabilityFirst: nil, rationale: "rationale: \(f)", retryable: false)
            case .success(let reply):
                rationale = reply.content.trimmingCharacters(in: .whitespacesAndNewlines)
                messages += [
                    .init(role: "assistant", content: reply.content),
                    .init(role: "user", content: JudgePrompt.decisionAfterRationale),
                ]
            }
        } else {
            messages = [.init(role: "user", content: prompt.decision(pair))]
        }
        switch await client.complete(messages, maxTokens: 4, alternatives: 5) {
        case .failure(let f):
            // The client has retried what retrying can fix: the question is settled as invalid.
            return PairVerdict(probabilityFirst: nil, rationale: "\(f)", retryable: false)
        case .success(let reply):
            let said = rationale.isEmpty ? reply.content : rationale
            if let p = Self.probabilityFirst(reply) {
                return PairVerdict(probabilityFirst: p, rationale: said)
            }
            guard let decision = JudgePrompt.parseDecision(reply.content) else {
                return PairVerdict(probabilityFirst: nil, rationale: "unusable answer: \(reply.content.prefix(120))")
            }
            return PairVerdict(probabilityFirst: decision == 1 ? 1 : 0, rationale: said)
        }
    }

    /// P("1") / (P("1") + P("2")) from the first token's alternatives; nil unless both appear.
    static func probabilityFirst(_ reply: ChatCompletionsClient.Reply) -> Double? {
        let lp = reply.logProbs(ofNumbers: 1...2)
        guard let l1 = lp[0], let l2 = lp[1] else { return nil }
        return 1 / (1 + exp(l2 - l1))
    }

    public func rate(_ items: [RatingItem], attempt: Int) async -> [RatingVerdict] {
        await withTaskGroup(of: (Int, RatingVerdict).self) { group in
            for (i, item) in items.enumerated() { group.addTask { (i, await rate(item)) } }
            var out = [RatingVerdict](repeating: RatingVerdict(distribution: nil), count: items.count)
            for await (i, v) in group { out[i] = v }
            return out
        }
    }

    func rate(_ item: RatingItem) async -> RatingVerdict {
        let messages = [ChatCompletionsClient.Message(role: "user", content: prompt.rating(item))]
        switch await client.complete(messages, maxTokens: 4, alternatives: 20) {
        case .failure(let f):
            return RatingVerdict(distribution: nil, rationale: "\(f)", retryable: false)
        case .success(let reply):
            if let d = RatingVerdict.distribution(fromLogProbs: reply.logProbs(ofNumbers: 1...10)) {
                return RatingVerdict(distribution: d, rationale: reply.content)
            }
            guard let score = JudgePrompt.parseRating(reply.content) else {
                return RatingVerdict(distribution: nil, rationale: "unusable answer: \(reply.content.prefix(120))")
            }
            return RatingVerdict(score: score, rationale: reply.content)
        }
    }
}
