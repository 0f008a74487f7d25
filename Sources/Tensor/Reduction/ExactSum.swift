import CKernels

/// Sums of gradients that do not depend on the order of addition: each value is rounded once to
/// a fixed-point integer (a multiple of 2^−fractionBits), and integers add exactly.
///
/// This is what lets a run give bit-identical weights with 1, 2 or 4 workers and after a
/// re-formed ring: whichever worker computed which micro-batch, and in whatever order partial
/// sums meet, the integer total is the same, and so is the Float made from it.
///
/// ```swift
/// var total = ExactSum(count: params.count)
/// try total.add(microBatchGradient)          // on any worker, in any order
/// let reduced = total.value()                 // identical bits everywhere
/// ```
public struct ExactSum: Sendable, Equatable {
    /// Resolution 2^−fractionBits; the largest representable magnitude is 2^(63 − fractionBits).
    public let fractionBits: Int
    public internal(set) var units: [Int64]

    /// 2^−32 ≈ 2.3e-10 resolution, magnitudes below 2^31 ≈ 2.1e9. Finer than a Float32 gradient
    /// element's own rounding for every |element| above 2^−9, and coarse enough that a partial sum
    /// of gradient means fits in 32 bits, so the all-reduce sends 4 bytes per element as MPI
    /// does (`PackedUnits`).
    public static let defaultFractionBits = 32

    public init(count: Int, fractionBits: Int = defaultFractionBits) {
        precondition((8...56).contains(fractionBits), "ExactSum: fractionBits must be in 8...56")
        self.fractionBits = fractionBits
        units = Array(repeating: 0, count: count)
    }

    init(units: [Int64], fractionBits: Int) {
        self.fractionBits = fractionBits
        self.units = units
    }

    public struct Overflow: Error, CustomStringConvertible, Equatable, Sendable {
        public let index: Int
        public let value: Double
        public var description: String {
            "gradient element \(index) = \(value) is beyond the exact-sum range; lower fractionBits or clip gradients"
        }
    }

    /// The fixed-point units of one value (round to nearest, ties to even), or nil when out of
    /// range or not finite.
    @inline(__always) static func quantize(_ x: Float, scale: Double) -> Int64? {
        let scaled = (Double(x) * scale).rounded(.toNearestOrEven)
        guard abs(scaled) < 0x1p62 else { return nil }  // false for NaN and infinities too
        return Int64(scaled)
    }

    /// Adds a tensor of `units.count` elements. On overflow nothing is added.
    public mutating func add(_ t: Tensor) throws(Overflow) {
        precondition(t.count == units.count, "ExactSum: \(t.count) values into a sum of \(units.count)")
        try add(t, at: 0)
    }

    /// Adds a tensor's values to the elements from `offset` on (a gradient, then metric sums
    /// after it). On overflow nothing is added (integer addition is exact, so what was added
    /// before is subtracted back).
    public mutating func add(_ t: Tensor, at offset: Int) throws(Overflow) {
        precondition(
            offset >= 0 && offset + t.count <= units.count,
            "ExactSum: \(t.count) values at \(offset) into a sum of \(units.count)")
        let src = t.pointer
        let scale = Double(sign: .plus, exponent: fractionBits, significand: 1)
        let failure: Overflow? = units.withUnsafeMutableBufferPointer { all in
            let u = UnsafeMutableBufferPointer(rebasing: all[offset..<(offset + t.count)])
            // The fast way (C, vectorized; `rlaif_units_add_floats`): rounds each product below
            // 2^51 as `quantize` does and adds, or adds nothing when a value is out of that range
            // or a sum wraps. The rare failure is redone here.
            if rlaif_units_add_floats(u.baseAddress, src, u.count, scale) != 0 { return nil }
            // The slow way: exact for units up to 2^62, and precise about what failed.
            for i in 0..<u.count {
                let q = Self.quantize(src[i], scale: scale)
                let (s, overflow) = u[i].addingReportingOverflow(q ?? 0)
                guard q != nil, !overflow else {
                    for j in 0..<i { u[j] &-= Self.quantize(src[j], scale: scale)! }
                    return Overflow(index: offset + i, value: q.map { Double(u[i]) + Double($0) } ?? Double(src[i]))
                }
                u[i] = s
            }
            return nil
        }
        if let failure { throw failure }
    }

    /// Adds another partial sum (e.g. a chunk arriving in an all-reduce ring). On overflow nothing
    /// is added.
    public mutating func add(_ other: ExactSum) throws(Overflow) {
        precondition(
            other.units.count == units.count && other.fractionBits == fractionBits, "ExactSum: mismatched partial sums")
        try add(units: other.units, at: 0)
    }

    /// Adds fixed-point units (another worker's partial sum of a chunk) at `offset`. On overflow
    /// nothing is added.
    public mutating func add(units chunk: [Int64], at offset: Int) throws(Overflow) {
        try chunk.withUnsafeBufferPointer { (c) throws(Overflow) in try add(units: c, at: offset) }
    }

    /// Adds fixed-point units at `offset` (straight from a received frame). On overflow nothing
    /// is added.
    public mutating func add(units c: UnsafeBufferPointer<Int64>, at offset: Int) throws(Overflow) {
        precondition(offset >= 0 && offset + c.count <= units.count, "ExactSum: chunk outside the sum")
        let failure = units.withUnsafeMutableBufferPointer { all in
            Self.addWrapping(c, into: UnsafeMutableBufferPointer(rebasing: all[offset..<(offset + c.count)]), offset: offset)
        }
        if let failure { throw failure }
    }

    /// Adds integers (64-bit units, or sign-extended 32-bit low words) into `u`, or, on overflow,
    /// adds nothing and names the first element that overflowed (`offset` places it in the sum).
    static func addWrapping<W: FixedWidthInteger>(
        _ c: UnsafeBufferPointer<W>, into u: UnsafeMutableBufferPointer<Int64>, offset: Int
    ) -> Overflow? {
        // Branch-free, so it vectorizes: a wrapping add overflowed iff both operands have the
        // sign the result lacks. Rare overflow is found afterwards and undone exactly.
        var signs: Int64 = 0
        for i in 0..<c.count {
            let x = Int64(truncatingIfNeeded: c[i])
            let s = u[i] &+ x
            signs |= (u[i] ^ s) & (x ^ s)
            u[i] = s
        }
        guard signs < 0 else { return nil }
        for j in 0..<c.count { u[j] &-= Int64(truncatingIfNeeded: c[j]) }
        let i = (0..<c.count).first { u[$0].addingReportingOverflow(Int64(truncatingIfNeeded: c[$0])).overflow }!
        return Overflow(index: offset + i, value: Double(u[i]) + Double(c[i]))
    }

    /// The sum as Floats.
    public func value() -> Tensor {
        let out = Tensor(storage: TensorStorage(count: units.count, zeroed: false), offset: 0, shape: [units.count])
        values(0..<units.count, into: out.pointer)
        return out
    }
}
