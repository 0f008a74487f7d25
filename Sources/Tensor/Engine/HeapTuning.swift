import CMalloc

/// glibc's malloc set for a process that allocates and frees buffers of tens to hundreds of
/// megabytes every step (gradients, fixed-point sums, all-reduce results).
public enum HeapTuning {
    /// Keeps large freed buffers in the heap for reuse. Call it first thing in `main`, before other
    /// threads allocate: a thread that already has its own arena keeps it. (The engine calls it
    /// too, for processes that do not.)
    public static func keepLargeBuffers() { _ = applied }

    private static let applied: Void = {
        #if os(Linux)
            // Without these, glibc returns every large buffer to the kernel and the next one of the
            // same size pays page faults on fresh pages (measured: a 512² matmul ran at 67% of direct
            // sgemm).
            mallopt(M_MMAP_THRESHOLD, 1 << 30)
            mallopt(M_TRIM_THRESHOLD, Int32.max)
            // One arena for every thread: a thread's own arena cannot hold a buffer near its 64 MB
            // heap size, so glibc maps such a buffer fresh and unmaps it on free, faulting in every
            // page again each time (measured: most of a 64 MB all-reduce).
            mallopt(M_ARENA_MAX, 1)
        #endif
    }()
}
