import Testing

@testable import Tensor

/// Every differentiable op's backward rule against finite differences (see `GradientCheck`).
@Suite struct OpGradientTests {
    // MARK: Arithmetic and broadcasting

    @Test func add_sameShapeAndBiasBroadcast_matchFiniteDifferences() {
        GradientCheck.expectMatches([Inputs.uniform([3, 4]), Inputs.uniform([3, 4], seed: 5)]) { $0[0] + $0[1] }
        GradientCheck.expectMatches([Inputs.uniform([2, 3, 4]), Inputs.uniform([4], seed: 5)]) { $0[0] + $0[1] }
    }

    @Test func subtract_generalBroadcast_sumsGradientOverBroadcastAxes() {
        // (3, 1) − (1, 4) broadcasts both operands; each gradient sums over the axis it was repeated on.
        GradientCheck.expectMatches([Inputs.uniform([3, 1]), Inputs.uniform([1, 4], seed: 5)]) { $0[0] - $0[1] }
        GradientCheck.expectMatches([Inputs.uniform([1]), Inputs.uniform([2, 3], seed: 5)]) { $0[0] - $0[1] }
    }

    @Test func multiply_matchesFiniteDifferences_includingSquare() {
        GradientCheck.expectMatches([Inputs.uniform([2, 3, 4]), Inputs.uniform([3, 1], seed: 5)]) { $0[0] * $0[1] }
        // y = x·x, so dy/dx = 2x: the same input on both sides.
        GradientCheck.expectMatches([Inputs.uniform([5])]) { $0[0] * $0[0] }
    }

    @Test func divide_matchesFiniteDifferences() {
        GradientCheck.expectMatches([Inputs.uniform([3, 4]), Inputs.awayFromZero([4], seed: 5)]) { $0[0] / $0[1] }
    }

    @Test func scaleShiftAndNegate_matchFiniteDifferences() {
        GradientCheck.expectMatches([Inputs.uniform([6])]) { -(($0[0] * 2.5) + 1.5) - 0.5 }
    }

    // MARK: Pointwise functions

    @Test func exp_log_tanh_matchFiniteDifferences() {
        GradientCheck.expectMatches([Inputs.uniform([8])]) { $0[0].exp() }
        GradientCheck.expectMatches([Inputs.uniform([8], 0.5, 2)]) { $0[0].log() }
        GradientCheck.expectMatches([Inputs.uniform([8], -2, 2)]) { $0[0].tanh() }
    }

    @Test func relu_matchesFiniteDifferencesAwayFromTheKink() {
        GradientCheck.expectMatches([Inputs.awayFromZero([10])]) { $0[0].relu() }
    }

    @Test func gelu_matchesFiniteDifferences() {
        GradientCheck.expectMatches([Inputs.uniform([16], -3, 3)]) { $0[0].gelu() }
    }

    // MARK: Products

    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
    func matmul_everyTransposeCombination_matchesFiniteDifferences(transposeA: Bool, transposeB: Bool) {
        let a = Inputs.uniform(transposeA ? [4, 3] : [3, 4])
        let b = Inputs.uniform(transposeB ? [5, 4] : [4, 5], seed: 5)
        GradientCheck.expectMatches([a, b]) {
            $0[0].matmul($0[1], transposeSelf: transposeA, transposeOther: transposeB)
        }
    }

    @Test func matmul_leadingAxesFoldIntoRows_matchesFiniteDifferences() {
        // (2, 3, 4) · (5, 4)ᵀ, the shape of a Linear layer on a (batch, time, channels) input.
        GradientCheck.expectMatches([Inputs.uniform([2, 3, 4]), Inputs.uniform([5, 4], seed: 5)]) {
            $0[0].matmul($0[1], transposeOther: true)
        }
    }

    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
    func batchedMatmul_matchesFiniteDifferences(transposeA: Bool, transposeB: Bool) {
        let a = Inputs.uniform(transposeA ? [2, 4, 3] : [2, 3, 4])
        let b = Inputs.uniform(transposeB ? [2, 5, 4] : [2, 4, 5], seed: 5)
        GradientCheck.expectMatches([a, b]) {
            $0[0].matmul($0[1], transposeSelf: transposeA, transposeOther: transposeB)
        }
    }

    // MARK: Reductions

    @Test(arguments: [nil, 0, 1, 2, -1] as [Int?])
    func sumAndMean_overEachAxis_matchFiniteDifferences(axis: Int?) {
        GradientCheck.expectMatches([Inputs.uniform([2, 3, 4])]) { $0[0].sum(axis: axis) }
        GradientCheck.expectMatches([Inputs.uniform([2, 3, 4])]) { $0[0].mean(axis: axis) }
    }

    @Test(arguments: [0, 1, 2])
    func max_overEachAxis_routesGradientToTheMaximum(axis: Int) {
        GradientCheck.expectMatches([Inputs.distinct([2, 3, 4])]) { $0[0].max(axis: axis) }
    }

    // MARK: Normalizations

    @Test func softmaxAndLogSoftmax_matchFiniteDifferences() {
        GradientCheck.expectMatches([Inputs.uniform([3, 7], -2, 2)]) { $0[0].softmax() }
        GradientCheck.expectMatches([Inputs.uniform([3, 7], -2, 2)]) { $0[0].logSoftmax() }
    }

    @Test func layerNorm_gradientsOfInputScaleAndShift_matchFiniteDifferences() {
        let x = Inputs.uniform([2, 3, 8], -2, 2)
        let gamma = Inputs.uniform([8], 0.5, 1.5, seed: 6), beta = Inputs.uniform([8], seed: 7)
        GradientCheck.expectMatches([x, gamma, beta]) { $0[0].layerNorm(gamma: $0[1], beta: $0[2]) }
    }

    // MARK: Model ops

    @Test func embedding_accumulatesGradientForRepeatedIds() {
        let ids = TokenTensor(shape: [2, 3], ids: [1, 4, 1, 0, 4, 4])
        GradientCheck.expectMatches([Inputs.uniform([5, 3])]) { $0[0].embedding(ids) }
    }

    @Test func causalSelfAttention_matchesFiniteDifferences() {
        // B=2, T=4, C=6 with 2 heads of 3: qkv is (2, 4, 18).
        GradientCheck.expectMatches([Inputs.uniform([2, 4, 18], -1.5, 1.5)]) { $0[0].causalSelfAttention(heads: 2) }
    }

    @Test func causalSelfAttention_acrossRowBlocks_matchesFiniteDifferences() {
        // T = 40: row blocks of 32 and 8, so the products that skip masked blocks are exercised.
        GradientCheck.expectMatches([Inputs.uniform([1, 40, 12], -1.5, 1.5)]) { $0[0].causalSelfAttention(heads: 2) }
    }

    @Test func affine_matchesFiniteDifferences() {
        let inputs = [Inputs.uniform([2, 3, 5]), Inputs.uniform([5, 4], seed: 2), Inputs.uniform([4], seed: 3)]
        GradientCheck.expectMatches(inputs) { $0[0].affine($0[1], bias: $0[2]) }
        GradientCheck.expectMatches(inputs + [Inputs.uniform([2, 3, 4], seed: 4)]) {
            $0[0].affine($0[1], bias: $0[2], residual: $0[3])
        }
        // The input is also the residual (a residual block), and an intermediate whose gradient
        // the matmul overwrites before the residual adds into it.
        GradientCheck.expectMatches([
            Inputs.uniform([2, 3, 4]), Inputs.uniform([4, 4], seed: 2), Inputs.uniform([4], seed: 3),
        ]) { v in
            let h = v[0] * 1.5
            return h.affine(v[1], bias: v[2], residual: h).gelu()
        }
    }

    /// Gradients of intermediates start unzeroed: the first op to reach one writes it whole
    /// (matmul, gelu, same-shape add, attention), later ones add. Intermediates reached by
    /// several ops, in several orders, and as both operands of one op, all still match.
    @Test func intermediatesReachedByManyOps_matchFiniteDifferences() {
        GradientCheck.expectMatches([Inputs.uniform([4, 6]), Inputs.uniform([6, 6], seed: 5)]) { v in
            let h = v[0] * 1.5
            let a = h.matmul(v[1])
            let s = a.gelu() + a
            return s.matmul(s, transposeOther: true) + (h + h).matmul(a, transposeOther: true)
        }
        GradientCheck.expectMatches([Inputs.uniform([2, 4, 18], -1.5, 1.5)]) { v in
            let qkv = v[0] * 0.8
            return qkv.causalSelfAttention(heads: 2) + qkv.slice(axis: 2, 0..<6)
        }
    }

    @Test func crossEntropy_skipsIgnoredTargets_andMatchesFiniteDifferences() {
        let targets = TokenTensor(shape: [2, 3], ids: [2, TokenTensor.ignored, 0, 4, 1, TokenTensor.ignored])
        GradientCheck.expectMatches([Inputs.uniform([2, 3, 5], -2, 2)]) { $0[0].crossEntropy(targets: targets) }
    }

    @Test func gatherLogProbs_matchesFiniteDifferences() {
        let ids = TokenTensor(shape: [4], ids: [3, 0, TokenTensor.ignored, 5])
        GradientCheck.expectMatches([Inputs.uniform([4, 6], -2, 2)]) { $0[0].gatherLogProbs(ids) }
    }

    @Test func maskedFill_passesGradientOnlyWhereUnmasked() {
        let mask = Tensor.causalMask(4)
        GradientCheck.expectMatches([Inputs.uniform([2, 4, 4])]) { $0[0].maskedFill(mask, value: -5) }
    }

    // MARK: Layout

    @Test func reshapeAndSwapAxes_matchFiniteDifferences() {
        GradientCheck.expectMatches([Inputs.uniform([2, 3, 4])]) {
            $0[0].reshaped([6, -1]).swappingAxes(0, 1) * $0[0].reshaped([4, 6])
        }
        GradientCheck.expectMatches([Inputs.uniform([2, 3, 4])]) { $0[0].swappingAxes(0, 2) }
    }

    @Test(arguments: [0, 1, 2])
    func slice_alongEachAxis_matchesFiniteDifferences(axis: Int) {
        GradientCheck.expectMatches([Inputs.uniform([3, 4, 5])]) { $0[0].slice(axis: axis, 1..<3) }
    }

    /// Parts of 2, 1 and 3 rows, the middle one used twice: each part's gradient is its rows'.
    @Test func concatenatedRows_matchesFiniteDifferences() {
        GradientCheck.expectMatches([
            Inputs.uniform([2, 4], -1, 1), Inputs.uniform([1, 4], -1, 1), Inputs.uniform([3, 4], -1, 1),
        ]) { v in
            let joined = Variable.concatenatedRows([v[0], v[1] * 2, v[2], v[1]])
            #expect(joined.shape == [7, 4])
            return joined.tanh() * joined
        }
    }

    // MARK: The checker itself

    @Test func gradientCheck_detectsAWrongRule() {
        // relu's rule applied to a function whose derivative differs (gelu) must be caught: compare
        // relu's analytic gradient with gelu's finite differences through a deliberately mismatched pair.
        let x = Inputs.uniform([6], -3, 3)
        var useRelu = true
        let bad = GradientCheck.mismatches([x]) { v in
            defer { useRelu = false }
            return useRelu ? v[0].relu() : v[0].gelu()
        }
        #expect(!bad.isEmpty)
    }
}
