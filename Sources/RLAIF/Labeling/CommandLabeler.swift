import Foundation

/// A labeler that is the user's own program, run through `/bin/sh -c` once per batch: it reads one
/// JSON object per line on stdin and writes one per line on stdout, so a Python script with any
/// model can label. docs/LABELERS.md gives the line formats.
///
/// Questions the program leaves unanswered, answers it garbles, a non-zero exit or a run past the
/// timeout all come back as nil verdicts (retried, then counted invalid) — never a crash.
public struct CommandLabeler: PairLabeler, ResponseRater {
    public let command: String
    public let timeout: TimeInterval

    public init(command: String, timeout: TimeInterval) {
        self.command = command
        self.timeout = timeout
    }

    struct Question: Encodable {
        let kind: String
        let id: UInt64
        let order: Int?
        let attempt: Int
        let prompt: String
        let first: String?
        let second: String?
        let response: String?
    }

    struct Key: Hashable {
        let id: UInt64
        let order: Int
    }

    struct Answer: Decodable, Equatable {
        let id: UInt64
        let order: Int?
        let probabilityFirst: Double?
        let preferred: Int?
        let score: Int?
        let distribution: [Double]?
        let rationale: String?
    }

    public func judge(_ pairs: [LabelingPair], attempt: Int) async -> [PairVerdict] {
        let questions = pairs.map {
            Question(
                kind: "pair", id: $0.id, order: $0.order, attempt: attempt, prompt: $0.prompt, first: $0.first,
                second: $0.second, response: nil)
        }
        let (answers, problem) = await ask(questions)
        if let twice = Self.conflict(answers, key: { Key(id: $0.id, order: $0.order ?? 0) }) {
            let why = "the labeler command answered pair \(twice.id) (order \(twice.order)) twice, differently"
            return pairs.map { _ in PairVerdict(probabilityFirst: nil, rationale: why) }
        }
        let byQuestion = Dictionary(answers.map { (Key(id: $0.id, order: $0.order ?? 0), $0) }) { first, _ in first }
        return pairs.map { pair in
            guard let a = byQuestion[Key(id: pair.id, order: pair.order)] else {
                return PairVerdict(probabilityFirst: nil, rationale: problem ?? "the labeler command gave no answer")
            }
            let p: Double?
            if let q = a.probabilityFirst, q.isFinite, (0...1).contains(q) {
                p = q
            } else if let preferred = a.preferred, preferred == 1 || preferred == 2 {
                p = preferred == 1 ? 1 : 0
            } else {
                p = nil
            }
            return PairVerdict(probabilityFirst: p, rationale: a.rationale ?? "")
        }
    }

    public func rate(_ items: [RatingItem], attempt: Int) async -> [RatingVerdict] {
        let questions = items.map {
            Question(
                kind: "rating", id: $0.id, order: nil, attempt: attempt, prompt: $0.prompt, first: nil, second: nil,
                response: $0.response)
        }
        let (answers, problem) = await ask(questions)
        if let twice = Self.conflict(answers, key: \.id) {
            let why = "the labeler command answered item \(twice) twice, differently"
            return items.map { _ in RatingVerdict(distribution: nil, rationale: why) }
        }
        let byID = Dictionary(answers.map { ($0.id, $0) }) { first, _ in first }
        return items.map { item in
            guard let a = byID[item.id] else {
                return RatingVerdict(distribution: nil, rationale: problem ?? "the labeler command gave no answer")
            }
            if let d = a.distribution, d.count == 10, d.allSatisfy({ $0.isFinite && $0 >= 0 }), d.reduce(0, +) > 0 {
                let total = d.reduce(0, +)
                return RatingVerdict(distribution: d.map { $0 / total }, rationale: a.rationale ?? "")
            }
            if let s = a.score, (1...10).contains(s) { return RatingVerdict(score: s, rationale: a.rationale ?? "") }
            return RatingVerdict(distribution: nil, rationale: "unusable answer for \(item.id)")
        }
    }

    /// The first question answered twice with different answers: which answer was meant cannot
    /// be known, so the batch is not used (the same answer repeated is harmless).
    static func conflict<K: Hashable>(_ answers: [Answer], key: (Answer) -> K) -> K? {
        var seen: [K: Answer] = [:]
        for answer in answers {
            let k = key(answer)
            if let earlier = seen[k], earlier != answer { return k }
            seen[k] = answer
        }
        return nil
    }

    /// Runs the command on the questions; the answers it gave and, when it failed, why.
    private func ask(_ questions: [Question]) async -> ([Answer], String?) {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var input = Data()
        for q in questions {
            input += (try? encoder.encode(q)) ?? Data()
            input += Data("\n".utf8)
        }
        let outcome = await Self.run(command: command, input: input, timeout: timeout)
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let answers = String(decoding: outcome.stdout, as: UTF8.self).split(whereSeparator: \.isNewline).compactMap {
            try? decoder.decode(Answer.self, from: Data($0.utf8))
        }
        return (answers, outcome.problem)
    }

    struct Outcome: Sendable {
        var stdout = Data()
        var problem: String?
    }

    /// Runs `/bin/sh -c command` with `input` on stdin, off the cooperative pool (the waits block).
    static func run(command: String, input: Data, timeout: TimeInterval) async -> Outcome {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(returning: runBlocking(command: command, input: input, timeout: timeout))
            }
        }
    }

    private static func runBlocking(command: String, input: Data, timeout: TimeInterval) -> Outcome {
        signal(SIGPIPE, SIG_IGN)  // a program that exits without reading all its input must not kill us
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        do {
            try process.run()
        } catch {
            return Outcome(problem: "the labeler command could not start: \(error)")
        }
        let group = DispatchGroup()
        nonisolated(unsafe) var out = Data(), err = Data()
        DispatchQueue.global().async(group: group) { out = stdout.fileHandleForReading.readDataToEndOfFile() }
        DispatchQueue.global().async(group: group) { err = stderr.fileHandleForReading.readDataToEndOfFile() }
        DispatchQueue.global().async {
            try? stdin.fileHandleForWriting.write(contentsOf: input)
            try? stdin.fileHandleForWriting.close()
        }
        var timedOut = false
        if group.wait(timeout: .now() + timeout) == .timedOut {
            timedOut = true
            // Foundation starts the shell as a process-group leader; the group holds whatever the
            // command forked (an interpreter behind a wrapper script), and all of it holds our pipes.
            kill(-process.processIdentifier, SIGKILL)
            kill(process.processIdentifier, SIGKILL)
            _ = group.wait(timeout: .now() + 5)
        }
        process.waitUntilExit()
        var outcome = Outcome(stdout: out)
        if timedOut {
            outcome.problem = "the labeler command ran past \(Int(timeout * 1000)) ms and was stopped"
        } else if process.terminationStatus != 0 {
            let tail = String(decoding: err.suffix(300), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            outcome.problem = "the labeler command exited with status \(process.terminationStatus): \(tail)"
        }
        return outcome
    }
}
