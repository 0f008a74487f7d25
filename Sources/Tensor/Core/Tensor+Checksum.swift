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
}

extension Tensor {
    /// A 64-bit hash of the raw bytes for checking, after every step, that replicas agree: eight
    /// independent xor-multiply lanes over 64-bit words, so it runs at memory speed where the
    /// byte-serial FNV-1a of `checksum` spent a sixth of a small model's step.
    public var fingerprint: UInt64 {
        let prime: UInt64 = 0x0000_0100_0000_01B3
        var lanes = SIMD8<UInt64>(repeating: 0xCBF2_9CE4_8422_2325)
        for l in 0..<8 { lanes[l] &+= UInt64(l) }
        let bytes = UnsafeRawBufferPointer(start: pointer, count: count * MemoryLayout<Float>.stride)
        let blocks = bytes.count / 64
        for b in 0..<blocks {
            let words = bytes.loadUnaligned(fromByteOffset: b * 64, as: SIMD8<UInt64>.self)
            lanes = (lanes ^ words) &* prime
        }
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325 ^ UInt64(bytes.count)
        for l in 0..<8 { hash = (hash ^ lanes[l]) &* prime }
        for byte in bytes[(blocks * 64)...] { hash = (hash ^ UInt64(byte)) &* prime }
        // SplitMix64's finalizer, so every input bit reaches every output bit.
        hash = (hash ^ (hash >> 30)) &* 0xBF58_476D_1CE4_E5B9
        hash = (hash ^ (hash >> 27)) &* 0x94D0_49BB_1331_11EB
        return hash ^ (hash >> 31)
    }
}
