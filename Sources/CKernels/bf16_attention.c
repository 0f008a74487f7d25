#include "bf16_attention.h"
#include "activations.h"

#include <math.h>
#include <string.h>

enum { W = RLAIF_BF16_PANEL_WIDTH };

static long key_panels(long capacity) { return (capacity + W - 1) / W; }
static long value_panels(long head_dim) { return (head_dim + W - 1) / W; }
static size_t keys_per_head(long capacity, long head_dim) {
    return (size_t)key_panels(capacity) * W * rlaif_bf16_padded_inner(head_dim);
}
static size_t values_per_head(long capacity, long head_dim) {
    return (size_t)value_panels(head_dim) * W * rlaif_bf16_padded_inner(capacity);
}

size_t rlaif_bf16_cache_keys_count(long capacity, long kv_heads, long head_dim) {
    return (size_t)kv_heads * keys_per_head(capacity, head_dim);
}

size_t rlaif_bf16_cache_values_count(long capacity, long kv_heads, long head_dim) {
    return (size_t)kv_heads * values_per_head(capacity, head_dim);
}

void rlaif_bf16_cache_store(
    uint16_t *keys, uint16_t *values, long capacity, long kv_heads, long head_dim, long position, const float *key,
    const float *value) {
    long dp = rlaif_bf16_padded_inner(head_dim), cp = rlaif_bf16_padded_inner(capacity);
    for (long g = 0; g < kv_heads; g++) {
        const float *k = key + g * head_dim, *v = value + g * head_dim;
        uint16_t *kg = keys + g * keys_per_head(capacity, head_dim) + (position / W) * dp * W + 2 * (position % W);
        for (long d = 0; d < head_dim; d++) kg[(d / 2) * 2 * W + d % 2] = rlaif_bf16_from_float(k[d]);
        uint16_t *vg = values + g * values_per_head(capacity, head_dim) + (position / 2) * 2 * W + position % 2;
        for (long d = 0; d < head_dim; d++) vg[(d / W) * cp * W + 2 * (d % W)] = rlaif_bf16_from_float(v[d]);
    }
}

// Scores for every key panel's 16 positions, then the packed query and the packed probabilities.
size_t rlaif_bf16_attention_scratch_count(long capacity, long head_dim) {
    size_t scores = (size_t)key_panels(capacity) * W;
    size_t packed = (size_t)(rlaif_bf16_padded_inner(head_dim) + rlaif_bf16_padded_inner(capacity) + 2);
    return scores + (packed + 1) / 2;
}

void rlaif_bf16_cached_attention(
    rlaif_bf16_isa isa, const float *q, const uint16_t *keys, const uint16_t *values, long capacity, long length,
    long heads, long kv_heads, long head_dim, long window, float *out, float *scratch) {
    long dp = rlaif_bf16_padded_inner(head_dim), cp = rlaif_bf16_padded_inner(capacity);
    long group = heads / kv_heads;
    long first = window > 0 && length > window ? length - window : 0;
    long pair0 = first / 2, n = length - 2 * pair0;  // whole pairs from the first visible position
    float scale = 1.0f / sqrtf((float)head_dim);
    float *scores = scratch;
    uint16_t *query = (uint16_t *)(scratch + key_panels(capacity) * W), *probs = query + dp;
    for (long h = 0; h < heads; h++) {
        const uint16_t *kg = keys + (h / group) * keys_per_head(capacity, head_dim);
        const uint16_t *vg = values + (h / group) * values_per_head(capacity, head_dim);
        rlaif_bf16_pack_rows(q + h * head_dim, 1, head_dim, head_dim, 0, query, 0, 1);
        rlaif_bf16_gemm(
            isa, 0, 1, head_dim, query, 0, kg, length, scale, 0, 0, 0, 0, scores, 0, first / W, key_panels(length));
        rlaif_softmax_row(scores + first, scores + first, length - first);
        // p over whole pairs: a hidden position before `first` in the first pair weighs 0.
        rlaif_bf16_round(1, scores + 2 * pair0, n, probs);
        if (first % 2) probs[0] = 0;
        if (n % 2) probs[n] = 0;
        for (long j = 0; j < value_panels(head_dim); j++) {
            const uint16_t *panel = vg + j * cp * W + pair0 * 2 * W;
            rlaif_bf16_gemm(
                isa, 0, 1, n, probs, 0, panel, head_dim - j * W, 1.0f, 0, 0, 0, 0, out + h * head_dim + j * W, 0, 0, 1);
        }
    }
}
