import Foundation
import Testing

@testable import Tensor

/// The BLAS path against the naive triple loop kept beside it (accumulating in Double).
/// Tolerance: |blas − naive| ≤ 1e-4·(1 + |naive|); with inputs in [−1, 1] and k ≤ 300 the Float32
/// accumulation error is below 1e-5.
@Suite struct MatmulTests {
    /// OpenBLAS runs the kernels named for this CPU's instruction set, not those its model table
    /// would pick (blas_core.h): the name was in the environment before OpenBLAS started.
    @Test func openBLAS_runsTheCoreNamedForTheInstructionSet() {
        guard let named = Kernels.blasCoreForCPU else { return }  // no x86 vector level: OpenBLAS's choice
        let environment = ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"]
        #expect(environment != nil)
        if environment == named { #expect(Kernels.blasCore == named) }
    }

    static func close(_ a: [Float], _ b: [Float]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) <= 1e-4 * (1 + abs($1)) }
    }

    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
    func blasMatmul_equalsNaiveLoop_forEveryTransposeCombination(transposeA: Bool, transposeB: Bool) {
        let (m, n, k) = (37, 53, 300)
        let a = Inputs.uniform(transposeA ? [k, m] : [m, k])
        let b = Inputs.uniform(transposeB ? [n, k] : [k, n], seed: 9)
        let fast = a.matmul(b, transposeSelf: transposeA, transposeOther: transposeB)
        let naive = Kernels.gemmNaive(
            transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, a.scalars, b.scalars)
        #expect(fast.shape == [m, n])
        #expect(Self.close(fast.scalars, naive))
    }

    @Test func batchedMatmul_equalsNaiveLoopPerBatch() {
        let a = Inputs.uniform([3, 5, 7]), b = Inputs.uniform([3, 7, 4], seed: 9)
        let out = a.matmul(b)
        #expect(out.shape == [3, 5, 4])
        for i in 0..<3 {
            let naive = Kernels.gemmNaive(
                transposeA: false, transposeB: false, m: 5, n: 4, k: 7, a.rows(i..<i + 1).scalars,
                b.rows(i..<i + 1).scalars)
            #expect(Self.close(out.rows(i..<i + 1).scalars, naive))
        }
    }

    /// A few rows (a decode step) go through BLAS in column blocks: the product is still right,
    /// with and without Bᵀ, and a row's bits do not depend on how many rows share the call.
    @Test(arguments: [false, true])
    func skinnyProducts_inColumnBlocks_equalNaive_andEachRowIsIndependentOfTheBatch(transposeB: Bool) throws {
        let (n, k) = (700, 768)
        let block = try #require(
            Kernels.skinnyColumnBlock(m: 16, n: n, k: k, transposeA: false, transposeB: transposeB))
        #expect(block < n && n % block != 0)  // several blocks and a ragged last one
        let b = Inputs.uniform(transposeB ? [n, k] : [k, n], seed: 9)
        let a = Inputs.uniform([16, k])
        let all = a.matmul(b, transposeOther: transposeB)
        let naive = Kernels.gemmNaive(
            transposeA: false, transposeB: transposeB, m: 16, n: n, k: k, a.scalars, b.scalars)
        #expect(Self.close(all.scalars, naive))
        for (lo, count) in [(0, 1), (3, 5), (8, 8), (13, 3)] {
            let some = a.rows(lo..<(lo + count)).matmul(b, transposeOther: transposeB)
            #expect(some.scalars == all.rows(lo..<(lo + count)).scalars, "rows \(lo)..<\(lo + count)")
        }
        // Many rows take one call.
        #expect(Kernels.skinnyColumnBlock(m: 17, n: n, k: k, transposeA: false, transposeB: transposeB) == nil)
    }

    @Test func matmul_knownSmallProduct() {
        // [[1, 2], [3, 4]] · [[5, 6], [7, 8]] = [[19, 22], [43, 50]]
        let a = Tensor(shape: [2, 2], scalars: [1, 2, 3, 4]), b = Tensor(shape: [2, 2], scalars: [5, 6, 7, 8])
        #expect(a.matmul(b).scalars == [19, 22, 43, 50])
        // Aᵀ·B = [[1, 3], [2, 4]] · B = [[26, 30], [38, 44]]
        #expect(a.matmul(b, transposeSelf: true).scalars == [26, 30, 38, 44])
    }
}
