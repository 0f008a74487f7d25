import CZeroMQ
import Logging

/// libzmq's ZAP hook (RFC 27): for each CURVE handshake on a socket of the same context, libzmq
/// asks this REP socket whether the client's public key may connect.
final class ZAPAuthenticator {
    let socket: ZMQSocket
    private let authorized: AuthorizedKeys

    init(context: ZMQContext, authorized: AuthorizedKeys) throws(ZMQError) {
        socket = try ZMQSocket(context, .rep)
        try socket.bind("inproc://zeromq.zap.01")
        self.authorized = authorized
    }

    func close() { socket.close() }

    /// Answers one request: [version, request id, domain, address, identity, mechanism, key].
    func handle(drops: DropCounter, logger: Logger) {
        guard let frames = try? socket.receiveMultipart(dontWait: true) else { return }
        let parts = frames.map(\.bytes)
        guard parts.count >= 6 else {
            _ = try? socket.sendMultipart([
                Array("1.0".utf8), parts.count > 1 ? parts[1] : [], Array("500".utf8),
                Array("malformed ZAP request".utf8), [], [],
            ])
            return
        }
        let mechanism = String(decoding: parts[5], as: UTF8.self)
        let key = parts.count > 6 ? parts[6] : []
        let allowed = mechanism == "CURVE" && authorized.contains(raw: key)
        if !allowed {
            let address = String(decoding: parts[3], as: UTF8.self)
            drops.drop(
                "unauthorized", from: address, logger: logger,
                "Refused connection from [\(address)]: key \(CurveKeyPair.z85(key) ?? "none") is not authorized")
        }
        let user = allowed ? Array((CurveKeyPair.z85(key) ?? "").utf8) : []
        _ = try? socket.sendMultipart([
            Array("1.0".utf8), parts[1], Array((allowed ? "200" : "400").utf8),
            Array((allowed ? "OK" : "unauthorized key").utf8), user, [],
        ])
    }
}
