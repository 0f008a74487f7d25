import Models

/// Fits a user's prompts and demonstrations to the model's context when the data is read, so a
/// line that cannot fit is reported with its file and line (or cut, or skipped, as
/// `task.overlong` says) instead of failing jobs later, far from its cause.
///
/// A prompt fits when a response of `model.max_new_tokens` fits after it; a demonstration fits
/// when its prompt and its completion (with the end-of-text it is trained to end with) do.
public struct ContextFit: Sendable {
    /// One line of a data file, numbered from 1.
    public struct Line<Value: Sendable>: Sendable {
        public let number: Int
        public var value: Value
    }

    public let contextLength: Int
    public let maxNewTokens: Int
    public let policy: RunSettings.Overlong
    let tokenizer: any Tokenizer

    public init(contextLength: Int, maxNewTokens: Int, policy: RunSettings.Overlong, tokenizer: any Tokenizer) {
        self.contextLength = contextLength
        self.maxNewTokens = maxNewTokens
        self.policy = policy
        self.tokenizer = tokenizer
    }

    /// The lines of one file that were cut or skipped, for the log and the summary.
    public struct Notice: Sendable, Equatable, CustomStringConvertible {
        public let key: String
        public let path: String
        /// What the lines hold, in the plural ("prompts").
        public let what: String
        public let lines: [Int]
        public let policy: RunSettings.Overlong

        public var description: String {
            let shown = lines.prefix(5).map(String.init).joined(separator: ", ") + (lines.count > 5 ? ", …" : "")
            let verb = policy == .skip ? "skipped" : "cut to fit the context"
            return "\(key): \(lines.count) \(what) of \(path) \(verb) (lines \(shown))"
        }
    }

    /// The prompts that fit, cut or skipped by the policy; throws for the first that does not
    /// under `error` (and for an empty prompt, unless skipped).
    public func prompts(_ lines: [Line<String>], key: String, path: String) throws(JSONLTask.LoadError) -> (
        [String], Notice?
    ) {
        let limit = contextLength - maxNewTokens
        return try fit(lines, what: "prompt", key: key, path: path) { prompt in
            let count = tokenizer.encode(prompt).count
            if count > 0 && count <= limit { return .fits }
            guard count > 0 else { return .doesNotFit(problem: "the prompt is empty", cut: nil) }
            return .doesNotFit(
                problem: "the prompt is \(count) tokens; with model.max_new_tokens \(maxNewTokens), "
                    + "model.context_length \(contextLength) leaves room for \(limit)",
                cut: tail(of: prompt, tokens: limit))
        }
    }

    /// The demonstrations that fit: a long prompt is cut from the left, and a completion that
    /// cannot fit even after a one-token prompt is cut at its end (`truncate`).
    public func demonstrations(
        _ lines: [Line<(prompt: String, completion: String)>], key: String, path: String
    ) throws(JSONLTask.LoadError) -> ([(prompt: String, completion: String)], Notice?) {
        try fit(lines, what: "demonstration", key: key, path: path) { demo in
            // The completion is trained with the end-of-text it ends with.
            let p = tokenizer.encode(demo.prompt).count, c = tokenizer.encode(demo.completion).count + 1
            if p > 0 && p + c <= contextLength { return .fits }
            guard p > 0 else { return .doesNotFit(problem: "the demonstration's prompt is empty", cut: nil) }
            let completion = c < contextLength ? demo.completion : head(of: demo.completion, tokens: contextLength - 2)
            let room = contextLength - (tokenizer.encode(completion).count + 1)
            return .doesNotFit(
                problem: "the demonstration is \(p) prompt and \(c) completion tokens (with end-of-text), "
                    + "more than model.context_length \(contextLength)",
                cut: (tail(of: demo.prompt, tokens: room), completion))
        }
    }

    /// The preference pairs that fit: the prompt and the longer reply together within the
    /// context. Cut: each reply at its end, then the prompt from the left.
    public func preferences(_ lines: [Line<PreferencePair>], key: String, path: String) throws(JSONLTask.LoadError)
        -> ([PreferencePair], Notice?)
    {
        try fit(lines, what: "preference pair", key: key, path: path) { pair in
            let p = tokenizer.encode(pair.prompt).count
            let c = tokenizer.encode(pair.chosen).count, r = tokenizer.encode(pair.rejected).count
            if p > 0 && c > 0 && r > 0 && p + max(c, r) <= contextLength { return .fits }
            guard p > 0 else { return .doesNotFit(problem: "the pair's prompt is empty", cut: nil) }
            guard c > 0 && r > 0 else { return .doesNotFit(problem: "a reply of the pair is empty", cut: nil) }
            var cut = pair
            if c >= contextLength { cut.chosen = head(of: pair.chosen, tokens: contextLength - 1) }
            if r >= contextLength { cut.rejected = head(of: pair.rejected, tokens: contextLength - 1) }
            let longest = max(tokenizer.encode(cut.chosen).count, tokenizer.encode(cut.rejected).count)
            cut.prompt = tail(of: pair.prompt, tokens: contextLength - longest)
            return .doesNotFit(
                problem: "the pair is \(p) prompt and \(max(c, r)) reply tokens, more than model.context_length "
                    + "\(contextLength)",
                cut: cut)
        }
    }

    /// One line as measured: it fits, or why not and (when it can be cut) its cut form.
    enum Verdict<Value> {
        case fits
        case doesNotFit(problem: String, cut: Value?)
    }

    /// The lines kept (as they are, or cut) under the policy, and what was changed.
    func fit<Value>(
        _ lines: [Line<Value>], what: String, key: String, path: String, _ verdict: (Value) -> Verdict<Value>
    ) throws(JSONLTask.LoadError) -> ([Value], Notice?) {
        var kept: [Value] = [], changed: [Int] = []
        for line in lines {
            guard case .doesNotFit(let problem, let cut) = verdict(line.value) else {
                kept.append(line.value)
                continue
            }
            switch (policy, cut) {
            case (.skip, _): changed.append(line.number)
            case (.truncate, let cut?):
                kept.append(cut)
                changed.append(line.number)
            default: throw failure(key, path, line.number, problem)
            }
        }
        guard !kept.isEmpty else {
            throw JSONLTask.LoadError(
                key: key, message: "\(path): no \(what) fits the context (task.overlong \(policy))")
        }
        return (kept, notice(changed, key: key, path: path, what: what + "s"))
    }

    func failure(_ key: String, _ path: String, _ line: Int, _ problem: String) -> JSONLTask.LoadError {
        let advice =
            problem.hasSuffix("empty")
            ? "remove the line, or set task.overlong: skip"
            : "shorten it, or set task.overlong to truncate (cut it to fit) or skip"
        return JSONLTask.LoadError(key: key, message: "\(path):\(line): \(problem); \(advice)")
    }

    func notice(_ lines: [Int], key: String, path: String, what: String) -> Notice? {
        lines.isEmpty ? nil : Notice(key: key, path: path, what: what, lines: lines, policy: policy)
    }

    /// The longest end of `text`, in whole characters, of at most `limit` tokens.
    func tail(of text: String, tokens limit: Int) -> String {
        let characters = Array(text)
        return longest(characters.count, limit) { String(characters.suffix($0)) }
    }

    /// The longest beginning of `text`, in whole characters, of at most `limit` tokens.
    func head(of text: String, tokens limit: Int) -> String {
        let characters = Array(text)
        return longest(characters.count, limit) { String(characters.prefix($0)) }
    }

    /// The piece of the most characters (of `count`) that encodes to at most `limit` tokens: by
    /// doubling from `limit` characters, then bisection (a BPE's count grows with the characters
    /// kept, give or take a merge), so a megabyte line costs what its kept piece does.
    private func longest(_ count: Int, _ limit: Int, _ piece: (Int) -> String) -> String {
        func fits(_ n: Int) -> Bool { tokenizer.encode(piece(n)).count <= limit }
        var low = 0, high = min(count, max(limit, 1))
        while fits(high) {
            low = high
            guard high < count else { return piece(high) }
            high = min(count, 2 * high)
        }
        while low + 1 < high {
            let middle = (low + high) / 2
            if fits(middle) { low = middle } else { high = middle }
        }
        return piece(low)
    }
}
