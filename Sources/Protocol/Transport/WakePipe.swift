import Foundation
import Synchronization

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

/// The end of a socket thread: its owner stops it once, however often the owner is closed.
final class SocketThreadExit: Sendable {
    private let finished = DispatchSemaphore(value: 0)
    private let requested = Mutex(false)

    /// The thread's last act.
    func threadFinished() { finished.signal() }

    /// The first call runs `request` (which tells the thread to stop), wakes the thread through
    /// `wake` and waits for it to finish; later calls return at once.
    func stop(wake: WakePipe, _ request: () -> Void) {
        let first = requested.withLock { r -> Bool in
            defer { r = true }
            return !r
        }
        guard first else { return }
        request()
        wake.wake()
        finished.wait()
    }

    /// Waits for a thread that ends by itself (its setup failed).
    func waitForThread() { finished.wait() }
}
