/// Layer normalization over the last axis: y = (x − μ) / √(σ² + ε) · γ + β.
extension Kernels {
    /// x: (…, C), gamma/beta: (C). Returns y and, per row, the mean and 1/std for backward.
    static func layerNormForward(_ x: Tensor, gamma: Tensor, beta: Tensor, epsilon: Float)
        -> (y: Tensor, mean: Tensor, rstd: Tensor)
    {
        let c = x.shape.last ?? 1
        precondition(
            gamma.count == c && beta.count == c,
            "shape mismatch in layerNorm, x: \(x.shape), gamma: \(gamma.shape), beta: \(beta.shape)")
        let rows = x.count / max(c, 1)
        let y = Tensor(uninitialized: x.shape), mean = Tensor(zeros: [rows]), rstd = Tensor(zeros: [rows])
        // Raw pointers, taken once: a tensor read inside the loops cost a retain per row.
        let (xs, ys, gs, bs, means, rstds) = (
            x.pointer, y.pointer, gamma.pointer, beta.pointer, mean.pointer, rstd.pointer
        )
        parallelRanges(rows, grain: max(1, parallelGrain / max(c, 1))) { r in
            for row in r {
                let xp = xs + row * c, yp = ys + row * c
                let mu = simdSum(xp, c) / Float(c)
                let v = sumOfSquaredDeviations(xp, mu, c)
                let rs = 1 / (v / Float(c) + epsilon).squareRoot()
                for i in 0..<c { yp[i] = (xp[i] - mu) * rs * gs[i] + bs[i] }
                means[row] = mu
                rstds[row] = rs
            }
        }
        return (y, mean, rstd)
    }

    /// Adds into dx, dgamma, dbeta (each optional).
    static func layerNormBackward(
        dOut: Tensor, x: Tensor, gamma: Tensor, mean: Tensor, rstd: Tensor,
        dx: Tensor?, dgamma: Tensor?, dbeta: Tensor?
    ) {
        let c = x.shape.last ?? 1
        let rows = x.count / max(c, 1)
        // Raw pointers, taken once: a tensor read inside the loops cost a retain per row.
        let (xs, dys, gs, means, rstds) = (x.pointer, dOut.pointer, gamma.pointer, mean.pointer, rstd.pointer)
        // γ and β gradients sum over rows, each column in row order (so the result is fixed).
        let (dgs, dbs) = (dgamma?.pointer, dbeta?.pointer)
        if dgs != nil || dbs != nil {
            parallelColumnBlocks(width: c, rows: rows) { columns in
                for row in 0..<rows {
                    let xp = xs + row * c, dy = dys + row * c
                    let mu = means[row], rs = rstds[row]
                    if let dgs { for i in columns { dgs[i] += dy[i] * (xp[i] - mu) * rs } }
                    if let dbs { for i in columns { dbs[i] += dy[i] } }
                }
            }
        }
        guard let dxs = dx?.pointer else { return }
        parallelRanges(rows, grain: max(1, parallelGrain / max(c, 1))) { r in
            for row in r {
                let xp = xs + row * c, dy = dys + row * c, d = dxs + row * c
                let mu = means[row], rs = rstds[row]
                var (meanDn, meanDnX) = normalizedGradientSums(xp, dy, gs, mu, rs, c)
                meanDn /= Float(c)
                meanDnX /= Float(c)
                for i in 0..<c {
                    let xhat = (xp[i] - mu) * rs
                    d[i] += (gs[i] * dy[i] - meanDn - xhat * meanDnX) * rs
                }
            }
        }
    }

    /// Σ (x − μ)², accumulated in 16 lanes: a single running sum was a chain of dependent adds
    /// (one per element), the slowest part of the forward pass.
    @inline(__always) private static func sumOfSquaredDeviations(_ x: UnsafePointer<Float>, _ mu: Float, _ n: Int)
        -> Float
    {
        var acc = Vec()
        let m = Vec(repeating: mu)
        var i = 0
        while i + Vec.scalarCount <= n {
            let d = loadVec(x + i) - m
            acc += d * d
            i += Vec.scalarCount
        }
        var s = acc.sum()
        while i < n {
            let d = x[i] - mu
            s += d * d
            i += 1
        }
        return s
    }

    /// (Σ γ·dy, Σ γ·dy·x̂) over a row, in 16 lanes, with x̂ = (x − μ)·rstd.
    @inline(__always) private static func normalizedGradientSums(
        _ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ gamma: UnsafePointer<Float>, _ mu: Float, _ rs: Float,
        _ n: Int
    ) -> (Float, Float) {
        var accDn = Vec(), accDnX = Vec()
        let m = Vec(repeating: mu), r = Vec(repeating: rs)
        var i = 0
        while i + Vec.scalarCount <= n {
            let dn = loadVec(gamma + i) * loadVec(dy + i)
            accDn += dn
            accDnX += dn * ((loadVec(x + i) - m) * r)
            i += Vec.scalarCount
        }
        var (sDn, sDnX) = (accDn.sum(), accDnX.sum())
        while i < n {
            let dn = gamma[i] * dy[i]
            sDn += dn
            sDnX += dn * ((x[i] - mu) * rs)
            i += 1
        }
        return (sDn, sDnX)
    }
}
