// The vector instruction set this CPU offers, asked once: every CKernels loop compiled for several
// targets picks its version by it.
#ifndef RLAIF_CPU_LEVEL_H
#define RLAIF_CPU_LEVEL_H

enum { rlaif_cpu_baseline = 0, rlaif_cpu_avx2 = 1, rlaif_cpu_avx512 = 2 };

/// rlaif_cpu_avx512 (AVX-512 F, DQ, VL and BW), rlaif_cpu_avx2 (AVX2 with FMA) or rlaif_cpu_baseline.
int rlaif_cpu_level(void);

#endif
