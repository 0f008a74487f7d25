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
    let wakeRead: Int32
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
                try configure(s)
                try s.bind(endpoint)
            case .connect(let endpoint, let security):
                s = try ZMQSocket(context, .dealer)
                try s.apply(security)
                try configure(s)
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
        var items: [ZMQPoll.Item] = [.socket(s), .fileDescriptor(wakeRead)]
        if let authenticator { items.append(.socket(authenticator.socket)) }
        while true {
            guard let readable = try? ZMQPoll.readable(items, timeout: nil) else { return }
            if readable[1] {
                var sink = [UInt8](repeating: 0, count: 256)
                while read(wakeRead, &sink, sink.count) > 0 {}
                let (queue, closing) = outbox.drain()
                for (peer, message) in queue { transmit(message, to: peer, on: s, drops: drops) }
                if closing { return }
            }
            if readable[0] { receive(from: s, drops: drops) }
            if readable.count > 2, readable[2] { authenticator?.handle(drops: drops, logger: logger) }
        }
    }

    private func configure(_ s: ZMQSocket) throws(ZMQError) {
        try s.setHighWaterMarks(send: settings.highWaterMark, receive: settings.highWaterMark)
        try s.setMaximumMessageSize(Int64(settings.limits.maxTensorBytes) + 1)
    }

    private func transmit(_ message: EncodedMessage, to peer: PeerID?, on s: ZMQSocket, drops: DropCounter) {
        do {
            if let peer { try s.send(peer.bytes, more: true) }
            try s.send(message.control, more: !message.tensors.isEmpty)
            for (i, tensor) in message.tensors.enumerated() {
                let more = i < message.tensors.count - 1
                switch tensor {
                case .float32(let t):
                    // Zero-copy: libzmq holds the tensor's storage until the bytes are on the wire.
                    try s.sendNoCopy(t.pointer, count: t.count * 4, owner: t.storage, more: more)
                case .int32(let t):
                    let bytes = t.ids.withUnsafeBytes { Array($0) }
                    try s.send(bytes, more: more)
                case .int64(let values):
                    try send(WireWords(values), on: s, more: more)
                case .words(let words):
                    try send(words, on: s, more: more)
                }
            }
        } catch {
            let reason = error.errno == EHOSTUNREACH ? "unroutable" : "sendFailed"
            drops.increment(reason)
            logger.warning(
                "Dropped outgoing [\(Wire.Kind(rawValue: message.control[8]).map { "\($0)" } ?? "?")]: \(error)")
        }
    }

    /// Zero-copy: the words' owner (received frame or array) lives until libzmq is done.
    private func send(_ words: WireWords, on s: ZMQSocket, more: Bool) throws(ZMQError) {
        try s.sendNoCopy(words.base, count: words.byteCount, owner: words.owner, more: more)
    }

    private func receive(from s: ZMQSocket, drops: DropCounter) {
        let isRouter = s.kind == .router
        let isCurveListener = if case .listen(_, .curve) = role { true } else { false }
        var batch: [Inbound] = []
        var batchBytes = 0
        defer { if !batch.isEmpty { continuation.yield(batch) } }
        for _ in 0..<settings.receiveBatch {
            var peer: PeerID?
            if isRouter {
                // The routing id is a few bytes: copy it rather than keep a libzmq message for it.
                guard let (id, more) = try? s.receiveSmall(dontWait: true) else { return }
                peer = PeerID(id)
                if !more { continue }  // an empty message: nothing to decode
            }
            // The control frame is decoded straight from libzmq's buffer; only tensor frames are
            // kept (their memory becomes the tensors').
            var more = false
            var clientKey: String?
            guard
                let control = try? s.withReceivedPart(
                    dontWait: !isRouter,
                    { bytes, m, userID in
                        more = m
                        let decoded = Result { () throws(WireError) in
                            try Wire.decodeControl(bytes, limits: settings.limits)
                        }
                        // A connection's key never changes: it is looked up for the hello that
                        // registers the peer, not for every message after it.
                        if isCurveListener, case .success(let c) = decoded, case .hello = c.message { clientKey = userID() }
                        return decoded
                    })
            else { return }
            var tensorFrames: [ZMQFrame] = []
            while more {
                // The rest of a message is already here: libzmq delivers messages whole.
                guard let frame = try? s.receiveFrame() else { break }
                tensorFrames.append(frame)
                more = frame.hasMore
            }
            do {
                let message = try Wire.complete(control.get(), tensorFrames: tensorFrames)
                batch.append(Inbound(peer: peer, message: message, clientKey: clientKey))
                batchBytes += tensorFrames.reduce(0) { $0 + $1.count }
                // Batch small messages only: holding large payloads back would keep their
                // buffers alive and make libzmq fault in fresh pages for the next ones.
                if batchBytes >= 64 << 10 {
                    continuation.yield(batch)
                    batch.removeAll(keepingCapacity: true)
                    batchBytes = 0
                }
            } catch {
                drops.increment(error.code.rawValue)
                logger.warning("Dropped message from [\(peer.map { "\($0)" } ?? "peer")]: \(error)")
                if error.code == .unsupportedVersion, let peer {
                    // Tell a peer of another version why it will never be served.
                    let reject = Wire.encode(.reject(.init(reason: "protocol version mismatch: \(error.detail)")))
                    transmit(reject, to: peer, on: s, drops: drops)
                }
            }
        }
    }
}
