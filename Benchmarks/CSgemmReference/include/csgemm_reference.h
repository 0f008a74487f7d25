#ifndef CSGEMM_REFERENCE_H
#define CSGEMM_REFERENCE_H

/// Times `reps` calls of cblas_sgemm (row-major, C = op(A)·op(B)) on freshly allocated,
/// deterministic inputs, straight from C, and returns the best GFLOP/s over the calls.
/// The reference the engine's matmul is measured against, in the same process and library.
double csgemm_reference_gflops(int m, int n, int k, int trans_a, int trans_b, int reps);

/// Sets OpenBLAS's thread count (the engine does the same through its budget).
void csgemm_reference_set_threads(int threads);

#endif
