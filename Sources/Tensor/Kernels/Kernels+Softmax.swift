#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Softmax and log-softmax along the last axis.
extension Kernels {
    /// y = softmax(x) over rows of the last axis. Rows of -inf only give a row of zeros.
    static func softmaxForward(_ x: Tensor) -> Tensor {
        let n = x.shape.last ?? 1
        let out = Tensor(uninitialized: x.shape)
        let rows = x.count / max(n, 1)
        parallelRanges(rows, grain: max(1, parallelGrain / max(n, 1))) { r in
            for row in r { softmaxRow(x.pointer + row * n, out.pointer + row * n, n) }
        }
        return out
    }

    @inline(__always)
    /// Also returns log Σ exp(x), which the same exponentials give for free.
    @discardableResult
    static func softmaxRow(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) -> Float {
        let m = simdMax(x, n)
        if m == -.infinity {
            y.update(repeating: 0, count: n)
            return -.infinity
        }
        // y = exp(x − m) (a loop that vectorizes), then normalized.
        for i in 0..<n { y[i] = fastExp(x[i] - m) }
        let s = simdSum(y, n)
        let inv = 1 / s
        for i in 0..<n { y[i] *= inv }
        return m + logf(s)
    }

    /// Softmax over rows of the last axis, and each row's log Σ exp: log-probabilities are then
    /// x − lse, with no second pass of exponentials.
    static func softmaxWithLogSumExp(_ x: Tensor) -> (probs: Tensor, logSumExp: [Float]) {
        let n = x.shape.last ?? 1
        let rows = x.count / max(n, 1)
        let out = Tensor(uninitialized: x.shape)
        var lse = [Float](repeating: 0, count: rows)
        lse.withUnsafeMutableBufferPointer { l in
            let lp = l.baseAddress!
            parallelRanges(rows, grain: max(1, parallelGrain / max(n, 1))) { r in
                for row in r { lp[row] = softmaxRow(x.pointer + row * n, out.pointer + row * n, n) }
            }
        }
        return (out, lse)
    }

    /// dx += y ⊙ (dy − Σ dy⊙y), row by row.
    static func softmaxBackward(dOut: Tensor, y: Tensor, dx: Tensor) {
        let n = y.shape.last ?? 1
        let rows = y.count / max(n, 1)
        parallelRanges(rows, grain: max(1, parallelGrain / max(n, 1))) { r in
            for row in r {
                let yp = y.pointer + row * n, dy = dOut.pointer + row * n, d = dx.pointer + row * n
                let dot = simdDot(yp, dy, n)
                for i in 0..<n { d[i] += yp[i] * (dy[i] - dot) }
            }
        }
    }

    /// y = x − max − log Σ exp(x − max), row by row.
    static func logSoftmaxForward(_ x: Tensor) -> Tensor {
        let n = x.shape.last ?? 1
        let out = Tensor(uninitialized: x.shape)
        let rows = x.count / max(n, 1)
        parallelRanges(rows, grain: max(1, parallelGrain / max(n, 1))) { r in
            for row in r {
                let xp = x.pointer + row * n, yp = out.pointer + row * n
                let lse = logSumExp(xp, n)
                for i in 0..<n { yp[i] = xp[i] - lse }
            }
        }
        return out
    }

    @inline(__always)
    public static func logSumExp(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        logSumExp(x, n, maximum: simdMax(x, n))
    }

    /// log Σ exp(x) for a caller that already has the largest element `m` (`Kernels.maximum`).
    public static func logSumExp(_ x: UnsafePointer<Float>, _ n: Int, maximum m: Float) -> Float {
        if m == -.infinity { return -.infinity }
        // Sixteen partial sums, so the order is fixed. The exponentials go through a small buffer
        // in a plain loop, which vectorizes; filled lane by lane, a SIMD16 made a round trip
        // through the stack per element (6% of GPT-2 124M generation, all in this loop).
        let whole = n / Vec.scalarCount * Vec.scalarCount
        var s: Float = withUnsafeTemporaryAllocation(of: Float.self, capacity: 256) { buffer in
            let e = buffer.baseAddress!
            var partial = Vec(repeating: 0)
            var i = 0
            while i < whole {
                let count = min(256, whole - i)
                for j in 0..<count { e[j] = fastExp(x[i + j] - m) }
                for j in stride(from: 0, to: count, by: Vec.scalarCount) {
                    partial += UnsafeRawPointer(e + j).loadUnaligned(as: Vec.self)
                }
                i += count
            }
            return partial.sum()
        }
        for i in whole..<n { s += fastExp(x[i] - m) }
        return m + logf(s)
    }

    /// dx += dy − softmax(x) · Σ dy, with softmax(x) = exp(y).
    static func logSoftmaxBackward(dOut: Tensor, y: Tensor, dx: Tensor) {
        let n = y.shape.last ?? 1
        let rows = y.count / max(n, 1)
        parallelRanges(rows, grain: max(1, parallelGrain / max(n, 1))) { r in
            for row in r {
                let yp = y.pointer + row * n, dy = dOut.pointer + row * n, d = dx.pointer + row * n
                let total = simdSum(dy, n)
                for i in 0..<n { d[i] += dy[i] - expf(yp[i]) * total }
            }
        }
    }
}
