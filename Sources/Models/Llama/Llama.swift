import Tensor

/// The Llama architecture and its relatives (Qwen2, Mistral, SmolLM): token embedding, pre-RMSNorm
/// blocks of grouped-query attention with rotary positions and a SwiGLU MLP, a final RMSNorm and
/// an LM head (tied to the embedding or its own).
///
/// Parameters carry transformers' names (`model.layers.0.self_attn.q_proj.weight`, …) and
/// layouts (Linear weights (out, in)), so checkpoints move between rlaif and transformers unchanged.
public final class Llama: CausalLanguageModel, @unchecked Sendable {
    public let config: LlamaConfig
    public let tokenEmbedding: Variable  // embed_tokens (V, C)
    public let blocks: [Block]
    public let finalNorm: RMSNormLayer
    /// `lm_head.weight` (V, C), or nil when tied to the embedding.
    public let head: Variable?
    let rotary: RotaryTable

    /// Trade compute for memory in training: each block's activations, and the LM head's logits
    /// (in chunks of `lossChunkRows` rows), are computed again in backward instead of kept.
    public var gradientCheckpointing = false
    /// bf16: the weights' products take bfloat16 inputs (see `ProductPrecision`); the rest stays Float32.
    public var productPrecision = ProductPrecision.float32 {
        didSet { markProductWeights() }
    }
    let decodeCache = DecodeWeightsCache<LlamaDecodeWeights>()
    public var decodeWeightsVersion: UInt64? {
        get { decodeCache.version }
        set { decodeCache.version = newValue }
    }
    public var lossChunkRows = 64

    public struct Block: Module, Sendable {
        public let inputNorm: RMSNormLayer
        public let query: Linear, key: Linear, value: Linear, output: Linear
        public let postAttentionNorm: RMSNormLayer
        public let gate: Linear, up: Linear, down: Linear
        public let window: Int?

        public var namedParameters: [(String, Variable)] {
            inputNorm.namedParameters(prefix: "input_layernorm") + query.namedParameters(prefix: "self_attn.q_proj")
                + key.namedParameters(prefix: "self_attn.k_proj") + value.namedParameters(prefix: "self_attn.v_proj")
                + output.namedParameters(prefix: "self_attn.o_proj")
                + postAttentionNorm.namedParameters(prefix: "post_attention_layernorm")
                + gate.namedParameters(prefix: "mlp.gate_proj") + up.namedParameters(prefix: "mlp.up_proj")
                + down.namedParameters(prefix: "mlp.down_proj")
        }
    }

    /// A freshly initialized model (N(0, 0.02) weights, as transformers' `initializer_range`;
    /// norms at 1, biases at 0), drawn from `seed`'s parameter-init stream.
    public convenience init(config: LlamaConfig, seed: UInt64) throws(ModelError) {
        var rng = RandomStream(seed: seed, purpose: .parameterInit)
        try self.init(config: config) { shape in .randomNormal(shape, std: 0.02, rng: &rng) }
    }

    /// A model whose weights are all zero: the shell a checkpoint is loaded into.
    convenience init(zeroedFor config: LlamaConfig) throws(ModelError) {
        try self.init(config: config) { Tensor(zeros: $0) }
    }

    private init(config: LlamaConfig, weight: ([Int]) -> Tensor) throws(ModelError) {
        try config.validate()
        self.config = config
        let (c, d) = (config.width, config.headDim)
        func linear(_ inputs: Int, _ outputs: Int, bias: Bool) -> Linear {
            Linear(weight: weight([outputs, inputs]), bias: bias ? Tensor(zeros: [outputs]) : nil)
        }
        tokenEmbedding = Variable(weight([config.vocabularySize, c]), requiresGrad: true)
        blocks = config.slidingWindows.map { window in
            Block(
                inputNorm: RMSNormLayer(width: c, epsilon: config.rmsNormEpsilon),
                query: linear(c, config.heads * d, bias: config.qkvBias),
                key: linear(c, config.kvHeads * d, bias: config.qkvBias),
                value: linear(c, config.kvHeads * d, bias: config.qkvBias),
                output: linear(config.heads * d, c, bias: config.outputBias),
                postAttentionNorm: RMSNormLayer(width: c, epsilon: config.rmsNormEpsilon),
                gate: linear(c, config.intermediateSize, bias: config.mlpBias),
                up: linear(c, config.intermediateSize, bias: config.mlpBias),
                down: linear(config.intermediateSize, c, bias: config.mlpBias), window: window)
        }
        finalNorm = RMSNormLayer(width: c, epsilon: config.rmsNormEpsilon)
        head = config.tiedEmbeddings ? nil : Variable(weight([config.vocabularySize, c]), requiresGrad: true)
        rotary = RotaryTable(headDim: d, inverseFrequencies: config.rotaryFrequencies, positions: config.contextLength)
    }

    public var namedParameters: [(String, Variable)] {
        var out: [(String, Variable)] = [("model.embed_tokens.weight", tokenEmbedding)]
        for (i, b) in blocks.enumerated() { out += b.namedParameters(prefix: "model.layers.\(i)") }
        out += finalNorm.namedParameters(prefix: "model.norm")
        return out + (head.map { [("lm_head.weight", $0)] } ?? [])
    }

    /// The final hidden states (B, T, C) for token ids (B, T).
    public func hiddenStates(_ ids: TokenTensor) -> Variable { hiddenStates(ids) { _, _, _ in } }

    /// The hidden states, showing `observe` each layer's rotated keys and values (B, T, Hkv·D).
    func hiddenStates(_ ids: TokenTensor, observe: (Int, Tensor, Tensor) -> Void) -> Variable {
        precondition(ids.shape.count == 2, "Llama: ids must be (batch, time), got \(ids.shape)")
        let t = ids.shape[1]
        precondition(t <= config.contextLength, "Llama: \(t) tokens exceed the context length \(config.contextLength)")
        let positions = TokenTensor(shape: [t], ids: (0..<Int32(t)).map { $0 })
        var x = tokenEmbedding.embedding(ids)
        for (l, block) in blocks.enumerated() {
            if gradientCheckpointing && Autograd.isRecording {
                x = Variable.recomputed([x], parameters: block.namedParameters.map(\.1)) { [self] v in
                    forward(block, v[0], positions: positions) { _, _ in }
                }
            } else {
                x = forward(block, x, positions: positions) { observe(l, $0, $1) }
            }
        }
        return finalNorm(x)
    }

    /// One block: x + attention(norm(x)), then + the SwiGLU MLP. `observe` sees the rotated keys
    /// and the values.
    private func forward(
        _ block: Block, _ x: Variable, positions: TokenTensor, observe: (Tensor, Tensor) -> Void
    ) -> Variable {
        let h = block.inputNorm(x)
        let q = block.query(h).rotary(heads: config.heads, table: rotary, positions: positions)
        let k = block.key(h).rotary(heads: config.kvHeads, table: rotary, positions: positions)
        let v = block.value(h)
        observe(k.value, v.value)
        let attended = Variable.attention(
            q: q, k: k, v: v, heads: config.heads, kvHeads: config.kvHeads, window: block.window)
        let mid = x + block.output(attended)
        let m = block.postAttentionNorm(mid)
        return mid + block.down(block.gate(m).swiGLU(block.up(m)))
    }

    /// Mean cross-entropy of each next token, as transformers' `labels=ids`. With gradient
    /// checkpointing the logits exist one chunk of rows at a time, in backward too.
    public func languageModelLoss(_ ids: TokenTensor) -> Variable {
        let targets = Self.nextTokenTargets(ids)
        let counted = targets.ids.filter { $0 != TokenTensor.ignored }.count
        guard gradientCheckpointing, Autograd.isRecording, counted > 0 else {
            return logits(ids).crossEntropy(targets: targets)
        }
        let rows = ids.count
        let hidden = hiddenStates(ids).reshaped([rows, config.width])
        let head = headWeight
        var total: Variable?
        for start in stride(from: 0, to: rows, by: lossChunkRows) {
            let range = start..<min(rows, start + lossChunkRows)
            let chunk = TokenTensor(shape: [range.count], ids: Array(targets.ids[range]))
            let n = chunk.ids.filter { $0 != TokenTensor.ignored }.count
            guard n > 0 else { continue }
            let part = Variable.recomputed([hidden.slice(axis: 0, range)], parameters: [head]) { v in
                v[0].matmul(head, transposeOther: true).crossEntropy(targets: chunk) * Float(n)
            }
            total = total.map { $0 + part } ?? part
        }
        return total! * (1 / Float(counted))
    }

    /// The LM head's weight (V, C): the embedding when tied.
    var headWeight: Variable { head ?? tokenEmbedding }

    /// Next-token logits (B, T, V).
    public func logits(_ ids: TokenTensor) -> Variable { headLogits(hiddenStates(ids)) }

    public func headLogits(_ hidden: Variable) -> Variable { hidden.matmul(headWeight, transposeOther: true) }
    public var headParameters: [Variable] { [headWeight] }

    public var vocabularySize: Int { config.vocabularySize }
    public var contextLength: Int { config.contextLength }
    public var width: Int { config.width }
    public var layerCount: Int { config.layers }
    public var trunkParameters: [(String, Variable)] { namedParameters.filter { $0.0 != "lm_head.weight" } }

    /// An independent model with the same weights (the frozen reference, a reward model's trunk).
    public func copy() -> Llama {
        let twin = try! Llama(zeroedFor: config)  // config was validated when self was built
        twin.gradientCheckpointing = gradientCheckpointing
        twin.productPrecision = productPrecision
        for ((_, mine), (_, theirs)) in zip(namedParameters, twin.namedParameters) { theirs.value.assign(mine.value) }
        return twin
    }
}

/// RMS normalization over the last axis with a learned scale (`weight`, ones).
public struct RMSNormLayer: Module, Sendable {
    public let weight: Variable
    public let epsilon: Float

    public init(width: Int, epsilon: Float) {
        weight = Variable(Tensor(shape: [width], repeating: 1), requiresGrad: true)
        self.epsilon = epsilon
    }

    public func callAsFunction(_ x: Variable) -> Variable { x.rmsNorm(weight: weight, epsilon: epsilon) }

    public var namedParameters: [(String, Variable)] { [("weight", weight)] }
}
