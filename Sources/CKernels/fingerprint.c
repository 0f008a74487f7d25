#include "fingerprint.h"
#include "cpu_level.h"

#include <string.h>

#define FINGERPRINT_LANES 32
#define FNV_BASIS 0xCBF29CE484222325ULL
#define FNV_PRIME 0x00000100000001B3ULL

// Four registers' worth of lanes: the multiply's latency, not its rate, bounded eight lanes.
#define DEFINE_FINGERPRINT(suffix, target)                                                          \
    static target uint64_t fingerprint_##suffix(const unsigned char *bytes, long count) {           \
        uint64_t lanes[FINGERPRINT_LANES];                                                          \
        for (int l = 0; l < FINGERPRINT_LANES; l++) lanes[l] = FNV_BASIS + (uint64_t)l;             \
        const long block = FINGERPRINT_LANES * 8, blocks = count / block;                           \
        for (long b = 0; b < blocks; b++) {                                                         \
            uint64_t words[FINGERPRINT_LANES];                                                      \
            memcpy(words, bytes + b * block, sizeof words);                                         \
            for (int l = 0; l < FINGERPRINT_LANES; l++) {                                           \
                lanes[l] = (lanes[l] ^ words[l]) * FNV_PRIME;                                       \
            }                                                                                       \
        }                                                                                           \
        uint64_t hash = FNV_BASIS ^ (uint64_t)count;                                                \
        for (int l = 0; l < FINGERPRINT_LANES; l++) hash = (hash ^ lanes[l]) * FNV_PRIME;           \
        for (long i = blocks * block; i < count; i++) hash = (hash ^ bytes[i]) * FNV_PRIME;         \
        hash = (hash ^ (hash >> 30)) * 0xBF58476D1CE4E5B9ULL;                                       \
        hash = (hash ^ (hash >> 27)) * 0x94D049BB133111EBULL;                                       \
        return hash ^ (hash >> 31);                                                                 \
    }

DEFINE_FINGERPRINT(baseline, )

#if defined(__x86_64__)
DEFINE_FINGERPRINT(avx2, __attribute__((target("avx2"))))
DEFINE_FINGERPRINT(avx512, __attribute__((target("avx512f,avx512dq"))))
#endif

uint64_t rlaif_fingerprint(const void *bytes, long count) {
    return RLAIF_CALL_FOR_CPU(fingerprint, (const unsigned char *)bytes, count);
}

uint64_t rlaif_fingerprint_at(int level, const void *bytes, long count) {
    RLAIF_RETURN_AT_LEVEL(fingerprint, level, (const unsigned char *)bytes, count);
}
