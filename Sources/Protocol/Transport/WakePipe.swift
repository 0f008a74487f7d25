#if canImport(Glibc)
    import Glibc
#endif

/// How other threads wake a socket thread blocked in `zmq_poll`: a byte written to a pipe whose
/// read end the thread polls beside its sockets. Both ends close when the last owner lets go.
final class WakePipe: Sendable {
    /// Polled by the socket thread.
    let readEnd: Int32
    private let writeEnd: Int32

    init() throws(ZMQError) {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw ZMQError(call: "pipe", errno: errno) }
        for fd in fds { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        (readEnd, writeEnd) = (fds[0], fds[1])
    }

    func wake() {
        var b: UInt8 = 1
        _ = write(writeEnd, &b, 1)
    }

    /// Empties the pipe (on the socket thread, after the poll saw it readable).
    func drain() {
        var sink = (UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        while withUnsafeMutableBytes(of: &sink, { read(readEnd, $0.baseAddress, $0.count) }) > 0 {}
    }

    deinit {
        Glibc.close(readEnd)
        Glibc.close(writeEnd)
    }
}
