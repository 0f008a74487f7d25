import Foundation
import Models
import Protocol
import Tensor
import Testing

@testable import RLAIF

@Suite struct PipelinePartsTests {
    let task = FactSummaryTask(seed: 3)

    @Test func groundTruth_scoresTheIdealHighest_andPenalizesEachFlaw() throws {
        let post = task.post(.heldOut, 5)
        #expect(FactSummaryTask.post(fromPrompt: post.prompt) == post)
        let ideal = post.idealSummary
        #expect(FactSummaryTask.quality(of: ideal, for: post) == 3)
        let minor = post.facts.first { !post.keyFacts.contains($0) }!
        let invented = FactSummaryTask.alphabet.first { !post.facts.contains($0) }!
        #expect(FactSummaryTask.quality(of: String(ideal.dropFirst()), for: post) == 2)  // a key fact dropped
        #expect(FactSummaryTask.quality(of: String(minor) + ideal, for: post) == 2.5)
        #expect(FactSummaryTask.quality(of: String(invented) + ideal, for: post) == 2)
        #expect(FactSummaryTask.quality(of: String(ideal.dropLast()), for: post) == 2)  // no period
        #expect(FactSummaryTask.preference(ideal, String(ideal.dropFirst()), for: post) == 1)
        #expect(FactSummaryTask.quality(of: ideal.lowercased(), for: post) == 3)  // a fact in either case
        #expect(FactSummaryTask.quality(of: ideal.dropLast() + ideal, for: post) == 1.5)  // three repeats
        #expect(FactSummaryTask.post(fromPrompt: "bKdMeA>")?.idealSummary == "KMA.")
    }

    @Test func demonstrations_areFlawed_atRoughlyTheConfiguredRates() {
        var total = 0.0
        for i in 0..<400 {
            let d = task.demonstration(i)
            total += FactSummaryTask.quality(of: d.completion, for: FactSummaryTask.post(fromPrompt: d.prompt)!)
        }
        // Expected ≈ 3·0.7 − 0.5·3·0.15 − 0.1 ≈ 1.78: clearly below the ideal 3.
        #expect((1.5...2.1).contains(total / 400))
    }

    @Test func rubricLabeler_hasPositionBias_thatBothOrdersCancel() async {
        let labeler = RubricLabeler(seed: 1, noise: 0.6, positionBias: 0.8, lengthBias: 0, invalidRate: 0)
        var pairs: [LabelingPair] = []
        for i in 0..<300 {
            let post = task.post(.training, i)
            pairs.append(
                LabelingPair(id: UInt64(i), prompt: post.prompt, first: post.idealSummary, second: post.idealSummary))
        }
        // Identical responses: a single order prefers the first; both orders average to 0.5.
        let single = await labeler.judge(pairs, attempt: 0).compactMap(\.probabilityFirst)
        #expect(single.reduce(0, +) / Double(single.count) > 0.7)
        let both = await PreferenceLabeling(labeler: labeler, bothOrders: true, retries: 0, ambiguityMargin: 0)
            .label(pairs).compactMap(\.probabilityA)
        #expect(abs(both.reduce(0, +) / Double(both.count) - 0.5) < 0.03)
    }

    @Test func garbageAnswers_areRetried_thenCountedInvalid() async {
        let always = RubricLabeler(seed: 1, noise: 0, positionBias: 0, lengthBias: 0, invalidRate: 1)
        let post = task.post(.training, 0)
        let labels = await PreferenceLabeling(labeler: always, bothOrders: true, retries: 2, ambiguityMargin: 0.05)
            .label([LabelingPair(id: 0, prompt: post.prompt, first: "a.", second: "b.")])
        #expect(labels[0].status == .invalid && labels[0].probabilityA == nil && labels[0].retries == 4)
    }

    @Test func advantages_matchAHandComputation() {
        var s = RolloutSample(tokens: [1, 2])
        s.logProbs = [-1, -2]
        s.referenceLogProbs = [-1.5, -1]
        s.values = [0.25, 0.5]
        let out = Advantages.compute(samples: [s], rewards: [2], klBeta: 0.1, normalizeRewards: false, gaeLambda: nil)
        // Token rewards: −0.1·0.5 = −0.05 and −0.1·(−1) + 2 = 2.1; returns 2.05, 2.1.
        #expect(abs(out.returns[0][0] - 2.05) < 1e-6 && abs(out.returns[0][1] - 2.1) < 1e-6)
        #expect(abs(out.advantages[0][0] - 1.8) < 1e-6 && abs(out.advantages[0][1] - 1.6) < 1e-6)
        #expect(abs(out.meanKL - (-0.5)) < 1e-9)
    }

    @Test func gradientJob_roundTripsItsSettingsAndMicroBatches() throws {
        var a = MicroBatch(id: 0, batch: SequenceBatch(prompts: [[1, 2], [3]], responses: [[4], [5, 6]]))
        a.labels = [0.75]
        var b = MicroBatch(id: 1, batch: SequenceBatch(prompts: [[7], [7]], responses: [[8, 9, 10], [8]]))
        b.advantages = [[1, 2, 3], [-4]]
        b.returns = [[0.5, 0, -0], [.infinity]]
        b.oldLogProbs = [[-1, -2, -3], [-1e-30]]
        var spec = GradientSpec(objective: .groupPolicy, learningRate: 3e-4, clipNorm: 1, normalizer: 12)
        spec.klBeta = 0.04
        spec.forkReward = true
        spec.ring = .init(rank: 1, size: 3, epoch: 9, next: "tcp://10.0.0.2:4100", nextKey: "k", timeoutMs: 2500)
        let job = GradientJob(spec: spec, microBatches: [a, b])
        let back = try GradientJob(wireBody: job.wireBody, field: "gradient")
        #expect(back.spec == spec)
        #expect(back.microBatches.map(\.id) == [0, 1])
        #expect(
            back.microBatches[0].batch.responses == [[4], [5, 6]] && back.microBatches[1].batch.prompts == [[7], [7]])
        #expect(back.microBatches[0].labels == [0.75] && back.microBatches[1].labels.isEmpty)
        #expect(back.microBatches[0].advantages.isEmpty && back.microBatches[1].advantages == b.advantages)
        #expect(back.microBatches[1].returns == b.returns && back.microBatches[1].oldLogProbs == b.oldLogProbs)
        // Every cut of the body is refused with the field it stopped in, never read as a shorter job.
        let bytes = job.wireBody
        for cut in 0..<bytes.count {
            #expect(throws: WireError.self) { try GradientJob(wireBody: Array(bytes[..<cut]), field: "gradient") }
        }
        #expect(throws: WireError.self) { try GradientJob(wireBody: bytes + [0], field: "gradient") }
    }

    /// Bodies that decode field by field but say something impossible are refused by name.
    @Test func gradientJob_withInconsistentLengths_isRefusedByField() throws {
        func refusal(_ micro: MicroBatch, edit: (inout [UInt8]) -> Void = { _ in }) -> String? {
            var bytes = GradientJob(
                spec: .init(objective: .ppo, learningRate: 1, clipNorm: 1, normalizer: 1), microBatches: [micro]
            ).wireBody
            edit(&bytes)
            do {
                _ = try GradientJob(wireBody: bytes, field: "gradient")
                return nil
            } catch { return error.field }
        }
        var micro = MicroBatch(id: 0, batch: SequenceBatch(prompts: [[1], [2]], responses: [[3, 4], [5]]))
        micro.advantages = [[1, 2], [3, 4]]  // two numbers for a one-token response
        #expect(refusal(micro) == "gradient.advantages")
        micro.advantages = [[1, 2], []]  // some sequences only
        #expect(refusal(micro) == "gradient.advantages")
        micro.advantages = []
        micro.labels = [0.5, 0.5]  // two labels for one pair
        #expect(refusal(micro) == "gradient.labels")
        micro.labels = []
        // The objective is the body's first byte.
        #expect(refusal(micro) { $0[0] = 99 } == "gradient.objective")
    }

    /// GRPO normalizes within each group; RLOO subtracts the mean of the others after paying
    /// β·KL; every token of a response gets its response's advantage.
    @Test func groupedAdvantages_matchAHandComputation() {
        func sample(_ kl: Float, tokens: Int) -> RolloutSample {
            var s = RolloutSample(tokens: Array(repeating: 1, count: tokens))
            s.logProbs = Array(repeating: -1, count: tokens)
            s.referenceLogProbs = [-1 - kl] + Array(repeating: -1, count: tokens - 1)  // KL(response) = kl
            return s
        }
        let samples = [sample(0, tokens: 2), sample(1, tokens: 1), sample(0, tokens: 3), sample(2, tokens: 1)]
        let rewards = [1.0, 3.0, -1.0, -1.0]
        let grpo = Advantages.grouped(samples: samples, rewards: rewards, groupSize: 2, algorithm: .grpo, klBeta: 0.5)
        // Group (1, 3): mean 2, std 1 → −1, +1; group (−1, −1): std 0 → 0, 0.
        let unit = Float(1 / (1 + 1e-6))
        let expected: [[Float]] = [[-unit, -unit], [unit], [0, 0, 0], [0]]
        #expect(grpo.advantages == expected)
        let rloo = Advantages.grouped(samples: samples, rewards: rewards, groupSize: 2, algorithm: .rloo, klBeta: 0.5)
        // Rewards less 0.5·KL: (1, 2.5) and (−1, −2); each minus the other's.
        #expect(rloo.advantages == [[-1.5, -1.5], [1.5], [1, 1, 1], [-1]])
        #expect(abs(rloo.meanKL - 0.75) < 1e-9 && rloo.meanReward == 0.5)
        #expect(rloo.returns.allSatisfy { $0.allSatisfy { $0 == 0 } })
    }

    /// The critic-free loss (clipped ratio plus β·k3 KL) has the gradient finite differences give.
    @Test func groupPolicyLoss_gradientMatchesFiniteDifferences() throws {
        try expectGradientMatchesFiniteDifferences(.groupPolicy(clip: 0.2, klBeta: 0.3))
    }

    /// The PPO loss's gradient with respect to the policy equals finite differences of the loss.
    @Test func ppoLoss_gradientMatchesFiniteDifferences() throws {
        try expectGradientMatchesFiniteDifferences(.ppo(clip: 0.2, valueCoefficient: 0.5))
    }

    func expectGradientMatchesFiniteDifferences(_ objective: Objective) throws {
        let replica = ModelReplica(
            policy: try GPT2(
                config: .init(vocabularySize: 12, contextLength: 8, width: 8, layers: 1, heads: 2), seed: 5),
            tokenizer: ByteTokenizer(), seed: 5, contextLength: 8)
        var micro = MicroBatch(id: 0, batch: SequenceBatch(prompts: [[1, 2], [3]], responses: [[4, 5], [6]]))
        micro.advantages = [[0.5, -1], [2]]
        micro.returns = [[1, 0], [0.5]]
        micro.oldLogProbs = [[-2.4, -2.6], [-2.5]]
        replica.forkReference()
        // A reference apart from the policy, so the KL term has a gradient.
        let reference = try #require(replica.parameters(.reference))
        for i in stride(from: 0, to: reference.count, by: 7) { reference.values[flat: i] += 0.05 }
        let params = replica.policyParameters
        params.zeroGradients()
        let (loss, _) = replica.loss(objective, micro, normalizer: 3)
        loss.backward()
        let analytic = params.gradients.copy()
        for index in [0, 17, params.count / 2, params.count - 2] {
            let saved = params.values[flat: index]
            let eps: Float = 1e-2
            params.values[flat: index] = saved + eps
            let up = Autograd.inferenceMode { Double(replica.loss(objective, micro, normalizer: 3).0.value[flat: 0]) }
            params.values[flat: index] = saved - eps
            let down = Autograd.inferenceMode { Double(replica.loss(objective, micro, normalizer: 3).0.value[flat: 0]) }
            params.values[flat: index] = saved
            let numeric = (up - down) / Double(2 * eps)
            #expect(abs(Double(analytic[flat: index]) - numeric) <= 5e-3 + 2e-2 * abs(numeric), "parameter \(index)")
        }
    }

    /// The summary's checksum computed from a snapshot is the replica's own; the per-step
    /// fingerprint sees a one-bit change at its first, middle and last weight (tails: `FingerprintTests`).
    @Test func snapshotChecksum_isTheReplicas_andTheFingerprintSeesOneBit() throws {
        let replica = ModelReplica(
            policy: try GPT2(
                config: .init(vocabularySize: 12, contextLength: 8, width: 8, layers: 1, heads: 2), seed: 5),
            tokenizer: ByteTokenizer(), seed: 5, contextLength: 8)
        replica.forkReference()
        replica.forkReward()
        #expect(ModelReplica.checksum(of: replica.snapshot()) == replica.checksum())
        #expect(replica.checksum().split(separator: "-").count == 3)
        let values = replica.policyParameters.values
        let before = replica.fingerprint()
        for index in [0, values.count / 2, values.count - 1] {
            let saved = values[flat: index]
            values[flat: index] = Float(bitPattern: saved.bitPattern ^ 1)
            #expect(replica.fingerprint() != before, "element \(index)")
            values[flat: index] = saved
            #expect(replica.fingerprint() == before)
        }
    }

    /// Every job and every kind of output reads back from its wire form as itself.
    @Test func jobsAndOutputs_roundTripThroughTheirWireForm() throws {
        let rollout = RolloutSpec(
            prompts: ["a", "ü"], sampleIDs: [1, .max], seed: 7, temperature: 0.7, maxNewTokens: 5,
            generator: .reference, score: true, stopTokens: [46])
        let pairs = LabelingSpec(pairs: [LabelingPair(id: 3, prompt: "p", first: "x", second: "y")])
        let ratings = LabelingSpec(ratings: [RatingItem(id: 4, prompt: "p", response: "r")])
        let scores = ScoreSpec(sequences: [[112, 114], [0, 256, 3]])
        for job in [Job.rollout(rollout), .labeling(pairs), .labeling(ratings), .scores(scores)] {
            let (kind, body) = job.wire
            #expect(try Job(kind: kind, body: body) == job)
            for cut in 0..<body.count {
                #expect(throws: (any Error).self) { try Job(kind: kind, body: Array(body[..<cut])) }
            }
        }
        var sample = RolloutSample(tokens: [1, 2, 256])
        sample.logProbs = [-0.5, -1, -1e-30]
        sample.referenceLogProbs = [-0.25, -2, 0]
        sample.values = [0.1, 0.2, 0.3]
        sample.reward = -1.5
        let preference = PreferenceLabel(
            pairID: 3, forward: 0.75, backward: nil, probabilityA: 0.75, status: .valid, rationales: ["r"], retries: 1)
        let rating = RatingLabel(id: 4, reward: 1.0 / 3.0, rationale: "", retries: 0)
        let outputs: [(Job, JobOutput)] = [
            (.rollout(rollout), .samples([sample, sample])), (.labeling(pairs), .preferences([preference])),
            (.labeling(ratings), .ratings([rating])),
            (.scores(scores), .scores([0.125, -3, .greatestFiniteMagnitude])),
        ]
        for (job, output) in outputs {
            let body = output.wireBody
            #expect(try JobOutput(of: job, body: body) == output)
            #expect(throws: (any Error).self) { try JobOutput(of: job, body: body + [1]) }
        }
        #expect(throws: JobSpecError.self) { try Job(kind: .gradient, body: []) }
        // A body of another kind is refused, not read as this one.
        #expect(throws: (any Error).self) {
            try JobOutput(of: .labeling(pairs), body: JobOutput.scores([1, 2]).wireBody)
        }
    }
}
