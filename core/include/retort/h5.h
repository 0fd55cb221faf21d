/* HDF5 files: the small API that checkpoints and the soft-target cache are written with
 * (DESIGN.md §5). Objects are named by absolute paths: "/" is the root group, "/model/fc1/weight"
 * a dataset inside nested groups.
 *
 *   struct rt_h5 *f;
 *   rt_h5_create("ckpt.h5", &f);             // writes ckpt.h5.tmp-<pid>
 *   rt_h5_group_create(f, "/model/fc1");     // parents are created as needed
 *   rt_h5_write(f, "/model/fc1/weight", w);  // any dtype; chunked + deflate when large
 *   rt_h5_attr_set_string(f, "/", "format", "retort.checkpoint");
 *   rt_h5_close(f);                          // flush, fsync, rename over ckpt.h5
 *
 * Atomicity: rt_h5_create never touches <path> itself. rt_h5_close renames the finished temporary
 * file over <path>; rt_h5_abort (or a failed close) removes it. A crash leaves at most a stray
 * <path>.tmp-<pid>, never a half-written file under the real name.
 *
 * On-disk types (readable by h5py and h5dump): f32/f64 -> IEEE little-endian floats, i64 -> 64-bit
 * signed LE, u8 -> 8-bit unsigned. Reading accepts any float (4 -> f32, 8 -> f64 bytes) and any
 * integer type (1-byte unsigned -> u8, others -> i64). Attributes are scalars: double, int64,
 * variable-length UTF-8 string, and bool (the 1-byte enum FALSE/TRUE that h5py uses for numpy bool).
 * Datasets of at least RT_H5_CHUNK_MIN_BYTES are chunked (leading dims halved until a chunk holds
 * at most RT_H5_CHUNK_TARGET_BYTES, so a chunk is a block of whole rows) and deflate-compressed
 * (level 4, byte shuffle); smaller ones are stored contiguously.
 *
 * Errors: HDF5's own error printing is switched off; failures return a status and a message that
 * names the function, the object and the file: "rt_h5_read: /model/fc1/weight not found in
 * ckpt.h5". A file that is not HDF5, or is truncated/corrupt, gives RT_ERR_FORMAT; a file that
 * cannot be opened at all gives RT_ERR_IO. No HDF5 identifier outlives the call that opened it,
 * except the file's own, which rt_h5_close/rt_h5_abort release. */
#ifndef RETORT_H5_H
#define RETORT_H5_H

#include "tensor.h"

#define RT_H5_CHUNK_MIN_BYTES (64 * 1024)
#define RT_H5_CHUNK_TARGET_BYTES (512 * 1024)

struct rt_h5;

enum rt_h5_mode {
    RT_H5_READ = 0, /* read-only */
    RT_H5_RDWR      /* read and write in place (no atomic rename): resumable caches */
};

enum rt_h5_kind { RT_H5_MISSING = 0, RT_H5_GROUP, RT_H5_DATASET, RT_H5_OTHER };

enum rt_h5_attr_type {
    RT_H5_ATTR_DOUBLE = 0,
    RT_H5_ATTR_INT64,
    RT_H5_ATTR_STRING,
    RT_H5_ATTR_BOOL,
    RT_H5_ATTR_INT64_ARRAY, /* a 1-D integer array */
    RT_H5_ATTR_OTHER        /* other arrays, compound types, ...: listed but not read */
};

struct rt_h5_attr {
    enum rt_h5_attr_type type;
    double d;
    int64_t i;
    bool b;
    char *s;     /* malloc'ed, for strings; rt_h5_attr_clear frees it */
    int64_t *iv; /* malloc'ed, the n values of an int64 array; rt_h5_attr_clear frees it */
    size_t n;
};

struct rt_h5_member {
    char *name;
    enum rt_h5_kind kind;
};

/* --- files --- */
/* New file written to "<path>.tmp-<pid>", renamed over path by rt_h5_close. */
enum rt_status rt_h5_create(const char *path, struct rt_h5 **out);
/* Existing file. Missing/unreadable -> RT_ERR_IO; not HDF5, truncated or corrupt -> RT_ERR_FORMAT. */
enum rt_status rt_h5_open(const char *path, enum rt_h5_mode mode, struct rt_h5 **out);
/* Flushes and closes; for rt_h5_create'd files fsyncs and renames the temporary over the real path
 * (on failure the temporary is removed). Frees f in every case. NULL is fine. */
enum rt_status rt_h5_close(struct rt_h5 *f);
/* Closes without committing: a created file's temporary is removed. Frees f. NULL is fine. */
void rt_h5_abort(struct rt_h5 *f);
/* The path given to create/open. */
const char *rt_h5_path(const struct rt_h5 *f);
/* HDF5 identifiers currently open in the process (files, groups, datasets, types, spaces, attributes):
 * 0 when nothing leaked. For tests. */
int64_t rt_h5_open_ids(void);

/* --- structure --- */
/* Creates the group and any missing parents; an existing group is fine. */
enum rt_status rt_h5_group_create(struct rt_h5 *f, const char *path);
/* What path names (RT_H5_MISSING when it, or a parent, does not exist). */
enum rt_status rt_h5_kind(struct rt_h5 *f, const char *path, enum rt_h5_kind *out);
/* Members of a group in name order: *out is a malloc'ed array of *n entries (free with
 * rt_h5_members_free). */
enum rt_status rt_h5_list(struct rt_h5 *f, const char *group, struct rt_h5_member **out, size_t *n);
void rt_h5_members_free(struct rt_h5_member *m, size_t n);

/* --- datasets --- */
/* Writes t (any dtype, device or layout) as a new dataset; parents are created. Fails if it exists. */
enum rt_status rt_h5_write(struct rt_h5 *f, const char *path, struct rt_tensor *t);
/* Reads a dataset into a new CPU tensor with the file's shape and dtype. */
enum rt_status rt_h5_read(struct rt_h5 *f, const char *path, struct rt_tensor **out);
/* Shape and dtype of a dataset without reading it. */
enum rt_status rt_h5_dataset_info(struct rt_h5 *f, const char *path, enum rt_dtype *dt, int *ndim, int64_t *shape);
/* How a dataset is stored (for readers that must refuse some storage, e.g. external raw files). */
enum rt_h5_layout {
    RT_H5_LAYOUT_CONTIGUOUS = 0,
    RT_H5_LAYOUT_CHUNKED,
    RT_H5_LAYOUT_COMPACT,
    RT_H5_LAYOUT_VIRTUAL, /* a VDS: the data lives in other files */
    RT_H5_LAYOUT_OTHER
};
struct rt_h5_storage {
    enum rt_h5_layout layout;
    int external;               /* raw data files outside the HDF5 file (H5Pget_external_count) */
    int chunk_ndim;             /* chunked layout: the chunk's shape */
    int64_t chunk[RT_MAX_DIMS];
    int ndim;                   /* the dataset's shape, whatever its element type */
    int64_t shape[RT_MAX_DIMS];
    char type[16];              /* the element type as numpy names it: "uint8", "int32", "float16", "bool"
                                 * (h5py's 1-byte enum), or the class: "string", "compound", "enum", ... */
};
/* Layout, external files, chunk shape, shape and element type of a dataset; any element type. */
enum rt_status rt_h5_dataset_storage(struct rt_h5 *f, const char *path, struct rt_h5_storage *out);
/* A new zero-filled dataset to be written in row blocks (chunked along dim 0, compressed). */
enum rt_status rt_h5_dataset_create(struct rt_h5 *f, const char *path, enum rt_dtype dt, int ndim,
                                    const int64_t *shape);
/* The same with the chunk shape given (ndim entries, each 1..shape[i]; NULL: row blocks), chosen for
 * the read pattern: a soft-target cache's features are chunked a row at a time, for random batches. */
enum rt_status rt_h5_dataset_create_chunked(struct rt_h5 *f, const char *path, enum rt_dtype dt, int ndim,
                                            const int64_t *shape, const int64_t *chunk);
/* Writes t into rows [row, row + t->shape[0]) of dataset path (the other dims must match). */
enum rt_status rt_h5_write_rows(struct rt_h5 *f, const char *path, int64_t row, struct rt_tensor *t);
/* Reads rows [row, row + count) of dataset path into a new tensor. */
enum rt_status rt_h5_read_rows(struct rt_h5 *f, const char *path, int64_t row, int64_t count,
                               struct rt_tensor **out);
/* The same inside a dataset with nlead leading dims fixed at lead[0..nlead) (0-based): in a [V, N, C]
 * dataset, nlead 1 and lead {v} write or read rows of view v; t (or the result) is [rows, C]. */
enum rt_status rt_h5_write_rows_at(struct rt_h5 *f, const char *path, int nlead, const int64_t *lead, int64_t row,
                                   struct rt_tensor *t);
enum rt_status rt_h5_read_rows_at(struct rt_h5 *f, const char *path, int nlead, const int64_t *lead, int64_t row,
                                  int64_t count, struct rt_tensor **out);
/* Reads the rows idx[0..n) (0-based, any order, repeats allowed) of dataset path, inside lead as for
 * rt_h5_read_rows_at, into a new tensor [n, ...] in the order asked. The distinct rows are sorted into
 * runs of consecutive rows; runs that share chunks (along the rows) are read together, one H5Dread per
 * group, so each chunk is decompressed once per call (contiguous data: one read in all). */
enum rt_status rt_h5_read_index(struct rt_h5 *f, const char *path, int nlead, const int64_t *lead, const int64_t *idx,
                                int64_t n, struct rt_tensor **out);

/* --- attributes (on groups, datasets, or "/") --- replacing an existing one is fine */
enum rt_status rt_h5_attr_set_double(struct rt_h5 *f, const char *path, const char *name, double v);
enum rt_status rt_h5_attr_set_int64(struct rt_h5 *f, const char *path, const char *name, int64_t v);
enum rt_status rt_h5_attr_set_string(struct rt_h5 *f, const char *path, const char *name, const char *v);
enum rt_status rt_h5_attr_set_bool(struct rt_h5 *f, const char *path, const char *name, bool v);
/* A 1-D int64 array attribute of n >= 1 values. */
enum rt_status rt_h5_attr_set_int64_array(struct rt_h5 *f, const char *path, const char *name, const int64_t *v,
                                          size_t n);
/* Reads one attribute: RT_ERR_ARG with "not found" when missing; RT_ERR_DTYPE for RT_H5_ATTR_OTHER. */
enum rt_status rt_h5_attr_get(struct rt_h5 *f, const char *path, const char *name, struct rt_h5_attr *out);
void rt_h5_attr_clear(struct rt_h5_attr *a);
/* Attribute names of an object in name order, with their types (malloc'ed; free with rt_h5_names_free). */
enum rt_status rt_h5_attr_list(struct rt_h5 *f, const char *path, char ***names, enum rt_h5_attr_type **types,
                               size_t *n);
void rt_h5_names_free(char **names, enum rt_h5_attr_type *types, size_t n);

#endif
