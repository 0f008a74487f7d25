import Tensor

/// The built-in synthetic task: summarize a short "post" of facts.
///
/// A post is six distinct facts (letters a–p) written in a row; the three that matter are written
/// in upper case. The ideal summary names the key facts as the post writes them, in the post's
/// order, and ends with a period: the post `bKdMeA>` is summarized `KMA.`. A fact is the same fact
/// in either case.
///
/// The ground truth plays the paper's human raters: one point per key fact covered, minus
/// penalties for invented facts, minor facts, repeats, stray characters and a missing period.
/// Demonstrations are flawed on purpose (facts dropped, minor facts and inventions added), so
/// the SFT policy is imperfect and RL has room to improve it.
public struct FactSummaryTask: Sendable {
    public static let alphabet = Array("abcdefghijklmnop")
    public static let factsPerPost = 6
    public static let keyFactsPerPost = 3
    /// Ends every prompt: the summary follows it.
    public static let promptEnd: Character = ">"
    public static let summaryEnd: Character = "."

    public let seed: UInt64
    public let dropRate: Double
    public let extraRate: Double
    public let inventRate: Double

    public init(seed: UInt64, dropRate: Double = 0.3, extraRate: Double = 0.15, inventRate: Double = 0.1) {
        self.seed = seed
        self.dropRate = dropRate
        self.extraRate = extraRate
        self.inventRate = inventRate
    }

    /// Disjoint index ranges of the task's prompt pools.
    public enum Pool: UInt64, Sendable {
        case demonstration = 1, training = 2, heldOut = 3
    }

    public struct Post: Sendable, Equatable {
        /// The facts in the order the post states them.
        public let facts: [Character]
        public let keyFacts: Set<Character>
        public var prompt: String {
            String(facts.map { keyFacts.contains($0) ? Character($0.uppercased()) : $0 }) + String(promptEnd)
        }
        public var idealSummary: String {
            String(facts.filter { keyFacts.contains($0) }.map { Character($0.uppercased()) }) + String(summaryEnd)
        }
    }

    /// Post `index` of `pool`: a pure function of (seed, pool, index).
    public func post(_ pool: Pool, _ index: Int) -> Post {
        var rng = RandomStream(seed: seed, purpose: .taskGeneration, step: pool.rawValue, index: UInt64(index))
        var letters = Self.alphabet
        for i in 0..<Self.factsPerPost {  // partial Fisher–Yates
            letters.swapAt(i, i + rng.next(below: letters.count - i))
        }
        let facts = Array(letters.prefix(Self.factsPerPost))
        var positions = Array(0..<Self.factsPerPost)
        for i in 0..<Self.keyFactsPerPost { positions.swapAt(i, i + rng.next(below: positions.count - i)) }
        return Post(facts: facts, keyFacts: Set(positions.prefix(Self.keyFactsPerPost).map { facts[$0] }))
    }

    /// Post `index` of the parsed prompt text (posts are recovered from their prompts).
    public static func post(fromPrompt prompt: String) -> Post? {
        guard prompt.last == promptEnd else { return nil }
        let body = prompt.dropLast()
        let facts = body.map { Character($0.lowercased()) }
        guard facts.count == factsPerPost, facts.allSatisfy(alphabet.contains), Set(facts).count == facts.count else {
            return nil
        }
        return Post(facts: facts, keyFacts: Set(body.filter(\.isUppercase).map { Character($0.lowercased()) }))
    }

    /// A flawed demonstration for post `index` of the demonstration pool.
    public func demonstration(_ index: Int) -> (prompt: String, completion: String) {
        let post = post(.demonstration, index)
        var rng = RandomStream(seed: seed, purpose: .taskGeneration, step: 100, index: UInt64(index))
        var summary: [Character] = []
        for fact in post.facts {
            let u = Double(rng.nextUniform())
            let key = post.keyFacts.contains(fact)
            if key ? u >= dropRate : u < extraRate { summary.append(key ? Character(fact.uppercased()) : fact) }
        }
        if Double(rng.nextUniform()) < inventRate {  // written like a key fact, which makes it plausible
            let invented = Self.alphabet.filter { !post.facts.contains($0) }
            summary.insert(
                Character(invented[rng.next(below: invented.count)].uppercased()),
                at: rng.next(below: summary.count + 1))
        }
        return (post.prompt, String(summary) + String(Self.summaryEnd))
    }

    /// The ground-truth quality of `response` as a summary of `post` (the ideal scores 3).
    public static func quality(of response: String, for post: Post) -> Double {
        let text: Substring
        var score = 0.0
        if let end = response.firstIndex(of: summaryEnd) {
            text = response[..<end]
        } else {
            text = response[...]
            score -= 1  // no period: the summary never ended
        }
        var seen = Set<Character>()
        for written in text {
            let c = Character(written.lowercased())
            if !alphabet.contains(c) {
                score -= 0.5
            } else if !seen.insert(c).inserted {
                score -= 0.5
            } else if post.keyFacts.contains(c) {
                score += 1
            } else if post.facts.contains(c) {
                score -= 0.5
            } else {
                score -= 1
            }
        }
        return score
    }

    /// Which of two responses the ground truth prefers: 1 (first), 0 (second) or 0.5 (a tie).
    public static func preference(_ a: String, _ b: String, for post: Post) -> Double {
        let (qa, qb) = (quality(of: a, for: post), quality(of: b, for: post))
        return qa > qb ? 1 : (qa < qb ? 0 : 0.5)
    }
}
