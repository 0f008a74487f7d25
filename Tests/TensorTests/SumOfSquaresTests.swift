import CKernels
import Testing

@testable import Tensor

/// The gradient norm's sum of squares: every compiled path gives the bits of its definition,
/// written here as the Swift loop it replaced.
@Suite struct SumOfSquaresTests {
    /// Per block of 4096: sixteen lanes of rounded products added in turn, the lanes added in
    /// order from -0, then the block's tail; the blocks' sums added in Double.
    static func reference(_ x: [Float]) -> Double {
        var total = 0.0
        for start in stride(from: 0, to: x.count, by: 4096) {
            let block = x[start..<min(start + 4096, x.count)]
            var lanes = SIMD16<Float>()
            var i = block.startIndex
            while i + 16 <= block.endIndex {
                var v = SIMD16<Float>()
                for l in 0..<16 { v[l] = x[i + l] }
                lanes += v * v
                i += 16
            }
            var s = lanes.sum()
            while i < block.endIndex {
                s += x[i] * x[i]
                i += 1
            }
            total += Double(s)
        }
        return total
    }

    /// Values over many binades, so that a different order of addition would show in the bits.
    static func values(_ count: Int, seed: UInt64) -> [Float] {
        var state = seed
        return (0..<count).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let mantissa = Float(state >> 40) / Float(1 << 24) - 0.5
            let exponent = Int(truncatingIfNeeded: (state >> 8) % 24) - 12
            return mantissa * Float(sign: .plus, exponent: exponent, significand: 1)
        }
    }

    @Test(arguments: [0, 1, 15, 16, 17, 4095, 4096, 4097, 4096 * 3 + 21, 632_449])
    func everyPath_givesTheDefinitionsBits(count: Int) {
        let x = Self.values(count, seed: UInt64(count) &+ 7)
        let expected = Self.reference(x).bitPattern
        for level: Int32 in [0, 1, 2] {  // cpu_level.h: baseline, AVX2, AVX-512
            #expect(rlaif_sum_of_squares_at(level, x, x.count).bitPattern == expected, "level \(level)")
        }
        #expect(ParameterSet.sumOfSquares(x, count: x.count).bitPattern == expected)
    }

    /// The order is the definition's and no other: summing the same values in one Double pass
    /// gives different bits, which the test above would catch.
    @Test func anotherOrder_givesOtherBits() {
        let x = Self.values(4096 * 2 + 5, seed: 3)
        let plain = x.reduce(0.0) { $0 + Double($1) * Double($1) }
        #expect(plain.bitPattern != Self.reference(x).bitPattern)
    }
}
