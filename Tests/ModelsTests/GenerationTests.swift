import Foundation
import Tensor
import Testing

@testable import Models

@Suite struct GenerationTests {
    static let model = try! GPT2.load(from: GPT2ReferenceTests.fixtures)
    static let prompts: [[Int32]] = [[5, 17, 3], [42], [1, 2, 3, 4, 5, 6], [60, 0]]

    @Test func greedyWithCache_equalsGreedyWithoutCache_tokenForToken() {
        let options = SamplingOptions.greedy(maxNewTokens: 7)
        let cached = Self.model.generate(prompts: Self.prompts, options: options)
        let uncached = Self.model.generateWithoutCache(prompts: Self.prompts, options: options)
        #expect(cached.map(\.tokens) == uncached.map(\.tokens))
        for (a, b) in zip(cached, uncached) {
            #expect(a.tokens.count == 7)
            for (x, y) in zip(a.logProbs, b.logProbs) { #expect(abs(x - y) < 1e-4) }
        }
    }

    @Test func sampledSequence_dependsOnlyOnItsSeedAndID_notOnItsBatch() {
        let options = SamplingOptions(maxNewTokens: 6, temperature: 1.2, topK: 20, topP: 0.95, seed: 11)
        let batch = Self.model.generate(prompts: Self.prompts, sampleIDs: [100, 101, 102, 103], options: options)
        let alone = Self.model.generate(prompts: [Self.prompts[2]], sampleIDs: [102], options: options)
        let reordered = Self.model.generate(prompts: [Self.prompts[2], Self.prompts[0]], sampleIDs: [102, 100], options: options)
        #expect(alone[0] == batch[2])
        #expect(reordered[0] == batch[2] && reordered[1] == batch[0])
        let otherSeed = Self.model.generate(prompts: Self.prompts, sampleIDs: [100, 101, 102, 103], options: .init(maxNewTokens: 6, temperature: 1.2, seed: 12))
        #expect(otherSeed.map(\.tokens) != batch.map(\.tokens))
        let uncached = Self.model.generateWithoutCache(prompts: Self.prompts, sampleIDs: [100, 101, 102, 103], options: options)
        #expect(uncached.map(\.tokens) == batch.map(\.tokens))
    }

    @Test func logProbs_equalTeacherForcedLogProbsOfTheSameTokens() {
        let g = Self.model.generate(prompts: [Self.prompts[0]], options: .init(maxNewTokens: 5, seed: 3))[0]
        let full = Self.prompts[0] + g.tokens
        let forced = Autograd.inferenceMode {
            Self.model.nextTokenLogProbs(TokenTensor(shape: [1, full.count], ids: full)).value.scalars
        }
        let generatedPart = Array(forced.suffix(g.tokens.count))
        for (a, b) in zip(g.logProbs, generatedPart) { #expect(abs(a - b) < 1e-4) }
    }

    @Test func stopTokens_endOnlyTheirSequence() {
        let greedy = Self.model.generate(prompts: Self.prompts, options: .greedy(maxNewTokens: 6))
        // Stop on the third greedy token of the first sequence: it ends there, with the stop token.
        let stop = greedy[0].tokens[2]
        let stopped = Self.model.generate(prompts: Self.prompts, options: .greedy(maxNewTokens: 6, stopTokens: [stop]))
        #expect(stopped[0].stopped && stopped[0].tokens == Array(greedy[0].tokens.prefix(3)))
        for i in 1..<Self.prompts.count where !greedy[i].tokens.contains(stop) {
            #expect(stopped[i] == greedy[i])
        }
    }

    @Test func topKOfOne_isGreedy_andZeroNewTokensGivesNothing() {
        let greedy = Self.model.generate(prompts: Self.prompts, options: .greedy(maxNewTokens: 4))
        let topOne = Self.model.generate(prompts: Self.prompts, options: .init(maxNewTokens: 4, temperature: 0.7, topK: 1, seed: 9))
        #expect(greedy.map(\.tokens) == topOne.map(\.tokens))
        #expect(Self.model.generate(prompts: [[1]], options: .greedy(maxNewTokens: 0))[0].tokens.isEmpty)
    }

    @Test func generation_stopsAtTheContextLength() {
        // Context 16: a 14-token prompt leaves room for 2 new tokens.
        let g = Self.model.generate(prompts: [Array(repeating: 7, count: 14)], options: .greedy(maxNewTokens: 10))[0]
        #expect(g.tokens.count == 2 && !g.stopped)
    }
}
