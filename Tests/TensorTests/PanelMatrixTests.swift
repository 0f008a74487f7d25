import CKernels
import Testing

@testable import Tensor

/// Products with packed weights (`PanelMatrix`, the decode steps' projections) against the naive
/// triple loop, and the properties generation relies on: every kernel gives the same bits, a row's
/// bits do not depend on the other rows or on the thread split, and bias and residual are added as
/// `residual + (x·W + bias)`.
@Suite struct PanelMatrixTests {
    /// (m, k, n): one element, ragged panels (n % 16 ≠ 0), more rows than a row block (8), and a
    /// decode-step shape big enough to be split over the pool.
    static let shapes = [(1, 1, 1), (3, 50, 17), (11, 64, 100), (20, 33, 49), (8, 256, 768)]

    static func naive(_ x: Tensor, _ w: Tensor, transposed: Bool) -> [Float] {
        let (m, k) = (x.shape[0], x.shape[1]), n = transposed ? w.shape[0] : w.shape[1]
        return Kernels.gemmNaive(
            transposeA: false, transposeB: transposed, m: m, n: n, k: k, x.scalars, w.scalars)
    }

    @Test(arguments: shapes, [false, true])
    func product_equalsTheNaiveLoop(shape: (Int, Int, Int), transposed: Bool) {
        let (m, k, n) = shape
        let x = Inputs.uniform([m, k])
        let w = Inputs.uniform(transposed ? [n, k] : [k, n], seed: 9)
        let out = PanelMatrix(w, transposed: transposed).product(x)
        #expect(out.shape == [m, n])
        #expect(MatmulTests.close(out.scalars, Self.naive(x, w, transposed: transposed)))
    }

    @Test(arguments: shapes)
    func everyKernel_givesTheSameBits(shape: (Int, Int, Int)) {
        let (m, k, n) = shape
        let x = Inputs.uniform([m, k]), bias = Inputs.uniform([n], seed: 3), residual = Inputs.uniform([m, n], seed: 4)
        let packed = PanelMatrix(Inputs.uniform([k, n], seed: 9))
        let kernels = [rlaif_panel_isa_scalar, rlaif_panel_isa_avx2, rlaif_panel_isa_avx512]
        let outs = kernels.map { packed.product(x, bias: bias, residual: residual, kernel: $0).scalars }
        for (kernel, out) in zip(kernels, outs) { #expect(out == outs[0], "kernel \(kernel.rawValue)") }
    }

    @Test func biasAndResidual_areAddedAfterTheProduct_inThatOrder() {
        let (m, k, n) = (5, 40, 35)
        let x = Inputs.uniform([m, k]), bias = Inputs.uniform([n], seed: 3), residual = Inputs.uniform([m, n], seed: 4)
        let packed = PanelMatrix(Inputs.uniform([k, n], seed: 9))
        let plain = packed.product(x), full = packed.product(x, bias: bias, residual: residual)
        for i in 0..<m {
            for j in 0..<n {
                let expected = residual[flat: i * n + j] + (plain[flat: i * n + j] + bias[flat: j])
                #expect(full[flat: i * n + j] == expected)
            }
        }
    }

    @Test func aRowsBits_dependOnlyOnThatRow_andNotOnTheThreadSplit() async {
        let (k, n) = (256, 768)
        let x = Inputs.uniform([16, k]), packed = PanelMatrix(Inputs.uniform([k, n], seed: 9))
        let serial = packed.product(x)  // outside the engine: one thread
        let threaded = await Engine.shared.run { packed.product(x) }  // panels split over the pool
        #expect(threaded.scalars == serial.scalars)
        for (lo, count) in [(0, 1), (3, 5), (8, 8), (13, 3)] {
            let some = packed.product(x.rows(lo..<(lo + count)))
            #expect(some.scalars == serial.rows(lo..<(lo + count)).scalars, "rows \(lo)..<\(lo + count)")
        }
    }

    @Test func packing_isACopy_soLaterWeightChangesDoNotReachIt() {
        let w = Inputs.uniform([20, 30], seed: 9), x = Inputs.uniform([2, 20])
        let packed = PanelMatrix(w)
        let before = packed.product(x).scalars
        w.fill(0)
        #expect(packed.product(x).scalars == before)
        #expect(PanelMatrix(w).product(x).scalars.allSatisfy { $0 == 0 })
    }
}
