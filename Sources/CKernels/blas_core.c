#include "blas_core.h"
#include "cpu_level.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

const char *rlaif_blas_core_for_cpu(void) {
#if defined(__x86_64__)
    switch (rlaif_cpu_level()) {
    case rlaif_cpu_avx512: return __builtin_cpu_supports("avx512bf16") ? "Cooperlake" : "SkylakeX";
    case rlaif_cpu_avx2: return "Haswell";
    default: return 0;
    }
#else
    return 0;
#endif
}

// A constructor of the executable runs after those of the libraries it loads, so OpenBLAS has
// picked its kernels already: name the core, then have it pick again. Looked up at run time, as
// only an OpenBLAS built for several CPUs (DYNAMIC_ARCH, as Debian's) has these entry points.
__attribute__((constructor)) static void rlaif_pin_blas_core(void) {
    const char *core = rlaif_blas_core_for_cpu();
    if (!core || getenv("OPENBLAS_CORETYPE")) return;  // a core the user named stays
    setenv("OPENBLAS_CORETYPE", core, 0);              // and child processes start with it
    char *(*corename)(void) = (char *(*)(void))dlsym(RTLD_DEFAULT, "openblas_get_corename");
    void (*quit)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "gotoblas_dynamic_quit");
    void (*init)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "gotoblas_dynamic_init");
    if (!corename || !quit || !init || strcmp(corename(), core) == 0) return;
    quit();  // no thread calls BLAS yet: constructors run before main
    init();
}
