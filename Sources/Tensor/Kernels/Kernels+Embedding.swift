/// Embedding lookup: out[…, :] = table[ids[…], :].
extension Kernels {
    /// table: (V, C), ids: any shape S → out: S + [C].
    static func embeddingForward(table: Tensor, ids: TokenTensor) -> Tensor {
        precondition(table.rank == 2, "embedding: table must be (vocabulary, channels), got \(table.shape)")
        let v = table.shape[0], c = table.shape[1]
        let out = Tensor(zeros: ids.shape + [c])
        for (i, id) in ids.ids.enumerated() {
            precondition(id >= 0 && Int(id) < v, "embedding: id \(id) at position \(i) outside vocabulary of \(v)")
            (out.pointer + i * c).update(from: table.pointer + Int(id) * c, count: c)
        }
        return out
    }

    /// dtable[ids[i], :] += dOut[i, :], in position order (a fixed order keeps the sum deterministic).
    static func embeddingBackward(dOut: Tensor, ids: TokenTensor, dtable: Tensor) {
        let c = dtable.shape[1]
        for (i, id) in ids.ids.enumerated() {
            let d = dtable.pointer + Int(id) * c, s = dOut.pointer + i * c
            for j in 0..<c { d[j] += s[j] }
        }
    }
}
