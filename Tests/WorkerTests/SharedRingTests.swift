import Foundation
import Logging
import Protocol
import RLAIF
import Tensor
import Testing

@testable import Worker

/// Rings whose same-host slices go through shared segments: the same bits as frames, whatever
/// the ring size, the segment's room, or how many reductions reuse it.
@Suite(.timeLimit(.minutes(1))) struct SharedRingTests {
    /// Runs `steps` reductions of the same sums on one set of links (segments of
    /// `sharedSegmentBytes`, 0 for frames only); returns every rank's result of every step and
    /// how many slices came through shared memory.
    static func reductions(
        size: Int, steps: Int = 1, gradients: [Tensor], sharedSegmentBytes: Int, bind: String = "tcp://127.0.0.1:*",
        followsDoorbell: Bool = true
    ) async throws -> (results: [Tensor], sharedReads: Int, doorbellReads: Int) {
        let links = try (0..<size).map { _ in
            try RingLink(
                bind: bind, keyPair: nil, sharedSegmentBytes: sharedSegmentBytes, followsDoorbell: followsDoorbell,
                logger: Logger(label: "test"))
        }
        defer { for l in links { l.close() } }
        var partial = (0..<size).map { _ in ExactSum(count: gradients[0].count) }
        for (micro, g) in gradients.enumerated() { try partial[(micro * 5 + 1) % size].add(g) }
        let sums = partial
        var results: [Tensor] = []
        for step in 1...steps {
            results += try await withThrowingTaskGroup(of: Tensor.self) { group in
                for r in 0..<size {
                    group.addTask {
                        let ring = RingAllReduce(
                            rank: r, size: size, step: UInt64(step), epoch: 1, chunkTimeout: .seconds(20),
                            sliceElements: 100)
                        return try await links[r].reduce(
                            ring, sums[r], next: links[(r + 1) % size].port.address, key: nil)
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
        }
        return (
            results, links.reduce(0) { $0 + $1.port.slicesFromSharedMemory },
            links.reduce(0) { $0 + $1.port.slicesByDoorbell }
        )
    }

    @Test(arguments: [2, 3, 4])
    func sharedSlices_giveTheBitsOfFrames(size: Int) async throws {
        for gradients in [RingAllReduceTests.gradients, RingAllReduceTests.gradientLike] {
            let framed = try await Self.reductions(size: size, gradients: gradients, sharedSegmentBytes: 0)
            let shared = try await Self.reductions(
                size: size, gradients: gradients, sharedSegmentBytes: RingPort.defaultSharedSegmentBytes)
            let viaIPC = try await Self.reductions(
                size: size, gradients: gradients, sharedSegmentBytes: 1 << 20, bind: "ipc://*")
            #expect(framed.sharedReads == 0)
            // 1003 elements in slices of 100: every slice of both phases, on every rank.
            let slicesPerRank = 2 * (size - 1) * Int((Double(1003) / Double(size) / 100).rounded(.up))
            #expect(shared.sharedReads >= size * slicesPerRank - size && viaIPC.sharedReads == shared.sharedReads)
            let reference = framed.results[0].checksum
            for t in framed.results + shared.results + viaIPC.results { #expect(t.checksum == reference) }
        }
    }

    @Test func aSmallSegment_reusedOverManyReductions_mixesSharedAndFramedSlices_withTheSameBits() async throws {
        // Halves of about 2 KiB: a few slices of each reduction fit, the rest travel in frames,
        // and every reduction clears and reuses a half written two reductions before.
        let gradients = RingAllReduceTests.gradientLike
        let framed = try await Self.reductions(size: 2, steps: 1, gradients: gradients, sharedSegmentBytes: 0)
        let mixed = try await Self.reductions(size: 2, steps: 6, gradients: gradients, sharedSegmentBytes: 64 + 4096)
        #expect(mixed.sharedReads > 0 && mixed.sharedReads < 6 * 2 * 12)
        for t in mixed.results { #expect(t.checksum == framed.results[0].checksum) }
    }

    /// After the first location message of a ring epoch, a rank reads its predecessor's slices
    /// as the doorbell shows them; the bits are those of frames, and nothing is read twice.
    @Test(arguments: [2, 3])
    func theDoorbell_deliversSlicesBeforeTheirLocation_withTheBitsOfFrames(size: Int) async throws {
        let gradients = RingAllReduceTests.gradientLike
        let framed = try await Self.reductions(size: size, gradients: gradients, sharedSegmentBytes: 0)
        let rung = try await Self.reductions(
            size: size, steps: 8, gradients: gradients, sharedSegmentBytes: RingPort.defaultSharedSegmentBytes)
        let located = try await Self.reductions(
            size: size, steps: 8, gradients: gradients, sharedSegmentBytes: RingPort.defaultSharedSegmentBytes,
            followsDoorbell: false)
        let slicesPerStep = size * 2 * (size - 1) * Int((Double(1003) / Double(size) / 100).rounded(.up))
        #expect(rung.doorbellReads > 0 && located.doorbellReads == 0)
        // Each slice counted once, whichever way it came first.
        #expect(rung.sharedReads <= 8 * slicesPerStep && located.sharedReads <= 8 * slicesPerStep)
        for t in rung.results + located.results { #expect(t.checksum == framed.results[0].checksum) }
    }

    @Test func aShiftedSharedSlice_isDropped_andThePortKeepsServing() async throws {
        let link = try RingLink(bind: "tcp://127.0.0.1:*", keyPair: nil, logger: Logger(label: "test"))
        defer { link.close() }
        let peer = try ZMQSocket(ZMQContext.shared, .dealer)
        defer { peer.close() }
        try peer.connect(link.port.address)
        // A location in no segment (this process's stdin), then one that also carries frames.
        var chunk = RingAllReduceTests.forgedSlice(1)
        guard case .gradientChunk(var c) = chunk else { return }
        c.shared = SharedSlice(pid: UInt32(getpid()), descriptor: 0, token: [1, 2], offset: 64, sequence: 1)
        chunk = .gradientChunk(c)
        try peer.send(Wire.encode(chunk).control)
        try peer.send(Wire.encode(chunk).control, more: true)
        try peer.send(Tensor(shape: [4], repeating: 1).scalars.withUnsafeBytes { Array($0) })
        #expect(!(await RingAllReduceTests.delivered(to: link)))
        #expect(link.port.drops.byReason["badValue"] == 2)
        let good = Wire.encode(RingAllReduceTests.forgedSlice(1))
        try peer.send(good.control, more: true)
        try peer.send(Tensor(shape: [4], repeating: 1).scalars.withUnsafeBytes { Array($0) })
        #expect(await RingAllReduceTests.delivered(to: link))
    }
}
