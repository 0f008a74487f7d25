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

    /// Returns the output (B, T, C) and the attention probabilities (B, H, T, T) for backward.
    static func attentionForward(qkv: Tensor, heads: Int) -> (out: Tensor, probs: Tensor) {
        let g = attentionGeometry(qkv.shape, heads: heads)
        // Both are written whole below (BLAS with beta 0; every probability row, masked part too).
        let out = Tensor(uninitialized: [g.b, g.t, g.c])
        let probs = Tensor(uninitialized: [g.b, g.h, g.t, g.t])
        let ld = 3 * g.c
        // (batch, head) pairs are independent: one per pool task, each with single-threaded BLAS.
        Engine.parallelFor(g.b * g.h) { pair in
            let (b, h) = (pair / g.h, pair % g.h)
            do {
                let q = qkv.pointer + b * g.t * ld + h * g.d
                let k = q + g.c, v = q + 2 * g.c
                let p = probs.pointer + (b * g.h + h) * g.t * g.t
                gemm(
                    transposeA: false, transposeB: true, m: g.t, n: g.t, k: g.d, alpha: g.scale,
                    q, lda: ld, k, ldb: ld, beta: 0, p, ldc: g.t)
                for i in 0..<g.t {
                    let row = p + i * g.t
                    softmaxRow(row, row, i + 1)  // only positions j ≤ i are visible
                    (row + i + 1).update(repeating: 0, count: g.t - i - 1)
                }
                gemm(
                    transposeA: false, transposeB: false, m: g.t, n: g.d, k: g.t,
                    p, lda: g.t, v, ldb: ld, beta: 0, out.pointer + b * g.t * g.c + h * g.d, ldc: g.c)
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
        // Each (batch, head) pair touches its own columns of dqkv: one pair per pool task.
        Engine.parallelFor(g.b * g.h) { pair in
            let (b, h) = (pair / g.h, pair % g.h)
            let dp = Tensor(uninitialized: [g.t, g.t])
            do {
                let q = qkv.pointer + b * g.t * ld + h * g.d
                let k = q + g.c, v = q + 2 * g.c
                let dq = dqkv.pointer + b * g.t * ld + h * g.d
                let dk = dq + g.c, dv = dq + 2 * g.c
                let p = probs.pointer + (b * g.h + h) * g.t * g.t
                let dOh = dOut.pointer + b * g.t * g.c + h * g.d
                // dV += Pᵀ·dO ; dP = dO·Vᵀ
                gemm(
                    transposeA: true, transposeB: false, m: g.t, n: g.d, k: g.t,
                    p, lda: g.t, dOh, ldb: g.c, beta: beta, dv, ldc: ld)
                gemm(
                    transposeA: false, transposeB: true, m: g.t, n: g.t, k: g.d,
                    dOh, lda: g.c, v, ldb: ld, beta: 0, dp.pointer, ldc: g.t)
                // dS = P ⊙ (dP − Σⱼ P⊙dP), over the visible part of each row; masked entries stay 0.
                for i in 0..<g.t {
                    let pr = p + i * g.t, dr = dp.pointer + i * g.t
                    let dot = simdDot(pr, dr, i + 1)
                    for j in 0...i { dr[j] = pr[j] * (dr[j] - dot) }
                    (dr + i + 1).update(repeating: 0, count: g.t - i - 1)
                }
                // dQ += scale·dS·K ; dK += scale·dSᵀ·Q
                gemm(
                    transposeA: false, transposeB: false, m: g.t, n: g.d, k: g.t, alpha: g.scale,
                    dp.pointer, lda: g.t, k, ldb: ld, beta: beta, dq, ldc: ld)
                gemm(
                    transposeA: true, transposeB: false, m: g.t, n: g.d, k: g.t, alpha: g.scale,
                    dp.pointer, lda: g.t, q, ldb: ld, beta: beta, dk, ldc: ld)
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
