#include "activations.h"
#include "cpu_level.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

// Every a·b + c stays a multiply then an add, as in the Swift reference and on every path.
#pragma STDC FP_CONTRACT OFF

// Cephes' expf as `fastExp` in Kernels+VectorMath.swift, operation for operation.
static inline __attribute__((always_inline)) float fast_exp(float x) {
    float clamped = x > 88.7f ? 88.7f : x;
    clamped = clamped < -87.3f ? -87.3f : clamped;
    const float magic = 12582912.0f;
    float shifted = clamped * 1.44269504f + magic;
    float n = shifted - magic;
    float r = clamped - n * 0.693359375f;
    r = r + n * 2.1219444e-4f;
    float p = 1.98756915e-4f;
    p = p * r + 1.39819995e-3f;
    p = p * r + 8.3334519e-3f;
    p = p * r + 4.16657959e-2f;
    p = p * r + 1.66666655e-1f;
    p = p * r + 5.00000012e-1f;
    float y = p * r * r + r + 1;
    int32_t shifted_bits, magic_bits;
    memcpy(&shifted_bits, &shifted, sizeof shifted_bits);
    memcpy(&magic_bits, &magic, sizeof magic_bits);
    uint32_t scale_bits = (uint32_t)(shifted_bits - magic_bits + 127) << 23;
    float scale;
    memcpy(&scale, &scale_bits, sizeof scale);
    return y * scale;
}

static inline __attribute__((always_inline)) float fast_tanh(float x) {
    float c = x > 9.0f ? 9.0f : x;
    c = c < -9.0f ? -9.0f : c;
    float e = fast_exp(2 * c);
    return (e - 1) / (e + 1);
}

static const float gelu_scale = 0.7978845608028654f;  // √(2/π)

static inline __attribute__((always_inline)) float gelu(float v) {
    return 0.5f * v * (1 + fast_tanh(gelu_scale * (v + 0.044715f * v * v * v)));
}

static inline __attribute__((always_inline)) float gelu_grad(float dy, float v) {
    float t = fast_tanh(gelu_scale * (v + 0.044715f * v * v * v));
    float du = gelu_scale * (1 + 3 * 0.044715f * v * v);
    return dy * (0.5f * (1 + t) + 0.5f * v * (1 - t * t) * du);
}

#define DEFINE_LOOPS(suffix, target)                                                                        \
    static target void forward_##suffix(const float *restrict x, float *restrict y, long n) {             \
        for (long i = 0; i < n; i++) y[i] = gelu(x[i]);                                                      \
    }                                                                                                        \
    static target void backward_##suffix(                                                                   \
        const float *restrict dy, const float *restrict x, float *restrict dx, long n, int accumulate) {     \
        if (accumulate)                                                                                      \
            for (long i = 0; i < n; i++) dx[i] += gelu_grad(dy[i], x[i]);                                    \
        else                                                                                                 \
            for (long i = 0; i < n; i++) dx[i] = gelu_grad(dy[i], x[i]);                                     \
    }

DEFINE_LOOPS(baseline, )

#if defined(__x86_64__)
DEFINE_LOOPS(avx2, __attribute__((target("avx2"))))
DEFINE_LOOPS(avx512, __attribute__((target("avx512f"))))
#endif

void rlaif_gelu_forward(const float *x, float *y, long n) { RLAIF_CALL_FOR_CPU(forward, x, y, n); }

void rlaif_gelu_backward(const float *dy, const float *x, float *dx, long n, int accumulate) {
    RLAIF_CALL_FOR_CPU(backward, dy, x, dx, n, accumulate);
}

// Softmax of one row, as `Kernels.softmaxRowReference` states it: the maximum (16 running lane
// maxima, then across lanes), y = exp(x − max), their sum (16 lane sums added in lane order, then
// the tail), y ·= 1/sum. Lane loops vectorize without reordering any addition, so every path gives
// the same bits. `y` may be `x` (the in-place variant keeps the loops free of aliasing checks).
#define SOFTMAX_LANES 16

#define SOFTMAX_BODY                                                                                         \
        float m = -INFINITY;                                                                                 \
        long i = 0;                                                                                          \
        if (n >= SOFTMAX_LANES) {                                                                            \
            float top[SOFTMAX_LANES];                                                                        \
            for (int l = 0; l < SOFTMAX_LANES; l++) top[l] = x[l];                                           \
            for (i = SOFTMAX_LANES; i + SOFTMAX_LANES <= n; i += SOFTMAX_LANES)                              \
                for (int l = 0; l < SOFTMAX_LANES; l++) top[l] = x[i + l] > top[l] ? x[i + l] : top[l];      \
            for (int l = 0; l < SOFTMAX_LANES; l++) m = top[l] > m ? top[l] : m;                             \
        }                                                                                                    \
        for (; i < n; i++) m = x[i] > m ? x[i] : m;                                                          \
        if (m == -INFINITY) {                                                                                \
            for (i = 0; i < n; i++) y[i] = 0;                                                                \
            return -INFINITY;                                                                                \
        }                                                                                                    \
        for (i = 0; i < n; i++) y[i] = fast_exp(x[i] - m);                                                   \
        float lanes[SOFTMAX_LANES] = {0};                                                                    \
        for (i = 0; i + SOFTMAX_LANES <= n; i += SOFTMAX_LANES)                                              \
            for (int l = 0; l < SOFTMAX_LANES; l++) lanes[l] += y[i + l];                                    \
        float s = 0;                                                                                         \
        for (int l = 0; l < SOFTMAX_LANES; l++) s += lanes[l];                                               \
        for (; i < n; i++) s += y[i];                                                                        \
        float inv = 1 / s;                                                                                   \
        for (i = 0; i < n; i++) y[i] *= inv;                                                                 \
        return m + logf(s);

#define DEFINE_SOFTMAX(suffix, target)                                                                      \
    static target float softmax_##suffix(const float *restrict x, float *restrict y, long n) { SOFTMAX_BODY } \
    static target float softmax_in_place_##suffix(float *restrict y, long n) {                              \
        const float *x = y;                                                                                  \
        SOFTMAX_BODY                                                                                         \
    }

// d ← p ⊙ (d − Σ p⊙d) over one row: softmax's backward in place (dot in 16 lanes, as above).
#define DEFINE_SOFTMAX_BACKWARD(suffix, target)                                                             \
    static target void softmax_backward_##suffix(const float *restrict p, float *restrict d, long n) {     \
        float lanes[SOFTMAX_LANES] = {0};                                                                    \
        long i = 0;                                                                                          \
        for (; i + SOFTMAX_LANES <= n; i += SOFTMAX_LANES)                                                   \
            for (int l = 0; l < SOFTMAX_LANES; l++) lanes[l] += p[i + l] * d[i + l];                         \
        float dot = 0;                                                                                       \
        for (int l = 0; l < SOFTMAX_LANES; l++) dot += lanes[l];                                             \
        for (; i < n; i++) dot += p[i] * d[i];                                                               \
        for (i = 0; i < n; i++) d[i] = p[i] * (d[i] - dot);                                                  \
    }

#define DEFINE_SOFTMAX_LOOPS(suffix, target)                                                                \
    DEFINE_SOFTMAX(suffix, target)                                                                          \
    DEFINE_SOFTMAX_BACKWARD(suffix, target)

DEFINE_SOFTMAX_LOOPS(baseline, )

#if defined(__x86_64__)
DEFINE_SOFTMAX_LOOPS(avx2, __attribute__((target("avx2"))))
DEFINE_SOFTMAX_LOOPS(avx512, __attribute__((target("avx512f"))))
#endif

float rlaif_softmax_row(const float *x, float *y, long n) {
    return x == y ? RLAIF_CALL_FOR_CPU(softmax_in_place, y, n) : RLAIF_CALL_FOR_CPU(softmax, x, y, n);
}

void rlaif_softmax_row_backward(const float *p, float *d, long n) { RLAIF_CALL_FOR_CPU(softmax_backward, p, d, n); }
