/* Per-size lists of freed blocks (block_bins.h). A training step allocates the same few sizes over
 * and over, so a linear search over a handful of bins is all it takes. */
#include <stdlib.h>
#include <string.h>

#include "backend/block_bins.h"

struct rt_block_bin {
    size_t size;
    void **blocks;
    int n, cap;
};

static struct rt_block_bin *find(struct rt_block_bins *b, size_t size)
{
    for (int i = 0; i < b->nbins; i++)
        if (b->bins[i].size == size)
            return &b->bins[i];
    return NULL;
}

void *rt_block_bins_take(struct rt_block_bins *b, size_t size)
{
    struct rt_block_bin *bin = find(b, size);
    if (!bin || bin->n == 0)
        return NULL;
    b->cached -= size;
    return bin->blocks[--bin->n];
}

bool rt_block_bins_put(struct rt_block_bins *b, size_t size, void *p)
{
    struct rt_block_bin *bin = find(b, size);
    if (!bin) {
        if (b->nbins == b->cap) {
            int cap = b->cap ? b->cap * 2 : 32;
            struct rt_block_bin *bins = realloc(b->bins, (size_t)cap * sizeof *bins);
            if (!bins)
                return false;
            b->bins = bins;
            b->cap = cap;
        }
        bin = &b->bins[b->nbins++];
        memset(bin, 0, sizeof *bin);
        bin->size = size;
    }
    if (bin->n == bin->cap) {
        int cap = bin->cap ? bin->cap * 2 : 4;
        void **blocks = realloc(bin->blocks, (size_t)cap * sizeof *blocks);
        if (!blocks)
            return false;
        bin->blocks = blocks;
        bin->cap = cap;
    }
    bin->blocks[bin->n++] = p;
    b->cached += size;
    return true;
}

size_t rt_block_bins_drain(struct rt_block_bins *b, void (*release)(void *p))
{
    size_t released = b->cached;
    for (int i = 0; i < b->nbins; i++) {
        for (int j = 0; j < b->bins[i].n; j++)
            release(b->bins[i].blocks[j]);
        free(b->bins[i].blocks);
    }
    free(b->bins);
    memset(b, 0, sizeof *b);
    return released;
}
