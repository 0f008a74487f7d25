/// Stochastic gradient descent with optional momentum and decoupled weight decay:
///
///     b ← μb + g        p ← p − lr·(b + λ·p)
public struct SGD: Optimizer {
    public var momentum: Float
    public var weightDecay: Float
    public private(set) var step = 0
    public private(set) var velocity: Tensor?

    public init(momentum: Float = 0, weightDecay: Float = 0) {
        self.momentum = momentum
        self.weightDecay = weightDecay
    }

    public mutating func update(_ parameters: ParameterSet, learningRate lr: Float) {
        step += 1
        let p = parameters.values.pointer, g = parameters.gradients.pointer
        let b = momentum == 0 ? nil : (velocity ?? Tensor(zeros: [parameters.count]))
        velocity = b
        for entry in parameters.entries {
            let decay = entry.decays ? weightDecay : 0
            for i in entry.range {
                var d = g[i]
                if let b {
                    b.pointer[i] = momentum * b.pointer[i] + d
                    d = b.pointer[i]
                }
                p[i] -= lr * (d + decay * p[i])
            }
        }
    }
}
