import Models
import Tensor

/// Prompt + response token sequences for one forward pass, right-padded into (B, T), with the
/// positions that predict response tokens: response token k of sequence i sits at position
/// promptLength + k and is predicted from position promptLength + k − 1.
public struct SequenceBatch: Sendable {
    public let prompts: [[Int32]]
    public let responses: [[Int32]]
    public let padded: PaddedBatch

    public init(prompts: [[Int32]], responses: [[Int32]]) {
        precondition(prompts.count == responses.count && !prompts.isEmpty, "SequenceBatch: mismatched or empty")
        self.prompts = prompts
        self.responses = responses
        padded = PaddedBatch(zip(prompts, responses).map { $0 + $1 })
    }

    public var count: Int { prompts.count }
    public var width: Int { padded.ids.shape[1] }
    public var responseTokenCount: Int { responses.reduce(0) { $0 + $1.count } }

    /// Targets (B, T): each response token at the position that predicts it, `ignored` elsewhere.
    public var responseTargets: TokenTensor {
        let t = width
        var targets = [Int32](repeating: TokenTensor.ignored, count: count * t)
        for i in 0..<count {
            for (k, token) in responses[i].enumerated() { targets[i * t + prompts[i].count + k - 1] = token }
        }
        return TokenTensor(shape: [count, t], ids: targets)
    }

    /// Per-response-token values placed at their predicting positions in a (B, T) tensor, 0 elsewhere.
    public func perToken(_ values: [[Float]]) -> Tensor {
        let t = width
        let out = Tensor(zeros: [count, t])
        for i in 0..<count {
            precondition(values[i].count == responses[i].count, "SequenceBatch: per-token values of the wrong length")
            for (k, v) in values[i].enumerated() { out[flat: i * t + prompts[i].count + k - 1] = v }
        }
        return out
    }

    /// The (B, T) mask of response-token positions.
    public var responseMask: Tensor { perToken(responses.map { [Float](repeating: 1, count: $0.count) }) }

    /// Reads a (B, T) tensor back into per-response-token lists.
    public func gather(_ t: Tensor) -> [[Float]] {
        let w = width
        return (0..<count).map { i in
            (0..<responses[i].count).map { k in t[flat: i * w + prompts[i].count + k - 1] }
        }
    }
}
