/// Masks and axis swaps: the ops that move or hide elements without arithmetic.
extension Kernels {
    /// out = value where mask ≠ 0, else x. mask broadcasts to x's shape.
    static func maskedFillForward(_ x: Tensor, mask: Tensor, value: Float) -> Tensor {
        let out = x.copy()
        forEachMasked(shape: x.shape, mask: mask) { out.pointer[$0] = value }
        return out
    }

    /// dx += dOut where mask = 0.
    static func maskedFillBackward(dOut: Tensor, mask: Tensor, dx: Tensor) {
        let pass = dOut.copy()
        forEachMasked(shape: dOut.shape, mask: mask) { pass.pointer[$0] = 0 }
        addInPlace(dx, pass)
    }

    private static func forEachMasked(shape: [Int], mask: Tensor, _ body: (Int) -> Void) {
        precondition(
            Shape.broadcast(shape, mask.shape, op: "maskedFill") == shape,
            "shape mismatch in maskedFill, x: \(shape), mask: \(mask.shape)")
        let m = mask.pointer
        walk(shape, Shape.broadcastStrides(mask.shape, toRank: shape.count)) { o, im in if m[im] != 0 { body(o) } }
    }

    /// Elements `range` along `axis`, copied. x seen as (outer, n, inner).
    static func sliceForward(_ x: Tensor, axis: Int, range: Range<Int>) -> Tensor {
        let g = axisGeometry(x.shape, axis: axis, keepDims: true, op: "slice")
        precondition(
            range.lowerBound >= 0 && range.upperBound <= g.n, "slice: range \(range) outside axis \(axis) of \(x.shape)"
        )
        var shape = x.shape
        shape[Shape.axis(axis, rank: x.rank, op: "slice")] = range.count
        let out = Tensor(uninitialized: shape)
        let run = range.count * g.inner
        for o in 0..<g.outer {
            (out.pointer + o * run).update(from: x.pointer + (o * g.n + range.lowerBound) * g.inner, count: run)
        }
        return out
    }

    /// dx[…, range, …] += dOut.
    static func sliceBackward(dOut: Tensor, xShape: [Int], axis: Int, range: Range<Int>, dx: Tensor) {
        let g = axisGeometry(xShape, axis: axis, keepDims: true, op: "slice")
        let run = range.count * g.inner
        for o in 0..<g.outer {
            let d = dx.pointer + (o * g.n + range.lowerBound) * g.inner, s = dOut.pointer + o * run
            for i in 0..<run { d[i] += s[i] }
        }
    }

    /// A copy of x with axes `a0` and `a1` swapped.
    static func swapAxes(_ x: Tensor, _ a0: Int, _ a1: Int) -> Tensor {
        let i0 = Shape.axis(a0, rank: x.rank, op: "transposed"), i1 = Shape.axis(a1, rank: x.rank, op: "transposed")
        var shape = x.shape
        shape.swapAt(i0, i1)
        let out = Tensor(uninitialized: shape)
        // Walk the output in order; the input offset moves with x's strides permuted.
        var xStrides = [Int](repeating: 1, count: x.rank)
        for d in stride(from: x.rank - 2, through: 0, by: -1) { xStrides[d] = xStrides[d + 1] * x.shape[d + 1] }
        xStrides.swapAt(i0, i1)
        let (src, dst) = (x.pointer, out.pointer)
        walk(shape, xStrides) { o, ix in dst[o] = src[ix] }
        return out
    }
}
