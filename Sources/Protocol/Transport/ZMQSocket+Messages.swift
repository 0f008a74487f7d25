import CZeroMQ

#if canImport(Glibc)
    import Glibc
#endif

/// Whole protocol messages on a socket: what `SocketLoop` and `RingPort` both send and read.
extension ZMQSocket {
    /// Queue bounds and the largest message libzmq accepts, from `settings`.
    func apply(_ settings: EndpointSettings) throws(ZMQError) {
        try setHighWaterMarks(send: settings.highWaterMark, receive: settings.highWaterMark)
        try setMaximumMessageSize(Int64(settings.limits.maxTensorBytes) + 1)
    }

    /// Sends `message` (after `peer`'s routing id on a ROUTER) as one multipart message, tensors
    /// without a copy. With `dontWait`, throws EAGAIN before any part is queued when the peer's
    /// queue is full (libzmq takes a multipart message whole or not at all).
    func send(_ message: EncodedMessage, to peer: PeerID?, dontWait: Bool = false) throws(ZMQError) {
        if let peer { try send(peer.bytes, more: true, dontWait: dontWait) }
        try send(message.control, more: !message.tensors.isEmpty, dontWait: dontWait && peer == nil)
        for (i, tensor) in message.tensors.enumerated() {
            let more = i < message.tensors.count - 1
            switch tensor {
            case .float32(let t):
                // Zero-copy: libzmq holds the tensor's storage until the bytes are on the wire.
                try sendNoCopy(t.pointer, count: t.count * 4, owner: t.storage, more: more)
            case .int32(let t):
                let bytes = t.ids.withUnsafeBytes { Array($0) }
                try send(bytes, more: more)
            case .int64(let values):
                try send(WireWords(values), more: more)
            case .words(let words):
                try send(words, more: more)
            }
        }
    }

    /// Zero-copy: the words' owner (received frame or array) lives until libzmq is done.
    private func send(_ words: WireWords, more: Bool) throws(ZMQError) {
        try sendNoCopy(words.base, count: words.byteCount, owner: words.owner, more: more)
    }

    /// What reading one message gave.
    enum ReceivedMessage {
        case message(Inbound, tensorBytes: Int)
        /// Not a valid message of our protocol (its peer, for a reply).
        case refused(WireError, from: PeerID?)
        /// A routing id and nothing else: nothing to decode.
        case empty
    }

    /// Reads one whole message; nil when none is waiting (or the socket failed). The control frame
    /// is decoded straight from libzmq's buffer; only tensor frames are kept (their memory
    /// becomes the tensors'). `readsClientKey`: on a CURVE listener, a hello carries the key its
    /// sender authenticated with.
    /// `segments`: a ring port's predecessors' segments, where shared slices are read from.
    func receiveMessage(
        limits: WireLimits, readsClientKey: Bool, dontWait: Bool, segments: InboundSegments? = nil
    ) -> ReceivedMessage? {
        var peer: PeerID?
        if kind == .router {
            // The routing id is a few bytes: copy it rather than keep a libzmq message for it.
            guard let (id, more) = try? receiveSmall(dontWait: dontWait) else { return nil }
            peer = PeerID(id)
            if !more { return .empty }
        }
        var more = false
        var clientKey: String?
        guard
            let control = try? withReceivedPart(
                dontWait: dontWait && kind != .router,
                { bytes, m, userID in
                    more = m
                    let decoded = Result { () throws(WireError) in try Wire.decodeControl(bytes, limits: limits) }
                    // A connection's key never changes: it is looked up for the hello that
                    // registers the peer, not for every message after it.
                    if readsClientKey, case .success(let c) = decoded, case .hello = c.message { clientKey = userID() }
                    return decoded
                })
        else { return nil }
        var tensorFrames: [ZMQFrame] = []
        while more {
            // The rest of a message is already here: libzmq delivers messages whole.
            guard let frame = try? receiveFrame() else { break }
            tensorFrames.append(frame)
            more = frame.hasMore
        }
        do throws(WireError) {
            let header = try control.get()
            if case .gradientChunk(let c) = header.message, let shared = c.shared {
                guard let segments, tensorFrames.isEmpty else {
                    throw WireError(
                        code: .badValue, frame: 0, field: "gradientChunk.shared",
                        detail: "a shared-memory slice carries no frames and is read only by a ring port")
                }
                tensorFrames = try segments.read(shared, byteCounts: header.descriptors.map(\.byteCount))
            }
            let message = try Wire.complete(header, tensorFrames: tensorFrames)
            return .message(
                Inbound(peer: peer, message: message, clientKey: clientKey),
                tensorBytes: tensorFrames.reduce(0) { $0 + $1.count })
        } catch {
            return .refused(error, from: peer)
        }
    }
}
