import CZeroMQ

/// The wire protocol's version, separate from the package version: peers compare it in their
/// handshake and refuse a mismatch (see docs/PROTOCOL.md once the protocol lands).
public struct ProtocolVersion: Sendable, Equatable, Comparable, CustomStringConvertible {
    public let major: UInt16
    public let minor: UInt16

    public static let current = ProtocolVersion(major: 9, minor: 1)

    public init(major: UInt16, minor: UInt16) {
        self.major = major
        self.minor = minor
    }

    /// Peers speak to each other when their majors agree; minors only add optional fields.
    public func isCompatible(with other: ProtocolVersion) -> Bool { major == other.major }

    public static func < (a: ProtocolVersion, b: ProtocolVersion) -> Bool {
        (a.major, a.minor) < (b.major, b.minor)
    }

    public var description: String { "\(major).\(minor)" }
}

/// Facts about the libzmq this process links.
public enum ZeroMQLibrary {
    /// The linked libzmq's version, e.g. (4, 3, 4).
    public static var version: (major: Int, minor: Int, patch: Int) {
        var major: Int32 = 0, minor: Int32 = 0, patch: Int32 = 0
        zmq_version(&major, &minor, &patch)
        return (Int(major), Int(minor), Int(patch))
    }

    /// Whether libzmq was built with CURVE security (needed for authenticated clusters).
    public static var hasCurve: Bool { zmq_has("curve") != 0 }
}
