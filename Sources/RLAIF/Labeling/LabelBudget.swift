import Foundation

/// A labeler's budget: at most so many requests, and so many tokens, in any window of time
/// (`labeler.requests_per_minute`, `labeler.tokens_per_minute`). A value that takes requests at
/// explicit instants and answers when each may go; `LabelBudgetDesk` waits on it.
///
/// Requests are granted, not counted after the fact: a grant is used within `grantLifetime` of
/// being made, so the server sees each request at most that long after its grant. Counting
/// grants over a window that much longer than the budget's keeps every window the *server* sees
/// within the budget. Tokens are reserved before a request (an upper bound: the prompt's bytes
/// and the completion's limit) and lowered to what the server reports once it has answered.
public struct LabelBudget: Sendable {
    public struct Limits: Sendable, Equatable {
        public var requests: Int?
        public var tokens: Int?
        public var window: Duration
        public init(requests: Int?, tokens: Int?, window: Duration = .seconds(60)) {
            (self.requests, self.tokens, self.window) = (requests, tokens, window)
        }
        public var isUnlimited: Bool { requests == nil && tokens == nil }

        /// How long a grant may take to reach its worker and be used (past it, the worker asks
        /// again): a twelfth of the window, between 1 and 5 s.
        public var grantLifetime: Duration { min(.seconds(5), max(.seconds(1), window / 12)) }
        /// Allowance for a request's way from the worker to the server.
        var transit: Duration { grantLifetime / 5 }
    }

    public enum Decision: Sendable, Equatable {
        case granted(Grant)
        /// Not before this instant: the grants in the window leave no room until then.
        case wait(until: ContinuousClock.Instant)
        /// Larger than the whole budget: it could never go.
        case refused(String)
    }

    public struct Grant: Sendable, Equatable, Hashable {
        public let id: UInt64
        public let tokens: Int
        public init(id: UInt64, tokens: Int) { (self.id, self.tokens) = (id, tokens) }
    }

    public let limits: Limits
    private var granted: [(at: ContinuousClock.Instant, id: UInt64, tokens: Int)] = []
    private var nextID: UInt64 = 1

    public init(_ limits: Limits) { self.limits = limits }

    /// The span over which grants are counted: the budget's window and a grant's longest way to
    /// the server.
    var countedSpan: Duration { limits.window + limits.grantLifetime + limits.transit }

    /// Grants one request of at most `tokens` tokens at `now`, or says when it may go.
    public mutating func request(tokens: Int, at now: ContinuousClock.Instant) -> Decision {
        if let cap = limits.tokens, tokens > cap {
            return .refused("a request of up to \(tokens) tokens exceeds labeler.tokens_per_minute (\(cap))")
        }
        forget(before: now)
        var until = now
        if let cap = limits.requests, granted.count + 1 > cap {
            until = max(until, granted[granted.count - cap].at + countedSpan)
        }
        if let cap = limits.tokens {
            // The oldest grants must leave the span until the rest and this one fit.
            var used = granted.reduce(0) { $0 + $1.tokens } + tokens
            var i = 0
            while used > cap {
                used -= granted[i].tokens
                until = max(until, granted[i].at + countedSpan)
                i += 1
            }
        }
        if until > now { return .wait(until: until) }
        let grant = Grant(id: nextID, tokens: tokens)
        nextID += 1
        granted.append((now, grant.id, tokens))
        return .granted(grant)
    }

    /// Lowers a grant's tokens to what its request used (the server's count); never raises it.
    public mutating func settle(grant id: UInt64, tokens used: Int) {
        guard let i = granted.firstIndex(where: { $0.id == id }) else { return }
        granted[i].tokens = min(granted[i].tokens, max(0, used))
    }

    /// Requests and tokens granted within the budget's window before `now` (for status).
    public func used(at now: ContinuousClock.Instant) -> (requests: Int, tokens: Int) {
        let recent = granted.filter { $0.at > now - limits.window }
        return (recent.count, recent.reduce(0) { $0 + $1.tokens })
    }

    private mutating func forget(before now: ContinuousClock.Instant) {
        let cut = granted.firstIndex { $0.at > now - countedSpan } ?? granted.count
        granted.removeFirst(cut)
    }
}

/// What a labeler's client asks before each request to a metered labeler: the run's budget in
/// this process (`LabelBudgetDesk`), or a worker's line to the coordinator's desk.
public protocol LabelerGate: Sendable {
    /// Waits until a request of at most `tokens` tokens may go; throws when it never can.
    func admit(tokens: Int) async throws -> LabelBudget.Grant
    /// Tells the budget what the request used (by the server's count).
    func settle(_ grant: LabelBudget.Grant, tokens: Int) async
}

/// Why a request could not have a grant.
public struct LabelBudgetError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The run's budget, first come first served: callers wait in order of asking.
public actor LabelBudgetDesk: LabelerGate {
    private var budget: LabelBudget
    private var queue: [(tokens: Int, continuation: CheckedContinuation<LabelBudget.Grant, any Error>)] = []
    private var draining = false
    /// Told (at most every few seconds) how much of the budget the last window used.
    private let onUse: (@Sendable (_ requests: Int, _ tokens: Int) -> Void)?
    private var lastReport: ContinuousClock.Instant?

    public init(_ limits: LabelBudget.Limits, onUse: (@Sendable (Int, Int) -> Void)? = nil) {
        budget = LabelBudget(limits)
        self.onUse = onUse
    }

    public var limits: LabelBudget.Limits { budget.limits }

    public func admit(tokens: Int) async throws -> LabelBudget.Grant {
        try await withCheckedThrowingContinuation { continuation in
            queue.append((tokens, continuation))
            if !draining {
                draining = true
                Task { await drain() }
            }
        }
    }

    public func settle(_ grant: LabelBudget.Grant, tokens: Int) {
        settle(grantID: grant.id, tokens: tokens)
    }

    /// Lowers grant `grantID`'s tokens to what its request used (a worker reports it by id).
    public func settle(grantID: UInt64, tokens: Int) {
        budget.settle(grant: grantID, tokens: tokens)
    }

    /// Grants queued requests in order, sleeping when the budget is spent.
    private func drain() async {
        while let first = queue.first {
            let now = ContinuousClock.now
            switch budget.request(tokens: first.tokens, at: now) {
            case .granted(let grant):
                queue.removeFirst()
                first.continuation.resume(returning: grant)
                report(at: now)
            case .refused(let why):
                queue.removeFirst()
                first.continuation.resume(throwing: LabelBudgetError(why))
            case .wait(let until):
                try? await Task.sleep(until: until, clock: .continuous)
            }
        }
        draining = false
    }

    private func report(at now: ContinuousClock.Instant) {
        guard let onUse, lastReport.map({ now - $0 >= .seconds(5) }) ?? true else { return }
        lastReport = now
        let used = budget.used(at: now)
        onUse(used.requests, used.tokens)
    }
}
