/* Data readers and augmentation kernels (DESIGN.md §1: data.h, idx.c, augment.c).
 *
 * IDX files (MNIST, Fashion-MNIST): big-endian header `00 00 <type> <ndims>`, then ndims
 * big-endian uint32 sizes, then the data. Only type 0x08 (unsigned byte) is read, the type every
 * MNIST-family file uses. Files may be gzip-compressed (.gz) or plain: zlib's gzread reads both.
 * NumPy .npy files (npy.c): see rt_npy_read below. */
#ifndef RETORT_DATA_H
#define RETORT_DATA_H

#include "tensor.h"

/* Reads an IDX ubyte file into a new u8 CPU tensor with the file's dims (images (N,28,28),
 * labels (N)). Missing/unreadable -> RT_ERR_IO; bad magic, wrong type code, bad dims, data shorter
 * or longer than the header says -> RT_ERR_FORMAT, with a message naming the file and the problem. */
enum rt_status rt_idx_read(const char *path, struct rt_tensor **out);

/* CIFAR binary batches (the "binary version" on the CIFAR page), src/cifar.c. Records, no header:
 * CIFAR-10 1 label byte + 3072 pixels, CIFAR-100 coarse label byte, fine label byte + 3072 pixels; the
 * pixels are 1024 R, 1024 G, 1024 B bytes, each plane row-major 32x32. The npaths files (1..
 * RT_CIFAR_MAX_FILES, e.g. data_batch_1..5.bin) are read in order into x, a new u8 CPU tensor
 * (N, 3, 32, 32), and y, a new i64 tensor (N) of 0-based class ids (the fine label for CIFAR-100, or the
 * coarse one when coarse is true). Any whole positive number of records per file is accepted (subsets,
 * test files); the sets as distributed have 10000 per CIFAR-10 batch, 50000 / 10000 in CIFAR-100's
 * train.bin / test.bin. Errors name the file: RT_ERR_IO cannot open or read it; RT_ERR_FORMAT empty, a
 * size that is not a whole number of records, a label out of range (>= 10; coarse >= 20, fine >= 100,
 * both checked in CIFAR-100 files); RT_ERR_ARG variant not 10 or 100, coarse with CIFAR-10. */
#define RT_CIFAR_PIXELS 3072
#define RT_CIFAR_MAX_FILES 16
enum rt_status rt_cifar_read(const char *const *paths, int npaths, int variant, bool coarse, struct rt_tensor **x,
                             struct rt_tensor **y);

/* NumPy .npy files (numpy.lib.format): the magic "\x93NUMPY", a version (major, minor) of 1.0 (a
 * little-endian u16 header length follows), 2.0 or 3.0 (a u32), then an ASCII Python-dict header
 * {'descr': '<f4', 'fortran_order': False, 'shape': (N, ...), } padded with spaces to a newline,
 * then the elements in C (row-major) order. Read: '|u1' (u8), '<f4' (f32), '<f8' (f64), '<i8'
 * (i64), and the other integers '|i1', '<i2', '<u2', '<i4', '<u4', '<u8', widened to i64 (a uint64
 * value above 2^63 - 1 is an error). Refused with RT_ERR_FORMAT or RT_ERR_DTYPE and a message naming
 * the file, what was expected and what was found: a bad magic or version, a header that does not
 * parse (or misses/repeats a key, or has another one), a Fortran-order array, a big-endian or other
 * dtype (floats of other sizes, complex, bool, strings, structured), more than RT_MAX_DIMS dims, a
 * shape whose byte count overflows, and a file whose size is not header + data exactly (truncated or
 * with trailing bytes). A missing or unreadable file is RT_ERR_IO. */
struct rt_npy_header {
    int major, minor;    /* format version */
    char descr[16];      /* the dtype as written, e.g. "<f4" */
    enum rt_dtype dtype; /* what the data reads as */
    int ndim;
    int64_t shape[RT_MAX_DIMS];
    int64_t data_offset; /* bytes before the data (magic, version, length, header) */
    int64_t data_bytes;  /* bytes of data in the file: numel * the descr's item size */
};

/* Reads and checks the header (and the file's size against it) without reading the data. */
enum rt_status rt_npy_read_header(const char *path, struct rt_npy_header *out);
/* Reads the whole array into a new contiguous CPU tensor of the header's dtype and shape (a
 * 0-dim shape () gives a 0-dim tensor). hdr, when not NULL, receives the header. */
enum rt_status rt_npy_read(const char *path, struct rt_tensor **out, struct rt_npy_header *hdr);

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
