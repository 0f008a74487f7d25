import Foundation
import Tensor

/// A seeded 2-16-1 MLP learning XOR on the shared engine: the smallest complete training run
/// (init from a Philox stream, forward, backward into a flat gradient buffer, AdamW).
struct EngineCheckJob {
    let seed: UInt64
    var steps = 300

    struct Result: Sendable {
        var initialLoss: Float, finalLoss: Float, steps: Int, correct: Int, checksum: String
    }

    func run(metrics: URL) async throws -> Result {
        let steps = self.steps, seed = self.seed
        let (result, lines) = await Engine.shared.run { () -> (Result, [String]) in
            var rng = RandomStream(seed: seed, purpose: .parameterInit)
            let hidden = Linear(inputDimensions: 2, outputDimensions: 16, rng: &rng)
            let output = Linear(inputDimensions: 16, outputDimensions: 1, rng: &rng)
            let params = ParameterSet(
                hidden.namedParameters(prefix: "hidden") + output.namedParameters(prefix: "output"))
            let x = Variable(Tensor(shape: [4, 2], scalars: [0, 0, 0, 1, 1, 0, 1, 1]))
            let y = Variable(Tensor(shape: [4, 1], scalars: [0, 1, 1, 0]))
            var optimizer = AdamW(weightDecay: 0)
            let schedule = LearningRateSchedule.warmupCosine(
                peak: 0.05, warmupSteps: 20, totalSteps: steps, minimum: 0.005)
            var lines: [String] = []
            var first: Float = 0, last: Float = 0
            for step in 0..<steps {
                params.zeroGradients()
                let diff = output(hidden(x).tanh()) - y
                let loss = (diff * diff).mean()
                loss.backward()
                optimizer.update(params, learningRate: schedule.rate(at: step))
                if step == 0 { first = loss.value.item }
                last = loss.value.item
                lines.append(
                    #"{"phase":"engine-check","step":\#(step),"loss":\#(last),"lr":\#(schedule.rate(at: step))}"#)
            }
            let prediction = Autograd.inferenceMode { output(hidden(x).tanh()) }
            let correct = (0..<4).filter { (prediction.value[flat: $0] > 0.5) == (y.value[flat: $0] > 0.5) }.count
            return (
                Result(
                    initialLoss: first, finalLoss: last, steps: steps, correct: correct,
                    checksum: params.values.checksum), lines
            )
        }
        try (lines.joined(separator: "\n") + "\n").write(to: metrics, atomically: true, encoding: .utf8)
        return result
    }
}
