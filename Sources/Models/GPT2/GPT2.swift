import Tensor

/// GPT-2: token + learned position embeddings, pre-LayerNorm blocks of causal multi-head attention
/// and a GELU MLP, a final LayerNorm, and an LM head tied to the token embedding.
///
/// Parameters carry Hugging Face's names (`transformer.h.0.attn.c_attn.weight`, …) and layouts
/// (Conv1D weights are (in, out)), so checkpoints move between rlaif and transformers unchanged.
public final class GPT2: CausalLanguageModel, @unchecked Sendable {
    public let config: GPT2Config
    public let tokenEmbedding: Variable  // wte (V, C)
    public let positionEmbedding: Variable  // wpe (T, C)
    public let blocks: [Block]
    public let finalNorm: LayerNormLayer
    /// Trade compute for memory in training: each block's activations are computed again in
    /// backward instead of kept (the same values, so the same gradients).
    public var gradientCheckpointing = false
    /// bf16: the weights' products take bfloat16 inputs (see `ProductPrecision`); the rest stays Float32.
    public var productPrecision = ProductPrecision.float32 {
        didSet { markProductWeights() }
    }
    let decodeCache = DecodeWeightsCache<DecodeWeights>()
    public var decodeWeightsVersion: UInt64? {
        get { decodeCache.version }
        set { decodeCache.version = newValue }
    }

    public struct Block: Sendable {
        public let norm1: LayerNormLayer
        public let attention: Conv1D  // c_attn: C → 3C
        public let attentionProjection: Conv1D  // c_proj: C → C
        public let norm2: LayerNormLayer
        public let expand: Conv1D  // c_fc: C → 4C
        public let contract: Conv1D  // c_proj: 4C → C

        /// x + proj(attend(c_attn(ln_1(x)))), then + the MLP. `attend` maps the packed (…, 3C)
        /// projection to (…, C): full causal attention in training, the KV cache in generation.
        func callAsFunction(_ x: Variable, attend: (Variable) -> Variable) -> Variable {
            let h = attentionProjection(attend(attention(norm1(x))), adding: x)
            return contract(expand(norm2(h)).gelu(), adding: h)
        }

        /// The block's trained leaves, which a recomputed block accumulates into.
        var parameters: [Variable] {
            let layers: [any Module] = [norm1, attention, attentionProjection, norm2, expand, contract]
            return layers.flatMap { $0.namedParameters.map(\.1) }
        }
    }

    /// A freshly initialized model (GPT-2's scheme: N(0, 0.02), residual projections scaled by
    /// 1/√(2·layers)), drawn from `seed`'s parameter-init stream.
    public convenience init(config: GPT2Config, seed: UInt64) throws(ModelError) {
        var rng = RandomStream(seed: seed, purpose: .parameterInit)
        try self.init(config: config) { shape, std in .randomNormal(shape, std: std, rng: &rng) }
    }

    /// A model whose weights are all zero: the shell a checkpoint is loaded into, without drawing
    /// random numbers that would be overwritten at once.
    convenience init(zeroedFor config: GPT2Config) throws(ModelError) {
        try self.init(config: config) { shape, _ in Tensor(zeros: shape) }
    }

    /// Builds every parameter, drawing weights (shape, std) from `weight` in a fixed order.
    private init(config: GPT2Config, weight: ([Int], Float) -> Tensor) throws(ModelError) {
        try config.validate()
        self.config = config
        let c = config.width
        let residualStd = 0.02 / Float(2 * config.layers).squareRoot()
        func conv(_ inputs: Int, _ outputs: Int, _ std: Float) -> Conv1D {
            Conv1D(weight: weight([inputs, outputs], std))
        }
        tokenEmbedding = Variable(weight([config.vocabularySize, c], 0.02), requiresGrad: true)
        positionEmbedding = Variable(weight([config.contextLength, c], 0.01), requiresGrad: true)
        blocks = (0..<config.layers).map { _ in
            Block(
                norm1: LayerNormLayer(width: c, epsilon: config.layerNormEpsilon),
                attention: conv(c, 3 * c, 0.02),
                attentionProjection: conv(c, c, residualStd),
                norm2: LayerNormLayer(width: c, epsilon: config.layerNormEpsilon),
                expand: conv(c, 4 * c, 0.02),
                contract: conv(4 * c, c, residualStd))
        }
        finalNorm = LayerNormLayer(width: c, epsilon: config.layerNormEpsilon)
    }

    public var namedParameters: [(String, Variable)] {
        var out: [(String, Variable)] = [
            ("transformer.wte.weight", tokenEmbedding), ("transformer.wpe.weight", positionEmbedding),
        ]
        for (i, b) in blocks.enumerated() {
            let p = "transformer.h.\(i)"
            out += b.norm1.namedParameters(prefix: "\(p).ln_1")
            out += b.attention.namedParameters(prefix: "\(p).attn.c_attn")
            out += b.attentionProjection.namedParameters(prefix: "\(p).attn.c_proj")
            out += b.norm2.namedParameters(prefix: "\(p).ln_2")
            out += b.expand.namedParameters(prefix: "\(p).mlp.c_fc")
            out += b.contract.namedParameters(prefix: "\(p).mlp.c_proj")
        }
        return out + finalNorm.namedParameters(prefix: "transformer.ln_f")
    }

    /// The final hidden states (B, T, C) for token ids (B, T).
    public func hiddenStates(_ ids: TokenTensor) -> Variable {
        precondition(ids.shape.count == 2, "GPT2: ids must be (batch, time), got \(ids.shape)")
        let t = ids.shape[1]
        precondition(t <= config.contextLength, "GPT2: \(t) tokens exceed the context length \(config.contextLength)")
        let positions = TokenTensor(shape: [t], ids: (0..<Int32(t)).map { $0 })
        var x = tokenEmbedding.embedding(ids) + positionEmbedding.embedding(positions)
        let heads = config.heads
        for block in blocks {
            if gradientCheckpointing && Autograd.isRecording {
                x = Variable.recomputed([x], parameters: block.parameters) { v in
                    block(v[0]) { $0.causalSelfAttention(heads: heads) }
                }
            } else {
                x = block(x) { $0.causalSelfAttention(heads: heads) }
            }
        }
        return finalNorm(x)
    }

    /// Next-token logits (B, T, V).
    public func logits(_ ids: TokenTensor) -> Variable { headLogits(hiddenStates(ids)) }

    public func headLogits(_ hidden: Variable) -> Variable { hidden.matmul(tokenEmbedding, transposeOther: true) }
    public var headParameters: [Variable] { [tokenEmbedding] }
}

extension GPT2 {
    public var vocabularySize: Int { config.vocabularySize }
    public var contextLength: Int { config.contextLength }
    public var width: Int { config.width }
    public var layerCount: Int { config.layers }
    /// The LM head is the embedding: every parameter.
    public var trunkParameters: [(String, Variable)] { namedParameters }

    /// An independent model with the same weights (the frozen reference, a reward model's backbone).
    public func copy() -> GPT2 {
        let twin = try! GPT2(zeroedFor: config)  // config was validated when self was built
        twin.gradientCheckpointing = gradientCheckpointing
        twin.productPrecision = productPrecision
        for ((_, mine), (_, theirs)) in zip(namedParameters, twin.namedParameters) { theirs.value.assign(mine.value) }
        return twin
    }
}
