#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// What a random stream is for. Distinct purposes never share draws, even under the same seed.
/// Raw values are part of the run's reproducibility contract: never renumber them.
public struct RandomPurpose: Hashable, Sendable {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    public static let parameterInit = RandomPurpose(rawValue: 1)
    public static let dataShuffle = RandomPurpose(rawValue: 2)
    public static let sampling = RandomPurpose(rawValue: 3)
    public static let dropout = RandomPurpose(rawValue: 4)
    public static let labeler = RandomPurpose(rawValue: 5)
    public static let taskGeneration = RandomPurpose(rawValue: 6)
    /// The order of a data file's prompts in each pass over it.
    public static let promptOrder = RandomPurpose(rawValue: 7)
    /// Tests and examples that need an arbitrary stream.
    public static let scratch = RandomPurpose(rawValue: 0xFFFF)
}

/// A reproducible stream of random numbers addressed by (seed, purpose, step, index).
///
/// The stream is a pure function of its address: the 1000th draw of sample 17 at step 3 is the
/// same number whichever worker draws it and whatever was drawn before. `step` is usually the
/// training step, `index` the sample or parameter the draws belong to.
///
/// ```swift
/// var rng = RandomStream(seed: 42, purpose: .sampling, step: 3, index: 17)
/// let u = rng.nextUniform()        // in [0, 1)
/// ```
public struct RandomStream: Sendable {
    public let seed: UInt64
    public let purpose: RandomPurpose
    public let step: UInt64
    public let index: UInt64
    private let key: SIMD2<UInt32>
    /// Blocks consumed so far; the next block uses this counter.
    public private(set) var position: UInt64 = 0
    private var block = SIMD4<UInt32>()
    private var used = 4

    public init(seed: UInt64, purpose: RandomPurpose, step: UInt64 = 0, index: UInt64 = 0) {
        self.seed = seed
        self.purpose = purpose
        self.step = step
        self.index = index
        let k = splitMix64(splitMix64(splitMix64(seed) ^ purpose.rawValue) ^ step)
        self.key = SIMD2(UInt32(truncatingIfNeeded: k), UInt32(truncatingIfNeeded: k >> 32))
    }

    /// The same address, advanced to block `position` (4 words per block), as if that many blocks
    /// had been drawn.
    public init(seed: UInt64, purpose: RandomPurpose, step: UInt64, index: UInt64, position: UInt64) {
        self.init(seed: seed, purpose: purpose, step: step, index: index)
        self.position = position
    }

    public mutating func nextUInt32() -> UInt32 {
        if used == 4 {
            let counter = SIMD4(
                UInt32(truncatingIfNeeded: position), UInt32(truncatingIfNeeded: position >> 32),
                UInt32(truncatingIfNeeded: index), UInt32(truncatingIfNeeded: index >> 32))
            block = Philox4x32.block(counter: counter, key: key)
            position += 1
            used = 0
        }
        defer { used += 1 }
        return block[used]
    }

    public mutating func nextUInt64() -> UInt64 {
        UInt64(nextUInt32()) << 32 | UInt64(nextUInt32())
    }

    /// Uniform in [0, 1), 24 bits of precision.
    public mutating func nextUniform() -> Float {
        Float(nextUInt32() >> 8) * (1.0 / 16_777_216.0)
    }

    /// Uniform integer in 0..<bound, without modulo bias (Lemire's method).
    public mutating func next(below bound: Int) -> Int {
        precondition(bound > 0, "RandomStream.next(below:): bound must be positive, got \(bound)")
        let b = UInt64(bound)
        while true {
            let r = nextUInt64()
            let (hi, lo) = r.multipliedFullWidth(by: b)
            if lo >= (0 &- b) % b { return Int(hi) }
        }
    }

    /// Standard normal draw (Box–Muller, in Double, one pair per two uniforms; the partner is
    /// discarded so that every draw consumes the same amount of the stream).
    public mutating func nextNormal() -> Float {
        let u1 = (Double(nextUInt32()) + 1) / 4_294_967_296.0  // (0, 1]: log stays finite
        let u2 = Double(nextUInt32()) / 4_294_967_296.0
        return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
    }
}

extension Tensor {
    /// Normal(mean, std) entries drawn in row-major order from `rng`.
    public static func randomNormal(_ shape: [Int], mean: Float = 0, std: Float = 1, rng: inout RandomStream) -> Tensor
    {
        let t = Tensor(zeros: shape)
        for i in 0..<t.count { t.pointer[i] = mean + std * rng.nextNormal() }
        return t
    }

    /// Uniform [low, high) entries drawn in row-major order from `rng`.
    public static func randomUniform(_ shape: [Int], low: Float = 0, high: Float = 1, rng: inout RandomStream) -> Tensor
    {
        let t = Tensor(zeros: shape)
        for i in 0..<t.count { t.pointer[i] = low + (high - low) * rng.nextUniform() }
        return t
    }
}
