/* Freed blocks kept per exact size, newest first: the bookkeeping of both caching allocators
 * (cpu/cpu_cache.c for host memory, cuda/cuda_cache.cu for device memory). Not thread-safe: the
 * caller locks where it needs to. */
#ifndef RETORT_BLOCK_BINS_H
#define RETORT_BLOCK_BINS_H

#include <stdbool.h>
#include <stddef.h>

struct rt_block_bin;

struct rt_block_bins {
    struct rt_block_bin *bins;
    int nbins, cap;
    size_t cached; /* bytes in all bins */
};

/* A kept block of exactly `size` bytes (taken out), or NULL. */
void *rt_block_bins_take(struct rt_block_bins *b, size_t size);
/* Keeps p (of `size` bytes) for reuse; false when there was no memory to remember it (the caller
 * frees it then). */
bool rt_block_bins_put(struct rt_block_bins *b, size_t size, void *p);
/* Hands every kept block to release and forgets them all; returns the bytes released. */
size_t rt_block_bins_drain(struct rt_block_bins *b, void (*release)(void *p));

#endif
