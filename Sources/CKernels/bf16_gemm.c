#include "bf16_gemm.h"
#include "cpu_level.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define RLAIF_X86 1
#endif

enum { W = RLAIF_BF16_PANEL_WIDTH };

uint16_t rlaif_bf16_from_float(float value) {
    uint32_t u;
    memcpy(&u, &value, sizeof u);
    uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    uint32_t quiet = (u >> 16) | 0x0040u, zero = (u >> 16) & 0x8000u;
    // Branch-free, so the scalar packing loops vectorize.
    uint32_t out = (u & 0x7fffffffu) > 0x7f800000u ? quiet : rounded;
    return (uint16_t)((u & 0x7f800000u) == 0 ? zero : out);
}

float rlaif_bf16_to_float(uint16_t value) {
    uint32_t u = (uint32_t)value << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

long rlaif_bf16_padded_inner(long k) { return (k + 1) & ~1L; }

size_t rlaif_bf16_panel_count(long k, long n) {
    return (size_t)((n + W - 1) / W) * (size_t)rlaif_bf16_padded_inner(k) * W;
}

size_t rlaif_bf16_rows_count(long m, long k) { return rlaif_bf16_panel_count(k, m); }

static int has_bf16(void) { return rlaif_bf16_best_isa() == rlaif_bf16_isa_avx512bf16; }

// ---- Conversions: 16 floats (the first `count`, the rest zero) at a time.

static void convert_scalar(const float *src, long count, uint16_t *dst) {
    for (long c = 0; c < count; c++) dst[c] = rlaif_bf16_from_float(src[c]);
}

// 32 values: even[c], odd[c] side by side for c < 16 (odd NULL: zeros); zeros past `width`.
static void interleave_scalar(const float *even, const float *odd, long width, uint16_t *dst) {
    for (long c = 0; c < W; c++) {
        dst[2 * c] = c < width ? rlaif_bf16_from_float(even[c]) : 0;
        dst[2 * c + 1] = c < width && odd ? rlaif_bf16_from_float(odd[c]) : 0;
    }
}

#ifdef RLAIF_X86

#define BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

static inline BF16 __mmask16 first(long count) {
    return count >= W ? (__mmask16)0xFFFF : (__mmask16)((1u << count) - 1);
}

static BF16 void convert_bf16(const float *src, long count, uint16_t *dst) {
    for (long c = 0; c < count; c += W) {
        __mmask16 mask = first(count - c);
        __m256i v = (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(mask, src + c));
        _mm256_mask_storeu_epi16(dst + c, mask, v);
    }
}

static BF16 void interleave_bf16(const float *even, const float *odd, long width, uint16_t *dst) {
    static const uint16_t order[32] = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23,
                                       8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
    __mmask16 mask = first(width);
    __m512 e = _mm512_maskz_loadu_ps(mask, even), o = odd ? _mm512_maskz_loadu_ps(mask, odd) : _mm512_setzero_ps();
    __m512i both = (__m512i)_mm512_cvtne2ps_pbh(o, e);  // e's 16 values low, o's high
    _mm512_storeu_si512(dst, _mm512_permutexvar_epi16(_mm512_loadu_si512(order), both));
}

#endif

void rlaif_bf16_round(int vector, const float *src, long count, uint16_t *dst) {
#ifdef RLAIF_X86
    if (vector && has_bf16()) {
        convert_bf16(src, count, dst);
        return;
    }
#endif
    convert_scalar(src, count, dst);
}

static void interleave(int vector, const float *even, const float *odd, long width, uint16_t *dst) {
#ifdef RLAIF_X86
    if (vector) {
        interleave_bf16(even, odd, width, dst);
        return;
    }
#endif
    interleave_scalar(even, odd, width, dst);
}

void rlaif_bf16_pack_panels(
    const float *b, long k, long n, long ldb, int transposed, uint16_t *panels, long panel_lo, long panel_hi) {
    long kp = rlaif_bf16_padded_inner(k);
    int vector = has_bf16();  // asked once, not per 32 values
    for (long q = panel_lo; q < panel_hi; q++) {
        uint16_t *dst = panels + (size_t)q * kp * W;
        long j0 = q * W, width = n - j0 < W ? n - j0 : W;
        if (!transposed) {
            for (long t = 0; t < kp / 2; t++) {
                const float *even = b + 2 * t * ldb + j0, *odd = 2 * t + 1 < k ? even + ldb : 0;
                interleave(vector, even, odd, width, dst + t * 2 * W);
            }
            continue;
        }
        // Rows of the stored matrix are columns of op(B), their pairs already side by side: round
        // a stretch of a row, then move its pairs as 32-bit words.
        if (width < W) memset(dst, 0, (size_t)kp * W * sizeof(uint16_t));
        enum { STRETCH = 256 };
        uint16_t stretch[STRETCH];
        for (long c = 0; c < width; c++) {
            const float *src = b + (j0 + c) * ldb;
            for (long p0 = 0; p0 < kp; p0 += STRETCH) {
                long count = k - p0 < STRETCH ? k - p0 : STRETCH;
                if (count < STRETCH) memset(stretch, 0, sizeof stretch);
                rlaif_bf16_round(1, src + p0, count, stretch);
                long pairs = (kp - p0 < STRETCH ? kp - p0 : STRETCH) / 2;
                for (long t = 0; t < pairs; t++)
                    memcpy(dst + (p0 / 2 + t) * 2 * W + 2 * c, stretch + 2 * t, 2 * sizeof(uint16_t));
            }
        }
    }
}

void rlaif_bf16_pack_rows(
    const float *a, long m, long k, long lda, int transposed, uint16_t *out, long row_lo, long row_hi) {
    if (transposed) {
        // Stored (k × m): op(A)'s rows are the stored columns, packed as panels of 16.
        rlaif_bf16_pack_panels(a, k, m, lda, 0, out, row_lo / W, (row_hi + W - 1) / W);
        return;
    }
    long kp = rlaif_bf16_padded_inner(k);
    for (long i = row_lo; i < row_hi; i++) {
        rlaif_bf16_round(1, a + i * lda, k, out + i * kp);
        if (kp > k) out[i * kp + k] = 0;
    }
}

// The epilogue every kernel shares, one element at a time.
static inline float finish(
    float acc, float alpha, int accumulate, const float *bias, const float *residual, long ldr, const float *old,
    long i, long j) {
    float v = alpha == 1.0f ? acc : alpha * acc;
    if (accumulate) v = *old + v;
    if (bias) v = v + bias[j];
    if (residual) v = residual[i * ldr + j] + v;
    return v;
}

static inline float flush(float v) { return fabsf(v) < FLT_MIN ? copysignf(0.0f, v) : v; }

// Where row i's pair t starts: rows of kp values, or panels of 16 rows (see pack_rows). Row
// blocks of up to 16 rows starting at a multiple of their size step through either by (row, pair)
// strides.
typedef struct {
    const uint16_t *base;
    long kp;
    int paneled;
} rows_t;

static inline const uint16_t *row_start(rows_t r, long i) {
    return r.paneled ? r.base + (i / W) * r.kp * W + (i % W) * 2 : r.base + i * r.kp;
}
static inline long row_stride(rows_t r) { return r.paneled ? 2 : r.kp; }
static inline long pair_stride(rows_t r) { return r.paneled ? 2 * W : 2; }

static void gemm_scalar(
    long row_lo, long row_hi, rows_t rows, const uint16_t *panels, long n, float alpha, int accumulate,
    const float *bias, const float *residual, long ldr, float *out, long ldo, long panel_lo, long panel_hi) {
    long kp = rows.kp, ps = pair_stride(rows);
    for (long q = panel_lo; q < panel_hi; q++) {
        const uint16_t *panel = panels + (size_t)q * kp * W;
        long j0 = q * W, width = n - j0 < W ? n - j0 : W;
        for (long i = row_lo; i < row_hi; i++) {
            float acc[W] = {0};
            const uint16_t *x = row_start(rows, i);
            for (long t = 0; t < kp / 2; t++) {
                float x0 = rlaif_bf16_to_float(x[t * ps]), x1 = rlaif_bf16_to_float(x[t * ps + 1]);
                const uint16_t *w = panel + t * 2 * W;
                for (long c = 0; c < W; c++) {
                    acc[c] = flush(fmaf(x1, rlaif_bf16_to_float(w[2 * c + 1]), acc[c]));
                    acc[c] = flush(fmaf(x0, rlaif_bf16_to_float(w[2 * c]), acc[c]));
                }
            }
            for (long c = 0; c < width; c++) {
                float *o = out + i * ldo + j0 + c;
                *o = finish(acc[c], alpha, accumulate, bias, residual, ldr, o, i, j0 + c);
            }
        }
    }
}

#ifdef RLAIF_X86

// ---- AVX-512 BF16: up to 8 rows × 3 panels in 24 accumulators; a pair of inner indices per step.

static inline BF16 void store_bf16(
    __m512 acc, float alpha, int accumulate, const float *bias, const float *residual, long ldr, float *out,
    long ldo, long i, long j0, long n) {
    __mmask16 mask = first(n - j0);
    float *o = out + i * ldo + j0;
    if (alpha != 1.0f) acc = _mm512_mul_ps(_mm512_set1_ps(alpha), acc);
    if (accumulate) acc = _mm512_add_ps(_mm512_maskz_loadu_ps(mask, o), acc);
    if (bias) acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(mask, bias + j0));
    if (residual) acc = _mm512_add_ps(_mm512_maskz_loadu_ps(mask, residual + i * ldr + j0), acc);
    _mm512_mask_storeu_ps(o, mask, acc);
}

// MR rows (x: row 0's pair 0; rs, ps: row and pair strides) × NP panels from panel q.
static inline BF16 __attribute__((always_inline)) void block_bf16(
    const int MR, const int NP, long kp, const uint16_t *x, long rs, long ps, const uint16_t *panels, long n,
    float alpha, int accumulate, const float *bias, const float *residual, long ldr, float *out, long ldo, long q) {
    __m512 acc[8][3];
    for (int i = 0; i < MR; i++)
        for (int v = 0; v < NP; v++) acc[i][v] = _mm512_setzero_ps();
    const uint16_t *b0 = panels + (size_t)q * kp * W, *b1 = b0 + kp * W, *b2 = b1 + kp * W;
    for (long t = 0; t < kp / 2; t++) {
        // A decode step reads each weight once: ask for the panels' next lines ahead of use.
        _mm_prefetch((const char *)(b0 + (t + 16) * 2 * W), _MM_HINT_T0);
        if (NP > 1) _mm_prefetch((const char *)(b1 + (t + 16) * 2 * W), _MM_HINT_T0);
        if (NP > 2) _mm_prefetch((const char *)(b2 + (t + 16) * 2 * W), _MM_HINT_T0);
        __m512bh w0 = (__m512bh)_mm512_loadu_si512(b0 + t * 2 * W);
        __m512bh w1 = NP > 1 ? (__m512bh)_mm512_loadu_si512(b1 + t * 2 * W) : w0;
        __m512bh w2 = NP > 2 ? (__m512bh)_mm512_loadu_si512(b2 + t * 2 * W) : w0;
        for (int i = 0; i < MR; i++) {
            int32_t pair;
            memcpy(&pair, x + i * rs + t * ps, sizeof pair);
            __m512bh xi = (__m512bh)_mm512_set1_epi32(pair);
            acc[i][0] = _mm512_dpbf16_ps(acc[i][0], xi, w0);
            if (NP > 1) acc[i][1] = _mm512_dpbf16_ps(acc[i][1], xi, w1);
            if (NP > 2) acc[i][2] = _mm512_dpbf16_ps(acc[i][2], xi, w2);
        }
    }
    for (int i = 0; i < MR; i++)
        for (int v = 0; v < NP; v++)
            store_bf16(acc[i][v], alpha, accumulate, bias, residual, ldr, out, ldo, i, (q + v) * W, n);
}

#define BLOCK_BF16(MR, NP) block_bf16(MR, NP, kp, x, rs, ps, panels, n, alpha, accumulate, bias, rr, ldr, outr, ldo, q)
#define ROWS_BF16(NP)                                                                                        \
    switch (mr) {                                                                                            \
    case 1: BLOCK_BF16(1, NP); break;                                                                        \
    case 2: BLOCK_BF16(2, NP); break;                                                                        \
    case 3: BLOCK_BF16(3, NP); break;                                                                        \
    case 4: BLOCK_BF16(4, NP); break;                                                                        \
    case 5: BLOCK_BF16(5, NP); break;                                                                        \
    case 6: BLOCK_BF16(6, NP); break;                                                                        \
    case 7: BLOCK_BF16(7, NP); break;                                                                        \
    default: BLOCK_BF16(8, NP); break;                                                                       \
    }

static BF16 void gemm_avx512bf16(
    long row_lo, long row_hi, rows_t rows, const uint16_t *panels, long n, float alpha, int accumulate,
    const float *bias, const float *residual, long ldr, float *out, long ldo, long panel_lo, long panel_hi) {
    long kp = rows.kp, rs = row_stride(rows), ps = pair_stride(rows);
    // Panels outermost: a group of three is read from memory once and reused by every row block.
    for (long q = panel_lo; q < panel_hi;) {
        long np = panel_hi - q >= 3 ? 3 : panel_hi - q;
        for (long i0 = row_lo; i0 < row_hi; i0 += 8) {
            long mr = row_hi - i0 < 8 ? row_hi - i0 : 8;
            const uint16_t *x = row_start(rows, i0);
            const float *rr = residual ? residual + i0 * ldr : 0;
            float *outr = out + i0 * ldo;
            if (np == 3) {
                ROWS_BF16(3)
            } else if (np == 2) {
                ROWS_BF16(2)
            } else {
                ROWS_BF16(1)
            }
        }
        q += np;
    }
}

// ---- AVX2: the same chains by widening bfloat16 to Float32 (a shift), two FMAs and the flush.

#define AVX2 __attribute__((target("avx2,fma")))

static inline AVX2 __m256 flush256(__m256 v) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 tiny = _mm256_cmp_ps(_mm256_andnot_ps(sign, v), _mm256_set1_ps(FLT_MIN), _CMP_LT_OQ);
    return _mm256_blendv_ps(v, _mm256_and_ps(v, sign), tiny);
}

static inline AVX2 void store256(
    __m256 acc, float alpha, int accumulate, const float *bias, const float *residual, long ldr, float *out,
    long ldo, long i, long j, long n) {
    float lanes[8];
    _mm256_storeu_ps(lanes, acc);
    for (long c = 0; c < 8 && j + c < n; c++) {
        float *o = out + i * ldo + j + c;
        *o = finish(lanes[c], alpha, accumulate, bias, residual, ldr, o, i, j + c);
    }
}

static inline AVX2 __attribute__((always_inline)) void block_avx2(
    const int MR, long kp, const uint16_t *x, long rs, long ps, const uint16_t *panels, long n, float alpha,
    int accumulate, const float *bias, const float *residual, long ldr, float *out, long ldo, long q) {
    __m256 lo[4], hi[4];
    for (int i = 0; i < MR; i++) lo[i] = hi[i] = _mm256_setzero_ps();
    const uint16_t *b = panels + (size_t)q * kp * W;
    const __m256i odd_mask = _mm256_set1_epi32((int)0xffff0000u);
    for (long t = 0; t < kp / 2; t++) {
        __m256i p0 = _mm256_loadu_si256((const __m256i *)(b + t * 2 * W));
        __m256i p1 = _mm256_loadu_si256((const __m256i *)(b + t * 2 * W + W));
        __m256 odd0 = _mm256_castsi256_ps(_mm256_and_si256(p0, odd_mask));
        __m256 even0 = _mm256_castsi256_ps(_mm256_slli_epi32(p0, 16));
        __m256 odd1 = _mm256_castsi256_ps(_mm256_and_si256(p1, odd_mask));
        __m256 even1 = _mm256_castsi256_ps(_mm256_slli_epi32(p1, 16));
        for (int i = 0; i < MR; i++) {
            const uint16_t *xi = x + i * rs + t * ps;
            __m256 x0 = _mm256_set1_ps(rlaif_bf16_to_float(xi[0])), x1 = _mm256_set1_ps(rlaif_bf16_to_float(xi[1]));
            lo[i] = flush256(_mm256_fmadd_ps(x1, odd0, lo[i]));
            lo[i] = flush256(_mm256_fmadd_ps(x0, even0, lo[i]));
            hi[i] = flush256(_mm256_fmadd_ps(x1, odd1, hi[i]));
            hi[i] = flush256(_mm256_fmadd_ps(x0, even1, hi[i]));
        }
    }
    long j0 = q * W;
    for (int i = 0; i < MR; i++) {
        store256(lo[i], alpha, accumulate, bias, residual, ldr, out, ldo, i, j0, n);
        if (j0 + 8 < n) store256(hi[i], alpha, accumulate, bias, residual, ldr, out, ldo, i, j0 + 8, n);
    }
}

#define BLOCK_AVX2(MR) block_avx2(MR, kp, x, rs, ps, panels, n, alpha, accumulate, bias, rr, ldr, outr, ldo, q)

static AVX2 void gemm_avx2(
    long row_lo, long row_hi, rows_t rows, const uint16_t *panels, long n, float alpha, int accumulate,
    const float *bias, const float *residual, long ldr, float *out, long ldo, long panel_lo, long panel_hi) {
    long kp = rows.kp, rs = row_stride(rows), ps = pair_stride(rows);
    for (long q = panel_lo; q < panel_hi; q++) {
        for (long i0 = row_lo; i0 < row_hi; i0 += 4) {
            long mr = row_hi - i0 < 4 ? row_hi - i0 : 4;
            const uint16_t *x = row_start(rows, i0);
            const float *rr = residual ? residual + i0 * ldr : 0;
            float *outr = out + i0 * ldo;
            switch (mr) {
            case 1: BLOCK_AVX2(1); break;
            case 2: BLOCK_AVX2(2); break;
            case 3: BLOCK_AVX2(3); break;
            default: BLOCK_AVX2(4); break;
            }
        }
    }
}

#endif

rlaif_bf16_isa rlaif_bf16_best_isa(void) {
#ifdef RLAIF_X86
    static int cached = -1;  // every thread that sets it sets the same value
    int isa = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (isa < 0) {
        __builtin_cpu_init();
        int level = rlaif_cpu_level();
        isa = level == rlaif_cpu_avx512 && __builtin_cpu_supports("avx512bf16") ? rlaif_bf16_isa_avx512bf16
              : level >= rlaif_cpu_avx2                                            ? rlaif_bf16_isa_avx2
                                                                                   : rlaif_bf16_isa_scalar;
        // RLAIF_BF16_KERNEL=avx2 or portable: the emulation on a CPU that has more (A/B runs, and
        // the test that a run's bits do not depend on the kernel).
        const char *forced = getenv("RLAIF_BF16_KERNEL");
        if (forced && strcmp(forced, "avx2") == 0 && isa > rlaif_bf16_isa_avx2) isa = rlaif_bf16_isa_avx2;
        if (forced && strcmp(forced, "portable") == 0) isa = rlaif_bf16_isa_scalar;
        __atomic_store_n(&cached, isa, __ATOMIC_RELAXED);
    }
    return (rlaif_bf16_isa)isa;
#else
    return rlaif_bf16_isa_scalar;
#endif
}

void rlaif_bf16_gemm(
    rlaif_bf16_isa isa, long row_lo, long row_hi, long k, const uint16_t *packed_rows, int rows_paneled,
    const uint16_t *panels, long n, float alpha, int accumulate, const float *bias, const float *residual, long ldr,
    float *out, long ldo, long panel_lo, long panel_hi) {
    rows_t rows = {packed_rows, rlaif_bf16_padded_inner(k), rows_paneled};
    rlaif_bf16_isa supported = rlaif_bf16_best_isa();
    if (isa == rlaif_bf16_isa_best || isa > supported) isa = supported;
    switch (isa) {
#ifdef RLAIF_X86
    case rlaif_bf16_isa_avx512bf16:
        gemm_avx512bf16(
            row_lo, row_hi, rows, panels, n, alpha, accumulate, bias, residual, ldr, out, ldo, panel_lo, panel_hi);
        return;
    case rlaif_bf16_isa_avx2:
        gemm_avx2(row_lo, row_hi, rows, panels, n, alpha, accumulate, bias, residual, ldr, out, ldo, panel_lo, panel_hi);
        return;
#endif
    default:
        gemm_scalar(row_lo, row_hi, rows, panels, n, alpha, accumulate, bias, residual, ldr, out, ldo, panel_lo, panel_hi);
    }
}
