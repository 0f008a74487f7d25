import Logging
import Synchronization

/// Counts refused input, by reason, readable from any thread, and logs it at a bounded rate: a
/// hostile peer flooding an endpoint gets one line per interval with a count, not one per message.
public final class DropCounter: Sendable {
    private struct State {
        var counts: [String: Int] = [:]
        var limiter = DropLogLimiter()
    }
    private let state = Mutex(State())

    public init() {}

    func increment(_ reason: String) { state.withLock { $0.counts[reason, default: 0] += 1 } }

    /// Counts a drop and logs `line` unless `source` had a line within the interval; a line
    /// after a quiet spell says how many went unlogged.
    func drop(_ reason: String, from source: String, logger: Logger, _ line: @autoclosure () -> String) {
        let decision = state.withLock { s -> Int? in
            s.counts[reason, default: 0] += 1
            return s.limiter.shouldLog(source: source, at: .now)
        }
        guard let unlogged = decision else { return }
        let more = unlogged > 0 ? " (\(unlogged) more from \(source) since the last line)" : ""
        logger.warning("\(line())\(more)")
    }

    /// Messages dropped so far, by reason (a `WireError.Code`, `unauthorized`, `unroutable`, …).
    public var byReason: [String: Int] { state.withLock { $0.counts } }
    public var total: Int { state.withLock { $0.counts.values.reduce(0, +) } }
}

/// Which drops get a log line: the first from a source, then at most one per `interval`.
public struct DropLogLimiter: Sendable {
    public let interval: Duration
    private var sources: [String: (logged: ContinuousClock.Instant, unlogged: Int)] = [:]

    public init(interval: Duration = .seconds(10)) { self.interval = interval }

    /// Nil: stay silent (counted). Otherwise log, noting the drops from `source` since its
    /// last line.
    public mutating func shouldLog(source: String, at now: ContinuousClock.Instant) -> Int? {
        if let last = sources[source], now - last.logged < interval {
            sources[source]?.unlogged += 1
            return nil
        }
        let unlogged = sources[source]?.unlogged ?? 0
        // Forget sources idle for long, so a scan of many addresses cannot grow the table without end.
        if sources.count > 1024 { sources = sources.filter { now - $0.value.logged < interval } }
        sources[source] = (now, 0)
        return unlogged
    }
}
