import CKernels
import Foundation
import Testing

@testable import Tensor

/// bfloat16 products (`ProductPrecision.bf16`) against a scalar reference written here from the
/// definition: round each input to bfloat16 (to nearest, ties to even, subnormals to zero), then
/// per output element a Float32 chain over pairs of the inner index, fma of the odd term first,
/// each result flushed to zero when subnormal. Every kernel (AVX-512 BF16, AVX2, portable) must
/// give those bits on this CPU, for every transpose, thread split and epilogue.
@Suite struct BFloat16Tests {
    // MARK: The reference

    /// Float32 → bfloat16 by comparing the two neighbours (not the kernels' add-and-shift).
    static func round(_ x: Float) -> Float {
        if x.isNaN || x.isInfinite { return x }
        if x.isSubnormal || x == 0 { return x.sign == .minus ? -0.0 : 0.0 }
        let bits = x.bitPattern
        let down = Float(bitPattern: bits & 0xFFFF_0000)
        let up = Float(bitPattern: (bits & 0xFFFF_0000) &+ 0x1_0000)
        // Past the largest finite value, "up" is infinity, at 2¹²⁸ for the nearest comparison.
        let upValue = up.isInfinite ? (x < 0 ? -0x1p128 : 0x1p128) : Double(up)
        let (dDown, dUp) = (abs(Double(x) - Double(down)), abs(Double(x) - upValue))
        if dDown != dUp { return dDown < dUp ? down : up }
        return (bits >> 16) & 1 == 0 ? down : up  // a tie: the even one
    }

    static func flush(_ x: Float) -> Float { x.isSubnormal ? (x.sign == .minus ? -0.0 : 0.0) : x }

    /// C = alpha · op(A)·op(B) (+ C0 when given), in the reference order.
    static func reference(
        _ a: [Float], _ b: [Float], m: Int, n: Int, k: Int, transposeA: Bool, transposeB: Bool, alpha: Float = 1,
        c0: [Float]? = nil
    ) -> [Float] {
        func av(_ i: Int, _ p: Int) -> Float { p < k ? round(transposeA ? a[p * m + i] : a[i * k + p]) : 0 }
        func bv(_ p: Int, _ j: Int) -> Float { p < k ? round(transposeB ? b[j * k + p] : b[p * n + j]) : 0 }
        var c = [Float](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var acc: Float = 0
                for p in stride(from: 0, to: k, by: 2) {
                    acc = flush(acc.addingProduct(av(i, p + 1), bv(p + 1, j)))
                    acc = flush(acc.addingProduct(av(i, p), bv(p, j)))
                }
                let scaled = alpha == 1 ? acc : alpha * acc
                c[i * n + j] = c0.map { $0[i * n + j] + scaled } ?? scaled
            }
        }
        return c
    }

    /// Values over many binades, some tiny enough that products underflow, and exact ties.
    static func awkward(_ count: Int, seed: UInt64) -> [Float] {
        var rng = RandomStream(seed: seed, purpose: .scratch)
        return (0..<count).map { i in
            let u = Float(rng.next(below: 1 << 20)) / Float(1 << 20) * 2 - 1
            switch i % 11 {
            case 3: return u * 1e-20  // its products with the others are subnormal
            case 5: return Float(bitPattern: 0x3F80_8000 | UInt32(i & 1) << 16)  // a tie in rounding
            case 7: return u * 1000
            default: return u
            }
        }
    }

    // MARK: Rounding

    @Test func rounding_matchesTheReference_forSpecialAndRandomValues() {
        var values: [Float] = [
            0, -0.0, 1, -1, .infinity, -.infinity, .greatestFiniteMagnitude, -.greatestFiniteMagnitude,
            .leastNormalMagnitude, .leastNonzeroMagnitude, -.leastNonzeroMagnitude, Float(bitPattern: 0x007F_FFFF),
            Float(bitPattern: 0x3F80_8000), Float(bitPattern: 0x3F81_8000), Float(bitPattern: 0x3F80_8001),
            Float(bitPattern: 0x3F80_7FFF), Float(bitPattern: 0x7F7F_FFFF), 1e-38, 3.14159,
        ]
        values += Self.awkward(4096, seed: 5)
        for x in values {
            let kernel = rlaif_bf16_to_float(rlaif_bf16_from_float(x))
            #expect(kernel.bitPattern == Self.round(x).bitPattern, "round(\(x)): \(kernel) vs \(Self.round(x))")
        }
        let nan = rlaif_bf16_to_float(rlaif_bf16_from_float(.nan))
        #expect(nan.isNaN)
    }

    @Test func vectorRounding_givesThePortableBits_includingNaNs() {
        var values = Self.awkward(1000, seed: 6)
        values += [.nan, -.nan, Float(bitPattern: 0x7F80_0001), .infinity, .leastNonzeroMagnitude, -0.0]
        var vector = [UInt16](repeating: 0, count: values.count), portable = vector
        rlaif_bf16_round(1, values, values.count, &vector)
        rlaif_bf16_round(0, values, values.count, &portable)
        #expect(vector == portable)
    }

    // MARK: Products

    /// (m, k, n): one element, an odd inner dimension, ragged panels, more rows than a block.
    static let shapes = [(1, 1, 1), (3, 7, 17), (11, 64, 100), (20, 33, 49), (37, 101, 53)]
    static let transposes = [(false, false), (true, false), (false, true), (true, true)]

    @Test(arguments: shapes, transposes)
    func gemm_equalsTheReference_bitForBit(shape: (Int, Int, Int), transpose: (Bool, Bool)) {
        let (m, k, n) = shape
        let a = Self.awkward(m * k, seed: 1), b = Self.awkward(k * n, seed: 2)
        let expected = Self.reference(a, b, m: m, n: n, k: k, transposeA: transpose.0, transposeB: transpose.1)
        var out = [Float](repeating: .nan, count: m * n)
        Kernels.gemm(
            transposeA: transpose.0, transposeB: transpose.1, m: m, n: n, k: k, a, lda: transpose.0 ? m : k, b,
            ldb: transpose.1 ? k : n, beta: 0, &out, ldc: n, precision: .bf16)
        #expect(out.map(\.bitPattern) == expected.map(\.bitPattern))
    }

    @Test(arguments: shapes)
    func everyKernel_givesTheReferenceBits_withAlphaAndAccumulation(shape: (Int, Int, Int)) {
        let (m, k, n) = shape
        let a = Self.awkward(m * k, seed: 3), b = Self.awkward(k * n, seed: 4), c0 = Self.awkward(m * n, seed: 5)
        let expected = Self.reference(a, b, m: m, n: n, k: k, transposeA: false, transposeB: true, alpha: 0.125, c0: c0)
        let panels = b.withUnsafeBufferPointer { BFloat16Panels($0.baseAddress!, k: k, n: n, ldb: k, transposed: true) }
        let rows = a.withUnsafeBufferPointer {
            Kernels.packRows($0.baseAddress!, m: m, k: k, lda: k, transposed: false)
        }
        let kernels = [rlaif_bf16_isa_scalar, rlaif_bf16_isa_avx2, rlaif_bf16_isa_avx512bf16]
        for kernel in kernels where kernel.rawValue <= rlaif_bf16_best_isa().rawValue {
            var out = c0
            panels.multiply(
                rows, m: m, alpha: 0.125, accumulate: true, bias: nil, residual: nil, out: &out, ldo: n, kernel: kernel)
            #expect(out.map(\.bitPattern) == expected.map(\.bitPattern), "kernel \(kernel.rawValue)")
        }
    }

    /// A product big enough to be split over the pool (by rows, and by panel groups for a few
    /// rows) gives the bits of one thread.
    @Test(arguments: [(512, 96, 80), (8, 256, 768)])
    func theThreadSplit_changesNoBit(shape: (Int, Int, Int)) async {
        let (m, k, n) = shape
        let a = Inputs.uniform([k, m]), b = Inputs.uniform([k, n], seed: 9)
        @Sendable func product() -> [Float] {
            Kernels.matmulForward(a, b, transposeA: true, transposeB: false, precision: .bf16).scalars
        }
        let serial = product()
        let threaded = await Engine.shared.run { product() }
        #expect(threaded == serial)
        let expected = Self.reference(
            a.scalars, b.scalars, m: m, n: n, k: k, transposeA: true, transposeB: false)
        #expect(serial.map(\.bitPattern) == expected.map(\.bitPattern))
    }

    /// Packed once for decode steps, a bf16 `PanelMatrix` adds bias and residual as the Float32
    /// one does, after the same chain the training products compute.
    @Test func panelMatrix_bf16_isTheReferenceChain_plusBiasAndResidual() {
        let (m, k, n) = (5, 40, 35)
        let x = Inputs.uniform([m, k]), w = Inputs.uniform([n, k], seed: 9)
        let bias = Inputs.uniform([n], seed: 3), residual = Inputs.uniform([m, n], seed: 4)
        let packed = PanelMatrix(w, transposed: true, precision: .bf16)
        let out = packed.product(x, bias: bias, residual: residual)
        let chain = Self.reference(x.scalars, w.scalars, m: m, n: n, k: k, transposeA: false, transposeB: true)
        for i in 0..<m {
            for j in 0..<n {
                let expected = residual[flat: i * n + j] + (chain[i * n + j] + bias[flat: j])
                #expect(out[flat: i * n + j].bitPattern == expected.bitPattern)
            }
        }
    }

    /// bf16 inputs carry 8 significant bits: a product's error against exact arithmetic stays
    /// within a few units of 2⁻⁸ of Σ|a·b|, and Float32 products stay far closer.
    @Test func bf16Products_areCloseToExactOnes() {
        let (m, k, n) = (16, 512, 24)
        let a = Inputs.uniform([m, k]), b = Inputs.uniform([k, n], seed: 9)
        let bf16 = Kernels.matmulForward(a, b, transposeA: false, transposeB: false, precision: .bf16)
        var worst: Float = 0
        for i in 0..<m {
            for j in 0..<n {
                var exact = 0.0, magnitude = 0.0
                for p in 0..<k {
                    let t = Double(a[flat: i * k + p]) * Double(b[flat: p * n + j])
                    exact += t
                    magnitude += abs(t)
                }
                worst = max(worst, Float(abs(Double(bf16[flat: i * n + j]) - exact) / magnitude))
            }
        }
        #expect(worst > 1e-5 && worst < 3 * 0x1p-8)
    }

    /// A weight marked bf16 makes its products bf16 in forward and in backward.
    @Test func aMarkedWeight_takesItsProductsInBF16_bothWays() {
        let x = Variable(Inputs.uniform([6, 10]), requiresGrad: true)
        let w = Variable(Inputs.uniform([10, 7], seed: 9), requiresGrad: true)
        let plain = x.matmul(w)
        plain.sum().backward()
        let (plainDX, plainDW) = (x.grad!.scalars, w.grad!.scalars)
        x.grad = nil
        w.grad = nil
        w.productPrecision = .bf16
        let rounded = x.matmul(w)
        rounded.sum().backward()
        #expect(rounded.value.scalars != plain.value.scalars)
        let ones = [Float](repeating: 1, count: 6 * 7)
        let expectedDX = Self.reference(ones, w.value.scalars, m: 6, n: 10, k: 7, transposeA: false, transposeB: true)
        let expectedDW = Self.reference(x.value.scalars, ones, m: 10, n: 7, k: 6, transposeA: true, transposeB: false)
        #expect(x.grad!.scalars == expectedDX && x.grad!.scalars != plainDX)
        #expect(w.grad!.scalars == expectedDW && w.grad!.scalars != plainDW)
    }
}
