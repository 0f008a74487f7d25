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
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        let raw: UnsafeMutableRawPointer
        if bytes >= LargeBuffers.threshold {
            let (buffer, fresh) = LargeBuffers.shared.allocate(bytes)
            if zeroed && !fresh { memset(buffer, 0, bytes) }
            raw = buffer
        } else {
            // 64-byte alignment keeps SIMD loads and BLAS panels on cache-line boundaries.
            var allocated: UnsafeMutableRawPointer?
            guard posix_memalign(&allocated, 64, bytes) == 0, let allocated else {
                fatalError("TensorStorage: out of memory allocating \(bytes) bytes")
            }
            if zeroed { memset(allocated, 0, bytes) }
            raw = allocated
        }
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

    deinit {
        guard owner == nil else { return }
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        if bytes >= LargeBuffers.threshold { LargeBuffers.shared.release(base, bytes) } else { free(base) }
    }
}
