// AdamW's element loop, compiled for AVX-512, AVX2 and the baseline from one scalar definition and
// chosen at run time (its divisions and square roots ran four lanes wide in baseline Swift). The
// arithmetic is that of `AdamW.update` operation for operation, with no fused multiply-adds, so
// every path gives the same bits.
#ifndef RLAIF_OPTIMIZERS_H
#define RLAIF_OPTIMIZERS_H

/// For i < n, with g = scale·gᵢ (the clip factor; scale 1 leaves g as it is):
///             m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;
///             p ← p − lr·((m/c₁) / (√(v/c₂) + ε) + decay·p).
/// c₁ = 1 − β₁ᵗ and c₂ = 1 − β₂ᵗ are the bias corrections. No two of the arrays may overlap.
void rlaif_adamw_update(
    float *p, const float *g, float *m, float *v, long n, float lr, float beta1, float beta2, float epsilon,
    float decay, float c1, float c2, float scale);

/// Σ gᵢ² for i < n, in `ParameterSet.sumOfSquares`'s order (blocks of 4096, sixteen float lanes
/// each, the blocks' sums in double): the gradient norm's bits on every path.
double rlaif_sum_of_squares(const float *g, long n);

/// The same by the loop compiled for `level` (as in cpu_level.h) or the best one below it that this
/// CPU runs.
double rlaif_sum_of_squares_at(int level, const float *g, long n);

#endif
