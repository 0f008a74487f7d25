import CZeroMQ
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A CURVE (Curve25519) key pair, in Z85 text form (40 characters each), as libzmq uses them.
///
/// Key files are two lines, `public: <z85>` and `secret: <z85>`; a public-key file has only the
/// first. `rlaif keygen` writes both (the secret one readable by its owner only).
public struct CurveKeyPair: Sendable, Equatable {
    public let publicKey: String
    public let secretKey: String

    public init(publicKey: String, secretKey: String) throws(KeyError) {
        guard Self.isValidKey(publicKey), Self.isValidKey(secretKey) else {
            throw KeyError(message: "keys must be 40-character Z85 strings")
        }
        var derived = [CChar](repeating: 0, count: 41)
        guard zmq_curve_public(&derived, secretKey) == 0, String(cString: derived) == publicKey else {
            throw KeyError(message: "the public key does not belong to the secret key")
        }
        self.publicKey = publicKey
        self.secretKey = secretKey
    }

    /// A fresh pair from libzmq's CSPRNG (libsodium).
    public static func generate() throws(KeyError) -> CurveKeyPair {
        var pub = [CChar](repeating: 0, count: 41), sec = [CChar](repeating: 0, count: 41)
        guard zmq_curve_keypair(&pub, &sec) == 0 else {
            throw KeyError(message: "libzmq was built without CURVE support; install a libzmq with libsodium")
        }
        return try CurveKeyPair(publicKey: String(cString: pub), secretKey: String(cString: sec))
    }

    public static func isValidKey(_ key: String) -> Bool {
        guard key.utf8.count == 40 else { return false }
        var out = [UInt8](repeating: 0, count: 32)
        return zmq_z85_decode(&out, key) != nil
    }

    /// The 32 raw bytes of a Z85 key (the form ZAP hands to authenticators).
    public static func rawKey(_ z85: String) -> [UInt8]? {
        guard z85.utf8.count == 40 else { return nil }
        var out = [UInt8](repeating: 0, count: 32)
        return zmq_z85_decode(&out, z85) == nil ? nil : out
    }

    public static func z85(_ raw: [UInt8]) -> String? {
        guard raw.count == 32 else { return nil }
        var out = [CChar](repeating: 0, count: 41)
        return zmq_z85_encode(&out, raw, 32) == nil ? nil : String(cString: out)
    }

    // MARK: Files

    /// Writes `<path>` (secret, created with mode 0600 so it is never readable by others, even
    /// briefly) and `<path>.pub` (public only). An existing secret file is replaced.
    public func write(to path: String) throws(KeyError) {
        unlink(path)
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else { throw KeyError(message: "cannot create \(path): \(String(cString: strerror(errno)))") }
        let secret = Array("public: \(publicKey)\nsecret: \(secretKey)\n".utf8)
        let written = secret.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd) == 0
        close(fd)
        guard written == secret.count, synced else { throw KeyError(message: "cannot write \(path)") }
        do {
            try "public: \(publicKey)\n".write(toFile: path + ".pub", atomically: true, encoding: .utf8)
        } catch {
            throw KeyError(message: "cannot write \(path).pub: \(error.localizedDescription)")
        }
    }

    /// Reads a secret key file written by `write(to:)`.
    public static func read(from path: String) throws(KeyError) -> CurveKeyPair {
        let fields = try KeyFile.fields(path)
        guard let pub = fields["public"], let sec = fields["secret"] else {
            throw KeyError(message: "\(path) must hold 'public:' and 'secret:' lines (write one with `rlaif keygen`)")
        }
        do { return try CurveKeyPair(publicKey: pub, secretKey: sec) } catch {
            throw KeyError(message: "\(path): \(error.message)")
        }
    }

    /// Reads the public key from a `.pub` file (or a secret file), or accepts a literal Z85 key.
    public static func publicKey(fileOrKey: String) throws(KeyError) -> String {
        if isValidKey(fileOrKey) { return fileOrKey }
        guard let pub = try KeyFile.fields(fileOrKey)["public"], isValidKey(pub) else {
            throw KeyError(message: "\(fileOrKey) holds no valid 'public:' line")
        }
        return pub
    }
}

public struct KeyError: Error, CustomStringConvertible, Sendable, Equatable {
    public let message: String
    public var description: String { message }
}

enum KeyFile {
    static func fields(_ path: String) throws(KeyError) -> [String: String] {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw KeyError(message: "cannot read key file \(path): \(error.localizedDescription)")
        }
        var out: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if parts.count == 2 { out[parts[0]] = parts[1] }
        }
        return out
    }
}
