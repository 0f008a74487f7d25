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
    /// Slices this port read from a predecessor's shared segment (the rest came in frames).
    public var slicesFromSharedMemory: Int { sharedReads.value }
    /// Of those, the slices read by following the predecessor's doorbell, before their location
    /// came through libzmq.
    public var slicesByDoorbell: Int { doorbellReads.value }
    private let sharedReads = Tally()
    private let doorbellReads = Tally()

    private let jobs = RingJobs()
    private let thread: SocketThread

    /// Most bytes of slices held before they are asked for (see `RingSession`): a predecessor is
    /// at most a reduction ahead, so a legitimate backlog stays far below this.
    public static let defaultBacklogLimit = 2 << 30
    /// Two halves of 32 MiB: a reduction's slices to a same-host successor up to that size go
    /// through shared memory (the rest in frames).
    public static let defaultSharedSegmentBytes = 64 << 20

    /// Binds `endpoint` (a CURVE server with `security`, admitting only its authorized keys).
    /// `sharedSegmentBytes`: the outbound segment for successors on this host (0: sockets only).
    /// `followsDoorbell`: whether a wait for a same-host predecessor's slice watches its segment
    /// (false: the slice is read once its location comes through libzmq; for comparison).
    public init(
        bind endpoint: String, security: ListenerSecurity = .open, settings: EndpointSettings = .init(),
        backlogLimit: Int = defaultBacklogLimit, sharedSegmentBytes: Int = defaultSharedSegmentBytes,
        followsDoorbell: Bool = true, logger: Logger = Logger(label: "rlaif.ring")
    ) throws(ZMQError) {
        thread = try SocketThread(name: "rlaif-ring") { [jobs, drops, sharedReads, doorbellReads] wake, ready in
            do throws(ZMQError) {
                let session = try RingSession(
                    bind: endpoint, security: security, settings: settings, backlogLimit: backlogLimit,
                    sharedSegmentBytes: sharedSegmentBytes, logger: logger, drops: drops, jobs: jobs, wakePipe: wake,
                    sharedReads: sharedReads, doorbellReads: doorbellReads, followsDoorbell: followsDoorbell)
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
    /// A slice read in place from the predecessor's segment was overwritten while it was used.
    case overwritten(RingSlice)

    public var description: String {
        switch self {
        case .timedOut(let s, let wait):
            "no \(s.phase) slice \(s.slice) of chunk \(s.chunk), step \(s.step) (epoch \(s.epoch)), within \(wait)"
        case .sendStalled(let wait): "the successor took no slice within \(wait)"
        case .closed: "the ring port is closed"
        case .overwritten(let s):
            "\(s.phase) slice \(s.slice) of chunk \(s.chunk), step \(s.step), was overwritten in shared memory while it was read"
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

/// A count that one thread adds to and any reads.
final class Tally: Sendable {
    private let count = Atomic<Int>(0)
    func add() { count.add(1, ordering: .relaxed) }
    var value: Int { count.load(ordering: .relaxed) }
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
