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

/// The thread that owns an endpoint's sockets (`Endpoint`, `RingPort`): it creates and binds
/// them, reports the address (or why it could not), and serves until told to stop; other threads
/// wake it through `wake`, and its owner stops it once, however often the owner is closed.
final class SocketThread: Sendable {
    let wake: WakePipe
    /// The endpoint the thread bound or connected (a `*` port resolved).
    let address: String
    private let finished: DispatchSemaphore
    private let stopRequested = Mutex(false)

    /// Runs `body` on a new thread named `name` and returns once the body has called `ready`
    /// (which it must, once, before serving) with its address; when it reports an error instead,
    /// waits for the thread to end and throws that.
    init(
        name: String,
        _ body: @escaping @Sendable (_ wake: WakePipe, _ ready: (Result<String, ZMQError>) -> Void) -> Void
    ) throws(ZMQError) {
        let wake = try WakePipe()
        let finished = DispatchSemaphore(value: 0)
        let outcome = Mutex<Result<String, ZMQError>?>(nil)
        let reported = DispatchSemaphore(value: 0)
        let thread = Thread {
            body(wake) { result in
                outcome.withLock { $0 = result }
                reported.signal()
            }
            finished.signal()
        }
        thread.name = name
        thread.start()
        reported.wait()
        switch outcome.withLock({ $0 })! {
        case .success(let a): address = a
        case .failure(let e):
            finished.wait()
            throw e
        }
        self.wake = wake
        self.finished = finished
    }

    /// The first call runs `request` (which tells the thread to stop), wakes the thread and waits
    /// for it to finish; later calls return at once.
    func stop(_ request: () -> Void) {
        let first = stopRequested.withLock { r -> Bool in
            defer { r = true }
            return !r
        }
        guard first else { return }
        request()
        wake.wake()
        finished.wait()
    }
}
