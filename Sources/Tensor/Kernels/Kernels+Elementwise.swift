#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Elementwise arithmetic with NumPy broadcasting, and the reduction that undoes a broadcast.
extension Kernels {
    public enum BinaryOp: Sendable {
        case add, subtract, multiply, divide

        @inline(__always) func apply(_ a: Float, _ b: Float) -> Float {
            switch self {
            case .add: a + b
            case .subtract: a - b
            case .multiply: a * b
            case .divide: a / b
            }
        }

        @inline(__always) func apply(_ a: Vec, _ b: Vec) -> Vec {
            switch self {
            case .add: a + b
            case .subtract: a - b
            case .multiply: a * b
            case .divide: a / b
            }
        }

        var name: String {
            switch self {
            case .add: "add"
            case .subtract: "subtract"
            case .multiply: "multiply"
            case .divide: "divide"
            }
        }
    }

    /// out = a ⊙ b with broadcasting.
    static func binary(_ a: Tensor, _ b: Tensor, _ op: BinaryOp) -> Tensor {
        let shape = Shape.broadcast(a.shape, b.shape, op: op.name)
        let out = Tensor(uninitialized: shape)
        let n = out.count
        let ap = a.pointer, bp = b.pointer, outp = out.pointer
        if a.count == n && b.count == n {
            parallelRanges(n) { r in binarySame(op, ap + r.lowerBound, bp + r.lowerBound, outp + r.lowerBound, r.count)
            }
        } else if a.count == n && b.count == 1 {
            let scalar = bp[0]
            parallelRanges(n) { r in binaryScalar(op, ap + r.lowerBound, scalar, outp + r.lowerBound, r.count) }
        } else if a.count == n && isTrailingBroadcast(b.shape, of: shape) {
            // b repeats every b.count elements of a (bias over rows, or a scalar).
            let width = b.count
            parallelRanges(n / width, grain: max(1, parallelGrain / max(width, 1))) { rows in
                for r in rows { binarySame(op, ap + r * width, bp, outp + r * width, width) }
            }
        } else {
            binaryStrided(a, b, out, op)
        }
        return out
    }

    /// True when `small` equals the trailing axes of `shape` (leading 1s ignored).
    static func isTrailingBroadcast(_ small: [Int], of shape: [Int]) -> Bool {
        let trimmed = small.drop { $0 == 1 }
        return trimmed.count <= shape.count && Array(shape.suffix(trimmed.count)) == Array(trimmed)
    }

    @inline(__always) static func parallelRanges(_ n: Int, grain: Int = parallelGrain, _ body: (Range<Int>) -> Void) {
        Engine.parallelRanges(n, grain: grain, body)
    }

    /// Splits the columns `0..<width` of a sum over `rows` rows into blocks of whole vectors, one
    /// range per thread: each column is still summed by one thread in row order (the same bits
    /// whatever the thread count).
    static func parallelColumnBlocks(width: Int, rows: Int, _ body: (Range<Int>) -> Void) {
        let blocks = (width + Vec.scalarCount - 1) / Vec.scalarCount
        parallelRanges(blocks, grain: max(1, parallelGrain / max(rows * Vec.scalarCount, 1))) { b in
            body((b.lowerBound * Vec.scalarCount)..<min(width, b.upperBound * Vec.scalarCount))
        }
    }

    /// out = a op b over `n` floats, vectorized; `out` may be `a` (each element is read before it
    /// is written). Inlined, so a caller's constant `op` leaves no switch in the loop.
    @inline(__always) static func binarySame(
        _ op: BinaryOp, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>,
        _ n: Int
    ) {
        var i = 0
        while i + Vec.scalarCount <= n {
            storeVec(op.apply(loadVec(a + i), loadVec(b + i)), out + i)
            i += Vec.scalarCount
        }
        while i < n {
            out[i] = op.apply(a[i], b[i])
            i += 1
        }
    }

    private static func binaryScalar(
        _ op: BinaryOp, _ a: UnsafePointer<Float>, _ b: Float, _ out: UnsafeMutablePointer<Float>, _ n: Int
    ) {
        let vb = Vec(repeating: b)
        var i = 0
        while i + Vec.scalarCount <= n {
            storeVec(op.apply(loadVec(a + i), vb), out + i)
            i += Vec.scalarCount
        }
        while i < n {
            out[i] = op.apply(a[i], b)
            i += 1
        }
    }

    /// General broadcasting through per-operand strides (0 on broadcast axes).
    private static func binaryStrided(_ a: Tensor, _ b: Tensor, _ out: Tensor, _ op: BinaryOp) {
        let rank = out.rank
        let sa = Shape.broadcastStrides(a.shape, toRank: rank), sb = Shape.broadcastStrides(b.shape, toRank: rank)
        let (pa, pb, po) = (a.pointer, b.pointer, out.pointer)
        walk(out.shape, sa, sb) { o, ia, ib in po[o] = op.apply(pa[ia], pb[ib]) }
    }

    /// Sums `grad` (of a broadcast result) down to `shape`, the operand's shape, and adds it into `into`.
    static func accumulateReduced(_ grad: Tensor, to shape: [Int], into: Tensor) {
        let n = grad.count
        if shape.reduce(1, *) == n {
            addInPlace(into, grad)
            return
        }
        let width = shape.reduce(1, *)
        if isTrailingBroadcast(shape, of: grad.shape) {
            // Sum rows of width `width`; a column-sum in row order stays vectorized.
            let rows = n / width
            let dst = into.pointer, src = grad.pointer
            parallelColumnBlocks(width: width, rows: rows) { columns in
                let (lo, count) = (columns.lowerBound, columns.count)
                for r in 0..<rows { binarySame(.add, dst + lo, src + r * width + lo, dst + lo, count) }
            }
            return
        }
        let (dst, src) = (into.pointer, grad.pointer)
        walk(grad.shape, Shape.broadcastStrides(shape, toRank: grad.rank)) { o, it in dst[it] += src[o] }
    }

    /// into += x, elementwise; equal element counts.
    static func addInPlace(_ into: Tensor, _ x: Tensor) {
        precondition(into.count == x.count, "shape mismatch in accumulate, into: \(into.shape), x: \(x.shape)")
        let dst = into.pointer, src = x.pointer
        parallelRanges(x.count) { r in
            binarySame(.add, dst + r.lowerBound, src + r.lowerBound, dst + r.lowerBound, r.count)
        }
    }

    /// into += alpha · x, elementwise.
    static func addScaledInPlace(_ into: Tensor, _ x: Tensor, alpha: Float) {
        precondition(into.count == x.count, "shape mismatch in accumulate, into: \(into.shape), x: \(x.shape)")
        let dst = into.pointer, src = x.pointer
        let va = Vec(repeating: alpha)
        parallelRanges(x.count) { r in
            var i = r.lowerBound
            while i + Vec.scalarCount <= r.upperBound {
                storeVec(loadVec(dst + i) + va * loadVec(src + i), dst + i)
                i += Vec.scalarCount
            }
            while i < r.upperBound {
                dst[i] += alpha * src[i]
                i += 1
            }
        }
    }

    /// out[i] = f(x[i]), split over threads.
    @inline(__always)
    static func map(_ x: Tensor, _ f: (Float) -> Float) -> Tensor {
        let out = Tensor(uninitialized: x.shape)
        let src = x.pointer, dst = out.pointer
        parallelRanges(x.count, grain: parallelGrain / 8) { r in
            for i in r { dst[i] = f(src[i]) }
        }
        return out
    }

    /// into[i] += f(a[i], b[i]), split over threads: the shape of most unary backward rules.
    @inline(__always)
    static func accumulateMap(_ into: Tensor, _ a: Tensor, _ b: Tensor, _ f: (Float, Float) -> Float) {
        let dst = into.pointer, pa = a.pointer, pb = b.pointer
        parallelRanges(into.count, grain: parallelGrain / 8) { r in
            for i in r { dst[i] += f(pa[i], pb[i]) }
        }
    }
}
