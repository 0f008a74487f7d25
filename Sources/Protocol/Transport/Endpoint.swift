import CZeroMQ
import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A ZeroMQ socket owned by one dedicated thread and bridged to Swift concurrency.
///
/// Callers queue messages with `send(_:to:)` from any task; decoded messages arrive on `incoming`.
/// A listening endpoint (ROUTER) serves many peers; a connecting one (DEALER) talks to one.
/// Malformed, hostile or unauthorized input is logged (never its payload), counted in `drops`
/// and dropped; the endpoint keeps serving everyone else.
///
/// ```swift
/// let server = try Endpoint.listen(on: "tcp://127.0.0.1:*")
/// for await inbound in server.incoming { server.send(.welcome(…), to: inbound.peer) }
/// ```
public final class Endpoint: Sendable {
    public enum Role: Sendable {
        case listen(String, ListenerSecurity)
        case connect(String, ConnectorSecurity)
    }

    /// Decoded messages, in arrival order. Finishes when the endpoint closes.
    public let incoming: InboundMessages
    /// What was refused, by reason.
    public let drops = DropCounter()
    /// The endpoint actually bound or connected (a `*` port resolved).
    public let address: String

    private let outbox: Outbox
    private let thread: SocketThread

    public static func listen(
        on endpoint: String, security: ListenerSecurity = .open, settings: EndpointSettings = .init(),
        logger: Logger = Logger(label: "rlaif.protocol")
    ) throws(ZMQError) -> Endpoint {
        try Endpoint(role: .listen(endpoint, security), settings: settings, logger: logger)
    }

    public static func connect(
        to endpoint: String, security: ConnectorSecurity = .open, settings: EndpointSettings = .init(),
        logger: Logger = Logger(label: "rlaif.protocol")
    ) throws(ZMQError) -> Endpoint {
        try Endpoint(role: .connect(endpoint, security), settings: settings, logger: logger)
    }

    private init(role: Role, settings: EndpointSettings, logger: Logger) throws(ZMQError) {
        let outbox = Outbox(capacity: settings.outboxCapacity)
        self.outbox = outbox
        let (stream, continuation) = AsyncStream<[Inbound]>.makeStream()
        incoming = InboundMessages(batches: stream)
        // The socket is created, configured and bound on its own thread; the address comes back here.
        thread = try SocketThread(name: "rlaif-zmq") { [drops] wake, ready in
            SocketLoop(role: role, settings: settings, logger: logger, wakePipe: wake, continuation: continuation)
                .run(outbox: outbox, drops: drops, ready: ready)
        }
        address = thread.address
    }

    /// Queues `message` for `peer` (nil on a connecting endpoint). Waits only when the outbox
    /// holds more than `EndpointSettings.outboxCapacity` messages, until the socket thread has
    /// taken them: a producer never outruns the network by more than that.
    public func send(_ message: Wire.Message, to peer: PeerID? = nil) async {
        await send(encoded: Wire.encode(message), to: peer)
    }

    /// `send` for an already encoded message (encode once, send to many).
    public func send(encoded: EncodedMessage, to peer: PeerID? = nil) async {
        if enqueue(encoded, to: peer) { await outbox.waitForRoom() }
    }

    /// Queues `message` without ever waiting, whatever the outbox holds: for replies and control
    /// messages from code that must not suspend.
    public func post(_ message: Wire.Message, to peer: PeerID? = nil) {
        _ = enqueue(Wire.encode(message), to: peer)
    }

    /// The most messages the outbox has held at once (for tests of backpressure).
    var outboxPeak: Int { outbox.peak }

    /// Returns true when the outbox is over capacity.
    private func enqueue(_ encoded: EncodedMessage, to peer: PeerID?) -> Bool {
        switch outbox.push(encoded, to: peer) {
        case .closed:
            drops.increment("closed")
            return false
        case .queued(let needsWake, let full):
            // Only the first message after a drain needs to wake the loop.
            if needsWake { wake() }
            return full
        }
    }

    private func wake() { thread.wake.wake() }

    /// Sends what is queued, closes the socket and finishes `incoming`. Safe to call twice.
    public func close() {
        thread.stop { outbox.markClosing() }
    }

    deinit { close() }
}
