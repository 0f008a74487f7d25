import Tensor

/// Hugging Face's `Conv1D`: a linear layer whose weight is stored (in, out).
/// y = x·W + b.  x: (…, in)  W: (in, out)  y: (…, out)
public struct Conv1D: Module, Sendable {
    public let weight: Variable
    public let bias: Variable

    /// A layer with the given (in, out) weight and a zero bias.
    public init(weight: Tensor) {
        precondition(weight.rank == 2, "Conv1D: weight must be (in, out), got \(weight.shape)")
        self.weight = Variable(weight, requiresGrad: true)
        bias = Variable(Tensor(zeros: [weight.shape[1]]), requiresGrad: true)
    }

    public func callAsFunction(_ x: Variable) -> Variable { x.affine(weight, bias: bias) }

    /// The layer's output added to `residual` (a residual stream), in the same pass.
    public func callAsFunction(_ x: Variable, adding residual: Variable) -> Variable {
        x.affine(weight, bias: bias, residual: residual)
    }

    public var namedParameters: [(String, Variable)] { [("weight", weight), ("bias", bias)] }
}

/// Layer normalization over the last axis with learned scale (`weight`, ones) and shift (`bias`, zeros).
public struct LayerNormLayer: Module, Sendable {
    public let weight: Variable
    public let bias: Variable
    public let epsilon: Float

    public init(width: Int, epsilon: Float = 1e-5) {
        weight = Variable(Tensor(shape: [width], repeating: 1), requiresGrad: true)
        bias = Variable(Tensor(zeros: [width]), requiresGrad: true)
        self.epsilon = epsilon
    }

    public func callAsFunction(_ x: Variable) -> Variable { x.layerNorm(gamma: weight, beta: bias, epsilon: epsilon) }

    public var namedParameters: [(String, Variable)] { [("weight", weight), ("bias", bias)] }
}
