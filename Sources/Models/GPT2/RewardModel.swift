import Tensor

/// A language model's trunk with a scalar score read at each sequence's last real token (the
/// layout of transformers' …ForSequenceClassification with one label: the trunk's names,
/// `score.weight`, no bias, no LM head).
public final class RewardModel: Module, @unchecked Sendable {
    public let backbone: any CausalLanguageModel
    public let head: ScalarHead

    public init(backbone: any CausalLanguageModel, seed: UInt64) {
        self.backbone = backbone
        head = ScalarHead(width: backbone.width, bias: false, seed: seed, index: 1)
    }

    public var namedParameters: [(String, Variable)] {
        backbone.trunkParameters + head.namedParameters(prefix: "score")
    }

    /// One score per sequence. `batch` holds right-padded sequences; each is scored at its last
    /// real token, so padding never changes a score.
    public func scores(_ batch: PaddedBatch) -> Variable {
        let (b, t) = (batch.ids.shape[0], batch.ids.shape[1])
        let perPosition = head(backbone.hiddenStates(batch.ids)).reshaped([b, t])  // (B, T)
        return (perPosition * Variable(batch.lastTokenMask)).sum(axis: 1)  // (B)
    }
}

/// Sequences of different lengths, right-padded into one (B, T) batch.
///
/// With a causal model, padding after a sequence cannot influence its real positions, so no
/// attention mask is needed; losses and reads skip the padded positions.
public struct PaddedBatch: Sendable {
    public let ids: TokenTensor
    public let lengths: [Int]
    /// (B, T): 1 at each sequence's last real position.
    public let lastTokenMask: Tensor

    public init(_ sequences: [[Int32]], padding: Int32 = 0) {
        precondition(!sequences.isEmpty && sequences.allSatisfy { !$0.isEmpty }, "PaddedBatch: empty sequence")
        let t = sequences.map(\.count).max()!
        var ids: [Int32] = []
        let mask = Tensor(zeros: [sequences.count, t])
        for (i, s) in sequences.enumerated() {
            ids += s + Array(repeating: padding, count: t - s.count)
            mask[flat: i * t + s.count - 1] = 1
        }
        self.ids = TokenTensor(shape: [sequences.count, t], ids: ids)
        lengths = sequences.map(\.count)
        lastTokenMask = mask
    }
}
