import CZeroMQ

/// A libzmq context: the I/O threads behind every socket made from it. Thread-safe.
///
/// `terminate()` (or deinit) blocks until every socket of the context is closed, so socket
/// owners must close theirs when they see `ZMQError.isTerminated`.
public final class ZMQContext: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer

    /// The process's context for endpoints that need no context of their own. Its I/O thread
    /// serves all of them, as one libzmq context per process is meant to.
    public static let shared = ZMQContext()

    public init(ioThreads: Int = 1) {
        handle = zmq_ctx_new()
        zmq_ctx_set(handle, ZMQ_IO_THREADS, Int32(ioThreads))
        // Our messages are bounded by the wire layer's own limits; lift libzmq's socket cap.
        zmq_ctx_set(handle, ZMQ_MAX_SOCKETS, 4096)
    }

    /// Makes the context's sockets fail with ETERM and waits until they are closed.
    public func terminate() { zmq_ctx_term(handle) }

    /// Makes blocking calls fail with ETERM without waiting; sockets must still be closed.
    public func shutdown() { zmq_ctx_shutdown(handle) }

    deinit { zmq_ctx_term(handle) }
}
