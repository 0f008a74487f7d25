import Testing

@testable import RLAIF

/// How a step's micro-batches are dealt to the ranks of a ring.
@Suite struct GradientShareTests {
    @Test func costlierMicroBatches_areDealtFirst_toTheLeastLoadedRank() {
        // Contiguous halves would give 11 and 11 only by luck; here 10 + 1 against 9 + 2.
        #expect(GradientJob.dealt([10, 1, 9, 2], ranks: 2) == [[0, 1], [2, 3]])
        #expect(GradientJob.dealt([10, 9, 2, 1], ranks: 2) == [[0, 3], [1, 2]])
        // Ties go to the earlier micro-batch and the lower rank.
        #expect(GradientJob.dealt([5, 5, 5, 5], ranks: 2) == [[0, 2], [1, 3]])
        #expect(GradientJob.dealt([3], ranks: 2) == [[0], []])
        #expect(GradientJob.dealt([], ranks: 3) == [[], [], []])
    }

    @Test func everyMicroBatch_goesToExactlyOneRank_andLoadsStayWithinTheLargestCost() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let costs = (0..<Int.random(in: 0...12, using: &rng)).map { _ in Int.random(in: 1...100, using: &rng) }
            let ranks = Int.random(in: 1...5, using: &rng)
            let dealt = GradientJob.dealt(costs, ranks: ranks)
            #expect(dealt.count == ranks && dealt.flatMap { $0 }.sorted() == Array(costs.indices))
            #expect(dealt.allSatisfy { $0 == $0.sorted() })
            // The greedy deal: no two ranks' loads differ by more than the costliest micro-batch.
            let loads = dealt.map { $0.reduce(0) { $0 + costs[$1] } }
            #expect((loads.max() ?? 0) - (loads.min() ?? 0) <= (costs.max() ?? 0))
        }
    }
}
