#include "optimizers.h"
#include "cpu_level.h"

#include <math.h>

#pragma STDC FP_CONTRACT OFF

// A square root that cannot set errno, so the loop vectorizes (IEEE square roots: the same bits
// on every path).
#if __has_builtin(__builtin_elementwise_sqrt)
#define SQRT(x) __builtin_elementwise_sqrt(x)
#else
#define SQRT(x) sqrtf(x)
#endif

// The loop is bound by the divider (three divisions and a square root a weight). Once
// 1 - beta1^t has rounded to 1 (t >= 165 for beta1 = 0.9), m / c1 is m itself, bit for bit, so
// that division is left out: the body is inlined twice, with and without it.
#define DEFINE_ADAMW(suffix, target)                                                                         \
    static inline __attribute__((always_inline)) target void adamw_body_##suffix(                            \
        float *restrict p, const float *restrict g, float *restrict m, float *restrict v, long n, float lr,   \
        float b1, float b2, float eps, float decay, float c1, float c2, float scale, const int divide_m) {    \
        const float a1 = 1 - b1, a2 = 1 - b2;                                                                \
        for (long i = 0; i < n; i++) {                                                                       \
            float gi = g[i] * scale;                                                                         \
            float mi = b1 * m[i] + a1 * gi;                                                                  \
            float vi = b2 * v[i] + a2 * gi * gi;                                                             \
            m[i] = mi;                                                                                       \
            v[i] = vi;                                                                                       \
            float m_hat = divide_m ? mi / c1 : mi, v_hat = vi / c2;                                          \
            p[i] -= lr * (m_hat / (SQRT(v_hat) + eps) + decay * p[i]);                                       \
        }                                                                                                    \
    }                                                                                                        \
    static target void adamw_##suffix(                                                                       \
        float *restrict p, const float *restrict g, float *restrict m, float *restrict v, long n, float lr,   \
        float b1, float b2, float eps, float decay, float c1, float c2, float scale) {                       \
        if (c1 == 1.0f) {                                                                                    \
            adamw_body_##suffix(p, g, m, v, n, lr, b1, b2, eps, decay, c1, c2, scale, 0);                    \
        } else {                                                                                             \
            adamw_body_##suffix(p, g, m, v, n, lr, b1, b2, eps, decay, c1, c2, scale, 1);                    \
        }                                                                                                    \
    }

DEFINE_ADAMW(baseline, )

#if defined(__x86_64__)
DEFINE_ADAMW(avx2, __attribute__((target("avx2"))))
DEFINE_ADAMW(avx512, __attribute__((target("avx512f"))))
#endif

void rlaif_adamw_update(
    float *p, const float *g, float *m, float *v, long n, float lr, float beta1, float beta2, float epsilon,
    float decay, float c1, float c2, float scale) {
    RLAIF_CALL_FOR_CPU(adamw, p, g, m, v, n, lr, beta1, beta2, epsilon, decay, c1, c2, scale);
}

// The clip's sum of squares in `ParameterSet.sumOfSquares`'s order: per block of 4096, sixteen
// lanes of rounded products added in turn, the lanes added in order from -0, then the block's
// tail; the blocks' sums added in double.
#define SQUARES_BLOCK 4096
#define SQUARES_LANES 16

#define DEFINE_SQUARES(suffix, target)                                                                       \
    static target double squares_##suffix(const float *g, long n) {                                         \
        double total = 0;                                                                                    \
        for (long start = 0; start < n; start += SQUARES_BLOCK) {                                            \
            const long len = n - start < SQUARES_BLOCK ? n - start : SQUARES_BLOCK;                          \
            const float *x = g + start;                                                                      \
            float acc[SQUARES_LANES] = {0};                                                                  \
            long i = 0;                                                                                      \
            for (; i + SQUARES_LANES <= len; i += SQUARES_LANES) {                                           \
                for (int l = 0; l < SQUARES_LANES; l++) {                                                    \
                    float square = x[i + l] * x[i + l];                                                      \
                    acc[l] = acc[l] + square;                                                                \
                }                                                                                            \
            }                                                                                                \
            float s = -0.0f;                                                                                 \
            for (int l = 0; l < SQUARES_LANES; l++) s += acc[l];                                             \
            for (; i < len; i++) {                                                                           \
                float square = x[i] * x[i];                                                                  \
                s += square;                                                                                 \
            }                                                                                                \
            total += (double)s;                                                                              \
        }                                                                                                    \
        return total;                                                                                        \
    }

DEFINE_SQUARES(baseline, )

#if defined(__x86_64__)
DEFINE_SQUARES(avx2, __attribute__((target("avx2"))))
DEFINE_SQUARES(avx512, __attribute__((target("avx512f"))))
#endif

double rlaif_sum_of_squares(const float *g, long n) { return RLAIF_CALL_FOR_CPU(squares, g, n); }

double rlaif_sum_of_squares_at(int level, const float *g, long n) { RLAIF_RETURN_AT_LEVEL(squares, level, g, n); }
