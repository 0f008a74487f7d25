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
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}
