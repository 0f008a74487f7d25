#include "cpu_level.h"

int rlaif_cpu_level(void) {
#if defined(__x86_64__)
    static int cached = -1;  // every thread that sets it sets the same value
    int level = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (level < 0) {
        __builtin_cpu_init();
        // AVX-512 as Skylake-SP and every later x86 core has it (DQ for 64-bit conversions).
        int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                     __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw");
        level = avx512                                                                      ? rlaif_cpu_avx512
                : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? rlaif_cpu_avx2
                                                                                    : rlaif_cpu_baseline;
        __atomic_store_n(&cached, level, __ATOMIC_RELAXED);
    }
    return level;
#else
    return rlaif_cpu_baseline;
#endif
}
