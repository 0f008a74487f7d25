import Synchronization

/// Messages queued by any task for an endpoint's thread to send, with backpressure: past
/// `capacity` queued messages, `Endpoint.send` waits until the thread has drained the queue
/// (as a blocking `zmq_send` waits at the high-water mark), so a fast producer cannot grow
/// memory without bound.
final class Outbox: Sendable {
    let capacity: Int

    private struct State {
        var queue: [(PeerID?, EncodedMessage)] = []
        var closing = false
        var waiters: [CheckedContinuation<Void, Never>] = []
        var peak = 0
    }

    private let state = Mutex(State())

    init(capacity: Int) { self.capacity = capacity }

    enum PushResult { case queued(wake: Bool, full: Bool), closed }

    /// Appends; says whether the loop needs a wake-up and whether the queue is over capacity.
    func push(_ message: EncodedMessage, to peer: PeerID?) -> PushResult {
        state.withLock { s in
            if s.closing { return .closed }
            s.queue.append((peer, message))
            s.peak = max(s.peak, s.queue.count)
            return .queued(wake: s.queue.count == 1, full: s.queue.count > capacity)
        }
    }

    /// Suspends until the queue is at or below capacity (or closing).
    func waitForRoom() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let resumeNow = state.withLock { s -> Bool in
                if s.closing || s.queue.count <= capacity { return true }
                s.waiters.append(c)
                return false
            }
            if resumeNow { c.resume() }
        }
    }

    /// Takes everything queued, and whether the endpoint is closing; releases waiting senders.
    func drain() -> (messages: [(PeerID?, EncodedMessage)], closing: Bool) {
        let (messages, closing, waiters) = state.withLock { s in
            defer {
                s.queue.removeAll(keepingCapacity: true)
                s.waiters.removeAll()
            }
            return (s.queue, s.closing, s.waiters)
        }
        for w in waiters { w.resume() }
        return (messages, closing)
    }

    /// The longest the queue has been.
    var peak: Int { state.withLock { $0.peak } }

    func markClosing() {
        let waiters = state.withLock { s in
            s.closing = true
            defer { s.waiters.removeAll() }
            return s.waiters
        }
        for w in waiters { w.resume() }
    }
}
