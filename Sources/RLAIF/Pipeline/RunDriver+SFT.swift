import Foundation
import Models
import Protocol
import Tensor

/// Data order and supervised fine-tuning.
extension RunDriver {
    // MARK: Data

    func demonstrations() -> [(prompt: String, completion: String)] { task.demonstrations() }

    /// Deterministic order of `count` items for `epoch`.
    func shuffled(_ count: Int, epoch: Int, salt: UInt64) -> [Int] {
        var order = Array(0..<count)
        var rng = RandomStream(seed: settings.run.seed, purpose: .dataShuffle, step: salt << 32 | UInt64(epoch))
        for i in stride(from: count - 1, to: 0, by: -1) { order.swapAt(i, rng.next(below: i + 1)) }
        return order
    }

    func microBatches(_ sequences: [(prompt: [Int32], response: [Int32])], size: Int) -> [MicroBatch] {
        stride(from: 0, to: sequences.count, by: size).enumerated().map { id, start in
            let part = sequences[start..<min(start + size, sequences.count)]
            return MicroBatch(
                id: id, batch: SequenceBatch(prompts: part.map(\.prompt), responses: part.map(\.response)))
        }
    }

    // MARK: SFT

    func supervisedFineTuning(_ demos: [(prompt: String, completion: String)], skip: Int) async throws {
        let o = settings.sft
        let stepsPerEpoch = (demos.count + o.batchSize - 1) / o.batchSize
        let progress = Progress(phase: "sft", total: o.epochs * stepsPerEpoch, quiet: quiet)
        let encoded = demos.map { (tokenizer.encode($0.prompt), task.completionTokens($0.completion)) }
        var orders: [Int: [Int]] = [:]
        func request(_ i: Int) -> GradientJob {
            let epoch = i / stepsPerEpoch, s = i % stepsPerEpoch
            let order = orders[epoch] ?? shuffled(demos.count, epoch: epoch, salt: 1)
            orders[epoch] = order
            let chosen = order[(s * o.batchSize)..<min((s + 1) * o.batchSize, order.count)].map { encoded[$0] }
            let tokens = chosen.reduce(0) { $0 + $1.1.count }
            let spec = GradientSpec(
                objective: .sft, learningRate: o.learningRate, clipNorm: o.clipNorm, normalizer: Double(tokens))
            return .init(spec: spec, microBatches: microBatches(chosen.map { ($0.0, $0.1) }, size: o.microBatch))
        }
        try await runSteps(skip..<(o.epochs * stepsPerEpoch), make: request) { i, result, pace in
            logStep("sft", result, pace: pace, extra: ["epoch": Double(i / stepsPerEpoch)])
            progress.update(i + 1, String(format: "loss %.3f", result.metrics["loss"] ?? .nan))
            try await periodicCheckpoint(.sft, done: i + 1)
        }
    }

    /// Runs steps `indices` of a phase in order: `make(i)` builds step i, `after` logs it and
    /// writes a checkpoint when one is due. Each step's successor is sent to the ring ahead of
    /// the step's commit, unless a checkpoint falls between them.
    func runSteps(
        _ indices: Range<Int>, make: (Int) -> GradientJob,
        after: (Int, GradientResult, StepPace) async throws -> Void
    ) async throws {
        var upcoming: GradientJob?
        var committed = await cluster.version
        var last = ContinuousClock.now
        for i in indices {
            let request = upcoming ?? make(i)
            let following = i + 1 < indices.upperBound ? make(i + 1) : nil
            let every = UInt64(settings.checkpoint.everySteps)
            let checkpointDue = every > 0 && (committed + 1) % every == 0
            let result = try await cluster.gradientStep(request, next: checkpointDue ? nil : following)
            upcoming = following
            committed = result.version
            let now = ContinuousClock.now
            let pace = StepPace(request, seconds: (now - last).seconds)
            try await after(i, result, pace)
            last = ContinuousClock.now  // checkpoints and logging are not the step's time
        }
    }

    /// A step's learning rate, trained tokens and how fast they went, for the log.
    struct StepPace {
        var learningRate: Double
        var tokens: Int
        var seconds: Double

        init(_ request: GradientJob, seconds: Double) {
            learningRate = request.spec.learningRate
            tokens = request.microBatches.reduce(0) { total, m in
                total + m.batch.prompts.reduce(0) { $0 + $1.count } + m.batch.responses.reduce(0) { $0 + $1.count }
            }
            self.seconds = seconds
        }
    }

    func logStep(_ phase: String, _ r: GradientResult, pace: StepPace, extra: [String: Double] = [:]) {
        var values = r.metrics.merging(extra) { _, driver in driver }
        values["learning_rate"] = pace.learningRate
        values["tokens"] = Double(pace.tokens)
        if pace.seconds > 0 { values["tokens_per_second"] = (Double(pace.tokens) / pace.seconds).rounded() }
        events.record(
            .metrics(
                .init(
                    phase: phase, version: r.version, gradientNorm: r.gradientNorm, fingerprint: r.fingerprint,
                    values: values)))
    }
}
