#if canImport(Glibc)
    import Glibc
#endif
import Testing

import CKernels
@testable import Tensor

/// The libm-free exp and tanh against glibc's, over a dense sweep of their useful ranges.
@Suite struct VectorMathTests {
    @Test func fastExp_isWithin2ulpOfGlibc_andUnderflowsToZero() {
        var worst: Float = 0
        var x: Float = -87
        while x < 88 {
            let reference = expf(x)
            worst = max(worst, abs(fastExp(x) - reference) / reference)
            x += 0.0137
        }
        // 2 ulp at 1.0 is 2.4e-7.
        #expect(worst < 2.4e-7, "worst relative error \(worst)")
        #expect(fastExp(-.infinity) < 1e-37 && fastExp(-1000) < 1e-37)
        #expect(fastExp(0) == 1)
    }

    @Test func fastTanh_isWithin3e7OfGlibc_andSaturates() {
        var worst: Float = 0
        var x: Float = -12
        while x < 12 {
            worst = max(worst, abs(fastTanh(x) - tanhf(x)))
            x += 0.0011
        }
        #expect(worst < 3e-7, "worst absolute error \(worst)")
        #expect(fastTanh(50) == 1 && fastTanh(-50) == -1)
    }
}

/// GELU's C loops (AVX-512, AVX2 or baseline, whichever this CPU takes) against the Swift statement
/// they follow: the same bits, across the range where tanh saturates and beyond.
@Suite struct GeluKernelTests {
    @Test func cLoops_giveTheSwiftReferenceBits() {
        // Odd count: vector bodies and a scalar tail.
        let x = Inputs.uniform([4099], -12, 12)
        for i in stride(from: 0, to: 40, by: 4) { x[flat: i] = Float(i - 20) * 0.5 }  // ±10 and zero
        let y = Kernels.geluForward(x)
        let dy = Inputs.uniform([4099], seed: 7)
        let dx = Inputs.uniform([4099], seed: 8), dx0 = dx.copy()
        Kernels.geluBackward(dOut: dy, x: x, dx: dx)
        let written = Inputs.uniform([4099], seed: 9)
        Kernels.geluBackward(dOut: dy, x: x, dx: written, overwrite: true)
        var mismatches = 0
        for i in 0..<x.count {
            let v = x[flat: i]
            if y[flat: i] != Kernels.geluReference(v) { mismatches += 1 }
            if dx[flat: i] != dx0[flat: i] + Kernels.geluGradientReference(dy[flat: i], v) { mismatches += 1 }
            if written[flat: i] != Kernels.geluGradientReference(dy[flat: i], v) { mismatches += 1 }
        }
        #expect(mismatches == 0)
    }
}

/// Sampling computes exp(x − max) once and takes log Σ exp from those exponentials: the same
/// bits as `logSumExp` computing them itself, for lengths around the 16-lane blocks.
@Suite struct LogSumExpTests {
    @Test(arguments: [1, 15, 16, 17, 255, 256, 257, 50257])
    func fromExponentials_givesLogSumExpsBits(count: Int) {
        let x = Inputs.uniform([count], -30, 30, seed: UInt64(count)).scalars
        let top = x.max()!
        let e = x.map { fastExp($0 - top) }
        let direct = Kernels.logSumExp(x, count, maximum: top)
        #expect(Kernels.logSumExp(exponentials: e, count, maximum: top).bitPattern == direct.bitPattern)
        #expect(abs(Double(direct) - (Double(top) + log(x.reduce(0.0) { $0 + exp(Double($1 - top)) }))) < 1e-4)
    }
}

/// Softmax's C loops (AVX-512, AVX2 or baseline, whichever this CPU takes) against the Swift
/// statement they follow, bit for bit, and against a Double softmax.
@Suite struct SoftmaxKernelTests {
    @Test(arguments: [1, 15, 16, 17, 100, 513])
    func cLoops_giveTheSwiftReferenceBits(count: Int) {
        let x = Inputs.uniform([count], -30, 30, seed: UInt64(count)).scalars
        var y = [Float](repeating: .nan, count: count)
        let lse = Kernels.softmaxRow(x, &y, count)
        let reference = Kernels.softmaxRowReference(x)
        #expect(y == reference.y && lse == reference.logSumExp)
        // In place, as attention calls it.
        var z = x
        let lseInPlace = z.withUnsafeMutableBufferPointer {
            Kernels.softmaxRow($0.baseAddress!, $0.baseAddress!, count)
        }
        #expect(z == reference.y && lseInPlace == lse)
        // Against Double.
        let top = x.map(Double.init).max()!
        let total = x.reduce(0.0) { $0 + exp(Double($1) - top) }
        for i in 0..<count { #expect(abs(Double(y[i]) - exp(Double(x[i]) - top) / total) < 1e-6) }
        #expect(abs(Double(lse) - (top + log(total))) < 1e-5)
    }

    @Test func rowOfMinusInfinity_givesZeros() {
        var y = [Float](repeating: 1, count: 20)
        let lse = Kernels.softmaxRow([Float](repeating: -.infinity, count: 20), &y, 20)
        #expect(lse == -.infinity && y.allSatisfy { $0 == 0 })
    }

    @Test func backward_equalsTheRowRule() {
        let p = Kernels.softmaxRowReference(Inputs.uniform([37], -3, 3).scalars).y
        let d0 = Inputs.uniform([37], seed: 4).scalars
        var d = d0
        rlaif_softmax_row_backward(p, &d, 37)
        let dot = zip(p, d0).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        for i in 0..<37 { #expect(abs(Double(d[i]) - Double(p[i]) * (Double(d0[i]) - dot)) < 1e-6) }
    }
}
