/// exp and tanh without libm calls, so that loops over them vectorize: the transcendental parts
/// of GELU and softmax, which glibc only offers one float at a time.
///
/// exp is Cephes' expf: x = n·ln2 + r with |r| ≤ ½ln2, a degree-6 polynomial for eʳ, and 2ⁿ
/// written into the exponent bits. Rounding and conversion use the 1.5·2²³ trick instead of
/// calls. Only arithmetic, min/max and bit casts remain, which LLVM turns into vector code.
/// Relative error ≤ 2 ulp on [−87, 88]; below, 0 (tested against glibc).
@inlinable @inline(__always) public func fastExp(_ x: Float) -> Float {
    let clamped = max(min(x, 88.7), -87.3)
    let magic: Float = 12_582_912  // 1.5·2²³: adding it rounds to an integer in the low bits
    let shifted = clamped * 1.442_695_04 + magic
    let n = shifted - magic
    var r = clamped - n * 0.693_359_375
    r = r + n * 2.121_944_4e-4
    var p: Float = 1.987_569_15e-4
    p = p * r + 1.398_199_95e-3
    p = p * r + 8.333_451_9e-3
    p = p * r + 4.166_579_59e-2
    p = p * r + 1.666_666_55e-1
    p = p * r + 5.000_000_12e-1
    let y = p * r * r + r + 1
    let exponent = Int32(bitPattern: shifted.bitPattern) &- Int32(bitPattern: magic.bitPattern)
    let scale = Float(bitPattern: UInt32(bitPattern: (exponent &+ 127) &<< 23))
    return y * scale
}

/// tanh(x) = (e^{2x} − 1)/(e^{2x} + 1), x clamped to ±9 (beyond which tanh is ±1 in Float);
/// absolute error ≤ 3e-7 (tested against glibc).
@inline(__always) func fastTanh(_ x: Float) -> Float {
    let e = fastExp(2 * max(min(x, 9), -9))
    return (e - 1) / (e + 1)
}
