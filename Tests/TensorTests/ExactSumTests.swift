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
        let resolution = 0x1p-40 * 8  // one rounding per added value
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
}
