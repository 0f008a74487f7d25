import Tensor

/// Batched sampling with a key/value cache (see `CachedGeneration`): GPT-2's prefill and step.
extension GPT2 {
    /// Generates a continuation of each prompt. `sampleIDs` address the sequences' random streams
    /// (default: their indices). A `valueHead` (width → 1) adds per-token values.
    public func generate(
        prompts: [[Int32]], sampleIDs: [UInt64]? = nil, options: SamplingOptions, valueHead: ScalarHead? = nil
    ) -> [Generation] {
        var weights = decodeCache.current(precision: productPrecision)
        return CachedGeneration.run(
            prompts: prompts, sampleIDs: sampleIDs, options: options, model: self,
            cacheLayout: .init(kvHeads: config.heads, headDim: config.width / config.heads),
            prefill: { states, pending in prefill(&states, pending: pending, valueHead: valueHead) },
            step: { states, active in
                if weights == nil {
                    weights = DecodeWeights(self)
                    decodeCache.keep(weights!, precision: productPrecision)
                }
                return step(&states, active: active, weights: weights!, valueHead: valueHead)
            })
    }

    // MARK: Steps

    /// Runs all prompts through every layer as one right-padded batch, caching each sequence's
    /// keys and values, and returns the logits of each last real position. (Causal attention
    /// keeps the padding from touching any real position.)
    private func prefill(_ states: inout [SequenceState], pending: [Int], valueHead: ScalarHead?)
        -> (logits: Tensor, values: Tensor?)
    {
        let prompts = pending.map { states[$0].prompt }
        let batch = PaddedBatch(prompts)
        let (t, c) = (batch.ids.shape[1], config.width)
        let positions = TokenTensor(shape: [t], ids: (0..<Int32(t)).map { $0 })
        var x = tokenEmbedding.embedding(batch.ids) + positionEmbedding.embedding(positions)
        for (l, block) in blocks.enumerated() {
            x = block(x) { qkv in
                // Cache each sequence's keys and values of its real positions, then attend as usual.
                for (r, i) in pending.enumerated() {
                    for j in 0..<prompts[r].count {
                        let row = qkv.value.pointer + (r * t + j) * 3 * c
                        states[i].store(layer: l, position: j, key: row + c, value: row + 2 * c)
                    }
                }
                return qkv.causalSelfAttention(heads: config.heads)
            }
        }
        let last = CachedGeneration.lastPositions(finalNorm(x).value, prompts: prompts)
        let logits = last.matmul(tokenEmbedding.value, transposeOther: true)
        return (logits, valueHead.map { $0(Variable(last)).value })
    }

    /// Advances every active sequence by one token: the block of `GPT2.Block` with each
    /// projection a product with packed weights (bias and residual added in the same pass).
    private func step(
        _ states: inout [SequenceState], active: [Int], weights: DecodeWeights, valueHead: ScalarHead?
    ) -> (logits: Tensor, values: Tensor?) {
        let a = active.count, c = config.width
        let tokens = TokenTensor(shape: [a], ids: active.map { states[$0].lastToken })
        let positions = TokenTensor(shape: [a], ids: active.map { Int32(states[$0].position) })
        var x = (tokenEmbedding.embedding(tokens) + positionEmbedding.embedding(positions)).value  // (A, C)
        for (l, block) in blocks.enumerated() {
            let packed = weights.blocks[l]
            let qkv = packed.attention.product(block.norm1(Variable(x)).value, bias: block.attention.bias.value)
            // Each sequence appends its new key and value, then attends over its own cache.
            let attended = Tensor(zeros: [a, c])
            CachedGeneration.attend(
                &states, active: active, layer: l, query: qkv.pointer, queryStride: 3 * c, key: qkv.pointer + c,
                value: qkv.pointer + 2 * c, kvStride: 3 * c, heads: config.heads, kvHeads: config.heads,
                headDim: c / config.heads, out: attended)
            x = packed.attentionProjection.product(attended, bias: block.attentionProjection.bias.value, residual: x)
            let expanded = packed.expand.product(block.norm2(Variable(x)).value, bias: block.expand.bias.value)
            x = packed.contract.product(
                Variable(expanded).gelu().value, bias: block.contract.bias.value, residual: x)
        }
        let hidden = finalNorm(Variable(x))
        return (weights.head.product(hidden.value), valueHead.map { $0(hidden).value })  // (A, V)
    }
}

/// The model's projection weights packed for decode steps (see `PanelMatrix`), once per
/// `generate` call: a copy taken then, so a later weight update never meets a stale pack.
/// (Packing reads and writes every weight once; a 64-token generation reads them 64 times.)
struct DecodeWeights {
    struct Block {
        let attention: PanelMatrix, attentionProjection: PanelMatrix, expand: PanelMatrix, contract: PanelMatrix
    }
    let blocks: [Block]
    /// The LM head: the token embedding, transposed.
    let head: PanelMatrix

    init(_ model: GPT2) {
        blocks = model.blocks.map { b in
            Block(
                attention: PanelMatrix(b.attention.weight),
                attentionProjection: PanelMatrix(b.attentionProjection.weight),
                expand: PanelMatrix(b.expand.weight), contract: PanelMatrix(b.contract.weight))
        }
        head = PanelMatrix(model.tokenEmbedding, transposed: true)
    }
}
