#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The differentiable operations. Each computes its value with a kernel and records an `Op`.
extension Variable {
    // MARK: Arithmetic (broadcasting)

    public static func + (a: Variable, b: Variable) -> Variable {
        Variable(Kernels.binary(a.value, b.value, .add), op: .binary(a, b, .add))
    }
    public static func - (a: Variable, b: Variable) -> Variable {
        Variable(Kernels.binary(a.value, b.value, .subtract), op: .binary(a, b, .subtract))
    }
    public static func * (a: Variable, b: Variable) -> Variable {
        Variable(Kernels.binary(a.value, b.value, .multiply), op: .binary(a, b, .multiply))
    }
    public static func / (a: Variable, b: Variable) -> Variable {
        Variable(Kernels.binary(a.value, b.value, .divide), op: .binary(a, b, .divide))
    }
    public static func * (a: Variable, s: Float) -> Variable {
        Variable(Kernels.map(a.value) { $0 * s }, op: .scale(a, s))
    }
    public static func * (s: Float, a: Variable) -> Variable { a * s }
    public static func + (a: Variable, s: Float) -> Variable {
        Variable(Kernels.map(a.value) { $0 + s }, op: .shift(a, s))
    }
    public static func - (a: Variable, s: Float) -> Variable { a + (-s) }
    public static prefix func - (a: Variable) -> Variable { a * -1 }

    // MARK: Pointwise functions

    public func exp() -> Variable {
        let y = Kernels.map(value) { expf($0) }
        return Variable(y, op: .exp(self, output: y))
    }
    public func log() -> Variable { Variable(Kernels.map(value) { logf($0) }, op: .log(self)) }
    public func tanh() -> Variable {
        let y = Kernels.map(value) { tanhf($0) }
        return Variable(y, op: .tanh(self, output: y))
    }
    public func relu() -> Variable { Variable(Kernels.map(value) { Swift.max($0, 0) }, op: .relu(self)) }
    /// GELU, tanh approximation (GPT-2's).
    public func gelu() -> Variable { Variable(Kernels.geluForward(value), op: .gelu(self)) }

    // MARK: Products

    /// op(self) · op(other). self (…, M, K) · other (K, N), or batched (B, M, K) · (B, K, N).
    public func matmul(_ other: Variable, transposeSelf: Bool = false, transposeOther: Bool = false) -> Variable {
        Variable(
            Kernels.matmulForward(
                value, other.value, transposeA: transposeSelf, transposeB: transposeOther,
                precision: .of(self, other)),
            op: .matmul(self, other, transposeA: transposeSelf, transposeB: transposeOther))
    }

    /// self · weight + bias (+ residual), one op: self (…, K), weight (K, N), bias (N), residual
    /// shaped like the result. A linear layer (and the residual stream it feeds) without the
    /// intermediate tensors of `matmul(weight) + bias + residual`; equal to it up to rounding.
    public func affine(_ weight: Variable, bias: Variable, residual: Variable? = nil) -> Variable {
        Variable(
            Kernels.affineForward(
                value, weight: weight.value, bias: bias.value, residual: residual?.value, precision: .of(self, weight)),
            op: .affine(self, weight: weight, bias: bias, residual: residual))
    }

    // MARK: Reductions

    /// Sum along `axis` (dropping it), or of everything when `axis` is nil.
    public func sum(axis: Int? = nil) -> Variable {
        Variable(Kernels.sumForward(value, axis: axis, keepDims: false), op: .sum(self, axis: axis))
    }
    public func mean(axis: Int? = nil) -> Variable {
        let n = axis.map { shape[Shape.axis($0, rank: shape.count, op: "mean")] } ?? value.count
        let s = Kernels.sumForward(value, axis: axis, keepDims: false)
        return Variable(Kernels.map(s) { $0 / Float(n) }, op: .mean(self, axis: axis))
    }
    /// Largest element along `axis` (dropping it); the gradient flows to the first maximum.
    public func max(axis: Int) -> Variable {
        let (y, winners) = Kernels.maxForward(value, axis: axis, keepDims: false)
        return Variable(y, op: .max(self, winners: winners))
    }

    // MARK: Normalizations

    public func softmax() -> Variable {
        let y = Kernels.softmaxForward(value)
        return Variable(y, op: .softmax(self, output: y))
    }
    public func logSoftmax() -> Variable {
        let y = Kernels.logSoftmaxForward(value)
        return Variable(y, op: .logSoftmax(self, output: y))
    }
    /// Layer norm over the last axis with scale `gamma` and shift `beta` (both (C)).
    public func layerNorm(gamma: Variable, beta: Variable, epsilon: Float = 1e-5) -> Variable {
        let (y, mean, rstd) = Kernels.layerNormForward(value, gamma: gamma.value, beta: beta.value, epsilon: epsilon)
        return Variable(y, op: .layerNorm(self, gamma: gamma, beta: beta, mean: mean, rstd: rstd))
    }

    /// RMS norm over the last axis with scale `weight` (C).
    public func rmsNorm(weight: Variable, epsilon: Float) -> Variable {
        let (y, rstd) = Kernels.rmsNormForward(value, weight: weight.value, epsilon: epsilon)
        return Variable(y, op: .rmsNorm(self, weight: weight, rstd: rstd))
    }

    // MARK: Model ops

    /// Rows of this (V, C) table at `ids`: shape ids.shape + [C].
    public func embedding(_ ids: TokenTensor) -> Variable {
        Variable(Kernels.embeddingForward(table: value, ids: ids), op: .embedding(table: self, ids: ids))
    }
    /// Causal multi-head self-attention; self is the packed (B, T, 3C) projection of Q, K, V.
    public func causalSelfAttention(heads: Int) -> Variable {
        let layout = AttentionLayout.packed(shape, heads: heads)
        let q = value.pointer, c = layout.outWidth
        let (out, probs) = Kernels.attentionForward(q: q, k: q + c, v: q + 2 * c, layout: layout)
        return Variable(out, op: .causalSelfAttention(qkv: self, layout: layout, probs: probs))
    }
    /// Causal grouped-query attention: q (B, T, H·D), k and v (B, T, Hkv·D), query head h reading
    /// key/value head h / (H / Hkv); with a `window`, each position sees its last `window` keys.
    public static func attention(q: Variable, k: Variable, v: Variable, heads: Int, kvHeads: Int, window: Int? = nil)
        -> Variable
    {
        let layout = AttentionLayout.separate(
            q: q.shape, k: k.shape, v: v.shape, heads: heads, kvHeads: kvHeads, window: window)
        let (out, probs) = Kernels.attentionForward(
            q: q.value.pointer, k: k.value.pointer, v: v.value.pointer, layout: layout)
        return Variable(out, op: .attention(q: q, k: k, v: v, layout: layout, probs: probs))
    }
    /// Each head of D floats (self: (…, heads·D)) rotated by its row's position (rotary embedding).
    public func rotary(heads: Int, table: RotaryTable, positions: TokenTensor) -> Variable {
        Variable(
            Kernels.rotary(value, heads: heads, table: table, positions: positions, inverse: false),
            op: .rotary(self, heads: heads, table: table, positions: positions))
    }
    /// silu(self) ⊙ up: the gated unit of Llama's MLP.
    public func swiGLU(_ up: Variable) -> Variable {
        Variable(Kernels.swiGLUForward(gate: value, up: up.value), op: .swiGLU(gate: self, up: up))
    }
    /// Mean cross-entropy of these logits (…, V) against `targets` (…); ignored targets (-1) skipped.
    public func crossEntropy(targets: TokenTensor) -> Variable {
        let (loss, probs, counted) = Kernels.crossEntropyForward(logits: value, targets: targets)
        return Variable(loss, op: .crossEntropy(logits: self, targets: targets, probs: probs, counted: counted))
    }
    /// log softmax(self)[…, ids[…]]: the log-probability of each id; 0 where the id is ignored (-1).
    public func gatherLogProbs(_ ids: TokenTensor) -> Variable {
        let (out, probs) = Kernels.gatherLogProbsForward(logits: value, ids: ids)
        return Variable(out, op: .gatherLogProbs(logits: self, ids: ids, probs: probs))
    }
    /// `value` where `mask` (broadcast to self's shape) is non-zero, self elsewhere.
    public func maskedFill(_ mask: Tensor, value fill: Float) -> Variable {
        Variable(Kernels.maskedFillForward(value, mask: mask, value: fill), op: .maskedFill(self, mask: mask))
    }

    // MARK: Memory

    /// `body(inputs)`, keeping none of its intermediates: backward runs it again (gradient
    /// checkpointing). `parameters` are the trained leaves `body` uses; they accumulate their
    /// gradients when it is run again. `body` must compute the same values each time, as every
    /// op here does.
    public static func recomputed(
        _ inputs: [Variable], parameters: [Variable], _ body: @escaping ([Variable]) -> Variable
    ) -> Variable {
        guard Autograd.isRecording else { return body(inputs) }
        let out = Autograd.inferenceMode { body(inputs.map { Variable($0.value) }) }
        return Variable(out.value, op: .recomputed(inputs, parameters: parameters, body: body))
    }

    // MARK: Layout

    /// Same elements, new shape (one -1 allowed). No copy.
    public func reshaped(_ newShape: [Int]) -> Variable {
        Variable(value.reshaped(newShape), op: .reshape(self))
    }
    /// Elements `range` along `axis` (a copy).
    public func slice(axis: Int, _ range: Range<Int>) -> Variable {
        Variable(Kernels.sliceForward(value, axis: axis, range: range), op: .slice(self, axis: axis, range: range))
    }

    /// `parts` one after another along the first axis (a copy); the other axes must agree.
    public static func concatenatedRows(_ parts: [Variable]) -> Variable {
        precondition(!parts.isEmpty, "concatenatedRows: no parts")
        let rest = Array(parts[0].shape.dropFirst())
        precondition(
            parts.allSatisfy { Array($0.shape.dropFirst()) == rest },
            "concatenatedRows: parts of shapes \(parts.map(\.shape)) differ past the first axis")
        let out = Tensor(uninitialized: [parts.reduce(0) { $0 + $1.shape[0] }] + rest)  // every row copied below
        var offset = 0
        for part in parts {
            (out.pointer + offset).update(from: part.value.pointer, count: part.value.count)
            offset += part.value.count
        }
        return Variable(out, op: .concatenatedRows(parts))
    }

    /// A copy with two axes swapped.
    public func swappingAxes(_ a0: Int, _ a1: Int) -> Variable {
        Variable(Kernels.swapAxes(value, a0, a1), op: .swapAxes(self, a0, a1))
    }
}

extension Tensor {
    /// 1 above the diagonal of a (T, T) matrix, 0 elsewhere: the positions a causal model may not see.
    public static func causalMask(_ t: Int) -> Tensor {
        let m = Tensor(zeros: [t, t])
        for i in 0..<t { for j in (i + 1)..<t { m[flat: i * t + j] = 1 } }
        return m
    }
}
