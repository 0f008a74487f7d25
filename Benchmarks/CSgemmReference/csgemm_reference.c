#define _POSIX_C_SOURCE 200112L
#include "csgemm_reference.h"

#include <cblas.h>
#include <stdlib.h>
#include <time.h>

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static float *filled(long count, unsigned seed) {
    float *p = NULL;
    if (posix_memalign((void **)&p, 64, (size_t)count * sizeof(float)) != 0) return NULL;
    for (long i = 0; i < count; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (float)(seed >> 8) / 16777216.0f - 0.5f;
    }
    return p;
}

double csgemm_reference_gflops(int m, int n, int k, int trans_a, int trans_b, int reps) {
    float *a = filled((long)m * k, 1), *b = filled((long)k * n, 2), *c = filled((long)m * n, 3);
    if (!a || !b || !c) return 0;
    int lda = trans_a ? m : k, ldb = trans_b ? k : n;
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now_seconds();
        cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                    m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, n);
        double dt = now_seconds() - t0;
        if (dt < best) best = dt;
    }
    free(a); free(b); free(c);
    return 2.0 * m * n * k / best / 1e9;
}

void csgemm_reference_set_threads(int threads) { openblas_set_num_threads(threads); }
