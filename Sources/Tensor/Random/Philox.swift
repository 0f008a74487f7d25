/// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11): a
/// counter-based generator. Each 128-bit counter maps, under a 64-bit key, to 128 random bits,
/// so any draw can be computed directly from its address, in any order, on any worker.
public enum Philox4x32 {
    static let m0: UInt32 = 0xD251_1F53
    static let m1: UInt32 = 0xCD9E_8D57
    static let w0: UInt32 = 0x9E37_79B9
    static let w1: UInt32 = 0xBB67_AE85

    /// The 4 output words for `counter` under `key`.
    public static func block(counter: SIMD4<UInt32>, key: SIMD2<UInt32>) -> SIMD4<UInt32> {
        var c = counter
        var k = key
        for round in 0..<10 {
            if round > 0 {
                k.x &+= w0
                k.y &+= w1
            }
            let p0 = UInt64(m0) * UInt64(c.x)
            let p1 = UInt64(m1) * UInt64(c.z)
            c = SIMD4(
                UInt32(truncatingIfNeeded: p1 >> 32) ^ c.y ^ k.x, UInt32(truncatingIfNeeded: p1),
                UInt32(truncatingIfNeeded: p0 >> 32) ^ c.w ^ k.y, UInt32(truncatingIfNeeded: p0))
        }
        return c
    }
}

/// SplitMix64's finalizer: a bijective 64-bit mix used to derive stream keys.
@inline(__always) func splitMix64(_ x: UInt64) -> UInt64 {
    var z = x &+ 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}
