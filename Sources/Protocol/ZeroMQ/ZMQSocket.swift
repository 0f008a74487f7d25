import CZeroMQ

/// A libzmq socket. Not thread-safe and deliberately not `Sendable`: one thread owns it
/// (see `SocketLoop`), so no actor ever touches a socket.
public final class ZMQSocket {
    public enum Kind: Sendable {
        case router, dealer, push, pull, pair, rep, req, pub, sub

        var raw: Int32 {
            switch self {
            case .router: ZMQ_ROUTER
            case .dealer: ZMQ_DEALER
            case .push: ZMQ_PUSH
            case .pull: ZMQ_PULL
            case .pair: ZMQ_PAIR
            case .rep: ZMQ_REP
            case .req: ZMQ_REQ
            case .pub: ZMQ_PUB
            case .sub: ZMQ_SUB
            }
        }
    }

    let handle: UnsafeMutableRawPointer
    public let kind: Kind
    private var closed = false

    public init(_ context: ZMQContext, _ kind: Kind) throws(ZMQError) {
        guard let h = zmq_socket(context.handle, kind.raw) else { throw ZMQError.last("zmq_socket") }
        handle = h
        self.kind = kind
        try setOption(ZMQ_LINGER, Int32(0))
    }

    deinit { close() }

    public func close() {
        if !closed {
            zmq_close(handle)
            closed = true
        }
    }

    // MARK: Endpoints

    public func bind(_ endpoint: String) throws(ZMQError) {
        try check(zmq_bind(handle, endpoint), "zmq_bind(\(endpoint))")
    }
    public func connect(_ endpoint: String) throws(ZMQError) {
        try check(zmq_connect(handle, endpoint), "zmq_connect(\(endpoint))")
    }

    /// The endpoint actually bound (resolves `tcp://127.0.0.1:*` to a port).
    public var lastEndpoint: String {
        var buffer = [CChar](repeating: 0, count: 256)
        var size = buffer.count
        zmq_getsockopt(handle, ZMQ_LAST_ENDPOINT, &buffer, &size)
        return String(cString: buffer)
    }

    // MARK: Options

    public func setOption(_ option: Int32, _ value: Int32) throws(ZMQError) {
        var v = value
        try check(zmq_setsockopt(handle, option, &v, MemoryLayout<Int32>.size), "zmq_setsockopt(\(option))")
    }

    public func setOption(_ option: Int32, _ value: Int64) throws(ZMQError) {
        var v = value
        try check(zmq_setsockopt(handle, option, &v, MemoryLayout<Int64>.size), "zmq_setsockopt(\(option))")
    }

    public func setOption(_ option: Int32, bytes: [UInt8]) throws(ZMQError) {
        try check(
            bytes.withUnsafeBytes { zmq_setsockopt(handle, option, $0.baseAddress, $0.count) },
            "zmq_setsockopt(\(option))")
    }

    public func setOption(_ option: Int32, string: String) throws(ZMQError) {
        try setOption(option, bytes: Array(string.utf8))
    }

    public func getInt32(_ option: Int32) -> Int32 {
        var v: Int32 = 0
        var size = MemoryLayout<Int32>.size
        zmq_getsockopt(handle, option, &v, &size)
        return v
    }

    public var linger: Duration {
        get { .milliseconds(getInt32(ZMQ_LINGER)) }
        set { try? setOption(ZMQ_LINGER, Int32(newValue.milliseconds)) }
    }

    /// Messages queued per peer before sends block (or fail with DONTWAIT).
    public func setHighWaterMarks(send: Int32, receive: Int32) throws(ZMQError) {
        try setOption(ZMQ_SNDHWM, send)
        try setOption(ZMQ_RCVHWM, receive)
    }

    /// Blocking receive/send give up after these (nil: wait forever).
    public func setTimeouts(send: Duration?, receive: Duration?) throws(ZMQError) {
        try setOption(ZMQ_SNDTIMEO, Int32(send?.milliseconds ?? -1))
        try setOption(ZMQ_RCVTIMEO, Int32(receive?.milliseconds ?? -1))
    }

    /// Peers sending a larger message are disconnected by libzmq before it is buffered.
    public func setMaximumMessageSize(_ bytes: Int64) throws(ZMQError) { try setOption(ZMQ_MAXMSGSIZE, bytes) }

    public var hasMoreParts: Bool { getInt32(ZMQ_RCVMORE) != 0 }

    // MARK: Sending

    /// Sends `bytes` as one part (copied into libzmq).
    public func send(_ bytes: [UInt8], more: Bool = false, dontWait: Bool = false) throws(ZMQError) {
        let flags = (more ? ZMQ_SNDMORE : 0) | (dontWait ? ZMQ_DONTWAIT : 0)
        let rc = bytes.withUnsafeBytes { zmq_send(handle, $0.baseAddress, $0.count, flags) }
        if rc < 0 { throw ZMQError.last("zmq_send") }
    }

    /// Sends `count` bytes at `base` without copying; `owner` is kept alive until libzmq is done
    /// with the bytes (possibly after this call returns, on an I/O thread).
    public func sendNoCopy(
        _ base: UnsafeRawPointer, count: Int, owner: AnyObject, more: Bool = false, dontWait: Bool = false
    ) throws(ZMQError) {
        let message = UnsafeMutablePointer<zmq_msg_t>.allocate(capacity: 1)
        defer { message.deallocate() }
        let retained = Unmanaged.passRetained(owner).toOpaque()
        let rc = zmq_msg_init_data(
            message, UnsafeMutableRawPointer(mutating: base), count,
            { _, hint in
                Unmanaged<AnyObject>.fromOpaque(hint!).release()
            }, retained)
        if rc != 0 {
            Unmanaged<AnyObject>.fromOpaque(retained).release()
            throw ZMQError.last("zmq_msg_init_data")
        }
        let flags = (more ? ZMQ_SNDMORE : 0) | (dontWait ? ZMQ_DONTWAIT : 0)
        if zmq_msg_send(message, handle, flags) < 0 {
            let error = ZMQError.last("zmq_msg_send")
            zmq_msg_close(message)  // runs the release callback
            throw error
        }
    }

    // MARK: Receiving

    /// Receives one part without copying its bytes.
    public func receiveFrame(dontWait: Bool = false) throws(ZMQError) -> ZMQFrame {
        let message = UnsafeMutablePointer<zmq_msg_t>.allocate(capacity: 1)
        zmq_msg_init(message)
        if zmq_msg_recv(message, handle, dontWait ? ZMQ_DONTWAIT : 0) < 0 {
            let error = ZMQError.last("zmq_msg_recv")
            zmq_msg_close(message)
            message.deallocate()
            throw error
        }
        return ZMQFrame(adopting: message)
    }

    /// Receives one part of at most 255 bytes by copy (a ROUTER's routing id) and whether more
    /// parts follow; nil when nothing is waiting.
    func receiveSmall(dontWait: Bool) throws(ZMQError) -> (bytes: [UInt8], more: Bool)? {
        var buffer = (UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        let n = withUnsafeMutableBytes(of: &buffer) {
            zmq_recv(handle, $0.baseAddress, $0.count, dontWait ? ZMQ_DONTWAIT : 0)
        }
        if n < 0 {
            let e = ZMQError.last("zmq_recv")
            if e.isTimeout { return nil }
            throw e
        }
        let bytes = withUnsafeBytes(of: &buffer) { Array($0.prefix(min(Int(n), $0.count))) }
        return (bytes, hasMoreParts)
    }

    /// Receives one part into a message on the stack and lends its bytes to `body` (with whether
    /// more parts follow, and a reader of the connection's ZAP user id — on a CURVE listener, the
    /// client's authenticated public key — for the caller to call only if it needs it): no
    /// allocation for the part. Nil when nothing is waiting.
    func withReceivedPart<R>(
        dontWait: Bool, _ body: (UnsafeRawBufferPointer, _ more: Bool, _ userID: () -> String?) -> R
    ) throws(ZMQError) -> R? {
        var message = zmq_msg_t()
        let outcome: Result<R?, ZMQError> = withUnsafeMutablePointer(to: &message) { p in
            zmq_msg_init(p)
            defer { zmq_msg_close(p) }
            if zmq_msg_recv(p, handle, dontWait ? ZMQ_DONTWAIT : 0) < 0 {
                let e = ZMQError.last("zmq_msg_recv")
                return e.isTimeout ? .success(nil) : .failure(e)
            }
            let userID = { zmq_msg_gets(p, "User-Id").map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 } }
            return .success(
                body(
                    UnsafeRawBufferPointer(start: zmq_msg_data(p), count: zmq_msg_size(p)), zmq_msg_more(p) != 0, userID
                ))
        }
        return try outcome.get()
    }

    /// Receives every part of one message.
    public func receiveMultipart(dontWait: Bool = false) throws(ZMQError) -> [ZMQFrame] {
        var frames = [try receiveFrame(dontWait: dontWait)]
        // The remaining parts are already queued: libzmq delivers a message atomically.
        while frames[frames.count - 1].hasMore { frames.append(try receiveFrame()) }
        return frames
    }

    /// Sends parts as one message.
    public func sendMultipart(_ parts: [[UInt8]], dontWait: Bool = false) throws(ZMQError) {
        for (i, p) in parts.enumerated() { try send(p, more: i < parts.count - 1, dontWait: dontWait) }
    }
}

extension Duration {
    /// Whole milliseconds (rounded toward zero), as socket options and wire fields take them.
    public var milliseconds: Int64 {
        let c = components
        return c.seconds * 1000 + c.attoseconds / 1_000_000_000_000_000
    }

    /// Seconds as a floating-point number, for logs and metrics.
    public var seconds: Double {
        let c = components
        return Double(c.seconds) + Double(c.attoseconds) * 1e-18
    }
}
