/* HDF5 files: the small API that checkpoints and the soft-target cache are written with
 * (DESIGN.md §5). Objects are named by absolute paths: "/" is the root group, "/model/fc1/weight"
 * a dataset inside nested groups.
 *
 *   struct rt_h5 *f;
 *   rt_h5_create("ckpt.h5", &f);             // writes ckpt.h5.tmp-<pid>-<n>
 *   rt_h5_group_create(f, "/model/fc1");     // parents are created as needed
 *   rt_h5_write(f, "/model/fc1/weight", w);  // any dtype; chunked + deflate when large
 *   rt_h5_attr_set_string(f, "/", "format", "retort.checkpoint");
 *   rt_h5_close(f);                          // flush, fsync, rename over ckpt.h5
 *
 * Atomicity: rt_h5_create never touches <path> itself. rt_h5_close renames the finished temporary
 * file over <path>; rt_h5_abort (or a failed close) removes it. A crash leaves at most a stray
 * <path>.tmp-<pid>-<n>, never a half-written file under the real name.
 *
 * On-disk types (readable by h5py and h5dump): f32/f64 -> IEEE little-endian floats, i64 -> 64-bit
 * signed LE, u8 -> 8-bit unsigned. Reading accepts any float (2 or 4 -> f32, 8 -> f64 bytes) and any
 * integer type (1-byte unsigned -> u8, others -> i64). Attributes are scalars: double, int64,
 * fixed-length UTF-8 string (h5py reads it as bytes), and bool (the 1-byte enum FALSE/TRUE that h5py
 * uses for numpy bool); reading also accepts variable-length strings (h5py's str, retort 0.1's).
 *
 * Format and checksums: files are created with the HDF5 1.10 format bounds (superblock 3, version-2
 * object headers, new chunk indexes), so every piece of metadata carries a checksum (readable by HDF5
 * 1.10 and later: h5py, h5dump of Debian 11+). Datasets of at most RT_H5_COMPACT_MAX_BYTES (and
 * scalars and empty ones) are compact: their data sits inside their checksummed object header. Larger
 * ones are chunked (leading dims halved until a chunk holds at most RT_H5_CHUNK_TARGET_BYTES, so a
 * chunk is a block of whole rows), byte-shuffled, deflate-compressed (level 4) and fletcher32-checked
 * per chunk. A file that fails a checksum gives RT_ERR_FORMAT, "...: <file>: file is corrupt: ...".
 * Files are written without object times, so the same content gives the same bytes.
 *
 * Reading a file it did not write, the API never crashes, hangs or reads outside the file: paths are
 * walked one hard link at a time (soft, external and user-defined links are errors; at most
 * RT_H5_MAX_DEPTH groups deep); data in external raw files or virtual datasets, and filters this
 * libhdf5 lacks, are errors (filter plugins are never loaded); attribute types, sizes and dataspaces
 * are checked before they are read, and object headers without checksums, and the global heap of
 * variable-length strings, are verified before libhdf5 decodes them (core/src/h5_verify.c).
 *
 * Writing goes through a file driver that records the first write error (libhdf5 1.10 drops chunk
 * write errors: a full disk would give a file of zeros): rt_h5_write / rt_h5_close then fail with the
 * OS error, "rt_h5_close: cannot write ckpt.h5.tmp-12-0: No space left on device (ckpt.h5 was not
 * changed; the partial file was removed)", and the process exits cleanly.
 *
 * Errors: HDF5's own error printing is switched off; failures return a status and a message that
 * names the function, the object and the file: "rt_h5_read: /model/fc1/weight not found in
 * ckpt.h5". Control characters from names and strings in a file are escaped in messages (\x1b). A
 * file that is not HDF5, or is truncated/corrupt, gives RT_ERR_FORMAT; a file that cannot be opened
 * at all gives RT_ERR_IO. No HDF5 identifier outlives the call that opened it, except the file's own,
 * which rt_h5_close/rt_h5_abort release. */
#ifndef RETORT_H5_H
#define RETORT_H5_H

#include "tensor.h"

#define RT_H5_COMPACT_MAX_BYTES (16 * 1024) /* datasets up to this size live in their object header */
#define RT_H5_CHUNK_TARGET_BYTES (512 * 1024)
#define RT_H5_MAX_DEPTH 64 /* groups nested deeper than this are not read */

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

enum rt_h5_link { RT_H5_LINK_HARD = 0, RT_H5_LINK_SOFT, RT_H5_LINK_EXTERNAL, RT_H5_LINK_OTHER };

struct rt_h5_member {
    char *name;
    enum rt_h5_kind kind;  /* RT_H5_OTHER for links that are not hard links */
    enum rt_h5_link link;
    uint64_t id;           /* hard links: the object's address in the file (two names with the same id are
                            * the same object: a cycle or a shared object when walking); 0 otherwise */
};

/* --- files --- */
/* New file written to "<path>.tmp-<pid>-<n>" (n: the files this process has created before),
 * renamed over path by rt_h5_close. */
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
/* What path names (RT_H5_MISSING when it, or a parent, does not exist). A soft or external link on the
 * way is an error, not "missing". */
enum rt_status rt_h5_kind(struct rt_h5 *f, const char *path, enum rt_h5_kind *out);
/* The object's address in the file: equal ids are the same object (for cycle checks in walks). */
enum rt_status rt_h5_object_id(struct rt_h5 *f, const char *path, uint64_t *id);
/* Members of a group in name order: *out is a malloc'ed array of *n entries (free with
 * rt_h5_members_free). Links are listed as they are, not followed: soft and external links have kind
 * RT_H5_OTHER and their link type. */
enum rt_status rt_h5_list(struct rt_h5 *f, const char *group, struct rt_h5_member **out, size_t *n);
void rt_h5_members_free(struct rt_h5_member *m, size_t n);

/* --- datasets --- */
/* Writes t (any dtype, device or layout) as a new dataset; parents are created. Fails if it exists. */
enum rt_status rt_h5_write(struct rt_h5 *f, const char *path, struct rt_tensor *t);
/* Reads a dataset into a new CPU tensor with the file's shape and dtype. Refused: data in external files
 * or other files (virtual datasets), filters that are not available, element types other than numbers. */
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
/* Reads rows [row, row + count) of dataset path into a new tensor (any row and count: out of range is an
 * error, never an overflow). */
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
/* Reads one attribute: RT_ERR_ARG with "not found" when missing; RT_ERR_DTYPE for RT_H5_ATTR_OTHER
 * (anything but a plain integer, IEEE float, string of at most 1 MiB, h5py bool, or 1-D integer array of at
 * most 2^20 values, each stored in exactly the bytes its type and dataspace say). */
enum rt_status rt_h5_attr_get(struct rt_h5 *f, const char *path, const char *name, struct rt_h5_attr *out);
void rt_h5_attr_clear(struct rt_h5_attr *a);
/* Attribute names of an object in name order, with their types (malloc'ed; free with rt_h5_names_free). */
enum rt_status rt_h5_attr_list(struct rt_h5 *f, const char *path, char ***names, enum rt_h5_attr_type **types,
                               size_t *n);
void rt_h5_names_free(char **names, enum rt_h5_attr_type *types, size_t n);

#endif
