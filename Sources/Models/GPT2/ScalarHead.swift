import Tensor

/// A linear map from the model width to one number per position: the policy's value head
/// (`v_head.summary`, as TRL names it) or the reward model's score (`score`, as transformers'
/// GPT2ForSequenceClassification, without bias).
/// y = x·wᵀ + b.  x: (…, C)  w: (1, C)  y: (…, 1)
public struct ScalarHead: Module, Sendable {
    public let weight: Variable
    public let bias: Variable?

    public init(
        width: Int, bias: Bool, std: Float = 0.02, seed: UInt64, purpose: RandomPurpose = .parameterInit, index: UInt64
    ) {
        var rng = RandomStream(seed: seed, purpose: purpose, step: 0, index: index)
        weight = Variable(.randomNormal([1, width], std: std, rng: &rng), requiresGrad: true)
        self.bias = bias ? Variable(Tensor(zeros: [1]), requiresGrad: true) : nil
    }

    public func callAsFunction(_ x: Variable) -> Variable {
        let y = x.matmul(weight, transposeOther: true)
        return bias.map { y + $0 } ?? y
    }

    public var namedParameters: [(String, Variable)] {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }
}
