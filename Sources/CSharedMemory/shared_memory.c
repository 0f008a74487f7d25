#define _GNU_SOURCE
#include "shared_memory.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <unistd.h>

int rlaif_segment_create(size_t bytes) {
    int fd = memfd_create("rlaif-ring", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) return -1;
    // memfd pages are freed with the last descriptor and mapping: nothing is left behind by a
    // process that is killed.
    int err = posix_fallocate(fd, 0, (off_t)bytes);
    if (err == 0 && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) err = errno;
    if (err != 0) {
        close(fd);
        errno = err;
        return -1;
    }
    return fd;
}

int rlaif_segment_is_sealed(int fd) {
    int seals = fcntl(fd, F_GET_SEALS);
    return seals >= 0 && (seals & F_SEAL_SHRINK) != 0;
}

// Boehm's seqlock ("Can seqlocks get along with programming language memory models?", 2012):
// the writer's release fence orders the cleared word before the record's new bytes; the reader's
// acquire fence orders its reads of the record before the second load of the word.
void rlaif_seq_clear(uint64_t *word) {
    atomic_store_explicit((_Atomic uint64_t *)word, 0, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
}

void rlaif_seq_publish(uint64_t *word, uint64_t sequence) {
    atomic_store_explicit((_Atomic uint64_t *)word, sequence, memory_order_release);
}

uint64_t rlaif_seq_load(const uint64_t *word) {
    return atomic_load_explicit((_Atomic const uint64_t *)word, memory_order_acquire);
}

uint64_t rlaif_seq_recheck(const uint64_t *word) {
    atomic_thread_fence(memory_order_acquire);
    return atomic_load_explicit((_Atomic const uint64_t *)word, memory_order_relaxed);
}

#if defined(__x86_64__)
#include <emmintrin.h>
#endif
#include <string.h>

// The successor on the other core reads what is written here: streaming stores skip reading each
// line for ownership, which the successor's cache still holds from two reductions before.
void rlaif_segment_copy(void *dst, const void *src, size_t n) {
#if defined(__x86_64__)
    if (n >= (64 << 10) && ((uintptr_t)dst & 15) == 0) {
        size_t bulk = n & ~(size_t)63;
        const char *s = (const char *)src;
        char *d = (char *)dst;
        for (size_t i = 0; i < bulk; i += 64) {
            __m128i a = _mm_loadu_si128((const __m128i *)(s + i));
            __m128i b = _mm_loadu_si128((const __m128i *)(s + i + 16));
            __m128i c = _mm_loadu_si128((const __m128i *)(s + i + 32));
            __m128i e = _mm_loadu_si128((const __m128i *)(s + i + 48));
            _mm_stream_si128((__m128i *)(d + i), a);
            _mm_stream_si128((__m128i *)(d + i + 16), b);
            _mm_stream_si128((__m128i *)(d + i + 32), c);
            _mm_stream_si128((__m128i *)(d + i + 48), e);
        }
        memcpy(d + bulk, s + bulk, n - bulk);
        // Streaming stores are weakly ordered: they must be visible before the record's seqlock
        // word is published.
        _mm_sfence();
        return;
    }
#endif
    memcpy(dst, src, n);
}
