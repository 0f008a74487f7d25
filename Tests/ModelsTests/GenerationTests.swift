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

    /// With a version set, decode weights are packed once for it; a new version (after new
    /// weights) packs again, so generations follow the weights, in Float32 and in bf16.
    @Test(arguments: ProductPrecision.allCases)
    func decodeWeights_keptForAVersion_arePackedAgainForTheNext(precision: ProductPrecision) throws {
        let model = try GPT2.load(from: GPT2ReferenceTests.fixtures)
        model.productPrecision = precision
        let options = SamplingOptions(maxNewTokens: 5, seed: 4)
        model.decodeWeightsVersion = 1
        let first = model.generate(prompts: Self.prompts, options: options)
        #expect(model.decodeCache.current(precision: precision) != nil)
        #expect(model.generate(prompts: Self.prompts, options: options) == first)
        model.blocks[0].expand.weight.value.fill(0.05)  // new weights, then their version
        model.decodeWeightsVersion = 2
        #expect(model.decodeCache.current(precision: precision) == nil)
        let second = model.generate(prompts: Self.prompts, options: options)
        let fresh = model.copy()  // no version: packs its own
        fresh.productPrecision = precision
        #expect(second == fresh.generate(prompts: Self.prompts, options: options) && second != first)
        model.decodeWeightsVersion = nil
        #expect(model.decodeCache.current(precision: precision) == nil)
    }

    @Test func sampledSequence_dependsOnlyOnItsSeedAndID_notOnItsBatch() {
        let options = SamplingOptions(maxNewTokens: 6, temperature: 1.2, topK: 20, topP: 0.95, seed: 11)
        let batch = Self.model.generate(prompts: Self.prompts, sampleIDs: [100, 101, 102, 103], options: options)
        let alone = Self.model.generate(prompts: [Self.prompts[2]], sampleIDs: [102], options: options)
        let reordered = Self.model.generate(
            prompts: [Self.prompts[2], Self.prompts[0]], sampleIDs: [102, 100], options: options)
        #expect(alone[0] == batch[2])
        #expect(reordered[0] == batch[2] && reordered[1] == batch[0])
        let otherSeed = Self.model.generate(
            prompts: Self.prompts, sampleIDs: [100, 101, 102, 103],
            options: .init(maxNewTokens: 6, temperature: 1.2, seed: 12))
        #expect(otherSeed.map(\.tokens) != batch.map(\.tokens))
        let uncached = Self.model.generateWithoutCache(
            prompts: Self.prompts, sampleIDs: [100, 101, 102, 103], options: options)
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

    /// With bf16 products the cache is bfloat16 (`BFloat16KeyValues`): a sequence still depends
    /// only on its seed and id, and its log-probs stay near those of the bf16 forward (whose
    /// attention multiplies in Float32): 0.0097 apart at most on this fixture, bits that do not
    /// change from run to run.
    @Test func bf16Generation_attendsOverABFloat16Cache_nearTheForward() throws {
        let model = try GPT2.load(from: GPT2ReferenceTests.fixtures)
        model.productPrecision = .bf16
        let options = SamplingOptions(maxNewTokens: 6, seed: 11)
        let state = SequenceState(
            prompt: [1], id: 0, options: options, model: model, cacheLayout: .init(kvHeads: 2, headDim: 4))
        guard case .bf16 = state.cache.storage else {
            Issue.record("a bf16 model caches Float32 keys and values")
            return
        }
        let batch = model.generate(prompts: Self.prompts, sampleIDs: [100, 101, 102, 103], options: options)
        let alone = model.generate(prompts: [Self.prompts[2]], sampleIDs: [102], options: options)
        #expect(alone[0] == batch[2])
        var worst: Float = 0
        for (prompt, g) in zip(Self.prompts, batch) {
            let full = prompt + g.tokens
            let forced = Autograd.inferenceMode {
                model.nextTokenLogProbs(TokenTensor(shape: [1, full.count], ids: full)).value.scalars
            }
            for (a, b) in zip(g.logProbs, forced.suffix(g.tokens.count)) { worst = max(worst, abs(a - b)) }
        }
        #expect(worst < 1e-2 && worst > 0, "largest log-prob difference \(worst)")
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
        let topOne = Self.model.generate(
            prompts: Self.prompts, options: .init(maxNewTokens: 4, temperature: 0.7, topK: 1, seed: 9))
        #expect(greedy.map(\.tokens) == topOne.map(\.tokens))
        #expect(Self.model.generate(prompts: [[1]], options: .greedy(maxNewTokens: 0))[0].tokens.isEmpty)
    }

    @Test func generation_stopsAtTheContextLength() {
        // Context 16: a 14-token prompt leaves room for 2 new tokens.
        let g = Self.model.generate(prompts: [Array(repeating: 7, count: 14)], options: .greedy(maxNewTokens: 10))[0]
        #expect(g.tokens.count == 2 && !g.stopped)
    }
}

@Suite struct HeadsAndBatchingTests {
    static let model = GenerationTests.model

    @Test func continuationLogProbs_withPadding_equalEachPairAlone() {
        let prompts: [[Int32]] = [[1, 2, 3], [4], [5, 6]]
        let continuations: [[Int32]] = [[7, 8], [9, 10, 11, 12], [13]]
        let batched = Autograd.inferenceMode {
            Self.model.continuationLogProbs(prompts: prompts, continuations: continuations).sum(axis: 1).value.scalars
        }
        for i in prompts.indices {
            let alone = Autograd.inferenceMode {
                Self.model.continuationLogProbs(prompts: [prompts[i]], continuations: [continuations[i]]).sum(axis: 1)
                    .value.item
            }
            // Teacher forcing by hand: the last continuation.count log-probs of the whole sequence.
            let full = prompts[i] + continuations[i]
            let forced = Autograd.inferenceMode {
                Self.model.nextTokenLogProbs(TokenTensor(shape: [1, full.count], ids: full)).value.scalars
            }
            let expected = forced.suffix(continuations[i].count).reduce(0, +)
            #expect(abs(batched[i] - alone) < 1e-4)
            #expect(abs(alone - expected) < 1e-4)
        }
    }

    @Test func rewardScores_ignorePadding_andTrainTheHead() throws {
        let reward = RewardModel(backbone: try GPT2.load(from: GPT2ReferenceTests.fixtures), seed: 4)
        let batch = PaddedBatch([[1, 2, 3], [4, 5], [6]])
        let scores = Autograd.inferenceMode { reward.scores(batch).value.scalars }
        for (i, s) in [[Int32(1), 2, 3], [4, 5], [6]].enumerated() {
            let alone = Autograd.inferenceMode { reward.scores(PaddedBatch([s])).value.item }
            #expect(abs(scores[i] - alone) < 1e-5)
        }
        // Bradley–Terry on one pair: the gradient reaches the score head.
        let params = ParameterSet(reward.namedParameters)
        let s = reward.scores(PaddedBatch([[1, 2, 3], [1, 2, 4]]))
        let margin = s.slice(axis: 0, 0..<1) - s.slice(axis: 0, 1..<2)
        (-(margin.logSoftmaxPair())).sum().backward()
        #expect((params["score.weight"]?.grad?.scalars.map(abs).max() ?? 0) > 0)
    }

    @Test func valueHead_givesOneValuePerGeneratedToken() {
        let head = ScalarHead(width: Self.model.config.width, bias: true, seed: 2, index: 0)
        let g = Self.model.generate(prompts: [[1, 2], [3]], options: .greedy(maxNewTokens: 4), valueHead: head)
        #expect(g.allSatisfy { $0.values.count == $0.tokens.count })
        // The value at a token equals the head applied to that position's final hidden state.
        let full: [Int32] = [1, 2] + g[0].tokens
        let hidden = Autograd.inferenceMode {
            head(Self.model.hiddenStates(TokenTensor(shape: [1, full.count], ids: full))).value.scalars
        }
        // Values are read where each token is chosen: positions 1, 2, 3, 4 of the full sequence.
        for (k, v) in g[0].values.enumerated() { #expect(abs(v - hidden[1 + k]) < 1e-4) }
    }
}

extension Variable {
    /// log σ(x) = −log(1 + e^(−x)), written with existing ops: log softmax of [x, 0] at index 0.
    fileprivate func logSoftmaxPair() -> Variable {
        let zero = Variable(Tensor(zeros: shape))
        let pair = Variable.concatenatePair(self, zero)
        return pair.logSoftmax().slice(axis: -1, 0..<1)
    }

    fileprivate static func concatenatePair(_ a: Variable, _ b: Variable) -> Variable {
        // [a, b] along a new last axis via a 2-column selection: a·[1, 0] + b·[0, 1].
        let n = a.shape.reduce(1, *)
        let left = Variable(Tensor(shape: [1, 2], scalars: [1, 0])),
            right = Variable(Tensor(shape: [1, 2], scalars: [0, 1]))
        return a.reshaped([n, 1]).matmul(left) + b.reshaped([n, 1]).matmul(right)
    }
}
