// The per-step weights fingerprint, compiled for AVX-512, AVX2 and the baseline from one scalar
// definition. Integer arithmetic only, so every path gives the same hash.
#ifndef RLAIF_FINGERPRINT_H
#define RLAIF_FINGERPRINT_H

#include <stdint.h>

/// A 64-bit hash of `count` bytes: 32 independent xor-multiply (FNV prime) lanes over
/// little-endian 64-bit words in 256-byte blocks, folded into one FNV-1a state with the length and
/// the tail bytes, then SplitMix64's finalizer.
uint64_t rlaif_fingerprint(const void *bytes, long count);

/// The same hash by the loop compiled for `level` (0 baseline, 1 AVX2, 2 AVX-512, as in
/// cpu_level.h), or the best one below it that this CPU runs: tests hold every path to one
/// definition.
uint64_t rlaif_fingerprint_at(int level, const void *bytes, long count);

#endif
