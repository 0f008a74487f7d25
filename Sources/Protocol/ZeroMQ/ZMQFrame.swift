import CZeroMQ

/// One received message part. Owns its bytes — either a libzmq message (received without a copy)
/// or a Swift array (for tests and locally built frames) — and frees them on deinit.
public final class ZMQFrame: @unchecked Sendable {
    private let message: UnsafeMutablePointer<zmq_msg_t>?
    private let array: [UInt8]
    /// Bytes in memory that `owner` keeps mapped (a shared-memory record, read in place).
    private let borrowed: (bytes: UnsafeRawBufferPointer, owner: AnyObject)?

    /// Takes ownership of an initialized libzmq message.
    init(adopting message: UnsafeMutablePointer<zmq_msg_t>) {
        self.message = message
        self.array = []
        self.borrowed = nil
    }

    /// A frame holding a copy of `bytes`.
    public init(_ bytes: [UInt8]) {
        self.message = nil
        self.array = bytes
        self.borrowed = nil
    }

    /// A frame over `bytes`, which stay valid while `owner` lives (the frame keeps it).
    init(borrowing bytes: UnsafeRawBufferPointer, owner: AnyObject) {
        self.message = nil
        self.array = []
        self.borrowed = (bytes, owner)
    }

    /// True when another part of the same message follows this one.
    var hasMore: Bool { message.map { zmq_msg_more($0) != 0 } ?? false }

    public var count: Int { message.map { zmq_msg_size($0) } ?? borrowed?.bytes.count ?? array.count }

    /// The frame's bytes, valid while the frame lives.
    public func withBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        if let message {
            return try body(UnsafeRawBufferPointer(start: zmq_msg_data(message), count: zmq_msg_size(message)))
        }
        if let borrowed { return try body(borrowed.bytes) }
        // Arrays keep their storage for the frame's lifetime: `array` is a `let`.
        let base = array.withUnsafeBytes { $0.baseAddress }
        return try body(UnsafeRawBufferPointer(start: base, count: array.count))
    }

    public var bytes: [UInt8] { withBytes { Array($0) } }

    deinit {
        if let message {
            zmq_msg_close(message)
            message.deallocate()
        }
    }
}
