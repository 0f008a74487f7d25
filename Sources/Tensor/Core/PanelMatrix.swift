import CKernels

/// A weight matrix packed once for products with a few rows: the projections of a decode step.
///
/// A decode step multiplies a handful of rows (one per sequence) by every weight matrix, so it
/// reads each weight once per token and does little arithmetic per weight read. Through
/// `cblas_sgemm` each such product packs the weights again (or, cut into OpenBLAS's small-matrix
/// calls, reads them in short strided runs); packed here once into column panels of 16 floats that
/// a kernel streams front to back, they are read at memory speed (docs/PERFORMANCE.md).
///
/// Each output element is one multiply-add chain over the inner index in order, then + bias, then
/// + residual: a row's bits do not depend on how many rows share the call or how the panels are
/// split between threads. A `PanelMatrix` is a copy: pack again after the weights change.
///
/// With `precision: .bf16` the weights are rounded to bfloat16 once, here, and a product reads
/// half the bytes (`BFloat16Panels`); the rows are rounded per product.
public final class PanelMatrix: @unchecked Sendable {
    /// The inner dimension (rows of W).
    public let inner: Int
    /// Output columns (columns of W).
    public let columns: Int
    private let panelCount: Int
    /// The weights as packed: Float32 panels, or bfloat16 pair panels.
    private enum Packed {
        case float32(TensorStorage)
        case bf16(BFloat16Panels)
    }
    private let packed: Packed

    static let panelWidth = Int(RLAIF_PANEL_WIDTH)
    /// Products from this many multiply-adds on are split over the pool: 2²⁰ splits the 8×256·256×768
    /// attention projection, which paid for the wake-up (docs/PERFORMANCE.md).
    static let parallelWork = 1 << 20

    /// Packs `weight` (K, N), or, when `transposed`, a (N, K) weight used as its transpose
    /// (a tied LM head: logits = h · Eᵀ).
    public init(_ weight: Tensor, transposed: Bool = false, precision: ProductPrecision = .float32) {
        precondition(weight.rank == 2, "PanelMatrix: weight must be a matrix, got \(weight.shape)")
        (inner, columns) = transposed ? (weight.shape[1], weight.shape[0]) : (weight.shape[0], weight.shape[1])
        panelCount = (columns + Self.panelWidth - 1) / Self.panelWidth
        let (k, n, ld) = (inner, columns, weight.shape[1])
        if precision == .bf16 {
            packed = .bf16(BFloat16Panels(weight.pointer, k: k, n: n, ldb: ld, transposed: transposed))
            return
        }
        let panels = TensorStorage(count: rlaif_panel_packed_count(inner, columns), zeroed: false)
        packed = .float32(panels)
        let (source, destination) = (weight.pointer, panels.base)
        Engine.parallelRanges(panelCount, grain: max(1, (1 << 16) / max(k * Self.panelWidth, 1))) { r in
            rlaif_panel_pack(source, k, n, ld, transposed ? 1 : 0, destination, r.lowerBound, r.upperBound)
        }
    }

    /// Packs a weight variable at the precision of its products (`Variable.productPrecision`).
    public convenience init(_ weight: Variable, transposed: Bool = false) {
        self.init(weight.value, transposed: transposed, precision: weight.productPrecision)
    }

    /// x·W + bias + residual for x (M, K): (M, N). `bias` is (N); `residual` is (M, N).
    public func product(_ x: Tensor, bias: Tensor? = nil, residual: Tensor? = nil) -> Tensor {
        product(x, bias: bias, residual: residual, kernel: rlaif_panel_isa_best)
    }

    /// The same product on a named kernel (tests compare them); one the CPU lacks falls back.
    func product(
        _ x: Tensor, bias: Tensor?, residual: Tensor?, kernel: rlaif_panel_isa,
        bf16Kernel: rlaif_bf16_isa = rlaif_bf16_isa_best
    ) -> Tensor {
        precondition(
            x.rank == 2 && x.shape[1] == inner,
            "shape mismatch in PanelMatrix.product, x: \(x.shape), weight: [\(inner), \(columns)]")
        let m = x.shape[0]
        if let bias {
            precondition(bias.count == columns, "PanelMatrix.product: bias \(bias.shape) for \(columns) columns")
        }
        if let residual {
            precondition(
                residual.shape == [m, columns], "PanelMatrix.product: residual \(residual.shape) for [\(m), \(columns)]"
            )
        }
        let out = Tensor(uninitialized: [m, columns])
        let panels: TensorStorage
        switch packed {
        case .bf16(let bf16Panels):
            let rows = Kernels.packRows(x.pointer, m: m, k: inner, lda: inner, transposed: false)
            bf16Panels.multiply(
                rows, m: m, alpha: 1, accumulate: false, bias: bias?.pointer, residual: residual?.pointer,
                out: out.pointer, ldo: columns, kernel: bf16Kernel)
            return out
        case .float32(let storage): panels = storage
        }
        let (k, n) = (inner, columns)
        let (xp, pp, bp, rp, op) = (x.pointer, panels.base, bias?.pointer, residual?.pointer, out.pointer)
        // Threads take whole groups of three panels (the kernel's unit), and only in products of
        // at least `parallelWork` multiply-adds; smaller ones run on one thread.
        let groups = (panelCount + 2) / 3
        Engine.parallelRanges(groups, grain: m * n * k >= Self.parallelWork ? 1 : groups, perThread: 4) { r in
            rlaif_panel_gemm(
                kernel, m, k, xp, k, pp, n, bp, rp, n, op, n, r.lowerBound * 3, min(panelCount, r.upperBound * 3))
        }
        return out
    }
}
