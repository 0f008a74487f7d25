import Protocol
import Synchronization

/// Where a labeling job's answers go as they arrive: the run's answer journal (through the
/// coordinator for a worker process). Connected once the run has its journal.
public final class AnswerSink: Sendable {
    public typealias Entries = [(key: String, verdict: PairVerdict)]
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
}

/// A labeler that answers from the run's journal what it was asked before, asks the real one
/// the rest, and reports each new answer to `sink` as it comes: one pair at a time when the
/// labeler answers each pair alone (a chat-completions server), else the batch.
struct RecordingLabeler: PairLabeler {
    let inner: any PairLabeler
    let known: [String: PairVerdict]
    let sink: AnswerSink

    func judge(_ pairs: [LabelingPair], attempt: Int) async -> [PairVerdict] {
        let keys = pairs.map { AnswerSink.key($0, attempt: attempt) }
        var out = keys.map { known[$0] }
        let asked = out.indices.filter { out[$0] == nil }
        guard !asked.isEmpty else { return out.map { $0! } }
        if inner.answersEachPairAlone {
            let (inner, sink) = (self.inner, self.sink)
            await withTaskGroup(of: (Int, PairVerdict).self) { group in
                for i in asked {
                    group.addTask {
                        let verdict = await inner.judge([pairs[i]], attempt: attempt)[0]
                        sink.send([(keys[i], verdict)])
                        return (i, verdict)
                    }
                }
                for await (i, verdict) in group { out[i] = verdict }
            }
        } else {
            let got = await inner.judge(asked.map { pairs[$0] }, attempt: attempt)
            for (i, verdict) in zip(asked, got) { out[i] = verdict }
            sink.send(zip(asked, got).map { (keys[$0], $1) })
        }
        return out.map { $0! }
    }
}

extension LabelJournal {
    /// Records labeler answers (the answer journal's lines).
    public func recordAnswers(_ entries: AnswerSink.Entries) {
        record(entries.map { ($0.key, JournaledVerdict($0.verdict)) })
    }
}

/// A verdict as the answer journal keeps it: whether asking again can help travels too.
struct JournaledVerdict: Codable {
    var probabilityFirst: Double?
    var rationale: String
    var retryable: Bool

    init(_ v: PairVerdict) { (probabilityFirst, rationale, retryable) = (v.probabilityFirst, v.rationale, v.retryable) }
    var verdict: PairVerdict {
        PairVerdict(probabilityFirst: probabilityFirst, rationale: rationale, retryable: retryable)
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
