/// y = x·Wᵀ + b.  x: (…, inputDimensions)  W: (outputDimensions, inputDimensions)  y: (…, outputDimensions)
public struct Linear: Module, Sendable {
    public let weight: Variable
    public let bias: Variable?

    /// Weights from N(0, std²) — GPT-2 uses std 0.02 — or, when `std` is nil, PyTorch's
    /// U(−1/√in, 1/√in). Biases start at zero.
    public init(
        inputDimensions: Int, outputDimensions: Int, bias: Bool = true, std: Float? = nil, rng: inout RandomStream
    ) {
        let w: Tensor
        if let std {
            w = .randomNormal([outputDimensions, inputDimensions], std: std, rng: &rng)
        } else {
            let bound = 1 / Float(inputDimensions).squareRoot()
            w = .randomUniform([outputDimensions, inputDimensions], low: -bound, high: bound, rng: &rng)
        }
        self.weight = Variable(w, requiresGrad: true)
        self.bias = bias ? Variable(Tensor(zeros: [outputDimensions]), requiresGrad: true) : nil
    }

    /// A layer with the given (out, in) weight and optional (out) bias, as a checkpoint holds them.
    public init(weight: Tensor, bias: Tensor? = nil) {
        precondition(weight.rank == 2, "Linear: weight must be (out, in), got \(weight.shape)")
        precondition(bias.map { $0.shape == [weight.shape[0]] } ?? true, "Linear: bias must be (out)")
        self.weight = Variable(weight, requiresGrad: true)
        self.bias = bias.map { Variable($0, requiresGrad: true) }
    }

    public func callAsFunction(_ x: Variable) -> Variable {
        let y = x.matmul(weight, transposeOther: true)
        return bias.map { y + $0 } ?? y
    }

    public var namedParameters: [(String, Variable)] {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }
}
