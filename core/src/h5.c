/* HDF5 files (see retort/h5.h): atomic creation, groups, tensor datasets, scalar attributes.
 *
 * Every function that opens an HDF5 identifier closes it before returning, on every path: the
 * pattern is "hid_t x = -1; ... done: if (x >= 0) H5Xclose(x);". HDF5's automatic error printing
 * is switched off; the innermost HDF5 error description is appended to our messages. */
#define _GNU_SOURCE /* strdup */
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "retort/h5.h"

struct rt_h5 {
    hid_t file;
    char *path; /* as given */
    char *tmp;  /* created files: the temporary name; NULL otherwise */
    bool writable;
};

static void quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

/* ---------------------------------------------------------------------------------------------- */
/* error helpers */

static herr_t walk_cb(unsigned n, const H5E_error2_t *e, void *data)
{
    char *buf = data;
    if (n == 0 && e->desc && e->desc[0])
        snprintf(buf, 200, "%s", e->desc);
    return 0;
}

/* The innermost HDF5 error description ("" when none); clears the stack. */
static const char *h5_detail(char *buf)
{
    buf[0] = '\0';
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, walk_cb, buf);
    H5Eclear2(H5E_DEFAULT);
    return buf;
}

#define H5_FAIL(st, ...)                                                                                      \
    do {                                                                                                      \
        char det_[200];                                                                                       \
        h5_detail(det_);                                                                                      \
        rt_error((st), __VA_ARGS__);                                                                          \
        if (det_[0]) {                                                                                        \
            char msg_[1024];                                                                                  \
            snprintf(msg_, sizeof msg_, "%s (hdf5: %s)", rt_error_msg(), det_);                               \
            rt_error((st), "%s", msg_);                                                                       \
        }                                                                                                     \
        status = (st);                                                                                        \
        goto done;                                                                                            \
    } while (0)

static enum rt_status check_file(const char *op, struct rt_h5 *f, const char *path, bool write)
{
    if (!f)
        return rt_error(RT_ERR_ARG, "%s: file is NULL", op);
    if (!path || path[0] != '/')
        return rt_error(RT_ERR_ARG, "%s: object path '%s' must start with '/' (in %s)", op, path ? path : "(null)",
                        f->path);
    if (write && !f->writable)
        return rt_error(RT_ERR_ARG, "%s: %s is open read-only", op, f->path);
    return RT_OK;
}

/* ---------------------------------------------------------------------------------------------- */
/* files */

const char *rt_h5_path(const struct rt_h5 *f) { return f ? f->path : ""; }

int64_t rt_h5_open_ids(void) { return (int64_t)H5Fget_obj_count((hid_t)H5F_OBJ_ALL, H5F_OBJ_ALL); }

static hid_t strong_fapl(void)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl >= 0)
        H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG);
    return fapl;
}

static struct rt_h5 *h5_alloc(const char *path)
{
    struct rt_h5 *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->file = -1;
    f->path = strdup(path);
    if (!f->path) {
        free(f);
        return NULL;
    }
    return f;
}

static void h5_free(struct rt_h5 *f)
{
    if (!f)
        return;
    free(f->path);
    free(f->tmp);
    free(f);
}

enum rt_status rt_h5_create(const char *path, struct rt_h5 **out)
{
    quiet();
    enum rt_status status = RT_OK;
    hid_t fapl = -1;
    *out = NULL;
    if (!path || !path[0])
        return rt_error(RT_ERR_ARG, "rt_h5_create: empty path");
    struct rt_h5 *f = h5_alloc(path);
    size_t n = strlen(path) + 32;
    if (!f || !(f->tmp = malloc(n))) {
        h5_free(f);
        return rt_error(RT_ERR_OOM, "rt_h5_create: out of memory");
    }
    snprintf(f->tmp, n, "%s.tmp-%ld", path, (long)getpid());
    /* a plain open first, for an errno message HDF5 would not give */
    FILE *probe = fopen(f->tmp, "wb");
    if (!probe) {
        status = rt_error(RT_ERR_IO, "rt_h5_create: cannot create %s: %s", f->tmp, strerror(errno));
        goto done;
    }
    fclose(probe);
    fapl = strong_fapl();
    f->file = H5Fcreate(f->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    if (f->file < 0) {
        remove(f->tmp);
        H5_FAIL(RT_ERR_IO, "rt_h5_create: cannot create %s", f->tmp);
    }
    f->writable = true;
done:
    if (fapl >= 0)
        H5Pclose(fapl);
    if (status != RT_OK)
        h5_free(f);
    else
        *out = f;
    return status;
}

enum rt_status rt_h5_open(const char *path, enum rt_h5_mode mode, struct rt_h5 **out)
{
    quiet();
    enum rt_status status = RT_OK;
    hid_t fapl = -1;
    *out = NULL;
    if (!path || !path[0])
        return rt_error(RT_ERR_ARG, "rt_h5_open: empty path");
    struct stat sb;
    if (stat(path, &sb) != 0)
        return rt_error(RT_ERR_IO, "rt_h5_open: cannot open %s: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode))
        return rt_error(RT_ERR_IO, "rt_h5_open: cannot open %s: it is a directory", path);
    int fd = open(path, mode == RT_H5_RDWR ? O_RDWR : O_RDONLY);
    if (fd < 0)
        return rt_error(RT_ERR_IO, "rt_h5_open: cannot open %s: %s", path, strerror(errno));
    close(fd);
    if (sb.st_size == 0)
        return rt_error(RT_ERR_FORMAT, "rt_h5_open: %s is not an HDF5 file (it is empty)", path);
    htri_t is = H5Fis_hdf5(path);
    H5Eclear2(H5E_DEFAULT);
    if (is <= 0)
        return rt_error(RT_ERR_FORMAT, "rt_h5_open: %s is not an HDF5 file (no HDF5 signature)", path);
    struct rt_h5 *f = h5_alloc(path);
    if (!f)
        return rt_error(RT_ERR_OOM, "rt_h5_open: out of memory");
    fapl = strong_fapl();
    f->file = H5Fopen(path, mode == RT_H5_RDWR ? H5F_ACC_RDWR : H5F_ACC_RDONLY, fapl);
    if (f->file < 0)
        H5_FAIL(RT_ERR_FORMAT, "rt_h5_open: cannot read %s: truncated or corrupt HDF5 file", path);
    f->writable = mode == RT_H5_RDWR;
done:
    if (fapl >= 0)
        H5Pclose(fapl);
    if (status != RT_OK)
        h5_free(f);
    else
        *out = f;
    return status;
}

static enum rt_status fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return rt_error(RT_ERR_IO, "rt_h5_close: cannot reopen %s to sync it: %s", path, strerror(errno));
    int r = fsync(fd);
    int e = errno;
    close(fd);
    if (r != 0)
        return rt_error(RT_ERR_IO, "rt_h5_close: cannot sync %s: %s", path, strerror(e));
    return RT_OK;
}

enum rt_status rt_h5_close(struct rt_h5 *f)
{
    quiet();
    enum rt_status status = RT_OK;
    if (!f)
        return RT_OK;
    if (f->file >= 0 && H5Fclose(f->file) < 0) {
        f->file = -1;
        H5_FAIL(RT_ERR_IO, "rt_h5_close: cannot finish writing %s", f->tmp ? f->tmp : f->path);
    }
    f->file = -1;
    if (f->tmp) {
        if ((status = fsync_path(f->tmp)) != RT_OK)
            goto done;
        if (rename(f->tmp, f->path) != 0) {
            status = rt_error(RT_ERR_IO, "rt_h5_close: cannot rename %s to %s: %s", f->tmp, f->path, strerror(errno));
            goto done;
        }
        free(f->tmp);
        f->tmp = NULL;
    }
done:
    if (f->tmp)
        remove(f->tmp);
    h5_free(f);
    return status;
}

void rt_h5_abort(struct rt_h5 *f)
{
    quiet();
    if (!f)
        return;
    if (f->file >= 0)
        H5Fclose(f->file);
    H5Eclear2(H5E_DEFAULT);
    if (f->tmp)
        remove(f->tmp);
    h5_free(f);
}

/* ---------------------------------------------------------------------------------------------- */
/* structure */

/* Whether every component of path exists (H5Lexists needs its parents to exist). */
static bool path_exists(hid_t file, const char *path)
{
    if (strcmp(path, "/") == 0)
        return true;
    size_t n = strlen(path);
    char *buf = malloc(n + 1);
    if (!buf)
        return false;
    bool ok = true;
    for (size_t i = 1; i <= n && ok; i++) {
        if (path[i] == '/' || path[i] == '\0') {
            memcpy(buf, path, i);
            buf[i] = '\0';
            if (i > 1 && buf[i - 1] == '/') /* "//" or a trailing '/' */
                continue;
            ok = H5Lexists(file, buf, H5P_DEFAULT) > 0;
        }
    }
    free(buf);
    H5Eclear2(H5E_DEFAULT);
    return ok;
}

static enum rt_h5_kind kind_of(hid_t loc, const char *name)
{
    hid_t o = H5Oopen(loc, name, H5P_DEFAULT);
    if (o < 0) {
        H5Eclear2(H5E_DEFAULT);
        return RT_H5_OTHER;
    }
    H5I_type_t t = H5Iget_type(o);
    H5Oclose(o);
    return t == H5I_GROUP ? RT_H5_GROUP : t == H5I_DATASET ? RT_H5_DATASET : RT_H5_OTHER;
}

enum rt_status rt_h5_kind(struct rt_h5 *f, const char *path, enum rt_h5_kind *out)
{
    quiet();
    *out = RT_H5_MISSING;
    enum rt_status st = check_file("rt_h5_kind", f, path, false);
    if (st != RT_OK)
        return st;
    if (path_exists(f->file, path))
        *out = kind_of(f->file, path);
    return RT_OK;
}

/* Error for a missing or mis-kinded object. */
static enum rt_status need_kind(const char *op, struct rt_h5 *f, const char *path, enum rt_h5_kind want)
{
    enum rt_h5_kind k = path_exists(f->file, path) ? kind_of(f->file, path) : RT_H5_MISSING;
    if (k == RT_H5_MISSING)
        return rt_error(RT_ERR_ARG, "%s: %s not found in %s", op, path, f->path);
    if (want != RT_H5_MISSING && k != want)
        return rt_error(RT_ERR_ARG, "%s: %s in %s is a %s, not a %s", op, path, f->path,
                        k == RT_H5_GROUP ? "group" : k == RT_H5_DATASET ? "dataset" : "non-group, non-dataset object",
                        want == RT_H5_GROUP ? "group" : "dataset");
    return RT_OK;
}

enum rt_status rt_h5_group_create(struct rt_h5 *f, const char *path)
{
    quiet();
    enum rt_status status = check_file("rt_h5_group_create", f, path, true);
    hid_t lcpl = -1, g = -1;
    if (status != RT_OK)
        return status;
    if (path_exists(f->file, path))
        return need_kind("rt_h5_group_create", f, path, RT_H5_GROUP);
    lcpl = H5Pcreate(H5P_LINK_CREATE);
    if (lcpl < 0 || H5Pset_create_intermediate_group(lcpl, 1) < 0)
        H5_FAIL(RT_ERR_INTERNAL, "rt_h5_group_create: property list failed");
    g = H5Gcreate2(f->file, path, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0)
        H5_FAIL(RT_ERR_IO, "rt_h5_group_create: cannot create %s in %s", path, f->path);
done:
    if (g >= 0)
        H5Gclose(g);
    if (lcpl >= 0)
        H5Pclose(lcpl);
    return status;
}

struct list_acc {
    struct rt_h5_member *m;
    size_t n, cap;
    bool oom;
};

static herr_t list_cb(hid_t g, const char *name, const H5L_info_t *info, void *data)
{
    struct list_acc *a = data;
    if (a->n == a->cap) {
        size_t cap = a->cap ? 2 * a->cap : 16;
        struct rt_h5_member *m = realloc(a->m, cap * sizeof *m);
        if (!m) {
            a->oom = true;
            return 1;
        }
        a->m = m;
        a->cap = cap;
    }
    char *s = strdup(name);
    if (!s) {
        a->oom = true;
        return 1;
    }
    a->m[a->n].name = s;
    a->m[a->n].kind = info->type == H5L_TYPE_HARD ? kind_of(g, name) : RT_H5_OTHER;
    a->n++;
    return 0;
}

void rt_h5_members_free(struct rt_h5_member *m, size_t n)
{
    if (!m)
        return;
    for (size_t i = 0; i < n; i++)
        free(m[i].name);
    free(m);
}

enum rt_status rt_h5_list(struct rt_h5 *f, const char *group, struct rt_h5_member **out, size_t *n)
{
    quiet();
    *out = NULL;
    *n = 0;
    enum rt_status status = check_file("rt_h5_list", f, group, false);
    hid_t g = -1;
    struct list_acc acc = {0};
    if (status != RT_OK)
        return status;
    if ((status = need_kind("rt_h5_list", f, group, RT_H5_GROUP)) != RT_OK)
        return status;
    g = H5Gopen2(f->file, group, H5P_DEFAULT);
    if (g < 0)
        H5_FAIL(RT_ERR_FORMAT, "rt_h5_list: cannot open group %s in %s", group, f->path);
    hsize_t idx = 0;
    if (H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, list_cb, &acc) < 0 && !acc.oom)
        H5_FAIL(RT_ERR_FORMAT, "rt_h5_list: cannot list group %s in %s", group, f->path);
    if (acc.oom) {
        status = rt_error(RT_ERR_OOM, "rt_h5_list: out of memory");
        goto done;
    }
done:
    if (g >= 0)
        H5Gclose(g);
    if (status != RT_OK)
        rt_h5_members_free(acc.m, acc.n);
    else {
        *out = acc.m;
        *n = acc.n;
    }
    return status;
}

/* ---------------------------------------------------------------------------------------------- */
/* datasets */

static hid_t file_type(enum rt_dtype dt)
{
    switch (dt) {
    case RT_F32: return H5T_IEEE_F32LE;
    case RT_F64: return H5T_IEEE_F64LE;
    case RT_I64: return H5T_STD_I64LE;
    default: return H5T_STD_U8LE;
    }
}

static hid_t mem_type(enum rt_dtype dt)
{
    switch (dt) {
    case RT_F32: return H5T_NATIVE_FLOAT;
    case RT_F64: return H5T_NATIVE_DOUBLE;
    case RT_I64: return H5T_NATIVE_INT64;
    default: return H5T_NATIVE_UINT8;
    }
}

/* Chunk shape: the full shape with leading dims halved until a chunk holds <= target bytes. */
static void chunk_shape(int ndim, const int64_t *shape, size_t esize, size_t target, hsize_t *chunk)
{
    for (int i = 0; i < ndim; i++)
        chunk[i] = (hsize_t)shape[i];
    for (;;) {
        size_t bytes = esize;
        for (int i = 0; i < ndim; i++)
            bytes *= (size_t)chunk[i];
        if (bytes <= target)
            break;
        int d = 0;
        while (d < ndim && chunk[d] == 1)
            d++;
        if (d == ndim)
            break;
        chunk[d] = (chunk[d] + 1) / 2;
    }
}

/* Creates dataset path with dtype/shape; chunked + compressed when large, or when rows is set (row
 * blocks, or the chunk shape given in `given`). */
static enum rt_status create_dataset(const char *op, struct rt_h5 *f, const char *path, enum rt_dtype dt, int ndim,
                                     const int64_t *shape, bool rows, const int64_t *given, hid_t *out)
{
    enum rt_status status = RT_OK;
    hid_t space = -1, dcpl = -1, lcpl = -1;
    hsize_t dims[RT_MAX_DIMS], chunk[RT_MAX_DIMS];
    *out = -1;
    if (ndim < 0 || ndim > RT_MAX_DIMS)
        return rt_error(RT_ERR_ARG, "%s: %d dims (at most %d)", op, ndim, RT_MAX_DIMS);
    if (path_exists(f->file, path))
        return rt_error(RT_ERR_ARG, "%s: %s already exists in %s", op, path, f->path);
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return rt_error(RT_ERR_ARG, "%s: negative size in shape for %s", op, path);
        dims[i] = (hsize_t)shape[i];
        numel *= shape[i];
    }
    size_t esize = rt_dtype_size(dt);
    space = ndim == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(ndim, dims, NULL);
    dcpl = H5Pcreate(H5P_DATASET_CREATE);
    lcpl = H5Pcreate(H5P_LINK_CREATE);
    if (space < 0 || dcpl < 0 || lcpl < 0 || H5Pset_create_intermediate_group(lcpl, 1) < 0)
        H5_FAIL(RT_ERR_INTERNAL, "%s: cannot set up %s", op, path);
    if (ndim > 0 && numel > 0 && (rows || (size_t)numel * esize >= RT_H5_CHUNK_MIN_BYTES)) {
        chunk_shape(ndim, shape, esize, RT_H5_CHUNK_TARGET_BYTES, chunk);
        if (rows) { /* row blocks: whole trailing dims */
            size_t row_bytes = esize;
            for (int i = 1; i < ndim; i++) {
                chunk[i] = dims[i];
                row_bytes *= (size_t)dims[i];
            }
            hsize_t r = (hsize_t)(RT_H5_CHUNK_TARGET_BYTES / (row_bytes ? row_bytes : 1));
            chunk[0] = r < 1 ? 1 : r > dims[0] ? dims[0] : r;
        }
        for (int i = 0; given && i < ndim; i++) {
            if (given[i] < 1 || given[i] > shape[i])
                H5_FAIL(RT_ERR_ARG, "%s: chunk size %lld of dim %d is outside 1..%lld for %s", op, (long long)given[i],
                        i + 1, (long long)shape[i], path);
            chunk[i] = (hsize_t)given[i];
        }
        if (H5Pset_chunk(dcpl, ndim, chunk) < 0 || H5Pset_shuffle(dcpl) < 0 || H5Pset_deflate(dcpl, 4) < 0)
            H5_FAIL(RT_ERR_INTERNAL, "%s: cannot set chunking/compression for %s", op, path);
    }
    *out = H5Dcreate2(f->file, path, file_type(dt), space, lcpl, dcpl, H5P_DEFAULT);
    if (*out < 0)
        H5_FAIL(RT_ERR_IO, "%s: cannot create dataset %s in %s", op, path, f->path);
done:
    if (space >= 0)
        H5Sclose(space);
    if (dcpl >= 0)
        H5Pclose(dcpl);
    if (lcpl >= 0)
        H5Pclose(lcpl);
    return status;
}

/* Host-contiguous data of t: t's own buffer when possible, else a malloc'ed copy (*owned set). */
static enum rt_status host_data(const char *op, struct rt_tensor *t, void **data, void **owned)
{
    *owned = NULL;
    if (rt_tensor_device(t) == RT_CPU && rt_tensor_is_contiguous(t)) {
        *data = rt_tensor_data(t);
        return RT_OK;
    }
    int64_t n = rt_tensor_numel(t);
    void *buf = malloc((size_t)(n > 0 ? n : 1) * rt_dtype_size(t->dtype));
    if (!buf)
        return rt_error(RT_ERR_OOM, "%s: out of memory", op);
    enum rt_status st = rt_tensor_to_host(t, t->dtype, buf);
    if (st != RT_OK) {
        free(buf);
        return st;
    }
    *data = *owned = buf;
    return RT_OK;
}

enum rt_status rt_h5_write(struct rt_h5 *f, const char *path, struct rt_tensor *t)
{
    quiet();
    enum rt_status status = check_file("rt_h5_write", f, path, true);
    hid_t d = -1;
    void *data = NULL, *owned = NULL;
    if (status != RT_OK)
        return status;
    if (!t)
        return rt_error(RT_ERR_ARG, "rt_h5_write: tensor for %s is NULL", path);
    if (strcmp(path, "/") == 0)
        return rt_error(RT_ERR_ARG, "rt_h5_write: cannot write a dataset at the root '/' of %s", f->path);
    if ((status = create_dataset("rt_h5_write", f, path, t->dtype, t->ndim, t->shape, false, NULL, &d)) != RT_OK)
        goto done;
    if (rt_tensor_numel(t) > 0) {
        if ((status = host_data("rt_h5_write", t, &data, &owned)) != RT_OK)
            goto done;
        if (H5Dwrite(d, mem_type(t->dtype), H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
            H5_FAIL(RT_ERR_IO, "rt_h5_write: cannot write %s to %s", path, f->path);
    }
done:
    free(owned);
    if (d >= 0)
        H5Dclose(d);
    return status;
}

/* dtype, ndim and shape of an open dataset. */
static enum rt_status dataset_geometry(const char *op, struct rt_h5 *f, const char *path, hid_t d, enum rt_dtype *dt,
                                       int *ndim, int64_t *shape, bool *enum8)
{
    enum rt_status status = RT_OK;
    hid_t type = H5Dget_type(d), space = H5Dget_space(d);
    hsize_t dims[H5S_MAX_RANK];
    *enum8 = false;
    if (type < 0 || space < 0)
        H5_FAIL(RT_ERR_FORMAT, "%s: cannot read the type of %s in %s", op, path, f->path);
    H5T_class_t cls = H5Tget_class(type);
    size_t size = H5Tget_size(type);
    if (cls == H5T_FLOAT)
        *dt = size <= 4 ? RT_F32 : RT_F64;
    else if (cls == H5T_INTEGER)
        *dt = size == 1 && H5Tget_sign(type) == H5T_SGN_NONE ? RT_U8 : RT_I64;
    else if (cls == H5T_ENUM && size == 1) { /* h5py's bool */
        *dt = RT_U8;
        *enum8 = true;
    } else {
        status = rt_error(RT_ERR_DTYPE, "rt_h5_read: %s in %s has an unsupported element type (HDF5 class %d, %zu bytes)",
                          path, f->path, (int)cls, size);
        goto done;
    }
    H5S_class_t sc = H5Sget_simple_extent_type(space);
    if (sc == H5S_NULL) {
        status = rt_error(RT_ERR_FORMAT, "%s: %s in %s has a null dataspace (no data)", op, path, f->path);
        goto done;
    }
    int nd = H5Sget_simple_extent_ndims(space);
    if (nd < 0)
        H5_FAIL(RT_ERR_FORMAT, "%s: cannot read the shape of %s in %s", op, path, f->path);
    if (nd > RT_MAX_DIMS) {
        status = rt_error(RT_ERR_SHAPE, "%s: %s in %s has %d dims (at most %d)", op, path, f->path, nd, RT_MAX_DIMS);
        goto done;
    }
    H5Sget_simple_extent_dims(space, dims, NULL);
    *ndim = nd;
    for (int i = 0; i < nd; i++)
        shape[i] = (int64_t)dims[i];
done:
    if (type >= 0)
        H5Tclose(type);
    if (space >= 0)
        H5Sclose(space);
    return status;
}

static enum rt_status open_dataset(const char *op, struct rt_h5 *f, const char *path, hid_t *d)
{
    enum rt_status status = check_file(op, f, path, false);
    *d = -1;
    if (status != RT_OK)
        return status;
    if ((status = need_kind(op, f, path, RT_H5_DATASET)) != RT_OK)
        return status;
    *d = H5Dopen2(f->file, path, H5P_DEFAULT);
    if (*d < 0)
        H5_FAIL(RT_ERR_FORMAT, "%s: cannot open %s in %s", op, path, f->path);
done:
    return status;
}

enum rt_status rt_h5_dataset_info(struct rt_h5 *f, const char *path, enum rt_dtype *dt, int *ndim, int64_t *shape)
{
    quiet();
    hid_t d;
    bool e8;
    enum rt_status status = open_dataset("rt_h5_dataset_info", f, path, &d);
    if (status == RT_OK)
        status = dataset_geometry("rt_h5_dataset_info", f, path, d, dt, ndim, shape, &e8);
    if (d >= 0)
        H5Dclose(d);
    return status;
}

/* The element type as numpy names it ("uint8", "float32", h5py's 1-byte enum "bool", ...). */
static void type_name(hid_t type, char *buf, size_t n)
{
    H5T_class_t cls = H5Tget_class(type);
    size_t size = H5Tget_size(type);
    switch (cls) {
    case H5T_INTEGER:
        snprintf(buf, n, "%sint%zu", H5Tget_sign(type) == H5T_SGN_NONE ? "u" : "", size * 8);
        break;
    case H5T_FLOAT: snprintf(buf, n, "float%zu", size * 8); break;
    case H5T_ENUM: snprintf(buf, n, "%s", size == 1 && H5Tget_nmembers(type) == 2 ? "bool" : "enum"); break;
    case H5T_STRING: snprintf(buf, n, "string"); break;
    case H5T_COMPOUND: snprintf(buf, n, "compound"); break;
    case H5T_ARRAY: snprintf(buf, n, "array"); break;
    case H5T_VLEN: snprintf(buf, n, "vlen"); break;
    case H5T_OPAQUE: snprintf(buf, n, "opaque"); break;
    case H5T_BITFIELD: snprintf(buf, n, "bitfield"); break;
    case H5T_REFERENCE: snprintf(buf, n, "reference"); break;
    default: snprintf(buf, n, "other"); break;
    }
}

enum rt_status rt_h5_dataset_storage(struct rt_h5 *f, const char *path, struct rt_h5_storage *out)
{
    static const char *op = "rt_h5_dataset_storage";
    quiet();
    hid_t d = -1, dcpl = -1, type = -1, space = -1;
    memset(out, 0, sizeof *out);
    enum rt_status status = open_dataset(op, f, path, &d);
    if (status != RT_OK)
        goto done;
    dcpl = H5Dget_create_plist(d);
    type = H5Dget_type(d);
    space = H5Dget_space(d);
    if (dcpl < 0 || type < 0 || space < 0)
        H5_FAIL(RT_ERR_FORMAT, "%s: cannot read the properties of %s in %s", op, path, f->path);
    type_name(type, out->type, sizeof out->type);
    int nd = H5Sget_simple_extent_ndims(space);
    if (nd < 0)
        H5_FAIL(RT_ERR_FORMAT, "%s: cannot read the shape of %s in %s", op, path, f->path);
    if (nd > RT_MAX_DIMS) {
        status = rt_error(RT_ERR_SHAPE, "%s: %s in %s has %d dims (at most %d)", op, path, f->path, nd, RT_MAX_DIMS);
        goto done;
    }
    hsize_t dims[RT_MAX_DIMS];
    H5Sget_simple_extent_dims(space, dims, NULL);
    out->ndim = nd;
    for (int i = 0; i < nd; i++)
        out->shape[i] = (int64_t)dims[i];
    int ext = H5Pget_external_count(dcpl);
    if (ext < 0)
        H5_FAIL(RT_ERR_FORMAT, "%s: cannot read the storage of %s in %s", op, path, f->path);
    out->external = ext;
    H5D_layout_t lay = H5Pget_layout(dcpl);
    out->layout = lay == H5D_CONTIGUOUS ? RT_H5_LAYOUT_CONTIGUOUS : lay == H5D_CHUNKED ? RT_H5_LAYOUT_CHUNKED
                : lay == H5D_COMPACT ? RT_H5_LAYOUT_COMPACT : lay == H5D_VIRTUAL ? RT_H5_LAYOUT_VIRTUAL
                : RT_H5_LAYOUT_OTHER;
    if (out->layout == RT_H5_LAYOUT_CHUNKED) {
        hsize_t chunk[H5S_MAX_RANK];
        int cn = H5Pget_chunk(dcpl, H5S_MAX_RANK, chunk);
        if (cn < 0 || cn > RT_MAX_DIMS)
            H5_FAIL(RT_ERR_FORMAT, "%s: cannot read the chunk shape of %s in %s", op, path, f->path);
        out->chunk_ndim = cn;
        for (int i = 0; i < cn; i++)
            out->chunk[i] = (int64_t)chunk[i];
    }
done:
    if (space >= 0)
        H5Sclose(space);
    if (type >= 0)
        H5Tclose(type);
    if (dcpl >= 0)
        H5Pclose(dcpl);
    if (d >= 0)
        H5Dclose(d);
    H5Eclear2(H5E_DEFAULT);
    return status;
}

enum rt_status rt_h5_dataset_create(struct rt_h5 *f, const char *path, enum rt_dtype dt, int ndim,
                                    const int64_t *shape)
{
    return rt_h5_dataset_create_chunked(f, path, dt, ndim, shape, NULL);
}

enum rt_status rt_h5_dataset_create_chunked(struct rt_h5 *f, const char *path, enum rt_dtype dt, int ndim,
                                            const int64_t *shape, const int64_t *chunk)
{
    quiet();
    hid_t d = -1;
    enum rt_status status = check_file("rt_h5_dataset_create", f, path, true);
    if (status != RT_OK)
        return status;
    if (ndim < 1)
        return rt_error(RT_ERR_ARG, "rt_h5_dataset_create: %s needs at least 1 dim", path);
    if ((unsigned)dt >= RT_DTYPE_COUNT)
        return rt_error(RT_ERR_ARG, "rt_h5_dataset_create: bad dtype %d", (int)dt);
    status = create_dataset("rt_h5_dataset_create", f, path, dt, ndim, shape, true, chunk, &d);
    if (d >= 0)
        H5Dclose(d);
    return status;
}

/* Closes the handles of one dataset read or write (each may be -1: never opened). */
static void close_io(hid_t d, hid_t fs, hid_t ms, hid_t mt)
{
    if (mt >= 0)
        H5Tclose(mt);
    if (ms >= 0)
        H5Sclose(ms);
    if (fs >= 0)
        H5Sclose(fs);
    if (d >= 0)
        H5Dclose(d);
}

/* Selects rows [row, row + count) of an open dataset, at the fixed leading indices lead[0..nlead) when
 * nlead > 0 (rows then run along dim nlead); checks the trailing dims against t's. On return shape
 * and *ndim_out describe the selected block without the leading dims. */
static enum rt_status select_rows(const char *op, struct rt_h5 *f, const char *path, hid_t d, int nlead,
                                  const int64_t *lead, int64_t row, int64_t count, const struct rt_tensor *t,
                                  hid_t *fspace, hid_t *mspace, int *ndim_out, int64_t *shape)
{
    enum rt_status status = RT_OK;
    enum rt_dtype dt;
    int ndim;
    bool e8;
    char a[RT_SHAPE_STR_MAX], b[RT_SHAPE_STR_MAX];
    *fspace = *mspace = -1;
    if ((status = dataset_geometry(op, f, path, d, &dt, &ndim, shape, &e8)) != RT_OK)
        return status;
    if (ndim < nlead + 1)
        return rt_error(RT_ERR_SHAPE, "%s: %s %s in %s has no rows after %d leading index(es)", op, path,
                        rt_shape_str(ndim, shape, b, sizeof b), f->path, nlead);
    for (int i = 0; i < nlead; i++)
        if (lead[i] < 0 || lead[i] >= shape[i])
            return rt_error(RT_ERR_ARG, "%s: index %lld of dim %d out of range for %s %s in %s", op,
                            (long long)lead[i] + 1, i + 1, path, rt_shape_str(ndim, shape, b, sizeof b), f->path);
    int rdim = ndim - nlead; /* the block's dims: rows, then the trailing dims */
    const int64_t *rshape = shape + nlead;
    if (t) {
        bool ok = t->ndim == rdim;
        for (int i = 1; ok && i < rdim; i++)
            ok = t->shape[i] == rshape[i];
        if (!ok)
            return rt_error(RT_ERR_SHAPE, "%s: rows of shape %s do not fit %s %s in %s", op,
                            rt_shape_str(t->ndim, t->shape, a, sizeof a), path, rt_shape_str(ndim, shape, b, sizeof b),
                            f->path);
    }
    if (row < 0 || count < 0 || row + count > rshape[0])
        return rt_error(RT_ERR_ARG, "%s: rows %lld..%lld out of range for %s %s in %s", op, (long long)row,
                        (long long)(row + count), path, rt_shape_str(ndim, shape, b, sizeof b), f->path);
    hsize_t start[RT_MAX_DIMS] = {0}, cnt[RT_MAX_DIMS];
    for (int i = 0; i < nlead; i++) {
        start[i] = (hsize_t)lead[i];
        cnt[i] = 1;
    }
    start[nlead] = (hsize_t)row;
    cnt[nlead] = (hsize_t)count;
    for (int i = nlead + 1; i < ndim; i++)
        cnt[i] = (hsize_t)shape[i];
    *fspace = H5Dget_space(d);
    if (*fspace < 0 || H5Sselect_hyperslab(*fspace, H5S_SELECT_SET, start, NULL, cnt, NULL) < 0)
        H5_FAIL(RT_ERR_FORMAT, "%s: cannot select rows of %s in %s", op, path, f->path);
    *mspace = H5Screate_simple(rdim, cnt + nlead, NULL);
    if (*mspace < 0)
        H5_FAIL(RT_ERR_INTERNAL, "%s: cannot make a memory space", op);
    *ndim_out = rdim;
    memmove(shape, shape + nlead, (size_t)rdim * sizeof *shape);
    shape[0] = count;
done:
    return status;
}

enum rt_status rt_h5_write_rows(struct rt_h5 *f, const char *path, int64_t row, struct rt_tensor *t)
{
    return rt_h5_write_rows_at(f, path, 0, NULL, row, t);
}

enum rt_status rt_h5_write_rows_at(struct rt_h5 *f, const char *path, int nlead, const int64_t *lead, int64_t row,
                                   struct rt_tensor *t)
{
    quiet();
    hid_t d = -1, fs = -1, ms = -1;
    void *data = NULL, *owned = NULL;
    int ndim;
    int64_t shape[RT_MAX_DIMS];
    enum rt_status status = check_file("rt_h5_write_rows", f, path, true);
    if (status != RT_OK)
        return status;
    if (!t || t->ndim < 1)
        return rt_error(RT_ERR_ARG, "rt_h5_write_rows: need a tensor with at least 1 dim for %s", path);
    if (nlead < 0 || nlead >= RT_MAX_DIMS || (nlead > 0 && !lead))
        return rt_error(RT_ERR_ARG, "rt_h5_write_rows: bad leading indices (%d) for %s", nlead, path);
    if ((status = open_dataset("rt_h5_write_rows", f, path, &d)) != RT_OK)
        goto done;
    if ((status = select_rows("rt_h5_write_rows", f, path, d, nlead, lead, row, t->shape[0], t, &fs, &ms, &ndim, shape)) != RT_OK)
        goto done;
    if (t->shape[0] > 0) {
        if ((status = host_data("rt_h5_write_rows", t, &data, &owned)) != RT_OK)
            goto done;
        if (H5Dwrite(d, mem_type(t->dtype), ms, fs, H5P_DEFAULT, data) < 0)
            H5_FAIL(RT_ERR_IO, "rt_h5_write_rows: cannot write rows of %s to %s", path, f->path);
    }
done:
    free(owned);
    close_io(d, fs, ms, -1);
    return status;
}

/* Reads the whole dataset (rows false) or rows [row, row + count) into a new tensor. */
static enum rt_status read_impl(const char *op, struct rt_h5 *f, const char *path, bool rows, int nlead,
                                const int64_t *lead, int64_t row, int64_t count, struct rt_tensor **out)
{
    quiet();
    hid_t d = -1, fs = -1, ms = -1, mt = -1;
    int ndim = 0;
    int64_t shape[RT_MAX_DIMS];
    enum rt_dtype dt = RT_F32;
    bool e8 = false;
    struct rt_tensor *t = NULL;
    *out = NULL;
    if (nlead < 0 || nlead >= RT_MAX_DIMS || (nlead > 0 && !lead))
        return rt_error(RT_ERR_ARG, "%s: bad leading indices (%d) for %s", op, nlead, path);
    enum rt_status status = open_dataset(op, f, path, &d);
    if (status != RT_OK)
        goto done;
    if ((status = dataset_geometry(op, f, path, d, &dt, &ndim, shape, &e8)) != RT_OK)
        goto done;
    if (rows && (status = select_rows(op, f, path, d, nlead, lead, row, count, NULL, &fs, &ms, &ndim, shape)) != RT_OK)
        goto done;
    if ((status = rt_tensor_empty(dt, RT_CPU, ndim, shape, &t)) != RT_OK)
        goto done;
    if (rt_tensor_numel(t) > 0) {
        mt = e8 ? H5Dget_type(d) : H5Tcopy(mem_type(dt));
        if (mt < 0 || H5Dread(d, mt, rows ? ms : H5S_ALL, rows ? fs : H5S_ALL, H5P_DEFAULT, rt_tensor_data(t)) < 0)
            H5_FAIL(RT_ERR_FORMAT, "%s: cannot read %s from %s (truncated or corrupt file?)", op, path, f->path);
    }
done:
    close_io(d, fs, ms, mt);
    if (status != RT_OK)
        rt_tensor_release(t);
    else
        *out = t;
    return status;
}

enum rt_status rt_h5_read(struct rt_h5 *f, const char *path, struct rt_tensor **out)
{
    return read_impl("rt_h5_read", f, path, false, 0, NULL, 0, 0, out);
}

enum rt_status rt_h5_read_rows(struct rt_h5 *f, const char *path, int64_t row, int64_t count, struct rt_tensor **out)
{
    return read_impl("rt_h5_read_rows", f, path, true, 0, NULL, row, count, out);
}

enum rt_status rt_h5_read_rows_at(struct rt_h5 *f, const char *path, int nlead, const int64_t *lead, int64_t row,
                                  int64_t count, struct rt_tensor **out)
{
    return read_impl("rt_h5_read_rows", f, path, true, nlead, lead, row, count, out);
}

/* a requested row and where it goes in the result */
struct row_pos {
    int64_t row, pos;
};

static int cmp_row_pos(const void *a, const void *b)
{
    const struct row_pos *x = a, *y = b;
    return x->row < y->row ? -1 : x->row > y->row ? 1 : (x->pos > y->pos) - (x->pos < y->pos);
}

/* The chunk size of an open dataset along dim `dim` (INT64_MAX when it is not chunked). */
static int64_t chunk_extent(hid_t d, int dim)
{
    int64_t extent = INT64_MAX;
    hsize_t chunk[H5S_MAX_RANK];
    hid_t dcpl = H5Dget_create_plist(d);
    if (dcpl >= 0 && H5Pget_layout(dcpl) == H5D_CHUNKED) {
        int cn = H5Pget_chunk(dcpl, H5S_MAX_RANK, chunk);
        if (cn > dim && chunk[dim] > 0)
            extent = (int64_t)chunk[dim];
    }
    if (dcpl >= 0)
        H5Pclose(dcpl);
    H5Eclear2(H5E_DEFAULT);
    return extent;
}

enum rt_status rt_h5_read_index(struct rt_h5 *f, const char *path, int nlead, const int64_t *lead, const int64_t *idx,
                                int64_t n, struct rt_tensor **out)
{
    static const char *op = "rt_h5_read_index";
    quiet();
    hid_t d = -1, fs = -1, ms = -1, mt = -1;
    int ndim = 0, rdim = 0;
    int64_t shape[RT_MAX_DIMS], rshape[RT_MAX_DIMS];
    enum rt_dtype dt = RT_F32;
    bool e8 = false;
    struct rt_tensor *buf = NULL, *t = NULL;
    struct row_pos *rp = NULL, *runs = NULL;
    *out = NULL;
    if (nlead < 0 || nlead >= RT_MAX_DIMS || (nlead > 0 && !lead) || n < 0 || (n > 0 && !idx))
        return rt_error(RT_ERR_ARG, "%s: bad arguments for %s", op, path);
    enum rt_status status = open_dataset(op, f, path, &d);
    if (status != RT_OK)
        goto done;
    if ((status = dataset_geometry(op, f, path, d, &dt, &ndim, shape, &e8)) != RT_OK)
        goto done;
    memcpy(rshape, shape, sizeof shape);
    /* checks the leading indices and gives the row block's dims (rows first) */
    if ((status = select_rows(op, f, path, d, nlead, lead, 0, 0, NULL, &fs, &ms, &rdim, rshape)) != RT_OK)
        goto done;
    close_io(-1, fs, ms, -1);
    fs = ms = -1;
    int64_t nrows = shape[nlead], row_elems = 1;
    for (int i = 1; i < rdim; i++)
        row_elems *= rshape[i];
    rp = malloc((size_t)(n > 0 ? n : 1) * sizeof *rp);
    if (!rp)
        H5_FAIL(RT_ERR_OOM, "%s: out of memory", op);
    for (int64_t k = 0; k < n; k++) {
        if (idx[k] < 0 || idx[k] >= nrows)
            H5_FAIL(RT_ERR_ARG, "%s: row %lld out of range for %s with %lld rows in %s", op, (long long)idx[k] + 1, path,
                    (long long)nrows, f->path);
        rp[k].row = idx[k], rp[k].pos = k;
    }
    qsort(rp, (size_t)n, sizeof *rp, cmp_row_pos);
    /* the distinct rows as runs of consecutive rows (a sorted batch of a sequential pass is one run),
     * read in file order into buf, then placed in request order */
    runs = malloc((size_t)(n > 0 ? n : 1) * sizeof *runs);
    if (!runs)
        H5_FAIL(RT_ERR_OOM, "%s: out of memory", op);
    int64_t u = 0, nruns = 0;
    for (int64_t k = 0; k < n;) {
        int64_t first = rp[k].row, last = first;
        while (k < n && rp[k].row <= last + 1) {
            last = rp[k].row;
            k++;
        }
        runs[nruns].row = first;
        runs[nruns++].pos = last - first + 1; /* (pos holds the run's length here) */
        u += last - first + 1;
    }
    rshape[0] = u;
    if ((status = rt_tensor_empty(dt, RT_CPU, rdim, rshape, &buf)) != RT_OK)
        goto done;
    rshape[0] = n;
    if ((status = rt_tensor_empty(dt, RT_CPU, rdim, rshape, &t)) != RT_OK)
        goto done;
    if (u > 0 && row_elems > 0) {
        size_t row_bytes = (size_t)row_elems * rt_dtype_size(dt);
        hsize_t start[RT_MAX_DIMS] = {0}, cnt[RT_MAX_DIMS], mdims[RT_MAX_DIMS];
        for (int i = 0; i < ndim; i++)
            cnt[i] = i <= nlead ? 1 : (hsize_t)shape[i];
        for (int i = 0; i < nlead; i++)
            start[i] = (hsize_t)lead[i];
        for (int i = 1; i < rdim; i++)
            mdims[i] = (hsize_t)rshape[i];
        mt = e8 ? H5Dget_type(d) : H5Tcopy(mem_type(dt));
        fs = H5Dget_space(d);
        if (mt < 0 || fs < 0)
            H5_FAIL(RT_ERR_FORMAT, "%s: cannot read %s from %s", op, path, f->path);
        /* One read per group of runs that share chunks along the rows (so each chunk is decompressed
         * once per call): HDF5 maps an irregular selection (a union of many hyperslabs) onto every
         * chunk it touches, which made one union read of a shuffled batch 10-20x slower than these
         * small reads for files chunked a few rows at a time. Contiguous data is one group. */
        int64_t band = chunk_extent(d, nlead);
        char *dst = rt_tensor_data(buf);
        for (int64_t r = 0, at = 0, rows = 0; r < nruns; r++) {
            start[nlead] = (hsize_t)runs[r].row;
            cnt[nlead] = (hsize_t)runs[r].pos;
            if (H5Sselect_hyperslab(fs, rows == 0 ? H5S_SELECT_SET : H5S_SELECT_OR, start, NULL, cnt, NULL) < 0)
                H5_FAIL(RT_ERR_FORMAT, "%s: cannot select rows of %s in %s", op, path, f->path);
            rows += runs[r].pos;
            int64_t last_band = (runs[r].row + runs[r].pos - 1) / band;
            if (r < nruns - 1 && runs[r + 1].row / band == last_band)
                continue; /* the next run shares a chunk with this group */
            mdims[0] = (hsize_t)rows;
            ms = H5Screate_simple(rdim, mdims, NULL);
            if (ms < 0 || H5Dread(d, mt, ms, fs, H5P_DEFAULT, dst + (size_t)at * row_bytes) < 0)
                H5_FAIL(RT_ERR_FORMAT, "%s: cannot read %s from %s (truncated or corrupt file?)", op, path, f->path);
            H5Sclose(ms);
            ms = -1;
            at += rows;
            rows = 0;
        }
        const char *src = rt_tensor_data(buf);
        dst = rt_tensor_data(t);
        for (int64_t k = 0, j = -1; k < n; k++) {
            if (k == 0 || rp[k].row != rp[k - 1].row)
                j++;
            memcpy(dst + (size_t)rp[k].pos * row_bytes, src + (size_t)j * row_bytes, row_bytes);
        }
    }
done:
    free(rp);
    free(runs);
    close_io(d, fs, ms, mt);
    rt_tensor_release(buf);
    if (status != RT_OK)
        rt_tensor_release(t);
    else
        *out = t;
    return status;
}

/* ---------------------------------------------------------------------------------------------- */
/* attributes */

static enum rt_status open_object(const char *op, struct rt_h5 *f, const char *path, bool write, hid_t *o)
{
    enum rt_status status = check_file(op, f, path, write);
    *o = -1;
    if (status != RT_OK)
        return status;
    if ((status = need_kind(op, f, path, RT_H5_MISSING)) != RT_OK)
        return status;
    *o = H5Oopen(f->file, path, H5P_DEFAULT);
    if (*o < 0)
        H5_FAIL(RT_ERR_FORMAT, "%s: cannot open %s in %s", op, path, f->path);
done:
    return status;
}

static hid_t bool_type(void)
{
    hid_t t = H5Tenum_create(H5T_NATIVE_INT8);
    int8_t v0 = 0, v1 = 1;
    if (t >= 0 && (H5Tenum_insert(t, "FALSE", &v0) < 0 || H5Tenum_insert(t, "TRUE", &v1) < 0)) {
        H5Tclose(t);
        return -1;
    }
    return t;
}

static hid_t vlen_string_type(void)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t >= 0 && (H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0)) {
        H5Tclose(t);
        return -1;
    }
    return t;
}

/* Writes one attribute of file type ftype from memory type mtype: a scalar (n == 0) or a 1-D array of n. */
static enum rt_status attr_set(const char *op, struct rt_h5 *f, const char *path, const char *name, hid_t ftype,
                               hid_t mtype, const void *value, size_t n)
{
    hid_t o = -1, space = -1, a = -1;
    enum rt_status status;
    if (!name || !name[0])
        return rt_error(RT_ERR_ARG, "%s: empty attribute name", op);
    if ((status = open_object(op, f, path, true, &o)) != RT_OK)
        goto done;
    htri_t ex = H5Aexists(o, name);
    if (ex > 0 && H5Adelete(o, name) < 0)
        H5_FAIL(RT_ERR_IO, "%s: cannot replace attribute %s of %s in %s", op, name, path, f->path);
    hsize_t dims[1] = {(hsize_t)n};
    space = n ? H5Screate_simple(1, dims, NULL) : H5Screate(H5S_SCALAR);
    if (ftype < 0 || mtype < 0 || space < 0)
        H5_FAIL(RT_ERR_INTERNAL, "%s: cannot make the type of attribute %s", op, name);
    a = H5Acreate2(o, name, ftype, space, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0 || H5Awrite(a, mtype, value) < 0)
        H5_FAIL(RT_ERR_IO, "%s: cannot write attribute %s of %s in %s", op, name, path, f->path);
done:
    if (a >= 0)
        H5Aclose(a);
    if (space >= 0)
        H5Sclose(space);
    if (o >= 0)
        H5Oclose(o);
    return status;
}

enum rt_status rt_h5_attr_set_double(struct rt_h5 *f, const char *path, const char *name, double v)
{
    quiet();
    return attr_set("rt_h5_attr_set_double", f, path, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &v, 0);
}

enum rt_status rt_h5_attr_set_int64(struct rt_h5 *f, const char *path, const char *name, int64_t v)
{
    quiet();
    return attr_set("rt_h5_attr_set_int64", f, path, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &v, 0);
}

enum rt_status rt_h5_attr_set_string(struct rt_h5 *f, const char *path, const char *name, const char *v)
{
    quiet();
    if (!v)
        return rt_error(RT_ERR_ARG, "rt_h5_attr_set_string: NULL value for %s", name ? name : "(null)");
    hid_t t = vlen_string_type();
    enum rt_status st = attr_set("rt_h5_attr_set_string", f, path, name, t, t, &v, 0);
    if (t >= 0)
        H5Tclose(t);
    return st;
}

enum rt_status rt_h5_attr_set_bool(struct rt_h5 *f, const char *path, const char *name, bool v)
{
    quiet();
    int8_t b = v ? 1 : 0;
    hid_t t = bool_type();
    enum rt_status st = attr_set("rt_h5_attr_set_bool", f, path, name, t, t, &b, 0);
    if (t >= 0)
        H5Tclose(t);
    return st;
}

enum rt_status rt_h5_attr_set_int64_array(struct rt_h5 *f, const char *path, const char *name, const int64_t *v,
                                          size_t n)
{
    quiet();
    if (!v || n == 0)
        return rt_error(RT_ERR_ARG, "rt_h5_attr_set_int64_array: %s needs at least one value", name ? name : "(null)");
    return attr_set("rt_h5_attr_set_int64_array", f, path, name, H5T_STD_I64LE, H5T_NATIVE_INT64, v, n);
}

static enum rt_h5_attr_type classify(hid_t a)
{
    hid_t type = H5Aget_type(a), space = H5Aget_space(a);
    enum rt_h5_attr_type r = RT_H5_ATTR_OTHER;
    if (type >= 0 && space >= 0 && H5Sget_simple_extent_ndims(space) == 1 && H5Tget_class(type) == H5T_INTEGER) {
        r = RT_H5_ATTR_INT64_ARRAY;
    } else if (type >= 0 && space >= 0 && H5Sget_simple_extent_npoints(space) == 1) {
        H5T_class_t cls = H5Tget_class(type);
        if (cls == H5T_INTEGER)
            r = RT_H5_ATTR_INT64;
        else if (cls == H5T_FLOAT)
            r = RT_H5_ATTR_DOUBLE;
        else if (cls == H5T_STRING)
            r = RT_H5_ATTR_STRING;
        else if (cls == H5T_ENUM && H5Tget_size(type) == 1 && H5Tget_nmembers(type) == 2)
            r = RT_H5_ATTR_BOOL;
    }
    if (type >= 0)
        H5Tclose(type);
    if (space >= 0)
        H5Sclose(space);
    H5Eclear2(H5E_DEFAULT);
    return r;
}

void rt_h5_attr_clear(struct rt_h5_attr *a)
{
    if (!a)
        return;
    free(a->s);
    free(a->iv);
    memset(a, 0, sizeof *a);
}

enum rt_status rt_h5_attr_get(struct rt_h5 *f, const char *path, const char *name, struct rt_h5_attr *out)
{
    quiet();
    hid_t o = -1, a = -1, type = -1, mt = -1;
    enum rt_status status;
    memset(out, 0, sizeof *out);
    if ((status = open_object("rt_h5_attr_get", f, path, false, &o)) != RT_OK)
        goto done;
    if (!name || H5Aexists(o, name) <= 0) {
        H5Eclear2(H5E_DEFAULT);
        status = rt_error(RT_ERR_ARG, "rt_h5_attr_get: attribute %s of %s not found in %s", name ? name : "(null)",
                          path, f->path);
        goto done;
    }
    a = H5Aopen(o, name, H5P_DEFAULT);
    if (a < 0)
        H5_FAIL(RT_ERR_FORMAT, "rt_h5_attr_get: cannot open attribute %s of %s in %s", name, path, f->path);
    out->type = classify(a);
    herr_t r = 0;
    switch (out->type) {
    case RT_H5_ATTR_INT64: r = H5Aread(a, H5T_NATIVE_INT64, &out->i); break;
    case RT_H5_ATTR_INT64_ARRAY: {
        hid_t space = H5Aget_space(a);
        hssize_t n = space < 0 ? -1 : H5Sget_simple_extent_npoints(space);
        if (space >= 0)
            H5Sclose(space);
        if (n < 0) {
            r = -1;
            break;
        }
        out->n = (size_t)n;
        out->iv = malloc((n ? (size_t)n : 1) * sizeof *out->iv);
        if (!out->iv) {
            status = rt_error(RT_ERR_OOM, "rt_h5_attr_get: out of memory");
            goto done;
        }
        r = n ? H5Aread(a, H5T_NATIVE_INT64, out->iv) : 0;
        break;
    }
    case RT_H5_ATTR_DOUBLE: r = H5Aread(a, H5T_NATIVE_DOUBLE, &out->d); break;
    case RT_H5_ATTR_BOOL: {
        int8_t b = 0;
        type = H5Aget_type(a);
        r = type < 0 ? -1 : H5Aread(a, type, &b);
        out->b = b != 0;
        break;
    }
    case RT_H5_ATTR_STRING: {
        type = H5Aget_type(a);
        if (type < 0) {
            r = -1;
            break;
        }
        if (H5Tis_variable_str(type) > 0) {
            char *p = NULL;
            mt = H5Tcopy(type); /* same cset (ASCII or UTF-8): no conversion needed */
            if (mt < 0 || (r = H5Aread(a, mt, &p)) < 0) {
                r = -1;
                break;
            }
            out->s = strdup(p ? p : "");
            H5free_memory(p);
        } else {
            size_t n = H5Tget_size(type);
            out->s = calloc(n + 1, 1);
            if (out->s)
                r = H5Aread(a, type, out->s);
        }
        if (r >= 0 && !out->s) {
            status = rt_error(RT_ERR_OOM, "rt_h5_attr_get: out of memory");
            goto done;
        }
        break;
    }
    default:
        status = rt_error(RT_ERR_DTYPE,
                          "rt_h5_attr_get: attribute %s of %s in %s is not a scalar number, bool, string or 1-D integer array",
                          name, path, f->path);
        goto done;
    }
    if (r < 0)
        H5_FAIL(RT_ERR_FORMAT, "rt_h5_attr_get: cannot read attribute %s of %s in %s", name, path, f->path);
done:
    if (mt >= 0)
        H5Tclose(mt);
    if (type >= 0)
        H5Tclose(type);
    if (a >= 0)
        H5Aclose(a);
    if (o >= 0)
        H5Oclose(o);
    if (status != RT_OK)
        rt_h5_attr_clear(out);
    return status;
}

struct names_acc {
    char **names;
    enum rt_h5_attr_type *types;
    size_t n, cap;
    bool oom;
};

static herr_t attr_cb(hid_t o, const char *name, const H5A_info_t *info, void *data)
{
    struct names_acc *a = data;
    if (a->n == a->cap) {
        size_t cap = a->cap ? 2 * a->cap : 16;
        char **nn = realloc(a->names, cap * sizeof *nn);
        if (!nn) {
            a->oom = true;
            return 1;
        }
        a->names = nn;
        enum rt_h5_attr_type *tt = realloc(a->types, cap * sizeof *tt);
        if (!tt) {
            a->oom = true;
            return 1;
        }
        a->types = tt;
        a->cap = cap;
    }
    char *s = strdup(name);
    if (!s) {
        a->oom = true;
        return 1;
    }
    enum rt_h5_attr_type t = RT_H5_ATTR_OTHER;
    hid_t at = H5Aopen(o, name, H5P_DEFAULT);
    if (at >= 0) {
        t = classify(at);
        H5Aclose(at);
    }
    a->names[a->n] = s;
    a->types[a->n] = t;
    a->n++;
    return 0;
}

void rt_h5_names_free(char **names, enum rt_h5_attr_type *types, size_t n)
{
    if (names)
        for (size_t i = 0; i < n; i++)
            free(names[i]);
    free(names);
    free(types);
}

enum rt_status rt_h5_attr_list(struct rt_h5 *f, const char *path, char ***names, enum rt_h5_attr_type **types,
                               size_t *n)
{
    quiet();
    hid_t o = -1;
    struct names_acc acc = {0};
    *names = NULL;
    *types = NULL;
    *n = 0;
    enum rt_status status = open_object("rt_h5_attr_list", f, path, false, &o);
    if (status != RT_OK)
        goto done;
    hsize_t idx = 0;
    if (H5Aiterate2(o, H5_INDEX_NAME, H5_ITER_INC, &idx, attr_cb, &acc) < 0 && !acc.oom)
        H5_FAIL(RT_ERR_FORMAT, "rt_h5_attr_list: cannot list the attributes of %s in %s", path, f->path);
    if (acc.oom)
        status = rt_error(RT_ERR_OOM, "rt_h5_attr_list: out of memory");
done:
    if (o >= 0)
        H5Oclose(o);
    if (status != RT_OK) {
        rt_h5_names_free(acc.names, acc.types, acc.n);
    } else {
        *names = acc.names;
        *types = acc.types;
        *n = acc.n;
    }
    return status;
}
