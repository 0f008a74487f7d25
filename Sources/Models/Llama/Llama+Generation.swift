import Tensor

/// Batched sampling with a key/value cache (see `CachedGeneration`): the Llama family's prefill
/// and step. The cache holds the key/value heads only (kvHeads·D floats per position).
extension Llama {
    public func generate(
        prompts: [[Int32]], sampleIDs: [UInt64]? = nil, options: SamplingOptions, valueHead: ScalarHead? = nil
    ) -> [Generation] {
        var weights = decodeCache.current(precision: productPrecision)
        return CachedGeneration.run(
            prompts: prompts, sampleIDs: sampleIDs, options: options, model: self,
            cacheLayout: .init(kvHeads: config.kvHeads, headDim: config.headDim),
            prefill: { states, pending in
                let prompts = pending.map { states[$0].prompt }
                let batch = PaddedBatch(prompts)
                let t = batch.ids.shape[1], w = config.kvHeads * config.headDim
                // Cache each sequence's rotated keys and its values at its real positions.
                let hidden = hiddenStates(batch.ids) { l, k, v in
                    for (r, i) in pending.enumerated() {
                        for j in 0..<prompts[r].count {
                            let row = (r * t + j) * w
                            states[i].store(layer: l, position: j, key: k.pointer + row, value: v.pointer + row)
                        }
                    }
                }
                let last = CachedGeneration.lastPositions(hidden.value, prompts: prompts)
                let logits = last.matmul(headWeight.value, transposeOther: true)
                return (logits, valueHead.map { $0(Variable(last)).value })
            },
            step: { states, active in
                if weights == nil {
                    weights = LlamaDecodeWeights(self)
                    decodeCache.keep(weights!, precision: productPrecision)
                }
                return step(&states, active: active, weights: weights!, valueHead: valueHead)
            })
    }

    /// Advances every active sequence by one token, each projection a product with packed weights.
    private func step(
        _ states: inout [SequenceState], active: [Int], weights: LlamaDecodeWeights, valueHead: ScalarHead?
    ) -> (logits: Tensor, values: Tensor?) {
        let (a, d) = (active.count, config.headDim)
        let tokens = TokenTensor(shape: [a], ids: active.map { states[$0].lastToken })
        let positions = TokenTensor(shape: [a], ids: active.map { Int32(states[$0].position) })
        var x = tokenEmbedding.embedding(tokens).value  // (A, C)
        for (l, block) in blocks.enumerated() {
            let packed = weights.blocks[l]
            let h = block.inputNorm(Variable(x)).value
            let q = Variable(packed.query.product(h, bias: block.query.bias?.value))
                .rotary(heads: config.heads, table: rotary, positions: positions).value
            let k = Variable(packed.key.product(h, bias: block.key.bias?.value))
                .rotary(heads: config.kvHeads, table: rotary, positions: positions).value
            let v = packed.value.product(h, bias: block.value.bias?.value)
            let attended = Tensor(zeros: [a, config.heads * d])
            let (qw, kw) = (config.heads * d, config.kvHeads * d)
            CachedGeneration.attend(
                &states, active: active, layer: l, query: q.pointer, queryStride: qw, key: k.pointer, value: v.pointer,
                kvStride: kw, heads: config.heads, kvHeads: config.kvHeads, headDim: d, window: block.window,
                out: attended)
            x = packed.output.product(attended, bias: block.output.bias?.value, residual: x)
            let m = block.postAttentionNorm(Variable(x)).value
            let gated = Variable(packed.gate.product(m, bias: block.gate.bias?.value))
                .swiGLU(Variable(packed.up.product(m, bias: block.up.bias?.value))).value
            x = packed.down.product(gated, bias: block.down.bias?.value, residual: x)
        }
        let hidden = finalNorm(Variable(x))
        return (weights.head.product(hidden.value), valueHead.map { $0(hidden).value })  // (A, V)
    }
}

/// The projection weights packed for decode steps (see `PanelMatrix`), once per `generate` call.
struct LlamaDecodeWeights {
    struct Block {
        let query: PanelMatrix, key: PanelMatrix, value: PanelMatrix, output: PanelMatrix
        let gate: PanelMatrix, up: PanelMatrix, down: PanelMatrix
    }
    let blocks: [Block]
    let head: PanelMatrix

    init(_ model: Llama) {
        // Linear weights are (out, in): each is packed as its transpose.
        func pack(_ layer: Linear) -> PanelMatrix { PanelMatrix(layer.weight, transposed: true) }
        blocks = model.blocks.map { b in
            Block(
                query: pack(b.query), key: pack(b.key), value: pack(b.value), output: pack(b.output),
                gate: pack(b.gate),
                up: pack(b.up), down: pack(b.down))
        }
        head = PanelMatrix(model.headWeight, transposed: true)
    }
}
