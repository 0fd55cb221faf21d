/* Data readers and augmentation kernels (DESIGN.md §1: data.h, idx.c, augment.c).
 *
 * IDX files (MNIST, Fashion-MNIST): big-endian header `00 00 <type> <ndims>`, then ndims
 * big-endian uint32 sizes, then the data. Only type 0x08 (unsigned byte) is read, the type every
 * MNIST-family file uses. Files may be gzip-compressed (.gz) or plain: zlib's gzread reads both. */
#ifndef RETORT_DATA_H
#define RETORT_DATA_H

#include "tensor.h"

/* Reads an IDX ubyte file into a new u8 CPU tensor with the file's dims (images (N,28,28),
 * labels (N)). Missing/unreadable -> RT_ERR_IO; bad magic, wrong type code, bad dims, data shorter
 * or longer than the header says -> RT_ERR_FORMAT, with a message naming the file and the problem. */
enum rt_status rt_idx_read(const char *path, struct rt_tensor **out);

/* Random crop with zero padding, then random horizontal flip, per example of a batch.
 * batch: u8 or f32 (or f64), shape (N, C, H, W), any layout; out: a new contiguous tensor of the
 * same dtype and shape. Example n is padded by `pad` zeros on each side and an (H, W) window at
 * offset (dy, dx) in [0, 2 pad]^2 is cut out; with flip, it is mirrored left-right with
 * probability 1/2. dy, dx and the flip bit come from r = rt_rng_bits(rt_rng_bits(seed, epoch),
 * example_ids[n]): a pure function of (seed, epoch, example id), so an example gets the same crop
 * in an epoch whatever the batch it lands in and whatever the thread count.
 * example_ids: N ids (NULL: 0..N-1). pad 0 and flip false give a copy. */
enum rt_status rt_augment_crop_flip(struct rt_tensor *batch, int64_t pad, bool flip, uint64_t seed, uint64_t epoch,
                                    const int64_t *example_ids, struct rt_tensor **out);

/* The (dy, dx, flipped) that rt_augment_crop_flip uses for an example (tests, debugging). */
void rt_augment_params(int64_t pad, bool flip, uint64_t seed, uint64_t epoch, int64_t example_id, int64_t *dy,
                       int64_t *dx, bool *flipped);

#endif
