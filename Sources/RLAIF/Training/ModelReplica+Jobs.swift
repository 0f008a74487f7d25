import Models
import Tensor

/// The compute of each job kind on a replica. Called on the engine thread.
extension ModelReplica {
    public func rollout(_ spec: RolloutSpec) throws -> [RolloutSample] {
        let prompts = spec.prompts.map { tokenizer.encode($0) }
        for p in prompts {
            guard !p.isEmpty, p.count < contextLength else {
                throw ReplicaError(
                    message: "a prompt of \(p.count) tokens leaves no room to respond within \(contextLength)")
            }
        }
        return Autograd.inferenceMode {
            let generator = spec.generator == .reference ? (reference ?? policy) : policy
            let room = contextLength - (prompts.map(\.count).max() ?? 0)
            let options = SamplingOptions(
                maxNewTokens: max(1, min(spec.maxNewTokens, room)), temperature: Float(spec.temperature),
                stopTokens: Set(spec.stopTokens), seed: spec.seed)
            // Weights change only by a step (which counts a version) or a restore (which drops
            // this): the version's rollouts and evaluations share one pack of decode weights.
            generator.decodeWeightsVersion = version
            let generations = generator.generate(prompts: prompts, sampleIDs: spec.sampleIDs, options: options)
            var samples = generations.map { RolloutSample(tokens: $0.tokens) }
            guard spec.score, !samples.isEmpty else { return samples }
            let batch = SequenceBatch(prompts: prompts, responses: samples.map(\.tokens))
            let (lp, values) = policyForward(batch)
            let logProbs = batch.gather(lp.value), valueLists = batch.gather(values.value)
            let reference = batch.gather(referenceLogProbs(batch))
            let rewards = reward.map { $0.scores(batch.padded).value.scalars }
            for i in samples.indices {
                samples[i].logProbs = logProbs[i]
                samples[i].values = valueLists[i]
                samples[i].referenceLogProbs = reference[i]
                samples[i].reward = rewards?[i]
            }
            return samples
        }
    }

    /// A sequence from the wire must not reach the model's preconditions: 1 to context-length
    /// tokens, each in the vocabulary.
    func checkFromWire(_ sequence: [Int32]) throws {
        guard (1...contextLength).contains(sequence.count) else {
            throw ReplicaError(
                message:
                    "a sequence of \(sequence.count) tokens does not fit the context length \(contextLength)")
        }
        let vocabulary = Int32(policy.vocabularySize)
        guard sequence.allSatisfy({ (0..<vocabulary).contains($0) }) else {
            throw ReplicaError(message: "a token id lies outside the vocabulary of \(vocabulary)")
        }
    }

    /// Reward-model scores of token sequences (prompt, then response).
    public func scores(_ spec: ScoreSpec) throws -> [Float] {
        guard let reward else { throw ReplicaError(message: "score job before the reward model exists") }
        for sequence in spec.sequences { try checkFromWire(sequence) }
        return Autograd.inferenceMode { reward.scores(PaddedBatch(spec.sequences)).value.scalars }
    }

    /// The exact sum of the micro-batches' gradients of `objective`, with the metric sums appended.
    public func gradientSum(_ objective: Objective, _ micros: [MicroBatch], normalizer: Float) throws -> ExactSum {
        guard let parameters = parameters(objective.role) else {
            throw ReplicaError(message: "gradient job for \(objective.role) before it exists")
        }
        for micro in micros {
            for (p, r) in zip(micro.batch.prompts, micro.batch.responses) { try checkFromWire(p + r) }
        }
        let n = parameters.count, m = objective.metricNames.count
        var total = ExactSum(count: n + m)
        for micro in micros {
            parameters.zeroGradients()
            let (loss, metrics) = loss(objective, micro, normalizer: normalizer)
            loss.backward()
            try total.add(parameters.gradients, at: 0)
            try total.add(Tensor(shape: [m], scalars: metrics), at: n)
        }
        return total
    }

    /// Applies a reduced sum (`ExactSum.value()` of every worker's `gradientSum`): the gradient
    /// goes to the optimizer, the metric sums come back.
    public func apply(
        _ reduced: Tensor, objective: Objective, learningRate: Float, clipNorm: Float
    ) -> (gradientNorm: Float, metrics: [String: Double]) {
        let parameters = parameters(objective.role)!
        let n = parameters.count
        precondition(reduced.count == n + objective.metricNames.count, "apply: a reduced sum of the wrong size")
        let norm = step(objective.role, gradients: reduced.pointer, learningRate: learningRate, clipNorm: clipNorm)
        version += 1
        var metrics: [String: Double] = [:]
        for (k, name) in objective.metricNames.enumerated() { metrics[name] = Double(reduced[flat: n + k]) }
        return (norm, metrics)
    }
}
