import Foundation
import Logging
import Protocol
import RLAIF

/// This worker's side of the all-reduce ring: a listener its predecessor sends chunks to, and
/// connections to successors (kept across steps; the ring changes only when membership does).
///
/// In a cluster with keys both ends are CURVE: the listener proves this worker's key and admits
/// only the cluster's worker keys (`authorize`), and a successor is connected to only under the
/// key the coordinator saw it authenticate with.
final class RingLink: @unchecked Sendable {
    let listener: Endpoint
    let mailbox = ChunkMailbox()
    private let pump: Task<Void, Never>
    private let lock = NSLock()
    private var successors: [String: Endpoint] = [:]
    /// Our own pair in a cluster with keys.
    private let keyPair: CurveKeyPair?
    private let admitted: AuthorizedKeys?
    private let logger: Logger

    /// `keyPair`: this worker's key (the one it registers with); nil in an open cluster. The
    /// listener admits nobody until `authorize` names the cluster's keys.
    init(bind: String, keyPair: CurveKeyPair?, logger: Logger) throws {
        self.keyPair = keyPair
        let admitted = keyPair.map { _ in AuthorizedKeys([]) }
        self.admitted = admitted
        var security = ListenerSecurity.open
        if let keyPair, let admitted { security = .curve(server: keyPair, authorized: admitted) }
        listener = try Endpoint.listen(on: bind, security: security, logger: logger)
        pump = mailbox.pump(from: listener)
        self.logger = logger
    }

    /// The peers whose chunks this worker accepts (the cluster's worker keys, from the welcome).
    func authorize(_ keys: [String]) {
        guard let admitted else { return }
        if keys.isEmpty {
            logger.error("the coordinator sent no ring keys (protocol before 2.1?): no peer can send this worker chunks")
        }
        admitted.replace(with: keys)
    }

    /// The address peers connect to: the bound one, with a wildcard host replaced by this
    /// machine's `host` name (bind an explicit address with `--ring-bind` where names do not resolve).
    func advertised(host: String) -> String {
        listener.address.replacingOccurrences(of: "0.0.0.0", with: host)
    }

    /// The connection to a successor's listener; `key` is its public key (required with keys).
    func successor(_ address: String, key: String?) throws -> Endpoint {
        let security: ConnectorSecurity
        switch (keyPair, key) {
        case (nil, _): security = .open
        case (let pair?, let key?): security = .curve(client: pair, serverPublicKey: key)
        case (_?, nil):
            throw JobSpecError(message: "the ring spec has no key for \(address), and this cluster uses keys")
        }
        let id = address + "|" + (key ?? "")
        lock.lock()
        defer { lock.unlock() }
        if let e = successors[id] { return e }
        let e = try Endpoint.connect(to: address, security: security, logger: logger)
        successors[id] = e
        return e
    }

    func close() {
        pump.cancel()
        lock.lock()
        let all = successors.values
        successors = [:]
        lock.unlock()
        for e in all { e.close() }
        listener.close()
    }
}
