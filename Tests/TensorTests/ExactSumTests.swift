import Testing

@testable import Tensor

@Suite struct ExactSumTests {
    /// Eight "micro-batch gradients" with magnitudes from 1e-6 to 10.
    static let gradients: [Tensor] = (0..<8).map { i in
        var rng = RandomStream(seed: 77, purpose: .scratch, step: 0, index: UInt64(i))
        let t = Tensor.randomNormal([1000], rng: &rng)
        for j in 0..<t.count { t[flat: j] *= Float([1e-6, 1e-3, 1, 10][j % 4]) }
        return t
    }

    /// Reduces the gradients as `workers` workers would: each sums its share, then the partial
    /// sums meet in ring order starting from `start`.
    static func reduce(workers: Int, assignment: [Int], start: Int) throws -> Tensor {
        var partial = (0..<workers).map { _ in ExactSum(count: 1000) }
        for (micro, worker) in assignment.enumerated() { try partial[worker].add(gradients[micro]) }
        var total = ExactSum(count: 1000)
        for k in 0..<workers { try total.add(partial[(start + k) % workers]) }
        return total.value()
    }

    @Test func reducedGradient_isBitIdentical_forAnyWorkerCountAssignmentAndOrder() throws {
        let reference = try Self.reduce(workers: 1, assignment: Array(repeating: 0, count: 8), start: 0)
        let two = try Self.reduce(workers: 2, assignment: [0, 1, 0, 1, 0, 1, 0, 1], start: 1)
        let four = try Self.reduce(workers: 4, assignment: [3, 3, 0, 1, 2, 2, 1, 0], start: 2)
        let skewed = try Self.reduce(workers: 3, assignment: [2, 2, 2, 2, 2, 0, 1, 2], start: 0)
        #expect(two.checksum == reference.checksum)
        #expect(four.checksum == reference.checksum)
        #expect(skewed.checksum == reference.checksum)
    }

    @Test func floatSummation_wouldNotBeOrderIndependent() {
        // The property ExactSum provides is not free: plain Float sums in two orders differ here.
        let forward = Tensor(zeros: [1000]), backward = Tensor(zeros: [1000])
        for g in Self.gradients { for j in 0..<1000 { forward[flat: j] += g[flat: j] } }
        for g in Self.gradients.reversed() { for j in 0..<1000 { backward[flat: j] += g[flat: j] } }
        #expect(forward.checksum != backward.checksum)
    }

    @Test func exactSum_isWithinItsResolutionOfTheDoubleSum() throws {
        var total = ExactSum(count: 1000)
        for g in Self.gradients { try total.add(g) }
        let v = total.value()
        // One rounding per value.
        let resolution = Double(sign: .plus, exponent: -ExactSum.defaultFractionBits, significand: 1) * 8
        for j in 0..<1000 {
            let exact = Self.gradients.reduce(0.0) { $0 + Double($1[flat: j]) }
            // The Float result carries Float's own rounding on top of the fixed-point error.
            #expect(abs(Double(v[flat: j]) - exact) <= resolution + abs(exact) * 0x1p-24)
        }
    }

    @Test func outOfRangeValues_areReportedNotWrapped_andAddNothing() throws {
        var total = ExactSum(count: 2, fractionBits: 40)
        try total.add(Tensor(shape: [2], scalars: [0.5, 0.25]))
        let before = total
        #expect(throws: ExactSum.Overflow.self) { try total.add(Tensor(shape: [2], scalars: [1, 1e8])) }
        #expect(throws: ExactSum.Overflow.self) { try total.add(Tensor(shape: [2], scalars: [0, .nan])) }
        #expect(total == before)
        #expect(total.value().scalars == [0.5, 0.25])
    }

    @Test func addingAtAnOffset_touchesOnlyThoseElements_andRollsBackOnOverflow() throws {
        var total = ExactSum(count: 4, fractionBits: 40)
        try total.add(Tensor(shape: [2], scalars: [0.5, -1]), at: 1)
        #expect(total.value().scalars == [0, 0.5, -1, 0])
        let before = total
        #expect(throws: ExactSum.Overflow(index: 3, value: Double(1e8))) {
            try total.add(Tensor(shape: [2], scalars: [2, 1e8]), at: 2)
        }
        #expect(total == before)
    }

    @Test func addingUnits_thatOverflowAnywhere_addsNothing_andNamesTheFirstElement() throws {
        var total = ExactSum(count: 6, fractionBits: 40)
        try total.add(units: [1, 2, 3, 4, 5, 6], at: 0)
        try total.add(units: [.max - 10, -7], at: 3)
        #expect(total.units == [1, 2, 3, .max - 6, -2, 6])
        let before = total
        // Element 4 would wrap below Int64.min, element 3 above Int64.max: the first is named.
        #expect(throws: ExactSum.Overflow(index: 3, value: Double(Int64.max - 6) + 7)) {
            try total.add(units: [0, 7, .min], at: 2)
        }
        #expect(total == before)
        try total.add(units: [0, 6, -3], at: 2)  // up to the edge is fine
        #expect(total.units == [1, 2, 3, .max, -5, 6])
    }

    @Test func rounding_isToNearestEven_andLargeUnitsTakeTheExactSlowPath() throws {
        // Units 1.5 and 2.5 both round to 2 (ties to even); -1.5 to -2.
        var ties = ExactSum(count: 3, fractionBits: 8)
        try ties.add(Tensor(shape: [3], scalars: [1.5 / 256, 2.5 / 256, -1.5 / 256]))
        #expect(ties.units == [2, 2, -2])
        // 2^55 units is beyond the vectorized path's 2^51: added exactly all the same.
        var large = ExactSum(count: 3, fractionBits: 56)
        try large.add(Tensor(shape: [3], scalars: [0.5, -0.25, 1e-3]))
        #expect(large.units == [1 << 55, -(1 << 54), Int64((Double(Float(1e-3)) * 0x1p56).rounded(.toNearestOrEven))])
    }
}

@Suite struct PackedUnitsTests {
    static func sum(_ values: [Float]) throws -> ExactSum {
        var s = ExactSum(count: values.count)
        try s.add(Tensor(shape: [values.count], scalars: values))
        return s
    }

    /// The low words and patches of a packed partial sum (nil when it is 64-bit units).
    static func packed(_ p: PartialSum) -> (low: [Int32], patches: [Int64])? {
        guard case .packed(let low, let patches) = p else { return nil }
        return (low.array, patches)
    }

    @Test func packing_sendsLowWords_andPatchesOnlyWhatNeedsMoreThan32Bits() throws {
        // At 2^-32, |value| < 0.5 fits in 32 bits; 3.0 and -0.75 do not.
        let values: [Float] = (0..<40).map { i in i == 5 ? 3 : i == 31 ? -0.75 : Float(i) * 1e-3 - 0.02 }
        let s = try Self.sum(values)
        let (low, patches) = try #require(Self.packed(s.partial(0..<40)))
        #expect(low.count == 40 && patches == [5, s.units[5], 31, s.units[31]])
        // Unpacked into another sum, it is exactly the units added plainly.
        var viaPacking = try Self.sum(values.map { $0 / 2 })
        var plain = viaPacking
        try low.withUnsafeBufferPointer { l in
            try patches.withUnsafeBufferPointer { p in try viaPacking.add(low: l, patches: p, at: 0) }
        }
        try plain.add(units: s.units, at: 0)
        #expect(viaPacking == plain)
        #expect(viaPacking.units == zip(try Self.sum(values.map { $0 / 2 }).units, s.units).map { $0 + $1 })
    }

    @Test func packing_isRefused_whenMoreThanOneInEightNeedsPatches() throws {
        let fits = try Self.sum((0..<16).map { $0 < 2 ? 4 : 0.1 })  // 2 of 16: packs
        let wide = try Self.sum((0..<16).map { $0 < 3 ? 4 : 0.1 })  // 3 of 16: plain units instead
        #expect(Self.packed(fits.partial(0..<16))?.patches.count == 4)
        guard case .units(let units) = wide.partial(0..<16) else { Issue.record("packed past the limit"); return }
        #expect(units == wide.units)
    }

    @Test func packedAdd_thatOverflows_addsNothing_andNamesTheElement() throws {
        var total = ExactSum(count: 3)
        try total.add(units: [.max - 1, 0, 5], at: 0)
        let before = total
        // The low word of element 0 is fine; its patch pushes it past Int64.max.
        let low: [Int32] = [1, 2, 3], patches: [Int64] = [0, 1 << 40]
        #expect(throws: ExactSum.Overflow(index: 0, value: Double(Int64.max - 1) + 0x1p40)) {
            try low.withUnsafeBufferPointer { l in
                try patches.withUnsafeBufferPointer { p in try total.add(low: l, patches: p, at: 0) }
            }
        }
        #expect(total == before)
    }

    /// The ring's one-pass sums (`partialSum`, `valuesOfSum`) against adding into a copy and then
    /// packing or converting: the same words and floats, this sum unchanged, for each kind of
    /// received run — packed without patches (the fast pass), packed with patches, 64-bit units —
    /// and sums that stop fitting 32 bits only after the add.
    @Test func onePassSums_equalAddingThenPackingOrConverting() throws {
        let mine = try Self.sum((0..<64).map { i in i == 9 ? 2 : Float(i) * 1e-3 - 0.03 })
        let range = 8..<40
        let smallValues = (0..<32).map { i in Float(i) * -7e-4 + 0.01 }
        let nearEdge = (0..<32).map { i in i == 25 ? Float(0.4999) : 1e-3 }  // + mine (0.003 there): past 32 bits
        // Packed words without patches whose sums need 64 bits in 8 of 32 elements: plain units.
        let manyNearEdge = (0..<32).map { i in i >= 25 ? Float(0.4999) : 1e-3 }
        for theirs in [
            smallValues, nearEdge, manyNearEdge, (0..<32).map { i in i == 2 ? 3 : 1e-2 }, (0..<32).map { _ in 5 },
        ] {
            let received = try Self.sum(theirs)
            var expected = ExactSum(count: range.count)
            try expected.add(units: Array(mine.units[range]), at: 0)
            try expected.add(units: received.units, at: 0)
            let floats = Tensor(zeros: [range.count])
            let run: (ReceivedUnits) throws -> Void = { r in
                let sum = try mine.partialSum(range, adding: r)
                #expect(sum.units == expected.units)
                // Packed exactly when the sum's own partial is: the same words and patches.
                let packed = Self.packed(sum), reference = Self.packed(expected.partial(0..<32))
                #expect(packed?.low == reference?.low && packed?.patches == reference?.patches)
                try mine.valuesOfSum(range, adding: r, into: floats.pointer)
                #expect(floats.scalars == expected.value().scalars)
            }
            if let (low, patches) = Self.packed(received.partial(0..<32)) {
                try low.withUnsafeBufferPointer { l in
                    try patches.withUnsafeBufferPointer { try run(.packed(low: l, patches: $0)) }
                }
            }
            try received.units.withUnsafeBufferPointer { try run(.units($0)) }
        }
        #expect(mine == (try Self.sum((0..<64).map { i in i == 9 ? 2 : Float(i) * 1e-3 - 0.03 })))
    }

    @Test func onePassSums_thatOverflow_nameTheElementInThisSum() throws {
        var mine = ExactSum(count: 6)
        try mine.add(units: [0, 0, 0, .max - 2, 0, 0], at: 0)
        let before = mine
        let wide: [Int64] = [1, 1_000_000_000, 1]
        #expect(throws: ExactSum.Overflow(index: 3, value: Double(Int64.max - 2) + 1e9)) {
            try wide.withUnsafeBufferPointer { w in _ = try mine.partialSum(2..<5, adding: .units(w)) }
        }
        // Packed words without patches take the one-pass loop, which sees the wrap and leaves the
        // element to the exact path, which names it.
        let low: [Int32] = [1, 5, 1], patches: [Int64] = []
        let out = Tensor(zeros: [3])
        #expect(throws: ExactSum.Overflow(index: 3, value: Double(Int64.max - 2) + 5)) {
            try low.withUnsafeBufferPointer { l in
                try patches.withUnsafeBufferPointer { p in
                    try mine.valuesOfSum(2..<5, adding: .packed(low: l, patches: p), into: out.pointer)
                }
            }
        }
        #expect(throws: ExactSum.Overflow(index: 3, value: Double(Int64.max - 2) + 5)) {
            try low.withUnsafeBufferPointer { l in
                try patches.withUnsafeBufferPointer { p in
                    _ = try mine.partialSum(2..<5, adding: .packed(low: l, patches: p))
                }
            }
        }
        #expect(mine == before)
    }

    @Test func patchValidity_requiresPairsWithIncreasingIndicesInRange() {
        func valid(_ p: [Int64], _ count: Int) -> Bool {
            p.withUnsafeBufferPointer { PackedUnits.patchesAreValid($0, count: count) }
        }
        #expect(valid([], 3) && valid([0, 9, 2, -9], 3))
        #expect(
            !valid([3, 1], 3) && !valid([-1, 1], 3) && !valid([1, 1, 1, 2], 3) && !valid([2, 1, 1, 2], 3)
                && !valid([1], 3))
    }
}

/// Sums longer than a block (`SumStorage.blockElements`): narrow blocks keep 32-bit words, a block
/// widens to 64-bit units when one of its elements needs them, and every path agrees with plain
/// 64-bit arithmetic.
@Suite struct ExactSumBlockTests {
    static let block = SumStorage.blockElements
    static let count = 3 * block + 100

    /// Small values everywhere, with one element past 32 bits in block 1 and one at the end.
    static func values(seed: UInt64) -> [Float] {
        var rng = RandomStream(seed: seed, purpose: .scratch, step: 0, index: 0)
        let t = Tensor.randomNormal([count], std: 1e-3, rng: &rng)
        var v = t.scalars
        v[block + 7] = 3
        v[count - 1] = -0.75
        return v
    }

    static func reference(_ runs: [(values: [Float], offset: Int)], fractionBits: Int = 32) -> [Int64] {
        var units = [Int64](repeating: 0, count: count)
        let scale = Double(sign: .plus, exponent: fractionBits, significand: 1)
        for (values, offset) in runs {
            for (k, x) in values.enumerated() {
                units[offset + k] += Int64((Double(x) * scale).rounded(.toNearestOrEven))
            }
        }
        return units
    }

    @Test func sumsAcrossBlocks_equalPlain64BitArithmetic_andWidenOnlyWhereNeeded() throws {
        let a = Self.values(seed: 1), b = Self.values(seed: 2)
        let straddling = Array(Self.values(seed: 3)[0..<300])  // over the boundary of blocks 0 and 1
        var sum = ExactSum(count: Self.count)
        try sum.add(Tensor(shape: [Self.count], scalars: a))
        try sum.add(Tensor(shape: [300], scalars: straddling), at: Self.block - 150)
        try sum.add(Tensor(shape: [Self.count], scalars: b))
        let expected = Self.reference([(a, 0), (straddling, Self.block - 150), (b, 0)])
        #expect(sum.units == expected)
        #expect(sum.value().scalars == expected.map { Float(Double($0) * 0x1p-32) })
        #expect(sum.storage.wide.map { $0 != nil } == [false, true, false, true])
    }

    @Test func partial_ofNarrowBlocks_isTheSumsOwnWords_andPatchesOnlyWideElements() throws {
        var sum = ExactSum(count: Self.count)
        try sum.add(Tensor(shape: [Self.count], scalars: Self.values(seed: 4)))
        guard case .packed(let narrow, let none) = sum.partial(100..<(Self.block - 10)) else {
            Issue.record("a narrow run was not packed")
            return
        }
        #expect(none.isEmpty && narrow.owner === sum.storage && narrow.base == UnsafePointer(sum.storage.low + 100))
        let across = 1000..<(2 * Self.block + 5)
        let p = sum.partial(across)
        guard case .packed(let low, let patches) = p else {
            Issue.record("a run with one wide element was not packed")
            return
        }
        #expect(patches == [Int64(Self.block + 7 - 1000), sum.units[Self.block + 7]])
        #expect(low.array == sum.units[across].map { Int32(truncatingIfNeeded: $0) })
        #expect(p.units == Array(sum.units[across]))
    }

    @Test func anOverflowInALaterBlock_addsNothing_evenToBlocksThatWidened() throws {
        var sum = ExactSum(count: Self.count, fractionBits: 40)
        try sum.add(Tensor(shape: [Self.count], scalars: (0..<Self.count).map { Float($0 % 7) * 1e-4 }))
        let before = sum
        var bad = [Float](repeating: 1e-4, count: Self.count)
        bad[10] = 0.5  // 2^39 units: block 0 widens
        bad[2 * Self.block + 3] = 1e8  // past 2^62 units
        #expect(throws: ExactSum.Overflow(index: 2 * Self.block + 3, value: Double(Float(1e8)))) {
            try sum.add(Tensor(shape: [Self.count], scalars: bad))
        }
        #expect(sum == before)
        #expect(sum.units == before.units)
    }

    @Test func copies_andSentWords_keepTheirValues_whenTheSumChanges() throws {
        var sum = ExactSum(count: Self.count)
        try sum.add(Tensor(shape: [Self.count], scalars: Self.values(seed: 5)))
        let copy = sum
        let sent = sum.partial(0..<50)
        let sentWords = sent.units
        try sum.add(Tensor(shape: [Self.count], scalars: Self.values(seed: 6)))
        #expect(copy.units == Self.reference([(Self.values(seed: 5), 0)]))
        #expect(sent.units == sentWords)
        #expect(sum.units == Self.reference([(Self.values(seed: 5), 0), (Self.values(seed: 6), 0)]))
    }

    /// One-pass sums over runs that cross narrow and wide blocks, with received patches.
    @Test func onePassSums_acrossBlocks_equalPlain64BitArithmetic() throws {
        var mine = ExactSum(count: Self.count), theirs = ExactSum(count: Self.count)
        try mine.add(Tensor(shape: [Self.count], scalars: Self.values(seed: 7)))
        var other = Self.values(seed: 8)
        other[Self.block - 3] = -2  // a patch in a block that is narrow in `mine`
        try theirs.add(Tensor(shape: [Self.count], scalars: other))
        let range = 3000..<(2 * Self.block + 900)
        let expected = zip(mine.units[range], theirs.units[range]).map { $0 + $1 }
        let received = theirs.partial(range)
        guard case .packed(let low, let patches) = received else {
            Issue.record("the received run was not packed")
            return
        }
        #expect(patches.count == 4)  // elements block − 3 and block + 7
        let floats = Tensor(zeros: [range.count])
        try low.withWords { l in
            try patches.withUnsafeBufferPointer { p in
                let sum = try mine.partialSum(range, adding: .packed(low: l, patches: p))
                #expect(sum.units == expected)
                try mine.valuesOfSum(range, adding: .packed(low: l, patches: p), into: floats.pointer)
            }
        }
        #expect(floats.scalars == expected.map { Float(Double($0) * 0x1p-32) })
    }
}
