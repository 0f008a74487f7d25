/// Sum, mean and max along one axis, and their backward rules.
///
/// A tensor reduced along `axis` is seen as (outer, n, inner): n is the reduced length.
extension Kernels {
    struct AxisGeometry {
        var outer: Int, n: Int, inner: Int
        var outShape: [Int]
    }

    static func axisGeometry(_ shape: [Int], axis: Int, keepDims: Bool, op: String) -> AxisGeometry {
        let a = Shape.axis(axis, rank: shape.count, op: op)
        var out = shape
        if keepDims { out[a] = 1 } else { out.remove(at: a) }
        return AxisGeometry(
            outer: shape[..<a].reduce(1, *), n: shape[a], inner: shape[(a + 1)...].reduce(1, *), outShape: out)
    }

    /// Sum along `axis`, or of every element when `axis` is nil (result shape `[]`).
    static func sumForward(_ x: Tensor, axis: Int?, keepDims: Bool) -> Tensor {
        guard let axis else {
            var total = 0.0
            // Chunks of fixed size summed in order: the result does not depend on the thread count.
            let chunk = 4096
            var i = 0
            while i < x.count {
                total += Double(simdSum(x.pointer + i, min(chunk, x.count - i)))
                i += chunk
            }
            return Tensor(scalar: Float(total))
        }
        let g = axisGeometry(x.shape, axis: axis, keepDims: keepDims, op: "sum")
        let out = Tensor(zeros: g.outShape)
        let src = x.pointer, dst = out.pointer
        if g.inner == 1 {
            parallelRanges(g.outer, grain: max(1, parallelGrain / max(g.n, 1))) { rows in
                for o in rows { dst[o] = simdSum(src + o * g.n, g.n) }
            }
        } else {
            parallelRanges(g.outer, grain: 1) { rows in
                for o in rows {
                    let d = dst + o * g.inner
                    for j in 0..<g.n {
                        let s = src + (o * g.n + j) * g.inner
                        for i in 0..<g.inner { d[i] += s[i] }
                    }
                }
            }
        }
        return out
    }

    /// dx += broadcast of dOut along the reduced axis, times `scale` (1 for sum, 1/n for mean).
    static func sumBackward(dOut: Tensor, xShape: [Int], axis: Int?, scale: Float, dx: Tensor) {
        guard let axis else {
            let g = dOut.item * scale
            let dst = dx.pointer
            parallelRanges(dx.count) { r in for i in r { dst[i] += g } }
            return
        }
        let g = axisGeometry(xShape, axis: axis, keepDims: true, op: "sum")
        let src = dOut.pointer, dst = dx.pointer
        parallelRanges(g.outer, grain: 1) { rows in
            for o in rows {
                for j in 0..<g.n {
                    let d = dst + (o * g.n + j) * g.inner
                    let s = src + o * g.inner
                    for i in 0..<g.inner { d[i] += scale * s[i] }
                }
            }
        }
    }

    /// Max along `axis`, with the flat index (into x) of each winner for the backward pass.
    /// Ties go to the first occurrence.
    static func maxForward(_ x: Tensor, axis: Int, keepDims: Bool) -> (Tensor, [Int]) {
        let g = axisGeometry(x.shape, axis: axis, keepDims: keepDims, op: "max")
        precondition(g.n > 0, "max: empty axis \(axis) in shape \(x.shape)")
        let out = Tensor(zeros: g.outShape)
        var winners = [Int](repeating: 0, count: g.outer * g.inner)
        let src = x.pointer
        for o in 0..<g.outer {
            for i in 0..<g.inner {
                var best = o * g.n * g.inner + i
                for j in 1..<g.n {
                    let k = (o * g.n + j) * g.inner + i
                    if src[k] > src[best] { best = k }
                }
                winners[o * g.inner + i] = best
                out.pointer[o * g.inner + i] = src[best]
            }
        }
        return (out, winners)
    }

    static func maxBackward(dOut: Tensor, winners: [Int], dx: Tensor) {
        for (o, k) in winners.enumerated() { dx.pointer[k] += dOut.pointer[o] }
    }
}
