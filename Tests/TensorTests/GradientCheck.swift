import Testing

@testable import Tensor

/// Finite-difference checking of autograd.
///
/// The checked scalar is L = Σᵢ outᵢ·wᵢ with fixed random weights w, so every output element
/// contributes a different amount. ∂L/∂x is compared with the central difference
/// (L(x+ε) − L(x−ε)) / 2ε, L summed in Double from the Float32 outputs.
///
/// Tolerances (written down, not tuned per op): ε = 1e-2 and |analytic − numeric| ≤
/// 5e-3 + 2e-2·|numeric|. With Float32 values near 1 the rounding in L is ~1e-7·√n, i.e. ~1e-5 after
/// dividing by 2ε, and the O(ε²) truncation error of the central difference is ~1e-4 for these
/// smooth functions, so the bound leaves an order of magnitude of margin and still catches any
/// wrong rule (a wrong rule is off by O(1)).
enum GradientCheck {
    static let epsilon: Float = 1e-2
    static let absoluteTolerance = 5e-3
    static let relativeTolerance = 2e-2

    struct Mismatch: CustomStringConvertible {
        var input: Int, element: Int, analytic: Double, numeric: Double
        var description: String { "input \(input)[\(element)]: analytic \(analytic), numeric \(numeric)" }
    }

    /// Checks the gradient of every element of every input; returns the mismatches (empty = pass).
    static func mismatches(
        _ inputs: [Tensor], seed: UInt64 = 99, _ f: ([Variable]) -> Variable
    ) -> [Mismatch] {
        let variables = inputs.map { Variable($0, requiresGrad: true) }
        let out = f(variables)
        var rng = RandomStream(seed: seed, purpose: .scratch, step: 1)
        let weights = Tensor.randomUniform(out.shape, low: -1, high: 1, rng: &rng)
        out.backward(seed: weights)

        func loss() -> Double {
            let y = Autograd.inferenceMode { f(inputs.map { Variable($0) }) }
            return (0..<y.value.count).reduce(0.0) { $0 + Double(y.value[flat: $1]) * Double(weights[flat: $1]) }
        }

        var found: [Mismatch] = []
        for (i, x) in inputs.enumerated() {
            let analytic = variables[i].grad ?? Tensor(zeros: x.shape)
            for j in 0..<x.count {
                let saved = x[flat: j]
                x[flat: j] = saved + epsilon
                let plus = loss()
                x[flat: j] = saved - epsilon
                let minus = loss()
                x[flat: j] = saved
                let numeric = (plus - minus) / (2 * Double(epsilon))
                let a = Double(analytic[flat: j])
                if abs(a - numeric) > absoluteTolerance + relativeTolerance * abs(numeric) {
                    found.append(Mismatch(input: i, element: j, analytic: a, numeric: numeric))
                }
            }
        }
        return found
    }

    /// Expects no mismatch, reporting the first few.
    static func expectMatches(
        _ inputs: [Tensor], sourceLocation: SourceLocation = #_sourceLocation, _ f: ([Variable]) -> Variable
    ) {
        let bad = mismatches(inputs, f)
        #expect(
            bad.isEmpty, "\(bad.count) gradient mismatches, first: \(bad.prefix(3))", sourceLocation: sourceLocation)
    }
}

/// Deterministic test inputs.
enum Inputs {
    static func uniform(_ shape: [Int], _ low: Float = -1, _ high: Float = 1, seed: UInt64 = 1) -> Tensor {
        var rng = RandomStream(seed: seed, purpose: .scratch)
        return .randomUniform(shape, low: low, high: high, rng: &rng)
    }

    /// Values at least `gap` away from zero: safe for kinks at 0 (relu) and for division.
    static func awayFromZero(_ shape: [Int], gap: Float = 0.3, seed: UInt64 = 2) -> Tensor {
        let t = uniform(shape, -1, 1, seed: seed)
        for i in 0..<t.count { t[flat: i] = t[flat: i] < 0 ? t[flat: i] - gap : t[flat: i] + gap }
        return t
    }

    /// A shuffled arithmetic progression: all elements distinct, spaced by `spacing` (for max).
    static func distinct(_ shape: [Int], spacing: Float = 0.1, seed: UInt64 = 3) -> Tensor {
        let n = shape.reduce(1, *)
        var rng = RandomStream(seed: seed, purpose: .scratch)
        var values = (0..<n).map { Float($0) * spacing - Float(n) * spacing / 2 }
        for i in stride(from: n - 1, to: 0, by: -1) { values.swapAt(i, rng.next(below: i + 1)) }
        return Tensor(shape: shape, scalars: values)
    }
}
