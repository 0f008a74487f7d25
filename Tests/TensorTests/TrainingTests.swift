import Testing

@testable import Tensor

/// End-to-end learning through the engine: init, forward, backward, optimizer.
@Suite struct TrainingTests {
    /// A 2-16-1 tanh MLP on XOR, trained with AdamW; returns final predictions and loss.
    static func trainXOR(seed: UInt64, steps: Int) async -> (predictions: [Float], loss: Float, checksum: String) {
        await Engine.shared.run {
            var rng = RandomStream(seed: seed, purpose: .parameterInit)
            let l1 = Linear(inputDimensions: 2, outputDimensions: 16, rng: &rng)
            let l2 = Linear(inputDimensions: 16, outputDimensions: 1, rng: &rng)
            let params = ParameterSet(l1.namedParameters(prefix: "l1") + l2.namedParameters(prefix: "l2"))
            let x = Variable(Tensor(shape: [4, 2], scalars: [0, 0, 0, 1, 1, 0, 1, 1]))
            let y = Variable(Tensor(shape: [4, 1], scalars: [0, 1, 1, 0]))
            var opt = AdamW(weightDecay: 0)
            var loss: Float = .nan
            for _ in 0..<steps {
                params.zeroGradients()
                let d = l2(l1(x).tanh()) - y
                let l = (d * d).mean()
                l.backward()
                opt.update(params, learningRate: 0.03)
                loss = l.value.item
            }
            let p = Autograd.inferenceMode { l2(l1(x).tanh()).value.scalars }
            return (p, loss, params.values.checksum)
        }
    }

    @Test func mlp_learnsXOR() async {
        let (p, loss, _) = await Self.trainXOR(seed: 1, steps: 400)
        #expect(loss < 1e-3)
        #expect(p[0] < 0.1 && p[1] > 0.9 && p[2] > 0.9 && p[3] < 0.1, "predictions \(p)")
    }

    @Test func training_isBitReproducibleForTheSameSeed_andDiffersForAnother() async {
        let a = await Self.trainXOR(seed: 5, steps: 50)
        let b = await Self.trainXOR(seed: 5, steps: 50)
        let c = await Self.trainXOR(seed: 6, steps: 50)
        #expect(a.checksum == b.checksum)
        #expect(a.checksum != c.checksum)
    }

    @Test func mlp_fitsASmallRegression() async {
        // y = sin(3x) on [−1, 1], 64 points, 1-32-32-1 GELU MLP with SGD + momentum.
        let loss = await Engine.shared.run { () -> Float in
            var rng = RandomStream(seed: 3, purpose: .parameterInit)
            let layers = [
                Linear(inputDimensions: 1, outputDimensions: 32, rng: &rng),
                Linear(inputDimensions: 32, outputDimensions: 32, rng: &rng),
                Linear(inputDimensions: 32, outputDimensions: 1, rng: &rng),
            ]
            let params = ParameterSet(layers.enumerated().flatMap { $1.namedParameters(prefix: "l\($0)") })
            let xs = (0..<64).map { Float($0) / 31.5 - 1 }
            let x = Variable(Tensor(shape: [64, 1], scalars: xs))
            let y = Variable(Tensor(shape: [64, 1], scalars: xs.map { Float(_sin(3 * Double($0))) }))
            var opt = SGD(momentum: 0.9)
            var last: Float = .nan
            for _ in 0..<1500 {
                params.zeroGradients()
                let h = layers[1](layers[0](x).gelu()).gelu()
                let d = layers[2](h) - y
                let l = (d * d).mean()
                l.backward()
                opt.update(params, learningRate: 0.05)
                last = l.value.item
            }
            return last
        }
        // The targets have variance ≈ 0.5; a fit below 1% of that is a real fit.
        #expect(loss < 5e-3, "final mse \(loss)")
    }
}

#if canImport(Glibc)
    import Glibc
    func _sin(_ x: Double) -> Double { Glibc.sin(x) }
#endif
