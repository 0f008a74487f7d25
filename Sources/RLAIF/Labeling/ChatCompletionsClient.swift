import Foundation
import Models

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// A client for an OpenAI-compatible chat-completions endpoint (vLLM, llama.cpp's server,
/// Ollama, hosted APIs): retries with exponential back-off on 429, 5xx, timeouts and dropped
/// connections, at most `concurrency` requests in flight, and the API key only in the
/// Authorization header — never in an error, a log line or a file. Once the server refuses the
/// key (401, 403), every later request fails at once with its answer: no request is sent again.
public final class ChatCompletionsClient: Sendable {
    /// A turn as the API takes it: the same concept as a chat template's.
    public typealias Message = ChatMessage

    /// The first generated token's alternatives with their log-probs (when the server sends them).
    public struct Reply: Sendable, Equatable {
        public var content: String
        public var firstTokenAlternatives: [Alternative]
        public struct Alternative: Sendable, Equatable {
            public var token: String
            public var logProb: Double
        }

        /// For each number in `choices`, the highest log-prob of a first token that reads as it
        /// (" 2" and "2" alike); nil for numbers the server did not list.
        public func logProbs(ofNumbers choices: ClosedRange<Int>) -> [Double?] {
            var best = [Double?](repeating: nil, count: choices.count)
            for a in firstTokenAlternatives where a.logProb.isFinite {
                guard let n = Int(a.token.trimmingCharacters(in: .whitespacesAndNewlines)), choices.contains(n) else {
                    continue
                }
                let k = n - choices.lowerBound
                best[k] = max(best[k] ?? -.infinity, a.logProb)
            }
            return best
        }
    }

    public enum Failure: Error, Sendable, Equatable, CustomStringConvertible {
        /// An HTTP status that retrying will not fix (401, 400, …) or that stayed after every retry.
        case status(Int, String)
        /// No answer (refused, timed out) after every retry.
        case transport(String)
        /// A 2xx answer that is not a chat completion.
        case malformed(String)
        /// The run's labeler budget can never grant the request.
        case overBudget(String)

        public var description: String {
            switch self {
            case .status(let code, let body): "HTTP \(code): \(body)"
            case .transport(let why): "no answer: \(why)"
            case .malformed(let why): "not a chat completion: \(why)"
            case .overBudget(let why): "over the labeler budget: \(why)"
            }
        }
    }

    let endpoint: URL
    let model: String
    private let apiKey: String?
    let retries: Int
    let timeout: TimeInterval
    let backoff: TimeInterval
    private let limit: ConcurrencyLimit
    private let session: URLSession
    private let refusal = RefusalLatch()
    /// The run's labeler budget, asked before every request (retries included); nil: unmetered.
    private let gate: (any LabelerGate)?

    /// `baseURL` is the API root (`http://host:8000/v1`); requests go to `<baseURL>/chat/completions`.
    public init(
        baseURL: URL, model: String, apiKey: String?, retries: Int, timeout: TimeInterval, concurrency: Int,
        backoff: TimeInterval = 0.25, gate: (any LabelerGate)? = nil
    ) {
        self.gate = gate
        endpoint = baseURL.appendingPathComponent("chat/completions")
        self.model = model
        self.apiKey = apiKey
        self.retries = retries
        self.timeout = timeout
        self.backoff = backoff
        limit = ConcurrencyLimit(max(1, concurrency))
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = timeout
        configuration.httpMaximumConnectionsPerHost = max(1, concurrency)
        session = URLSession(configuration: configuration)
    }

    private struct Body: Encodable {
        let model: String
        let messages: [Message]
        let maxTokens: Int
        let temperature: Double
        let logprobs: Bool?
        let topLogprobs: Int?
    }

    /// One completion; `alternatives` > 0 asks for that many first-token log-probs.
    public func complete(_ messages: [Message], maxTokens: Int, alternatives: Int) async -> Result<Reply, Failure> {
        await limit.acquire()
        defer { Task { await limit.release() } }
        if let refused = refusal.value { return .failure(refused) }
        let request = self.request(messages, maxTokens: maxTokens, alternatives: alternatives)
        // At most this many tokens: a token covers at least a byte, plus the chat format's few per message.
        let tokenBound = messages.reduce(maxTokens) { $0 + $1.content.utf8.count + 8 }
        var last = Failure.transport("not attempted")
        var retryAfter = 0.0  // what the last answer asked for, in seconds
        for attempt in 0...retries {
            if attempt > 0 {
                // Exponential back-off, or longer when the server's Retry-After says so; at most 30 s.
                let wait = min(max(backoff * pow(2, Double(attempt - 1)), retryAfter), 30)
                try? await Task.sleep(nanoseconds: UInt64(wait * 1e9))
                retryAfter = 0
            }
            let data: Data
            let response: URLResponse
            switch await send(request, tokenBound: tokenBound) {
            case .success(let answer): (data, response) = answer
            case .failure(.overBudget(let why)): return .failure(.overBudget(why))
            case .failure(let failure):
                last = failure
                continue
            }
            let code = (response as? HTTPURLResponse)?.statusCode ?? 0
            if (200..<300).contains(code) {
                switch Self.parse(data) {
                case .success(let reply): return .success(reply)
                case .failure(let f): last = f  // a garbled body: ask again
                }
                continue
            }
            last = .status(code, Self.excerpt(data))
            if code == 401 || code == 403 { refusal.set(last) }
            let retryable = code == 429 || code == 408 || (500..<600).contains(code)
            if !retryable { return .failure(last) }
            if let after = (response as? HTTPURLResponse)?.value(forHTTPHeaderField: "Retry-After"),
                let seconds = Double(after), seconds > 0
            {
                retryAfter = seconds
            }
        }
        return .failure(last)
    }

    private func request(_ messages: [Message], maxTokens: Int, alternatives: Int) -> URLRequest {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        let body = Body(
            model: model, messages: messages, maxTokens: maxTokens, temperature: 0,
            logprobs: alternatives > 0 ? true : nil, topLogprobs: alternatives > 0 ? alternatives : nil)
        var request = URLRequest(url: endpoint, timeoutInterval: timeout)
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        if let apiKey, !apiKey.isEmpty { request.setValue("Bearer \(apiKey)", forHTTPHeaderField: "Authorization") }
        request.httpBody = try? encoder.encode(body)
        return request
    }

    /// One attempt: the budget's grant (when the run has one), the request, and the tokens it used.
    private func send(_ request: URLRequest, tokenBound: Int) async -> Result<(Data, URLResponse), Failure> {
        var grant: LabelBudget.Grant?
        if let gate {
            do { grant = try await gate.admit(tokens: tokenBound) } catch { return .failure(.overBudget("\(error)")) }
        }
        do {
            let (data, response) = try await session.data(for: request)
            // The reservation stays at its bound unless the server says what it counted.
            if let gate, let grant, let used = Self.usedTokens(data) { await gate.settle(grant, tokens: used) }
            return .success((data, response))
        } catch {
            return .failure(.transport((error as NSError).localizedDescription))
        }
    }

    private static func excerpt(_ data: Data) -> String {
        String(decoding: data.prefix(200), as: UTF8.self).replacingOccurrences(of: "\n", with: " ")
    }

    private struct Completion: Decodable {
        struct Choice: Decodable {
            struct Msg: Decodable { let content: String? }
            struct LogProbs: Decodable {
                struct Token: Decodable {
                    struct Top: Decodable {
                        let token: String
                        let logprob: Double
                    }
                    let token: String
                    let logprob: Double
                    let topLogprobs: [Top]?
                }
                let content: [Token]?
            }
            let message: Msg
            let logprobs: LogProbs?
        }
        let choices: [Choice]
    }

    /// The tokens the server says the request used (`usage.total_tokens`), when it says.
    static func usedTokens(_ data: Data) -> Int? {
        struct Usage: Decodable {
            struct Counts: Decodable { let totalTokens: Int? }
            let usage: Counts?
        }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return (try? decoder.decode(Usage.self, from: data))?.usage?.totalTokens
    }

    static func parse(_ data: Data) -> Result<Reply, Failure> {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        guard let completion = try? decoder.decode(Completion.self, from: data) else {
            return .failure(.malformed(excerpt(data)))
        }
        guard let choice = completion.choices.first else { return .failure(.malformed("no choices")) }
        var alternatives: [Reply.Alternative] = []
        if let first = choice.logprobs?.content?.first {
            alternatives.append(.init(token: first.token, logProb: first.logprob))
            for top in first.topLogprobs ?? [] { alternatives.append(.init(token: top.token, logProb: top.logprob)) }
        }
        return .success(Reply(content: choice.message.content ?? "", firstTokenAlternatives: alternatives))
    }
}

/// The server's refusal of the key, once it has refused it.
final class RefusalLatch: @unchecked Sendable {
    private let lock = NSLock()
    private var failure: ChatCompletionsClient.Failure?

    var value: ChatCompletionsClient.Failure? { lock.withLock { failure } }
    func set(_ f: ChatCompletionsClient.Failure) { lock.withLock { if failure == nil { failure = f } } }
}

/// At most `limit` holders at a time; waiters are served in order.
actor ConcurrencyLimit {
    private var available: Int
    private var waiters: [CheckedContinuation<Void, Never>] = []

    init(_ limit: Int) { available = limit }

    func acquire() async {
        if available > 0 {
            available -= 1
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    func release() {
        if waiters.isEmpty {
            available += 1
        } else {
            waiters.removeFirst().resume()
        }
    }
}
