#include "panel_gemm.h"
#include "cpu_level.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define RLAIF_X86 1
#endif

enum { W = RLAIF_PANEL_WIDTH };

size_t rlaif_panel_packed_count(long k, long n) { return (size_t)((n + W - 1) / W) * (size_t)k * W; }

void rlaif_panel_pack(
    const float *w, long k, long n, long ldw, int transposed, float *panels, long panel_lo, long panel_hi) {
    for (long q = panel_lo; q < panel_hi; q++) {
        float *dst = panels + (size_t)q * k * W;
        long j0 = q * W, width = n - j0 < W ? n - j0 : W;
        if (!transposed) {
            for (long p = 0; p < k; p++) {
                memcpy(dst + p * W, w + p * ldw + j0, (size_t)width * sizeof(float));
                for (long jj = width; jj < W; jj++) dst[p * W + jj] = 0;
            }
        } else {
            // Rows of the stored matrix are columns of W: read each once, scatter into the panel.
            for (long jj = 0; jj < W; jj++) {
                if (jj < width) {
                    const float *src = w + (j0 + jj) * ldw;
                    for (long p = 0; p < k; p++) dst[p * W + jj] = src[p];
                } else {
                    for (long p = 0; p < k; p++) dst[p * W + jj] = 0;
                }
            }
        }
    }
}

// The epilogue shared by every kernel, one element at a time: + bias, then + residual.
static inline float finish(float acc, const float *bias, const float *residual, long ldr, long i, long j) {
    if (bias) acc = acc + bias[j];
    if (residual) acc = residual[i * ldr + j] + acc;
    return acc;
}

// Portable kernel: one row, one panel at a time; fmaf keeps the bits of the vector kernels.
static void gemm_scalar(
    long m, long k, const float *x, long ldx, const float *panels, long n, const float *bias, const float *residual,
    long ldr, float *out, long ldo, long panel_lo, long panel_hi) {
    for (long q = panel_lo; q < panel_hi; q++) {
        const float *panel = panels + (size_t)q * k * W;
        long j0 = q * W, width = n - j0 < W ? n - j0 : W;
        for (long i = 0; i < m; i++) {
            float acc[W] = {0};
            const float *xi = x + i * ldx;
            for (long p = 0; p < k; p++)
                for (long jj = 0; jj < W; jj++) acc[jj] = fmaf(xi[p], panel[p * W + jj], acc[jj]);
            for (long jj = 0; jj < width; jj++)
                out[i * ldo + j0 + jj] = finish(acc[jj], bias, residual, ldr, i, j0 + jj);
        }
    }
}

#ifdef RLAIF_X86

// ---- AVX-512: up to 8 rows × 3 panels in 24 accumulators; each panel is one register per row.

#define AVX512 __attribute__((target("avx512f,fma")))

static inline AVX512 void store512(
    __m512 acc, const float *bias, const float *residual, long ldr, float *out, long ldo, long i, long j0, long n) {
    long width = n - j0 < W ? n - j0 : W;
    __mmask16 mask = width >= W ? (__mmask16)0xFFFF : (__mmask16)((1u << width) - 1);
    if (bias) acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(mask, bias + j0));
    if (residual) acc = _mm512_add_ps(_mm512_maskz_loadu_ps(mask, residual + i * ldr + j0), acc);
    _mm512_mask_storeu_ps(out + i * ldo + j0, mask, acc);
}

// MR rows (≤ 8) × NP panels (≤ 3) starting at panel q. Constant MR and NP let the compiler keep
// the accumulators in registers and unroll the row loop.
static inline AVX512 __attribute__((always_inline)) void block512(
    const int MR, const int NP, long k, const float *x, long ldx, const float *panels, long n, const float *bias,
    const float *residual, long ldr, float *out, long ldo, long q) {
    __m512 acc[8][3];
    for (int i = 0; i < MR; i++)
        for (int v = 0; v < NP; v++) acc[i][v] = _mm512_setzero_ps();
    const float *b0 = panels + (size_t)q * k * W, *b1 = b0 + k * W, *b2 = b1 + k * W;
    for (long p = 0; p < k; p++) {
        __m512 w0 = _mm512_loadu_ps(b0 + p * W);
        __m512 w1 = NP > 1 ? _mm512_loadu_ps(b1 + p * W) : w0;
        __m512 w2 = NP > 2 ? _mm512_loadu_ps(b2 + p * W) : w0;
        for (int i = 0; i < MR; i++) {
            __m512 xi = _mm512_set1_ps(x[i * ldx + p]);
            acc[i][0] = _mm512_fmadd_ps(xi, w0, acc[i][0]);
            if (NP > 1) acc[i][1] = _mm512_fmadd_ps(xi, w1, acc[i][1]);
            if (NP > 2) acc[i][2] = _mm512_fmadd_ps(xi, w2, acc[i][2]);
        }
    }
    for (int i = 0; i < MR; i++)
        for (int v = 0; v < NP; v++) store512(acc[i][v], bias, residual, ldr, out, ldo, i, (q + v) * W, n);
}

#define ROWS512(NP)                                                                                          \
    switch (mr) {                                                                                            \
    case 1: block512(1, NP, k, xr, ldx, panels, n, bias, rr, ldr, outr, ldo, q); break;                     \
    case 2: block512(2, NP, k, xr, ldx, panels, n, bias, rr, ldr, outr, ldo, q); break;                     \
    case 3: block512(3, NP, k, xr, ldx, panels, n, bias, rr, ldr, outr, ldo, q); break;                     \
    case 4: block512(4, NP, k, xr, ldx, panels, n, bias, rr, ldr, outr, ldo, q); break;                     \
    case 5: block512(5, NP, k, xr, ldx, panels, n, bias, rr, ldr, outr, ldo, q); break;                     \
    case 6: block512(6, NP, k, xr, ldx, panels, n, bias, rr, ldr, outr, ldo, q); break;                     \
    case 7: block512(7, NP, k, xr, ldx, panels, n, bias, rr, ldr, outr, ldo, q); break;                     \
    default: block512(8, NP, k, xr, ldx, panels, n, bias, rr, ldr, outr, ldo, q); break;                    \
    }

static AVX512 void gemm_avx512(
    long m, long k, const float *x, long ldx, const float *panels, long n, const float *bias, const float *residual,
    long ldr, float *out, long ldo, long panel_lo, long panel_hi) {
    // Panels outermost: a panel group is read from memory once and reused, from cache, by every
    // row block.
    for (long q = panel_lo; q < panel_hi;) {
        long np = panel_hi - q >= 3 ? 3 : panel_hi - q;
        for (long i0 = 0; i0 < m; i0 += 8) {
            long mr = m - i0 < 8 ? m - i0 : 8;
            const float *xr = x + i0 * ldx, *rr = residual ? residual + i0 * ldr : 0;
            float *outr = out + i0 * ldo;
            if (np == 3) {
                ROWS512(3)
            } else if (np == 2) {
                ROWS512(2)
            } else {
                ROWS512(1)
            }
        }
        q += np;
    }
}

// ---- AVX2: up to 4 rows × 1 panel (two registers per row) in 8 accumulators.

#define AVX2 __attribute__((target("avx2,fma")))

static inline AVX2 void store256(
    __m256 acc, const float *bias, const float *residual, long ldr, float *out, long ldo, long i, long j, long n) {
    if (n - j >= 8) {
        if (bias) acc = _mm256_add_ps(acc, _mm256_loadu_ps(bias + j));
        if (residual) acc = _mm256_add_ps(_mm256_loadu_ps(residual + i * ldr + j), acc);
        _mm256_storeu_ps(out + i * ldo + j, acc);
    } else {
        float lanes[8];
        _mm256_storeu_ps(lanes, acc);
        for (long jj = 0; jj < n - j; jj++) out[i * ldo + j + jj] = finish(lanes[jj], bias, residual, ldr, i, j + jj);
    }
}

static inline AVX2 __attribute__((always_inline)) void block256(
    const int MR, long k, const float *x, long ldx, const float *panels, long n, const float *bias,
    const float *residual, long ldr, float *out, long ldo, long q) {
    __m256 lo[4], hi[4];
    for (int i = 0; i < MR; i++) lo[i] = hi[i] = _mm256_setzero_ps();
    const float *b = panels + (size_t)q * k * W;
    for (long p = 0; p < k; p++) {
        __m256 w0 = _mm256_loadu_ps(b + p * W), w1 = _mm256_loadu_ps(b + p * W + 8);
        for (int i = 0; i < MR; i++) {
            __m256 xi = _mm256_broadcast_ss(x + i * ldx + p);
            lo[i] = _mm256_fmadd_ps(xi, w0, lo[i]);
            hi[i] = _mm256_fmadd_ps(xi, w1, hi[i]);
        }
    }
    long j0 = q * W;
    for (int i = 0; i < MR; i++) {
        if (j0 < n) store256(lo[i], bias, residual, ldr, out, ldo, i, j0, n);
        if (j0 + 8 < n) store256(hi[i], bias, residual, ldr, out, ldo, i, j0 + 8, n);
    }
}

static AVX2 void gemm_avx2(
    long m, long k, const float *x, long ldx, const float *panels, long n, const float *bias, const float *residual,
    long ldr, float *out, long ldo, long panel_lo, long panel_hi) {
    for (long q = panel_lo; q < panel_hi; q++) {
        for (long i0 = 0; i0 < m; i0 += 4) {
            long mr = m - i0 < 4 ? m - i0 : 4;
            const float *xr = x + i0 * ldx, *rr = residual ? residual + i0 * ldr : 0;
            float *outr = out + i0 * ldo;
            switch (mr) {
            case 1: block256(1, k, xr, ldx, panels, n, bias, rr, ldr, outr, ldo, q); break;
            case 2: block256(2, k, xr, ldx, panels, n, bias, rr, ldr, outr, ldo, q); break;
            case 3: block256(3, k, xr, ldx, panels, n, bias, rr, ldr, outr, ldo, q); break;
            default: block256(4, k, xr, ldx, panels, n, bias, rr, ldr, outr, ldo, q); break;
            }
        }
    }
}

#endif

rlaif_panel_isa rlaif_panel_best_isa(void) {
    switch (rlaif_cpu_level()) {
    case rlaif_cpu_avx512: return rlaif_panel_isa_avx512;
    case rlaif_cpu_avx2: return rlaif_panel_isa_avx2;
    default: return rlaif_panel_isa_scalar;
    }
}

void rlaif_panel_gemm(
    rlaif_panel_isa isa, long m, long k, const float *x, long ldx, const float *panels, long n,
    const float *bias, const float *residual, long ldr, float *out, long ldo, long panel_lo, long panel_hi) {
    rlaif_panel_isa supported = rlaif_panel_best_isa();
    // The best kernel, or the one asked for where the CPU has it.
    if (isa == rlaif_panel_isa_best || isa > supported) isa = supported;
    switch (isa) {
#ifdef RLAIF_X86
    case rlaif_panel_isa_avx512:
        gemm_avx512(m, k, x, ldx, panels, n, bias, residual, ldr, out, ldo, panel_lo, panel_hi);
        return;
    case rlaif_panel_isa_avx2:
        gemm_avx2(m, k, x, ldx, panels, n, bias, residual, ldr, out, ldo, panel_lo, panel_hi);
        return;
#endif
    default:
        gemm_scalar(m, k, x, ldx, panels, n, bias, residual, ldr, out, ldo, panel_lo, panel_hi);
    }
}
