import CZeroMQ

/// A libzmq call failed: which call, errno, and libzmq's own description.
public struct ZMQError: Error, CustomStringConvertible, Equatable, Sendable {
    public let call: String
    public let errno: Int32

    public var description: String { "\(call) failed: \(String(cString: zmq_strerror(errno))) (errno \(errno))" }

    /// The last error of the calling thread.
    static func last(_ call: String) -> ZMQError { ZMQError(call: call, errno: zmq_errno()) }

    public var isTimeout: Bool { errno == EAGAIN }
    /// The context was terminated: the socket's owner should close it and stop.
    public var isTerminated: Bool { errno == ETERM }
}

@inline(__always) func check(_ rc: Int32, _ call: @autoclosure () -> String) throws(ZMQError) {
    if rc != 0 { throw ZMQError.last(call()) }
}
