import CZeroMQ
import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The body of an endpoint's thread: the only code that touches its sockets.
struct SocketLoop: @unchecked Sendable {
    let role: Endpoint.Role
    let settings: EndpointSettings
    let logger: Logger
    let wakePipe: WakePipe
    let continuation: AsyncStream<[Inbound]>.Continuation

    func run(outbox: Outbox, drops: DropCounter, ready: (Result<String, ZMQError>) -> Void) {
        // ZAP handlers are per context, so a listener with its own authorization list gets its own
        // context; every other endpoint shares the process's.
        let context: ZMQContext
        if case .listen(_, .curve) = role { context = ZMQContext() } else { context = .shared }
        let s: ZMQSocket, authenticator: ZAPAuthenticator?
        do {
            (s, authenticator) = try open(in: context)
            ready(.success(s.lastEndpoint))
        } catch {
            continuation.finish()
            ready(.failure(error))
            return
        }
        defer {
            s.close()
            authenticator?.close()
            continuation.finish()
        }
        var items: [ZMQPoll.Item] = [.socket(s), .fileDescriptor(wakePipe.readEnd)]
        if let authenticator { items.append(.socket(authenticator.socket)) }
        // A DEALER with no peer (none yet, or refused by CURVE) would block a send, and with it
        // this loop's receiving and closing: its messages wait here, in order, for the socket to
        // take them or for `sendTimeout` to pass.
        var held = HeldSends()
        var asks = items.map { ($0, ZMQPoll.Events.readable) }
        while true {
            asks[0].1 = held.isEmpty ? .readable : [.readable, .writable]
            guard let events = try? ZMQPoll.wait(asks, timeout: held.untilOldestExpires(settings.sendTimeout))
            else { return }
            if events[1].contains(.readable) {
                wakePipe.drain()
                let (queue, closing) = outbox.drain()
                for (peer, message) in queue { transmit(message, to: peer, on: s, held: &held, drops: drops) }
                if closing { return }
            }
            if !held.isEmpty { flush(&held, on: s, drops: drops) }
            if events[0].contains(.readable) { receive(from: s, held: &held, drops: drops) }
            if events.count > 2, events[2].contains(.readable) { authenticator?.handle(drops: drops, logger: logger) }
        }
    }

    /// The endpoint's socket, bound or connected, and a listener's ZAP handler where it has keys.
    private func open(in context: ZMQContext) throws(ZMQError) -> (ZMQSocket, ZAPAuthenticator?) {
        var authenticator: ZAPAuthenticator?
        var socket: ZMQSocket?
        do throws(ZMQError) {
            switch role {
            case .listen(let endpoint, let security):
                if case .curve(_, let authorized) = security {
                    // The ZAP handler must be bound before the socket that consults it.
                    authenticator = try ZAPAuthenticator(context: context, authorized: authorized)
                }
                let s = try ZMQSocket(context, .router)
                socket = s
                try s.setOption(ZMQ_ROUTER_MANDATORY, Int32(1))
                try s.apply(security)
                try s.apply(settings)
                try s.bind(endpoint)
            case .connect(let endpoint, let security):
                let s = try ZMQSocket(context, .dealer)
                socket = s
                try s.apply(security)
                try s.apply(settings)
                try s.setTimeouts(send: settings.sendTimeout, receive: nil)
                try s.connect(endpoint)
            }
            return (socket!, authenticator)
        } catch {
            socket?.close()
            authenticator?.close()
            throw error
        }
    }

    private func transmit(
        _ message: EncodedMessage, to peer: PeerID?, on s: ZMQSocket, held: inout HeldSends, drops: DropCounter
    ) {
        if peer == nil, !held.isEmpty { return held.append(message) }
        do {
            try s.send(message, to: peer, dontWait: peer == nil)
        } catch let error where peer == nil && error.errno == EAGAIN {
            held.append(message)
        } catch {
            dropped(message, to: peer, error.errno == EHOSTUNREACH ? "unroutable" : "sendFailed", "\(error)", drops)
        }
    }

    /// Sends held messages while the socket takes them; drops those older than `sendTimeout`.
    private func flush(_ held: inout HeldSends, on s: ZMQSocket, drops: DropCounter) {
        while let message = held.oldest {
            do {
                try s.send(message, to: nil, dontWait: true)
                held.removeOldest()
            } catch let error where error.errno == EAGAIN {
                break
            } catch {
                dropped(message, to: nil, "sendFailed", "\(error)", drops)
                held.removeOldest()
            }
        }
        for message in held.removeExpired(settings.sendTimeout) {
            dropped(message, to: nil, "sendFailed", "no peer took it within \(settings.sendTimeout)", drops)
        }
    }

    private func dropped(
        _ message: EncodedMessage, to peer: PeerID?, _ reason: String, _ why: String, _ drops: DropCounter
    ) {
        drops.drop(
            reason, from: peer.map { "\($0)" } ?? "peer", logger: logger,
            "Dropped outgoing [\(Wire.Kind(rawValue: message.control[8]).map { "\($0)" } ?? "?")]: \(why)")
    }

    private func receive(from s: ZMQSocket, held: inout HeldSends, drops: DropCounter) {
        let readsClientKey = if case .listen(_, .curve) = role { true } else { false }
        var batch: [Inbound] = []
        var batchBytes = 0
        defer { if !batch.isEmpty { continuation.yield(batch) } }
        for _ in 0..<settings.receiveBatch {
            switch s.receiveMessage(limits: settings.limits, readsClientKey: readsClientKey, dontWait: true) {
            case nil: return
            case .empty: continue
            case .message(let inbound, let tensorBytes):
                batch.append(inbound)
                batchBytes += tensorBytes
                // Batch small messages only: holding large payloads back would keep their
                // buffers alive and make libzmq fault in fresh pages for the next ones.
                if batchBytes >= 64 << 10 {
                    continuation.yield(batch)
                    batch.removeAll(keepingCapacity: true)
                    batchBytes = 0
                }
            case .refused(let error, let peer):
                let source = peer.map { "\($0)" } ?? "peer"
                drops.drop(
                    error.code.rawValue, from: source, logger: logger, "Dropped message from [\(source)]: \(error)")
                if error.code == .unsupportedVersion, let peer {
                    // Tell a peer of another version why it will never be served.
                    let reject = Wire.encode(.reject(.init(reason: "protocol version mismatch: \(error.detail)")))
                    transmit(reject, to: peer, on: s, held: &held, drops: drops)
                }
            }
        }
    }
}

/// A DEALER's messages that its socket could not take yet, oldest first, with when each came.
/// (Only while no peer takes them: a handful at most, so removing from the front is cheap.)
struct HeldSends {
    private var messages: [(message: EncodedMessage, since: ContinuousClock.Instant)] = []

    var isEmpty: Bool { messages.isEmpty }
    var oldest: EncodedMessage? { messages.first?.message }

    mutating func append(_ message: EncodedMessage) { messages.append((message, .now)) }
    mutating func removeOldest() { messages.removeFirst() }

    /// Removes and returns the messages held `timeout` or longer.
    mutating func removeExpired(_ timeout: Duration) -> [EncodedMessage] {
        let now = ContinuousClock.now
        let expired = messages.prefix { now - $0.since >= timeout }.map(\.message)
        messages.removeFirst(expired.count)
        return expired
    }

    /// How long the loop may wait before the oldest message expires (nil: nothing held).
    func untilOldestExpires(_ timeout: Duration) -> Duration? {
        messages.first.map { max(.zero, timeout - (ContinuousClock.now - $0.since)) }
    }
}
