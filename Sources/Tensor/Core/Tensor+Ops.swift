/// Operations on plain tensors, outside autograd: for inference paths and benchmarks.
extension Tensor {
    /// op(self) · op(other); see `Variable.matmul` for the accepted shapes.
    public func matmul(
        _ other: Tensor, transposeSelf: Bool = false, transposeOther: Bool = false,
        precision: ProductPrecision = .float32
    ) -> Tensor {
        Kernels.matmulForward(self, other, transposeA: transposeSelf, transposeB: transposeOther, precision: precision)
    }
}
