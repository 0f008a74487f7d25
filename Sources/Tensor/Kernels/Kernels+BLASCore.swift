import CKernels
import COpenBLAS

extension Kernels {
    /// The OpenBLAS kernels this process runs ("Cooperlake", "SkylakeX", "Haswell", …): named by
    /// instruction set before OpenBLAS starts (blas_core.h), unless OPENBLAS_CORETYPE was set.
    public static var blasCore: String { openblas_get_corename().map { String(cString: $0) } ?? "unknown" }

    /// The core this CPU's instruction set names, or nil where OpenBLAS chooses.
    public static var blasCoreForCPU: String? { rlaif_blas_core_for_cpu().map { String(cString: $0) } }
}
