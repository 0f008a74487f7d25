import Testing

@testable import Tensor

@Suite struct ParameterSetTests {
    @Test func parameters_becomeViewsOfOneFlatBuffer() {
        var rng = RandomStream(seed: 1, purpose: .parameterInit)
        let layer = Linear(inputDimensions: 3, outputDimensions: 2, rng: &rng)
        let original = layer.weight.value.scalars
        let p = ParameterSet(layer.namedParameters(prefix: "fc"))
        #expect(p.entries.map(\.name) == ["fc.weight", "fc.bias"])
        #expect(p.entries.map(\.range) == [0..<6, 6..<8])
        #expect(p.entries.map(\.decays) == [true, false])
        #expect(Array(p.values.scalars[0..<6]) == original)
        // Writing the flat buffer (as a broadcast of weights will) changes the layer's weights.
        p.values.fill(0.25)
        #expect(layer.weight.value.scalars == Array(repeating: 0.25, count: 6))
        #expect(p["fc.bias"] === layer.bias)
    }

    @Test func backward_writesGradientsIntoTheFlatBuffer() {
        var rng = RandomStream(seed: 1, purpose: .parameterInit)
        let layer = Linear(inputDimensions: 2, outputDimensions: 1, rng: &rng)
        let p = ParameterSet(layer.namedParameters)
        // y = w·x + b summed over 3 rows: ∂/∂w = Σ x, ∂/∂b = 3.
        let x = Variable(Tensor(shape: [3, 2], scalars: [1, 2, 3, 4, 5, 6]))
        layer(x).sum().backward()
        #expect(p.gradients.scalars == [9, 12, 3])
        // Gradients accumulate across backward passes until zeroed.
        layer(x).sum().backward()
        #expect(p.gradients.scalars == [18, 24, 6])
        p.zeroGradients()
        #expect(p.gradients.scalars == [0, 0, 0])
        #expect(layer.weight.grad?.scalars == [0, 0])
    }
}
