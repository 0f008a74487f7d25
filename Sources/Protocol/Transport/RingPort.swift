import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The sockets of one rank of an all-reduce ring, owned by a thread that also runs the reduction.
///
/// The predecessor's slices are read, and the successor written to, by the thread that adds
/// them, as an MPI rank does: no slice crosses between threads inside a rank. (Through an
/// `Endpoint` each crossed three — socket thread, stream consumer, mailbox actor — and a trace of
/// one step showed slices arriving in bursts between those wake-ups.) Between reductions the thread keeps
/// reading, so a fast predecessor's slices of the next step wait here rather than in libzmq's
/// queues, and CURVE handshakes are answered at any time.
///
/// ```swift
/// let port = try RingPort(bind: "tcp://0.0.0.0:*")
/// let total = try await port.run { session in
///     let next = try session.successor(address, security: .open)
///     … session.send(slice, to: next) … session.take(key, timeout: .seconds(30)) …
/// }
/// ```
public final class RingPort: Sendable {
    /// The endpoint actually bound (a `*` port resolved).
    public let address: String
    /// What was refused, by reason.
    public let drops = DropCounter()

    private let jobs = RingJobs()
    private let thread: SocketThread

    /// Most bytes of slices held before they are asked for (see `RingSession`): a predecessor is
    /// at most a reduction ahead, so a legitimate backlog stays far below this.
    public static let defaultBacklogLimit = 2 << 30

    /// Binds `endpoint` (a CURVE server with `security`, admitting only its authorized keys).
    public init(
        bind endpoint: String, security: ListenerSecurity = .open, settings: EndpointSettings = .init(),
        backlogLimit: Int = defaultBacklogLimit, logger: Logger = Logger(label: "rlaif.ring")
    ) throws(ZMQError) {
        thread = try SocketThread(name: "rlaif-ring") { [jobs, drops] wake, ready in
            do throws(ZMQError) {
                let session = try RingSession(
                    bind: endpoint, security: security, settings: settings, backlogLimit: backlogLimit, logger: logger,
                    drops: drops, jobs: jobs, wakePipe: wake)
                ready(.success(session.address))
                session.serve()
                session.close()
            } catch {
                ready(.failure(error))
            }
        }
        address = thread.address
    }

    /// Runs `body` on the port's thread (one body at a time, in the order asked) and returns what
    /// it returns. After `close`, fails with `RingPortError.closed`.
    public func run<R: Sendable>(_ body: @escaping @Sendable (RingSession) throws -> R) async throws -> R {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<R, any Error>) in
            let queued = jobs.push { session in c.resume(with: Result { try body(session) }) }
            if queued { thread.wake.wake() } else { c.resume(throwing: RingPortError.closed) }
        }
    }

    /// Stops the thread (a reduction under way fails with `RingPortError.closed`) and closes the
    /// sockets. Safe to call twice.
    public func close() {
        thread.stop { jobs.close() }
    }

    deinit { close() }
}

/// Why a ring operation on a `RingPort` did not complete.
public enum RingPortError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The slice did not arrive within the wait.
    case timedOut(RingSlice, Duration)
    /// The successor took nothing within the wait (its queue stayed full).
    case sendStalled(Duration)
    /// The port was closed.
    case closed

    public var description: String {
        switch self {
        case .timedOut(let s, let wait):
            "no \(s.phase) slice \(s.slice) of chunk \(s.chunk), step \(s.step) (epoch \(s.epoch)), within \(wait)"
        case .sendStalled(let wait): "the successor took no slice within \(wait)"
        case .closed: "the ring port is closed"
        }
    }
}

extension Wire.ChunkPayload {
    /// The bytes its frames hold.
    var byteCount: Int {
        switch self {
        case .units(let u): u.byteCount
        case .packedUnits(let low, let patches): low.byteCount + patches.byteCount
        case .values(let t): t.count * MemoryLayout<Float>.size
        }
    }
}

/// Names one slice of one reduction.
public struct RingSlice: Hashable, Sendable {
    public var step: UInt64
    public var epoch: UInt32
    public var phase: Wire.RingPhase
    public var chunk: UInt32
    public var slice: UInt32

    public init(step: UInt64, epoch: UInt32, phase: Wire.RingPhase, chunk: UInt32, slice: UInt32) {
        (self.step, self.epoch, self.phase, self.chunk, self.slice) = (step, epoch, phase, chunk, slice)
    }

    init(_ c: Wire.GradientChunk) {
        self.init(step: c.step, epoch: c.ringEpoch, phase: c.phase, chunk: c.chunkIndex, slice: c.sliceIndex)
    }

    /// Which reduction: (step, epoch), ordered.
    var reduction: (UInt64, UInt32) { (step, epoch) }
}

/// Work queued for a port's thread, and whether the port is closing.
final class RingJobs: Sendable {
    typealias Job = @Sendable (RingSession) -> Void
    private let state = Mutex<(jobs: [Job], closing: Bool)>(([], false))

    /// False once the port is closing.
    func push(_ job: @escaping Job) -> Bool {
        state.withLock { s in
            if s.closing { return false }
            s.jobs.append(job)
            return true
        }
    }

    func next() -> Job? {
        state.withLock { s in s.jobs.isEmpty ? nil : s.jobs.removeFirst() }
    }

    var closing: Bool { state.withLock { $0.closing } }

    func close() { state.withLock { $0.closing = true } }
}

/// What a reduction does with its port, on the port's thread (see `RingPort.run`): connect to its
/// successor, send it slices, take the predecessor's. Never used from another thread.
public final class RingSession {
    /// A connection to a successor's port.
    public struct Successor {
        fileprivate let socket: ZMQSocket
    }

    let address: String
    private let context = ZMQContext()
    private let listener: ZMQSocket
    private let authenticator: ZAPAuthenticator?
    private let settings: EndpointSettings
    private let logger: Logger
    private let drops: DropCounter
    private let jobs: RingJobs
    private let wakePipe: WakePipe
    private var successors: [String: ZMQSocket] = [:]
    /// Slices that arrived before they were asked for, and their bytes (bounded: a peer that
    /// floods the port with slices nobody asks for loses them, not the worker its memory).
    private var arrived: [RingSlice: Wire.ChunkPayload] = [:]
    private var arrivedBytes = 0
    private let backlogLimit: Int
    /// The newest reduction asked for: slices of older ones are dropped.
    private var current: (UInt64, UInt32) = (0, 0)
    /// Messages for successors that libzmq could not take yet (their queue was full).
    private var unsent: [(ZMQSocket, EncodedMessage)] = []

    fileprivate init(
        bind endpoint: String, security: ListenerSecurity, settings: EndpointSettings, backlogLimit: Int,
        logger: Logger, drops: DropCounter, jobs: RingJobs, wakePipe: WakePipe
    ) throws(ZMQError) {
        self.settings = settings
        self.backlogLimit = backlogLimit
        self.logger = logger
        self.drops = drops
        self.jobs = jobs
        self.wakePipe = wakePipe
        // The port has a context of its own: its ZAP handler (per context) admits ring peers
        // only, and its I/O thread carries nothing but ring traffic.
        if case .curve(_, let authorized) = security {
            // The ZAP handler must be bound before the socket that consults it.
            authenticator = try ZAPAuthenticator(context: context, authorized: authorized)
        } else {
            authenticator = nil
        }
        let listener = try ZMQSocket(context, .router)
        try listener.apply(security)
        try listener.apply(settings)
        try listener.bind(endpoint)
        self.listener = listener
        address = listener.lastEndpoint
    }

    /// The thread's loop: runs queued reductions; in between, reads slices and answers handshakes.
    fileprivate func serve() {
        while true {
            if let job = jobs.next() {
                job(self)
                continue
            }
            if jobs.closing { break }
            wait(timeout: nil)
        }
        // Reductions queued as the port closed fail at their first wait.
        while let job = jobs.next() { job(self) }
    }

    fileprivate func close() {
        for s in successors.values { s.close() }
        listener.close()
        authenticator?.close()
    }

    // MARK: What a reduction calls

    /// The connection to the port at `address` (kept for later reductions).
    public func successor(_ address: String, security: ConnectorSecurity) throws(ZMQError) -> Successor {
        let id = address + "|" + (security.serverPublicKey ?? "")
        if let s = successors[id] { return Successor(socket: s) }
        let s = try ZMQSocket(context, .dealer)
        try s.apply(security)
        try s.apply(settings)
        try s.connect(address)
        successors[id] = s
        return Successor(socket: s)
    }

    /// Queues `message` for `successor` and hands libzmq what it can take now, without waiting.
    public func send(_ message: Wire.Message, to successor: Successor) {
        unsent.append((successor.socket, Wire.encode(message)))
        flush()
    }

    /// The slice named `key`, waiting at most `timeout` for it. Asking for a newer reduction drops
    /// what is left of older ones.
    public func take(_ key: RingSlice, timeout: Duration) throws(RingPortError) -> Wire.ChunkPayload {
        if key.reduction > current {
            current = key.reduction
            arrived = arrived.filter { $0.key.reduction >= current }
            arrivedBytes = arrived.values.reduce(0) { $0 + $1.byteCount }
        }
        let deadline = ContinuousClock.now + timeout
        while true {
            if let payload = arrived.removeValue(forKey: key) {
                arrivedBytes -= payload.byteCount
                return payload
            }
            if jobs.closing { throw .closed }
            let left = deadline - .now
            if left <= .zero { throw .timedOut(key, timeout) }
            wait(timeout: left)
        }
    }

    /// Waits until libzmq has taken every queued message, at most `timeout`.
    public func finishSending(timeout: Duration) throws(RingPortError) {
        let deadline = ContinuousClock.now + timeout
        while !unsent.isEmpty {
            if jobs.closing { throw .closed }
            let left = deadline - .now
            if left <= .zero { throw .sendStalled(timeout) }
            wait(timeout: left)
        }
    }

    // MARK: The socket work

    /// Waits for input, a wake-up or room to send, and deals with what came.
    private func wait(timeout: Duration?) {
        var items: [(ZMQPoll.Item, ZMQPoll.Events)] = [
            (.socket(listener), .readable), (.fileDescriptor(wakePipe.readEnd), .readable),
        ]
        if let authenticator { items.append((.socket(authenticator.socket), .readable)) }
        if let (blocked, _) = unsent.first { items.append((.socket(blocked), .writable)) }
        guard let events = try? ZMQPoll.wait(items, timeout: timeout) else { return }
        if events[1].contains(.readable) {
            wakePipe.drain()
        }
        if events[0].contains(.readable) { receive() }
        if authenticator != nil, events[2].contains(.readable) { authenticator?.handle(drops: drops, logger: logger) }
        if !unsent.isEmpty { flush() }
    }

    private func receive() {
        for _ in 0..<settings.receiveBatch {
            switch listener.receiveMessage(limits: settings.limits, readsClientKey: false, dontWait: true) {
            case nil: return
            case .empty: continue
            case .message(let inbound, _):
                guard case .gradientChunk(let c) = inbound.message else {
                    drops.drop(
                        "unexpected", from: "\(inbound.peer.map { "\($0)" } ?? "peer")", logger: logger,
                        "Dropped a \(inbound.message.kind) message on the ring port")
                    continue
                }
                let key = RingSlice(c)
                // Slices of a finished reduction are dropped; so is a backlog past its limit.
                guard key.reduction >= current else { continue }
                guard arrivedBytes + c.payload.byteCount <= backlogLimit else {
                    drops.increment("backlogFull")
                    logger.warning("Dropped a ring slice: \(arrivedBytes) bytes already wait to be asked for")
                    continue
                }
                if let replaced = arrived.updateValue(c.payload, forKey: key) { arrivedBytes -= replaced.byteCount }
                arrivedBytes += c.payload.byteCount
            case .refused(let error, let peer):
                let source = peer.map { "\($0)" } ?? "peer"
                drops.drop(
                    error.code.rawValue, from: source, logger: logger, "Dropped message from [\(source)]: \(error)")
            }
        }
    }

    /// Hands libzmq queued messages, in order, until one's queue is full.
    private func flush() {
        var sent = 0
        defer { unsent.removeFirst(sent) }
        for (socket, message) in unsent {
            do {
                try socket.send(message, to: nil, dontWait: true)
            } catch  where error.isTimeout {
                return
            } catch {
                drops.increment("sendFailed")
                logger.warning("Dropped a ring slice: \(error)")
            }
            sent += 1
        }
    }
}
