import Foundation

/// The texts an LLM labeler is shown, in the structure of the RLAIF paper: a preamble that states
/// the task and the rubric, optional few-shot examples, the pair, and an ending that asks for the
/// decision (or, with chain-of-thought, first for a rationale).
public struct JudgePrompt: Sendable, Equatable {
    /// A solved comparison shown before the question.
    public struct Example: Codable, Sendable, Equatable {
        public var prompt: String
        public var first: String
        public var second: String
        /// 1 or 2.
        public var preferred: Int
        public var rationale: String?
    }

    public var preamble: String
    public var examples: [Example]

    public init(preamble: String, examples: [Example] = []) {
        self.preamble = preamble
        self.examples = examples
    }

    /// The rubric of the built-in fact-summary task.
    public static let factSummaryPreamble = """
        A post is a row of six facts, each written as one letter; the three facts that matter are \
        written in upper case. A good summary names each key fact once, adds no other fact (neither \
        a minor one from the post nor an invented one), and ends with a period.
        """

    /// For prompts of the user's own (a JSONL task).
    public static let generalPreamble = """
        A good summary is a shorter text that keeps what matters in the original: it is accurate, it \
        covers the important points, and it is concise and easy to read. You will compare two \
        summaries of the same text.
        """

    static let decisionEnding = "Which summary is better? Answer with 1 or 2 only.\nPreferred Summary="
    static let rationaleEnding =
        "Consider the coverage, accuracy and brevity of each summary, and explain which one is better.\nRationale:"
    static let ratingEnding =
        "Rate the summary from 1 (worst) to 10 (best). Answer with the number only.\nRating="

    private func pairBlock(_ prompt: String, _ first: String, _ second: String) -> String {
        "Text - \(prompt)\nSummary 1 - \(first)\nSummary 2 - \(second)"
    }

    private var header: String {
        var parts = [preamble]
        for e in examples {
            var block = pairBlock(e.prompt, e.first, e.second)
            if let r = e.rationale { block += "\nRationale: \(r)" }
            parts.append(block + "\nPreferred Summary=\(e.preferred)")
        }
        return parts.joined(separator: "\n\n")
    }

    /// The question for a pair, asking for the decision at once.
    public func decision(_ pair: LabelingPair) -> String {
        header + "\n\n" + pairBlock(pair.prompt, pair.first, pair.second) + "\n\n" + Self.decisionEnding
    }

    /// Chain-of-thought, step one: the question ending in a request for a rationale.
    public func rationale(_ pair: LabelingPair) -> String {
        header + "\n\n" + pairBlock(pair.prompt, pair.first, pair.second) + "\n\n" + Self.rationaleEnding
    }

    /// Chain-of-thought, step two (sent after the rationale as the next user turn).
    public static var decisionAfterRationale: String { decisionEnding }

    /// The question for one response (direct RLAIF).
    public func rating(_ item: RatingItem) -> String {
        preamble + "\n\nText - \(item.prompt)\nSummary - \(item.response)\n\n" + Self.ratingEnding
    }

    // MARK: Reading answers

    /// The decision named in free text: "1", "Summary 2", "**2**", "Preferred Summary=1". Nil when
    /// the text names neither or both.
    public static func parseDecision(_ text: String) -> Int? {
        let named = Set(standaloneNumbers(in: text).filter { $0 == 1 || $0 == 2 })
        return named.count == 1 ? named.first : nil
    }

    /// The score named in free text, when it names exactly one number and that number is 1…10.
    public static func parseRating(_ text: String) -> Int? {
        let named = Set(standaloneNumbers(in: text))
        guard named.count == 1, let n = named.first, (1...10).contains(n) else { return nil }
        return n
    }

    /// Whole numbers not glued to letters and not part of a decimal ("Summary 2" yes, "v2" and
    /// "2.5" no).
    static func standaloneNumbers(in text: String) -> [Int] {
        let chars = Array(text)
        func digit(_ k: Int) -> Bool { chars.indices.contains(k) && chars[k].isASCII && chars[k].isNumber }
        func letter(_ k: Int) -> Bool { chars.indices.contains(k) && chars[k].isLetter }
        func point(_ k: Int) -> Bool { chars.indices.contains(k) && (chars[k] == "." || chars[k] == ",") }
        var out: [Int] = []
        var i = 0
        while i < chars.count {
            guard digit(i) else {
                i += 1
                continue
            }
            var j = i
            while digit(j) { j += 1 }
            let glued = letter(i - 1) || letter(j)
            let decimal = (point(i - 1) && digit(i - 2)) || (point(j) && digit(j + 1))
            if !glued, !decimal, let n = Int(String(chars[i..<j])) { out.append(n) }
            i = j
        }
        return out
    }
}
