// GELU (GPT-2's tanh form) over float arrays and softmax over rows, compiled for AVX-512, AVX2 and the baseline from one
// scalar definition and chosen at run time. Swift code is built for the baseline (SSE2), which ran
// these loops four lanes wide; the arithmetic is the same on every path (no fused multiply-adds),
// so every path gives the same bits as the others and as `Kernels.geluForward`'s Swift reference.
#ifndef RLAIF_ACTIVATIONS_H
#define RLAIF_ACTIVATIONS_H

/// y[i] = ½x(1 + tanh(√(2/π)(x + 0.044715x³))) for i < n; x and y must not overlap.
void rlaif_gelu_forward(const float *x, float *y, long n);

/// dx[i] += dy[i] · GELU'(x[i]) for i < n, or dx[i] = … when `accumulate` is 0. No two of the
/// arrays may overlap.
void rlaif_gelu_backward(const float *dy, const float *x, float *dx, long n, int accumulate);

/// y = softmax(x) over n ≥ 1 floats; returns log Σ exp(x). A row of −∞ gives zeros and −∞. y may
/// be x; otherwise they must not overlap.
float rlaif_softmax_row(const float *x, float *y, long n);

/// d[i] = p[i] · (d[i] − Σⱼ p[j]·d[j]) for i < n: the gradient through a softmax row p, in place.
void rlaif_softmax_row_backward(const float *p, float *d, long n);

#endif
