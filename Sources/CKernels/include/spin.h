// The CPU's spin-wait hint, which Swift does not expose: a thread that polls a flag tells the core
// so (x86 PAUSE, Arm YIELD), leaving more of it to a sibling hardware thread and saving power.
#ifndef RLAIF_SPIN_H
#define RLAIF_SPIN_H

static inline void rlaif_spin_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

#endif
