import Foundation

/// One comparison for an AI labeler: which of two responses to a prompt is better.
public struct LabelingPair: Codable, Sendable, Equatable {
    /// Unique within the run: addresses the labeler's random stream and the preference record.
    public var id: UInt64
    public var prompt: String
    public var first: String
    public var second: String
    /// 0 as first asked, 1 with the responses swapped: each order is a separate question.
    public var order: Int

    public init(id: UInt64, prompt: String, first: String, second: String, order: Int = 0) {
        self.id = id
        self.order = order
        self.prompt = prompt
        self.first = first
        self.second = second
    }

    public var swapped: LabelingPair {
        LabelingPair(id: id, prompt: prompt, first: second, second: first, order: 1 - order)
    }
}

/// A labeler's answer about one pair in the order it was shown.
public struct PairVerdict: Codable, Sendable, Equatable {
    /// P(first is better), or nil when the answer could not be used (garbage, refusal, timeout).
    public var probabilityFirst: Double?
    public var rationale: String
    /// False when asking again cannot help: the labeler already retried (a server's 429s and
    /// 5xx, with back-off) or was refused (401, 403). Such a question is not asked again.
    public var retryable = true

    enum CodingKeys: String, CodingKey { case probabilityFirst, rationale }

    public init(probabilityFirst: Double?, rationale: String = "", retryable: Bool = true) {
        self.probabilityFirst = probabilityFirst
        self.rationale = rationale
        self.retryable = retryable
    }
}

/// An AI labeler: a batch of pairs in, one verdict per pair out (same order).
///
/// Implementations: `RubricLabeler` (the synthetic task's stand-in for an LLM judge),
/// `OpenAILabeler` (any chat-completions server), `CommandLabeler` (the user's program).
public protocol PairLabeler: Sendable {
    /// `attempt` counts retries of the same pairs (0 first), so a stochastic labeler can answer anew.
    func judge(_ pairs: [LabelingPair], attempt: Int) async -> [PairVerdict]
    /// Whether asking pair by pair costs what a batch does (one request per pair anyway), so
    /// each answer can be journaled as it arrives.
    var answersEachPairAlone: Bool { get }
}

extension PairLabeler {
    public var answersEachPairAlone: Bool { false }
}

/// A preference as the pipeline keeps it: both orders, the debiased probability, and whether it
/// may be used for training.
public struct PreferenceLabel: Codable, Sendable, Equatable {
    public enum Status: String, Codable, Sendable, CaseIterable {
        case valid, ambiguous, invalid
    }

    public var pairID: UInt64
    /// P(A better) from the order (A, B).
    public var forward: Double?
    /// P(A better) from the order (B, A), i.e. 1 − P(first) of the swapped question.
    public var backward: Double?
    /// The mean of the orders that answered (position-bias mitigation).
    public var probabilityA: Double?
    public var status: Status
    public var rationales: [String]
    /// Answers that had to be asked again.
    public var retries: Int

    public init(
        pairID: UInt64, forward: Double?, backward: Double?, probabilityA: Double?, status: Status,
        rationales: [String], retries: Int
    ) {
        self.pairID = pairID
        self.forward = forward
        self.backward = backward
        self.probabilityA = probabilityA
        self.status = status
        self.rationales = rationales
        self.retries = retries
    }
}

/// Asks a labeler about pairs in both orders (when configured), retries invalid answers, and
/// combines the orders into one debiased preference.
public struct PreferenceLabeling: Sendable {
    public let labeler: any PairLabeler
    public let bothOrders: Bool
    public let retries: Int
    public let ambiguityMargin: Double

    public init(labeler: any PairLabeler, bothOrders: Bool, retries: Int, ambiguityMargin: Double) {
        self.labeler = labeler
        self.bothOrders = bothOrders
        self.retries = retries
        self.ambiguityMargin = ambiguityMargin
    }

    public func label(_ pairs: [LabelingPair]) async -> [PreferenceLabel] {
        let forward = await askWithRetries(pairs)
        let backward = bothOrders ? await askWithRetries(pairs.map(\.swapped)) : nil
        return pairs.indices.map { i in
            let f = forward.answers[i].probabilityFirst
            let b = backward?.answers[i].probabilityFirst.map { 1 - $0 }
            var rationales = [forward.answers[i].rationale]
            if let backward { rationales.append(backward.answers[i].rationale) }
            let answered = [f, b].compactMap { $0 }
            let expected = bothOrders ? 2 : 1
            let p: Double? = answered.count == expected ? answered.reduce(0, +) / Double(expected) : nil
            let status: PreferenceLabel.Status
            if let p { status = abs(p - 0.5) < ambiguityMargin ? .ambiguous : .valid } else { status = .invalid }
            return PreferenceLabel(
                pairID: pairs[i].id, forward: f, backward: b, probabilityA: p, status: status, rationales: rationales,
                retries: forward.retries[i] + (backward?.retries[i] ?? 0))
        }
    }

    private func askWithRetries(_ pairs: [LabelingPair]) async -> (answers: [PairVerdict], retries: [Int]) {
        await askingAgain(pairs, retries: retries, settled: { $0.probabilityFirst != nil || !$0.retryable }) {
            await labeler.judge($0, attempt: $1)
        }
    }
}

/// Asks about every question, then again about those whose answer is not `settled` (unusable,
/// and worth asking again), at most `retries` more times (attempt 1, 2, …); every answer, and
/// how often each question was re-asked.
func askingAgain<Question, Answer>(
    _ questions: [Question], retries: Int, settled: (Answer) -> Bool,
    ask: ([Question], _ attempt: Int) async -> [Answer]
) async -> (answers: [Answer], retries: [Int]) {
    var answers = await ask(questions, 0)
    var retried = [Int](repeating: 0, count: questions.count)
    var attempt = 1
    while attempt <= retries {
        let unusable = answers.indices.filter { !settled(answers[$0]) }
        if unusable.isEmpty { break }
        let again = await ask(unusable.map { questions[$0] }, attempt)
        for (k, i) in unusable.enumerated() {
            answers[i] = again[k]
            retried[i] += 1
        }
        attempt += 1
    }
    return (answers, retried)
}
