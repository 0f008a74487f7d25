import Foundation
import Protocol
import Tensor

/// Ring all-reduce of fixed-point gradient sums over ZeroMQ: reduce-scatter, then all-gather,
/// each in n − 1 steps in which every rank sends one chunk to its successor and receives one from
/// its predecessor.
///
/// Partial sums travel as `ExactSum` units (int64 tensors), and integer addition is exact, so the
/// result is bit-identical whatever the ring size, the ranks, or the order in which chunks meet.
/// Every wait has a timeout; a ring that breaks fails with `RingError`, and the coordinator re-forms
/// it (new epoch) and redoes the step.
public struct RingAllReduce: Sendable {
    public let rank: Int
    public let size: Int
    /// Identifies this reduction: chunks of any other step or epoch are ignored.
    public let step: UInt64
    public let epoch: UInt32
    public var chunkTimeout: Duration

    public init(rank: Int, size: Int, step: UInt64, epoch: UInt32, chunkTimeout: Duration = .seconds(30)) {
        precondition(size >= 1 && (0..<size).contains(rank), "RingAllReduce: rank \(rank) outside a ring of \(size)")
        self.rank = rank
        self.size = size
        self.step = step
        self.epoch = epoch
        self.chunkTimeout = chunkTimeout
    }

    /// The element range of chunk `c` (chunks split the sum as evenly as possible).
    func chunkRange(_ c: Int, of count: Int) -> Range<Int> {
        (c * count / size)..<((c + 1) * count / size)
    }

    /// Reduces `sum` with the other ranks: `next` sends to the successor, `mailbox` holds what the
    /// predecessor sent. Returns the total, identical on every rank.
    public func run(_ sum: consuming ExactSum, next: Endpoint, mailbox: ChunkMailbox) async throws -> ExactSum {
        var total = consume sum  // owned: adding into it must not copy the caller's buffer
        guard size > 1 else { return total }
        let n = total.units.count
        func mod(_ x: Int) -> Int { ((x % size) + size) % size }
        // Reduce-scatter: after n − 1 steps, this rank holds the full sum of chunk rank + 1.
        for s in 0..<(size - 1) {
            let send = mod(rank - s), receive = mod(rank - s - 1)
            await next.send(chunk(total, send, phase: .reduceScatter, count: n))
            let incoming = try await mailbox.take(
                step: step, epoch: epoch, phase: .reduceScatter, chunk: receive, timeout: chunkTimeout)
            try total.add(units: incoming, at: chunkRange(receive, of: n).lowerBound)
        }
        // All-gather: pass the finished chunks around the ring.
        for s in 0..<(size - 1) {
            let send = mod(rank + 1 - s), receive = mod(rank - s)
            await next.send(chunk(total, send, phase: .allGather, count: n))
            let incoming = try await mailbox.take(
                step: step, epoch: epoch, phase: .allGather, chunk: receive, timeout: chunkTimeout)
            total.replace(units: incoming, at: chunkRange(receive, of: n).lowerBound)
        }
        return total
    }

    private func chunk(_ total: ExactSum, _ c: Int, phase: Wire.RingPhase, count: Int) -> Wire.Message {
        .gradientChunk(
            .init(
                step: step, ringEpoch: epoch, phase: phase, chunkIndex: UInt32(c), fromRank: UInt16(rank),
                data: .int64(Array(total.units[chunkRange(c, of: count)]))))
    }
}

/// A ring step that could not finish.
public struct RingError: Error, CustomStringConvertible, Equatable, Sendable {
    public let message: String
    public var description: String { message }
}

/// Chunks received from the predecessor, waiting to be taken by the reduction that expects them.
/// Chunks of other steps or epochs are dropped when a newer reduction asks.
public actor ChunkMailbox {
    struct Key: Hashable {
        let step: UInt64, epoch: UInt32, phase: Wire.RingPhase, chunk: UInt32
    }

    private var arrived: [Key: [Int64]] = [:]
    private var waiting: [Key: CheckedContinuation<[Int64], any Error>] = [:]

    public init() {}

    /// Feeds every gradient chunk that `endpoint` receives into the mailbox, until it closes.
    public nonisolated func pump(from endpoint: Endpoint) -> Task<Void, Never> {
        Task {
            for await inbound in endpoint.incoming {
                guard case .gradientChunk(let c) = inbound.message, case .int64(let units) = c.data else { continue }
                await self.deliver(Key(step: c.step, epoch: c.ringEpoch, phase: c.phase, chunk: c.chunkIndex), units)
            }
        }
    }

    func deliver(_ key: Key, _ units: [Int64]) {
        if let waiter = waiting.removeValue(forKey: key) {
            waiter.resume(returning: units)
        } else {
            arrived[key] = units
        }
    }

    /// The chunk for (step, epoch, phase, chunk), waiting at most `timeout` for it.
    public func take(step: UInt64, epoch: UInt32, phase: Wire.RingPhase, chunk: Int, timeout: Duration) async throws
        -> [Int64]
    {
        let key = Key(step: step, epoch: epoch, phase: phase, chunk: UInt32(chunk))
        // Older reductions are over: their leftovers can go.
        arrived = arrived.filter { $0.key.step >= step && ($0.key.step > step || $0.key.epoch >= epoch) }
        if let units = arrived.removeValue(forKey: key) { return units }
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
                message: "no \(key.phase) chunk \(key.chunk) of step \(key.step) (epoch \(key.epoch)) within \(timeout)"
            ))
    }
}
