// The vector instruction set this CPU offers, asked once: every CKernels loop compiled for several
// targets picks its version by it.
#ifndef RLAIF_CPU_LEVEL_H
#define RLAIF_CPU_LEVEL_H

enum { rlaif_cpu_baseline = 0, rlaif_cpu_avx2 = 1, rlaif_cpu_avx512 = 2 };

/// rlaif_cpu_avx512 (AVX-512 F, DQ, VL and BW), rlaif_cpu_avx2 (AVX2 with FMA) or rlaif_cpu_baseline.
int rlaif_cpu_level(void);

/// Calls `name##_avx512`, `name##_avx2` or `name##_baseline` with the arguments, as this CPU
/// allows; its value is the call's (void calls included).
#if defined(__x86_64__)
#define RLAIF_CALL_FOR_CPU(name, ...)                                                                      \
    (rlaif_cpu_level() == rlaif_cpu_avx512 ? name##_avx512(__VA_ARGS__)                                       \
     : rlaif_cpu_level() == rlaif_cpu_avx2 ? name##_avx2(__VA_ARGS__)                                         \
                                           : name##_baseline(__VA_ARGS__))
#else
#define RLAIF_CALL_FOR_CPU(name, ...) name##_baseline(__VA_ARGS__)
#endif

/// Returns `name##_avx512`, `name##_avx2` or `name##_baseline` of the arguments: the best at or
/// below `level` that this CPU runs (the `_at` entry points by which tests reach every path).
#if defined(__x86_64__)
#define RLAIF_RETURN_AT_LEVEL(name, level, ...)                                                            \
    do {                                                                                                    \
        int best_ = rlaif_cpu_level() < (level) ? rlaif_cpu_level() : (level);                              \
        if (best_ >= rlaif_cpu_avx512) return name##_avx512(__VA_ARGS__);                                   \
        if (best_ >= rlaif_cpu_avx2) return name##_avx2(__VA_ARGS__);                                       \
        return name##_baseline(__VA_ARGS__);                                                                \
    } while (0)
#else
#define RLAIF_RETURN_AT_LEVEL(name, level, ...)                                                            \
    do {                                                                                                    \
        (void)(level);                                                                                      \
        return name##_baseline(__VA_ARGS__);                                                                \
    } while (0)
#endif

#endif
