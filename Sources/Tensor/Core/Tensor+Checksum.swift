import CKernels

extension Tensor {
    /// FNV-1a (64-bit) of the raw little-endian bytes, in hex: equal iff bit-identical (up to
    /// hash collisions). Used to compare weights across runs, worker counts and resumes.
    public var checksum: String {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        let bytes = UnsafeRawBufferPointer(start: pointer, count: count * MemoryLayout<Float>.stride)
        for b in bytes {
            hash ^= UInt64(b)
            hash = hash &* 0x0000_0100_0000_01B3
        }
        return Self.hex(hash)
    }

    /// A 64-bit hash as 16 hex digits, as checksums and fingerprints are written.
    public static func hex(_ hash: UInt64) -> String {
        let digits = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    /// Bytes as lowercase hex, two digits each, as digests and peer identities are written.
    public static func hex(bytes: some Sequence<UInt8>) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.underestimatedCount * 2)
        for byte in bytes {
            out.append(hexDigits[Int(byte >> 4)])
            out.append(hexDigits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)
}

extension Tensor {
    /// A 64-bit hash of the raw bytes for checking, after every step, that replicas agree:
    /// independent xor-multiply lanes over 64-bit words (`rlaif_fingerprint`), so it runs at
    /// memory speed where the byte-serial FNV-1a of `checksum` spent a sixth of a small model's step.
    public var fingerprint: UInt64 {
        rlaif_fingerprint(pointer, count * MemoryLayout<Float>.stride)
    }
}
