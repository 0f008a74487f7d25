import CZeroMQ

/// How a listening socket admits peers and how a connecting socket proves itself.
public enum ListenerSecurity: Sendable, Equatable {
    /// No encryption, no authentication: anyone who can reach the port may register.
    case open
    /// CURVE: traffic encrypted; only clients whose public key is in `authorizedKeys` pass ZAP.
    case curve(server: CurveKeyPair, authorizedKeys: Set<String>)
}

public enum ConnectorSecurity: Sendable, Equatable {
    case open
    /// CURVE client: our own pair, and the server's public key we expect.
    case curve(client: CurveKeyPair, serverPublicKey: String)
}

extension ZMQSocket {
    func apply(_ security: ListenerSecurity) throws(ZMQError) {
        guard case .curve(let server, _) = security else { return }
        try setOption(ZMQ_CURVE_SERVER, Int32(1))
        try setOption(ZMQ_CURVE_SECRETKEY, string: server.secretKey)
        // A ZAP domain makes libzmq consult our authenticator for every handshake.
        try setOption(ZMQ_ZAP_DOMAIN, string: "rlaif")
    }

    func apply(_ security: ConnectorSecurity) throws(ZMQError) {
        guard case .curve(let client, let serverKey) = security else { return }
        try setOption(ZMQ_CURVE_SERVERKEY, string: serverKey)
        try setOption(ZMQ_CURVE_PUBLICKEY, string: client.publicKey)
        try setOption(ZMQ_CURVE_SECRETKEY, string: client.secretKey)
    }
}
