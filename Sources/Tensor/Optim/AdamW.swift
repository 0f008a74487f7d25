import CKernels

/// Adam with decoupled weight decay (Loshchilov & Hutter), as `torch.optim.AdamW`:
///
///     m ← β₁m + (1−β₁)g        v ← β₂v + (1−β₂)g²
///     p ← p − lr·( m̂ / (√v̂ + ε) + λ·p )   with m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ)
///
/// Decay applies only to entries marked `decays` in the parameter set.
public struct AdamW: Optimizer {
    public var beta1: Float
    public var beta2: Float
    public var epsilon: Float
    public var weightDecay: Float
    public private(set) var step = 0
    /// First and second moments, laid out like the parameter set (allocated on the first update).
    public private(set) var firstMoment: Tensor?
    public private(set) var secondMoment: Tensor?

    public init(beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8, weightDecay: Float = 0.01) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
    }

    /// Allocates the moments now rather than on the first update: a replica then holds its whole
    /// steady state before any step's temporaries are laid out around it in the heap.
    public mutating func reserveState(for parameters: ParameterSet) {
        if firstMoment == nil { firstMoment = Tensor(zeros: [parameters.count]) }
        if secondMoment == nil { secondMoment = Tensor(zeros: [parameters.count]) }
    }

    public mutating func update(_ parameters: ParameterSet, learningRate lr: Float) {
        update(parameters, gradients: parameters.gradients.pointer, scale: 1, learningRate: lr)
    }

    /// Steps from `gradients` (laid out like the set, e.g. an all-reduced sum) times `scale` (a
    /// clip factor), read where they lie: no copy into the set's gradients, no pass to scale them.
    public mutating func update(
        _ parameters: ParameterSet, gradients g: UnsafePointer<Float>, scale: Float, learningRate lr: Float
    ) {
        let m = firstMoment ?? Tensor(zeros: [parameters.count])
        let v = secondMoment ?? Tensor(zeros: [parameters.count])
        precondition(m.count == parameters.count, "AdamW: state for \(m.count) parameters, set has \(parameters.count)")
        firstMoment = m
        secondMoment = v
        step += 1
        let c1 = 1 - Float(Double(beta1).power(step))
        let c2 = 1 - Float(Double(beta2).power(step))
        let (b1, b2, eps) = (beta1, beta2, epsilon)
        let p = parameters.values.pointer
        let mp = m.pointer, vp = v.pointer
        for entry in parameters.entries {
            let decay = entry.decays ? weightDecay : 0
            let offset = entry.range.lowerBound
            Kernels.parallelRanges(entry.range.count) { local in
                let i = offset + local.lowerBound
                // The loop of `Self.reference`, in C for AVX-512/AVX2 (4.7% of a small-preset
                // training step four lanes wide).
                rlaif_adamw_update(
                    p + i, g + i, mp + i, vp + i, local.count, lr, b1, b2, eps, decay, c1, c2, scale)
            }
        }
    }

    /// One element's update as the C loop computes it (tests hold the two to the same bits).
    static func reference(
        p: inout Float, g: Float, m: inout Float, v: inout Float, lr: Float, beta1 b1: Float, beta2 b2: Float,
        epsilon eps: Float, decay: Float, c1: Float, c2: Float
    ) {
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        let mHat = m / c1
        let vHat = v / c2
        p -= lr * (mHat / (vHat.squareRoot() + eps) + decay * p)
    }

    /// Restores state saved from `step`, `firstMoment` and `secondMoment`.
    public mutating func restore(step: Int, firstMoment: Tensor, secondMoment: Tensor) {
        self.step = step
        // Copies: `update` writes the moments in place, and the caller's tensors may be shared
        // (one checkpoint restored into several replicas of one process).
        self.firstMoment = firstMoment.copy()
        self.secondMoment = secondMoment.copy()
    }
}

extension Double {
    /// self raised to a non-negative integer power, by squaring.
    func power(_ n: Int) -> Double {
        var result = 1.0, base = self, e = n
        while e > 0 {
            if e & 1 == 1 { result *= base }
            base *= base
            e >>= 1
        }
        return result
    }
}
