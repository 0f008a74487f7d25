import Synchronization

/// Messages queued by any task for an endpoint's thread to send.
final class Outbox: Sendable {
    private struct State {
        var queue: [(PeerID?, EncodedMessage)] = []
        var closing = false
    }

    private let state = Mutex(State())

    /// Appends; returns true when the queue was empty (the loop needs a wake-up), nil when closed.
    func push(_ message: EncodedMessage, to peer: PeerID?) -> Bool? {
        state.withLock { s -> Bool? in
            if s.closing { return nil }
            s.queue.append((peer, message))
            return s.queue.count == 1
        }
    }

    /// Takes everything queued, and whether the endpoint is closing.
    func drain() -> (messages: [(PeerID?, EncodedMessage)], closing: Bool) {
        state.withLock { s in
            defer { s.queue.removeAll(keepingCapacity: true) }
            return (s.queue, s.closing)
        }
    }

    func markClosing() { state.withLock { $0.closing = true } }
}
