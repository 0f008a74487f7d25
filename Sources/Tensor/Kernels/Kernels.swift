/// Forward/backward kernel pairs, the way llm.c writes them: forward returns new tensors, backward
/// *adds into* the gradients it is given and never overwrites them.
///
/// Kernels are synchronous and touch only their arguments. Inside an engine job they split their
/// loops over the engine's pool (`Engine.parallelRanges`); elsewhere they run on the calling thread.
public enum Kernels {
    /// Below this many elements a loop is not worth splitting over threads.
    static let parallelGrain = 1 << 15
}

// MARK: - Strided walks

extension Kernels {
    /// Visits every element of `shape` in row-major order with its flat index and the matching
    /// offsets into two operands laid out with strides `a` and `b` (0 on broadcast axes): an
    /// odometer over the index that moves both offsets with it.
    @inline(__always)
    static func walk(_ shape: [Int], _ a: [Int], _ b: [Int], _ body: (_ flat: Int, _ a: Int, _ b: Int) -> Void) {
        let rank = shape.count
        var index = [Int](repeating: 0, count: rank)
        var ia = 0, ib = 0
        for o in 0..<shape.reduce(1, *) {
            body(o, ia, ib)
            var d = rank - 1
            while d >= 0 {
                index[d] += 1
                ia += a[d]
                ib += b[d]
                if index[d] < shape[d] { break }
                ia -= a[d] * shape[d]
                ib -= b[d] * shape[d]
                index[d] = 0
                d -= 1
            }
        }
    }

    /// `walk` with one operand.
    @inline(__always)
    static func walk(_ shape: [Int], _ strides: [Int], _ body: (_ flat: Int, _ offset: Int) -> Void) {
        walk(shape, strides, [Int](repeating: 0, count: shape.count)) { o, a, _ in body(o, a) }
    }
}

// MARK: - SIMD helpers

typealias Vec = SIMD16<Float>

@inline(__always) func loadVec(_ p: UnsafePointer<Float>) -> Vec {
    UnsafeRawPointer(p).loadUnaligned(as: Vec.self)
}

@inline(__always) func storeVec(_ v: Vec, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: Vec.self)
}

/// Sum of `n` floats starting at `p`, accumulated in 16 lanes.
@inline(__always) func simdSum(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc = Vec()
    var i = 0
    while i + Vec.scalarCount <= n {
        acc += loadVec(p + i)
        i += Vec.scalarCount
    }
    var s = acc.sum()
    while i < n {
        s += p[i]
        i += 1
    }
    return s
}

/// Dot product of two `n`-float runs, accumulated in 16 lanes.
@inline(__always) func simdDot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc = Vec()
    var i = 0
    while i + Vec.scalarCount <= n {
        acc += loadVec(a + i) * loadVec(b + i)
        i += Vec.scalarCount
    }
    var s = acc.sum()
    while i < n {
        s += a[i] * b[i]
        i += 1
    }
    return s
}

extension Kernels {
    /// Largest of `n` floats starting at `p` (n ≥ 1).
    public static func maximum(_ p: UnsafePointer<Float>, _ n: Int) -> Float { simdMax(p, n) }
}

/// Largest of `n` floats starting at `p` (n ≥ 1).
@inline(__always) func simdMax(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
    var m = -Float.infinity
    var i = 0
    if n >= Vec.scalarCount {
        var acc = loadVec(p)
        i = Vec.scalarCount
        while i + Vec.scalarCount <= n {
            // A masked replace lowers to maxps; the standard library's pointwiseMax went lane by
            // lane through the stack (1.5% of small-preset generation).
            let v = loadVec(p + i)
            acc.replace(with: v, where: v .> acc)
            i += Vec.scalarCount
        }
        m = acc.max()
    }
    while i < n {
        m = Swift.max(m, p[i])
        i += 1
    }
    return m
}
