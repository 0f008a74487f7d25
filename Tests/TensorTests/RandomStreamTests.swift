import Testing

@testable import Tensor

@Suite struct RandomStreamTests {
    // MARK: Philox known answers

    @Test func philox4x32_10_matchesRandom123KnownAnswers() {
        // From Random123's kat_vectors: counter, key → output.
        #expect(
            Philox4x32.block(counter: .zero, key: .zero) == SIMD4(0x6627_E8D5, 0xE169_C58D, 0xBC57_AC4C, 0x9B00_DBD8))
        #expect(
            Philox4x32.block(counter: SIMD4(repeating: .max), key: SIMD2(repeating: .max))
                == SIMD4(0x408F_276D, 0x41C8_3B0E, 0xA20B_C7C6, 0x6D54_51FD))
        #expect(
            Philox4x32.block(
                counter: SIMD4(0x243F_6A88, 0x85A3_08D3, 0x1319_8A2E, 0x0370_7344), key: SIMD2(0xA409_3822, 0x299F_31D0)
            )
                == SIMD4(0xD16C_FE09, 0x94FD_CCEB, 0x5001_E420, 0x2412_6EA1))
    }

    // MARK: Addressing

    @Test func stream_isAPureFunctionOfItsAddress() {
        var a = RandomStream(seed: 42, purpose: .sampling, step: 3, index: 17)
        var b = RandomStream(seed: 42, purpose: .sampling, step: 3, index: 17)
        #expect((0..<100).map { _ in a.nextUInt32() } == (0..<100).map { _ in b.nextUInt32() })
    }

    @Test func stream_doesNotDependOnCallOrderOfOtherStreams() {
        // Sample 5's draws are the same whether or not samples 0–4 were drawn first, and in any order.
        func draws(_ index: UInt64) -> [UInt32] {
            var s = RandomStream(seed: 7, purpose: .sampling, step: 1, index: index)
            return (0..<10).map { _ in s.nextUInt32() }
        }
        let alone = draws(5)
        let afterOthers = (0..<6).reversed().map(draws)
        #expect(afterOthers[0] == alone)
    }

    @Test func positionedStream_resumesExactlyWhereTheOriginalWas() {
        var original = RandomStream(seed: 1, purpose: .dataShuffle, step: 2, index: 3)
        for _ in 0..<40 { _ = original.nextUInt32() }  // 10 whole blocks
        var resumed = RandomStream(seed: 1, purpose: .dataShuffle, step: 2, index: 3, position: original.position)
        #expect((0..<8).map { _ in original.nextUInt32() } == (0..<8).map { _ in resumed.nextUInt32() })
    }

    @Test func differentSeedPurposeStepOrIndex_giveDifferentStreams() {
        func first(_ s: RandomStream) -> [UInt32] {
            var s = s
            return (0..<4).map { _ in s.nextUInt32() }
        }
        let base = first(RandomStream(seed: 1, purpose: .sampling, step: 0, index: 0))
        #expect(first(RandomStream(seed: 2, purpose: .sampling, step: 0, index: 0)) != base)
        #expect(first(RandomStream(seed: 1, purpose: .dropout, step: 0, index: 0)) != base)
        #expect(first(RandomStream(seed: 1, purpose: .sampling, step: 1, index: 0)) != base)
        #expect(first(RandomStream(seed: 1, purpose: .sampling, step: 0, index: 1)) != base)
    }

    // MARK: Distributions

    @Test func uniformAndNormal_haveTheRightMoments() {
        var s = RandomStream(seed: 11, purpose: .scratch)
        let n = 200_000
        let u = (0..<n).map { _ in Double(s.nextUniform()) }
        let z = (0..<n).map { _ in Double(s.nextNormal()) }
        let uMean = u.reduce(0, +) / Double(n)
        let zMean = z.reduce(0, +) / Double(n)
        let zVar = z.reduce(0) { $0 + ($1 - zMean) * ($1 - zMean) } / Double(n)
        // Standard errors: uniform mean 0.29/√n ≈ 6.5e-4, normal mean 2.2e-3, variance ≈ 3.2e-3; 5σ bounds.
        #expect(abs(uMean - 0.5) < 4e-3)
        #expect(u.allSatisfy { $0 >= 0 && $0 < 1 })
        #expect(abs(zMean) < 1.2e-2)
        #expect(abs(zVar - 1) < 1.6e-2)
    }

    @Test func nextBelow_staysInRange_andCoversIt() {
        var s = RandomStream(seed: 4, purpose: .scratch)
        var seen = Set<Int>()
        for _ in 0..<2000 {
            let v = s.next(below: 7)
            #expect((0..<7).contains(v))
            seen.insert(v)
        }
        #expect(seen.count == 7)
    }
}
