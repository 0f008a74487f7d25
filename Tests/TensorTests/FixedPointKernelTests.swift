import CKernels
import TestSupport
import Testing

@testable import Tensor

/// The C loops of exact sums (fixed_point.c, the vector path this CPU takes) against a scalar
/// Swift statement of each, written with checked arithmetic and `rounded(.toNearestOrEven)`
/// rather than the kernels' tricks. Lengths cover empty runs and vector tails.
@Suite struct FixedPointKernelTests {
    static let lengths = [0, 1, 7, 16, 33, 1000]

    /// Units spread over every magnitude a partial sum can have: most within 32 bits, some past
    /// it, a few near the 64-bit limit (so that sums wrap).
    static func units(_ n: Int, seed: UInt64, extremes: Bool) -> [Int64] {
        var rng = SplitMix64(seed: seed)
        return (0..<n).map { i in
            switch rng.next() % 16 {
            case 0 where extremes: return Int64.max - Int64(rng.next() % 1000)
            case 1 where extremes: return Int64.min + Int64(rng.next() % 1000)
            case 2, 3: return Int64(bitPattern: rng.next()) >> Int64(rng.next() % 30)  // wide
            default: return Int64(Int32(truncatingIfNeeded: rng.next())) >> Int64(rng.next() % 20) + Int64(i % 3)
            }
        }
    }

    /// Float gradients, with exact ties at the resolution and, when asked, values out of range.
    static func floats(_ n: Int, seed: UInt64, scale: Double, outOfRange: Bool) -> [Float] {
        var rng = SplitMix64(seed: seed)
        return (0..<n).map { _ in
            switch rng.next() % 12 {
            case 0: return Float((Double(rng.next() % 1000) + 0.5) / scale)  // a tie
            case 1 where outOfRange: return [Float.nan, .infinity, Float(0x1p52 / scale)][Int(rng.next() % 3)]
            default: return Float(Double(Int64(bitPattern: rng.next()) >> 40) / 0x1p20)
            }
        }
    }

    @Test(arguments: lengths)
    func addFloats_roundsToNearestEven_orAddsNothing(count: Int) {
        let scale = 0x1p32
        for (seed, outOfRange) in [(UInt64(1), false), (2, true), (3, false)] {
            let start = Self.units(count, seed: seed, extremes: seed == 3)
            let x = Self.floats(count, seed: seed + 10, scale: scale, outOfRange: outOfRange)
            var expected: [Int64]? = start
            for i in 0..<count {
                let scaled = Double(x[i]) * scale
                guard abs(scaled) < 0x1p51 else { expected = nil; break }
                let (s, o) = start[i].addingReportingOverflow(Int64(scaled.rounded(.toNearestOrEven)))
                if o { expected = nil; break }
                expected![i] = s
            }
            // The full run meets every case: seed 1 adds, seed 2 has out-of-range values, seed 3 wraps.
            if count == 1000 { #expect((expected != nil) == (seed == 1)) }
            var u = start
            let added = rlaif_units_add_floats(&u, x, count, scale)
            #expect((added != 0) == (expected != nil))
            #expect(u == (expected ?? start))  // nothing added on failure
        }
    }

    @Test(arguments: lengths)
    func pack_keepsLowWords_andFlagsWideUnits(count: Int) {
        for seed in [UInt64(4), 5] {
            let u =
                seed == 4
                ? Self.units(count, seed: seed, extremes: false).map { Int64(Int32(truncatingIfNeeded: $0)) }
                : Self.units(count, seed: seed, extremes: true)
            var low = [Int32](repeating: 0, count: count)
            let fits = rlaif_units_pack(u, &low, count)
            #expect(low == u.map { Int32(truncatingIfNeeded: $0) })
            #expect((fits != 0) == u.allSatisfy { Int64(Int32(truncatingIfNeeded: $0)) == $0 })
        }
    }

    @Test(arguments: lengths)
    func addPack_andAddValues_equalTheCheckedSum(count: Int) {
        let unit = 0x1p-32
        for seed in [UInt64(6), 7, 8] {
            // Seed 6: every sum fits in 32 bits; 7: some are wider; 8: some wrap.
            let mine = Self.units(count, seed: seed, extremes: seed == 8).map { seed == 6 ? $0 >> 34 : $0 }
            let received = Self.units(count, seed: seed + 20, extremes: false).map {
                Int32(truncatingIfNeeded: $0) >> 2
            }
            let sums = (0..<count).map { mine[$0].addingReportingOverflow(Int64(received[$0])) }
            let wrapped = sums.contains { $0.overflow }
            let wide = sums.contains { Int64(Int32(truncatingIfNeeded: $0.partialValue)) != $0.partialValue }
            // The full run meets the case each seed is for.
            if count == 1000 { #expect(wrapped == (seed == 8) && wide == (seed != 6)) }

            var low = [Int32](repeating: 0, count: count)
            let fits = rlaif_units_add_pack(mine, received, &low, count)
            #expect(low == sums.map { Int32(truncatingIfNeeded: $0.partialValue) })
            #expect(
                (fits != 0)
                    == (!wrapped
                        && sums.allSatisfy { Int64(Int32(truncatingIfNeeded: $0.partialValue)) == $0.partialValue }))

            var out = [Float](repeating: .nan, count: count)
            let ok = rlaif_units_add_values(mine, received, &out, count, unit)
            #expect((ok != 0) == !wrapped)
            if !wrapped { #expect(out == sums.map { Float(Double($0.partialValue) * unit) }) }

            var plain = [Float](repeating: .nan, count: count)
            #expect(rlaif_units_add_values(mine, nil, &plain, count, unit) != 0)
            #expect(plain == mine.map { Float(Double($0) * unit) })
        }
    }

    // The 32-bit loops: a narrow block's words.

    @Test(arguments: lengths)
    func addFloats32_addsWhenEverySumFits_orAddsNothing(count: Int) {
        let scale = 0x1p20  // values up to 8: units up to 2^23
        // Seed 11 fits; 12 has out-of-range values; 13 has sums past 32 bits (words near the edge).
        for seed in [UInt64(11), 12, 13] {
            // Words within 2^23, or for seed 13 within 100 of the 32-bit limits.
            let start = Self.units(count, seed: seed, extremes: false).enumerated().map { i, w -> Int32 in
                seed == 13
                    ? (i % 2 == 0 ? .max - Int32(abs(w % 100)) : .min + Int32(abs(w % 100)))
                    : Int32(truncatingIfNeeded: w) >> 8
            }
            let x = Self.floats(count, seed: seed + 10, scale: scale, outOfRange: seed == 12)
            var expected: [Int32]? = start
            for i in 0..<count {
                let scaled = Double(x[i]) * scale
                guard abs(scaled) < 0x1p51,
                    let w = Int32(exactly: Int64(start[i]) + Int64(scaled.rounded(.toNearestOrEven)))
                else {
                    expected = nil
                    break
                }
                expected![i] = w
            }
            if count == 1000 { #expect((expected != nil) == (seed == 11)) }
            var u = start
            let added = rlaif_units32_add_floats(&u, x, count, scale)
            #expect((added != 0) == (expected != nil))
            #expect(u == (expected ?? start))  // nothing added on failure
        }
    }

    @Test(arguments: lengths)
    func addPack32_andAddValues32_equalTheCheckedSum(count: Int) {
        let unit = 0x1p-32
        // Seed 14: every sum fits in 32 bits; 15: some are wider.
        for seed in [UInt64(14), 15] {
            let mine = Self.units(count, seed: seed, extremes: false).map {
                Int32(truncatingIfNeeded: $0) >> (seed == 14 ? 2 : 0)
            }
            let received = Self.units(count, seed: seed + 20, extremes: false).map {
                Int32(truncatingIfNeeded: $0) >> 2
            }
            let sums = (0..<count).map { Int64(mine[$0]) + Int64(received[$0]) }
            let wide = sums.contains { Int32(exactly: $0) == nil }
            if count == 1000 { #expect(wide == (seed == 15)) }

            var low = [Int32](repeating: 0, count: count)
            let fits = rlaif_units32_add_pack(mine, received, &low, count)
            #expect(low == sums.map { Int32(truncatingIfNeeded: $0) })
            #expect((fits != 0) == !wide)

            var out = [Float](repeating: .nan, count: count)
            rlaif_units32_add_values(mine, received, &out, count, unit)
            #expect(out == sums.map { Float(Double($0) * unit) })
            var plain = [Float](repeating: .nan, count: count)
            rlaif_units32_add_values(mine, nil, &plain, count, unit)
            #expect(plain == mine.map { Float(Double($0) * unit) })
        }
    }

    @Test func exactSum_usesTheKernels_withTheSameResultAsTheReference() throws {
        // Through the public API: quantize, pack, one-pass sums.
        let x = Self.floats(1000, seed: 30, scale: 0x1p32, outOfRange: false)
        var sum = ExactSum(count: 1000)
        try sum.add(Tensor(shape: [1000], scalars: x))
        #expect(sum.units == x.map { Int64((Double($0) * 0x1p32).rounded(.toNearestOrEven)) })
        #expect(sum.value().scalars == sum.units.map { Float(Double($0) * 0x1p-32) })
    }
}
