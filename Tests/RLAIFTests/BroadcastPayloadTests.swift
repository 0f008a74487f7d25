import Protocol
import Tensor
import TestSupport
import Testing

@testable import RLAIF

/// A weights broadcast's chunks: the header and values come back bit for bit, across chunk
/// boundaries, and what is not a header or brings the wrong count is refused with why.
@Suite struct BroadcastPayloadTests {
    static func state(_ role: ModelReplica.Role, count: Int, step: Int, seed: UInt64) -> ModelReplica.ModelState {
        var rng = SplitMix64(seed: seed)
        // Every bit pattern may occur in weights (NaN payloads included): they must travel as they are.
        let values = (0..<count).map { _ in Float(bitPattern: UInt32(truncatingIfNeeded: rng.next())) }
        return .init(
            role: role, values: Tensor(shape: [count], scalars: values), firstMoment: nil, secondMoment: nil,
            optimizerStep: step)
    }

    @Test func statesComeBackBitForBit_acrossChunkBoundaries() throws {
        let n = BroadcastPayload.chunkElements
        let states = [
            Self.state(.reference, count: n + 7, step: 0, seed: 1),
            Self.state(.reward, count: 5, step: 1 << 33, seed: 2),
            Self.state(.policy, count: n - 3, step: 41, seed: 3),
        ]
        let payload = BroadcastPayload(
            models: states.map { .init(role: $0.role, count: $0.values.count, optimizerStep: $0.optimizerStep) })
        let chunks = BroadcastPayload.chunks(of: states)
        #expect(chunks.count == 3 && payload.valueChunks == 3 && chunks.map(\.count) == [n, n, 9])
        let header = payload.header
        let read = try BroadcastPayload(header: header)
        #expect(read.models == payload.models)
        let back = try read.states(from: chunks)
        for (a, b) in zip(states, back) {
            #expect(a.role == b.role && a.optimizerStep == b.optimizerStep)
            #expect(a.values.scalars.map(\.bitPattern) == b.values.scalars.map(\.bitPattern))
            #expect(b.firstMoment == nil && b.secondMoment == nil)
        }
    }

    @Test func aValueChunk_inPlaceOfTheHeader_isRefused() throws {
        let chunk = Tensor(shape: [11], scalars: (0..<11).map(Float.init))
        #expect(throws: BroadcastError.self) { try BroadcastPayload(header: chunk) }
    }

    @Test func tooFewValues_areRefused_namingBothCounts() throws {
        let states = [Self.state(.policy, count: 10, step: 0, seed: 4)]
        let payload = BroadcastPayload(models: [.init(role: .policy, count: 12, optimizerStep: 0)])
        let error = try #require(throws: BroadcastError.self) {
            try payload.states(from: BroadcastPayload.chunks(of: states))
        }
        #expect(error.message.contains("10") && error.message.contains("12"))
    }

    @Test func broadcastSpec_roundTripsThroughItsBody() throws {
        let spec = BroadcastSpec(version: 9, epoch: 4, next: "tcp://10.0.0.2:5000", nextKey: "k", timeoutMs: 1500)
        #expect(try BroadcastSpec(wireBody: spec.wireBody, field: "b") == spec)
        let end = BroadcastSpec(version: 9, epoch: 4, next: nil, timeoutMs: 1)
        #expect(try BroadcastSpec(wireBody: end.wireBody, field: "b") == end)
    }
}
