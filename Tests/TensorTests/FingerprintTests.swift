import CKernels
import Testing

@testable import Tensor

/// The per-step fingerprint: every compiled path gives the hash of its definition, written here
/// again from the header's words, at lengths around its 256-byte blocks.
@Suite struct FingerprintTests {
    /// 32 xor-multiply lanes over little-endian words in 256-byte blocks, folded into FNV-1a with
    /// the length and the tail bytes, then SplitMix64's finalizer.
    static func reference(_ bytes: [UInt8]) -> UInt64 {
        let prime: UInt64 = 0x0000_0100_0000_01B3, basis: UInt64 = 0xCBF2_9CE4_8422_2325
        var lanes = (0..<32).map { basis &+ UInt64($0) }
        let blocks = bytes.count / 256
        for b in 0..<blocks {
            for l in 0..<32 {
                var word: UInt64 = 0
                for k in 0..<8 { word |= UInt64(bytes[b * 256 + l * 8 + k]) << (8 * UInt64(k)) }
                lanes[l] = (lanes[l] ^ word) &* prime
            }
        }
        var hash = basis ^ UInt64(bytes.count)
        for lane in lanes { hash = (hash ^ lane) &* prime }
        for byte in bytes[(blocks * 256)...] { hash = (hash ^ UInt64(byte)) &* prime }
        hash = (hash ^ (hash >> 30)) &* 0xBF58_476D_1CE4_E5B9
        hash = (hash ^ (hash >> 27)) &* 0x94D0_49BB_1331_11EB
        return hash ^ (hash >> 31)
    }

    @Test(arguments: [0, 1, 255, 256, 257, 4096 + 13, 100_003])
    func everyPath_givesTheDefinitionsHash(count: Int) {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15 &+ UInt64(count)
        let bytes = (0..<count).map { _ -> UInt8 in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(truncatingIfNeeded: state >> 56)
        }
        let expected = Self.reference(bytes)
        // cpu_level.h's levels: baseline, AVX2, AVX-512.
        for level: Int32 in [0, 1, 2] {
            #expect(rlaif_fingerprint_at(level, bytes, bytes.count) == expected, "level \(level)")
        }
        #expect(rlaif_fingerprint(bytes, bytes.count) == expected)
    }

    /// A tensor's fingerprint is the hash of its bytes: a one-bit change anywhere changes it.
    @Test func tensorFingerprint_seesOneBitAnywhere() {
        let t = Tensor(shape: [1000 + 3], scalars: (0..<1003).map { Float($0) * 0.25 })
        let before = t.fingerprint
        for index in [0, 63, 64, 511, 1002] {
            let saved = t[flat: index]
            t[flat: index] = Float(bitPattern: saved.bitPattern ^ 1)
            #expect(t.fingerprint != before, "element \(index)")
            t[flat: index] = saved
        }
        #expect(t.fingerprint == before)
    }
}
