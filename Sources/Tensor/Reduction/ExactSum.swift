import CKernels

#if canImport(Glibc)
    import Glibc
#endif

/// Sums of gradients that do not depend on the order of addition: each value is rounded once to
/// a fixed-point integer (a multiple of 2^−fractionBits), and integers add exactly.
///
/// This is what lets a run give bit-identical weights with 1, 2 or 4 workers and after a
/// re-formed ring: whichever worker computed which micro-batch, and in whatever order partial
/// sums meet, the integer total is the same, and so is the Float made from it.
///
/// Units are 64-bit integers, but a sum keeps them as 32-bit words block by block and widens a
/// block to 64 bits only when one of its elements needs more (`SumStorage`). Sums of gradient
/// means fit in 32 bits almost everywhere, so accumulating moves half the memory, and the
/// all-reduce sends a sum's own words as they lie (`partial`).
///
/// ```swift
/// var total = ExactSum(count: params.count)
/// try total.add(microBatchGradient)          // on any worker, in any order
/// let reduced = total.value()                 // identical bits everywhere
/// ```
public struct ExactSum: Sendable, Equatable {
    /// Resolution 2^−fractionBits; the largest representable magnitude is 2^(63 − fractionBits).
    public let fractionBits: Int
    private(set) var storage: SumStorage

    /// 2^−32 ≈ 2.3e-10 resolution, magnitudes below 2^31 ≈ 2.1e9. Finer than a Float32 gradient
    /// element's own rounding for every |element| above 2^−9, and coarse enough that a partial sum
    /// of gradient means fits in 32 bits, so the all-reduce sends 4 bytes per element as MPI
    /// does (`PackedUnits`).
    public static let defaultFractionBits = 32

    public init(count: Int, fractionBits: Int = defaultFractionBits) {
        precondition((8...56).contains(fractionBits), "ExactSum: fractionBits must be in 8...56")
        precondition(count >= 0, "ExactSum: a negative count")
        self.fractionBits = fractionBits
        storage = SumStorage(count: count)
    }

    init(units: [Int64], fractionBits: Int) {
        self.init(count: units.count, fractionBits: fractionBits)
        for (i, u) in units.enumerated() { setUnit(i, u) }
    }

    public var count: Int { storage.count }

    /// Every element's units (a copy, for inspection).
    public var units: [Int64] { (0..<count).map(unit) }

    public struct Overflow: Error, CustomStringConvertible, Equatable, Sendable {
        public let index: Int
        public let value: Double
        public var description: String {
            "gradient element \(index) = \(value) is beyond the exact-sum range; lower fractionBits or clip gradients"
        }
    }

    public static func == (a: ExactSum, b: ExactSum) -> Bool {
        a.fractionBits == b.fractionBits && a.count == b.count && (0..<a.count).allSatisfy { a.unit($0) == b.unit($0) }
    }

    // MARK: Elements

    /// The units of element `i`.
    @inline(__always) func unit(_ i: Int) -> Int64 {
        storage.wideUnits(from: i)?.pointee ?? Int64(storage.low[i])
    }

    /// Sets element `i` (its block widens when the units need more than 32 bits).
    mutating func setUnit(_ i: Int, _ value: Int64) {
        makeUnique()
        let b = i / SumStorage.blockElements
        if storage.wide[b] == nil {
            if let word = Int32(exactly: value) {
                storage.low[i] = word
                return
            }
            storage.widen(b)
        }
        storage.wideUnits(from: i)!.pointee = value
        storage.low[i] = Int32(truncatingIfNeeded: value)
    }

    mutating func makeUnique() {
        if !isKnownUniquelyReferenced(&storage) { storage = SumStorage(copying: storage) }
    }

    /// The parts of `range` that lie in one block each, with the block's index (lazily: adding a
    /// whole gradient walks tens of thousands of blocks).
    func segments(_ range: Range<Int>) -> LazyMapSequence<Range<Int>, (block: Int, range: Range<Int>)> {
        let size = SumStorage.blockElements
        let blocks = range.isEmpty ? 0..<0 : (range.lowerBound / size)..<((range.upperBound - 1) / size + 1)
        return blocks.lazy.map { b in (b, max(range.lowerBound, b * size)..<min(range.upperBound, (b + 1) * size)) }
    }

    // MARK: Adding

    /// The fixed-point units of one value (round to nearest, ties to even), or nil when out of
    /// range or not finite.
    @inline(__always) static func quantize(_ x: Float, scale: Double) -> Int64? {
        let scaled = (Double(x) * scale).rounded(.toNearestOrEven)
        guard abs(scaled) < 0x1p62 else { return nil }  // false for NaN and infinities too
        return Int64(scaled)
    }

    /// Adds a tensor of `count` elements. On overflow nothing is added.
    public mutating func add(_ t: Tensor) throws(Overflow) {
        precondition(t.count == count, "ExactSum: \(t.count) values into a sum of \(count)")
        try add(t, at: 0)
    }

    /// Adds a tensor's values to the elements from `offset` on (a gradient, then metric sums
    /// after it). On overflow nothing is added (integer addition is exact, so what was added
    /// before is subtracted back).
    public mutating func add(_ t: Tensor, at offset: Int) throws(Overflow) {
        precondition(
            offset >= 0 && offset + t.count <= count, "ExactSum: \(t.count) values at \(offset) into a sum of \(count)")
        makeUnique()
        let src = t.pointer - offset  // src[i] is the value for element i
        let scale = Double(sign: .plus, exponent: fractionBits, significand: 1)
        for (b, r) in segments(offset..<(offset + t.count)) {
            // The fast ways (C, vectorized): round each product below 2^51 as `quantize` does and
            // add, in 32-bit words while the block's sums fit, else in 64-bit units; or add
            // nothing when a value is out of that range or a sum wraps.
            if storage.wide[b] == nil {
                if rlaif_units32_add_floats(storage.low + r.lowerBound, src + r.lowerBound, r.count, scale) != 0 {
                    continue
                }
                storage.widen(b)
            }
            let wide = storage.wideUnits(from: r.lowerBound)!
            if rlaif_units_add_floats(wide, src + r.lowerBound, r.count, scale) != 0 {
                _ = rlaif_units_pack(wide, storage.low + r.lowerBound, r.count)  // the words follow the units
                continue
            }
            // The slow way, for the rare failure: exact for units up to 2^62, and precise about
            // what failed.
            for i in r {
                let q = Self.quantize(src[i], scale: scale)
                let (s, overflow) = unit(i).addingReportingOverflow(q ?? 0)
                guard q != nil, !overflow else {
                    for j in offset..<i { setUnit(j, unit(j) &- Self.quantize(src[j], scale: scale)!) }
                    throw Overflow(index: i, value: q.map { Double(unit(i)) + Double($0) } ?? Double(src[i]))
                }
                setUnit(i, s)
            }
        }
    }

    /// Adds another partial sum (e.g. a chunk arriving in an all-reduce ring). On overflow nothing
    /// is added.
    public mutating func add(_ other: ExactSum) throws(Overflow) {
        precondition(other.count == count && other.fractionBits == fractionBits, "ExactSum: mismatched partial sums")
        try add(count: count, at: 0) { other.unit($0) }
    }

    /// Adds fixed-point units (another worker's partial sum of a chunk) at `offset`. On overflow
    /// nothing is added.
    public mutating func add(units chunk: [Int64], at offset: Int) throws(Overflow) {
        try chunk.withUnsafeBufferPointer { (c) throws(Overflow) in try add(units: c, at: offset) }
    }

    /// Adds fixed-point units at `offset` (straight from a received frame). On overflow nothing
    /// is added.
    public mutating func add(units c: UnsafeBufferPointer<Int64>, at offset: Int) throws(Overflow) {
        try add(count: c.count, at: offset) { c[$0] }
    }

    /// Adds `operand(k)` to element `offset + k` for k < n, or, on overflow, adds nothing and
    /// names the first element that overflowed. Element by element: for the rare runs that are
    /// not 32-bit words (the one-pass sums of `ExactSum+Packing` take the vectorized loops).
    mutating func add(count n: Int, at offset: Int, _ operand: (Int) -> Int64) throws(Overflow) {
        precondition(offset >= 0 && offset + n <= count, "ExactSum: \(n) units at \(offset) into a sum of \(count)")
        for k in 0..<n {
            let (s, overflow) = unit(offset + k).addingReportingOverflow(operand(k))
            guard !overflow else {
                for j in 0..<k { setUnit(offset + j, unit(offset + j) &- operand(j)) }
                throw Overflow(index: offset + k, value: Double(unit(offset + k)) + Double(operand(k)))
            }
            setUnit(offset + k, s)
        }
    }

    // MARK: Values

    /// The sum as Floats.
    public func value() -> Tensor {
        let out = Tensor(storage: TensorStorage(count: count, zeroed: false), offset: 0, shape: [count])
        values(0..<count, into: out.pointer)
        return out
    }

    /// Writes the values of `range` (units × 2^−fractionBits, rounded to Float) to `out`.
    public func values(_ range: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        let unit = Double(sign: .plus, exponent: -fractionBits, significand: 1)
        let out = out - range.lowerBound  // out[i] is element i's
        for (_, r) in segments(range) {
            if let wide = storage.wideUnits(from: r.lowerBound) {
                _ = rlaif_units_add_values(wide, nil, out + r.lowerBound, r.count, unit)
            } else {
                rlaif_units32_add_values(storage.low + r.lowerBound, nil, out + r.lowerBound, r.count, unit)
            }
        }
    }
}

/// The memory of an `ExactSum`: every element's low 32-bit word, and for the blocks where some
/// element needs more, their full 64-bit units. The low words of a wide block are kept equal to
/// its units' low words, so a run of low words is the packed form of any range (`PackedUnits`).
final class SumStorage: @unchecked Sendable {
    /// Elements per block: 16 KiB of words, small enough that the one block holding the metric
    /// sums (always wide) costs little, large enough that the per-block work is negligible.
    static let blockElements = 4096

    let count: Int
    let low: UnsafeMutablePointer<Int32>
    /// Per block: its 64-bit units when it is wide, nil when its words are its units.
    var wide: [UnsafeMutablePointer<Int64>?]

    init(count: Int) {
        self.count = count
        low = Self.allocateWords(count)
        low.initialize(repeating: 0, count: count)
        wide = Array(repeating: nil, count: (count + Self.blockElements - 1) / Self.blockElements)
    }

    init(copying other: SumStorage) {
        count = other.count
        low = Self.allocateWords(count)
        low.initialize(from: other.low, count: count)
        wide = other.wide.enumerated().map { b, units in
            units.map { u in
                let n = other.blockCount(b)
                let copy = UnsafeMutablePointer<Int64>.allocate(capacity: n)
                copy.initialize(from: u, count: n)
                return copy
            }
        }
    }

    /// Plain malloc alignment: a second 64-byte-aligned buffer the size of the result tensor left
    /// glibc's heap unable to reuse its holes (docs/PERFORMANCE.md); the loops load unaligned.
    private static func allocateWords(_ n: Int) -> UnsafeMutablePointer<Int32> {
        UnsafeMutableRawPointer.allocate(byteCount: max(n, 1) * 4, alignment: 16).bindMemory(
            to: Int32.self, capacity: max(n, 1))
    }

    /// Elements in block `b` (the last may be short).
    func blockCount(_ b: Int) -> Int { min(Self.blockElements, count - b * Self.blockElements) }

    /// Gives block `b` 64-bit units: its words, sign-extended.
    func widen(_ b: Int) {
        let n = blockCount(b), first = b * Self.blockElements
        let units = UnsafeMutablePointer<Int64>.allocate(capacity: n)
        for k in 0..<n { (units + k).initialize(to: Int64(low[first + k])) }
        wide[b] = units
    }

    /// The 64-bit units from element `i` to the end of its block, when the block is wide.
    @inline(__always) func wideUnits(from i: Int) -> UnsafeMutablePointer<Int64>? {
        let b = i / Self.blockElements
        return wide[b].map { $0 + (i - b * Self.blockElements) }
    }

    deinit {
        UnsafeMutableRawPointer(low).deallocate()
        for units in wide { units?.deallocate() }
    }
}
