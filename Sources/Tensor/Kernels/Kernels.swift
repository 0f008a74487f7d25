/// Forward/backward kernel pairs, the way llm.c writes them: forward returns new tensors, backward
/// *adds into* the gradients it is given and never overwrites them.
///
/// Kernels are synchronous and touch only their arguments. Inside an engine job they split their
/// loops over the engine's pool (`Engine.parallelRanges`); elsewhere they run on the calling thread.
public enum Kernels {
    /// Below this many elements a loop is not worth splitting over threads.
    static let parallelGrain = 1 << 15
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

/// Largest of `n` floats starting at `p` (n ≥ 1).
@inline(__always) func simdMax(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
    var m = -Float.infinity
    var i = 0
    if n >= Vec.scalarCount {
        var acc = loadVec(p)
        i = Vec.scalarCount
        while i + Vec.scalarCount <= n {
            acc = pointwiseMax(acc, loadVec(p + i))
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
