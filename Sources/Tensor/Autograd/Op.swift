/// Every differentiable operation and, in `backward`, its derivative: the one place that holds
/// them all, so an op without a rule fails to compile.
enum Op {
    case binary(Variable, Variable, Kernels.BinaryOp)
    case scale(Variable, Float)
    case shift(Variable, Float)
    case exp(Variable, output: Tensor)
    case log(Variable)
    case tanh(Variable, output: Tensor)
    case relu(Variable)
    case gelu(Variable)
    case matmul(Variable, Variable, transposeA: Bool, transposeB: Bool)
    case affine(Variable, weight: Variable, bias: Variable, residual: Variable?)
    case sum(Variable, axis: Int?)
    case mean(Variable, axis: Int?)
    case max(Variable, winners: [Int])
    case softmax(Variable, output: Tensor)
    case logSoftmax(Variable, output: Tensor)
    case layerNorm(Variable, gamma: Variable, beta: Variable, mean: Tensor, rstd: Tensor)
    case embedding(table: Variable, ids: TokenTensor)
    case causalSelfAttention(qkv: Variable, layout: AttentionLayout, probs: Tensor)
    case attention(q: Variable, k: Variable, v: Variable, layout: AttentionLayout, probs: Tensor)
    case rmsNorm(Variable, weight: Variable, rstd: Tensor)
    case swiGLU(gate: Variable, up: Variable)
    case rotary(Variable, heads: Int, table: RotaryTable, positions: TokenTensor)
    case recomputed([Variable], parameters: [Variable], body: ([Variable]) -> Variable)
    case crossEntropy(logits: Variable, targets: TokenTensor, probs: Tensor, counted: Int)
    case gatherLogProbs(logits: Variable, ids: TokenTensor, probs: Tensor)
    case maskedFill(Variable, mask: Tensor)
    case reshape(Variable)
    case swapAxes(Variable, Int, Int)
    case slice(Variable, axis: Int, range: Range<Int>)
    case concatenatedRows([Variable])

    var inputs: [Variable] {
        switch self {
        case .binary(let a, let b, _), .matmul(let a, let b, _, _), .rmsNorm(let a, let b, _),
            .swiGLU(let a, let b):
            [a, b]
        case .attention(let q, let k, let v, _, _): [q, k, v]
        case .recomputed(let inputs, let parameters, _): inputs + parameters
        case .concatenatedRows(let parts): parts
        case .layerNorm(let x, let gamma, let beta, _, _): [x, gamma, beta]
        case .affine(let x, let w, let b, let residual): [x, w, b] + (residual.map { [$0] } ?? [])
        case .scale(let x, _), .shift(let x, _), .exp(let x, _), .log(let x), .tanh(let x, _), .relu(let x),
            .gelu(let x), .sum(let x, _), .mean(let x, _), .max(let x, _), .softmax(let x, _),
            .logSoftmax(let x, _), .embedding(let x, _), .causalSelfAttention(let x, _, _),
            .rotary(let x, _, _, _), .crossEntropy(let x, _, _, _), .gatherLogProbs(let x, _, _), .maskedFill(let x, _),
            .reshape(let x),
            .swapAxes(let x, _, _), .slice(let x, _, _):
            [x]
        }
    }

    /// Adds the contribution of `dOut` (the gradient of this op's output `out`) into the
    /// gradients of its inputs that require one.
    // size: derivative switch
    func backward(dOut: Tensor, out: Tensor) {
        // The gradient buffer of an input, or nil when the input needs none.
        func g(_ v: Variable) -> Tensor? { v.requiresGrad ? v.gradBuffer() : nil }

        switch self {
        case .binary(let a, let b, let kind):
            // Rules per element, then summed over broadcast axes back to each operand's shape.
            switch kind {
            case .add:
                // An operand of the output's shape (the residual stream) takes dOut as it is.
                for operand in [a, b] where operand.requiresGrad {
                    if operand.value.count == dOut.count {
                        operand.takeGradient(dOut)
                    } else {
                        Kernels.accumulateReduced(dOut, to: operand.shape, into: operand.gradBuffer())
                    }
                }
            case .subtract:
                if let da = g(a) { Kernels.accumulateReduced(dOut, to: a.shape, into: da) }
                if let db = g(b) { Kernels.accumulateReduced(Kernels.map(dOut) { -$0 }, to: b.shape, into: db) }
            case .multiply:
                // d(a·b) = b·da + a·db
                if let da = g(a) {
                    Kernels.accumulateReduced(Kernels.binary(dOut, b.value, .multiply), to: a.shape, into: da)
                }
                if let db = g(b) {
                    Kernels.accumulateReduced(Kernels.binary(dOut, a.value, .multiply), to: b.shape, into: db)
                }
            case .divide:
                // d(a/b) = da/b − a·db/b², and a/b² = out/b
                if let da = g(a) {
                    Kernels.accumulateReduced(Kernels.binary(dOut, b.value, .divide), to: a.shape, into: da)
                }
                if let db = g(b) {
                    let q = Kernels.binary(Kernels.binary(dOut, out, .multiply), b.value, .divide)
                    Kernels.accumulateReduced(Kernels.map(q) { -$0 }, to: b.shape, into: db)
                }
            }
        case .scale(let x, let s):
            if let dx = g(x) { Kernels.addScaledInPlace(dx, dOut, alpha: s) }
        case .shift(let x, _):
            if let dx = g(x) { Kernels.addInPlace(dx, dOut) }
        case .exp(let x, let y):
            // d eˣ = eˣ dx
            if let dx = g(x) { Kernels.accumulateMap(dx, y, dOut) { $0 * $1 } }
        case .log(let x):
            // d ln x = dx / x
            if let dx = g(x) { Kernels.accumulateMap(dx, x.value, dOut) { $1 / $0 } }
        case .tanh(let x, let y):
            // d tanh x = (1 − tanh²x) dx
            if let dx = g(x) { Kernels.accumulateMap(dx, y, dOut) { (1 - $0 * $0) * $1 } }
        case .relu(let x):
            if let dx = g(x) { Kernels.accumulateMap(dx, x.value, dOut) { $0 > 0 ? $1 : 0 } }
        case .gelu(let x):
            if x.requiresGrad {
                let (dx, overwrite) = x.gradBufferForOverwrite()
                Kernels.geluBackward(dOut: dOut, x: x.value, dx: dx, overwrite: overwrite)
            }
        case .matmul(let a, let b, let ta, let tb):
            Self.matmulGradients(dOut, a, b, transposeA: ta, transposeB: tb)
        case .affine(let x, let w, let bias, let residual):
            // x·w as a matmul; the bias sums dOut over rows; the residual takes dOut as it is.
            Self.matmulGradients(dOut, x, w, transposeA: false, transposeB: false)
            if let db = g(bias) { Kernels.accumulateReduced(dOut, to: bias.shape, into: db) }
            if let residual, residual.requiresGrad { residual.takeGradient(dOut) }
        case .sum(let x, let axis):
            if let dx = g(x) { Kernels.sumBackward(dOut: dOut, xShape: x.shape, axis: axis, scale: 1, dx: dx) }
        case .mean(let x, let axis):
            if let dx = g(x) {
                let n = axis.map { x.shape[Shape.axis($0, rank: x.shape.count, op: "mean")] } ?? x.value.count
                Kernels.sumBackward(dOut: dOut, xShape: x.shape, axis: axis, scale: 1 / Float(n), dx: dx)
            }
        case .max(let x, let winners):
            if let dx = g(x) { Kernels.maxBackward(dOut: dOut, winners: winners, dx: dx) }
        case .softmax(let x, let y):
            if let dx = g(x) { Kernels.softmaxBackward(dOut: dOut, y: y, dx: dx) }
        case .logSoftmax(let x, let y):
            if let dx = g(x) { Kernels.logSoftmaxBackward(dOut: dOut, y: y, dx: dx) }
        case .layerNorm(let x, let gamma, let beta, let mean, let rstd):
            Kernels.layerNormBackward(
                dOut: dOut, x: x.value, gamma: gamma.value, mean: mean, rstd: rstd,
                dx: g(x), dgamma: g(gamma), dbeta: g(beta))
        case .embedding(let table, let ids):
            if let dt = g(table) { Kernels.embeddingBackward(dOut: dOut, ids: ids, dtable: dt) }
        case .causalSelfAttention(let qkv, let layout, let probs):
            if qkv.requiresGrad {
                let (dq, overwrite) = qkv.gradBufferForOverwrite()
                let (q, d, c) = (qkv.value.pointer, dq.pointer, layout.outWidth)
                Kernels.attentionBackward(
                    dOut: dOut, q: q, k: q + c, v: q + 2 * c, probs: probs, layout: layout, dq: d, dk: d + c,
                    dv: d + 2 * c, overwrite: (overwrite, overwrite, overwrite))
            }
        case .attention(let q, let k, let v, let layout, let probs):
            // Inputs without a gradient still receive one, in scratch that is then dropped.
            func buffer(_ x: Variable) -> (buffer: Tensor, overwrite: Bool) {
                x.requiresGrad ? x.gradBufferForOverwrite() : (Tensor(uninitialized: x.shape), true)
            }
            let (dq, dk, dv) = (buffer(q), buffer(k), buffer(v))
            Kernels.attentionBackward(
                dOut: dOut, q: q.value.pointer, k: k.value.pointer, v: v.value.pointer, probs: probs, layout: layout,
                dq: dq.buffer.pointer, dk: dk.buffer.pointer, dv: dv.buffer.pointer,
                overwrite: (dq.overwrite, dk.overwrite, dv.overwrite))
        case .rmsNorm(let x, let weight, let rstd):
            Kernels.rmsNormBackward(
                dOut: dOut, x: x.value, weight: weight.value, rstd: rstd, dx: g(x), dweight: g(weight))
        case .swiGLU(let gate, let up):
            Kernels.swiGLUBackward(dOut: dOut, gate: gate.value, up: up.value, dgate: g(gate), dup: g(up))
        case .recomputed(let inputs, _, let body):
            // Runs the body again, recording this time, and differentiates that graph: parameters
            // inside it accumulate as usual, the inputs' gradients come back through fresh leaves.
            let leaves = inputs.map { Variable($0.value, requiresGrad: $0.requiresGrad) }
            body(leaves).backward(seed: dOut)
            for (input, leaf) in zip(inputs, leaves) where input.requiresGrad {
                if let grad = leaf.grad { input.takeGradient(grad) }
            }
        case .rotary(let x, let heads, let table, let positions):
            if x.requiresGrad {
                x.takeGradient(Kernels.rotary(dOut, heads: heads, table: table, positions: positions, inverse: true))
            }
        case .crossEntropy(let logits, let targets, let probs, let counted):
            if let dl = g(logits) {
                Kernels.crossEntropyBackward(
                    dLoss: dOut.item, probs: probs, targets: targets, counted: counted, dlogits: dl)
            }
        case .gatherLogProbs(let logits, let ids, let probs):
            if let dl = g(logits) { Kernels.gatherLogProbsBackward(dOut: dOut, probs: probs, ids: ids, dlogits: dl) }
        case .maskedFill(let x, let mask):
            if let dx = g(x) { Kernels.maskedFillBackward(dOut: dOut, mask: mask, dx: dx) }
        case .reshape(let x):
            if let dx = g(x) { Kernels.addInPlace(dx, dOut) }
        case .swapAxes(let x, let a0, let a1):
            if let dx = g(x) { Kernels.addInPlace(dx, Kernels.swapAxes(dOut, a0, a1)) }
        case .slice(let x, let axis, let range):
            if let dx = g(x) { Kernels.sliceBackward(dOut: dOut, xShape: x.shape, axis: axis, range: range, dx: dx) }
        case .concatenatedRows(let parts):
            var start = 0
            for part in parts {
                let rows = part.shape[0]
                if part.requiresGrad {
                    part.takeGradient(Kernels.sliceForward(dOut, axis: 0, range: start..<(start + rows)))
                }
                start += rows
            }
        }
    }

    /// The gradients of op(a)·op(b) into a's and b's buffers, written over them where nothing was
    /// written yet. dA is written before dB, so when a and b are one variable only dA may overwrite.
    private static func matmulGradients(
        _ dOut: Tensor, _ a: Variable, _ b: Variable, transposeA: Bool, transposeB: Bool
    ) {
        let da = a.requiresGrad ? a.gradBufferForOverwrite() : nil
        let db = b.requiresGrad ? b.gradBufferForOverwrite() : nil
        Kernels.matmulBackward(
            dOut: dOut, a: a.value, b: b.value, transposeA: transposeA, transposeB: transposeB, da: da?.buffer,
            db: db?.buffer, overwriteA: da?.overwrite ?? false, overwriteB: db?.overwrite ?? false,
            precision: .of(a, b))
    }
}
