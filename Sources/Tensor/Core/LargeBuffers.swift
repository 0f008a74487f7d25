#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
import Synchronization

/// Tensor buffers of `threshold` bytes and more: mapped from the kernel, and on release kept for
/// the next request of the same page count (up to `cachedBytesLimit` in all), else unmapped.
///
/// A training step frees and asks again for the same large sizes every step. In malloc's heap
/// (whose large-buffer threshold `HeapTuning` raises so that they are not faulted in afresh each
/// time) freed buffers of one size end up holding memory another size cannot use: a 135M
/// replica's step left 300 MB of free pages resident beside 80 MB of live activations
/// (docs/PERFORMANCE.md). Here a size is reused exactly, and what is not reused goes back.
final class LargeBuffers: Sendable {
    static let threshold = 1 << 20
    /// The buffers every `TensorStorage` of `threshold` bytes or more comes from.
    static let shared = LargeBuffers()

    /// Larger buffers are one-off (parameters, moments, a model's tensors before they are
    /// gathered): they go back to the kernel when freed.
    let largestCached: Int
    let cachedBytesLimit: Int
    static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))

    private struct Cache {
        /// Addresses of free buffers by mapped length.
        var free: [Int: [Int]] = [:]
        var bytes = 0
    }
    private let cache = Mutex(Cache())

    init(largestCached: Int = 64 << 20, cachedBytesLimit: Int = 256 << 20) {
        self.largestCached = largestCached
        self.cachedBytesLimit = cachedBytesLimit
    }

    /// The mapped length for `bytes`: whole pages.
    static func length(_ bytes: Int) -> Int { (bytes + pageSize - 1) / pageSize * pageSize }

    /// Bytes kept for reuse now.
    var cachedBytes: Int { cache.withLock { $0.bytes } }

    /// A buffer of at least `bytes`, and whether it is fresh from the kernel (zero-filled).
    func allocate(_ bytes: Int) -> (UnsafeMutableRawPointer, fresh: Bool) {
        let size = Self.length(bytes)
        let reused = cache.withLock { cache -> Int? in
            guard let address = cache.free[size]?.popLast() else { return nil }
            cache.bytes -= size
            return address
        }
        if let reused, let buffer = UnsafeMutableRawPointer(bitPattern: reused) { return (buffer, false) }
        guard let mapped = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
            mapped != MAP_FAILED
        else { fatalError("TensorStorage: out of memory mapping \(size) bytes") }
        return (mapped, true)
    }

    /// Gives back a buffer `allocate(bytes)` returned.
    func release(_ buffer: UnsafeMutableRawPointer, _ bytes: Int) {
        let size = Self.length(bytes)
        let address = Int(bitPattern: buffer)
        let kept = cache.withLock { cache -> Bool in
            guard size <= largestCached, cache.bytes + size <= cachedBytesLimit else { return false }
            cache.free[size, default: []].append(address)
            cache.bytes += size
            return true
        }
        if !kept { munmap(buffer, size) }
    }

    /// Unmaps every cached buffer (after a one-off release, whose sizes will not come again).
    func dropCached() {
        let addresses = cache.withLock { cache -> [(Int, Int)] in
            let all = cache.free.flatMap { size, list in list.map { ($0, size) } }
            cache = Cache()
            return all
        }
        for (address, size) in addresses { munmap(UnsafeMutableRawPointer(bitPattern: address), size) }
    }
}
