// Products of a few rows with a weight matrix packed once into column panels: the decode step of
// a transformer, where every weight is read once per token and OpenBLAS would re-pack it per call.
//
// Layout: panel q holds columns [16q, 16q + 16) of W for every row p of W, as 16 contiguous floats
// at panels[(q * k + p) * 16]; columns past n are zero. A kernel then streams each panel front to
// back, the one access pattern the hardware prefetchers follow at full memory bandwidth.
//
// Every output element is one fused multiply-add chain over p = 0, 1, …, k−1 starting from 0, then
// + bias, then + residual: the same bits on every instruction set and whatever the number of rows,
// the panel range a thread takes, or the row block an element falls in.
#ifndef RLAIF_PANEL_GEMM_H
#define RLAIF_PANEL_GEMM_H

#include <stddef.h>

#define RLAIF_PANEL_WIDTH 16

/// Which kernel runs: the best the CPU supports (0), or one named for tests.
typedef enum {
    rlaif_panel_isa_best = 0,
    rlaif_panel_isa_scalar = 1,
    rlaif_panel_isa_avx2 = 2,
    rlaif_panel_isa_avx512 = 3,
} rlaif_panel_isa;

/// Floats a packed (k × n) matrix takes.
size_t rlaif_panel_packed_count(long k, long n);

/// Packs W into panels. W is (k × n) with row stride ldw, or, when `transposed`, stored as
/// (n × k) with row stride ldw (a tied LM head: out = x · Eᵀ for an embedding E of n rows).
/// Writes panels [panel_lo, panel_hi) only, so threads can pack parts.
void rlaif_panel_pack(
    const float *w, long k, long n, long ldw, int transposed, float *panels, long panel_lo, long panel_hi);

/// out[i, j] = (Σ_p x[i, p] · W[p, j]) + bias[j] + residual[i, j] for i < m and the columns of
/// panels [panel_lo, panel_hi). bias and residual may be NULL; residual may equal out.
void rlaif_panel_gemm(
    rlaif_panel_isa isa, long m, long k, const float *x, long ldx, const float *panels, long n,
    const float *bias, const float *residual, long ldr, float *out, long ldo, long panel_lo, long panel_hi);

/// The kernel `rlaif_panel_isa_best` picks on this CPU.
rlaif_panel_isa rlaif_panel_best_isa(void);

#endif
