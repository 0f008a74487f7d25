import Foundation
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// What a reduction does with its port, on the port's thread (see `RingPort.run`): connect to its
/// successor, send it slices, take the predecessor's. Never used from another thread.
public final class RingSession {
    /// A connection to a successor's port.
    public struct Successor {
        fileprivate let socket: ZMQSocket
        /// Whether slices go through this rank's shared segment (the successor is on this host).
        public let sharesMemory: Bool
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
    private var arrived: [RingSlice: Wire.GradientChunk] = [:]
    private var arrivedBytes = 0
    /// Slices read in place from a predecessor's segment, taken but not yet confirmed (`confirm`).
    private var unconfirmed: [RingSlice: SharedSlice] = [:]
    private let backlogLimit: Int
    /// The newest reduction asked for: slices of older ones are dropped.
    private var current: (UInt64, UInt32) = (0, 0)
    /// Messages for successors that libzmq could not take yet (their queue was full).
    private var unsent: [(ZMQSocket, EncodedMessage)] = []
    /// Made when a successor on this host first connects; nil without shared memory.
    private var outbound: OutboundSegment?
    /// Set to 0 once making the segment failed: it is not tried again.
    private var sharedSegmentBytes: Int
    private let inbound = InboundSegments()
    private let sharedReads: Tally
    private let doorbellReads: Tally
    /// The predecessor's segment, whose doorbell `take` follows while it waits.
    private var watch: DoorbellWatch?
    private let followsDoorbell: Bool
    /// Slices of the current reduction already taken: their second arrival (the location
    /// message after the doorbell, or the other way round) is dropped.
    private var taken: Set<RingSlice> = []
    /// How long `take` follows the doorbell before it sleeps until the location message comes
    /// through libzmq: longer than a slice's way through two I/O threads, short enough that a
    /// late predecessor costs little CPU.
    static let doorbellSpin = Duration.microseconds(500)

    init(
        bind endpoint: String, security: ListenerSecurity, settings: EndpointSettings, backlogLimit: Int,
        sharedSegmentBytes: Int, logger: Logger, drops: DropCounter, jobs: RingJobs, wakePipe: WakePipe,
        sharedReads: Tally, doorbellReads: Tally, followsDoorbell: Bool
    ) throws(ZMQError) {
        self.followsDoorbell = followsDoorbell
        self.sharedReads = sharedReads
        self.doorbellReads = doorbellReads
        self.settings = settings
        self.sharedSegmentBytes = sharedSegmentBytes
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
    func serve() {
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

    func close() {
        for s in successors.values { s.close() }
        listener.close()
        authenticator?.close()
    }

    // MARK: What a reduction calls

    /// The connection to the port at `address` (kept for later reductions). `sharedMemory`
    /// false: slices go in frames even to this host (what outlives the segment's reuse).
    public func successor(
        _ address: String, security: ConnectorSecurity, sharedMemory: Bool = true
    ) throws(ZMQError) -> Successor {
        let id = address + "|" + (security.serverPublicKey ?? "")
        let sharesMemory = sharedMemory && Self.isOnThisHost(address) && sharedSegment() != nil
        if let s = successors[id] { return Successor(socket: s, sharesMemory: sharesMemory) }
        let s = try ZMQSocket(context, .dealer)
        try s.apply(security)
        try s.apply(settings)
        try s.connect(address)
        successors[id] = s
        if sharesMemory { logger.info("Ring slices to \(address) go through shared memory (same host)") }
        return Successor(socket: s, sharesMemory: sharesMemory)
    }

    /// Queues `message` for `successor` and hands libzmq what it can take now, without waiting.
    /// A slice for a successor on this host is written to the shared segment, and only its
    /// location travels (in frames still when the segment's half for this reduction is full).
    public func send(_ message: Wire.Message, to successor: Successor) {
        if successor.sharesMemory, case .gradientChunk(let c) = message, let location = outbound?.write(c) {
            unsent.append((successor.socket, location))
        } else {
            unsent.append((successor.socket, Wire.encode(message)))
        }
        flush()
    }

    /// An `ipc://` path or a loopback `tcp://` address: the successor runs on this host.
    static func isOnThisHost(_ address: String) -> Bool {
        if address.hasPrefix("ipc://") { return true }
        guard address.hasPrefix("tcp://") else { return false }
        let host = address.dropFirst(6)
        return host.hasPrefix("127.") || host.hasPrefix("localhost:") || host.hasPrefix("[::1]:")
    }

    /// This rank's outbound segment, made on first use (nil where shared memory is off or the
    /// system has none to give: the ring then uses frames only).
    private func sharedSegment() -> OutboundSegment? {
        if outbound == nil, sharedSegmentBytes > 0 {
            outbound = OutboundSegment(bytes: sharedSegmentBytes)
            if outbound == nil {
                logger.warning(
                    "No shared memory for the ring (\(sharedSegmentBytes >> 20) MiB): slices to this host travel in frames"
                )
                sharedSegmentBytes = 0
            }
        }
        return outbound
    }

    /// The slice named `key`, waiting at most `timeout` for it. Asking for a newer reduction drops
    /// what is left of older ones.
    public func take(_ key: RingSlice, timeout: Duration) throws(RingPortError) -> Wire.ChunkPayload {
        if key.reduction > current {
            current = key.reduction
            arrived = arrived.filter { $0.key.reduction >= current }
            arrivedBytes = arrived.values.reduce(0) { $0 + $1.payload.byteCount }
            unconfirmed = [:]
            taken = []
        }
        let start = ContinuousClock.now
        let deadline = start + timeout
        while true {
            if let chunk = arrived.removeValue(forKey: key) {
                arrivedBytes -= chunk.payload.byteCount
                unconfirmed[key] = chunk.shared
                taken.insert(key)
                return chunk.payload
            }
            if jobs.closing { throw .closed }
            let now = ContinuousClock.now
            let left = deadline - now
            if left <= .zero { throw .timedOut(key, timeout) }
            // While the predecessor's doorbell can be followed, a published slice is read at once;
            // otherwise (and after the spin) the location message wakes this thread.
            if followDoorbell() { continue }
            if watch?.epoch == key.epoch, now - start < Self.doorbellSpin {
                sched_yield()
                continue
            }
            wait(timeout: left)
        }
    }

    /// Checks that a slice taken from a predecessor's segment was not overwritten while it was
    /// used (it is read in place): call it after using the slice and before sending anything made
    /// from it. A slice that came in frames needs no check.
    public func confirm(_ key: RingSlice) throws(RingPortError) {
        guard let shared = unconfirmed.removeValue(forKey: key) else { return }
        guard inbound.isIntact(shared) else { throw .overwritten(key) }
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
            switch listener.receiveMessage(
                limits: settings.limits, readsClientKey: false, dontWait: true, segments: inbound)
            {
            case nil: return
            case .empty: continue
            case .message(let inbound, _):
                guard case .gradientChunk(let c) = inbound.message else {
                    drops.drop(
                        "unexpected", from: "\(inbound.peer.map { "\($0)" } ?? "peer")", logger: logger,
                        "Dropped a \(inbound.message.kind) message on the ring port")
                    continue
                }
                if followsDoorbell, let shared = c.shared { follow(shared, epoch: c.ringEpoch) }
                deliver(c)
            case .refused(let error, let peer):
                let source = peer.map { "\($0)" } ?? "peer"
                drops.drop(
                    error.code.rawValue, from: source, logger: logger, "Dropped message from [\(source)]: \(error)")
            }
        }
    }

    /// Keeps `c` until it is asked for. Slices of a finished reduction are dropped, and so is a
    /// backlog past its limit or a slice already taken.
    private func deliver(_ c: Wire.GradientChunk, byDoorbell: Bool = false) {
        let key = RingSlice(c)
        guard key.reduction > current || (key.reduction == current && !taken.contains(key)) else { return }
        guard arrivedBytes + c.payload.byteCount <= backlogLimit else {
            drops.increment("backlogFull")
            logger.warning("Dropped a ring slice: \(arrivedBytes) bytes already wait to be asked for")
            return
        }
        if let replaced = arrived.updateValue(c, forKey: key) {
            arrivedBytes -= replaced.payload.byteCount
        } else if c.shared != nil {
            sharedReads.add()
            if byDoorbell { doorbellReads.add() }
        }
        arrivedBytes += c.payload.byteCount
    }

    /// Follows the doorbell of the segment a location message of ring epoch `epoch` named.
    private func follow(_ segment: SharedSlice, epoch: UInt32) {
        if let w = watch, w.epoch > epoch || (w.epoch == epoch && w.segment == .init(segment)) { return }
        watch = inbound.watch(segment, epoch: epoch)
    }

    /// Reads the records the predecessor published for the current reduction since the last
    /// look; true when one came. A record that does not read stops the following (the location
    /// messages still come in frames).
    private func followDoorbell() -> Bool {
        guard var w = watch, w.epoch == current.1, let bell = w.doorbell(), bell.reduction == current else {
            return false
        }
        if w.reduction.map({ $0 != current }) ?? true { (w.reduction, w.cursor) = (current, bell.start) }
        var came = false
        while w.cursor < bell.end {
            do throws(WireError) {
                let (chunk, next) = try inbound.record(of: w, at: w.cursor, limits: settings.limits)
                w.cursor = next
                deliver(chunk, byDoorbell: true)
                came = true
            } catch {
                drops.drop(
                    error.code.rawValue, from: "doorbell", logger: logger, "Stopped following a doorbell: \(error)")
                watch = nil
                return came
            }
        }
        watch = w
        return came
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
