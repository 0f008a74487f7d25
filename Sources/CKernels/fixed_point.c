#include "fixed_point.h"
#include "cpu_level.h"

#include <math.h>
#include <string.h>

#pragma STDC FP_CONTRACT OFF

// Integer sums wrap (unsigned arithmetic, no undefined behaviour); a wrapping add overflowed iff
// both operands have the sign the result lacks.
static inline __attribute__((always_inline)) int64_t wrapping_add(int64_t a, int64_t b) {
    return (int64_t)((uint64_t)a + (uint64_t)b);
}

// Adding 1.5·2^52 rounds a product below 2^51 to an integer (ties to even) and leaves that integer
// in the low bits of the double, so no checked conversion is needed.
static inline __attribute__((always_inline)) int64_t round_units(float x, double scale, int *in_range) {
    const double magic = 0x1.8p52;
    double scaled = (double)x * scale;
    *in_range = fabs(scaled) < 0x1p51;
    double shifted = (*in_range ? scaled : 0) + magic;
    int64_t bits, magic_bits;
    memcpy(&bits, &shifted, sizeof bits);
    memcpy(&magic_bits, &magic, sizeof magic_bits);
    return bits - magic_bits;
}

#define DEFINE_LOOPS(suffix, target)                                                                        \
    static target int add_floats_##suffix(int64_t *restrict u, const float *restrict x, long n, double scale) { \
        int out_of_range = 0;                                                                                \
        int64_t signs = 0;                                                                                   \
        for (long i = 0; i < n; i++) {                                                                       \
            int in_range;                                                                                    \
            int64_t q = round_units(x[i], scale, &in_range);                                                 \
            out_of_range |= !in_range;                                                                       \
            int64_t s = wrapping_add(u[i], q);                                                               \
            signs |= (u[i] ^ s) & (q ^ s);                                                                   \
            u[i] = s;                                                                                        \
        }                                                                                                    \
        if (!out_of_range && signs >= 0) return 1;                                                           \
        for (long i = 0; i < n; i++) {                                                                       \
            int in_range;                                                                                    \
            u[i] = wrapping_add(u[i], -round_units(x[i], scale, &in_range));                                 \
        }                                                                                                    \
        return 0;                                                                                            \
    }                                                                                                        \
    static target int pack_##suffix(const int64_t *restrict u, int32_t *restrict low, long n) {             \
        uint64_t misfit = 0;                                                                                 \
        for (long i = 0; i < n; i++) {                                                                       \
            int32_t w = (int32_t)u[i];                                                                       \
            low[i] = w;                                                                                      \
            misfit |= (uint64_t)((int64_t)w ^ u[i]);                                                         \
        }                                                                                                    \
        return misfit == 0;                                                                                  \
    }                                                                                                        \
    static target int add_pack_##suffix(                                                                    \
        const int64_t *restrict mine, const int32_t *restrict r, int32_t *restrict low, long n) {           \
        int64_t signs = 0;                                                                                   \
        uint64_t misfit = 0;                                                                                 \
        for (long i = 0; i < n; i++) {                                                                       \
            int64_t x = r[i];                                                                                \
            int64_t s = wrapping_add(mine[i], x);                                                            \
            signs |= (mine[i] ^ s) & (x ^ s);                                                                \
            int32_t w = (int32_t)s;                                                                          \
            low[i] = w;                                                                                      \
            misfit |= (uint64_t)((int64_t)w ^ s);                                                            \
        }                                                                                                    \
        return signs >= 0 && misfit == 0;                                                                    \
    }                                                                                                        \
    static target int add_values_##suffix(                                                                  \
        const int64_t *restrict mine, const int32_t *restrict r, float *restrict out, long n, double unit) { \
        int64_t signs = 0;                                                                                   \
        for (long i = 0; i < n; i++) {                                                                       \
            int64_t x = r[i];                                                                                \
            int64_t s = wrapping_add(mine[i], x);                                                            \
            signs |= (mine[i] ^ s) & (x ^ s);                                                                \
            out[i] = (float)((double)s * unit);                                                              \
        }                                                                                                    \
        return signs >= 0;                                                                                   \
    }                                                                                                        \
    static target void values_##suffix(const int64_t *restrict u, float *restrict out, long n, double unit) { \
        for (long i = 0; i < n; i++) out[i] = (float)((double)u[i] * unit);                                  \
    }                                                                                                        \
    static target int add_floats32_##suffix(int32_t *restrict u, const float *restrict x, long n, double scale) { \
        int out_of_range = 0;                                                                                \
        uint64_t misfit = 0;                                                                                 \
        for (long i = 0; i < n; i++) {                                                                       \
            int in_range;                                                                                    \
            int64_t s = (int64_t)u[i] + round_units(x[i], scale, &in_range);                                 \
            out_of_range |= !in_range;                                                                       \
            int32_t w = (int32_t)s;                                                                          \
            misfit |= (uint64_t)((int64_t)w ^ s);                                                            \
            u[i] = w;                                                                                        \
        }                                                                                                    \
        if (!out_of_range && misfit == 0) return 1;                                                          \
        /* Arithmetic modulo 2^32 undoes the truncated adds exactly. */                                      \
        for (long i = 0; i < n; i++) {                                                                       \
            int in_range;                                                                                    \
            u[i] = (int32_t)((uint32_t)u[i] - (uint32_t)round_units(x[i], scale, &in_range));                \
        }                                                                                                    \
        return 0;                                                                                            \
    }                                                                                                        \
    static target int add_pack32_##suffix(                                                                  \
        const int32_t *restrict mine, const int32_t *restrict r, int32_t *restrict low, long n) {           \
        uint64_t misfit = 0;                                                                                 \
        for (long i = 0; i < n; i++) {                                                                       \
            int64_t s = (int64_t)mine[i] + r[i];                                                             \
            int32_t w = (int32_t)s;                                                                          \
            low[i] = w;                                                                                      \
            misfit |= (uint64_t)((int64_t)w ^ s);                                                            \
        }                                                                                                    \
        return misfit == 0;                                                                                  \
    }                                                                                                        \
    /* Two 32-bit integers and their sum are exact in a double, so the sum is formed there. */              \
    static target void add_values32_##suffix(                                                               \
        const int32_t *restrict mine, const int32_t *restrict r, float *restrict out, long n, double unit) { \
        for (long i = 0; i < n; i++) out[i] = (float)(((double)mine[i] + (double)r[i]) * unit);             \
    }                                                                                                        \
    static target void values32_##suffix(const int32_t *restrict u, float *restrict out, long n, double unit) { \
        for (long i = 0; i < n; i++) out[i] = (float)((double)u[i] * unit);                                  \
    }

DEFINE_LOOPS(baseline, )

#if defined(__x86_64__)
DEFINE_LOOPS(avx2, __attribute__((target("avx2"))))
// DQ converts 64-bit integers to doubles eight at a time (AVX2 has no such instruction).
DEFINE_LOOPS(avx512, __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw"))))
#endif

int rlaif_units_add_floats(int64_t *units, const float *x, long n, double scale) {
    return RLAIF_CALL_FOR_CPU(add_floats, units, x, n, scale);
}

int rlaif_units_pack(const int64_t *units, int32_t *low, long n) { return RLAIF_CALL_FOR_CPU(pack, units, low, n); }

int rlaif_units_add_pack(const int64_t *mine, const int32_t *received, int32_t *low, long n) {
    return RLAIF_CALL_FOR_CPU(add_pack, mine, received, low, n);
}

int rlaif_units_add_values(const int64_t *mine, const int32_t *received, float *out, long n, double unit) {
    if (received == NULL) {
        RLAIF_CALL_FOR_CPU(values, mine, out, n, unit);
        return 1;
    }
    return RLAIF_CALL_FOR_CPU(add_values, mine, received, out, n, unit);
}

int rlaif_units32_add_floats(int32_t *units, const float *x, long n, double scale) {
    return RLAIF_CALL_FOR_CPU(add_floats32, units, x, n, scale);
}

int rlaif_units32_add_pack(const int32_t *mine, const int32_t *received, int32_t *low, long n) {
    return RLAIF_CALL_FOR_CPU(add_pack32, mine, received, low, n);
}

void rlaif_units32_add_values(const int32_t *mine, const int32_t *received, float *out, long n, double unit) {
    if (received == NULL)
        RLAIF_CALL_FOR_CPU(values32, mine, out, n, unit);
    else
        RLAIF_CALL_FOR_CPU(add_values32, mine, received, out, n, unit);
}
