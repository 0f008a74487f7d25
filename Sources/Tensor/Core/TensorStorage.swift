#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A contiguous, 64-byte aligned Float32 buffer shared by a tensor and its views.
///
/// Storage is reference-typed so that reshapes and row slices are free. It is `@unchecked Sendable`
/// because the engine confines every write to one job at a time (see `Engine`).
public final class TensorStorage: @unchecked Sendable {
    public let base: UnsafeMutablePointer<Float>
    public let count: Int
    /// Keeps adopted memory alive; nil when this storage allocated (and frees) `base` itself.
    private let owner: AnyObject?

    /// Allocates `count` floats, zero-filled unless `zeroed` is false (for kernels that write
    /// every element).
    public init(count: Int, zeroed: Bool = true) {
        precondition(count >= 0, "TensorStorage: negative element count \(count)")
        var raw: UnsafeMutableRawPointer?
        // 64-byte alignment keeps SIMD loads and BLAS panels on cache-line boundaries.
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        guard posix_memalign(&raw, 64, bytes) == 0, let raw else {
            fatalError("TensorStorage: out of memory allocating \(bytes) bytes")
        }
        if zeroed { memset(raw, 0, bytes) }
        self.base = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        self.count = count
        self.owner = nil
    }

    /// Wraps memory that `owner` keeps alive (e.g. a received network message), without copying.
    /// `base` must be aligned for Float.
    public init(adopting base: UnsafeMutablePointer<Float>, count: Int, owner: AnyObject) {
        precondition(Int(bitPattern: base) % MemoryLayout<Float>.alignment == 0, "TensorStorage: misaligned memory")
        self.base = base
        self.count = count
        self.owner = owner
    }

    deinit { if owner == nil { free(base) } }
}
