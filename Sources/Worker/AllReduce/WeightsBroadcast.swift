import Foundation
import Protocol
import RLAIF
import Tensor

/// A weights broadcast on the ring ports (`BroadcastSpec`): the source sends its header and
/// value chunks to the first worker of the chain; each worker takes them in order, forwarding
/// each to the next as it arrives, so the chain's links all carry data at once. Chunks go in
/// frames, never through a shared segment, which the source's next step would reuse.
extension RingLink {
    /// Sends `states` (values only) down the chain that starts at `spec.next`.
    func sendWeights(_ states: [ModelReplica.ModelState], _ spec: BroadcastSpec) async throws {
        guard let next = spec.next else { return }
        let security = try security(next: next, key: spec.nextKey)
        let payload = BroadcastPayload(
            models: states.map { .init(role: $0.role, count: $0.values.count, optimizerStep: $0.optimizerStep) })
        let chunks = [payload.header] + BroadcastPayload.chunks(of: states)
        let timeout = Duration.milliseconds(spec.timeoutMs)
        try await port.run { session in
            let successor = try session.successor(next, security: security, sharedMemory: false)
            for (i, chunk) in chunks.enumerated() { session.send(Self.message(spec, chunk: i, chunk), to: successor) }
            try session.finishSending(timeout: timeout)
        }
    }

    /// Takes the broadcast `spec` names from the predecessor, forwarding it to `spec.next`.
    func receiveWeights(_ spec: BroadcastSpec) async throws -> [ModelReplica.ModelState] {
        let security = try spec.next.map { try self.security(next: $0, key: spec.nextKey) }
        let timeout = Duration.milliseconds(spec.timeoutMs)
        return try await port.run { session in
            let successor = try spec.next.map { try session.successor($0, security: security!, sharedMemory: false) }
            func take(_ i: Int) throws -> Tensor {
                let key = RingSlice(
                    step: spec.version, epoch: spec.epoch, phase: .broadcast, chunk: UInt32(i), slice: 0)
                guard case .values(let chunk) = try session.take(key, timeout: timeout) else {
                    throw BroadcastError(message: "chunk \(i) of the weights broadcast holds no values")
                }
                if let successor { session.send(Self.message(spec, chunk: i, chunk), to: successor) }
                return chunk
            }
            let payload = try BroadcastPayload(header: try take(0))
            let chunks = try (0..<payload.valueChunks).map { try take($0 + 1) }
            if successor != nil { try session.finishSending(timeout: timeout) }
            return try payload.states(from: chunks)
        }
    }

    private static func message(_ spec: BroadcastSpec, chunk i: Int, _ values: Tensor) -> Wire.Message {
        .gradientChunk(
            .init(
                step: spec.version, ringEpoch: spec.epoch, phase: .broadcast, chunkIndex: UInt32(i), fromRank: 0,
                payload: .values(values)))
    }
}
