/// RMS normalization over the last axis (Llama's): y = w ⊙ (x / √(mean(x²) + ε)).
extension Kernels {
    /// x: (…, C), weight: (C). Returns y and, per row, 1/rms for backward.
    static func rmsNormForward(_ x: Tensor, weight: Tensor, epsilon: Float) -> (y: Tensor, rstd: Tensor) {
        let c = x.shape.last ?? 1
        precondition(weight.count == c, "shape mismatch in rmsNorm, x: \(x.shape), weight: \(weight.shape)")
        let rows = x.count / max(c, 1)
        let y = Tensor(uninitialized: x.shape), rstd = Tensor(zeros: [rows])
        let (xs, ys, ws, rs) = (x.pointer, y.pointer, weight.pointer, rstd.pointer)
        parallelRanges(rows, grain: max(1, parallelGrain / max(c, 1))) { r in
            for row in r {
                let xp = xs + row * c, yp = ys + row * c
                let inverse = 1 / (simdDot(xp, xp, c) / Float(c) + epsilon).squareRoot()
                for i in 0..<c { yp[i] = ws[i] * (xp[i] * inverse) }
                rs[row] = inverse
            }
        }
        return (y, rstd)
    }

    /// Adds into dx and dweight (each optional). With g = w ⊙ dy:
    /// dx = r·g − x·r³·(g·x)/C, dw = Σ_rows dy ⊙ x·r.
    static func rmsNormBackward(dOut: Tensor, x: Tensor, weight: Tensor, rstd: Tensor, dx: Tensor?, dweight: Tensor?) {
        let c = x.shape.last ?? 1
        let rows = x.count / max(c, 1)
        let (xs, dys, ws, rs) = (x.pointer, dOut.pointer, weight.pointer, rstd.pointer)
        // The weight's gradient sums over rows, each column in row order (so the result is fixed).
        if let dws = dweight?.pointer {
            parallelColumnBlocks(width: c, rows: rows) { columns in
                for row in 0..<rows {
                    let xp = xs + row * c, dy = dys + row * c, inverse = rs[row]
                    for i in columns { dws[i] += dy[i] * (xp[i] * inverse) }
                }
            }
        }
        guard let dxs = dx?.pointer else { return }
        parallelRanges(rows, grain: max(1, parallelGrain / max(c, 1))) { r in
            let g = UnsafeMutablePointer<Float>.allocate(capacity: c)
            defer { g.deallocate() }
            for row in r {
                let xp = xs + row * c, dy = dys + row * c, d = dxs + row * c, inverse = rs[row]
                for i in 0..<c { g[i] = ws[i] * dy[i] }
                let k = simdDot(g, xp, c) * inverse * inverse * inverse / Float(c)
                for i in 0..<c { d[i] += inverse * g[i] - xp[i] * k }
            }
        }
    }
}
