import Foundation
import Protocol
import Tensor

/// Ring all-reduce of fixed-point gradient sums over ZeroMQ: reduce-scatter, then all-gather,
/// each in n − 1 steps in which every rank sends one chunk to its successor and receives one from
/// its predecessor.
///
/// Chunks travel in slices, pipelined: a rank adds a received slice and passes it on at once, so
/// adding overlaps the transfer of the next slice. While reducing, partial sums travel as exact
/// fixed-point units (packed to 32 bits where they fit; `PackedUnits`), and integer addition is
/// exact, so the total is bit-identical whatever the ring size, the ranks, or the order in which
/// slices meet. The rank that completes a chunk converts it to floats, and the all-gather passes
/// those floats on unchanged: every rank ends with the same bits. Every wait has a timeout; a ring
/// that breaks fails with `RingError`, and the coordinator re-forms it (new epoch) and redoes the
/// step.
public struct RingAllReduce: Sendable {
    public let rank: Int
    public let size: Int
    /// Identifies this reduction: chunks of any other step or epoch are ignored.
    public let step: UInt64
    public let epoch: UInt32
    public var chunkTimeout: Duration
    /// Elements per slice; every rank must use the same.
    public var sliceElements: Int

    /// 256 Ki elements: 1 MiB of packed units or floats per message.
    public static let defaultSliceElements = 1 << 18

    public init(
        rank: Int, size: Int, step: UInt64, epoch: UInt32, chunkTimeout: Duration = .seconds(30),
        sliceElements: Int = defaultSliceElements
    ) {
        precondition(size >= 1 && (0..<size).contains(rank), "RingAllReduce: rank \(rank) outside a ring of \(size)")
        precondition(sliceElements > 0, "RingAllReduce: slices need at least one element")
        self.rank = rank
        self.size = size
        self.step = step
        self.epoch = epoch
        self.chunkTimeout = chunkTimeout
        self.sliceElements = sliceElements
    }

    /// The element range of chunk `c` (chunks split the sum as evenly as possible).
    func chunkRange(_ c: Int, of count: Int) -> Range<Int> {
        (c * count / size)..<((c + 1) * count / size)
    }

    /// The element ranges of the slices of chunk `c`.
    func slices(_ c: Int, of count: Int) -> [Range<Int>] {
        let chunk = chunkRange(c, of: count)
        return stride(from: chunk.lowerBound, to: chunk.upperBound, by: sliceElements).map {
            $0..<min($0 + sliceElements, chunk.upperBound)
        }
    }

    /// Reduces `sum` with the other ranks: `next` sends to the successor, `mailbox` holds what the
    /// predecessor sent. Returns the total as floats (`ExactSum.value()`), identical on every rank.
    public func run(_ sum: consuming ExactSum, next: Endpoint, mailbox: ChunkMailbox) async throws -> Tensor {
        var total = consume sum  // owned: adding into it must not copy the caller's buffer
        guard size > 1 else { return total.value() }
        let n = total.units.count
        // Every element is written below (its chunk's floats), so no zero-fill.
        let result = Tensor(storage: TensorStorage(count: n, zeroed: false), offset: 0, shape: [n])
        func mod(_ x: Int) -> Int { ((x % size) + size) % size }

        // Reduce-scatter. Step s sends chunk rank − s and receives chunk rank − s − 1, which is
        // the one step s + 1 sends: each received slice goes on as soon as it is added.
        for (k, slice) in slices(rank, of: n).enumerated() {
            await next.send(partial(total, slice, chunk: rank, slice: k))
        }
        for s in 0..<(size - 1) {
            let c = mod(rank - s - 1)
            for (k, slice) in slices(c, of: n).enumerated() {
                let payload = try await mailbox.take(
                    step: step, epoch: epoch, phase: .reduceScatter, chunk: c, slice: k, timeout: chunkTimeout)
                try Self.add(payload, into: &total, at: slice.lowerBound, count: slice.count)
                if s < size - 2 {
                    await next.send(partial(total, slice, chunk: c, slice: k))
                } else {
                    // Chunk rank + 1 is complete here: its floats, written into the result, start the
                    // all-gather as a view of it (nothing writes that range again).
                    total.values(slice, into: result.pointer + slice.lowerBound)
                    let values = Tensor(storage: result.storage, offset: slice.lowerBound, shape: [slice.count])
                    await next.send(gathered(values, chunk: c, slice: k))
                }
            }
        }
        // All-gather: step s receives chunk rank − s and passes it on, unchanged, until it has
        // gone round.
        for s in 0..<(size - 1) {
            let c = mod(rank - s)
            for (k, slice) in slices(c, of: n).enumerated() {
                let payload = try await mailbox.take(
                    step: step, epoch: epoch, phase: .allGather, chunk: c, slice: k, timeout: chunkTimeout)
                guard case .values(let values) = payload, values.count == slice.count else {
                    throw RingError(message: "all-gather slice \(k) of chunk \(c) has the wrong size")
                }
                (result.pointer + slice.lowerBound).update(from: values.pointer, count: slice.count)
                if s < size - 2 { await next.send(gathered(values, chunk: c, slice: k)) }
            }
        }
        return result
    }

    /// Adds a received partial sum of `count` elements at `offset`.
    static func add(_ payload: Wire.ChunkPayload, into total: inout ExactSum, at offset: Int, count: Int) throws {
        switch payload {
        case .units(let units) where units.count == count:
            try units.withInt64s { (u) throws(ExactSum.Overflow) in try total.add(units: u, at: offset) }
        case .packedUnits(let low, let patches) where low.count == count:
            try low.withInt32s { (l) throws(ExactSum.Overflow) in
                try patches.withInt64s { (p) throws(ExactSum.Overflow) in try total.add(low: l, patches: p, at: offset) }
            }
        default:
            throw RingError(message: "a reduce-scatter slice at \(offset) is not \(count) partial sums")
        }
    }

    private func partial(_ total: ExactSum, _ slice: Range<Int>, chunk: Int, slice k: Int) -> Wire.Message {
        let payload: Wire.ChunkPayload =
            if let (low, patches) = total.packed(slice) {
                .packedUnits(low: WireWords(low), patches: WireWords(patches))
            } else {
                .units(WireWords(Array(total.units[slice])))
            }
        return message(.reduceScatter, chunk: chunk, slice: k, payload)
    }

    private func gathered(_ values: Tensor, chunk: Int, slice k: Int) -> Wire.Message {
        message(.allGather, chunk: chunk, slice: k, .values(values))
    }

    private func message(_ phase: Wire.RingPhase, chunk: Int, slice: Int, _ payload: Wire.ChunkPayload) -> Wire.Message {
        .gradientChunk(
            .init(
                step: step, ringEpoch: epoch, phase: phase, chunkIndex: UInt32(chunk), sliceIndex: UInt32(slice),
                fromRank: UInt16(rank), payload: payload))
    }
}

/// A ring step that could not finish.
public struct RingError: Error, CustomStringConvertible, Equatable, Sendable {
    public let message: String
    public var description: String { message }
}

/// Slices received from the predecessor, waiting to be taken by the reduction that expects them.
/// Slices of older steps or epochs are dropped when a newer reduction asks.
public actor ChunkMailbox {
    struct Key: Hashable {
        let step: UInt64, epoch: UInt32, phase: Wire.RingPhase, chunk: UInt32, slice: UInt32
    }

    private var arrived: [Key: Wire.ChunkPayload] = [:]
    private var waiting: [Key: CheckedContinuation<Wire.ChunkPayload, any Error>] = [:]
    /// The newest (step, epoch) asked for: anything older is over.
    private var current: (step: UInt64, epoch: UInt32) = (0, 0)

    public init() {}

    /// Feeds every gradient chunk that `endpoint` receives into the mailbox, until it closes.
    public nonisolated func pump(from endpoint: Endpoint) -> Task<Void, Never> {
        Task {
            for await inbound in endpoint.incoming {
                guard case .gradientChunk(let c) = inbound.message else { continue }
                let key = Key(step: c.step, epoch: c.ringEpoch, phase: c.phase, chunk: c.chunkIndex, slice: c.sliceIndex)
                await self.deliver(key, c.payload)
            }
        }
    }

    func deliver(_ key: Key, _ payload: Wire.ChunkPayload) {
        if let waiter = waiting.removeValue(forKey: key) {
            waiter.resume(returning: payload)
        } else if (key.step, key.epoch) >= current {
            arrived[key] = payload
        }
    }

    /// The slice for (step, epoch, phase, chunk, slice), waiting at most `timeout` for it.
    public func take(
        step: UInt64, epoch: UInt32, phase: Wire.RingPhase, chunk: Int, slice: Int, timeout: Duration
    ) async throws -> Wire.ChunkPayload {
        let key = Key(step: step, epoch: epoch, phase: phase, chunk: UInt32(chunk), slice: UInt32(slice))
        if (step, epoch) > current {
            // Older reductions are over: their leftovers can go.
            current = (step, epoch)
            arrived = arrived.filter { ($0.key.step, $0.key.epoch) >= current }
        }
        if let payload = arrived.removeValue(forKey: key) { return payload }
        let timer = Task { [weak self] in
            try? await Task.sleep(for: timeout)
            await self?.expire(key, after: timeout)
        }
        defer { timer.cancel() }
        return try await withCheckedThrowingContinuation { waiting[key] = $0 }
    }

    private func expire(_ key: Key, after timeout: Duration) {
        waiting.removeValue(forKey: key)?.resume(
            throwing: RingError(
                message:
                    "no \(key.phase) slice \(key.slice) of chunk \(key.chunk), step \(key.step) (epoch \(key.epoch)), within \(timeout)"
            ))
    }
}
