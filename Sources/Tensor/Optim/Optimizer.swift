#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Updates a `ParameterSet` in place from its gradients.
public protocol Optimizer {
    /// Steps taken so far.
    var step: Int { get }
    mutating func update(_ parameters: ParameterSet, learningRate: Float)
}

/// Learning rate as a function of the step (0-based).
public enum LearningRateSchedule: Sendable, Equatable {
    case constant(Float)
    /// Linear from 0 to `peak` over `warmupSteps`, then cosine down to `minimum` at `totalSteps`.
    case warmupCosine(peak: Float, warmupSteps: Int, totalSteps: Int, minimum: Float)

    public func rate(at step: Int) -> Float {
        switch self {
        case .constant(let lr):
            return lr
        case .warmupCosine(let peak, let warmup, let total, let minimum):
            if step < warmup { return peak * Float(step + 1) / Float(warmup) }
            if step >= total { return minimum }
            let progress = Double(step - warmup) / Double(Swift.max(1, total - warmup))
            let cosine = 0.5 * (1 + cos(Double.pi * progress))
            return minimum + (peak - minimum) * Float(cosine)
        }
    }
}
