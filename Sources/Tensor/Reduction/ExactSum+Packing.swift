import CKernels

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
            fits = rlaif_units_pack(units.baseAddress, out.baseAddress, n) != 0
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
            _ = rlaif_units_add_values(u.baseAddress! + range.lowerBound, nil, out, range.count, unit)
        }
    }
}

/// A partial sum of a run of elements as it arrived from another rank: 64-bit units, or packed by
/// `PackedUnits.pack` (valid patches, checked by the receiver).
public enum ReceivedUnits {
    case units(UnsafeBufferPointer<Int64>)
    case packed(low: UnsafeBufferPointer<Int32>, patches: UnsafeBufferPointer<Int64>)

    public var count: Int {
        switch self {
        case .units(let u): u.count
        case .packed(let low, _): low.count
        }
    }
}

extension ExactSum {
    /// Adds a received partial sum at `offset`. On overflow nothing is added.
    public mutating func add(_ received: ReceivedUnits, at offset: Int) throws(Overflow) {
        switch received {
        case .units(let u): try add(units: u, at: offset)
        case .packed(let low, let patches): try add(low: low, patches: patches, at: offset)
        }
    }

    // A ring rank that receives a partial sum of a chunk either passes the new sum on (packed) or,
    // at its last step, turns it into floats; it never reads that chunk's units again. So these
    // make the sum in the same pass that packs or converts it and leave this sum as it is: one read
    // of each operand instead of an add that writes 64-bit units back and a second pass over them.

    /// The units of `range` plus `received`, packed for the wire (nil when packing would not pay);
    /// this sum is unchanged.
    public func packedSum(_ range: Range<Int>, adding received: ReceivedUnits) throws(Overflow) -> (
        low: [Int32], patches: [Int64]
    )? {
        precondition(received.count == range.count, "ExactSum: \(received.count) received units for \(range.count)")
        if case .packed(let low, let patches) = received, patches.isEmpty {
            var fits = false
            let out = units.withUnsafeBufferPointer { u in
                [Int32](unsafeUninitializedCapacity: range.count) { out, initialized in
                    // Flags a wrapped add or a sum wider than 32 bits; those take the general path.
                    fits = rlaif_units_add_pack(u.baseAddress! + range.lowerBound, low.baseAddress, out.baseAddress, range.count) != 0
                    initialized = range.count
                }
            }
            if fits { return (out, []) }
        }
        return try sum(range, received).packed(0..<range.count)
    }

    /// Writes the values of `range` plus `received` (units × 2^−fractionBits, rounded to Float) to
    /// `out`; this sum is unchanged.
    public func valuesOfSum(
        _ range: Range<Int>, adding received: ReceivedUnits, into out: UnsafeMutablePointer<Float>
    ) throws(Overflow) {
        precondition(received.count == range.count, "ExactSum: \(received.count) received units for \(range.count)")
        if case .packed(let low, let patches) = received, patches.isEmpty {
            let unit = Double(sign: .plus, exponent: -fractionBits, significand: 1)
            let wrapped = units.withUnsafeBufferPointer { u in
                rlaif_units_add_values(u.baseAddress! + range.lowerBound, low.baseAddress, out, range.count, unit) == 0
            }
            if !wrapped { return }
        }
        try sum(range, received).values(0..<range.count, into: out)
    }

    /// `range` of this sum plus `received`, as a sum of its own (the general path: 64-bit units,
    /// patches, overflow named at its index in this sum).
    private func sum(_ range: Range<Int>, _ received: ReceivedUnits) throws(Overflow) -> ExactSum {
        var part = ExactSum(units: Array(units[range]), fractionBits: fractionBits)
        do {
            try part.add(received, at: 0)
        } catch {
            throw Overflow(index: range.lowerBound + error.index, value: error.value)
        }
        return part
    }
}
