import Testing

@testable import Tensor

/// The ops of the Llama family (RMS norm, SwiGLU, rotary embedding, grouped-query attention with
/// an optional sliding window) against finite differences and against direct statements.
@Suite struct LlamaOpGradientTests {
    static let table = RotaryTable(
        headDim: 4, inverseFrequencies: RotaryTable.standardFrequencies(headDim: 4, base: 10_000), positions: 16)

    @Test func rmsNorm_matchesFiniteDifferences() {
        GradientCheck.expectMatches([Inputs.uniform([3, 7], -1.5, 1.5), Inputs.uniform([7], 0.5, 1.5, seed: 4)]) { v in
            v[0].rmsNorm(weight: v[1], epsilon: 1e-6)
        }
    }

    @Test func rmsNorm_equalsItsDefinition() {
        let x = Inputs.uniform([2, 5]), w = Inputs.uniform([5], seed: 7)
        let y = Autograd.inferenceMode { Variable(x).rmsNorm(weight: Variable(w), epsilon: 1e-5).value }
        for r in 0..<2 {
            let row = (0..<5).map { Double(x[flat: r * 5 + $0]) }
            let rms = (row.map { $0 * $0 }.reduce(0, +) / 5 + 1e-5).squareRoot()
            for i in 0..<5 { #expect(abs(Double(y[flat: r * 5 + i]) - Double(w[flat: i]) * row[i] / rms) < 1e-6) }
        }
    }

    @Test func swiGLU_matchesFiniteDifferences_andItsDefinition() {
        GradientCheck.expectMatches([Inputs.uniform([4, 6], -3, 3), Inputs.uniform([4, 6], seed: 8)]) { v in
            v[0].swiGLU(v[1])
        }
        let g = Inputs.uniform([10], -4, 4), u = Inputs.uniform([10], seed: 9)
        let y = Autograd.inferenceMode { Variable(g).swiGLU(Variable(u)).value }
        for i in 0..<10 {
            let x = Double(g[flat: i])
            #expect(abs(Double(y[flat: i]) - x / (1 + Foundation.exp(-x)) * Double(u[flat: i])) < 1e-6)
        }
    }

    @Test func rotary_matchesFiniteDifferences_andPreservesNorms() {
        let positions = TokenTensor(shape: [3], ids: [0, 5, 11])
        GradientCheck.expectMatches([Inputs.uniform([2, 3, 8])]) { v in
            v[0].rotary(heads: 2, table: Self.table, positions: positions)
        }
        // A rotation: each pair (j, j + D/2) keeps its length; position 0 is the identity.
        let x = Inputs.uniform([3, 8])
        let y = Autograd.inferenceMode { Variable(x).rotary(heads: 2, table: Self.table, positions: positions).value }
        for j in 0..<8 { #expect(y[flat: j] == x[flat: j]) }
        for r in 0..<3 {
            for h in 0..<2 {
                for j in 0..<2 {
                    let (a, b) = (r * 8 + h * 4 + j, r * 8 + h * 4 + j + 2)
                    let before = x[flat: a] * x[flat: a] + x[flat: b] * x[flat: b]
                    let after = y[flat: a] * y[flat: a] + y[flat: b] * y[flat: b]
                    #expect(abs(before - after) < 1e-5)
                }
            }
        }
    }

    @Test(arguments: [(4, 4, nil), (4, 2, nil), (4, 1, nil), (4, 2, 3), (2, 1, 1)] as [(Int, Int, Int?)])
    func attention_matchesFiniteDifferences(heads: Int, kvHeads: Int, window: Int?) {
        let d = 2
        GradientCheck.expectMatches([
            Inputs.uniform([2, 5, heads * d], -1.5, 1.5), Inputs.uniform([2, 5, kvHeads * d], -1.5, 1.5, seed: 11),
            Inputs.uniform([2, 5, kvHeads * d], seed: 12),
        ]) { v in
            Variable.attention(q: v[0], k: v[1], v: v[2], heads: heads, kvHeads: kvHeads, window: window)
        }
    }

    /// Sequences longer than the kernel's 32-row blocks, against attention written out in Double.
    @Test(arguments: [(6, 2, nil), (6, 3, 5), (2, 2, 40)] as [(Int, Int, Int?)])
    func attention_overSeveralBlocks_equalsDirectStatement(heads: Int, kvHeads: Int, window: Int?) {
        let (t, d) = (70, 4)
        let q = Inputs.uniform([1, t, heads * d]), k = Inputs.uniform([1, t, kvHeads * d], seed: 5)
        let v = Inputs.uniform([1, t, kvHeads * d], seed: 6)
        let out = Autograd.inferenceMode {
            Variable.attention(
                q: Variable(q), k: Variable(k), v: Variable(v), heads: heads, kvHeads: kvHeads, window: window
            ).value
        }
        var worst = 0.0
        for h in 0..<heads {
            let kvh = h / (heads / kvHeads)
            for i in 0..<t {
                let keys = (window.map { max(0, i - $0 + 1) } ?? 0)...i
                let scores = keys.map { j in
                    (0..<d).reduce(0.0) {
                        $0 + Double(q[flat: i * heads * d + h * d + $1])
                            * Double(k[flat: j * kvHeads * d + kvh * d + $1])
                    }
                        / Double(d).squareRoot()
                }
                let top = scores.max()!
                let weights = scores.map { Foundation.exp($0 - top) }
                let total = weights.reduce(0, +)
                for e in 0..<d {
                    let expected =
                        zip(keys, weights).reduce(0.0) { $0 + $1.1 * Double(v[flat: $1.0 * kvHeads * d + kvh * d + e]) }
                        / total
                    worst = max(worst, abs(expected - Double(out[flat: i * heads * d + h * d + e])))
                }
            }
        }
        #expect(worst < 1e-5)
    }

    /// Separate q, k, v with as many key heads as query heads is GPT-2's packed attention, bit for bit.
    @Test func attention_withEqualHeads_isPackedAttention() {
        let qkv = Inputs.uniform([2, 40, 18])
        let packed = Variable(qkv, requiresGrad: true)
        let a = packed.causalSelfAttention(heads: 3)
        let parts = (0..<3).map {
            Variable(Kernels.sliceForward(qkv, axis: 2, range: ($0 * 6)..<($0 * 6 + 6)), requiresGrad: true)
        }
        let b = Variable.attention(q: parts[0], k: parts[1], v: parts[2], heads: 3, kvHeads: 3)
        #expect(a.value.scalars == b.value.scalars)
        let seed = Inputs.uniform(a.shape, seed: 3)
        a.backward(seed: seed)
        b.backward(seed: seed)
        for (i, part) in parts.enumerated() {
            #expect(
                Kernels.sliceForward(packed.grad!, axis: 2, range: (i * 6)..<(i * 6 + 6)).scalars == part.grad!.scalars)
        }
    }
}

import Foundation
