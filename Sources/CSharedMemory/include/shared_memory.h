#ifndef RLAIF_SHARED_MEMORY_H
#define RLAIF_SHARED_MEMORY_H

#include <stddef.h>
#include <stdint.h>

/// An anonymous shared-memory file of `bytes`, its pages reserved (so writing into a mapping of it
/// never faults for lack of memory). Returns the descriptor, or -1 with errno set.
/// The file cannot shrink (or grow): a reader's mapping of it never faults (SIGBUS).
int rlaif_segment_create(size_t bytes);

/// Whether the file at `fd` can never shrink, so that a mapping of it stays readable.
int rlaif_segment_is_sealed(int fd);

/// Seqlock words in a mapped segment (C11 atomics: Swift cannot put atomics on raw memory).
/// The writer clears a record's word before it overwrites the record...
void rlaif_seq_clear(uint64_t *word);
/// ...and publishes it once the record's bytes are written.
void rlaif_seq_publish(uint64_t *word, uint64_t sequence);
/// A reader loads the word before reading the record...
uint64_t rlaif_seq_load(const uint64_t *word);
/// ...and again after: the record is whole only if both loads gave the sequence it expects.
uint64_t rlaif_seq_recheck(const uint64_t *word);

/// Copies `n` bytes into a segment record (streaming stores from 64 KiB on x86-64, fenced before
/// it returns).
void rlaif_segment_copy(void *dst, const void *src, size_t n);

#endif
