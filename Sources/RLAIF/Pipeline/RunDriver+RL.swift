import Foundation
import Models
import Protocol
import Tensor

/// RL against the reward model or the labeler's ratings.
extension RunDriver {
    // MARK: RL

    /// Direct RLAIF's rewards: each response rated 1–10 by the labeler, the probability-weighted
    /// score mapped to [−1, 1]; a response whose rating failed every retry gets 0 and is counted.
    func ratingRewards(prompts: [String], responses: [String], ids: [UInt64]) async throws -> [Double] {
        let items = responses.indices.map {
            RatingItem(id: 1 << 41 + ids[$0], prompt: prompts[$0], response: responses[$0])
        }
        let labels = try await runLabeling(
            items, phase: "rl-rating", spec: { LabelingSpec(ratings: $0, known: knownRatings($0)) }
        ) {
            output in
            guard case .ratings(let labels) = output else { throw JobOutput.mismatch("ratings", output) }
            return labels
        }
        let failed = labels.filter { $0.reward == nil }.count
        events.record(.ratings(failed: failed, rated: labels.count))
        try requireYield(LabelYield(ratings: labels), phase: "rl-rating")
        return labels.map { $0.reward ?? 0 }
    }

    /// The iteration's sequences in micro-batches, each with its advantages, returns and the
    /// log-probs it was sampled with.
    func rlMicroBatches(prompts: [String], samples: [RolloutSample], advantages adv: Advantages.Output) -> [MicroBatch]
    {
        let size = settings.rl.microBatch
        let sequences = zip(prompts, samples).map { (tokenizer.encode($0), $1.tokens) }
        var micros = microBatches(sequences, size: size)
        for m in micros.indices {
            let range = (m * size)..<min((m + 1) * size, samples.count)
            micros[m].advantages = Array(adv.advantages[range])
            micros[m].returns = Array(adv.returns[range])
            micros[m].oldLogProbs = range.map { samples[$0].logProbs }
        }
        return micros
    }

    /// An iteration's prompts, each repeated `rl.samples_per_prompt` times (a group), and the
    /// sample ids that address their random streams (one sample per prompt: the prompt's index).
    func iterationPrompts(_ iteration: Int) -> (prompts: [String], ids: [UInt64]) {
        let rl = settings.rl, k = rl.samplesPerPrompt
        let base = settings.preferences.pairs + iteration * rl.promptsPerIteration
        let prompts = task.trainingPrompts(base..<(base + rl.promptsPerIteration))
        let ids = prompts.indices.flatMap { i in (0..<k).map { UInt64(base + i) * UInt64(k) + UInt64($0) } }
        return (prompts.flatMap { Array(repeating: $0, count: k) }, ids)
    }

    /// The iteration's advantages: PPO's GAE, the paper's G − V, or a critic-free group method's.
    func advantages(_ samples: [RolloutSample], rewards: [Double], klBeta: Double) -> Advantages.Output {
        let rl = settings.rl
        if rl.algorithm.needsGroups {
            return Advantages.grouped(
                samples: samples, rewards: rewards, groupSize: rl.samplesPerPrompt, algorithm: rl.algorithm,
                klBeta: klBeta)
        }
        return Advantages.compute(
            samples: samples, rewards: rewards, klBeta: klBeta, normalizeRewards: rl.normalizeRewards,
            gaeLambda: rl.algorithm == .ppo ? rl.gaeLambda : nil)
    }

    /// One optimizer step's spec of the RL objective the settings name.
    func rlStepSpec(tokens: Int, klBeta: Double) -> GradientSpec {
        let rl = settings.rl
        let objective: GradientSpec.ObjectiveKind =
            switch rl.algorithm {
            case .ppo: .ppo
            case .policyGradient: .policyGradient
            case .grpo, .rloo: .groupPolicy
            }
        var spec = GradientSpec(
            objective: objective, learningRate: rl.learningRate, clipNorm: rl.clipNorm, normalizer: Double(tokens))
        spec.ppoClip = rl.ppoClip
        spec.valueCoefficient = rl.valueCoefficient
        spec.klBeta = rl.algorithm == .grpo ? klBeta : 0  // RLOO pays KL in the reward
        return spec
    }

    /// Iteration `iteration`'s rollout, made now by the current policy: responses sampled and
    /// scored, rewarded by the reward model or (direct) by the labeler's ratings.
    func makeRollout(_ iteration: Int, direct: Bool) async throws -> IterationRollout {
        try await startRollout(iteration, direct: direct).value
    }

    /// Iteration `iteration`'s rollout, started on the policy at the committed version: its jobs
    /// are handed to the cluster before anything else is asked of it, so steps asked for while
    /// it runs do not change which policy makes it. Direct ratings are asked once the samples
    /// are in.
    func startRollout(_ iteration: Int, direct: Bool) async throws -> Task<IterationRollout, any Error> {
        let (prompts, ids) = iterationPrompts(iteration)
        let version = await cluster.version
        let jobs = rolloutJobs(
            prompts, sampleIDs: ids, seed: settings.run.seed ^ 0x524C_0000, generator: .policy, score: true)
        let outputs = try await cluster.startJobs(jobs, onOutput: nil)
        return Task {
            let samples = try self.rolloutSamples(try await outputs.value)
            let rewards =
                direct
                ? try await self.ratingRewards(
                    prompts: prompts, responses: samples.map { self.text($0.tokens) }, ids: ids)
                : samples.map { Double($0.reward ?? 0) }
            return IterationRollout(iteration: iteration, policyVersion: version, samples: samples, rewards: rewards)
        }
    }

    /// Iteration `iteration`'s rollout, after making those of iterations up to `rl.rollout_lag`
    /// ahead that are missing: the current policy is the one each of them is due to come from.
    /// The last of them is only started (`started`): it runs beside this iteration's steps.
    func rolloutMakingAhead(
        _ iteration: Int, direct: Bool, ahead: inout [Int: IterationRollout]
    ) async throws -> (rollout: IterationRollout, started: Task<IterationRollout, any Error>?) {
        let lag = settings.rl.rolloutLag
        let missing = (iteration...min(iteration + lag, settings.rl.iterations - 1)).filter { ahead[$0] == nil }
        if let later = missing.first(where: { IterationRollout.sourceIteration(of: $0, lag: lag) != iteration }) {
            throw RunError(
                message: "the checkpoint lacks RL iteration \(later)'s rollout, made ahead under "
                    + "rl.rollout_lag \(lag) by a policy that is gone; resume from an earlier checkpoint")
        }
        var started: Task<IterationRollout, any Error>?
        for later in missing {
            if later > iteration, later == missing.last {
                started = try await startRollout(later, direct: direct)
            } else {
                ahead[later] = try await makeRollout(later, direct: direct)
            }
        }
        return (ahead.removeValue(forKey: iteration)!, started)
    }

    func reinforce(direct: Bool, skip: Int) async throws {
        let rl = settings.rl
        let stepsPerIteration = rl.algorithm == .policyGradient ? 1 : rl.ppoEpochs
        let progress = Progress(phase: "rl", total: rl.iterations, quiet: quiet)
        // Checkpoints fall between iterations: an iteration's rollout and its PPO epochs go together.
        let checkpointIterations = max(1, settings.checkpoint.everySteps / stepsPerIteration)
        var kl = KLController(beta: cursor.klBeta ?? rl.klBeta, target: rl.klTarget, horizon: rl.klHorizon)
        var ahead = Dictionary(uniqueKeysWithValues: (cursor.rolloutsAhead ?? []).map { ($0.iteration, $0) })
        for iteration in skip..<rl.iterations {
            let started = ContinuousClock.now
            let (made, madeAhead) = try await rolloutMakingAhead(iteration, direct: direct, ahead: &ahead)
            let prompts = iterationPrompts(iteration).prompts
            let (samples, rewards) = (made.samples, made.rewards)
            let responses = samples.map { text($0.tokens) }
            let adv = advantages(samples, rewards: rewards, klBeta: kl.beta)
            let micros = rlMicroBatches(prompts: prompts, samples: samples, advantages: adv)
            let tokens = samples.reduce(0) { $0 + $1.tokens.count }
            // The ground truth's mean quality of this batch (NaN where the task has none).
            let qualities = zip(prompts, responses).compactMap { task.groundTruthQuality(of: $1, prompt: $0) }
            let truth = qualities.isEmpty ? Double.nan : qualities.reduce(0, +) / Double(qualities.count)
            let requests = (0..<stepsPerIteration).map { step -> GradientJob in
                var spec = rlStepSpec(tokens: tokens, klBeta: kl.beta)
                spec.forkReference = direct && iteration == 0 && step == 0  // no reward phase forked it
                return .init(spec: spec, microBatches: micros)
            }
            // The epochs of an iteration go to one ring back to back (no checkpoint falls between).
            var last: GradientResult?
            for (step, request) in requests.enumerated() {
                last = try await cluster.gradientStep(request, next: requests.dropFirst(step + 1).first)
            }
            if let later = try await madeAhead?.value { ahead[later.iteration] = later }
            cursor.rolloutsAhead = ahead.isEmpty ? nil : ahead.values.sorted { $0.iteration < $1.iteration }
            let meanLength = Double(tokens) / Double(samples.count)
            var extra: [String: Double] = [
                "iteration": Double(iteration), "reward": adv.meanReward, "kl": adv.meanKL,
                "response_length": meanLength, "kl_beta": kl.beta, "rollout_version": Double(made.policyVersion),
            ]
            if !truth.isNaN { extra["ground_truth_quality"] = truth }
            // The pace of the whole iteration: rollout, rewards and every epoch's steps.
            var pace = StepPace(requests[0], seconds: (ContinuousClock.now - started).seconds)
            pace.tokens *= requests.count
            logStep("rl", last!, pace: pace, extra: extra)
            progress.update(
                iteration + 1,
                String(
                    format: "reward %.3f  kl %.3f  len %.1f", adv.meanReward, adv.meanKL, meanLength)
                    + (truth.isNaN ? "" : String(format: "  gt %.2f", truth)))
            kl.update(kl: adv.meanKL, responses: samples.count)
            cursor.klBeta = kl.beta
            try await evaluateDuringRL(after: iteration + 1)
            let due = settings.checkpoint.everySteps > 0 && (iteration + 1) % checkpointIterations == 0
            if due || isStopRequested, iteration + 1 < rl.iterations {
                try await checkpoint(next: .rl, done: iteration + 1)
            }
        }
    }
}
