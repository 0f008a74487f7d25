import Tensor

/// The routing identity libzmq gives a connected peer on a ROUTER socket.
public struct PeerID: Hashable, Sendable, CustomStringConvertible {
    public let bytes: [UInt8]
    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    public var description: String { Tensor.hex(bytes: bytes) }
}

/// A decoded message and, on a listening endpoint, the peer it came from.
public struct Inbound: Sendable {
    public let peer: PeerID?
    public let message: Wire.Message
    /// For a hello on a CURVE listener: the Z85 public key the peer authenticated with (checked by
    /// ZAP, so it cannot be claimed falsely). Nil for other messages and on open endpoints.
    public let clientKey: String?
}
