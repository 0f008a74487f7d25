import Crypto
import Foundation

/// `label-journal.jsonl`: every label as it arrives from a worker, keyed by its question. A run
/// that crashes or is resumed takes the labels it already has from here and asks the labeler
/// only for the rest, so a paid labeler is never paid twice for one question.
///
/// One line per answer, `{"key": SHA-256 of phase and question, "answer": its JSON}`, appended and
/// fsynced one job at a time; a torn last line (a crash mid-write) is ignored.
public final class LabelJournal: @unchecked Sendable {
    public static let fileName = "label-journal.jsonl"
    /// Each answer of a labeling job as it arrives (question by question, attempt by attempt).
    public static let answerFileName = "answer-journal.jsonl"

    private let handle: FileHandle
    private var answers: [String: Data] = [:]
    private let lock = NSLock()

    /// The answer travels as its own JSON text, whatever its type.
    private struct Line: Codable {
        let key: String
        let answer: String
    }

    /// The labels' journal, or (`answerFileName`) the labeler's answers', in `directory`.
    public init(directory: URL, fileName: String = LabelJournal.fileName) throws {
        let url = directory.appendingPathComponent(fileName)
        if !FileManager.default.fileExists(atPath: url.path) {
            _ = FileManager.default.createFile(atPath: url.path, contents: nil)  // FileHandle reports failure
        }
        let text = (try? String(contentsOf: url, encoding: .utf8)) ?? ""
        let (entries, kept) = Self.entries(text)
        for entry in entries { answers[entry.key] = Data(entry.answer.utf8) }
        handle = try FileHandle(forWritingTo: url)
        try handle.truncate(atOffset: UInt64(min(kept, text.utf8.count)))  // drop a torn tail
        try handle.seekToEnd()
    }

    /// Labels on record.
    public var count: Int { lock.withLock { answers.count } }

    /// Labels on record in `directory`'s journal, read without opening it for writing (a live
    /// run's journal is left as it is; a torn last line is not counted).
    public static func recordedCount(in directory: URL) -> Int {
        guard let text = try? String(contentsOf: directory.appendingPathComponent(fileName), encoding: .utf8) else {
            return 0
        }
        return Set(entries(text).entries.map(\.key)).count
    }

    /// The whole lines of a journal's text, up to the first that does not read (a torn tail), and
    /// the bytes they take.
    private static func entries(_ text: String) -> (entries: [Line], bytes: Int) {
        var entries: [Line] = [], bytes = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            guard let entry = try? JSONDecoder().decode(Line.self, from: Data(line.utf8)) else { break }
            entries.append(entry)
            bytes += line.utf8.count + 1
        }
        return (entries, bytes)
    }

    /// The key of a question asked in `phase`.
    public static func key<Question: Encodable>(_ question: Question, phase: String) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let body = (try? encoder.encode(question)) ?? Data()
        return SHA256.hash(data: Data(phase.utf8) + [0] + body).hex
    }

    /// The recorded answer to the question with `key`, if there is one.
    public func answer<Answer: Decodable>(_ key: String, as type: Answer.Type) -> Answer? {
        guard let data = lock.withLock({ answers[key] }) else { return nil }
        return try? JSONDecoder().decode(Answer.self, from: data)
    }

    /// Records answers and makes them durable before returning.
    public func record<Answer: Encodable>(_ entries: [(key: String, answer: Answer)]) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var out = Data()
        var added: [(String, Data)] = []
        for (key, answer) in entries {
            guard let data = try? encoder.encode(answer),
                let line = try? encoder.encode(Line(key: key, answer: String(decoding: data, as: UTF8.self)))
            else { continue }
            out += line + Data("\n".utf8)
            added.append((key, data))
        }
        lock.withLock {
            guard (try? handle.write(contentsOf: out)) != nil else { return }  // a full disk: asked again later
            try? handle.synchronize()
            for (key, data) in added { answers[key] = data }
        }
    }

    public func close() { lock.withLock { try? handle.close() } }
}
