#if canImport(Glibc)
    import Glibc
#endif
import Testing

@testable import Tensor

/// Forward values against hand computations and closed forms.
@Suite struct KernelValueTests {
    func value(_ f: () -> Variable) -> Tensor { Autograd.inferenceMode { f().value } }

    // MARK: Broadcasting

    @Test func broadcast_columnTimesRow_givesOuterProduct() {
        let col = Variable(Tensor(shape: [3, 1], scalars: [1, 2, 3]))
        let row = Variable(Tensor(shape: [1, 2], scalars: [10, 20]))
        let y = value { col * row }
        #expect(y.shape == [3, 2])
        #expect(y.scalars == [10, 20, 20, 40, 30, 60])
    }

    @Test func broadcast_largeTensorPlusBias_addsBiasToEveryRow() async {
        // 40k rows take the threaded row-broadcast path inside the engine.
        let x = Tensor(shape: [40_000, 3], repeating: 1)
        let b = Tensor(shape: [3], scalars: [1, 2, 3])
        let y = await Engine.shared.infer { (Variable(x) + Variable(b)).value }
        #expect(y.rows(39_999..<40_000).scalars == [2, 3, 4])
        #expect(y.rows(0..<1).scalars == [2, 3, 4])
    }

    // MARK: Reductions

    @Test func sumMeanMax_alongAxes() {
        let x = Variable(Tensor(shape: [2, 3], scalars: [1, 5, 3, 4, 2, 6]))
        #expect(value { x.sum() }.item == 21)
        #expect(value { x.sum(axis: 0) }.scalars == [5, 7, 9])
        #expect(value { x.mean(axis: 1) }.scalars == [3, 4])
        #expect(value { x.max(axis: 1) }.scalars == [5, 6])
        #expect(value { x.max(axis: 0) }.scalars == [4, 5, 6])
    }

    // MARK: Normalizations

    @Test func softmax_rowsSumToOne_andLogSoftmaxIsItsLog() {
        let x = Variable(Inputs.uniform([4, 9], -5, 5))
        let p = value { x.softmax() }, lp = value { x.logSoftmax() }
        for r in 0..<4 {
            #expect(abs(p.rows(r..<r + 1).scalars.reduce(0, +) - 1) < 1e-6)
        }
        for i in 0..<p.count { #expect(abs(logf(p[flat: i]) - lp[flat: i]) < 1e-5) }
    }

    @Test func softmax_isStableForLargeLogits() {
        // exp(1000) overflows Float32; the max-shift must keep the result exact.
        let p = value { Variable(Tensor(shape: [1, 2], scalars: [1000, 1000])).softmax() }
        #expect(p.scalars == [0.5, 0.5])
    }

    @Test func layerNorm_normalizesEachRow() {
        // Row [1, 2, 3, 4]: mean 2.5, variance 1.25, so x̂ = (x − 2.5)/√(1.25 + 1e-5).
        let x = Variable(Tensor(shape: [1, 4], scalars: [1, 2, 3, 4]))
        let y = value {
            x.layerNorm(
                gamma: Variable(Tensor(shape: [4], repeating: 2)), beta: Variable(Tensor(shape: [4], repeating: 1)))
        }
        let rstd = 1 / (1.25 + 1e-5).squareRoot()
        for (i, v) in [1.0, 2, 3, 4].enumerated() {
            #expect(abs(Double(y[flat: i]) - ((v - 2.5) * rstd * 2 + 1)) < 1e-5)
        }
    }

    @Test func gelu_matchesTheTanhFormulaAtKnownPoints() {
        // GPT-2's gelu(x) = ½x(1 + tanh(√(2/π)(x + 0.044715x³))), evaluated in Double.
        let xs: [Float] = [-3, -1, -0.5, 0, 0.5, 1, 3]
        let y = value { Variable(Tensor(shape: [7], scalars: xs)).gelu() }
        for (i, x) in xs.map(Double.init).enumerated() {
            let expected = 0.5 * x * (1 + tanh((2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x)))
            #expect(abs(Double(y[flat: i]) - expected) < 1e-6)
        }
    }

    // MARK: Model ops

    @Test func embedding_copiesTableRows() {
        let table = Variable(Tensor(shape: [3, 2], scalars: [0, 1, 10, 11, 20, 21]))
        let y = value { table.embedding(TokenTensor(shape: [3], ids: [2, 0, 2])) }
        #expect(y.shape == [3, 2])
        #expect(y.scalars == [20, 21, 0, 1, 20, 21])
    }

    @Test func affine_equalsMatmulPlusBiasPlusResidual() {
        let (x, w, b, r) = (
            Inputs.uniform([2, 3, 5]), Inputs.uniform([5, 4], seed: 2), Inputs.uniform([4], seed: 3),
            Inputs.uniform([2, 3, 4], seed: 4)
        )
        let fused = value { Variable(x).affine(Variable(w), bias: Variable(b), residual: Variable(r)) }
        let plain = value { Variable(x).matmul(Variable(w)) + Variable(b) + Variable(r) }
        let noResidual = value { Variable(x).affine(Variable(w), bias: Variable(b)) }
        #expect(fused.shape == [2, 3, 4] && noResidual.shape == [2, 3, 4])
        for i in 0..<fused.count {
            #expect(abs(fused[flat: i] - plain[flat: i]) < 1e-5)
            #expect(abs(noResidual[flat: i] + r[flat: i] - plain[flat: i]) < 1e-5)
        }
    }

    /// T = 70 spans three row blocks (32, 32, 6) of the blocked kernel.
    @Test(arguments: [(2, 5, 8, 2), (1, 70, 8, 2)])
    func causalSelfAttention_firstPositionSeesOnlyItself_andMatchesReference(shape: (Int, Int, Int, Int)) {
        // Reference: per head, explicit scores, mask, softmax, weighted sum — no BLAS, no fusion.
        let (b, t, c, h) = shape
        let d = c / h
        let qkv = Inputs.uniform([b, t, 3 * c], -2, 2)
        let y = value { Variable(qkv).causalSelfAttention(heads: h) }
        for bi in 0..<b {
            for hi in 0..<h {
                for i in 0..<t {
                    func at(_ pos: Int, _ part: Int, _ j: Int) -> Double {
                        Double(qkv[flat: (bi * t + pos) * 3 * c + part * c + hi * d + j])
                    }
                    let scores = (0...i).map { p in
                        (0..<d).reduce(0.0) { $0 + at(i, 0, $1) * at(p, 1, $1) } / Double(d).squareRoot()
                    }
                    let m = scores.max()!
                    let w = scores.map { exp($0 - m) }
                    let z = w.reduce(0, +)
                    for j in 0..<d {
                        let expected = (0...i).reduce(0.0) { $0 + w[$1] / z * at($1, 2, j) }
                        #expect(abs(Double(y[flat: (bi * t + i) * c + hi * d + j]) - expected) < 1e-5)
                    }
                }
            }
        }
    }

    @Test func crossEntropy_ofUniformLogits_isLogOfClassCount() {
        // Equal logits over V classes: −log(1/V) = log V, whatever the target.
        let logits = Variable(Tensor(zeros: [3, 7]))
        let loss = value { logits.crossEntropy(targets: TokenTensor(shape: [3], ids: [0, 6, TokenTensor.ignored])) }
        #expect(abs(loss.item - logf(7)) < 1e-6)
    }

    @Test func gatherLogProbs_picksLogSoftmaxAtIds_andZeroWhereIgnored() {
        let x = Inputs.uniform([2, 5], -3, 3)
        let ls = value { Variable(x).logSoftmax() }
        let g = value { Variable(x).gatherLogProbs(TokenTensor(shape: [2], ids: [3, TokenTensor.ignored])) }
        #expect(abs(g[flat: 0] - ls[flat: 3]) < 1e-6)
        #expect(g[flat: 1] == 0)
    }

    @Test func causalMask_marksOnlyFuturePositions() {
        #expect(Tensor.causalMask(3).scalars == [0, 1, 1, 0, 0, 1, 0, 0, 0])
    }

    // MARK: Views

    @Test func reshapeAndRows_shareStorage() {
        let x = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        let r = x.reshaped([3, -1])
        #expect(r.shape == [3, 2])
        x[flat: 0] = 9
        #expect(r[flat: 0] == 9)
        #expect(x.rows(1..<2).scalars == [4, 5, 6])
    }

    // MARK: Inference mode

    @Test func inferenceMode_recordsNoGraph() {
        let w = Variable(Tensor(shape: [2], scalars: [1, 2]), requiresGrad: true)
        let recorded = (w * w).sum()
        let unrecorded = Autograd.inferenceMode { (w * w).sum() }
        #expect(recorded.requiresGrad && recorded.op != nil)
        #expect(!unrecorded.requiresGrad && unrecorded.op == nil)
        unrecorded.backward()
        #expect(w.grad == nil)
        recorded.backward()
        // Σ w², so ∂/∂w = 2w.
        #expect(w.grad?.scalars == [2, 4])
    }
}
