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
        var socket: ZMQSocket?
        var authenticator: ZAPAuthenticator?
        do {
            let s: ZMQSocket
            switch role {
            case .listen(let endpoint, let security):
                if case .curve(_, let authorized) = security {
                    // The ZAP handler must be bound before the socket that consults it.
                    authenticator = try ZAPAuthenticator(context: context, authorized: authorized)
                }
                s = try ZMQSocket(context, .router)
                try s.setOption(ZMQ_ROUTER_MANDATORY, Int32(1))
                try s.apply(security)
                try s.apply(settings)
                try s.bind(endpoint)
            case .connect(let endpoint, let security):
                s = try ZMQSocket(context, .dealer)
                try s.apply(security)
                try s.apply(settings)
                try s.setTimeouts(send: settings.sendTimeout, receive: nil)
                try s.connect(endpoint)
            }
            socket = s
            ready(.success(s.lastEndpoint))
        } catch {
            socket?.close()
            authenticator?.close()
            continuation.finish()
            ready(.failure(error))
            return
        }
        let s = socket!
        defer {
            s.close()
            authenticator?.close()
            continuation.finish()
        }
        var items: [ZMQPoll.Item] = [.socket(s), .fileDescriptor(wakePipe.readEnd)]
        if let authenticator { items.append(.socket(authenticator.socket)) }
        while true {
            guard let readable = try? ZMQPoll.readable(items, timeout: nil) else { return }
            if readable[1] {
                wakePipe.drain()
                let (queue, closing) = outbox.drain()
                for (peer, message) in queue { transmit(message, to: peer, on: s, drops: drops) }
                if closing { return }
            }
            if readable[0] { receive(from: s, drops: drops) }
            if readable.count > 2, readable[2] { authenticator?.handle(drops: drops, logger: logger) }
        }
    }

    private func transmit(_ message: EncodedMessage, to peer: PeerID?, on s: ZMQSocket, drops: DropCounter) {
        do {
            try s.send(message, to: peer)
        } catch {
            let reason = error.errno == EHOSTUNREACH ? "unroutable" : "sendFailed"
            drops.drop(
                reason, from: peer.map { "\($0)" } ?? "peer", logger: logger,
                "Dropped outgoing [\(Wire.Kind(rawValue: message.control[8]).map { "\($0)" } ?? "?")]: \(error)")
        }
    }

    private func receive(from s: ZMQSocket, drops: DropCounter) {
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
                    transmit(reject, to: peer, on: s, drops: drops)
                }
            }
        }
    }
}
