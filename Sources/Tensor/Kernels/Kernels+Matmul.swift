import COpenBLAS

/// Matrix products through `cblas_sgemm`; transposes are BLAS flags, never copies.
extension Kernels {
    /// C = alpha · op(A) · op(B) + beta · C, row-major. op(A): (M, K), op(B): (K, N), C: (M, N).
    @inline(__always)
    static func gemm(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
        _ a: UnsafePointer<Float>, lda: Int, _ b: UnsafePointer<Float>, ldb: Int,
        beta: Float, _ c: UnsafeMutablePointer<Float>, ldc: Int, precision: ProductPrecision = .float32
    ) {
        guard m > 0, n > 0 else { return }
        if k == 0 {
            // BLAS leaves C untouched for k == 0 only when beta == 1; make beta == 0 explicit.
            if beta == 0 { for i in 0..<m { (c + i * ldc).update(repeating: 0, count: n) } }
            return
        }
        if precision == .bf16 {
            return bf16Gemm(transposeA, transposeB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
        }
        if let block = skinnyColumnBlock(m: m, n: n, k: k, transposeA: transposeA, transposeB: transposeB) {
            // A few rows (a decode step): column blocks, spread over the pool when inside a job.
            let blocks = (n + block - 1) / block
            let work = { (i: Int) in
                let lo = i * block, hi = min(n, lo + block)
                let bPart = transposeB ? b + lo * ldb : b + lo
                blasGemm(transposeA, transposeB, m, hi - lo, k, alpha, a, lda, bPart, ldb, beta, c + lo, ldc)
            }
            // Split only products the size the general split below starts at (2²¹ multiply-adds):
            // smaller ones lose more to waking the pool than they gain.
            if ThreadFlags.isEngineThread && Engine.shared.threads > 1 && m * n * k >= 1 << 21 {
                let threads = min(Engine.shared.threads, blocks)
                Engine.parallelFor(threads) { t in
                    for i in stride(from: t, to: blocks, by: threads) { work(i) }
                }
            } else {
                for i in 0..<blocks { work(i) }
            }
            return
        }
        // Inside an engine job, big products are split over the engine's pool, each part a
        // single-threaded BLAS call (BLAS itself runs with one thread): no BLAS worker threads
        // spin while the pool runs other kernels. Each element is still computed by one call, in
        // BLAS's own k order, so the split changes no bit.
        let parts = ThreadFlags.isEngineThread ? min(Engine.shared.threads, max(1, m * n * k / (1 << 21))) : 1
        if parts > 1 && (m >= 2 * parts || n >= 2 * parts) {
            let splitRows = m >= n
            let total = splitRows ? m : n
            let size = (total + parts - 1) / parts
            Engine.parallelFor(parts) { part in
                let lo = part * size, hi = min(total, lo + size)
                guard lo < hi else { return }
                if splitRows {
                    let aPart = transposeA ? a + lo : a + lo * lda
                    blasGemm(transposeA, transposeB, hi - lo, n, k, alpha, aPart, lda, b, ldb, beta, c + lo * ldc, ldc)
                } else {
                    let bPart = transposeB ? b + lo * ldb : b + lo
                    blasGemm(transposeA, transposeB, m, hi - lo, k, alpha, a, lda, bPart, ldb, beta, c + lo, ldc)
                }
            }
            return
        }
        blasGemm(transposeA, transposeB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
    }

    /// Products of at most this many rows are cut into column blocks (see `skinnyColumnBlock`).
    static let skinnyRows = 16

    /// The column block for a product of a few rows, or nil to make one call.
    ///
    /// OpenBLAS packs both operands into panels before multiplying, and with a few rows packing
    /// the weights costs about as much as the product. Products of at most 10⁶ multiply-adds (and,
    /// with Bᵀ, at most 1200 outputs) take its unpacked small-matrix kernel instead; so a few rows
    /// go through in column blocks that fit those limits at 16 rows (docs/PERFORMANCE.md). Blocks are sized for 16 rows whatever `m`, so a row's bits
    /// do not depend on how many rows share the call (checked: rows of 1…16 agree bit for bit; one
    /// call at 768×768 did not), and a sample does not depend on its batch. Other BLAS builds just
    /// make a few more calls.
    static func skinnyColumnBlock(m: Int, n: Int, k: Int, transposeA: Bool, transposeB: Bool) -> Int? {
        guard m <= skinnyRows, !transposeA, k > 0 else { return nil }
        let limit = 1_000_000
        var block = limit / (skinnyRows * k) / 16 * 16
        if transposeB { block = min(block, 1200 / skinnyRows / 16 * 16) }
        guard block >= 16, n > block else { return nil }
        return block
    }

    @inline(__always)
    private static func blasGemm(
        _ transposeA: Bool, _ transposeB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
        _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int, _ beta: Float,
        _ c: UnsafeMutablePointer<Float>, _ ldc: Int
    ) {
        cblas_sgemm(
            CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// The algorithmic reference for `gemm`, kept beside it as llm.c keeps `matmul_forward_naive`.
    /// Accumulates in Double.
    public static func gemmNaive(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
        _ a: [Float], _ b: [Float]
    ) -> [Float] {
        var c = [Float](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var s = 0.0
                for p in 0..<k {
                    let av = transposeA ? a[p * m + i] : a[i * k + p]
                    let bv = transposeB ? b[j * k + p] : b[p * n + j]
                    s += Double(av) * Double(bv)
                }
                c[i * n + j] = Float(s)
            }
        }
        return c
    }

    /// Geometry of `matmul(a, b)`: a batch of `batch` products of (m, k)·(k, n).
    struct MatmulGeometry {
        var batch: Int, m: Int, n: Int, k: Int
        /// Per-product strides; `bStride == 0` means one `b` shared by the whole batch.
        var aStride: Int, bStride: Int
        var outShape: [Int]
        /// True when the leading axes of `a` are folded into m (a: (…, K) times a matrix b).
        var foldsBatchIntoRows: Bool
    }

    /// Shapes accepted: a (…, M, K) · b (K, N), where a's leading axes fold into rows, and
    /// a (B, M, K) · b (B, K, N), batched. Transposes swap the last two axes of an operand.
    static func matmulGeometry(_ a: [Int], _ b: [Int], transposeA: Bool, transposeB: Bool) -> MatmulGeometry {
        // Built only when a check fails: interpolating the shapes on every call cost 1.3% of generation.
        func mismatch() -> String {
            "shape mismatch in matmul\(transposeA ? " (Aᵀ)" : "")\(transposeB ? " (Bᵀ)" : ""), lhs: \(a), rhs: \(b)"
        }
        precondition(a.count >= 2 && (b.count == 2 || b.count == a.count), mismatch())
        let (kb, n) = transposeB ? (b[b.count - 1], b[b.count - 2]) : (b[b.count - 2], b[b.count - 1])
        if b.count == 2 && !(transposeA && a.count > 2) {
            let (m0, ka) = transposeA ? (a[1], a[0]) : (a[a.count - 2], a[a.count - 1])
            precondition(ka == kb, mismatch())
            let lead = a.dropLast(2).reduce(1, *)
            return MatmulGeometry(
                batch: 1, m: lead * m0, n: n, k: ka, aStride: 0, bStride: 0,
                outShape: Array(a.dropLast(2)) + [m0, n], foldsBatchIntoRows: a.count > 2)
        }
        precondition(a.count == 3 && b.count == 3 && a[0] == b[0], mismatch())
        let (m, ka) = transposeA ? (a[2], a[1]) : (a[1], a[2])
        precondition(ka == kb, mismatch())
        return MatmulGeometry(
            batch: a[0], m: m, n: n, k: ka, aStride: a[1] * a[2], bStride: b[1] * b[2],
            outShape: [a[0], m, n], foldsBatchIntoRows: false)
    }

    /// out = op(a) · op(b) (batched when both have rank 3).
    static func matmulForward(
        _ a: Tensor, _ b: Tensor, transposeA: Bool, transposeB: Bool, precision: ProductPrecision = .float32
    ) -> Tensor {
        let g = matmulGeometry(a.shape, b.shape, transposeA: transposeA, transposeB: transposeB)
        let out = Tensor(uninitialized: g.outShape)  // beta = 0 writes every element
        let lda = a.shape[a.rank - 1], ldb = b.shape[b.rank - 1]
        for i in 0..<g.batch {
            gemm(
                transposeA: transposeA, transposeB: transposeB, m: g.m, n: g.n, k: g.k,
                a.pointer + i * g.aStride, lda: lda, b.pointer + i * g.bStride, ldb: ldb,
                beta: 0, out.pointer + i * g.m * g.n, ldc: g.n, precision: precision)
        }
        return out
    }

    /// x · w + bias (+ residual): x (…, K), w (K, N), bias (N), residual shaped like the output.
    ///
    /// Each output row starts as bias (+ residual) and BLAS adds the product into it (beta 1):
    /// one pass over the output where a product, a bias add and a residual add took three (BLAS
    /// zeroes its output for beta 0 before accumulating into it, and each add read and wrote a
    /// fresh tensor). Output = fl(init + x·w) with init = fl(residual + bias).
    static func affineForward(
        _ x: Tensor, weight w: Tensor, bias: Tensor, residual: Tensor?, precision: ProductPrecision = .float32
    ) -> Tensor {
        precondition(
            w.rank == 2 && x.rank >= 1 && x.shape[x.rank - 1] == w.shape[0] && bias.shape == [w.shape[1]],
            "shape mismatch in affine, x: \(x.shape), weight: \(w.shape), bias: \(bias.shape)")
        let (k, n) = (w.shape[0], w.shape[1])
        let m = x.count / max(k, 1)
        let out = Tensor(uninitialized: Array(x.shape.dropLast()) + [n])  // every row initialized below
        if let residual {
            precondition(
                residual.shape == out.shape,
                "shape mismatch in affine, residual: \(residual.shape), output: \(out.shape)")
        }
        let (o, b, r) = (out.pointer, bias.pointer, residual?.pointer)
        parallelRanges(m, grain: max(1, parallelGrain / max(n, 1))) { rows in
            for row in rows {
                let dst = o + row * n
                if let r { binarySame(.add, r + row * n, b, dst, n) } else { dst.update(from: b, count: n) }
            }
        }
        gemm(
            transposeA: false, transposeB: false, m: m, n: n, k: k, x.pointer, lda: k, w.pointer, ldb: n, beta: 1, o,
            ldc: n, precision: precision)
        return out
    }

    /// Adds the gradients of out = op(a)·op(b) into `da` and `db` (either may be nil), or writes
    /// them there, over whatever it held, where `overwriteA` / `overwriteB` say so.
    static func matmulBackward(
        dOut: Tensor, a: Tensor, b: Tensor, transposeA: Bool, transposeB: Bool,
        da: Tensor?, db: Tensor?, overwriteA: Bool = false, overwriteB: Bool = false,
        precision: ProductPrecision = .float32
    ) {
        let g = matmulGeometry(a.shape, b.shape, transposeA: transposeA, transposeB: transposeB)
        let lda = a.shape[a.rank - 1], ldb = b.shape[b.rank - 1], ldc = g.n
        for i in 0..<g.batch {
            let dc = dOut.pointer + i * g.m * g.n
            let ap = a.pointer + i * g.aStride, bp = b.pointer + i * g.bStride
            // An operand shared by the whole batch (stride 0) is overwritten by the first product only.
            let betaA: Float = overwriteA && (i == 0 || g.aStride != 0) ? 0 : 1
            let betaB: Float = overwriteB && (i == 0 || g.bStride != 0) ? 0 : 1
            if let da {
                let dap = da.pointer + i * g.aStride
                if transposeA {
                    // A is (K, M): dA = op(B) · dCᵀ.
                    gemm(
                        transposeA: transposeB, transposeB: true, m: g.k, n: g.m, k: g.n,
                        bp, lda: ldb, dc, ldb: ldc, beta: betaA, dap, ldc: lda, precision: precision)
                } else {
                    // A is (M, K): dA = dC · op(B)ᵀ.
                    gemm(
                        transposeA: false, transposeB: !transposeB, m: g.m, n: g.k, k: g.n,
                        dc, lda: ldc, bp, ldb: ldb, beta: betaA, dap, ldc: lda, precision: precision)
                }
            }
            if let db {
                let dbp = db.pointer + i * g.bStride
                if transposeB {
                    // B is (N, K): dB = dCᵀ · op(A).
                    gemm(
                        transposeA: true, transposeB: transposeA, m: g.n, n: g.k, k: g.m,
                        dc, lda: ldc, ap, ldb: lda, beta: betaB, dbp, ldc: ldb, precision: precision)
                } else {
                    // B is (K, N): dB = op(A)ᵀ · dC.
                    gemm(
                        transposeA: !transposeA, transposeB: false, m: g.k, n: g.n, k: g.m,
                        ap, lda: lda, dc, ldb: ldc, beta: betaB, dbp, ldc: ldb, precision: precision)
                }
            }
        }
    }
}
