import Testing

@testable import Tensor

@Suite struct OptimizerTests {
    /// A parameter set with one matrix (decays) and one bias (does not), gradients set by hand.
    func fixture() -> ParameterSet {
        let w = Variable(Tensor(shape: [1, 2], scalars: [1.0, -2.0]), requiresGrad: true)
        let b = Variable(Tensor(shape: [1], scalars: [0.5]), requiresGrad: true)
        let p = ParameterSet([("w", w), ("b", b)])
        p.gradients.assign(Tensor(shape: [3], scalars: [0.1, -0.4, 2.0]))
        return p
    }

    // MARK: AdamW

    @Test func adamW_firstStep_equalsHandComputation() {
        // Step 1: m = (1−β₁)g, v = (1−β₂)g², m̂ = g, v̂ = g², so the update is lr·(g/(|g|+ε) + λp).
        let p = fixture()
        var opt = AdamW(beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.1)
        opt.update(p, learningRate: 0.01)
        func expected(_ p0: Double, _ g: Double, decay: Double) -> Double {
            p0 - 0.01 * (g / (abs(g) + 1e-8) + decay * p0)
        }
        let got = p.values.scalars.map(Double.init)
        #expect(abs(got[0] - expected(1.0, 0.1, decay: 0.1)) < 1e-6)
        #expect(abs(got[1] - expected(-2.0, -0.4, decay: 0.1)) < 1e-6)
        #expect(abs(got[2] - expected(0.5, 2.0, decay: 0)) < 1e-6)  // bias: no decay
        #expect(opt.step == 1)
    }

    /// Two optimizers restored from one saved state each step on their own moments: the saved
    /// tensors are left as they were (they were once shared and updated twice per step).
    @Test func adamW_restoredFromOneState_ownsItsMoments() {
        let m = Tensor(shape: [3], scalars: [0.01, 0.02, 0.03]), v = Tensor(shape: [3], scalars: [1e-4, 2e-4, 3e-4])
        var a = AdamW(weightDecay: 0), b = AdamW(weightDecay: 0)
        a.restore(step: 4, firstMoment: m, secondMoment: v)
        b.restore(step: 4, firstMoment: m, secondMoment: v)
        let pa = fixture(), pb = fixture()
        a.update(pa, learningRate: 0.01)
        b.update(pb, learningRate: 0.01)
        #expect(m.scalars == [0.01, 0.02, 0.03] && v.scalars == [1e-4, 2e-4, 3e-4])
        #expect(pa.values.scalars == pb.values.scalars)
    }

    @Test func adamW_secondStep_usesBiasCorrectedMoments() {
        // Same gradient twice: m = (1−β₁²)g·…; by hand with β₁=0.9, β₂=0.999, g=0.1, p₀=1, λ=0.
        let w = Variable(Tensor(shape: [1], scalars: [1]), requiresGrad: true)
        let p = ParameterSet([("w", w)])
        var opt = AdamW(weightDecay: 0)
        var x = 1.0, m = 0.0, v = 0.0
        for t in 1...2 {
            p.gradients.assign(Tensor(shape: [1], scalars: [0.1]))
            opt.update(p, learningRate: 0.1)
            m = 0.9 * m + 0.1 * 0.1
            v = 0.999 * v + 0.001 * 0.01
            let mHat = m / (1 - _pow(0.9, Double(t))), vHat = v / (1 - _pow(0.999, Double(t)))
            x -= 0.1 * mHat / (vHat.squareRoot() + 1e-8)
        }
        #expect(abs(Double(p.values[flat: 0]) - x) < 1e-6)
    }

    /// The C loop (AVX-512, AVX2 or baseline, as this CPU takes) gives the Swift statement's bits,
    /// element for element, over three steps of a set with decaying and non-decaying entries, and
    /// over steps 164–166, where 1 − β1^t first rounds to 1 and the loop leaves out m / c1.
    @Test func adamW_cLoop_givesTheSwiftReferenceBits() {
        let w = Variable(Inputs.uniform([37, 29]), requiresGrad: true)
        let b = Variable(Inputs.uniform([29], seed: 3), requiresGrad: true)
        let p = ParameterSet([("w", w), ("b", b)])
        var opt = AdamW(weightDecay: 0.05)
        var values = p.values.scalars, m = [Float](repeating: 0, count: p.count), v = m
        var mismatches = 0, unbiasedSteps = 0
        for step in [1, 2, 3, 164, 165, 166] {
            if step == 164 {  // on from step 163, with the moments as they are
                opt.restore(step: 163, firstMoment: opt.firstMoment!, secondMoment: opt.secondMoment!)
            }
            let g = Inputs.uniform([p.count], -2, 2, seed: UInt64(10 + step))
            p.gradients.assign(g)
            opt.update(p, learningRate: 0.01)
            let c1 = 1 - Float(Double(opt.beta1).power(step)), c2 = 1 - Float(Double(opt.beta2).power(step))
            if c1 == 1 { unbiasedSteps += 1 }
            for i in 0..<p.count {
                let decay: Float = i < w.value.count ? 0.05 : 0
                AdamW.reference(
                    p: &values[i], g: g[flat: i], m: &m[i], v: &v[i], lr: 0.01, beta1: opt.beta1, beta2: opt.beta2,
                    epsilon: opt.epsilon, decay: decay, c1: c1, c2: c2)
            }
            mismatches += zip(values, p.values.scalars).filter { $0 != $1 }.count
        }
        #expect(mismatches == 0)
        #expect(unbiasedSteps == 2, "steps 165 and 166 take the loop without m / c1")
    }

    /// The all-reduce path: the update reads the reduced sum where it lies, with the clip factor
    /// in its own pass, and gives the bits of copying it into the set, clipping, then updating.
    @Test func adamW_fromAReducedSumWithItsClipFactor_givesTheBitsOfClipThenUpdate() {
        func set() -> ParameterSet {
            ParameterSet([
                ("w", Variable(Inputs.uniform([41, 23]), requiresGrad: true)),
                ("b", Variable(Inputs.uniform([23], seed: 5), requiresGrad: true)),
            ])
        }
        let copied = set(), inPlace = set()
        var copiedOptimizer = AdamW(weightDecay: 0.05), inPlaceOptimizer = copiedOptimizer
        var scales: [Float] = []
        for step in 1...4 {
            // Steps 1 and 3 are clipped (norm near 16), 2 and 4 are not (norm near 0.4).
            let range: Float = step.isMultiple(of: 2) ? 0.03 : 1.2
            let reduced = Inputs.uniform([copied.count + 2], -range, range, seed: UInt64(20 + step))
            copied.gradients.pointer.update(from: reduced.pointer, count: copied.count)
            let expectedNorm = copied.clipGradientNorm(1)
            copiedOptimizer.update(copied, learningRate: 0.01)

            let norm = ParameterSet.norm(of: reduced.pointer, count: inPlace.count)
            let scale = ParameterSet.clipScale(norm: norm, maxNorm: 1)
            inPlaceOptimizer.update(inPlace, gradients: reduced.pointer, scale: scale, learningRate: 0.01)
            #expect(norm == expectedNorm)
            scales.append(scale)
        }
        #expect(scales.map { $0 < 1 } == [true, false, true, false])
        #expect(inPlace.values.scalars == copied.values.scalars)
        #expect(inPlaceOptimizer.firstMoment?.scalars == copiedOptimizer.firstMoment?.scalars)
        #expect(inPlaceOptimizer.secondMoment?.scalars == copiedOptimizer.secondMoment?.scalars)
    }

    // MARK: SGD

    @Test func sgd_withMomentum_equalsHandComputation() {
        // b₁ = g, p₁ = p₀ − lr·g; b₂ = μg + g, p₂ = p₁ − lr·(1+μ)g.
        let w = Variable(Tensor(shape: [1], scalars: [1]), requiresGrad: true)
        let p = ParameterSet([("w", w)])
        var opt = SGD(momentum: 0.5)
        p.gradients.assign(Tensor(shape: [1], scalars: [2]))
        opt.update(p, learningRate: 0.1)
        #expect(abs(p.values[flat: 0] - 0.8) < 1e-7)
        opt.update(p, learningRate: 0.1)
        #expect(abs(p.values[flat: 0] - 0.5) < 1e-7)
    }

    // MARK: Clipping

    @Test func clipGradientNorm_scalesToTheLimit_andLeavesSmallGradientsAlone() {
        let p = fixture()  // ‖g‖ = √(0.01 + 0.16 + 4) = √4.17
        let before = p.clipGradientNorm(1.0)
        #expect(abs(Double(before) - 4.17.squareRoot()) < 1e-6)
        #expect(abs(p.gradientNorm() - 1) < 1e-5)
        let again = p.clipGradientNorm(10)
        #expect(abs(again - 1) < 1e-5)
        #expect(abs(p.gradientNorm() - 1) < 1e-5)
    }

    // MARK: Schedules

    @Test func warmupCosine_rampsLinearlyThenDecaysToTheMinimum() {
        let s = LearningRateSchedule.warmupCosine(peak: 1, warmupSteps: 10, totalSteps: 110, minimum: 0.1)
        #expect(abs(s.rate(at: 0) - 0.1) < 1e-6)
        #expect(abs(s.rate(at: 9) - 1) < 1e-6)
        #expect(abs(s.rate(at: 60) - 0.55) < 1e-6)  // halfway through the cosine: (1 + 0.1)/2
        #expect(abs(s.rate(at: 110) - 0.1) < 1e-6)
        #expect(s.rate(at: 500) == 0.1)
        #expect(LearningRateSchedule.constant(0.3).rate(at: 1000) == 0.3)
    }
}

#if canImport(Glibc)
    import Glibc
    func _pow(_ a: Double, _ b: Double) -> Double { Glibc.pow(a, b) }
#endif
