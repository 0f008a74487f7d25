/// A lossless, smaller form of fixed-point units for the wire.
///
/// Gradient units are 64-bit, but almost all of them fit in 32 (|value| < 2^31 units = 0.5 at the
/// default 2^−32 resolution). A packed run sends every element's low 32-bit word and, for the few that do
/// not fit, a patch `(index, units)`; the receiver sign-extends the low words and applies the
/// patches. Nothing is rounded: the sum stays exact, so the reduced bits are the same as with
/// plain 64-bit units.
public enum PackedUnits {
    /// Packing pays while patches (16 bytes each) cost less than sending every element in 64 bits.
    public static let maximumPatchFraction = 8

    /// The low words of `units` and the patches for the elements that need more than 32 bits, or
    /// nil when more than 1 in `maximumPatchFraction` elements would need a patch.
    public static func pack(_ units: UnsafeBufferPointer<Int64>) -> (low: [Int32], patches: [Int64])? {
        let n = units.count
        var fits = true
        let low = [Int32](unsafeUninitializedCapacity: n) { out, initialized in
            // Branch-free so it vectorizes; the rare misfit is looked for only when flagged.
            var misfit: UInt64 = 0
            for i in 0..<n {
                let w = Int32(truncatingIfNeeded: units[i])
                out[i] = w
                misfit |= UInt64(bitPattern: Int64(w) ^ units[i])
            }
            fits = misfit == 0
            initialized = n
        }
        if fits { return (low, []) }
        var patches: [Int64] = []
        for i in 0..<n where Int64(low[i]) != units[i] {
            guard patches.count / 2 < n / maximumPatchFraction else { return nil }
            patches += [Int64(i), units[i]]
        }
        return (low, patches)
    }

    /// Whether `patches` are (index, units) pairs with indices strictly increasing below `count`:
    /// what a receiver checks before applying them.
    public static func patchesAreValid(_ patches: UnsafeBufferPointer<Int64>, count: Int) -> Bool {
        guard patches.count % 2 == 0 else { return false }
        var previous: Int64 = -1
        for p in stride(from: 0, to: patches.count, by: 2) {
            guard patches[p] > previous, patches[p] < count else { return false }
            previous = patches[p]
        }
        return true
    }
}

extension ExactSum {
    /// Adds units packed by `PackedUnits.pack` at `offset`. On overflow nothing is added.
    /// `patches` must satisfy `PackedUnits.patchesAreValid` for `low.count`.
    public mutating func add(
        low: UnsafeBufferPointer<Int32>, patches: UnsafeBufferPointer<Int64>, at offset: Int
    ) throws(Overflow) {
        precondition(offset >= 0 && offset + low.count <= units.count, "ExactSum: packed run outside the sum")
        precondition(PackedUnits.patchesAreValid(patches, count: low.count), "ExactSum: malformed patches")
        let failure: Overflow? = units.withUnsafeMutableBufferPointer { all in
            let u = UnsafeMutableBufferPointer(rebasing: all[offset..<(offset + low.count)])
            if let overflow = Self.addWrapping(low, into: u, offset: offset) { return overflow }
            // A patch replaces the sign-extended low word with the full value: add the difference.
            for p in stride(from: 0, to: patches.count, by: 2) {
                let i = Int(patches[p]), full = patches[p + 1]
                let (difference, o1) = full.subtractingReportingOverflow(Int64(low[i]))
                let (s, o2) = u[i].addingReportingOverflow(difference)
                guard !o1 && !o2 else {
                    for q in stride(from: 0, to: p, by: 2) {
                        u[Int(patches[q])] &-= patches[q + 1] &- Int64(low[Int(patches[q])])
                    }
                    for j in 0..<low.count { u[j] &-= Int64(low[j]) }
                    return Overflow(index: offset + i, value: Double(u[i]) + Double(full))  // u[i] is restored
                }
                u[i] = s
            }
            return nil
        }
        if let failure { throw failure }
    }

    /// The units from `range` packed for the wire (nil when packing would not pay).
    public func packed(_ range: Range<Int>) -> (low: [Int32], patches: [Int64])? {
        units.withUnsafeBufferPointer { PackedUnits.pack(UnsafeBufferPointer(rebasing: $0[range])) }
    }

    /// Writes the values of `range` (units × 2^−fractionBits, rounded to Float) to `out`.
    public func values(_ range: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        let unit = Double(sign: .plus, exponent: -fractionBits, significand: 1)
        units.withUnsafeBufferPointer { u in
            let src = u.baseAddress! + range.lowerBound
            for j in 0..<range.count { out[j] = Float(Double(src[j]) * unit) }
        }
    }
}
