import Foundation
import Tensor

/// What rlaif needs of a decoder-only language model, whatever its architecture (GPT-2, the
/// Llama family): hidden states and logits for token ids, cached generation, saving.
public protocol CausalLanguageModel: Module, AnyObject, Sendable {
    var vocabularySize: Int { get }
    /// Positions the model reads at most.
    var contextLength: Int { get }
    /// Width of the hidden states (what a value or reward head reads).
    var width: Int { get }
    /// Transformer blocks (each with its own key/value cache in generation).
    var layerCount: Int { get }
    /// Blocks recomputed in backward instead of keeping their activations (training memory).
    var gradientCheckpointing: Bool { get set }
    /// How the weights' matrix products multiply (Float32, or bfloat16 inputs).
    var productPrecision: ProductPrecision { get set }
    /// The caller's count of updates to these weights: while it stays the same, `generate` reuses
    /// the weights it packed for decode steps. Set it anew after every change to the weights;
    /// nil (the default) packs per call and keeps nothing.
    var decodeWeightsVersion: UInt64? { get set }
    /// The final hidden states (B, T, C) for token ids (B, T).
    func hiddenStates(_ ids: TokenTensor) -> Variable
    /// Next-token logits (B, T, V).
    func logits(_ ids: TokenTensor) -> Variable
    /// The LM head applied to hidden states (…, C) → (…, V).
    func headLogits(_ hidden: Variable) -> Variable
    /// The trained leaves `headLogits` reads (the embedding when tied).
    var headParameters: [Variable] { get }
    /// A continuation of each prompt, with a key/value cache (see `GPT2.generate`).
    func generate(prompts: [[Int32]], sampleIDs: [UInt64]?, options: SamplingOptions, valueHead: ScalarHead?)
        -> [Generation]
    /// Mean cross-entropy of predicting ids[:, t+1] from ids[:, ...t], as transformers' `labels=ids`.
    func languageModelLoss(_ ids: TokenTensor) -> Variable
    /// The parameters without an untied LM head: what a reward model's trunk trains.
    var trunkParameters: [(String, Variable)] { get }
    /// An independent model with the same weights (the frozen reference, a reward model's trunk).
    func copy() -> Self
    /// The `config.json` object `save` writes (`endOfText`: the tokenizer's end-of-text id).
    func configObject(endOfText: Int32?) -> [String: Any]
    /// transformers' class for a scalar head on this trunk (one label).
    var sequenceClassificationArchitecture: String { get }
    /// Writes the model in transformers' layout (`endOfText`: the tokenizer's end-of-text id).
    func save(to directory: URL, endOfText: Int32?) throws(ModelError)
}

extension CausalLanguageModel {
    public func generate(prompts: [[Int32]], sampleIDs: [UInt64]? = nil, options: SamplingOptions) -> [Generation] {
        generate(prompts: prompts, sampleIDs: sampleIDs, options: options, valueHead: nil)
    }

    /// Mean cross-entropy of predicting ids[:, t+1] from ids[:, ...t], as transformers' `labels=ids`.
    public func languageModelLoss(_ ids: TokenTensor) -> Variable {
        logits(ids).crossEntropy(targets: Self.nextTokenTargets(ids))
    }

    /// (B, T) targets: each position's next token, and `ignored` at the last position.
    public static func nextTokenTargets(_ ids: TokenTensor) -> TokenTensor {
        let (b, t) = (ids.shape[0], ids.shape[1])
        var targets = [Int32](repeating: TokenTensor.ignored, count: b * t)
        for i in 0..<b { for j in 0..<(t - 1) { targets[i * t + j] = ids.ids[i * t + j + 1] } }
        return TokenTensor(shape: [b, t], ids: targets)
    }

    /// log p of each target under the LM head over `hidden` (B, T, C), targets (B, T): (B, T).
    /// With gradient checkpointing and logits past `headChunkFloats`, the logits exist one chunk
    /// of rows at a time, in backward too and without a graph (each row's value is its own, so the result is the
    /// same math; a chunk's product may round differently from the whole one's).
    public func headLogProbs(
        _ hidden: Variable, targets: TokenTensor, chunkFloats: Int = Self.headChunkFloats
    ) -> Variable {
        let (b, t) = (hidden.shape[0], hidden.shape[1])
        let rows = b * t
        let chunkRows = max(1, chunkFloats / max(vocabularySize, 1))
        guard gradientCheckpointing, rows > chunkRows else {
            return headLogits(hidden).gatherLogProbs(targets)
        }
        let flat = hidden.reshaped([rows, hidden.shape[2]])
        let parts = stride(from: 0, to: rows, by: chunkRows).map { start in
            let range = start..<min(rows, start + chunkRows)
            let chunk = TokenTensor(shape: [range.count], ids: Array(targets.ids[range]))
            return Variable.recomputed([flat.slice(axis: 0, range)], parameters: headParameters) { [self] v in
                headLogits(v[0]).gatherLogProbs(chunk)
            }
        }
        return Variable.concatenatedRows(parts).reshaped([b, t])
    }

    /// Logits elements a chunk of `headLogProbs` holds at most (16 MB of Float32).
    public static var headChunkFloats: Int { 1 << 22 }

    /// log p(ids[:, t+1] | ids[:, ...t]) for every position but the last: (B, T−1).
    public func nextTokenLogProbs(_ ids: TokenTensor) -> Variable {
        let t = ids.shape[1]
        // (B, T) with a 0 in the last column, whose next token is unknown.
        return logits(ids).gatherLogProbs(Self.nextTokenTargets(ids)).slice(axis: 1, 0..<(t - 1))
    }

    /// log p of each continuation token given everything before it, for prompt/continuation pairs
    /// batched with right padding: (B, T) with 0 outside the continuations, so `.sum(axis: 1)` is
    /// each continuation's total. Differentiable (for KL, PPO ratios, DPO).
    public func continuationLogProbs(prompts: [[Int32]], continuations: [[Int32]]) -> Variable {
        precondition(
            prompts.count == continuations.count,
            "continuationLogProbs: \(prompts.count) prompts, \(continuations.count) continuations")
        let batch = PaddedBatch(zip(prompts, continuations).map { $0 + $1 })
        let (b, t) = (batch.ids.shape[0], batch.ids.shape[1])
        // Position j predicts token j+1; only predictions of continuation tokens count.
        var targets = [Int32](repeating: TokenTensor.ignored, count: b * t)
        for i in 0..<b {
            for j in prompts[i].count..<(prompts[i].count + continuations[i].count) {
                targets[i * t + j - 1] = batch.ids.ids[i * t + j]
            }
        }
        return logits(batch.ids).gatherLogProbs(TokenTensor(shape: [b, t], ids: targets))
    }

    /// Writes `config.json` (`configObject`) and Float32 `model.safetensors` that transformers
    /// loads as the same class.
    public func save(to directory: URL, endOfText: Int32? = nil) throws(ModelError) {
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let json = try JSONSerialization.data(
                withJSONObject: configObject(endOfText: endOfText), options: [.prettyPrinted, .sortedKeys])
            try json.write(to: directory.appendingPathComponent("config.json"), options: .atomic)
        } catch {
            throw ModelError(message: "cannot write \(directory.path)/config.json: \(error.localizedDescription)")
        }
        do {
            try SafeTensors.write(
                namedParameters.map { ($0.0, $0.1.value) },
                to: directory.appendingPathComponent(CheckpointFiles.single))
        } catch {
            throw ModelError(message: error.description)
        }
    }

    /// The reference path for tests: recomputes the whole sequence for every token (no cache).
    public func generateWithoutCache(prompts: [[Int32]], sampleIDs: [UInt64]? = nil, options: SamplingOptions)
        -> [Generation]
    {
        Autograd.inferenceMode {
            let ids = sampleIDs ?? prompts.indices.map(UInt64.init)
            return zip(prompts, ids).map { prompt, id in
                var state = SequenceState(prompt: prompt, id: id, options: options, model: self, cacheLayout: nil)
                while !state.finished {
                    let tokens = state.prompt + state.result.tokens
                    let logits = self.logits(TokenTensor(shape: [1, tokens.count], ids: tokens)).value
                    state.accept(logits.pointer + (tokens.count - 1) * vocabularySize, value: nil)
                }
                return state.result
            }
        }
    }
}

extension CausalLanguageModel {
    /// Marks every matrix parameter with `productPrecision`: the products' weights take it (an
    /// embedding or position table marked too is never a product's operand, unless tied as a head).
    func markProductWeights() {
        for (_, parameter) in namedParameters where parameter.value.rank == 2 {
            parameter.productPrecision = productPrecision
        }
    }
}
