import Synchronization

/// Counts refused input, by reason, readable from any thread.
public final class DropCounter: Sendable {
    private let counts = Mutex<[String: Int]>([:])

    public init() {}

    func increment(_ reason: String) { counts.withLock { $0[reason, default: 0] += 1 } }

    /// Messages dropped so far, by reason (a `WireError.Code`, `unauthorized`, `unroutable`, …).
    public var byReason: [String: Int] { counts.withLock { $0 } }
    public var total: Int { counts.withLock { $0.values.reduce(0, +) } }
}
