import Foundation
import Logging
import Models
import Protocol
import RLAIF
import Tensor

/// Runs one worker's jobs, one at a time, with `ReplicaJobs`: the ring all-reduce between a
/// step's halves, the snapshot a `synchronize` assignment takes, and weights broadcasts.
actor JobExecutor {
    let workerID: UInt32
    let ring: RingLink
    let logger: Logger
    let jobs: ReplicaJobs
    /// Model states received for the next `synchronize` assignment.
    private var staged: [ModelReplica.ModelState] = []

    init(
        settings: RunSettings, workerID: UInt32, ring: RingLink, labelerGate: (any LabelerGate)?, logger: Logger
    ) throws {
        self.workerID = workerID
        self.ring = ring
        self.logger = logger
        jobs = try ReplicaJobs(settings: settings, labelerGate: labelerGate)
        logger.info("OpenBLAS kernels: \(Kernels.blasCore)")
        if settings.model.precision == .bf16 && !Kernels.bf16Hardware {
            // Emulated bf16 gives the same bits, at a fraction of Float32's speed.
            logger.warning(
                "model.precision is bf16 and this CPU has no AVX-512 BF16: products are emulated (the same bits, several times slower than float32); set model.precision: float32 for speed"
            )
        }
    }

    func handle(_ message: Wire.Message) async -> [Wire.Message] {
        switch message {
        case .assign(let a):
            do {
                let body = try await run(a)
                return [
                    .result(
                        .init(jobID: a.jobID, attempt: a.attempt, workerID: workerID, status: .succeeded, body: body))
                ]
            } catch {
                logger.warning("job \(a.jobID) (\(a.kind)) failed: \(error)")
                return [
                    .result(
                        .init(
                            jobID: a.jobID, attempt: a.attempt, workerID: workerID, status: .failed,
                            message: "\(error)", body: ReplicaReport(version: jobs.replica.version).wireBody))
                ]
            }
        case .weightsRequest:
            return await jobs.snapshot().map { .weights($0) }
        case .weights(let w):
            if let state = ModelReplica.ModelState(w) { staged.append(state) }
            return []
        default:
            return []
        }
    }

    private func run(_ a: Wire.Assign) async throws -> [UInt8] {
        switch a.kind {
        case .rollout, .evaluation, .labeling:
            return try await jobs.run(Job(kind: a.kind, body: a.body), weightsVersion: a.weightsVersion).wireBody
        case .gradient:
            return try await gradientStep(a).wireBody
        case .synchronize where !a.body.isEmpty:
            let spec = try BroadcastSpec(wireBody: a.body, field: "assign.synchronize")
            let states = try await ring.receiveWeights(spec)
            return try await jobs.restore(states, version: a.weightsVersion).wireBody
        case .synchronize:
            let states = staged
            staged = []
            return try await jobs.restore(states, version: a.weightsVersion).wireBody
        case .broadcast:
            let spec = try BroadcastSpec(wireBody: a.body, field: "assign.broadcast")
            let (states, version) = await jobs.weights()
            guard version == spec.version else {
                throw JobSpecError(
                    message: "asked to broadcast the weights of version \(spec.version), holding \(version)")
            }
            try await ring.sendWeights(states, spec)
            return ReplicaReport(version: version).wireBody
        }
    }

    /// This rank's gradient sum, the ring all-reduce, the update.
    private func gradientStep(_ a: Wire.Assign) async throws -> GradientResult {
        let job = try GradientJob(wireBody: a.body, field: "assign.gradient")
        let spec = job.spec
        guard let ringSpec = spec.ring else { throw JobSpecError(message: "gradient job without a ring") }
        let computeStarted = ContinuousClock.now
        let sum = try await jobs.gradientSum(spec, job.microBatches, at: a.step)
        let computeTime = ContinuousClock.now - computeStarted
        let reduction = RingAllReduce(
            rank: ringSpec.rank, size: ringSpec.size, step: a.step, epoch: ringSpec.epoch,
            chunkTimeout: .milliseconds(ringSpec.timeoutMs))
        let started = ContinuousClock.now
        let reduced =
            if ringSpec.size > 1 {
                try await ring.reduce(reduction, consume sum, next: ringSpec.next, key: ringSpec.nextKey)
            } else {
                sum.value()
            }
        let reducedAt = ContinuousClock.now
        let reduceTime = reducedAt - started
        var result = await jobs.apply(reduced, spec)
        let updateTime = ContinuousClock.now - reducedAt
        result.metrics[StepTiming.compute] = computeTime.seconds
        result.metrics[StepTiming.allReduce] = reduceTime.seconds
        result.metrics[StepTiming.update] = updateTime.seconds
        logger.debug(
            "step \(a.step + 1) rank \(ringSpec.rank)/\(ringSpec.size): compute \(milliseconds(computeTime)) ms, all-reduce \(milliseconds(reduceTime)) ms, update \(milliseconds(updateTime)) ms"
        )
        return result
    }
}

/// A duration in milliseconds to the microsecond, for logs.
private func milliseconds(_ d: Duration) -> String { String(format: "%.3f", d.seconds * 1000) }
