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
        parallelRanges(rows, grain: max(1, parallelGrain / max(c, 1))) { r in
            for row in r {
                let xp = x.pointer + row * c, yp = y.pointer + row * c
                let mu = simdSum(xp, c) / Float(c)
                var v: Float = 0
                for i in 0..<c {
                    let d = xp[i] - mu
                    v += d * d
                }
                let rs = 1 / (v / Float(c) + epsilon).squareRoot()
                for i in 0..<c { yp[i] = (xp[i] - mu) * rs * gamma.pointer[i] + beta.pointer[i] }
                mean.pointer[row] = mu
                rstd.pointer[row] = rs
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
        // γ and β gradients sum over rows: done serially so the order (and the result) is fixed.
        for row in 0..<rows {
            let xp = x.pointer + row * c, dy = dOut.pointer + row * c
            let mu = mean.pointer[row], rs = rstd.pointer[row]
            if let dgamma { for i in 0..<c { dgamma.pointer[i] += dy[i] * (xp[i] - mu) * rs } }
            if let dbeta { for i in 0..<c { dbeta.pointer[i] += dy[i] } }
        }
        guard let dx else { return }
        parallelRanges(rows, grain: max(1, parallelGrain / max(c, 1))) { r in
            for row in r {
                let xp = x.pointer + row * c, dy = dOut.pointer + row * c, d = dx.pointer + row * c
                let mu = mean.pointer[row], rs = rstd.pointer[row]
                var meanDn: Float = 0, meanDnX: Float = 0
                for i in 0..<c {
                    let dn = gamma.pointer[i] * dy[i]
                    meanDn += dn
                    meanDnX += dn * (xp[i] - mu) * rs
                }
                meanDn /= Float(c)
                meanDnX /= Float(c)
                for i in 0..<c {
                    let xhat = (xp[i] - mu) * rs
                    d[i] += (gamma.pointer[i] * dy[i] - meanDn - xhat * meanDnX) * rs
                }
            }
        }
    }
}
