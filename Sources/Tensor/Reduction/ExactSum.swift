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
    public private(set) var units: [Int64]

    /// 2^−40 ≈ 9.1e-13 resolution, magnitudes below 2^23 ≈ 8.4e6: ample for gradients.
    public static let defaultFractionBits = 40

    public init(count: Int, fractionBits: Int = defaultFractionBits) {
        precondition((8...56).contains(fractionBits), "ExactSum: fractionBits must be in 8...56")
        self.fractionBits = fractionBits
        units = Array(repeating: 0, count: count)
    }

    public struct Overflow: Error, CustomStringConvertible, Equatable, Sendable {
        public let index: Int
        public let value: Double
        public var description: String {
            "gradient element \(index) = \(value) is beyond the exact-sum range; lower fractionBits or clip gradients"
        }
    }

    /// The fixed-point units of one value (round to nearest), or nil when out of range or not finite.
    @inline(__always) static func quantize(_ x: Float, scale: Double) -> Int64? {
        let scaled = (Double(x) * scale).rounded()
        guard scaled.isFinite, abs(scaled) < 0x1p62 else { return nil }
        return Int64(scaled)
    }

    /// Adds a tensor of `units.count` elements. On overflow nothing is added.
    public mutating func add(_ t: Tensor) throws(Overflow) {
        precondition(t.count == units.count, "ExactSum: \(t.count) values into a sum of \(units.count)")
        try add(t, at: 0)
    }

    /// Adds a tensor's values to the elements from `offset` on (a gradient, then metric sums
    /// after it). On overflow nothing is added (integer addition is exact, so what was added
    /// before the failing element is subtracted back).
    public mutating func add(_ t: Tensor, at offset: Int) throws(Overflow) {
        precondition(
            offset >= 0 && offset + t.count <= units.count,
            "ExactSum: \(t.count) values at \(offset) into a sum of \(units.count)")
        let src = t.pointer
        let scale = Double(sign: .plus, exponent: fractionBits, significand: 1)
        let failure: Overflow? = units.withUnsafeMutableBufferPointer { all in
            let u = UnsafeMutableBufferPointer(rebasing: all[offset..<(offset + t.count)])
            for i in 0..<u.count {
                guard let q = Self.quantize(src[i], scale: scale) else {
                    Self.rollBack(u, upTo: i, { Self.quantize(src[$0], scale: scale)! })
                    return Overflow(index: offset + i, value: Double(src[i]))
                }
                let (s, overflow) = u[i].addingReportingOverflow(q)
                if overflow {
                    Self.rollBack(u, upTo: i, { Self.quantize(src[$0], scale: scale)! })
                    return Overflow(index: offset + i, value: Double(u[i]) + Double(q))
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
        precondition(offset >= 0 && offset + chunk.count <= units.count, "ExactSum: chunk outside the sum")
        let failure: Overflow? = units.withUnsafeMutableBufferPointer { all in
            chunk.withUnsafeBufferPointer { c in
                let u = UnsafeMutableBufferPointer(rebasing: all[offset..<(offset + c.count)])
                // Branch-free, so it vectorizes: a wrapping add overflowed iff both operands have
                // the sign the result lacks. Rare overflow is found afterwards and undone exactly.
                var signs: Int64 = 0
                for i in 0..<c.count {
                    let s = u[i] &+ c[i]
                    signs |= (u[i] ^ s) & (c[i] ^ s)
                    u[i] = s
                }
                guard signs < 0 else { return nil }
                for j in 0..<c.count { u[j] &-= c[j] }
                let i = (0..<c.count).first { u[$0].addingReportingOverflow(c[$0]).overflow }!
                return Overflow(index: offset + i, value: Double(u[i]) + Double(c[i]))
            }
        }
        if let failure { throw failure }
    }

    /// Undoes the additions of elements 0..<end (exact: they did not overflow).
    private static func rollBack(_ u: UnsafeMutableBufferPointer<Int64>, upTo end: Int, _ added: (Int) -> Int64) {
        for j in 0..<end { u[j] &-= added(j) }
    }

    /// Replaces units at `offset` with a chunk that is already fully reduced.
    public mutating func replace(units chunk: [Int64], at offset: Int) {
        precondition(offset >= 0 && offset + chunk.count <= units.count, "ExactSum: chunk outside the sum")
        units.replaceSubrange(offset..<(offset + chunk.count), with: chunk)
    }

    /// The sum as Floats, optionally scaled (e.g. by 1/micro-batches for a mean).
    public func value(scaledBy factor: Double = 1) -> Tensor {
        let out = Tensor(zeros: [units.count])
        let unit = Double(sign: .plus, exponent: -fractionBits, significand: 1)
        for i in 0..<units.count { out[flat: i] = Float(Double(units[i]) * unit * factor) }
        return out
    }
}
