import CKernels

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

    /// y = softmax(x) over `n` floats (y may be x); returns log Σ exp(x), which the same
    /// exponentials give for free. The loop runs in C (`CKernels`), compiled for AVX-512 and AVX2 as
    /// well as the baseline (docs/PERFORMANCE.md).
    @inline(__always) @discardableResult
    static func softmaxRow(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) -> Float {
        rlaif_softmax_row(x, y, n)
    }

    /// The Swift statement of `softmaxRow` that the C loops follow operation for operation (tests
    /// hold them to the same bits): 16 running lane maxima, the exponentials, 16 lane sums added
    /// in lane order and then the tail, the scaling.
    static func softmaxRowReference(_ x: [Float]) -> (y: [Float], logSumExp: Float) {
        let lanes = 16, n = x.count
        var m = -Float.infinity
        var i = 0
        if n >= lanes {
            var top = Array(x[0..<lanes])
            i = lanes
            while i + lanes <= n {
                for l in 0..<lanes where x[i + l] > top[l] { top[l] = x[i + l] }
                i += lanes
            }
            for l in 0..<lanes where top[l] > m { m = top[l] }
        }
        while i < n {
            if x[i] > m { m = x[i] }
            i += 1
        }
        if m == -.infinity { return ([Float](repeating: 0, count: n), -.infinity) }
        var y = x.map { fastExp($0 - m) }
        var sums = [Float](repeating: 0, count: lanes)
        i = 0
        while i + lanes <= n {
            for l in 0..<lanes { sums[l] += y[i + l] }
            i += lanes
        }
        var s: Float = 0
        for l in 0..<lanes { s += sums[l] }
        while i < n {
            s += y[i]
            i += 1
        }
        let inv = 1 / s
        for j in 0..<n { y[j] *= inv }
        return (y, m + logf(s))
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

    /// log Σ exp(x) from e = exp(x − m) already computed (`fastExp`, as the function above
    /// computes them): the same sums in the same order, so the same bits, one pass fewer.
    public static func logSumExp(exponentials e: UnsafePointer<Float>, _ n: Int, maximum m: Float) -> Float {
        if m == -.infinity { return -.infinity }
        let whole = n / Vec.scalarCount * Vec.scalarCount
        var partial = Vec(repeating: 0)
        for j in stride(from: 0, to: whole, by: Vec.scalarCount) {
            partial += UnsafeRawPointer(e + j).loadUnaligned(as: Vec.self)
        }
        var s = partial.sum()
        for i in whole..<n { s += e[i] }
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
