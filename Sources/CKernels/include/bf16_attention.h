// The decode step of causal attention over a bfloat16 key/value cache: the two products of each
// head (scores = q·Kᵀ, out = p·V) are `rlaif_bf16_gemm` chains, so their bits are the same on every
// instruction set; the softmax between them is the Float32 `rlaif_softmax_row`.
//
// One sequence's cache for one layer, for each key/value head g:
//   keys:   panels of 16 positions over head_dim (in pairs), as `rlaif_bf16_pack_panels` lays out
//           Kᵀ: position p, pair t at  g·K + (p/16)·dp·16 + t·32 + 2·(p%16)  (dp = padded head_dim,
//           K = ⌈capacity/16⌉·16·dp);
//   values: ⌈head_dim/16⌉ panels of 16 dimensions over positions (in pairs): dimension d of
//           position p at  g·V + (d/16)·cp·16 + (p/2)·32 + 2·(d%16) + p%2  (cp = padded capacity,
//           V = ⌈head_dim/16⌉·16·cp).
// Both start zeroed, so a position not yet stored multiplies nothing.
#ifndef RLAIF_BF16_ATTENTION_H
#define RLAIF_BF16_ATTENTION_H

#include "bf16_gemm.h"

#include <stddef.h>
#include <stdint.h>

/// bfloat16 values the keys (and the values) of one layer take for `capacity` positions.
size_t rlaif_bf16_cache_keys_count(long capacity, long kv_heads, long head_dim);
size_t rlaif_bf16_cache_values_count(long capacity, long kv_heads, long head_dim);

/// Rounds the key and value rows of `position` (kv_heads·head_dim floats each, heads side by side)
/// and stores them.
void rlaif_bf16_cache_store(
    uint16_t *keys, uint16_t *values, long capacity, long kv_heads, long head_dim, long position, const float *key,
    const float *value);

/// Floats of scratch `rlaif_bf16_cached_attention` needs for `capacity` positions.
size_t rlaif_bf16_attention_scratch_count(long capacity, long head_dim);

/// For each head h: out[h] = softmax(scale · bf16(q[h])·K[h/group]ᵀ) · V[h/group] over positions
/// [first, length), first = length − window (0 without a window, window ≤ 0), p rounded to
/// bfloat16 for the second product. q and out hold heads·head_dim floats.
void rlaif_bf16_cached_attention(
    rlaif_bf16_isa isa, const float *q, const uint16_t *keys, const uint16_t *values, long capacity, long length,
    long heads, long kv_heads, long head_dim, long window, float *out, float *scratch);

#endif
