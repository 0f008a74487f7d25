import Foundation
import Protocol
import Tensor

/// Ring all-reduce of fixed-point gradient sums over ZeroMQ: reduce-scatter, then all-gather,
/// each in n − 1 steps in which every rank sends one chunk to its successor and receives one from
/// its predecessor. It runs on its `RingPort`'s thread (`RingLink.reduce`), which owns the sockets.
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

    /// Reduces `sum` with the other ranks, on the port's thread: `next` is the successor, and
    /// `session` takes what the predecessor sent. Returns the total as floats (`ExactSum.value()`),
    /// identical on every rank.
    public func run(_ sum: consuming ExactSum, next: RingSession.Successor, session: RingSession) throws -> Tensor {
        do {
            return try reduce(sum, next: next, session: session)
        } catch let error as RingPortError {
            throw RingError(message: error.description)
        }
    }

    private func reduce(_ sum: consuming ExactSum, next: RingSession.Successor, session: RingSession) throws -> Tensor {
        let total = consume sum  // owned: the words of its own chunk go out as they lie
        guard size > 1 else { return total.value() }
        let n = total.count
        // Every element is written below (its chunk's floats), so no zero-fill.
        let result = Tensor(storage: TensorStorage(count: n, zeroed: false), offset: 0, shape: [n])
        func mod(_ x: Int) -> Int { ((x % size) + size) % size }
        func view(_ slice: Range<Int>) -> Tensor {
            Tensor(storage: result.storage, offset: slice.lowerBound, shape: [slice.count])
        }

        // Reduce-scatter. Step s sends chunk rank − s and receives chunk rank − s − 1, which is
        // the one step s + 1 sends: each received slice goes on as soon as it is added. A slice
        // read in place from the predecessor's shared segment is confirmed whole after it is used
        // and before anything made from it goes on.
        for (k, slice) in slices(rank, of: n).enumerated() {
            session.send(partial(total.partial(slice), chunk: rank, slice: k), to: next)
        }
        for s in 0..<(size - 1) {
            let c = mod(rank - s - 1)
            for (k, slice) in slices(c, of: n).enumerated() {
                let payload = try session.take(key(.reduceScatter, c, k), timeout: chunkTimeout)
                // This rank never reads chunk c's units again: the new partial sum is made in the
                // pass that packs it for the successor or, at the last step, turns it into floats.
                if s < size - 2 {
                    let sum = try Self.withReceived(payload, count: slice.count) {
                        try total.partialSum(slice, adding: $0)
                    }
                    try session.confirm(key(.reduceScatter, c, k))
                    session.send(partial(sum, chunk: c, slice: k), to: next)
                } else {
                    // Chunk rank + 1 is complete here: its floats, written into the result, start the
                    // all-gather as a view of it (nothing writes that range again).
                    try Self.withReceived(payload, count: slice.count) {
                        try total.valuesOfSum(slice, adding: $0, into: result.pointer + slice.lowerBound)
                    }
                    try session.confirm(key(.reduceScatter, c, k))
                    session.send(gathered(view(slice), chunk: c, slice: k), to: next)
                }
            }
        }
        // All-gather: step s receives chunk rank − s and passes it on, unchanged, until it has
        // gone round (from the result, where it now lies confirmed).
        for s in 0..<(size - 1) {
            let c = mod(rank - s)
            for (k, slice) in slices(c, of: n).enumerated() {
                let payload = try session.take(key(.allGather, c, k), timeout: chunkTimeout)
                guard case .values(let values) = payload, values.count == slice.count else {
                    throw RingError(message: "all-gather slice \(k) of chunk \(c) has the wrong size")
                }
                (result.pointer + slice.lowerBound).update(from: values.pointer, count: slice.count)
                try session.confirm(key(.allGather, c, k))
                if s < size - 2 { session.send(gathered(view(slice), chunk: c, slice: k), to: next) }
            }
        }
        // The successor needs the last slices: the step is not done until libzmq has them.
        try session.finishSending(timeout: chunkTimeout)
        return result
    }

    /// Names slice `k` of chunk `c` of this reduction.
    private func key(_ phase: Wire.RingPhase, _ c: Int, _ k: Int) -> RingSlice {
        RingSlice(step: step, epoch: epoch, phase: phase, chunk: UInt32(c), slice: UInt32(k))
    }

    /// Calls `body` with a reduce-scatter payload's units, in place in the received frames.
    static func withReceived<R>(_ payload: Wire.ChunkPayload, count: Int, _ body: (ReceivedUnits) throws -> R) throws
        -> R
    {
        switch payload {
        case .units(let units) where units.count == count:
            return try units.withInt64s { try body(.units($0)) }
        case .packedUnits(let low, let patches) where low.count == count:
            return try low.withInt32s { l in try patches.withInt64s { try body(.packed(low: l, patches: $0)) } }
        default:
            throw RingError(message: "a reduce-scatter slice of \(count) elements does not hold \(count) partial sums")
        }
    }

    private func partial(_ sum: PartialSum, chunk: Int, slice k: Int) -> Wire.Message {
        let payload: Wire.ChunkPayload =
            switch sum {
            case .packed(let low, let patches): .packedUnits(low: WireWords(low), patches: WireWords(patches))
            case .units(let units): .units(WireWords(units))
            }
        return message(.reduceScatter, chunk: chunk, slice: k, payload)
    }

    private func gathered(_ values: Tensor, chunk: Int, slice k: Int) -> Wire.Message {
        message(.allGather, chunk: chunk, slice: k, .values(values))
    }

    private func message(_ phase: Wire.RingPhase, chunk: Int, slice: Int, _ payload: Wire.ChunkPayload) -> Wire.Message
    {
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
