#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
import Synchronization

/// Tensor buffers of `threshold` bytes and more: mapped from the kernel, and on release kept for
/// the next request of the same page count; past `cachedBytesLimit` in all, the buffers released
/// longest ago go back to the kernel.
///
/// A training step frees and asks again for the same large sizes every step. In malloc's heap
/// (whose large-buffer threshold `HeapTuning` raises so that they are not faulted in afresh each
/// time) freed buffers of one size end up holding memory another size cannot use: a 135M
/// replica's step left 300 MB of free pages resident beside 80 MB of live activations
/// (docs/PERFORMANCE.md). Here a size is reused exactly, and what is not reused goes back.
final class LargeBuffers: Sendable {
    /// `RLAIF_LARGE_BUFFERS=off` leaves every buffer to malloc (to measure one against the other).
    static let threshold = getenv("RLAIF_LARGE_BUFFERS").map { String(cString: $0) } == "off" ? Int.max : 1 << 20
    /// The buffers every `TensorStorage` of `threshold` bytes or more comes from.
    static let shared = LargeBuffers()

    /// Larger buffers are one-off (parameters, moments): they go back to the kernel when freed.
    let largestCached: Int
    let cachedBytesLimit: Int
    static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))

    private struct Cache {
        /// Free buffers by mapped length: (address, when released), the newest last.
        var free: [Int: [(address: Int, released: UInt64)]] = [:]
        var bytes = 0
        var releases: UInt64 = 0

        /// Takes out the buffer of `size` released longest ago (returned to be unmapped).
        mutating func evictOldest() -> (address: Int, size: Int)? {
            guard let (size, list) = free.min(by: { $0.value[0].released < $1.value[0].released }) else { return nil }
            free[size] = list.count == 1 ? nil : Array(list.dropFirst())
            bytes -= size
            return (list[0].address, size)
        }
    }
    private let cache = Mutex(Cache())

    init(largestCached: Int = 512 << 20, cachedBytesLimit: Int = 4 << 30) {
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
            guard var list = cache.free[size], let newest = list.popLast() else { return nil }
            cache.free[size] = list.isEmpty ? nil : list
            cache.bytes -= size
            return newest.address
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
        let unmapped = cache.withLock { cache -> [(address: Int, size: Int)] in
            guard size <= min(largestCached, cachedBytesLimit) else { return [(address, size)] }
            var evicted: [(address: Int, size: Int)] = []
            while cache.bytes + size > cachedBytesLimit, let oldest = cache.evictOldest() { evicted.append(oldest) }
            cache.releases += 1
            cache.free[size, default: []].append((address, cache.releases))
            cache.bytes += size
            return evicted
        }
        for (address, size) in unmapped { munmap(UnsafeMutableRawPointer(bitPattern: address), size) }
    }

    /// Unmaps every cached buffer (after a one-off release, whose sizes will not come again).
    func dropCached() {
        let addresses = cache.withLock { cache -> [(Int, Int)] in
            let all = cache.free.flatMap { size, list in list.map { ($0.address, size) } }
            cache = Cache()
            return all
        }
        for (address, size) in addresses { munmap(UnsafeMutableRawPointer(bitPattern: address), size) }
    }
}
