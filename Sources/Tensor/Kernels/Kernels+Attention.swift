import CKernels
import COpenBLAS
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Causal multi-head self-attention over packed projections, as GPT-2 lays them out.
///
/// qkv: (B, T, 3C) holding Q, K, V side by side; heads H divide C, D = C / H.
/// out: (B, T, C). Per (b, h): S = QKᵀ/√D, P = softmax(S with j > i masked), O = PV.
/// Q, K and V are read in place through BLAS leading dimensions; no head is copied out.
extension Kernels {
    struct AttentionGeometry {
        var b: Int, t: Int, c: Int, h: Int, d: Int
        var scale: Float { 1 / Float(d).squareRoot() }
    }

    static func attentionGeometry(_ qkv: [Int], heads: Int) -> AttentionGeometry {
        precondition(
            qkv.count == 3 && qkv[2] % 3 == 0,
            "causalSelfAttention: qkv must be (batch, time, 3·channels), got \(qkv)")
        let c = qkv[2] / 3
        precondition(heads > 0 && c % heads == 0, "causalSelfAttention: \(heads) heads do not divide \(c) channels")
        return AttentionGeometry(b: qkv[0], t: qkv[1], c: c, h: heads, d: c / heads)
    }

    /// Rows of attention taken together. Row block [r0, r1) sees keys 0..<r1 only, so the products
    /// skip the masked blocks above the diagonal: at T = 128 four blocks do 5/8 of the full
    /// products' work.
    static let attentionBlock = 32

    /// The blocks [r0, r1) of `t` rows.
    static func attentionBlocks(_ t: Int) -> [Range<Int>] {
        stride(from: 0, to: t, by: attentionBlock).map { $0..<min(t, $0 + attentionBlock) }
    }

    /// Returns the output (B, T, C) and the attention probabilities (B, H, T, T) for backward.
    static func attentionForward(qkv: Tensor, heads: Int) -> (out: Tensor, probs: Tensor) {
        let g = attentionGeometry(qkv.shape, heads: heads)
        // Both are written whole below (every output row; every probability row, masked part too).
        let out = Tensor(uninitialized: [g.b, g.t, g.c])
        let probs = Tensor(uninitialized: [g.b, g.h, g.t, g.t])
        let ld = 3 * g.c
        let blocks = attentionBlocks(g.t)
        // (batch, head) pairs are independent: one per pool task, each with single-threaded BLAS.
        Engine.parallelFor(g.b * g.h) { pair in
            let (b, h) = (pair / g.h, pair % g.h)
            let q = qkv.pointer + b * g.t * ld + h * g.d
            let k = q + g.c, v = q + 2 * g.c
            let p = probs.pointer + (b * g.h + h) * g.t * g.t
            let o = out.pointer + b * g.t * g.c + h * g.d
            for rows in blocks {
                let (r0, seen) = (rows.lowerBound, rows.upperBound)  // keys 0..<seen
                // S = scale · Q Kᵀ over the visible keys, softmax per row, P V.
                gemm(
                    transposeA: false, transposeB: true, m: rows.count, n: seen, k: g.d, alpha: g.scale,
                    q + r0 * ld, lda: ld, k, ldb: ld, beta: 0, p + r0 * g.t, ldc: g.t)
                for i in rows {
                    let row = p + i * g.t
                    softmaxRow(row, row, i + 1)  // only positions j ≤ i are visible
                    (row + i + 1).update(repeating: 0, count: g.t - i - 1)
                }
                gemm(
                    transposeA: false, transposeB: false, m: rows.count, n: g.d, k: seen,
                    p + r0 * g.t, lda: g.t, v, ldb: ld, beta: 0, o + r0 * g.c, ldc: g.c)
            }
        }
        return (out, probs)
    }

    /// Adds the gradient with respect to qkv into `dqkv`, or writes it there when `overwrite`
    /// (every element of dqkv belongs to exactly one of the products below).
    static func attentionBackward(
        dOut: Tensor, qkv: Tensor, probs: Tensor, heads: Int, dqkv: Tensor, overwrite: Bool = false
    ) {
        let g = attentionGeometry(qkv.shape, heads: heads)
        let beta: Float = overwrite ? 0 : 1
        let ld = 3 * g.c
        let blocks = attentionBlocks(g.t)
        // Each (batch, head) pair touches its own columns of dqkv: one pair per pool task.
        Engine.parallelFor(g.b * g.h) { pair in
            let (b, h) = (pair / g.h, pair % g.h)
            // Written below where read: each block's rows up to the keys it sees.
            let dp = Tensor(uninitialized: [g.t, g.t])
            let q = qkv.pointer + b * g.t * ld + h * g.d
            let k = q + g.c, v = q + 2 * g.c
            let dq = dqkv.pointer + b * g.t * ld + h * g.d
            let dk = dq + g.c, dv = dq + 2 * g.c
            let p = probs.pointer + (b * g.h + h) * g.t * g.t
            let dO = dOut.pointer + b * g.t * g.c + h * g.d
            let ds = dp.pointer
            for rows in blocks {
                let (r0, seen) = (rows.lowerBound, rows.upperBound)
                // dP = dO Vᵀ over the visible keys, then dS = P ⊙ (dP − Σⱼ P⊙dP) on each row's
                // visible part; the masked rest of the block stays 0.
                gemm(
                    transposeA: false, transposeB: true, m: rows.count, n: seen, k: g.d,
                    dO + r0 * g.c, lda: g.c, v, ldb: ld, beta: 0, ds + r0 * g.t, ldc: g.t)
                for i in rows {
                    let dr = ds + i * g.t
                    rlaif_softmax_row_backward(p + i * g.t, dr, i + 1)
                    (dr + i + 1).update(repeating: 0, count: seen - i - 1)
                }
                // dQ = scale · dS K for these rows.
                gemm(
                    transposeA: false, transposeB: false, m: rows.count, n: g.d, k: seen, alpha: g.scale,
                    ds + r0 * g.t, lda: g.t, k, ldb: ld, beta: beta, dq + r0 * ld, ldc: ld)
            }
            for keys in blocks {
                // Key block [c0, c1) is seen by rows c0..<T only: dV = Pᵀ dO, dK = scale · dSᵀ Q.
                let c0 = keys.lowerBound
                let m = g.t - c0
                gemm(
                    transposeA: true, transposeB: false, m: keys.count, n: g.d, k: m,
                    p + c0 * g.t + c0, lda: g.t, dO + c0 * g.c, ldb: g.c, beta: beta, dv + c0 * ld, ldc: ld)
                gemm(
                    transposeA: true, transposeB: false, m: keys.count, n: g.d, k: m, alpha: g.scale,
                    ds + c0 * g.t + c0, lda: g.t, q + c0 * ld, ldb: ld, beta: beta, dk + c0 * ld, ldc: ld)
            }
        }
    }
}

/// One query against a key/value cache: the decode step of causal attention with a KV cache.
extension Kernels {
    /// For each head h: out[h] = softmax(q[h]·K[0..<length, h]ᵀ/√D) · V[0..<length, h].
    /// q and out hold C = heads·D floats; keys and values are caches of rows of C floats (row
    /// stride C), of which the first `length` are valid.
    public static func cachedAttention(
        query q: UnsafePointer<Float>, keys: UnsafePointer<Float>, values: UnsafePointer<Float>,
        length: Int, width c: Int, heads: Int, out: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>
    ) {
        let d = c / heads
        let scale = 1 / Float(d).squareRoot()
        for h in 0..<heads {
            // scores = K_h · q_h, then softmax in place.
            cblas_sgemv(
                CblasRowMajor, CblasNoTrans, Int32(length), Int32(d), scale, keys + h * d, Int32(c), q + h * d, 1, 0,
                scratch, 1)
            softmaxRow(scratch, scratch, length)
            // out_h = V_hᵀ · p
            cblas_sgemv(
                CblasRowMajor, CblasTrans, Int32(length), Int32(d), 1, values + h * d, Int32(c), scratch, 1, 0,
                out + h * d, 1)
        }
    }
}
