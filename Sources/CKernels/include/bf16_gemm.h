// Matrix products with bfloat16 inputs and Float32 accumulation: AVX-512 BF16's VDPBF16PS where
// the CPU has it, and AVX2 or portable code that computes the same bits where it does not.
//
// Inputs are rounded from Float32 to bfloat16 (to nearest, ties to even; subnormals to signed
// zero) when they are packed. Each output element is one Float32 chain over the inner index in
// pairs: for p = 0, 2, 4, …: acc = fma(a[p+1], b[p+1], acc), then acc = fma(a[p], b[p], acc), each
// result flushed to zero when subnormal — VDPBF16PS's own order and rounding (an odd k is padded
// with a zero). The bits do not depend on the instruction set, the thread split or the row block.
#ifndef RLAIF_BF16_GEMM_H
#define RLAIF_BF16_GEMM_H

#include <stddef.h>
#include <stdint.h>

#define RLAIF_BF16_PANEL_WIDTH 16

/// Which kernel runs: the best the CPU supports (0), or one named for tests.
typedef enum {
    rlaif_bf16_isa_best = 0,
    rlaif_bf16_isa_scalar = 1,
    rlaif_bf16_isa_avx2 = 2,
    rlaif_bf16_isa_avx512bf16 = 3,
} rlaif_bf16_isa;

/// The kernel `rlaif_bf16_isa_best` picks on this CPU.
rlaif_bf16_isa rlaif_bf16_best_isa(void);

/// Float32 → bfloat16, to nearest with ties to even; subnormals become signed zeros, NaNs stay NaN.
uint16_t rlaif_bf16_from_float(float value);
/// bfloat16 → Float32 (exact).
float rlaif_bf16_to_float(uint16_t value);

/// Rounds `count` floats to bfloat16 with the vector instructions where the CPU has them
/// (`vector` 1) or the portable loop (0): both give the same bits.
void rlaif_bf16_round(int vector, const float *src, long count, uint16_t *dst);

/// The inner dimension rounded up to a whole number of pairs.
long rlaif_bf16_padded_inner(long k);

/// bfloat16 values packed rows of op(A) (m × k) take, in either layout.
size_t rlaif_bf16_rows_count(long m, long k);

/// Packs rows [row_lo, row_hi) of op(A) (m × k), row_lo a multiple of 16. A stored (m × k) with
/// row stride lda gives rows of kp = `rlaif_bf16_padded_inner(k)` values at out[i * kp]. A stored
/// (k × m) (`transposed`) gives panels of 16 rows laid out as `rlaif_bf16_pack_panels` lays out
/// columns: then pairs of inner indices are what sits side by side in memory, and both layouts
/// pack with whole-vector loads and stores.
void rlaif_bf16_pack_rows(
    const float *a, long m, long k, long lda, int transposed, uint16_t *out, long row_lo, long row_hi);

/// bfloat16 values a packed (k × n) operand takes.
size_t rlaif_bf16_panel_count(long k, long n);

/// Packs op(B) (k × n) into panels of 16 columns: panel q, pair t holds 32 values
/// b[2t, j], b[2t+1, j] for j = 16q … 16q+15 at panels[(q * kp/2 + t) * 32]; columns past n are
/// zero. B is (k × n) with row stride ldb, or, when `transposed`, stored as (n × k). Writes panels
/// [panel_lo, panel_hi) only.
void rlaif_bf16_pack_panels(
    const float *b, long k, long n, long ldb, int transposed, uint16_t *panels, long panel_lo, long panel_hi);

/// out[i, j] = residual[i, j] + ((out[i, j] if accumulate) + alpha · Σ a[i, p] b[p, j] + bias[j])
/// for rows [row_lo, row_hi) (row_lo a multiple of 8) and the columns of panels
/// [panel_lo, panel_hi); each term present only when given (bias and residual may be NULL; alpha 1
/// multiplies nothing). rows come from `rlaif_bf16_pack_rows` (`rows_paneled`: packed from a
/// transposed A), panels from `rlaif_bf16_pack_panels`, both for the same k.
void rlaif_bf16_gemm(
    rlaif_bf16_isa isa, long row_lo, long row_hi, long k, const uint16_t *rows, int rows_paneled,
    const uint16_t *panels, long n, float alpha, int accumulate, const float *bias, const float *residual, long ldr,
    float *out, long ldo, long panel_lo, long panel_hi);

#endif
