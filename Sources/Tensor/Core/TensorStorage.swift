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
    }

    deinit { free(base) }
}
