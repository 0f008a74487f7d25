// OpenBLAS picks its kernels from a table of CPU models, and its kernel sets sum in different
// orders. Debian's 0.3.21 does not know newer models (an Emerald Rapids Xeon gets its Prescott
// kernels: SSE3, several times slower), so the Float32 bits and speed would depend on that table.
// Every executable that links CKernels names the core by instruction set instead (in
// OPENBLAS_CORETYPE, for child processes too) and has OpenBLAS pick again before main runs; a
// core the user set in OPENBLAS_CORETYPE wins.
#ifndef RLAIF_BLAS_CORE_H
#define RLAIF_BLAS_CORE_H

/// The OpenBLAS core for this CPU's instruction set: "Cooperlake" (AVX-512 with BF16),
/// "SkylakeX" (AVX-512), "Haswell" (AVX2 with FMA), or NULL (OpenBLAS's own choice).
const char *rlaif_blas_core_for_cpu(void);

#endif
