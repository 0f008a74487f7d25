import CZeroMQ
import Synchronization

/// How a listening socket admits peers and how a connecting socket proves itself.
public enum ListenerSecurity: Sendable, Equatable {
    /// No encryption, no authentication: anyone who can reach the port may register.
    case open
    /// CURVE: traffic encrypted; only clients whose public key is in `authorized` pass ZAP.
    case curve(server: CurveKeyPair, authorized: AuthorizedKeys)
}

public enum ConnectorSecurity: Sendable, Equatable {
    case open
    /// CURVE client: our own pair, and the server's public key we expect.
    case curve(client: CurveKeyPair, serverPublicKey: String)

    /// Our own pair, when we have one.
    public var keyPair: CurveKeyPair? {
        if case .curve(let pair, _) = self { return pair }
        return nil
    }

    /// The server key a CURVE client expects.
    public var serverPublicKey: String? {
        if case .curve(_, let key) = self { return key }
        return nil
    }
}

/// The public keys a CURVE listener admits. Shared with the listener's thread, so the list can be
/// set after the listener is bound (a worker's ring listener learns the cluster's keys when it
/// is welcomed, after it advertised its address); every later handshake sees the new list.
public final class AuthorizedKeys: Sendable, Equatable, CustomStringConvertible {
    /// Raw 32-byte keys (the form ZAP hands over).
    private let raw: Mutex<Set<[UInt8]>>

    /// Keys in Z85; invalid ones are left out (key files and config entries are validated earlier).
    public init(_ z85Keys: some Sequence<String>) {
        raw = Mutex(Set(z85Keys.compactMap(CurveKeyPair.rawKey)))
    }

    /// Replaces the list; connections already admitted stay.
    public func replace(with z85Keys: some Sequence<String>) {
        let keys = Set(z85Keys.compactMap(CurveKeyPair.rawKey))
        raw.withLock { $0 = keys }
    }

    func contains(raw key: [UInt8]) -> Bool { raw.withLock { $0.contains(key) } }

    private var keys: Set<[UInt8]> { raw.withLock { $0 } }

    public static func == (a: AuthorizedKeys, b: AuthorizedKeys) -> Bool { a === b || a.keys == b.keys }

    public var description: String { "\(keys.count) authorized key(s)" }
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
