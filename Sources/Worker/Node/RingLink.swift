import Foundation
import Logging
import Protocol
import RLAIF
import Tensor

/// This worker's side of the all-reduce ring: a port its predecessor sends slices to, and
/// connections to successors (kept across steps; the ring changes only when membership does),
/// all on the port's own thread, where reductions run.
///
/// In a cluster with keys both ends are CURVE: the port proves this worker's key and admits
/// only the cluster's worker keys (`authorize`), and a successor is connected to only under the
/// key the coordinator saw it authenticate with.
final class RingLink: Sendable {
    let port: RingPort
    /// Our own pair in a cluster with keys.
    private let keyPair: CurveKeyPair?
    private let admitted: AuthorizedKeys?
    private let logger: Logger

    /// `keyPair`: this worker's key (the one it registers with); nil in an open cluster. The
    /// port admits nobody until `authorize` names the cluster's keys.
    /// `sharedSegmentBytes`: the outbound segment for successors on this host (0: sockets only).
    init(
        bind: String, keyPair: CurveKeyPair?, sharedSegmentBytes: Int = RingPort.defaultSharedSegmentBytes,
        followsDoorbell: Bool = true, logger: Logger
    ) throws {
        self.keyPair = keyPair
        let admitted = keyPair.map { _ in AuthorizedKeys([]) }
        self.admitted = admitted
        var security = ListenerSecurity.open
        if let keyPair, let admitted { security = .curve(server: keyPair, authorized: admitted) }
        port = try RingPort(
            bind: bind, security: security, sharedSegmentBytes: sharedSegmentBytes, followsDoorbell: followsDoorbell,
            logger: logger)
        self.logger = logger
    }

    /// The peers whose slices this worker accepts (the cluster's worker keys, from the welcome).
    func authorize(_ keys: [String]) {
        guard let admitted else { return }
        if keys.isEmpty {
            logger.error(
                "the coordinator sent no ring keys (protocol before 2.1?): no peer can send this worker chunks")
        }
        admitted.replace(with: keys)
    }

    /// The address peers connect to: the bound one, with a wildcard host replaced by this
    /// machine's `host` name (bind an explicit address with `--ring-bind` where names do not resolve).
    func advertised(host: String) -> String {
        port.address.replacingOccurrences(of: "0.0.0.0", with: host)
    }

    /// Runs `reduction` of `sum` with the successor at `next` (whose public key is `key`, required
    /// in a cluster with keys).
    func reduce(_ reduction: RingAllReduce, _ sum: consuming ExactSum, next: String, key: String?) async throws
        -> Tensor
    {
        let security = try security(next: next, key: key)
        let handoff = Handoff(sum)
        return try await port.run { session in
            let successor = try session.successor(next, security: security)
            return try reduction.run(handoff.take(), next: successor, session: session)
        }
    }

    /// How to connect to the peer at `next` whose public key is `key` (required with keys).
    func security(next: String, key: String?) throws -> ConnectorSecurity {
        switch (keyPair, key) {
        case (nil, _): return .open
        case (let pair?, let key?): return .curve(client: pair, serverPublicKey: key)
        case (_?, nil):
            throw JobSpecError(message: "the ring spec has no key for \(next), and this cluster uses keys")
        }
    }

    func close() { port.close() }
}

/// Hands a value to the port's thread, which takes it over: no other reference stays behind, so
/// the reduction owns the sum's buffer (adding into it never copies).
private final class Handoff<Value>: @unchecked Sendable {
    private var value: Value?
    init(_ value: consuming Value) { self.value = value }
    func take() -> Value { value.take()! }
}
