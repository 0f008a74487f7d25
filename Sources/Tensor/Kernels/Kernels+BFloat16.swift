import CKernels

/// How a matrix product multiplies: in Float32, or with both inputs rounded to bfloat16 and the
/// products summed in Float32 (`bf16`, AVX-512 BF16's VDPBF16PS; the same bits on other CPUs).
public enum ProductPrecision: String, Sendable, CaseIterable {
    case float32
    case bf16

    /// bf16 when either operand asks for it: a weight marked bf16 makes its products bf16,
    /// whatever the activation it meets.
    static func of(_ a: Variable, _ b: Variable) -> ProductPrecision {
        a.productPrecision == .bf16 || b.productPrecision == .bf16 ? .bf16 : .float32
    }
}

/// Scratch for bfloat16 operands: Float32 storage (so big ones come from `LargeBuffers`) read as
/// pairs of 16-bit values by the kernels. `paneled`: rows packed from a transposed operand.
struct BFloat16Buffer {
    let storage: TensorStorage
    let pointer: UnsafeMutablePointer<UInt16>
    let paneled: Bool

    init(count: Int, paneled: Bool = false, zeroed: Bool = false) {
        self.paneled = paneled
        storage = TensorStorage(count: max(1, (count + 1) / 2), zeroed: zeroed)
        pointer = UnsafeMutableRawPointer(storage.base).assumingMemoryBound(to: UInt16.self)
    }
}

extension Kernels {
    /// True where the CPU multiplies bfloat16 itself (AVX-512 BF16); elsewhere the same bits
    /// come from an emulation several times slower than Float32.
    public static var bf16Hardware: Bool { rlaif_bf16_best_isa() == rlaif_bf16_isa_avx512bf16 }

    /// C = alpha · op(A) · op(B) (+ C when beta is 1) with bfloat16 inputs (see bf16_gemm.h).
    /// Both operands are rounded and packed per call; each element is one chain, so neither the
    /// thread split nor the row count changes a bit.
    static func bf16Gemm(
        _ transposeA: Bool, _ transposeB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
        _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
        _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int
    ) {
        precondition(beta == 0 || beta == 1, "bf16Gemm: beta must be 0 or 1, got \(beta)")
        let rows = packRows(a, m: m, k: k, lda: lda, transposed: transposeA)
        let panels = BFloat16Panels(b, k: k, n: n, ldb: ldb, transposed: transposeB)
        panels.multiply(rows, m: m, alpha: alpha, accumulate: beta == 1, bias: nil, residual: nil, out: c, ldo: ldc)
    }

    /// op(A) (m × k) rounded to bfloat16 and packed (see `rlaif_bf16_pack_rows`).
    static func packRows(
        _ a: UnsafePointer<Float>, m: Int, k: Int, lda: Int, transposed: Bool
    ) -> BFloat16Buffer {
        let rows = BFloat16Buffer(count: rlaif_bf16_rows_count(m, k), paneled: transposed)
        let out = rows.pointer
        // Ranges of whole blocks of 16 rows (a panel, when transposed).
        Engine.parallelRanges((m + 15) / 16, grain: max(1, (1 << 15) / max(16 * k, 1))) { r in
            rlaif_bf16_pack_rows(a, m, k, lda, transposed ? 1 : 0, out, r.lowerBound * 16, min(m, r.upperBound * 16))
        }
        return rows
    }
}

/// An operand (k × n) rounded to bfloat16 and packed into column panels of 16 (pairs of inner
/// indices interleaved, as VDPBF16PS reads them).
final class BFloat16Panels: @unchecked Sendable {
    let inner: Int, columns: Int, panelCount: Int
    private let buffer: BFloat16Buffer

    static let width = Int(RLAIF_BF16_PANEL_WIDTH)

    init(_ b: UnsafePointer<Float>, k: Int, n: Int, ldb: Int, transposed: Bool) {
        (inner, columns) = (k, n)
        panelCount = (n + Self.width - 1) / Self.width
        buffer = BFloat16Buffer(count: rlaif_bf16_panel_count(k, n))
        let out = buffer.pointer
        Engine.parallelRanges(panelCount, grain: max(1, (1 << 15) / max(k * Self.width, 1))) { r in
            rlaif_bf16_pack_panels(b, k, n, ldb, transposed ? 1 : 0, out, r.lowerBound, r.upperBound)
        }
    }

    /// out = residual + ((out if accumulate) + alpha · rows·B + bias) for `m` packed rows.
    func multiply(
        _ rows: BFloat16Buffer, m: Int, alpha: Float, accumulate: Bool, bias: UnsafePointer<Float>?,
        residual: UnsafePointer<Float>?, out: UnsafeMutablePointer<Float>, ldo: Int,
        kernel: rlaif_bf16_isa = rlaif_bf16_isa_best
    ) {
        let (k, n, count, packed) = (inner, columns, panelCount, UnsafePointer(buffer.pointer))
        let (x, paneled) = (UnsafePointer(rows.pointer), rows.paneled ? Int32(1) : 0)
        // Tasks are groups of three panels (the kernel's unit) times blocks of rows (multiples of
        // 8, the kernel's row block). Many rows are cut into one block per thread, which shares
        // the work evenly whatever the panel count; a few rows share the panel groups.
        let groups = (count + 2) / 3
        let threads = m * n * k >= PanelMatrix.parallelWork ? Engine.shared.threads : 1
        let rowBlock = m >= 64 * threads ? ((m + threads - 1) / threads + 7) / 8 * 8 : m
        let rowBlocks = (m + rowBlock - 1) / rowBlock
        Engine.parallelRanges(groups * rowBlocks, grain: threads > 1 ? 1 : groups * rowBlocks, perThread: 4) { tasks in
            for task in tasks {
                let (group, r0) = (task % groups, task / groups * rowBlock)
                rlaif_bf16_gemm(
                    kernel, r0, min(m, r0 + rowBlock), k, x, paneled, packed, n, alpha, accumulate ? 1 : 0, bias,
                    residual, n, out, ldo, group * 3, min(count, group * 3 + 3))
            }
        }
    }
}
