import Protocol
import Synchronization

/// Where a labeling job's answers go as they arrive: the run's answer journal (through the
/// coordinator for a worker process). Connected once the run has its journal.
public final class AnswerSink: Sendable {
    public typealias Entries = [(key: String, answer: LabelerAnswer)]
    private let target = Mutex<(@Sendable (Entries) -> Void)?>(nil)

    public init() {}

    public func connect(_ send: @escaping @Sendable (Entries) -> Void) { target.withLock { $0 = send } }

    func send(_ entries: Entries) {
        guard !entries.isEmpty, let send = target.withLock({ $0 }) else { return }
        send(entries)
    }

    /// The journal key of one question: a pair in the order shown, at one attempt (a retry is
    /// a new question to the labeler).
    public static func key(_ pair: LabelingPair, attempt: Int) -> String {
        struct Asked: Encodable {
            let pair: LabelingPair
            let attempt: Int
        }
        return LabelJournal.key(Asked(pair: pair, attempt: attempt), phase: "answer")
    }

    /// The journal key of one rating question at one attempt.
    public static func key(_ item: RatingItem, attempt: Int) -> String {
        struct Asked: Encodable {
            let item: RatingItem
            let attempt: Int
        }
        return LabelJournal.key(Asked(item: item, attempt: attempt), phase: "rating-answer")
    }
}

/// One answer of the labeler: about a pair, or a rating of one response.
public enum LabelerAnswer: Sendable, Equatable {
    case pair(PairVerdict)
    case rating(RatingVerdict)

    var pair: PairVerdict? { if case .pair(let v) = self { v } else { nil } }
    var rating: RatingVerdict? { if case .rating(let v) = self { v } else { nil } }
}

/// Answers `questions` from `known` (by `keys`) where it can and asks for the rest, reporting
/// each new answer as it arrives: one question at a time when `alone` (a labeler that sends one
/// request per question anyway), else the batch.
func replaying<Question: Sendable, Verdict: Sendable>(
    _ questions: [Question], keys: [String], known: [String: Verdict], alone: Bool,
    ask: @escaping @Sendable ([Question]) async -> [Verdict], report: @escaping @Sendable ([(String, Verdict)]) -> Void
) async -> [Verdict] {
    var out = keys.map { known[$0] }
    let asked = out.indices.filter { out[$0] == nil }
    guard !asked.isEmpty else { return out.map { $0! } }
    if alone {
        await withTaskGroup(of: (Int, Verdict).self) { group in
            for i in asked {
                group.addTask {
                    let verdict = await ask([questions[i]])[0]
                    report([(keys[i], verdict)])
                    return (i, verdict)
                }
            }
            for await (i, verdict) in group { out[i] = verdict }
        }
    } else {
        let got = await ask(asked.map { questions[$0] })
        for (i, verdict) in zip(asked, got) { out[i] = verdict }
        report(zip(asked, got).map { (keys[$0], $1) })
    }
    return out.map { $0! }
}

/// A labeler that answers from the run's journal what it was asked before, asks the real one
/// the rest, and reports each new answer to `sink` as it comes (see `replaying`).
struct RecordingLabeler: PairLabeler, ResponseRater {
    let inner: any AILabeler
    let known: [String: LabelerAnswer]
    let sink: AnswerSink

    func judge(_ pairs: [LabelingPair], attempt: Int) async -> [PairVerdict] {
        let (inner, sink) = (self.inner, self.sink)
        return await replaying(
            pairs, keys: pairs.map { AnswerSink.key($0, attempt: attempt) }, known: known.compactMapValues(\.pair),
            alone: inner.answersEachPairAlone, ask: { await inner.judge($0, attempt: attempt) },
            report: { sink.send($0.map { ($0.0, .pair($0.1)) }) })
    }

    func rate(_ items: [RatingItem], attempt: Int) async -> [RatingVerdict] {
        let (inner, sink) = (self.inner, self.sink)
        return await replaying(
            items, keys: items.map { AnswerSink.key($0, attempt: attempt) }, known: known.compactMapValues(\.rating),
            alone: inner.answersEachPairAlone, ask: { await inner.rate($0, attempt: attempt) },
            report: { sink.send($0.map { ($0.0, .rating($0.1)) }) })
    }
}

extension LabelJournal {
    /// Records labeler answers (the answer journal's lines).
    public func recordAnswers(_ entries: AnswerSink.Entries) {
        record(entries.map { ($0.key, JournaledAnswer($0.answer)) })
    }
}

/// An answer as the answer journal keeps it: whether asking again can help is kept too.
struct JournaledAnswer: Codable {
    var probabilityFirst: Double?
    var distribution: [Double]?
    var rationale: String
    var retryable: Bool
    var kind: Kind

    enum Kind: String, Codable {
        case pair, rating
    }

    init(_ answer: LabelerAnswer) {
        switch answer {
        case .pair(let v):
            (probabilityFirst, distribution, kind) = (v.probabilityFirst, nil, .pair)
            (rationale, retryable) = (v.rationale, v.retryable)
        case .rating(let v):
            (probabilityFirst, distribution, kind) = (nil, v.distribution, .rating)
            (rationale, retryable) = (v.rationale, v.retryable)
        }
    }

    var answer: LabelerAnswer {
        switch kind {
        case .rating: .rating(RatingVerdict(distribution: distribution, rationale: rationale, retryable: retryable))
        case .pair: .pair(PairVerdict(probabilityFirst: probabilityFirst, rationale: rationale, retryable: retryable))
        }
    }
}

extension PairVerdict: WireBodyCodable {
    public func encode(to e: inout BodyEncoder) {
        e.optionalF64(probabilityFirst)
        e.bool(retryable)
        e.string(rationale)
    }

    public init(from d: inout BodyDecoder) throws(WireError) {
        let p = try d.optionalF64("probabilityFirst")
        let retryable = try d.bool("retryable")
        self.init(probabilityFirst: p, rationale: try d.string("rationale"), retryable: retryable)
    }
}

extension LabelerAnswer: WireBodyCodable {
    /// u8 1 and a pair's verdict, or 2 and a rating: distribution `f64?` list, retryable, rationale.
    public func encode(to e: inout BodyEncoder) {
        switch self {
        case .pair(let v):
            e.u8(1)
            v.encode(to: &e)
        case .rating(let v):
            e.u8(2)
            e.bool(v.distribution != nil)
            e.list(v.distribution ?? []) { $0.f64($1) }
            e.bool(v.retryable)
            e.string(v.rationale)
        }
    }

    public init(from d: inout BodyDecoder) throws(WireError) {
        switch try d.u8("answer") {
        case 1: self = .pair(try PairVerdict(from: &d))
        case 2:
            let has = try d.bool("hasDistribution")
            let distribution = try d.list("distribution", elementBytes: 8) { (d) throws(WireError) in try d.f64("p") }
            let retryable = try d.bool("retryable")
            self = .rating(
                RatingVerdict(
                    distribution: has ? distribution : nil, rationale: try d.string("rationale"), retryable: retryable))
        case let kind: throw d.failure(.badValue, "answer", "unknown answer kind \(kind)")
        }
    }
}
