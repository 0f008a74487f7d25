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

    /// Whether `patchPairs` patches for a run of `count` elements still pay.
    static func pays(patchPairs: Int, count: Int) -> Bool { patchPairs <= count / maximumPatchFraction }
}

/// 32-bit words that stay valid while `owner` lives: in place in a sum's memory, or a run of
/// their own. What a ring rank sends without copying.
public struct LowWords: @unchecked Sendable {
    public let base: UnsafePointer<Int32>
    public let count: Int
    public let owner: AnyObject

    /// A run of `count` words of its own, written by `body`.
    init(count: Int, _ body: (UnsafeMutablePointer<Int32>) throws(ExactSum.Overflow) -> Void) throws(ExactSum.Overflow)
    {
        let run = WordRun(count: count)
        try body(run.words)
        self.init(base: run.words, count: count, owner: run)
    }

    init(base: UnsafePointer<Int32>, count: Int, owner: AnyObject) {
        (self.base, self.count, self.owner) = (base, count, owner)
    }

    public func withWords<R, E: Error>(_ body: (UnsafeBufferPointer<Int32>) throws(E) -> R) throws(E) -> R {
        try withExtendedLifetime(owner) { () throws(E) -> R in try body(UnsafeBufferPointer(start: base, count: count))
        }
    }

    /// The words, copied.
    public var array: [Int32] { withWords { Array($0) } }
}

/// Memory for a `LowWords` run of its own.
private final class WordRun {
    let words: UnsafeMutablePointer<Int32>
    init(count: Int) { words = .allocate(capacity: max(count, 1)) }
    deinit { words.deallocate() }
}

/// A partial sum of a run of elements, as a ring rank passes it on.
public enum PartialSum {
    /// Low words and patches (`PackedUnits`).
    case packed(low: LowWords, patches: [Int64])
    /// 64-bit units, where patches would not pay.
    case units([Int64])

    /// The units it stands for (for inspection).
    public var units: [Int64] {
        switch self {
        case .units(let u): return u
        case .packed(let low, let patches):
            var u = low.array.map(Int64.init)
            for p in stride(from: 0, to: patches.count, by: 2) { u[Int(patches[p])] = patches[p + 1] }
            return u
        }
    }
}

/// A partial sum of a run of elements as it arrived from another rank: 64-bit units, or packed by
/// `PackedUnits` (valid patches, checked by the receiver).
public enum ReceivedUnits {
    case units(UnsafeBufferPointer<Int64>)
    case packed(low: UnsafeBufferPointer<Int32>, patches: UnsafeBufferPointer<Int64>)

    public var count: Int {
        switch self {
        case .units(let u): u.count
        case .packed(let low, _): low.count
        }
    }

    /// The units of element `k`: its patch's, or else its low word sign-extended. `patch` is a
    /// cursor into the patches for ascending `k`. For the elements the vector loops leave to exact
    /// handling.
    func unit(_ k: Int, patch: inout Int) -> Int64 {
        switch self {
        case .units(let u): return u[k]
        case .packed(let low, let patches):
            while patch < patches.count && Int(patches[patch]) < k { patch += 2 }
            if patch < patches.count && Int(patches[patch]) == k { return patches[patch + 1] }
            return Int64(low[k])
        }
    }

    /// The indices of patched elements, ascending (none for 64-bit units).
    var patchedIndices: [Int] {
        guard case .packed(_, let patches) = self else { return [] }
        return stride(from: 0, to: patches.count, by: 2).map { Int(patches[$0]) }
    }
}

extension ExactSum {
    /// Adds units packed by `PackedUnits` at `offset`. On overflow nothing is added.
    /// `patches` must satisfy `PackedUnits.patchesAreValid` for `low.count`.
    public mutating func add(
        low: UnsafeBufferPointer<Int32>, patches: UnsafeBufferPointer<Int64>, at offset: Int
    ) throws(Overflow) {
        try add(.packed(low: low, patches: patches), at: offset)
    }

    /// Adds a received partial sum at `offset`. On overflow nothing is added.
    public mutating func add(_ received: ReceivedUnits, at offset: Int) throws(Overflow) {
        if case .packed(let low, let patches) = received {
            precondition(PackedUnits.patchesAreValid(patches, count: low.count), "ExactSum: malformed patches")
        }
        var patch = 0
        let full = (0..<received.count).map { received.unit($0, patch: &patch) }
        try add(units: full, at: offset)
    }

    /// The units of `range` as the ring sends them: this sum's own words, in place (nothing is
    /// copied while no block of the range is wide), with patches for the elements that need more
    /// than 32 bits; or 64-bit units where patches would not pay.
    public func partial(_ range: Range<Int>) -> PartialSum {
        precondition(range.lowerBound >= 0 && range.upperBound <= count, "ExactSum: \(range) outside a sum of \(count)")
        var patches: [Int64] = []
        for (_, r) in segments(range) {
            guard let wide = storage.wideUnits(from: r.lowerBound) else { continue }
            for (k, i) in r.enumerated() where Int64(storage.low[i]) != wide[k] {
                patches += [Int64(i - range.lowerBound), wide[k]]
            }
        }
        guard PackedUnits.pays(patchPairs: patches.count / 2, count: range.count) else { return .units(units(range)) }
        return .packed(
            low: LowWords(base: storage.low + range.lowerBound, count: range.count, owner: storage), patches: patches)
    }

    /// The units of `range`.
    func units(_ range: Range<Int>) -> [Int64] { range.map(unit) }

    // A ring rank that receives a partial sum of a chunk either passes the new sum on or, at its
    // last step, turns it into floats; it never reads that chunk's units again. So these make the
    // sum in the same pass that packs or converts it and leave this sum as it is: one read of each
    // operand instead of an add that writes the units back and a second pass over them. The
    // vector loops take every block whose sums fit; what they leave (wrapped or wide sums,
    // received patches) is done element by element, exactly.

    /// The units of `range` plus `received`, as the ring passes them on; this sum is unchanged.
    public func partialSum(_ range: Range<Int>, adding received: ReceivedUnits) throws(Overflow) -> PartialSum {
        precondition(received.count == range.count, "ExactSum: \(received.count) received units for \(range.count)")
        guard case .packed(let receivedLow, _) = received else { return Self.pack(try sumByElement(range, received)) }
        var patches: [Int64] = []
        let low = try LowWords(count: range.count) { (out) throws(Overflow) in
            var left: [Int] = []  // elements the loops did not settle, relative to the range
            for (_, r) in segments(range) {
                let k = r.lowerBound - range.lowerBound
                let fits =
                    if let wide = storage.wideUnits(from: r.lowerBound) {
                        rlaif_units_add_pack(wide, receivedLow.baseAddress! + k, out + k, r.count) != 0
                    } else {
                        rlaif_units32_add_pack(
                            storage.low + r.lowerBound, receivedLow.baseAddress! + k, out + k, r.count) != 0
                    }
                if !fits { left += k..<(k + r.count) }
            }
            var patch = 0
            for k in Self.merged(left, received.patchedIndices) {
                let s = try sum(range.lowerBound + k, received.unit(k, patch: &patch))
                out[k] = Int32(truncatingIfNeeded: s)
                if Int64(out[k]) != s { patches += [Int64(k), s] }
            }
        }
        let packed = PartialSum.packed(low: low, patches: patches)
        return PackedUnits.pays(patchPairs: patches.count / 2, count: range.count) ? packed : .units(packed.units)
    }

    /// Writes the values of `range` plus `received` (units × 2^−fractionBits, rounded to Float) to
    /// `out`; this sum is unchanged.
    public func valuesOfSum(
        _ range: Range<Int>, adding received: ReceivedUnits, into out: UnsafeMutablePointer<Float>
    ) throws(Overflow) {
        precondition(received.count == range.count, "ExactSum: \(received.count) received units for \(range.count)")
        let unit = Double(sign: .plus, exponent: -fractionBits, significand: 1)
        guard case .packed(let receivedLow, _) = received else {
            let units = try sumByElement(range, received)
            for k in units.indices { out[k] = Float(Double(units[k]) * unit) }
            return
        }
        var left: [Int] = []
        for (_, r) in segments(range) {
            let k = r.lowerBound - range.lowerBound
            if let wide = storage.wideUnits(from: r.lowerBound) {
                let added = rlaif_units_add_values(wide, receivedLow.baseAddress! + k, out + k, r.count, unit)
                if added == 0 { left += k..<(k + r.count) }
            } else {
                rlaif_units32_add_values(
                    storage.low + r.lowerBound, receivedLow.baseAddress! + k, out + k, r.count, unit)
            }
        }
        var patch = 0
        for k in Self.merged(left, received.patchedIndices) {
            out[k] = Float(Double(try sum(range.lowerBound + k, received.unit(k, patch: &patch))) * unit)
        }
    }

    /// Element `i` plus `x`, or the overflow named at `i`.
    private func sum(_ i: Int, _ x: Int64) throws(Overflow) -> Int64 {
        let (s, overflow) = unit(i).addingReportingOverflow(x)
        if overflow { throw Overflow(index: i, value: Double(unit(i)) + Double(x)) }
        return s
    }

    /// `range` of this sum plus `received`, element by element (overflow named at its index in
    /// this sum).
    private func sumByElement(_ range: Range<Int>, _ received: ReceivedUnits) throws(Overflow) -> [Int64] {
        var patch = 0
        var units: [Int64] = []
        units.reserveCapacity(range.count)
        for k in 0..<range.count { units.append(try sum(range.lowerBound + k, received.unit(k, patch: &patch))) }
        return units
    }

    /// 64-bit units packed for the wire, or kept as they are where patches would not pay.
    static func pack(_ units: [Int64]) -> PartialSum {
        var fits = false
        let low = try! LowWords(count: units.count) { out in fits = rlaif_units_pack(units, out, units.count) != 0 }
        var patches: [Int64] = []
        if !fits {
            for (k, u) in units.enumerated() where Int64(low.base[k]) != u { patches += [Int64(k), u] }
        }
        return PackedUnits.pays(patchPairs: patches.count / 2, count: units.count)
            ? .packed(low: low, patches: patches) : .units(units)
    }

    /// Two ascending index lists as one, without repeats.
    static func merged(_ a: [Int], _ b: [Int]) -> [Int] {
        if b.isEmpty { return a }
        if a.isEmpty { return b }
        var out: [Int] = []
        out.reserveCapacity(a.count + b.count)
        var (i, j) = (0, 0)
        while i < a.count || j < b.count {
            let next = j == b.count || (i < a.count && a[i] <= b[j]) ? a[i] : b[j]
            if i < a.count && a[i] == next { i += 1 }
            if j < b.count && b[j] == next { j += 1 }
            out.append(next)
        }
        return out
    }
}
