import Testing

@testable import Tensor

/// Large tensor buffers (`LargeBuffers`): reused by exact page count, within the cache's limits,
/// and given back when dropped. Each test has its own cache (the shared one serves every test).
@Suite struct LargeBuffersTests {
    static let bytes = (1 << 20) + 4000

    @Test func aReleasedBuffer_isReusedForTheSamePageCount_only() {
        let buffers = LargeBuffers()
        let (first, fresh) = buffers.allocate(Self.bytes)
        #expect(fresh)
        first.storeBytes(of: 7, as: Int.self)
        buffers.release(first, Self.bytes)
        #expect(buffers.cachedBytes == LargeBuffers.length(Self.bytes))
        // Another size is mapped afresh; the same page count gets the buffer back, as it was.
        let (other, otherFresh) = buffers.allocate(Self.bytes + 2 * LargeBuffers.pageSize)
        #expect(otherFresh && other != first)
        let (again, againFresh) = buffers.allocate(Self.bytes - 100)
        #expect(!againFresh && again == first && again.load(as: Int.self) == 7)
        #expect(buffers.cachedBytes == 0)
        buffers.release(again, Self.bytes)
        buffers.release(other, Self.bytes + 2 * LargeBuffers.pageSize)
        buffers.dropCached()
        #expect(buffers.cachedBytes == 0)
        #expect(buffers.allocate(Self.bytes).fresh)
    }

    @Test func pastTheLimits_theBuffersReleasedLongestAgo_goBackToTheKernel() {
        let length = LargeBuffers.length(Self.bytes)
        let buffers = LargeBuffers(largestCached: 2 * length, cachedBytesLimit: 3 * length)
        let big = buffers.allocate(3 * Self.bytes).0
        buffers.release(big, 3 * Self.bytes)
        #expect(buffers.cachedBytes == 0)
        let held = (0..<4).map { _ in buffers.allocate(Self.bytes).0 }
        for buffer in held { buffers.release(buffer, Self.bytes) }
        // Three fit under the limit: the first released went back, the newest is handed out first.
        #expect(buffers.cachedBytes == 3 * length)
        let handedOut = (0..<3).map { _ in buffers.allocate(Self.bytes) }
        #expect(handedOut.map(\.0) == [held[3], held[2], held[1]] && handedOut.allSatisfy { !$0.fresh })
        #expect(buffers.allocate(Self.bytes).fresh)
        // A buffer of another size pushes out the oldest of the cache.
        for (buffer, _) in handedOut { buffers.release(buffer, Self.bytes) }
        let other = buffers.allocate(2 * Self.bytes).0
        buffers.release(other, 2 * Self.bytes)
        #expect(buffers.cachedBytes == LargeBuffers.length(2 * Self.bytes) + length)
        #expect(buffers.allocate(Self.bytes).0 == held[1])
        buffers.dropCached()
    }

    /// Through `TensorStorage`: a zeroed tensor is zero whether its buffer is fresh or reused.
    @Test func tensorsOfLargeBuffers_areZeroedWhenAsked() {
        let count = Self.bytes / 4
        for _ in 0..<3 {
            let storage = TensorStorage(count: count)
            #expect(storage.base[0] == 0 && storage.base[count / 2] == 0 && storage.base[count - 1] == 0)
            for i in stride(from: 0, to: count, by: 97) { storage.base[i] = 5 }
        }
    }
}
