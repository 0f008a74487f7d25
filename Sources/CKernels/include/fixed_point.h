// The loops of exact fixed-point gradient sums (`ExactSum`, `PackedUnits`): rounding floats into
// units (32-bit words, or 64-bit units where a block of a sum needs them), adding a received partial sum while packing it to 32-bit words or turning it into
// floats. Compiled for AVX-512, AVX2 and the baseline from one scalar definition and chosen at run
// time: Swift, built for the baseline, ran them two 64-bit lanes wide and converted 64-bit
// integers to doubles one at a time. Integer arithmetic is exact and each conversion rounds once
// to nearest, so every path gives the same bits (FixedPointKernelTests checks them against a
// scalar Swift statement of each loop).
#ifndef RLAIF_FIXED_POINT_H
#define RLAIF_FIXED_POINT_H

#include <stdint.h>

/// units[i] += round(x[i] · scale) (ties to even) for i < n, or, when any |x[i] · scale| ≥ 2^51,
/// any x[i] is not finite, or any sum wraps past 64 bits, adds nothing. Returns 1 when it added,
/// 0 when it did not (the caller redoes that run exactly, naming what failed).
int rlaif_units_add_floats(int64_t *units, const float *x, long n, double scale);

/// low[i] = the low 32 bits of units[i]; returns 1 when every units[i] is its low word
/// sign-extended, else 0.
int rlaif_units_pack(const int64_t *units, int32_t *low, long n);

/// low[i] = the low 32 bits of mine[i] + received[i]; returns 1 when no sum wrapped past 64 bits
/// and every sum is its low word sign-extended, else 0.
int rlaif_units_add_pack(const int64_t *mine, const int32_t *received, int32_t *low, long n);

/// out[i] = (float)((double)(mine[i] + received[i]) · unit); returns 1 when no sum wrapped past
/// 64 bits, else 0 (`out` is then not meaningful). `received` may be NULL (adds nothing).
int rlaif_units_add_values(const int64_t *mine, const int32_t *received, float *out, long n, double unit);

// The same on 32-bit words: the units of the blocks of a sum that fit in 32 bits (all but a few).

/// units[i] += round(x[i] · scale) (ties to even) for i < n, or, when any sum does not fit in 32
/// bits or any |x[i] · scale| ≥ 2^51 or is not finite, adds nothing. Returns 1 when it added, 0
/// when it did not (the caller widens the block to 64-bit units and adds there).
int rlaif_units32_add_floats(int32_t *units, const float *x, long n, double scale);

/// low[i] = the low 32 bits of mine[i] + received[i]; returns 1 when every sum fits in 32 bits.
int rlaif_units32_add_pack(const int32_t *mine, const int32_t *received, int32_t *low, long n);

/// out[i] = (float)((double)(mine[i] + received[i]) · unit), exactly as the 64-bit loop rounds;
/// `received` may be NULL (adds nothing).
void rlaif_units32_add_values(const int32_t *mine, const int32_t *received, float *out, long n, double unit);

#endif
