import CKernels
import COpenBLAS
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Where attention's queries, keys and values live, and which keys each query sees.
///
/// Q holds `heads` heads of D floats per position, K and V `kvHeads` (query head h reads key/value
/// head h / (heads / kvHeads): grouped-query attention; equal counts are multi-head attention).
/// Rows are `ldq`/`ldk`/`ldv` floats apart, so GPT-2's packed (B, T, 3C) projection and Llama's
/// separate q, k, v tensors are read in place. Position i sees keys j ≤ i, and with a `window` only
/// the last `window` of them (i − window < j), as Mistral's sliding window.
public struct AttentionLayout: Sendable, Equatable {
    public var batch: Int, time: Int, heads: Int, kvHeads: Int, headDim: Int
    public var ldq: Int, ldk: Int, ldv: Int
    public var window: Int?

    var group: Int { heads / kvHeads }
    var scale: Float { 1 / Float(headDim).squareRoot() }
    var outWidth: Int { heads * headDim }

    /// The first key position `i` sees.
    @inline(__always) func firstKey(_ i: Int) -> Int { window.map { Swift.max(0, i - $0 + 1) } ?? 0 }

    /// GPT-2's packed projection: qkv (B, T, 3C) with Q, K, V side by side.
    static func packed(_ qkv: [Int], heads: Int) -> AttentionLayout {
        precondition(
            qkv.count == 3 && qkv[2] % 3 == 0,
            "causalSelfAttention: qkv must be (batch, time, 3·channels), got \(qkv)")
        let c = qkv[2] / 3
        precondition(heads > 0 && c % heads == 0, "causalSelfAttention: \(heads) heads do not divide \(c) channels")
        return AttentionLayout(
            batch: qkv[0], time: qkv[1], heads: heads, kvHeads: heads, headDim: c / heads, ldq: 3 * c, ldk: 3 * c,
            ldv: 3 * c, window: nil)
    }

    /// Separate q (B, T, H·D), k and v (B, T, Hkv·D).
    static func separate(q: [Int], k: [Int], v: [Int], heads: Int, kvHeads: Int, window: Int?) -> AttentionLayout {
        precondition(
            q.count == 3 && k == v && k.count == 3 && q[0] == k[0] && q[1] == k[1],
            "attention: q \(q), k \(k), v \(v) must be (batch, time, heads·dim) alike")
        precondition(
            heads > 0 && kvHeads > 0 && heads % kvHeads == 0 && q[2] % heads == 0,
            "attention: \(heads) query heads, \(kvHeads) key/value heads, width \(q[2])")
        let d = q[2] / heads
        precondition(k[2] == kvHeads * d, "attention: k width \(k[2]) is not \(kvHeads) heads of \(d)")
        precondition(window.map { $0 > 0 } ?? true, "attention: window must be positive")
        return AttentionLayout(
            batch: q[0], time: q[1], heads: heads, kvHeads: kvHeads, headDim: d, ldq: q[2], ldk: k[2], ldv: k[2],
            window: window)
    }
}

/// Causal attention, per (b, h): S = QKᵀ/√D, P = softmax(S over the visible keys), O = PV.
/// out: (B, T, H·D). Q, K and V are read in place through BLAS leading dimensions.
extension Kernels {
    /// Rows of attention taken together. Row block [r0, r1) sees keys 0..<r1 only, so the products
    /// skip the masked blocks above the diagonal: at T = 128 four blocks do 5/8 of the full
    /// products' work.
    static let attentionBlock = 32

    /// The blocks [r0, r1) of `t` rows.
    static func attentionBlocks(_ t: Int) -> [Range<Int>] {
        stride(from: 0, to: t, by: attentionBlock).map { $0..<min(t, $0 + attentionBlock) }
    }

    /// Returns the output (B, T, H·D) and the attention probabilities (B, H, T, T) for backward.
    static func attentionForward(
        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, layout g: AttentionLayout
    ) -> (out: Tensor, probs: Tensor) {
        let (t, d, w) = (g.time, g.headDim, g.outWidth)
        // Both are written whole below (every output row; every probability row, masked part too).
        let out = Tensor(uninitialized: [g.batch, t, w])
        let probs = Tensor(uninitialized: [g.batch, g.heads, t, t])
        let blocks = attentionBlocks(t)
        // (batch, head) pairs are independent: one per pool task, each with single-threaded BLAS.
        Engine.parallelFor(g.batch * g.heads) { pair in
            let (b, h) = (pair / g.heads, pair % g.heads)
            let qh = q + b * t * g.ldq + h * d
            let kh = k + b * t * g.ldk + (h / g.group) * d, vh = v + b * t * g.ldv + (h / g.group) * d
            let p = probs.pointer + (b * g.heads + h) * t * t
            let o = out.pointer + b * t * w + h * d
            for rows in blocks {
                let (r0, seen) = (rows.lowerBound, rows.upperBound)  // keys ks..<seen
                let ks = g.firstKey(r0)
                gemm(
                    transposeA: false, transposeB: true, m: rows.count, n: seen - ks, k: d, alpha: g.scale,
                    qh + r0 * g.ldq, lda: g.ldq, kh + ks * g.ldk, ldb: g.ldk, beta: 0, p + r0 * t + ks, ldc: t)
                for i in rows {
                    let row = p + i * t, lo = g.firstKey(i)
                    row.update(repeating: 0, count: lo)
                    softmaxRow(row + lo, row + lo, i + 1 - lo)  // only positions lo...i are visible
                    (row + i + 1).update(repeating: 0, count: t - i - 1)
                }
                gemm(
                    transposeA: false, transposeB: false, m: rows.count, n: d, k: seen - ks,
                    p + r0 * t + ks, lda: t, vh + ks * g.ldv, ldb: g.ldv, beta: 0, o + r0 * w, ldc: w)
            }
        }
        return (out, probs)
    }

    /// Adds the gradients with respect to q, k and v into `dq`, `dk`, `dv` (rows laid out as the
    /// inputs), or writes them there where `overwrite` says so (q, k, v). Each key/value head's query heads run in
    /// order inside one task, so grouped heads add into dK and dV in a fixed order.
    static func attentionBackward(
        dOut: Tensor, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, probs: Tensor,
        layout g: AttentionLayout, dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>,
        dv: UnsafeMutablePointer<Float>, overwrite: (q: Bool, k: Bool, v: Bool) = (false, false, false)
    ) {
        let (t, d, w) = (g.time, g.headDim, g.outWidth)
        let blocks = attentionBlocks(t)
        Engine.parallelFor(g.batch * g.kvHeads) { pair in
            let (b, kvh) = (pair / g.kvHeads, pair % g.kvHeads)
            // With a window, key blocks read cells of dS that no row block writes: they must be 0.
            // Otherwise every cell read is written below.
            let dp = g.window == nil ? Tensor(uninitialized: [t, t]) : Tensor(zeros: [t, t])
            let ds = dp.pointer
            let kh = k + b * t * g.ldk + kvh * d, vh = v + b * t * g.ldv + kvh * d
            let dkh = dk + b * t * g.ldk + kvh * d, dvh = dv + b * t * g.ldv + kvh * d
            for h in (kvh * g.group)..<((kvh + 1) * g.group) {
                let qh = q + b * t * g.ldq + h * d, dqh = dq + b * t * g.ldq + h * d
                let p = probs.pointer + (b * g.heads + h) * t * t
                let dO = dOut.pointer + b * t * w + h * d
                let first = h == kvh * g.group
                let betaQ: Float = overwrite.q ? 0 : 1
                let (betaK, betaV): (Float, Float) = (overwrite.k && first ? 0 : 1, overwrite.v && first ? 0 : 1)
                for rows in blocks {
                    let (r0, seen) = (rows.lowerBound, rows.upperBound)
                    let ks = g.firstKey(r0)
                    // dP = dO Vᵀ over the visible keys, then dS = P ⊙ (dP − Σⱼ P⊙dP) on each row's
                    // visible part; the masked rest of the block stays 0.
                    gemm(
                        transposeA: false, transposeB: true, m: rows.count, n: seen - ks, k: d,
                        dO + r0 * w, lda: w, vh + ks * g.ldv, ldb: g.ldv, beta: 0, ds + r0 * t + ks, ldc: t)
                    for i in rows {
                        let dr = ds + i * t, lo = g.firstKey(i)
                        rlaif_softmax_row_backward(p + i * t + lo, dr + lo, i + 1 - lo)
                        (dr + ks).update(repeating: 0, count: lo - ks)
                        (dr + i + 1).update(repeating: 0, count: seen - i - 1)
                    }
                    // dQ = scale · dS K for these rows.
                    gemm(
                        transposeA: false, transposeB: false, m: rows.count, n: d, k: seen - ks, alpha: g.scale,
                        ds + r0 * t + ks, lda: t, kh + ks * g.ldk, ldb: g.ldk, beta: betaQ, dqh + r0 * g.ldq,
                        ldc: g.ldq)
                }
                for keys in blocks {
                    // Key block [c0, c1) is seen by rows c0..<end only: dV = Pᵀ dO, dK = scale · dSᵀ Q.
                    let c0 = keys.lowerBound
                    let m = (g.window.map { Swift.min(t, keys.upperBound - 1 + $0) } ?? t) - c0
                    gemm(
                        transposeA: true, transposeB: false, m: keys.count, n: d, k: m,
                        p + c0 * t + c0, lda: t, dO + c0 * w, ldb: w, beta: betaV, dvh + c0 * g.ldv, ldc: g.ldv)
                    gemm(
                        transposeA: true, transposeB: false, m: keys.count, n: d, k: m, alpha: g.scale,
                        ds + c0 * t + c0, lda: t, qh + c0 * g.ldq, ldb: g.ldq, beta: betaK, dkh + c0 * g.ldk,
                        ldc: g.ldk)
                }
            }
        }
    }
}

/// One query against a key/value cache: the decode step of causal attention with a KV cache.
extension Kernels {
    /// For each head h: out[h] = softmax(q[h]·K[keys, h/group]ᵀ/√D) · V[keys, h/group], over the
    /// cache rows 0..<length (the last `window` of them with a window). q and out hold heads·D
    /// floats; the caches hold rows of kvHeads·D floats.
    public static func cachedAttention(
        query q: UnsafePointer<Float>, keys: UnsafePointer<Float>, values: UnsafePointer<Float>,
        length: Int, heads: Int, kvHeads: Int, headDim d: Int, window: Int? = nil,
        out: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>
    ) {
        let scale = 1 / Float(d).squareRoot()
        let ld = kvHeads * d, group = heads / kvHeads
        let first = window.map { max(0, length - $0) } ?? 0
        let (k0, v0, n) = (keys + first * ld, values + first * ld, length - first)
        for h in 0..<heads {
            let kv = (h / group) * d
            // scores = K_h · q_h, then softmax in place.
            cblas_sgemv(
                CblasRowMajor, CblasNoTrans, Int32(n), Int32(d), scale, k0 + kv, Int32(ld), q + h * d, 1, 0,
                scratch, 1)
            softmaxRow(scratch, scratch, n)
            // out_h = V_hᵀ · p
            cblas_sgemv(
                CblasRowMajor, CblasTrans, Int32(n), Int32(d), 1, v0 + kv, Int32(ld), scratch, 1, 0,
                out + h * d, 1)
        }
    }
}
