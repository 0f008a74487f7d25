import Foundation
import Logging
import Protocol

/// This worker's side of the all-reduce ring: a listener its predecessor sends chunks to, and
/// connections to successors (kept across steps; the ring changes only when membership does).
final class RingLink: @unchecked Sendable {
    let listener: Endpoint
    let mailbox = ChunkMailbox()
    private let pump: Task<Void, Never>
    private let lock = NSLock()
    private var successors: [String: Endpoint] = [:]
    private let logger: Logger

    init(bind: String, logger: Logger) throws {
        listener = try Endpoint.listen(on: bind, logger: logger)
        pump = mailbox.pump(from: listener)
        self.logger = logger
    }

    /// The address peers connect to: the bound one, with a wildcard host replaced by this
    /// machine's `host` name (bind an explicit address with `--ring-bind` where names do not resolve).
    func advertised(host: String) -> String {
        listener.address.replacingOccurrences(of: "0.0.0.0", with: host)
    }

    func successor(_ address: String) throws -> Endpoint {
        lock.lock()
        defer { lock.unlock() }
        if let e = successors[address] { return e }
        let e = try Endpoint.connect(to: address, logger: logger)
        successors[address] = e
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
