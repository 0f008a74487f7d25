/// Cross-entropy and the gather of log-probabilities at given ids, both over the last axis.
extension Kernels {
    /// Mean of −log softmax(logits)[target] over rows whose target is not `TokenTensor.ignored`.
    /// logits: (…, V), targets: (…). Returns the loss (shape []), softmax probs and the counted rows.
    static func crossEntropyForward(logits: Tensor, targets: TokenTensor) -> (loss: Tensor, probs: Tensor, counted: Int)
    {
        let v = logits.shape.last ?? 1
        let rows = logits.count / max(v, 1)
        precondition(
            targets.count == rows,
            "shape mismatch in crossEntropy, logits: \(logits.shape), targets: \(targets.shape)")
        let (probs, lse) = softmaxWithLogSumExp(logits)
        var total = 0.0
        var counted = 0
        for r in 0..<rows {
            let t = targets.ids[r]
            if t == TokenTensor.ignored { continue }
            precondition(t >= 0 && Int(t) < v, "crossEntropy: target \(t) at row \(r) outside \(v) classes")
            total -= Double(logits.pointer[r * v + Int(t)] - lse[r])
            counted += 1
        }
        return (Tensor(scalar: counted > 0 ? Float(total / Double(counted)) : 0), probs, counted)
    }

    /// dlogits += dLoss · (softmax − onehot(target)) / counted, for counted rows.
    static func crossEntropyBackward(dLoss: Float, probs: Tensor, targets: TokenTensor, counted: Int, dlogits: Tensor) {
        guard counted > 0 else { return }
        let v = probs.shape.last ?? 1
        let scale = dLoss / Float(counted)
        for r in 0..<targets.count {
            let t = targets.ids[r]
            if t == TokenTensor.ignored { continue }
            let p = probs.pointer + r * v, d = dlogits.pointer + r * v
            for i in 0..<v { d[i] += scale * p[i] }
            d[Int(t)] -= scale
        }
    }

    /// out[…] = log softmax(logits[…, :])[ids[…]]; ignored ids give 0. Returns out and softmax probs.
    static func gatherLogProbsForward(logits: Tensor, ids: TokenTensor) -> (out: Tensor, probs: Tensor) {
        let v = logits.shape.last ?? 1
        let rows = logits.count / max(v, 1)
        precondition(ids.count == rows, "shape mismatch in gatherLogProbs, logits: \(logits.shape), ids: \(ids.shape)")
        let out = Tensor(zeros: ids.shape)
        let (probs, lse) = softmaxWithLogSumExp(logits)
        for r in 0..<rows {
            let id = ids.ids[r]
            if id == TokenTensor.ignored { continue }
            precondition(id >= 0 && Int(id) < v, "gatherLogProbs: id \(id) at row \(r) outside vocabulary of \(v)")
            out.pointer[r] = logits.pointer[r * v + Int(id)] - lse[r]
        }
        return (out, probs)
    }

    /// dlogits[r] += dOut[r] · (onehot(id) − softmax).
    static func gatherLogProbsBackward(dOut: Tensor, probs: Tensor, ids: TokenTensor, dlogits: Tensor) {
        let v = probs.shape.last ?? 1
        for r in 0..<ids.count {
            let id = ids.ids[r]
            if id == TokenTensor.ignored { continue }
            let g = dOut.pointer[r]
            let p = probs.pointer + r * v, d = dlogits.pointer + r * v
            for i in 0..<v { d[i] -= g * p[i] }
            d[Int(id)] += g
        }
    }
}
