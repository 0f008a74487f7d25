import CMalloc

/// glibc's malloc set for the kind of process it runs in. Call `apply` first thing in `main`,
/// before other threads allocate: a thread that already has its own arena keeps it.
public enum HeapTuning {
    public enum Workload: Sendable {
        /// Models and the all-reduce (workers, `sample`, `score`): buffers of tens to hundreds of
        /// megabytes allocated and freed every step.
        case compute
        /// Many small messages from several threads at once (the coordinator).
        case messaging
    }

    /// Applies the settings for `workload`, once per process.
    public static func apply(_ workload: Workload) {
        #if os(Linux)
            // Keep freed large buffers in the heap: otherwise glibc returns each to the kernel and
            // the next one of the same size pays page faults on fresh pages (docs/PERFORMANCE.md).
            mallopt(M_MMAP_THRESHOLD, 1 << 30)
            mallopt(M_TRIM_THRESHOLD, Int32.max)
            if workload == .compute {
                // One arena for every thread: a thread's own arena cannot hold a buffer near its
                // 64 MB heap size, so glibc maps such a buffer fresh and unmaps it on free, faulting
                // in every page again each time. Not for messaging: there the one arena's lock is
                // contended by every thread that sends or receives (docs/PERFORMANCE.md).
                mallopt(M_ARENA_MAX, 1)
            }
        #endif
    }

    /// Returns the heap's free pages and the cached large buffers to the kernel, once, after a
    /// large one-off release (a model's tensors gathered into one parameter buffer): trimming is
    /// otherwise off.
    public static func returnFreedMemory() {
        LargeBuffers.shared.dropCached()
        #if os(Linux)
            malloc_trim(0)
        #endif
    }
}
