import Tensor

/// The loop of batched sampling with a key/value cache, for any architecture.
///
/// Each prompt is prefilled (its keys and values for every layer cached), then all unfinished
/// sequences advance one token per step together: their new rows go through the projections and
/// MLPs as one batch, and each attends only to its own cache. A sequence that stops leaves the
/// batch at once and costs nothing more. Sequence `i` draws from its own stream
/// (options.seed, .sampling, 0, sampleIDs[i]), so its tokens are the same whichever batch or worker
/// produces it.
enum CachedGeneration {
    /// `prefill` fills the caches of the given sequences and returns their first logits (and values);
    /// `step` advances the active ones by a token and returns their logits (and values), row r
    /// for `active[r]`.
    static func run(
        prompts: [[Int32]], sampleIDs: [UInt64]?, options: SamplingOptions, model: some CausalLanguageModel,
        cacheLayout: KeyValueCache.Layout,
        prefill: (_ states: inout [SequenceState], _ pending: [Int]) -> (logits: Tensor, values: Tensor?),
        step: (_ states: inout [SequenceState], _ active: [Int]) -> (logits: Tensor, values: Tensor?)
    ) -> [Generation] {
        Autograd.inferenceMode {
            let ids = sampleIDs ?? prompts.indices.map(UInt64.init)
            precondition(ids.count == prompts.count, "generate: \(prompts.count) prompts but \(ids.count) sample ids")
            var states = zip(prompts, ids).map { prompt, id in
                SequenceState(prompt: prompt, id: id, options: options, model: model, cacheLayout: cacheLayout)
            }
            let pending = states.indices.filter { !states[$0].finished }
            guard !pending.isEmpty else { return states.map(\.result) }
            precondition(pending.allSatisfy { !states[$0].prompt.isEmpty }, "generate: empty prompt")
            let first = prefill(&states, pending)
            accept(
                first.logits, values: first.values, into: &states, rows: pending, vocabularySize: model.vocabularySize)
            while true {
                let active = states.indices.filter { !states[$0].finished }
                if active.isEmpty { break }
                let next = step(&states, active)
                accept(
                    next.logits, values: next.values, into: &states, rows: active, vocabularySize: model.vocabularySize)
            }
            return states.map(\.result)
        }
    }

    /// Each sequence of `rows` draws its next token from its row of `logits`, in parallel: a
    /// sequence touches only its own state and random stream.
    private static func accept(
        _ logits: Tensor, values: Tensor?, into states: inout [SequenceState], rows: [Int], vocabularySize: Int
    ) {
        states.withUnsafeMutableBufferPointer { buffer in
            let states = buffer
            Engine.parallelFor(rows.count) { r in
                states[rows[r]].accept(logits.pointer + r * vocabularySize, value: values.map { $0[flat: r] })
            }
        }
    }

    /// Each active sequence stores its new key and value rows (row r of `key` and `value`, for
    /// `active[r]`) in its cache for `layer`, then attends over that cache into row r of `out`.
    /// The sequences attend in parallel: each reads only its own cache, so its bits are its own.
    static func attend(
        _ states: inout [SequenceState], active: [Int], layer: Int, query: UnsafePointer<Float>, queryStride: Int,
        key: UnsafePointer<Float>, value: UnsafePointer<Float>, kvStride: Int,
        heads: Int, kvHeads: Int, headDim: Int, window: Int? = nil, out: Tensor
    ) {
        for (r, i) in active.enumerated() {
            states[i].store(
                layer: layer, position: states[i].position, key: key + r * kvStride, value: value + r * kvStride)
        }
        let caches = active.map { (storage: states[$0].cache.storage, length: states[$0].position + 1) }
        let capacity = active.map { states[$0].cache.scratchCount(length: states[$0].position + 1) }.max() ?? 1
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: capacity * active.count)
        defer { scratch.deallocate() }
        let width = heads * headDim
        Engine.parallelFor(active.count) { r in
            let (q, o, s, length) = (
                query + r * queryStride, out.pointer + r * width, scratch + r * capacity, caches[r].length
            )
            switch caches[r].storage {
            case .float32(let keys, let values):
                Kernels.cachedAttention(
                    query: q, keys: keys[layer].pointer, values: values[layer].pointer, length: length, heads: heads,
                    kvHeads: kvHeads, headDim: headDim, window: window, out: o, scratch: s)
            case .bf16(let layers):
                layers[layer].attend(query: q, length: length, heads: heads, window: window, out: o, scratch: s)
            }
        }
    }

    /// Each sequence's last real position of right-padded hidden states (B, T, C), gathered into (B, C).
    static func lastPositions(_ hidden: Tensor, prompts: [[Int32]]) -> Tensor {
        let (t, c) = (hidden.shape[1], hidden.shape[2])
        let last = Tensor(zeros: [prompts.count, c])
        for (r, p) in prompts.enumerated() {
            (last.pointer + r * c).update(from: hidden.pointer + (r * t + p.count - 1) * c, count: c)
        }
        return last
    }
}

/// One sequence's progress: its cache, its random stream, what it has produced.
struct SequenceState {
    let prompt: [Int32]
    let options: SamplingOptions
    let vocabularySize: Int, contextLength: Int
    var rng: RandomStream
    var cache: KeyValueCache
    var result = Generation(tokens: [], logProbs: [], values: [], stopped: false)
    var finished = false

    /// Position of the next token to feed (the last accepted one).
    var position: Int { prompt.count + result.tokens.count - 1 }
    var lastToken: Int32 { result.tokens.last ?? prompt.last! }

    /// `cacheLayout`: what a layer caches per position (nil: no cache).
    init(
        prompt: [Int32], id: UInt64, options: SamplingOptions, model: some CausalLanguageModel,
        cacheLayout: KeyValueCache.Layout?
    ) {
        precondition(
            prompt.count <= model.contextLength,
            "generate: prompt of \(prompt.count) tokens exceeds the context \(model.contextLength)")
        self.prompt = prompt
        self.options = options
        (vocabularySize, contextLength) = (model.vocabularySize, model.contextLength)
        rng = RandomStream(seed: options.seed, purpose: .sampling, step: 0, index: id)
        cache = KeyValueCache(
            layers: cacheLayout == nil ? 0 : model.layerCount, layout: cacheLayout ?? .init(kvHeads: 0, headDim: 0),
            capacity: min(model.contextLength, prompt.count + options.maxNewTokens), precision: model.productPrecision)
        finished = options.maxNewTokens == 0
    }

    mutating func accept(_ logits: UnsafePointer<Float>, value: Float?) {
        let (token, logProb) = TokenSampler.draw(logits, count: vocabularySize, options: options, rng: &rng)
        result.tokens.append(token)
        result.logProbs.append(logProb)
        if let value { result.values.append(value) }
        if options.stopTokens.contains(token) {
            result.stopped = true
            finished = true
        } else if result.tokens.count >= options.maxNewTokens || prompt.count + result.tokens.count >= contextLength {
            finished = true
        }
    }

    /// Stores the key and value rows of position `p` for `layer`.
    mutating func store(layer: Int, position p: Int, key: UnsafePointer<Float>, value: UnsafePointer<Float>) {
        switch cache.storage {
        case .float32(let keys, let values):
            let w = cache.layout.width
            keys[layer].pointer.advanced(by: p * w).update(from: key, count: w)
            values[layer].pointer.advanced(by: p * w).update(from: value, count: w)
        case .bf16(let layers):
            layers[layer].store(position: p, key: key, value: value)
        }
    }
}

/// Keys and values of every layer for one sequence, heads side by side: Float32 rows of
/// (capacity, kvHeads·headDim), or, for a model whose products are bf16, bfloat16 laid out for
/// the decode step's two products (`BFloat16KeyValues`: half the bytes to read per step).
struct KeyValueCache {
    struct Layout {
        let kvHeads: Int, headDim: Int
        var width: Int { kvHeads * headDim }
    }
    enum Storage {
        case float32(keys: [Tensor], values: [Tensor])
        case bf16([BFloat16KeyValues])
    }
    let layout: Layout
    let storage: Storage

    init(layers: Int, layout: Layout, capacity: Int, precision: ProductPrecision) {
        self.layout = layout
        switch precision {
        case .float32:
            storage = .float32(
                keys: (0..<layers).map { _ in Tensor(zeros: [capacity, layout.width]) },
                values: (0..<layers).map { _ in Tensor(zeros: [capacity, layout.width]) })
        case .bf16:
            storage = .bf16(
                (0..<layers).map { _ in
                    BFloat16KeyValues(capacity: capacity, kvHeads: layout.kvHeads, headDim: layout.headDim)
                })
        }
    }

    /// Floats of scratch attending over `length` positions takes.
    func scratchCount(length: Int) -> Int {
        switch storage {
        case .float32: length
        case .bf16(let layers): layers.first?.scratchCount ?? 1
        }
    }
}
