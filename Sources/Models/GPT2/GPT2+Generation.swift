import Tensor

/// Batched sampling with a key/value cache.
///
/// Each prompt is prefilled on its own (its keys and values for every layer are cached), then all
/// unfinished sequences advance one token per step together: their new rows go through the
/// projections and MLPs as one batch, and each attends only to its own cache. A sequence that
/// stops leaves the batch at once and costs nothing more. Sequence `i` draws from its own stream
/// (options.seed, .sampling, 0, sampleIDs[i]), so its tokens are the same whichever batch or worker
/// produces it.
extension GPT2 {
    /// Generates a continuation of each prompt. `sampleIDs` address the sequences' random streams
    /// (default: their indices). A `valueHead` (width → 1) adds per-token values.
    public func generate(
        prompts: [[Int32]], sampleIDs: [UInt64]? = nil, options: SamplingOptions, valueHead: ScalarHead? = nil
    ) -> [Generation] {
        Autograd.inferenceMode {
            let ids = sampleIDs ?? prompts.indices.map(UInt64.init)
            precondition(ids.count == prompts.count, "generate: \(prompts.count) prompts but \(ids.count) sample ids")
            var states = zip(prompts, ids).map { prompt, id in
                SequenceState(prompt: prompt, id: id, options: options, config: config)
            }
            prefill(&states, valueHead: valueHead)
            guard states.contains(where: { !$0.finished }) else { return states.map(\.result) }
            let weights = DecodeWeights(self)
            while true {
                let active = states.indices.filter { !states[$0].finished }
                if active.isEmpty { break }
                step(&states, active: active, weights: weights, valueHead: valueHead)
            }
            return states.map(\.result)
        }
    }

    /// The reference path for tests: recomputes the whole sequence for every token (no cache).
    public func generateWithoutCache(prompts: [[Int32]], sampleIDs: [UInt64]? = nil, options: SamplingOptions)
        -> [Generation]
    {
        Autograd.inferenceMode {
            let ids = sampleIDs ?? prompts.indices.map(UInt64.init)
            return zip(prompts, ids).map { prompt, id in
                var state = SequenceState(prompt: prompt, id: id, options: options, config: config)
                while !state.finished {
                    let tokens = state.prompt + state.result.tokens
                    let logits = self.logits(TokenTensor(shape: [1, tokens.count], ids: tokens)).value
                    state.accept(
                        logits.pointer + (tokens.count - 1) * config.vocabularySize, value: nil, config: config)
                }
                return state.result
            }
        }
    }

    // MARK: Steps

    /// Runs all prompts through every layer as one right-padded batch, caching each sequence's
    /// keys and values, and draws each first token from its last real position. (Causal attention
    /// keeps the padding from touching any real position.)
    private func prefill(_ states: inout [SequenceState], valueHead: ScalarHead?) {
        let pending = states.indices.filter { !states[$0].finished }
        guard !pending.isEmpty else { return }
        let prompts = pending.map { states[$0].prompt }
        precondition(prompts.allSatisfy { !$0.isEmpty }, "generate: empty prompt")
        let batch = PaddedBatch(prompts)
        let (b, t, c) = (pending.count, batch.ids.shape[1], config.width)
        let positions = TokenTensor(shape: [t], ids: (0..<Int32(t)).map { $0 })
        var x = tokenEmbedding.embedding(batch.ids) + positionEmbedding.embedding(positions)
        for (l, block) in blocks.enumerated() {
            x = block(x) { qkv in
                // Cache each sequence's keys and values of its real positions, then attend as usual.
                for (r, i) in pending.enumerated() {
                    for j in 0..<prompts[r].count {
                        let row = qkv.value.pointer + (r * t + j) * 3 * c
                        states[i].cache.keys[l].pointer.advanced(by: j * c).update(from: row + c, count: c)
                        states[i].cache.values[l].pointer.advanced(by: j * c).update(from: row + 2 * c, count: c)
                    }
                }
                return qkv.causalSelfAttention(heads: config.heads)
            }
        }
        // Each sequence's last real position, gathered into (B, C).
        let hidden = finalNorm(x).value
        let last = Tensor(zeros: [b, c])
        for (r, p) in prompts.enumerated() {
            (last.pointer + r * c).update(from: hidden.pointer + (r * t + p.count - 1) * c, count: c)
        }
        let logits = last.matmul(tokenEmbedding.value, transposeOther: true)
        let values = valueHead.map { $0(Variable(last)).value }
        Self.accept(logits, values: values, into: &states, rows: pending, config: config)
    }

    /// Advances every active sequence by one token: the block of `GPT2.Block` with each
    /// projection a product with packed weights (bias and residual added in the same pass).
    private func step(
        _ states: inout [SequenceState], active: [Int], weights: DecodeWeights, valueHead: ScalarHead?
    ) {
        let a = active.count, c = config.width
        let tokens = TokenTensor(shape: [a], ids: active.map { states[$0].lastToken })
        let positions = TokenTensor(shape: [a], ids: active.map { Int32(states[$0].position) })
        var x = (tokenEmbedding.embedding(tokens) + positionEmbedding.embedding(positions)).value  // (A, C)
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: states.map(\.cache.capacity).max() ?? 1)
        defer { scratch.deallocate() }
        for (l, block) in blocks.enumerated() {
            let packed = weights.blocks[l]
            let qkv = packed.attention.product(block.norm1(Variable(x)).value, bias: block.attention.bias.value)
            // Each sequence appends its new key and value, then attends over its own cache.
            let attended = Tensor(zeros: [a, c])
            for (r, i) in active.enumerated() {
                let row = qkv.pointer + r * 3 * c, p = states[i].position
                states[i].cache.keys[l].pointer.advanced(by: p * c).update(from: row + c, count: c)
                states[i].cache.values[l].pointer.advanced(by: p * c).update(from: row + 2 * c, count: c)
                Kernels.cachedAttention(
                    query: row, keys: states[i].cache.keys[l].pointer, values: states[i].cache.values[l].pointer,
                    length: p + 1, heads: config.heads, kvHeads: config.heads, headDim: c / config.heads,
                    out: attended.pointer + r * c, scratch: scratch)
            }
            x = packed.attentionProjection.product(attended, bias: block.attentionProjection.bias.value, residual: x)
            let expanded = packed.expand.product(block.norm2(Variable(x)).value, bias: block.expand.bias.value)
            x = packed.contract.product(
                Variable(expanded).gelu().value, bias: block.contract.bias.value, residual: x)
        }
        let hidden = finalNorm(Variable(x))
        let logits = weights.head.product(hidden.value)  // (A, V)
        let values = valueHead.map { $0(hidden).value }
        Self.accept(logits, values: values, into: &states, rows: active, config: config)
    }

    /// Each sequence of `rows` draws its next token from its row of `logits`, in parallel: a
    /// sequence touches only its own state and random stream.
    private static func accept(
        _ logits: Tensor, values: Tensor?, into states: inout [SequenceState], rows: [Int], config: GPT2Config
    ) {
        states.withUnsafeMutableBufferPointer { buffer in
            let states = buffer
            Engine.parallelFor(rows.count) { r in
                states[rows[r]].accept(
                    logits.pointer + r * config.vocabularySize, value: values.map { $0[flat: r] }, config: config)
            }
        }
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
                attention: PanelMatrix(b.attention.weight.value),
                attentionProjection: PanelMatrix(b.attentionProjection.weight.value),
                expand: PanelMatrix(b.expand.weight.value), contract: PanelMatrix(b.contract.weight.value))
        }
        head = PanelMatrix(model.tokenEmbedding.value, transposed: true)
    }
}

/// One sequence's progress: its cache, its random stream, what it has produced.
struct SequenceState {
    let prompt: [Int32]
    let options: SamplingOptions
    var rng: RandomStream
    var cache: KeyValueCache
    var result = Generation(tokens: [], logProbs: [], values: [], stopped: false)
    var finished = false

    /// Position of the next token to feed (the last accepted one).
    var position: Int { prompt.count + result.tokens.count - 1 }
    var lastToken: Int32 { result.tokens.last ?? prompt.last! }

    init(prompt: [Int32], id: UInt64, options: SamplingOptions, config: GPT2Config) {
        precondition(
            prompt.count <= config.contextLength,
            "generate: prompt of \(prompt.count) tokens exceeds the context \(config.contextLength)")
        self.prompt = prompt
        self.options = options
        rng = RandomStream(seed: options.seed, purpose: .sampling, step: 0, index: id)
        cache = KeyValueCache(config: config, capacity: min(config.contextLength, prompt.count + options.maxNewTokens))
        finished = options.maxNewTokens == 0
    }

    mutating func accept(_ logits: UnsafePointer<Float>, value: Float?, config: GPT2Config) {
        let (token, logProb) = TokenSampler.draw(logits, count: config.vocabularySize, options: options, rng: &rng)
        result.tokens.append(token)
        result.logProbs.append(logProb)
        if let value { result.values.append(value) }
        if options.stopTokens.contains(token) {
            result.stopped = true
            finished = true
        } else if result.tokens.count >= options.maxNewTokens
            || prompt.count + result.tokens.count >= config.contextLength
        {
            finished = true
        }
    }
}

/// Keys and values of every layer for one sequence: (capacity, C) each, heads side by side.
struct KeyValueCache {
    let capacity: Int
    var keys: [Tensor]
    var values: [Tensor]

    init(config: GPT2Config, capacity: Int) {
        self.capacity = capacity
        keys = (0..<config.layers).map { _ in Tensor(zeros: [capacity, config.width]) }
        values = (0..<config.layers).map { _ in Tensor(zeros: [capacity, config.width]) }
    }
}
