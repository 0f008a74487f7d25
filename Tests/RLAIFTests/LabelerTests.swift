import Foundation
import TestSupport
import Testing

@testable import RLAIF

/// The `openai` labeler against a stand-in chat-completions server (a Python script, standard
/// library only, started per test), and the `command` labeler against a small script.
@Suite(.serialized) struct LabelerTests {

    let task = FactSummaryTask(seed: 11)

    func labeler(
        _ server: StandInServer, model: String = "standin", key: String? = nil, concurrency: Int = 4,
        chainOfThought: Bool = false, retries: Int = 3
    ) -> OpenAILabeler {
        let client = ChatCompletionsClient(
            baseURL: server.url, model: model, apiKey: key, retries: retries, timeout: 10, concurrency: concurrency,
            backoff: 0.01)
        return OpenAILabeler(
            client: client, prompt: JudgePrompt(preamble: JudgePrompt.factSummaryPreamble),
            chainOfThought: chainOfThought)
    }

    /// Pairs (ideal summary, ideal with the first key fact dropped) whose ground truth is known.
    func pairs(_ n: Int, mark: String = "") -> [LabelingPair] {
        (0..<n).map { i in
            let post = task.post(.training, i)
            let ideal = post.idealSummary
            let weaker =
                i % 2 == 0 ? String(ideal.dropFirst()) : ideal.lowercased().replacingOccurrences(of: ".", with: "")
            return LabelingPair(id: UInt64(i), prompt: post.prompt, first: ideal + mark, second: weaker)
        }
    }

    func sigmoid(_ x: Double) -> Double { 1 / (1 + exp(-x)) }

    @Test func softLabels_comeFromTheLogProbs_ofBothOrders() async throws {
        let server = try await StandInServer.start()
        let labeling = PreferenceLabeling(labeler: labeler(server), bothOrders: true, retries: 2, ambiguityMargin: 0.05)
        let asked = pairs(6)
        let labels = await labeling.label(asked)
        for (pair, label) in zip(asked, labels) {
            let post = FactSummaryTask.post(fromPrompt: pair.prompt)!
            let expected = sigmoid(
                FactSummaryTask.quality(of: pair.first, for: post) - FactSummaryTask.quality(of: pair.second, for: post)
            )
            #expect(label.status == .valid)
            #expect(abs(label.forward! - expected) < 1e-9 && abs(label.backward! - expected) < 1e-9)
            #expect(abs(label.probabilityA! - expected) < 1e-9 && expected > 0.7)
        }
        #expect(try await server.stats().requests == 12)  // each pair in both orders
    }

    @Test func rateLimits_serverErrors_andBrokenBodies_areRetried_garbageIsInvalid() async throws {
        let server = try await StandInServer.start()
        let labeling = PreferenceLabeling(
            labeler: labeler(server), bothOrders: false, retries: 2, ambiguityMargin: 0.05)
        let throttled = pairs(2, mark: "#429")
        let broken = pairs(2, mark: "#broken").map {
            LabelingPair(id: $0.id + 10, prompt: $0.prompt, first: $0.first, second: $0.second)
        }
        let junk = pairs(1, mark: "#junk").map {
            LabelingPair(id: 20, prompt: $0.prompt, first: $0.first, second: $0.second)
        }
        let labels = await labeling.label(throttled + broken + junk)
        #expect(labels[0..<4].allSatisfy { $0.status == .valid && $0.probabilityA! > 0.5 })
        #expect(labels[4].status == .invalid && labels[4].retries == 2)
        #expect(labels[4].rationales[0].contains("unusable answer"))
        let stats = try await server.stats()
        #expect(stats.statuses["429"] == 2 && stats.statuses["500"] == 2)
        // 2 throttled × 3 asks, 2 broken × 2, 1 junk × (1 + 2 retries)
        #expect(stats.requests == 6 + 4 + 3)
    }

    @Test func apiKey_isSentInTheHeader_andNeverEchoed() async throws {
        let secret = "sk-test-\(UInt64.random(in: 1...UInt64.max))"
        let server = try await StandInServer.start(key: secret)
        let good = PreferenceLabeling(
            labeler: labeler(server, key: secret), bothOrders: false, retries: 0, ambiguityMargin: 0.05)
        #expect(await good.label(pairs(2)).allSatisfy { $0.status == .valid })
        let bad = PreferenceLabeling(
            labeler: labeler(server, key: "sk-wrong"), bothOrders: false, retries: 1, ambiguityMargin: 0.05)
        let refused = await bad.label(pairs(1))
        #expect(refused[0].status == .invalid && refused[0].rationales[0].contains("HTTP 401"))
        let written = String(decoding: try JSONEncoder().encode(refused), as: UTF8.self)
        #expect(!written.contains("sk-wrong") && !written.contains(secret))
        // 2 good, 1 bad: a refused key is asked about neither by the client nor by the labeling.
        #expect(try await server.stats().authHeadersSeen == 3)
    }

    /// `retries` bounds the requests of a question: a server that always answers 429 is asked
    /// 1 + retries times per question (it was 16 per pair with retries 3: the labeling's retries
    /// times the client's).
    @Test func alwaysThrottled_isAskedOnePlusRetriesTimesPerQuestion() async throws {
        let server = try await StandInServer.start()
        let labeling = PreferenceLabeling(labeler: labeler(server), bothOrders: true, retries: 3, ambiguityMargin: 0.05)
        let labels = await labeling.label(pairs(4, mark: "#always429"))
        #expect(labels.allSatisfy { $0.status == .invalid && $0.rationales[0].hasPrefix("HTTP 429") })
        #expect(try await server.stats().requests == 4 * 2 * (1 + 3))
    }

    /// A refused key stops the labeler at once: no more requests once a 401 is back, and every
    /// question says what the server said.
    @Test func refusedKey_stopsAskingAtOnce_withTheServersAnswer() async throws {
        let server = try await StandInServer.start(key: "sk-right")
        let labeling = PreferenceLabeling(
            labeler: labeler(server, key: "sk-wrong", concurrency: 1), bothOrders: true, retries: 3,
            ambiguityMargin: 0.05)
        let labels = await labeling.label(pairs(8))
        #expect(labels.allSatisfy { $0.status == .invalid && $0.rationales[0].contains("invalid api key") })
        #expect(try await server.stats().requests == 1)
        let yield = LabelYield(preferences: labels)
        #expect(yield.invalid == 8 && yield.commonestReason?.hasPrefix("HTTP 401") == true)
    }

    @Test func concurrency_isLimited() async throws {
        let server = try await StandInServer.start()
        let labeling = PreferenceLabeling(
            labeler: labeler(server, concurrency: 3), bothOrders: false, retries: 0, ambiguityMargin: 0.05)
        _ = await labeling.label(pairs(18))
        let stats = try await server.stats()
        #expect(stats.requests == 18)
        #expect(stats.maxInFlight <= 3 && stats.maxInFlight >= 2)
    }

    @Test func withoutLogProbs_theDecisionIsParsedFromText() async throws {
        let server = try await StandInServer.start()
        let labeling = PreferenceLabeling(
            labeler: labeler(server, model: "standin-text"), bothOrders: true, retries: 0, ambiguityMargin: 0.05)
        let labels = await labeling.label(pairs(4))
        #expect(labels.allSatisfy { $0.forward == 1 && $0.backward == 1 && $0.status == .valid })
    }

    @Test func chainOfThought_asksForARationaleFirst() async throws {
        let server = try await StandInServer.start()
        let labeling = PreferenceLabeling(
            labeler: labeler(server, chainOfThought: true), bothOrders: false, retries: 0, ambiguityMargin: 0.05)
        let labels = await labeling.label(pairs(3))
        #expect(labels.allSatisfy { $0.status == .valid && $0.probabilityA! > 0.5 })
        #expect(labels.allSatisfy { $0.rationales[0].hasPrefix("Summary 1 names more of the key facts") })
        #expect(try await server.stats().requests == 6)  // two calls per question
    }

    @Test func ratings_areProbabilityWeighted_intoMinusOneToOne() async throws {
        let server = try await StandInServer.start()
        let rating = DirectRating(rater: labeler(server), retries: 1)
        let post = task.post(.heldOut, 3)
        let items = [
            RatingItem(id: 1, prompt: post.prompt, response: post.idealSummary),
            RatingItem(id: 2, prompt: post.prompt, response: "zz"),
        ]
        let labels = await rating.rate(items)
        // The server's distribution is a normal around 5.5 + 1.5·quality, cut to 1…10.
        func expected(_ q: Double) -> Double {
            let center = 5.5 + 1.5 * q
            var weighted = 0.0, total = 0.0
            for k in 1...10 {
                let w = exp(-(Double(k) - center) * (Double(k) - center) / 2)
                weighted += Double(k) * w
                total += w
            }
            return (weighted / total - 5.5) / 4.5
        }
        #expect(abs(labels[0].reward! - expected(3)) < 1e-9 && labels[0].reward! > 0.85)
        #expect(abs(labels[1].reward! - expected(-2)) < 1e-9 && labels[1].reward! < -0.65)
    }

    @Test func decisions_areParsedRobustly() {
        #expect(JudgePrompt.parseDecision("1") == 1)
        #expect(JudgePrompt.parseDecision(" Summary 2 is better.") == 2)
        #expect(JudgePrompt.parseDecision("**2**") == 2)
        #expect(JudgePrompt.parseDecision("Preferred Summary=1") == 1)
        #expect(JudgePrompt.parseDecision("1 or 2, hard to say") == nil)
        #expect(JudgePrompt.parseDecision("I cannot decide.") == nil)
        #expect(JudgePrompt.parseDecision("a score of 2.5") == nil)
        #expect(JudgePrompt.parseDecision("v2 wins") == nil)
        #expect(JudgePrompt.parseRating("Rating=10") == 10)
        #expect(JudgePrompt.parseRating("11") == nil)
        #expect(JudgePrompt.parseRating("7 out of 10") == nil)
    }

    // MARK: command

    func command(_ extra: String = "") -> String {
        "python3 '\(Fixtures.directory.appendingPathComponent("command_labeler.py").path)' \(extra)"
    }

    /// One question answered twice with different values: which was meant cannot be known, so
    /// the batch is not used (it was first-wins, silently); the same answer twice is harmless.
    @Test func commandLabeler_answeringAQuestionTwiceDifferently_failsItsBatch() async {
        let labeler = CommandLabeler(command: command(), timeout: 20)
        let pairs = [
            LabelingPair(id: 1, prompt: "p", first: "KMA.", second: "k."),
            LabelingPair(id: 2, prompt: "p", first: "#twice", second: "K."),
        ]
        let verdicts = await labeler.judge(pairs, attempt: 0)
        #expect(verdicts.allSatisfy { $0.probabilityFirst == nil })
        #expect(verdicts[0].rationale == "the labeler command answered pair 2 (order 0) twice, differently")
        let ratings = await labeler.rate(
            [RatingItem(id: 4, prompt: "p", response: "OK"), RatingItem(id: 5, prompt: "p", response: "#twice")],
            attempt: 0)
        #expect(ratings.allSatisfy { $0.reward == nil && $0.rationale.contains("item 5 twice, differently") })
        let once = await labeler.judge([pairs[0]], attempt: 0)
        #expect(once[0].probabilityFirst == 0.9)
    }

    @Test func commandLabeler_answersPairsAndRatings_missingOrGarbledAnswersAreInvalid() async {
        let labeler = CommandLabeler(command: command(), timeout: 20)
        let asked = [
            LabelingPair(id: 1, prompt: "p", first: "KMA.", second: "k."),
            LabelingPair(id: 2, prompt: "p", first: "#junk", second: "K."),
            LabelingPair(id: 3, prompt: "p", first: "#skip", second: "K."),
        ]
        let labels = await PreferenceLabeling(labeler: labeler, bothOrders: true, retries: 1, ambiguityMargin: 0.05)
            .label(asked)
        #expect(labels[0].status == .valid && abs(labels[0].probabilityA! - 0.9) < 1e-12)
        #expect(labels[0].rationales == ["3 vs 0 key facts", "0 vs 3 key facts"])
        #expect(labels[1].status == .invalid && labels[2].status == .invalid && labels[2].retries == 2)
        let ratings = await DirectRating(rater: labeler, retries: 0).rate([
            RatingItem(id: 7, prompt: "p", response: "KM."), RatingItem(id: 8, prompt: "p", response: "#skip"),
        ])
        #expect(ratings[0].reward == (7 - 5.5) / 4.5 && ratings[1].reward == nil)
    }

    @Test func commandLabeler_thatFailsOrHangs_givesInvalidVerdicts_withTheReason() async {
        let pair = [LabelingPair(id: 1, prompt: "p", first: "KMA.", second: "k.")]
        let failing = await CommandLabeler(command: command("--exit 3"), timeout: 20).judge(pair, attempt: 0)
        #expect(failing[0].probabilityFirst == nil)
        #expect(failing[0].rationale.contains("status 3") && failing[0].rationale.contains("out of quota"))
        let started = Date()
        let hanging = await CommandLabeler(command: command("--sleep 30"), timeout: 0.5).judge(pair, attempt: 0)
        #expect(hanging[0].probabilityFirst == nil && hanging[0].rationale.contains("ran past 500 ms"))
        #expect(Date().timeIntervalSince(started) < 10)
        let missing = await CommandLabeler(command: "/nonexistent/labeler", timeout: 5).judge(pair, attempt: 0)
        #expect(missing[0].probabilityFirst == nil && missing[0].rationale.contains("status 127"))
    }
}
