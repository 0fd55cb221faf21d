/* HDF5 files (see retort/h5.h): atomic creation, groups, tensor datasets, scalar attributes, and the
 * checks that make reading a damaged or hostile file an error instead of a crash, a hang or a read of
 * another file.
 *
 * Every function that opens an HDF5 identifier closes it before returning, on every path: the
 * pattern is "hid_t x = -1; ... done: if (x >= 0) H5Xclose(x);". HDF5's automatic error printing
 * is switched off; the HDF5 error stack is turned into a short reason (a checksum that does not match,
 * a truncated file, or HDF5's innermost description without its addresses) appended to our messages.
 * Every message is passed through escape_controls: names and strings read from a file cannot put
 * terminal control sequences into a message.
 *
 * Trust (what reading checks, and why; the user-facing summary is README.md's "Trust"):
 *   - files are written with the 1.10 format bounds (H5F_LIBVER_V110: superblock 3, version-2 object
 *     headers, checksummed chunk indexes), so all metadata carries checksums; data is compact (inside
 *     its checksummed object header) up to RT_H5_COMPACT_MAX_BYTES, else chunked with a fletcher32
 *     checksum per chunk. A file that fails a checksum is "file is corrupt". String attributes are
 *     fixed-length (variable-length ones live in the global heap, which has no checksum).
 *   - paths are walked one link at a time from the root: only hard links are followed (soft and
 *     external links are refused, and the link access list refuses external links besides), at most
 *     RT_H5_MAX_DEPTH deep, each step one lookup (linear in the depth).
 *   - datasets whose data lives outside the file (external raw files, virtual datasets) are refused,
 *     as are filters this libhdf5 does not have; plugin loading is switched off (H5PLset_loading_state),
 *     so a file cannot make HDF5 load a shared library.
 *   - attributes are read only when their class, size and dataspace are ones retort reads; in headers
 *     that carry no checksum (files of other writers, or of retort before 0.2) the attribute messages are
 *     first checked by h5_verify.c, including the global heap behind variable-length strings.
 *   - sizes from the file are checked before they are used in arithmetic or allocations.
 *   - writes go through the guard driver (h5_vfd.c), which records the first write error that libhdf5
 *     would otherwise drop, so that a full disk is an error and never a silently damaged file. */
#define _GNU_SOURCE /* strdup */
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "h5_internal.h"
#include "internal.h"
#include "retort/h5.h"

struct rt_h5 {
    hid_t file;
    char *path;                 /* as given */
    char *tmp;                  /* created files: the temporary name; NULL otherwise */
    bool writable;
    bool created;               /* written by this process (its attributes need no verification) */
    int64_t size;               /* bytes on disk when opened */
    struct rt__h5_record *rec;  /* the guard driver's write-error record */
    uint64_t *chunks_ok;        /* object addresses of chunked datasets whose chunk index was checked */
    size_t nchunks_ok, chunks_ok_cap;
};

/* Strings read from a file and limits on what is read (see the header comment). */
#define ATTR_MAX_STRING (1 << 20)   /* bytes of one string attribute */
#define ATTR_MAX_ARRAY (1 << 20)    /* values of one integer array attribute */
#define LINK_MAX_TARGET 4096        /* bytes of a soft or external link's target, when it is named */

static pthread_once_t setup_once = PTHREAD_ONCE_INIT;
static hid_t link_access = -1; /* every lookup's link access list: refuses external links */

static herr_t refuse_external_link(const char *parent, const char *name, const char *file, const char *obj,
                                   unsigned *flags, hid_t fapl, void *data)
{
    (void)parent, (void)name, (void)file, (void)obj, (void)flags, (void)fapl, (void)data;
    return -1;
}

static void setup(void)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    H5PLset_loading_state(0); /* no filter plugins: a file cannot make HDF5 load a shared library */
    link_access = H5Pcreate(H5P_LINK_ACCESS);
    if (link_access >= 0)
        H5Pset_elink_cb(link_access, refuse_external_link, NULL);
}

static void quiet(void)
{
    pthread_once(&setup_once, setup);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

/* ---------------------------------------------------------------------------------------------- */
/* error helpers */

/* s with control bytes (below 0x20, 0x7f, and the UTF-8 forms of U+0080..U+009F) written as \xNN, into
 * buf (always terminated; cut when it does not fit). */
static void escape_controls(const char *s, char *buf, size_t n)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p && o + 1 < n; p++) {
        bool c1 = p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f;
        if (*p < 0x20 || *p == 0x7f || c1) {
            int k = c1 ? 2 : 1;
            for (int j = 0; j < k && o + 5 < n; j++)
                o += (size_t)snprintf(buf + o, n - o, "\\x%02x", p[j]);
            p += k - 1;
            if (o + 5 >= n)
                break;
        } else {
            buf[o++] = (char)*p;
        }
    }
    buf[o] = '\0';
}

/* rt_error for this file: the message is escaped (it may quote names and strings from a file). */
static enum rt_status h5_error(enum rt_status st, const char *fmt, ...)
{
    char raw[1024], esc[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    escape_controls(raw, esc, sizeof esc);
    return rt_error(st, "%s", esc);
}

/* What the HDF5 error stack says: its innermost description (without the " = value" details, which are
 * addresses and buffer pointers), and whether any entry reports a checksum mismatch or a truncated file. */
struct h5_why {
    char desc[200];
    bool checksum, truncated;
};

static herr_t why_cb(unsigned n, const H5E_error2_t *e, void *data)
{
    struct h5_why *w = data;
    if (!e->desc)
        return 0;
    if (strstr(e->desc, "checksum") || strstr(e->desc, "Fletcher32"))
        w->checksum = true;
    if (strstr(e->desc, "truncated"))
        w->truncated = true;
    if (n == 0 && e->desc[0]) {
        snprintf(w->desc, sizeof w->desc, "%s", e->desc);
        char *eq = strstr(w->desc, " = ");
        if (eq) { /* "addr overflow, addr = 1, size = 2" -> "addr overflow" */
            *eq = '\0';
            char *cut = strrchr(w->desc, ',');
            char *colon = strrchr(w->desc, ':');
            if (colon > cut)
                cut = colon;
            if (cut)
                *cut = '\0';
        }
    }
    return 0;
}

/* Reads and clears the HDF5 error stack. */
static void h5_why(struct h5_why *w)
{
    memset(w, 0, sizeof *w);
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, why_cb, w);
    H5Eclear2(H5E_DEFAULT);
}

/* The innermost HDF5 error description ("" when none); clears the stack. */
static const char *h5_detail(char *buf, size_t n)
{
    struct h5_why w;
    h5_why(&w);
    snprintf(buf, n, "%s", w.checksum ? "a checksum does not match" : w.desc);
    return buf;
}

#define H5_FAIL(st, ...)                                                                                      \
    do {                                                                                                      \
        char det_[200], msg_[800];                                                                            \
        h5_detail(det_, sizeof det_);                                                                         \
        snprintf(msg_, sizeof msg_, __VA_ARGS__);                                                             \
        if (det_[0])                                                                                          \
            status = h5_error((st), "%s (hdf5: %s)", msg_, det_);                                             \
        else                                                                                                  \
            status = h5_error((st), "%s", msg_);                                                              \
        goto done;                                                                                            \
    } while (0)

/* "op: file: file is corrupt: what (why)", from the HDF5 error stack. */
static enum rt_status corrupt(const char *op, const struct rt_h5 *f, const char *what)
{
    struct h5_why w;
    h5_why(&w);
    const char *why = w.checksum    ? "a checksum does not match: the file changed after it was written"
                      : w.truncated ? "the file is truncated"
                      : w.desc[0]   ? w.desc
                                    : "hdf5 gives no reason";
    return h5_error(RT_ERR_FORMAT, "%s: %s: file is corrupt: %s (%s)", op, f->path, what, why);
}

#define H5_CORRUPT(op_, ...)                                                                                  \
    do {                                                                                                      \
        char what_[600];                                                                                      \
        snprintf(what_, sizeof what_, __VA_ARGS__);                                                           \
        status = corrupt((op_), f, what_);                                                                    \
        goto done;                                                                                            \
    } while (0)

/* The first write error of f as a sentence, or RT_OK when none happened. */
static enum rt_status write_error(const char *op, struct rt_h5 *f)
{
    int e = rt__h5_record_errno(f->rec);
    if (!e)
        return RT_OK;
    return h5_error(RT_ERR_IO, "%s: cannot write %s: %s", op, f->path, strerror(e));
}

static enum rt_status check_file(const char *op, struct rt_h5 *f, const char *path, bool write)
{
    if (!f)
        return h5_error(RT_ERR_ARG, "%s: file is NULL", op);
    if (!path || path[0] != '/')
        return h5_error(RT_ERR_ARG, "%s: object path '%s' must start with '/' (in %s)", op, path ? path : "(null)",
                        f->path);
    if (write && !f->writable)
        return h5_error(RT_ERR_ARG, "%s: %s is open read-only", op, f->path);
    return RT_OK;
}

/* ---------------------------------------------------------------------------------------------- */
/* files */

const char *rt_h5_path(const struct rt_h5 *f) { return f ? f->path : ""; }

int64_t rt_h5_open_ids(void) { return (int64_t)H5Fget_obj_count((hid_t)H5F_OBJ_ALL, H5F_OBJ_ALL); }

/* The access list of every file: the guard driver (write errors recorded in rec), strong close (every
 * object of the file closes with it). Created files also get the 1.10 format bounds (checksummed
 * metadata); an existing file opened for writing keeps its format (new objects match the old ones). */
static hid_t file_access(struct rt__h5_record *rec, bool latest)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0)
        return -1;
    if (H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0 || rt__h5_guard_fapl(fapl, rec) < 0 ||
        (latest && H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST) < 0)) {
        H5Pclose(fapl);
        return -1;
    }
    return fapl;
}

static struct rt_h5 *h5_alloc(const char *path)
{
    struct rt_h5 *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->file = -1;
    f->path = strdup(path);
    f->rec = rt__h5_record_new();
    if (!f->path || !f->rec) {
        free(f->path);
        rt__h5_record_release(f->rec);
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
    free(f->chunks_ok);
    rt__h5_record_release(f->rec);
    free(f);
}

enum rt_status rt_h5_create(const char *path, struct rt_h5 **out)
{
    quiet();
    enum rt_status status = RT_OK;
    hid_t fapl = -1, fcpl = -1;
    *out = NULL;
    if (!path || !path[0])
        return h5_error(RT_ERR_ARG, "rt_h5_create: empty path");
    struct rt_h5 *f = h5_alloc(path);
    size_t n = strlen(path) + 32;
    if (!f || !(f->tmp = malloc(n))) {
        h5_free(f);
        return h5_error(RT_ERR_OOM, "rt_h5_create: out of memory");
    }
    /* a temporary of its own for each file created (path.tmp-PID-N): a handle left open (an interrupt
     * between its creation and its close; it is closed when collected) then never shares its file with
     * the next save of the same path, which libhdf5 would refuse as "already open" */
    static atomic_uint created;
    snprintf(f->tmp, n, "%s.tmp-%ld-%u", path, (long)getpid(), atomic_fetch_add(&created, 1u));
    /* a plain open first, for an errno message HDF5 would not give */
    FILE *probe = fopen(f->tmp, "wb");
    if (!probe) {
        status = h5_error(RT_ERR_IO, "rt_h5_create: cannot create %s: %s", f->tmp, strerror(errno));
        goto done;
    }
    fclose(probe);
    fapl = file_access(f->rec, true);
    fcpl = H5Pcreate(H5P_FILE_CREATE);
    if (fapl < 0 || fcpl < 0)
        H5_FAIL(RT_ERR_INTERNAL, "rt_h5_create: cannot set up the file access of %s", f->tmp);
    H5Pset_obj_track_times(fcpl, 0); /* no times in object headers: the same content gives the same bytes */
    H5Eclear2(H5E_DEFAULT);
    f->file = H5Fcreate(f->tmp, H5F_ACC_TRUNC, fcpl, fapl);
    if (f->file < 0 || (status = write_error("rt_h5_create", f)) != RT_OK) {
        if (f->file >= 0)
            H5Fclose(f->file);
        f->file = -1;
        remove(f->tmp);
        if (status != RT_OK)
            goto done;
        H5_FAIL(RT_ERR_IO, "rt_h5_create: cannot create %s", f->tmp);
    }
    f->writable = f->created = true;
done:
    if (fcpl >= 0)
        H5Pclose(fcpl);
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
        return h5_error(RT_ERR_ARG, "rt_h5_open: empty path");
    struct stat sb;
    if (stat(path, &sb) != 0)
        return h5_error(RT_ERR_IO, "rt_h5_open: cannot open %s: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode))
        return h5_error(RT_ERR_IO, "rt_h5_open: cannot open %s: it is a directory", path);
    int fd = open(path, mode == RT_H5_RDWR ? O_RDWR : O_RDONLY);
    if (fd < 0)
        return h5_error(RT_ERR_IO, "rt_h5_open: cannot open %s: %s", path, strerror(errno));
    close(fd);
    if (sb.st_size == 0)
        return h5_error(RT_ERR_FORMAT, "rt_h5_open: %s is not an HDF5 file (it is empty)", path);
    htri_t is = H5Fis_hdf5(path);
    H5Eclear2(H5E_DEFAULT);
    if (is <= 0)
        return h5_error(RT_ERR_FORMAT, "rt_h5_open: %s is not an HDF5 file (no HDF5 signature)", path);
    struct rt_h5 *f = h5_alloc(path);
    if (!f)
        return h5_error(RT_ERR_OOM, "rt_h5_open: out of memory");
    f->size = (int64_t)sb.st_size;
    fapl = file_access(f->rec, false);
    if (fapl < 0)
        H5_FAIL(RT_ERR_INTERNAL, "rt_h5_open: cannot set up the file access of %s", path);
    char why[400];
    if (rt__h5_verify_root(path, why, sizeof why) == RT__H5_DAMAGED) { /* before libhdf5 trusts its sizes */
        status = h5_error(RT_ERR_FORMAT, "rt_h5_open: cannot read %s: file is corrupt: %s", path, why);
        goto done;
    }
    f->file = H5Fopen(path, mode == RT_H5_RDWR ? H5F_ACC_RDWR : H5F_ACC_RDONLY, fapl);
    if (f->file < 0) {
        struct h5_why w;
        h5_why(&w);
        status = h5_error(RT_ERR_FORMAT, "rt_h5_open: cannot read %s: truncated or corrupt HDF5 file (%s)", path,
                          w.checksum    ? "file is corrupt: a checksum does not match"
                          : w.truncated ? "the file is truncated"
                          : w.desc[0]   ? w.desc
                                        : "hdf5 gives no reason");
        goto done;
    }
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
        return h5_error(RT_ERR_IO, "rt_h5_close: cannot reopen %s to sync it: %s", path, strerror(errno));
    int r = fsync(fd);
    int e = errno;
    close(fd);
    if (r != 0)
        return h5_error(RT_ERR_IO, "rt_h5_close: cannot write %s: %s", path, strerror(e));
    return RT_OK;
}

enum rt_status rt_h5_close(struct rt_h5 *f)
{
    quiet();
    enum rt_status status = RT_OK;
    if (!f)
        return RT_OK;
    /* The guard driver makes H5Fclose finish even when the disk is full (writes after the first failed
     * one are skipped), so the identifier is always released; the write error is read afterwards. */
    herr_t closed = f->file >= 0 ? H5Fclose(f->file) : 0;
    f->file = -1;
    if ((status = write_error("rt_h5_close", f)) != RT_OK)
        goto done;
    if (closed < 0)
        H5_FAIL(RT_ERR_IO, "rt_h5_close: cannot finish writing %s", f->tmp ? f->tmp : f->path);
    if (f->tmp) {
        if ((status = fsync_path(f->tmp)) != RT_OK)
            goto done;
        if (rename(f->tmp, f->path) != 0) {
            status = h5_error(RT_ERR_IO, "rt_h5_close: cannot rename %s to %s: %s", f->tmp, f->path, strerror(errno));
            goto done;
        }
        free(f->tmp);
        f->tmp = NULL;
    }
done:
    if (status != RT_OK && f->tmp) { /* say that nothing was replaced */
        char msg[1024];
        snprintf(msg, sizeof msg, "%s (%s was left as it was; the partial file %s was removed)", rt_error_msg(),
                 f->path, f->tmp);
        rt_error(status, "%s", msg);
    }
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
/* structure: paths are walked one hard link at a time */

static enum rt_h5_kind kind_of_id(hid_t o)
{
    H5I_type_t t = H5Iget_type(o);
    return t == H5I_GROUP ? RT_H5_GROUP : t == H5I_DATASET ? RT_H5_DATASET : RT_H5_OTHER;
}

static const char *kind_word(enum rt_h5_kind k)
{
    return k == RT_H5_GROUP ? "group" : k == RT_H5_DATASET ? "dataset" : "non-group, non-dataset object";
}

/* The error for a link that is not a hard link: soft links are named with their target, external links
 * with their file and object. */
static enum rt_status refuse_link(const char *op, struct rt_h5 *f, hid_t g, const char *name, const char *prefix,
                                  const H5L_info_t *li)
{
    char target[LINK_MAX_TARGET + 1] = "";
    const char *ef = NULL, *eo = NULL;
    if ((li->type == H5L_TYPE_SOFT || li->type == H5L_TYPE_EXTERNAL) && li->u.val_size > 0 &&
        li->u.val_size <= LINK_MAX_TARGET && H5Lget_val(g, name, target, li->u.val_size, link_access) >= 0) {
        target[li->u.val_size] = '\0';
        unsigned flags;
        if (li->type == H5L_TYPE_EXTERNAL && H5Lunpack_elink_val(target, li->u.val_size, &flags, &ef, &eo) < 0)
            ef = eo = NULL;
    }
    H5Eclear2(H5E_DEFAULT);
    if (li->type == H5L_TYPE_SOFT)
        return h5_error(RT_ERR_FORMAT, "%s: %s in %s is a soft link (to '%s'); retort follows only hard links", op,
                        prefix, f->path, target);
    if (li->type == H5L_TYPE_EXTERNAL)
        return h5_error(RT_ERR_FORMAT,
                        "%s: %s in %s is an external link (to %s in the file '%s'); retort never opens another file",
                        op, prefix, f->path, eo ? eo : "an object", ef ? ef : "?");
    return h5_error(RT_ERR_FORMAT, "%s: %s in %s is a user-defined link (type %d); retort follows only hard links", op,
                    prefix, f->path, (int)li->type);
}

/* Whether the object header at addr can be handed to libhdf5 (rt__h5_verify_object): files this process
 * created are trusted; in a file open for writing, objects made since it was opened may not be on disk yet,
 * so a failed check is repeated after a flush (the common case, a sound header, costs no flush). */
static bool header_sound(struct rt_h5 *f, uint64_t addr, char *why, size_t n)
{
    if (f->created)
        return true;
    if (rt__h5_verify_object(f->file, f->path, addr, why, n) != RT__H5_DAMAGED)
        return true;
    if (!f->writable)
        return false;
    if (H5Fflush(f->file, H5F_SCOPE_LOCAL) < 0)
        H5Eclear2(H5E_DEFAULT);
    return rt__h5_verify_object(f->file, f->path, addr, why, n) != RT__H5_DAMAGED;
}

/* Opens the object at path by walking it from the root one link at a time: each step checks that the link
 * exists and is a hard link, then opens it. *o is the object (or -1 with *kind RT_H5_MISSING when a
 * component does not exist, or a component before the last is not a group). Errors: a soft, external or
 * user-defined link on the way, a path deeper than RT_H5_MAX_DEPTH, a component '.' or '..', and a group
 * or object header that cannot be read (corrupt). */
static enum rt_status walk(const char *op, struct rt_h5 *f, const char *path, hid_t *o, enum rt_h5_kind *kind)
{
    enum rt_status status = RT_OK;
    *o = -1;
    *kind = RT_H5_MISSING;
    size_t n = strlen(path);
    char *prefix = malloc(n + 2), *name = malloc(n + 1);
    hid_t cur = -1;
    if (!prefix || !name) {
        status = h5_error(RT_ERR_OOM, "%s: out of memory", op);
        goto done;
    }
    cur = H5Oopen(f->file, "/", link_access);
    if (cur < 0)
        H5_CORRUPT(op, "cannot open its root group");
    size_t plen = 0;
    int depth = 0;
    for (const char *p = path;;) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        size_t len = strcspn(p, "/");
        memcpy(name, p, len);
        name[len] = '\0';
        prefix[plen++] = '/';
        memcpy(prefix + plen, p, len);
        plen += len;
        prefix[plen] = '\0';
        p += len;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
            status = h5_error(RT_ERR_ARG, "%s: path %s has a component '%s' (paths name each group from the root)", op,
                              path, name);
            goto done;
        }
        if (++depth > RT_H5_MAX_DEPTH) {
            status = h5_error(RT_ERR_FORMAT, "%s: %s in %s is nested more than %d groups deep (retort reads at most %d)",
                              op, path, f->path, RT_H5_MAX_DEPTH, RT_H5_MAX_DEPTH);
            goto done;
        }
        if (kind_of_id(cur) != RT_H5_GROUP) { /* a dataset in the middle of the path */
            H5Oclose(cur);
            cur = -1;
            goto done;
        }
        htri_t ex = H5Lexists(cur, name, link_access);
        if (ex < 0)
            H5_CORRUPT(op, "cannot look up %s", prefix);
        if (ex == 0) {
            H5Oclose(cur);
            cur = -1;
            goto done;
        }
        H5L_info_t li;
        if (H5Lget_info(cur, name, &li, link_access) < 0)
            H5_CORRUPT(op, "cannot read the link %s", prefix);
        if (li.type != H5L_TYPE_HARD) {
            status = refuse_link(op, f, cur, name, prefix, &li);
            goto done;
        }
        char why[400];
        if (!header_sound(f, (uint64_t)li.u.address, why, sizeof why)) {
            status = h5_error(RT_ERR_FORMAT, "%s: %s: file is corrupt: the header of %s: %s", op, f->path, prefix, why);
            goto done;
        }
        hid_t next = H5Oopen(cur, name, link_access);
        if (next < 0)
            H5_CORRUPT(op, "cannot open %s", prefix);
        H5Oclose(cur);
        cur = next;
    }
    *o = cur;
    *kind = kind_of_id(cur);
    cur = -1;
done:
    if (cur >= 0)
        H5Oclose(cur);
    free(prefix);
    free(name);
    return status;
}

enum rt_status rt_h5_kind(struct rt_h5 *f, const char *path, enum rt_h5_kind *out)
{
    quiet();
    *out = RT_H5_MISSING;
    enum rt_status st = check_file("rt_h5_kind", f, path, false);
    if (st != RT_OK)
        return st;
    hid_t o;
    st = walk("rt_h5_kind", f, path, &o, out);
    if (o >= 0)
        H5Oclose(o);
    return st;
}

/* Opens path, which must be of kind want (RT_H5_MISSING: any kind); errors name what it is instead. */
static enum rt_status open_kind(const char *op, struct rt_h5 *f, const char *path, enum rt_h5_kind want, hid_t *o)
{
    enum rt_h5_kind k;
    enum rt_status st = walk(op, f, path, o, &k);
    if (st != RT_OK)
        return st;
    if (k == RT_H5_MISSING)
        return h5_error(RT_ERR_ARG, "%s: %s not found in %s", op, path, f->path);
    if (want != RT_H5_MISSING && k != want) {
        H5Oclose(*o);
        *o = -1;
        return h5_error(RT_ERR_ARG, "%s: %s in %s is a %s, not a %s", op, path, f->path, kind_word(k),
                        want == RT_H5_GROUP ? "group" : "dataset");
    }
    return RT_OK;
}

/* A group creation list: no times in object headers (the same content gives the same bytes). */
static hid_t group_create_plist(void)
{
    hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE);
    if (gcpl >= 0 && H5Pset_obj_track_times(gcpl, 0) < 0) {
        H5Pclose(gcpl);
        return -1;
    }
    return gcpl;
}

/* Creates the groups of path that do not exist yet (all of them when parents_only is false, all but the
 * last component otherwise); existing ones must be groups. */
static enum rt_status make_groups(const char *op, struct rt_h5 *f, const char *path, bool parents_only)
{
    enum rt_status status = RT_OK;
    size_t n = strlen(path);
    char *prefix = malloc(n + 1);
    hid_t gcpl = group_create_plist(), g = -1;
    if (!prefix || gcpl < 0) {
        status = h5_error(RT_ERR_OOM, "%s: out of memory", op);
        goto done;
    }
    for (size_t i = 1; i <= n; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        if (path[i - 1] == '/') /* "//" or a trailing '/' */
            continue;
        if (parents_only && strspn(path + i, "/") == n - i)
            break; /* the last component */
        memcpy(prefix, path, i);
        prefix[i] = '\0';
        hid_t o;
        enum rt_h5_kind k;
        if ((status = walk(op, f, prefix, &o, &k)) != RT_OK)
            goto done;
        if (o >= 0)
            H5Oclose(o);
        if (k == RT_H5_MISSING) {
            g = H5Gcreate2(f->file, prefix, H5P_DEFAULT, gcpl, H5P_DEFAULT);
            if (g < 0)
                H5_FAIL(RT_ERR_IO, "%s: cannot create group %s in %s", op, prefix, f->path);
            H5Gclose(g);
            g = -1;
        } else if (k != RT_H5_GROUP) {
            status = h5_error(RT_ERR_ARG, "%s: %s in %s is a %s, not a group", op, prefix, f->path, kind_word(k));
            goto done;
        }
    }
    status = write_error(op, f);
done:
    if (gcpl >= 0)
        H5Pclose(gcpl);
    free(prefix);
    return status;
}

enum rt_status rt_h5_group_create(struct rt_h5 *f, const char *path)
{
    quiet();
    enum rt_status status = check_file("rt_h5_group_create", f, path, true);
    if (status != RT_OK)
        return status;
    return make_groups("rt_h5_group_create", f, path, false);
}

struct list_acc {
    struct rt_h5_member *m;
    size_t n, cap;
    bool oom;
    char bad[256]; /* a member whose object header cannot be read */
    struct rt_h5 *f; /* to verify each member's header before libhdf5 reads it */
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
    struct rt_h5_member *m = &a->m[a->n];
    memset(m, 0, sizeof *m);
    m->name = s;
    m->kind = RT_H5_OTHER;
    m->link = info->type == H5L_TYPE_HARD ? RT_H5_LINK_HARD : info->type == H5L_TYPE_SOFT ? RT_H5_LINK_SOFT
            : info->type == H5L_TYPE_EXTERNAL ? RT_H5_LINK_EXTERNAL : RT_H5_LINK_OTHER;
    if (m->link == RT_H5_LINK_HARD) {
        H5O_info_t oi;
        char why[400];
        if (!header_sound(a->f, (uint64_t)info->u.address, why, sizeof why) ||
            H5Oget_info_by_name2(g, name, &oi, H5O_INFO_BASIC, link_access) < 0) {
            free(s); /* a member that cannot be read: the listing fails (never a silently shorter one) */
            snprintf(a->bad, sizeof a->bad, "%s", name);
            return -1;
        }
        m->kind = oi.type == H5O_TYPE_GROUP ? RT_H5_GROUP : oi.type == H5O_TYPE_DATASET ? RT_H5_DATASET : RT_H5_OTHER;
        m->id = (uint64_t)oi.addr;
    }
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

/* Name order as libhdf5's name index keeps it (bytewise, like strcmp). */
static int cmp_member_name(const void *a, const void *b)
{
    return strcmp(((const struct rt_h5_member *)a)->name, ((const struct rt_h5_member *)b)->name);
}

enum rt_status rt_h5_list(struct rt_h5 *f, const char *group, struct rt_h5_member **out, size_t *n)
{
    quiet();
    *out = NULL;
    *n = 0;
    enum rt_status status = check_file("rt_h5_list", f, group, false);
    hid_t g = -1;
    struct list_acc acc = {.f = f};
    if (status != RT_OK)
        return status;
    if ((status = open_kind("rt_h5_list", f, group, RT_H5_GROUP, &g)) != RT_OK)
        goto done;
    hsize_t idx = 0;
    /* Native order, sorted below: libhdf5 1.10's increasing-name iteration of dense link storage frees a
     * garbage pointer on some damaged files (a fuzzer-found crash) where native iteration returns an error. */
    if (H5Literate(g, H5_INDEX_NAME, H5_ITER_NATIVE, &idx, list_cb, &acc) < 0 && !acc.oom) {
        if (acc.bad[0])
            H5_CORRUPT("rt_h5_list", "cannot read the member %s of %s", acc.bad, group);
        H5_CORRUPT("rt_h5_list", "cannot list the group %s", group);
    }
    if (acc.oom) {
        status = h5_error(RT_ERR_OOM, "rt_h5_list: out of memory");
        goto done;
    }
    if (acc.n > 1)
        qsort(acc.m, acc.n, sizeof *acc.m, cmp_member_name);
done:
    if (g >= 0)
        H5Oclose(g);
    if (status != RT_OK)
        rt_h5_members_free(acc.m, acc.n);
    else {
        *out = acc.m;
        *n = acc.n;
    }
    return status;
}

enum rt_status rt_h5_object_id(struct rt_h5 *f, const char *path, uint64_t *id)
{
    quiet();
    *id = 0;
    enum rt_status status = check_file("rt_h5_object_id", f, path, false);
    hid_t o = -1;
    if (status != RT_OK)
        return status;
    if ((status = open_kind("rt_h5_object_id", f, path, RT_H5_MISSING, &o)) != RT_OK)
        goto done;
    H5O_info_t oi;
    if (H5Oget_info2(o, &oi, H5O_INFO_BASIC) < 0)
        H5_CORRUPT("rt_h5_object_id", "cannot read the object header of %s", path);
    *id = (uint64_t)oi.addr;
done:
    if (o >= 0)
        H5Oclose(o);
    return status;
}

/* ---------------------------------------------------------------------------------------------- */
/* datasets */

/* bf16 on disk and in memory: an HDF5 float of 2 bytes, little-endian, sign bit 15, 8 exponent bits
 * from bit 7 (bias 127) and 7 mantissa bits from bit 0 (f32's upper half). h5py reads such a dataset
 * as float32 (HDF5 converts it exactly), h5dump prints its values. Made once, locked (never closed). */
static hid_t bf16_made = -1;
static pthread_once_t bf16_once = PTHREAD_ONCE_INIT;

static void bf16_make(void)
{
    hid_t t = H5Tcopy(H5T_IEEE_F32LE);
    if (t < 0)
        return;
    if (H5Tset_fields(t, 15, 7, 8, 0, 7) < 0 || H5Tset_offset(t, 0) < 0 || H5Tset_precision(t, 16) < 0 ||
        H5Tset_size(t, 2) < 0 || H5Tset_ebias(t, 127) < 0 || H5Tlock(t) < 0) {
        H5Tclose(t);
        return;
    }
    bf16_made = t;
}

static hid_t bf16_type(void)
{
    pthread_once(&bf16_once, bf16_make);
    return bf16_made; /* -1 when HDF5 could not make it: the calls using it then fail with an HDF5 error */
}

/* A 2-byte float with bf16's fields (else, as an IEEE half, it is read as f32). */
static bool is_bf16_type(hid_t type)
{
    size_t spos, epos, esize, mpos, msize;
    return H5Tget_size(type) == 2 && H5Tget_fields(type, &spos, &epos, &esize, &mpos, &msize) >= 0 && spos == 15 &&
           epos == 7 && esize == 8 && mpos == 0 && msize == 7;
}

static hid_t file_type(enum rt_dtype dt)
{
    switch (dt) {
    case RT_BF16: return bf16_type();
    case RT_F32: return H5T_IEEE_F32LE;
    case RT_F64: return H5T_IEEE_F64LE;
    case RT_I64: return H5T_STD_I64LE;
    default: return H5T_STD_U8LE;
    }
}

static hid_t mem_type(enum rt_dtype dt)
{
    switch (dt) {
    case RT_BF16: return bf16_type();
    case RT_F32: return H5T_NATIVE_FLOAT;
    case RT_F64: return H5T_NATIVE_DOUBLE;
    case RT_I64: return H5T_NATIVE_INT64;
    default: return H5T_NATIVE_UINT8;
    }
}

/* Chunk shape: the full shape with leading dims halved until a chunk holds <= target bytes. (The shape has
 * passed rt__check_shape, so no product here overflows.) */
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

/* Creates dataset path with dtype/shape. Small data (at most RT_H5_COMPACT_MAX_BYTES, scalars, empty
 * shapes) is compact: stored inside the dataset's object header, under its checksum. Larger data, or any
 * data when rows is set (written later in row blocks, or in the chunk shape `given`), is chunked, with byte
 * shuffle, deflate and a fletcher32 checksum per chunk (computed over the compressed bytes, so a damaged
 * chunk is caught before it is inflated). */
static enum rt_status create_dataset(const char *op, struct rt_h5 *f, const char *path, enum rt_dtype dt, int ndim,
                                     const int64_t *shape, bool rows, const int64_t *given, hid_t *out)
{
    enum rt_status status = RT_OK;
    hid_t space = -1, dcpl = -1;
    hsize_t dims[RT_MAX_DIMS], chunk[RT_MAX_DIMS];
    *out = -1;
    if (ndim < 0 || ndim > RT_MAX_DIMS)
        return h5_error(RT_ERR_ARG, "%s: %d dims (at most %d)", op, ndim, RT_MAX_DIMS);
    if ((status = rt__check_shape(op, ndim, shape)) != RT_OK)
        return status;
    hid_t o;
    enum rt_h5_kind k;
    if ((status = walk(op, f, path, &o, &k)) != RT_OK)
        return status;
    if (o >= 0)
        H5Oclose(o);
    if (k != RT_H5_MISSING)
        return h5_error(RT_ERR_ARG, "%s: %s already exists in %s", op, path, f->path);
    if ((status = make_groups(op, f, path, true)) != RT_OK)
        return status;
    int64_t numel = rt__numel(ndim, shape);
    size_t esize = rt_dtype_size(dt);
    for (int i = 0; i < ndim; i++)
        dims[i] = (hsize_t)shape[i];
    space = ndim == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(ndim, dims, NULL);
    dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (space < 0 || dcpl < 0 || H5Pset_obj_track_times(dcpl, 0) < 0)
        H5_FAIL(RT_ERR_INTERNAL, "%s: cannot set up %s", op, path);
    bool chunked = ndim > 0 && numel > 0 && (rows || (size_t)numel * esize > RT_H5_COMPACT_MAX_BYTES);
    if (!chunked) {
        if (H5Pset_layout(dcpl, H5D_COMPACT) < 0)
            H5_FAIL(RT_ERR_INTERNAL, "%s: cannot set the layout of %s", op, path);
    } else {
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
            if (given[i] < 1 || given[i] > shape[i]) {
                status = h5_error(RT_ERR_ARG, "%s: chunk size %lld of dim %d is outside 1..%lld for %s", op,
                                  (long long)given[i], i + 1, (long long)shape[i], path);
                goto done;
            }
            chunk[i] = (hsize_t)given[i];
        }
        if (H5Pset_chunk(dcpl, ndim, chunk) < 0 || H5Pset_shuffle(dcpl) < 0 || H5Pset_deflate(dcpl, 4) < 0 ||
            H5Pset_fletcher32(dcpl) < 0)
            H5_FAIL(RT_ERR_INTERNAL, "%s: cannot set chunking/compression for %s", op, path);
    }
    *out = H5Dcreate2(f->file, path, file_type(dt), space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (*out < 0)
        H5_FAIL(RT_ERR_IO, "%s: cannot create dataset %s in %s", op, path, f->path);
done:
    if (space >= 0)
        H5Sclose(space);
    if (dcpl >= 0)
        H5Pclose(dcpl);
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
        return h5_error(RT_ERR_OOM, "%s: out of memory", op);
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
        return h5_error(RT_ERR_ARG, "rt_h5_write: tensor for %s is NULL", path);
    if (strspn(path, "/") == strlen(path))
        return h5_error(RT_ERR_ARG, "rt_h5_write: cannot write a dataset at the root '/' of %s", f->path);
    if ((status = create_dataset("rt_h5_write", f, path, t->dtype, t->ndim, t->shape, false, NULL, &d)) != RT_OK)
        goto done;
    if (rt_tensor_numel(t) > 0) {
        if ((status = host_data("rt_h5_write", t, &data, &owned)) != RT_OK)
            goto done;
        if (H5Dwrite(d, mem_type(t->dtype), H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0 &&
            (status = write_error("rt_h5_write", f)) == RT_OK)
            H5_FAIL(RT_ERR_IO, "rt_h5_write: cannot write %s to %s", path, f->path);
    }
    status = write_error("rt_h5_write", f);
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
        H5_CORRUPT(op, "cannot read the type of %s", path);
    H5T_class_t cls = H5Tget_class(type);
    size_t size = H5Tget_size(type);
    if (cls == H5T_FLOAT && (size == 2 || size == 4 || size == 8))
        *dt = is_bf16_type(type) ? RT_BF16 : size <= 4 ? RT_F32 : RT_F64;
    else if (cls == H5T_INTEGER && (size == 1 || size == 2 || size == 4 || size == 8))
        *dt = size == 1 && H5Tget_sign(type) == H5T_SGN_NONE ? RT_U8 : RT_I64;
    else if (cls == H5T_ENUM && size == 1) { /* h5py's bool */
        *dt = RT_U8;
        *enum8 = true;
    } else {
        status = h5_error(RT_ERR_DTYPE, "%s: %s in %s has an unsupported element type (HDF5 class %d, %zu bytes)", op,
                          path, f->path, (int)cls, size);
        goto done;
    }
    H5S_class_t sc = H5Sget_simple_extent_type(space);
    if (sc == H5S_NULL) {
        status = h5_error(RT_ERR_FORMAT, "%s: %s in %s has a null dataspace (no data)", op, path, f->path);
        goto done;
    }
    int nd = H5Sget_simple_extent_ndims(space);
    if (nd < 0)
        H5_CORRUPT(op, "cannot read the shape of %s", path);
    if (nd > RT_MAX_DIMS) {
        status = h5_error(RT_ERR_SHAPE, "%s: %s in %s has %d dims (at most %d)", op, path, f->path, nd, RT_MAX_DIMS);
        goto done;
    }
    if (H5Sget_simple_extent_dims(space, dims, NULL) < 0)
        H5_CORRUPT(op, "cannot read the shape of %s", path);
    *ndim = nd;
    for (int i = 0; i < nd; i++) {
        if (dims[i] > (hsize_t)INT64_MAX) {
            status = h5_error(RT_ERR_FORMAT, "%s: %s: file is corrupt: %s has a size of %llu in dim %d", op, f->path,
                              path, (unsigned long long)dims[i], i + 1);
            goto done;
        }
        shape[i] = (int64_t)dims[i];
    }
    status = rt__check_shape(op, nd, shape);
done:
    if (type >= 0)
        H5Tclose(type);
    if (space >= 0)
        H5Sclose(space);
    return status;
}

/* Names of filters that are plugins (HDF5's registered ids), for the message when one is missing. */
static const char *filter_name(H5Z_filter_t id)
{
    switch (id) {
    case 307: return "bzip2";
    case 32000: return "lzf";
    case 32001: return "blosc";
    case 32004: return "lz4";
    case 32008: return "bitshuffle";
    case 32015: return "zstd";
    case 32017: return "sz";
    case 32026: return "blosc2";
    default: return NULL;
    }
}

/* The first filter of d's pipeline that this libhdf5 does not have, as "the lzf filter (id 32000)" in buf
 * (with *optional: the filter may be skipped per chunk, as h5py's LZF is for chunks it cannot shrink);
 * false when every filter is available. */
static bool missing_filter(hid_t d, char *buf, size_t n, bool *optional)
{
    bool missing = false;
    hid_t dcpl = H5Dget_create_plist(d);
    int nf = dcpl >= 0 ? H5Pget_nfilters(dcpl) : 0;
    for (int i = 0; i < nf && !missing; i++) {
        unsigned flags = 0, cd[8];
        size_t ncd = 8;
        char name[64] = "";
        H5Z_filter_t id = H5Pget_filter2(dcpl, (unsigned)i, &flags, &ncd, cd, sizeof name, name, NULL);
        if (id < 0 || H5Zfilter_avail(id) > 0)
            continue;
        const char *known = filter_name(id);
        snprintf(buf, n, "the %s filter (id %d)", known ? known : name[0] ? name : "unknown", (int)id);
        *optional = flags & H5Z_FLAG_OPTIONAL;
        missing = true;
    }
    if (dcpl >= 0)
        H5Pclose(dcpl);
    H5Eclear2(H5E_DEFAULT);
    return missing;
}

/* The error for data that could not be read: a missing filter when there is one, else corruption. */
static enum rt_status read_failed(const char *op, struct rt_h5 *f, const char *path, hid_t d)
{
    char filter[120];
    bool optional;
    struct h5_why w;
    h5_why(&w); /* first: the calls below clear the error stack */
    if (!missing_filter(d, filter, sizeof filter, &optional))
        return h5_error(RT_ERR_FORMAT, "%s: %s: file is corrupt: cannot read %s (%s)", op, f->path, path,
                        w.checksum    ? "a checksum does not match: the file changed after it was written"
                        : w.truncated ? "the file is truncated"
                        : w.desc[0]   ? w.desc
                                      : "hdf5 gives no reason");
    return h5_error(RT_ERR_FORMAT,
                    "%s: %s in %s is compressed with %s, which this HDF5 library does not have (retort loads no "
                    "filter plugins); rewrite the dataset with gzip compression",
                    op, path, f->path, filter);
}

static enum rt_status check_chunks(const char *op, struct rt_h5 *f, const char *path, hid_t d, hid_t dcpl);

/* Refuses what retort does not read from an open dataset: data in external raw files or other files
 * (virtual datasets), and filters this libhdf5 does not have (plugins are never loaded) unless they are
 * optional (then chunks stored unfiltered still read, and a filtered one is reported by read_failed). */
static enum rt_status check_storage(const char *op, struct rt_h5 *f, const char *path, hid_t d)
{
    enum rt_status status = RT_OK;
    hid_t dcpl = H5Dget_create_plist(d);
    if (dcpl < 0)
        H5_CORRUPT(op, "cannot read the storage properties of %s", path);
    int ext = H5Pget_external_count(dcpl);
    H5D_layout_t lay = H5Pget_layout(dcpl);
    if (ext < 0 || lay < 0)
        H5_CORRUPT(op, "cannot read the storage properties of %s", path);
    if (ext > 0) {
        status = h5_error(RT_ERR_FORMAT,
                          "%s: %s in %s keeps its data in %d external file(s); retort reads only data stored inside "
                          "the HDF5 file",
                          op, path, f->path, ext);
        goto done;
    }
    if (lay == H5D_VIRTUAL) {
        status = h5_error(RT_ERR_FORMAT,
                          "%s: %s in %s is a virtual dataset (its data lives in other files); retort reads only data "
                          "stored inside the HDF5 file",
                          op, path, f->path);
        goto done;
    }
    if (H5Pget_nfilters(dcpl) < 0)
        H5_CORRUPT(op, "cannot read the filters of %s", path);
    char filter[120];
    bool optional = false;
    if (missing_filter(d, filter, sizeof filter, &optional) && !optional) {
        status = h5_error(RT_ERR_FORMAT,
                          "%s: %s in %s is compressed with %s, which this HDF5 library does not have (retort loads no "
                          "filter plugins); rewrite the dataset with gzip compression",
                          op, path, f->path, filter);
        goto done;
    }
    if (lay == H5D_CHUNKED)
        status = check_chunks(op, f, path, d, dcpl);
done:
    if (dcpl >= 0)
        H5Pclose(dcpl);
    return status;
}

/* Checks the chunk index of a chunked dataset read from a file before libhdf5 reads through it: libhdf5 1.10
 * trusts each chunk's address and size (a fuzzer-found file with a chunk at address 0 and chunks of size 0
 * overflowed a heap buffer in H5Dread). Every chunk must lie inside the file, be non-empty, sit on the chunk
 * grid inside the dataset, and (without filters) hold exactly one chunk's bytes. Once per dataset and open
 * file. H5Dget_chunk_info walks the index from its start for each chunk (quadratic in libhdf5 1.10: 20000
 * chunks take 2 s, and by coordinate is slower still), so a dataset of more than CHUNKS_CHECKED_MAX chunks
 * is checked by walking its grid with H5Dget_chunk_storage_size, one index lookup per cell (200000 chunks in
 * 36 ms): every stored chunk's size (recorded only for filtered data: libhdf5 reads an unfiltered chunk as one
 * chunk's bytes whatever its index says), and their count against the index's. Addresses are not available
 * that way; a chunk address past the end of the file still fails when read (the file driver, h5_vfd.c, refuses
 * reads past the end). Grids of more than GRID_WALK_MAX cells (sparse giants) keep the count check alone. */
#define CHUNKS_CHECKED_MAX 8192
#define GRID_WALK_MAX ((uint64_t)1 << 24)

/* The grid walk of check_chunks for large datasets: each cell's stored size (0: not stored) */
static enum rt_status check_chunk_grid(const char *op, struct rt_h5 *f, const char *path, hid_t d, int rank,
                                       const hsize_t *dims, const hsize_t *cdims, uint64_t fsize, hsize_t n)
{
    hsize_t off[H5S_MAX_RANK] = {0};
    uint64_t stored = 0;
    for (int k = 0; k < rank; k++)
        if (dims[k] == 0)
            return RT_OK; /* an empty grid: the count check already held n to 0 */
    for (;;) {
        hsize_t size = 0;
        if (H5Dget_chunk_storage_size(d, off, &size) < 0)
            return h5_error(RT_ERR_FORMAT, "%s: %s: file is corrupt: cannot read the chunk index of %s", op, f->path,
                            path);
        if (size != 0) {
            if (size > fsize) {
                char at[24 * H5S_MAX_RANK] = "", *w = at;
                for (int k = 0; k < rank; k++)
                    w += snprintf(w, sizeof at - (size_t)(w - at), "%s%llu", k ? "," : "", (unsigned long long)off[k]);
                return h5_error(RT_ERR_FORMAT, "%s: %s: file is corrupt: the chunk of %s at (%s) has %llu bytes, more than "
                                "the file", op, f->path, path, at, (unsigned long long)size);
            }
            stored++;
        }
        int k = rank - 1; /* the next cell, last dimension fastest */
        while (k >= 0 && (off[k] += cdims[k]) >= dims[k])
            off[k--] = 0;
        if (k < 0)
            break;
    }
    if (stored != n)
        return h5_error(RT_ERR_FORMAT, "%s: %s: file is corrupt: the chunk index of %s counts %llu chunks, its grid holds %llu",
                        op, f->path, path, (unsigned long long)n, (unsigned long long)stored);
    return RT_OK;
}

static enum rt_status check_chunks(const char *op, struct rt_h5 *f, const char *path, hid_t d, hid_t dcpl)
{
    enum rt_status status = RT_OK;
    hid_t space = -1, type = -1;
    if (f->created)
        return RT_OK;
    H5O_info_t oi;
    if (H5Oget_info2(d, &oi, H5O_INFO_BASIC) < 0)
        H5_CORRUPT(op, "cannot read the header of %s", path);
    for (size_t i = 0; i < f->nchunks_ok; i++)
        if (f->chunks_ok[i] == (uint64_t)oi.addr)
            return RT_OK;
    hsize_t cdims[H5S_MAX_RANK], dims[H5S_MAX_RANK], off[H5S_MAX_RANK];
    int crank = H5Pget_chunk(dcpl, H5S_MAX_RANK, cdims);
    space = H5Dget_space(d);
    type = H5Dget_type(d);
    int rank = space >= 0 ? H5Sget_simple_extent_dims(space, dims, NULL) : -1;
    size_t esize = type >= 0 ? H5Tget_size(type) : 0;
    int nfilters = H5Pget_nfilters(dcpl);
    if (crank < 0 || rank < 0 || crank != rank || esize == 0 || nfilters < 0)
        H5_CORRUPT(op, "cannot read the chunk layout of %s", path);
    uint64_t cbytes = esize, cells = 1;
    bool cbytes_ok = true, cells_ok = true;
    for (int k = 0; k < rank; k++) {
        if (cdims[k] == 0)
            H5_CORRUPT(op, "%s has a chunk dimension of 0", path);
        uint64_t g = dims[k] / cdims[k] + (dims[k] % cdims[k] != 0);
        if (cbytes > UINT64_MAX / cdims[k])
            cbytes_ok = false;
        else
            cbytes *= cdims[k];
        if (g != 0 && cells > UINT64_MAX / g)
            cells_ok = false;
        else
            cells *= g;
    }
    hsize_t n = 0;
    if (H5Dget_num_chunks(d, space, &n) < 0)
        H5_CORRUPT(op, "cannot read the chunk index of %s", path);
    if (cells_ok && n > cells) {
        status = h5_error(RT_ERR_FORMAT, "%s: %s: file is corrupt: %s has %llu chunks on a grid of %llu", op, f->path,
                          path, (unsigned long long)n, (unsigned long long)cells);
        goto done;
    }
    uint64_t fsize = (uint64_t)f->size;
    struct stat sb;
    if (f->writable) { /* chunks written since the file was opened: on disk after a flush */
        if (H5Fflush(f->file, H5F_SCOPE_LOCAL) < 0)
            H5Eclear2(H5E_DEFAULT);
        if (stat(f->path, &sb) == 0)
            fsize = (uint64_t)sb.st_size;
    }
    if (n > CHUNKS_CHECKED_MAX && cells_ok && cells <= GRID_WALK_MAX &&
        (status = check_chunk_grid(op, f, path, d, rank, dims, cdims, fsize, n)) != RT_OK)
        goto done;
    for (hsize_t i = 0; i < n && n <= CHUNKS_CHECKED_MAX; i++) {
        unsigned mask = 0;
        haddr_t addr = HADDR_UNDEF;
        hsize_t size = 0;
        if (H5Dget_chunk_info(d, space, i, off, &mask, &addr, &size) < 0)
            H5_CORRUPT(op, "cannot read chunk %llu of %s", (unsigned long long)i, path);
        const char *bad = NULL;
        if (addr == HADDR_UNDEF || addr == 0 || addr >= fsize || size > fsize - addr)
            bad = "lies outside the file";
        else if (size == 0)
            bad = "is empty";
        else if (nfilters == 0 && cbytes_ok && size != cbytes)
            bad = "is not the size of a chunk (the dataset has no filters)";
        for (int k = 0; !bad && k < rank; k++)
            if (off[k] % cdims[k] != 0 || off[k] >= dims[k])
                bad = "is not on the dataset's chunk grid";
        if (bad) {
            status = h5_error(RT_ERR_FORMAT,
                              "%s: %s: file is corrupt: chunk %llu of %s (%llu bytes at address %llu) %s", op,
                              f->path, (unsigned long long)i, path, (unsigned long long)size,
                              (unsigned long long)addr, bad);
            goto done;
        }
    }
    if (f->nchunks_ok == f->chunks_ok_cap) { /* out of memory: not cached, checked again next time */
        size_t cap = f->chunks_ok_cap ? 2 * f->chunks_ok_cap : 8;
        uint64_t *c = realloc(f->chunks_ok, cap * sizeof *c);
        if (!c)
            goto done;
        f->chunks_ok = c;
        f->chunks_ok_cap = cap;
    }
    f->chunks_ok[f->nchunks_ok++] = (uint64_t)oi.addr;
done:
    if (space >= 0)
        H5Sclose(space);
    if (type >= 0)
        H5Tclose(type);
    H5Eclear2(H5E_DEFAULT);
    return status;
}

/* Opens dataset path; for_data also checks that its data can be read or written (check_storage). */
static enum rt_status open_dataset(const char *op, struct rt_h5 *f, const char *path, bool for_data, hid_t *d)
{
    enum rt_status status = check_file(op, f, path, false);
    *d = -1;
    if (status != RT_OK)
        return status;
    if ((status = open_kind(op, f, path, RT_H5_DATASET, d)) != RT_OK)
        return status;
    if (for_data && (status = check_storage(op, f, path, *d)) != RT_OK) {
        H5Dclose(*d);
        *d = -1;
    }
    return status;
}

/* Chunked data may be compressed: deflate, the strongest filter libhdf5 has, shrinks at most 1032 times
 * (and chunks never written read as zeros), so a read may ask for this many times the file's bytes. */
#define CHUNKED_MAX_RATIO 1100

/* Refuses to allocate memory for a read of nelems elements that the file cannot hold (a damaged or forged
 * shape): compact or contiguous data must fit in the file, chunked data in CHUNKED_MAX_RATIO times it (plus
 * 1 MiB). nelems comes from a shape that passed rt__check_shape (no overflow below). */
static enum rt_status check_fits(const char *op, struct rt_h5 *f, const char *path, hid_t d, int64_t nelems)
{
    if (f->created || f->writable || f->size <= 0)
        return RT_OK;
    hid_t dcpl = H5Dget_create_plist(d), type = H5Dget_type(d);
    H5D_layout_t lay = dcpl >= 0 ? H5Pget_layout(dcpl) : H5D_LAYOUT_ERROR;
    int64_t nbytes = nelems * (int64_t)(type >= 0 ? H5Tget_size(type) : 1);
    if (dcpl >= 0)
        H5Pclose(dcpl);
    if (type >= 0)
        H5Tclose(type);
    H5Eclear2(H5E_DEFAULT);
    if ((lay == H5D_CONTIGUOUS || lay == H5D_COMPACT) && nbytes > f->size)
        return h5_error(RT_ERR_FORMAT, "%s: %s: file is corrupt: %s claims %lld bytes of data but the file has %lld",
                        op, f->path, path, (long long)nbytes, (long long)f->size);
    if (lay == H5D_CHUNKED && f->size < (INT64_MAX >> 12) && nbytes > f->size * CHUNKED_MAX_RATIO + (1 << 20))
        return h5_error(RT_ERR_FORMAT,
                        "%s: %s: file is corrupt: %s claims %lld bytes of data, more than %d times the file's %lld "
                        "bytes could hold even compressed",
                        op, f->path, path, (long long)nbytes, CHUNKED_MAX_RATIO, (long long)f->size);
    return RT_OK;
}

enum rt_status rt_h5_dataset_info(struct rt_h5 *f, const char *path, enum rt_dtype *dt, int *ndim, int64_t *shape)
{
    quiet();
    hid_t d;
    bool e8;
    enum rt_status status = open_dataset("rt_h5_dataset_info", f, path, false, &d);
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
    enum rt_status status = open_dataset(op, f, path, false, &d);
    if (status != RT_OK)
        goto done;
    dcpl = H5Dget_create_plist(d);
    type = H5Dget_type(d);
    space = H5Dget_space(d);
    if (dcpl < 0 || type < 0 || space < 0)
        H5_CORRUPT(op, "cannot read the properties of %s", path);
    type_name(type, out->type, sizeof out->type);
    int nd = H5Sget_simple_extent_ndims(space);
    if (nd < 0)
        H5_CORRUPT(op, "cannot read the shape of %s", path);
    if (nd > RT_MAX_DIMS) {
        status = h5_error(RT_ERR_SHAPE, "%s: %s in %s has %d dims (at most %d)", op, path, f->path, nd, RT_MAX_DIMS);
        goto done;
    }
    hsize_t dims[RT_MAX_DIMS];
    if (H5Sget_simple_extent_dims(space, dims, NULL) < 0)
        H5_CORRUPT(op, "cannot read the shape of %s", path);
    out->ndim = nd;
    for (int i = 0; i < nd; i++) {
        if (dims[i] > (hsize_t)INT64_MAX) {
            status = h5_error(RT_ERR_FORMAT, "%s: %s: file is corrupt: %s has a size of %llu in dim %d", op, f->path,
                              path, (unsigned long long)dims[i], i + 1);
            goto done;
        }
        out->shape[i] = (int64_t)dims[i];
    }
    int ext = H5Pget_external_count(dcpl);
    if (ext < 0)
        H5_CORRUPT(op, "cannot read the storage of %s", path);
    out->external = ext;
    H5D_layout_t lay = H5Pget_layout(dcpl);
    out->layout = lay == H5D_CONTIGUOUS ? RT_H5_LAYOUT_CONTIGUOUS : lay == H5D_CHUNKED ? RT_H5_LAYOUT_CHUNKED
                : lay == H5D_COMPACT ? RT_H5_LAYOUT_COMPACT : lay == H5D_VIRTUAL ? RT_H5_LAYOUT_VIRTUAL
                : RT_H5_LAYOUT_OTHER;
    if (out->layout == RT_H5_LAYOUT_CHUNKED) {
        hsize_t chunk[H5S_MAX_RANK];
        int cn = H5Pget_chunk(dcpl, H5S_MAX_RANK, chunk);
        if (cn < 0 || cn > RT_MAX_DIMS)
            H5_CORRUPT(op, "cannot read the chunk shape of %s", path);
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
        return h5_error(RT_ERR_ARG, "rt_h5_dataset_create: %s needs at least 1 dim", path);
    if ((unsigned)dt >= RT_DTYPE_COUNT)
        return h5_error(RT_ERR_ARG, "rt_h5_dataset_create: bad dtype %d", (int)dt);
    status = create_dataset("rt_h5_dataset_create", f, path, dt, ndim, shape, true, chunk, &d);
    if (d >= 0)
        H5Dclose(d);
    if (status == RT_OK)
        status = write_error("rt_h5_dataset_create", f);
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
        return h5_error(RT_ERR_SHAPE, "%s: %s %s in %s has no rows after %d leading index(es)", op, path,
                        rt_shape_str(ndim, shape, b, sizeof b), f->path, nlead);
    for (int i = 0; i < nlead; i++)
        if (lead[i] < 0 || lead[i] >= shape[i])
            return h5_error(RT_ERR_ARG, "%s: index %lld of dim %d out of range for %s %s in %s", op,
                            (long long)lead[i] + 1, i + 1, path, rt_shape_str(ndim, shape, b, sizeof b), f->path);
    int rdim = ndim - nlead; /* the block's dims: rows, then the trailing dims */
    const int64_t *rshape = shape + nlead;
    if (t) {
        bool ok = t->ndim == rdim;
        for (int i = 1; ok && i < rdim; i++)
            ok = t->shape[i] == rshape[i];
        if (!ok)
            return h5_error(RT_ERR_SHAPE, "%s: rows of shape %s do not fit %s %s in %s", op,
                            rt_shape_str(t->ndim, t->shape, a, sizeof a), path, rt_shape_str(ndim, shape, b, sizeof b),
                            f->path);
    }
    if (row < 0 || count < 0 || row > rshape[0] || count > rshape[0] - row) /* (row + count could overflow) */
        return h5_error(RT_ERR_ARG, "%s: %lld rows from row %llu are out of range for %s %s in %s", op,
                        (long long)count, row < 0 ? 0ull : (unsigned long long)row + 1, path,
                        rt_shape_str(ndim, shape, b, sizeof b), f->path);
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
        H5_CORRUPT(op, "cannot select rows of %s", path);
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
        return h5_error(RT_ERR_ARG, "rt_h5_write_rows: need a tensor with at least 1 dim for %s", path);
    if (nlead < 0 || nlead >= RT_MAX_DIMS || (nlead > 0 && !lead))
        return h5_error(RT_ERR_ARG, "rt_h5_write_rows: bad leading indices (%d) for %s", nlead, path);
    if ((status = open_dataset("rt_h5_write_rows", f, path, true, &d)) != RT_OK)
        goto done;
    if ((status = select_rows("rt_h5_write_rows", f, path, d, nlead, lead, row, t->shape[0], t, &fs, &ms, &ndim, shape)) != RT_OK)
        goto done;
    if (t->shape[0] > 0) {
        if ((status = host_data("rt_h5_write_rows", t, &data, &owned)) != RT_OK)
            goto done;
        if (H5Dwrite(d, mem_type(t->dtype), ms, fs, H5P_DEFAULT, data) < 0 &&
            (status = write_error("rt_h5_write_rows", f)) == RT_OK)
            H5_FAIL(RT_ERR_IO, "rt_h5_write_rows: cannot write rows of %s to %s", path, f->path);
    }
    status = write_error("rt_h5_write_rows", f);
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
        return h5_error(RT_ERR_ARG, "%s: bad leading indices (%d) for %s", op, nlead, path);
    enum rt_status status = open_dataset(op, f, path, true, &d);
    if (status != RT_OK)
        goto done;
    if ((status = dataset_geometry(op, f, path, d, &dt, &ndim, shape, &e8)) != RT_OK)
        goto done;
    if (rows && (status = select_rows(op, f, path, d, nlead, lead, row, count, NULL, &fs, &ms, &ndim, shape)) != RT_OK)
        goto done;
    if ((status = check_fits(op, f, path, d, rt__numel(ndim, shape))) != RT_OK)
        goto done;
    if ((status = rt_tensor_empty(dt, RT_CPU, ndim, shape, &t)) != RT_OK)
        goto done;
    if (rt_tensor_numel(t) > 0) {
        mt = e8 ? H5Dget_type(d) : H5Tcopy(mem_type(dt));
        if (mt < 0 || H5Dread(d, mt, rows ? ms : H5S_ALL, rows ? fs : H5S_ALL, H5P_DEFAULT, rt_tensor_data(t)) < 0) {
            status = read_failed(op, f, path, d);
            goto done;
        }
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
        return h5_error(RT_ERR_ARG, "%s: bad arguments for %s", op, path);
    enum rt_status status = open_dataset(op, f, path, true, &d);
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
    int64_t nrows = shape[nlead], row_elems = 1; /* (the shape passed rt__check_shape: no overflow) */
    for (int i = 1; i < rdim; i++)
        row_elems *= rshape[i];
    if ((uint64_t)n > SIZE_MAX / sizeof *rp)
        H5_FAIL(RT_ERR_OOM, "%s: out of memory", op);
    rp = malloc((size_t)(n > 0 ? n : 1) * sizeof *rp);
    if (!rp)
        H5_FAIL(RT_ERR_OOM, "%s: out of memory", op);
    for (int64_t k = 0; k < n; k++) {
        if (idx[k] < 0 || idx[k] >= nrows)
            H5_FAIL(RT_ERR_ARG, "%s: row %s%llu out of range for %s with %lld rows in %s", op, idx[k] < 0 ? "-" : "",
                    idx[k] < 0 ? 0ull - (unsigned long long)idx[k] : (unsigned long long)idx[k] + 1, path,
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
    if ((status = check_fits(op, f, path, d, u * row_elems)) != RT_OK)
        goto done;
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
            H5_CORRUPT(op, "cannot read %s", path);
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
                H5_CORRUPT(op, "cannot select rows of %s", path);
            rows += runs[r].pos;
            int64_t last_band = (runs[r].row + runs[r].pos - 1) / band;
            if (r < nruns - 1 && runs[r + 1].row / band == last_band)
                continue; /* the next run shares a chunk with this group */
            mdims[0] = (hsize_t)rows;
            ms = H5Screate_simple(rdim, mdims, NULL);
            if (ms < 0 || H5Dread(d, mt, ms, fs, H5P_DEFAULT, dst + (size_t)at * row_bytes) < 0) {
                status = read_failed(op, f, path, d);
                goto done;
            }
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

/* Opens the object at path for its attributes. In a file this process did not write, the attribute
 * messages of the object's header are verified first (h5_verify.c): libhdf5 trusts their sizes, and the
 * global heap behind variable-length strings, without checks, and crashes on damaged ones. */
static enum rt_status open_object(const char *op, struct rt_h5 *f, const char *path, bool write, hid_t *o,
                                  bool *dense)
{
    enum rt_status status = check_file(op, f, path, write);
    *o = -1;
    *dense = false;
    if (status != RT_OK)
        return status;
    if ((status = open_kind(op, f, path, RT_H5_MISSING, o)) != RT_OK)
        return status;
    if (!f->created) {
        if (f->writable && H5Fflush(f->file, H5F_SCOPE_LOCAL) < 0) /* the verifier reads the file itself */
            H5Eclear2(H5E_DEFAULT);
        char why[400];
        int v = rt__h5_verify_attributes(f->file, *o, f->path, dense, why, sizeof why);
        if (v != RT__H5_VERIFIED) {
            H5Oclose(*o);
            *o = -1;
            if (v == RT__H5_UNSUPPORTED)
                return h5_error(RT_ERR_FORMAT, "%s: cannot read the attributes of %s in %s: %s", op, path, f->path, why);
            return h5_error(RT_ERR_FORMAT, "%s: %s: file is corrupt: the attributes of %s cannot be read (%s)", op,
                            f->path, path, why);
        }
    }
    return RT_OK;
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

/* A fixed-length UTF-8 string type of n bytes (at least 1), padded with zero bytes: fixed-length strings
 * are stored in the attribute itself, under its header's checksum (variable-length ones would live in the
 * global heap, which has none). h5py reads them as bytes. */
static hid_t fixed_string_type(size_t n)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t >= 0 && (H5Tset_size(t, n ? n : 1) < 0 || H5Tset_strpad(t, H5T_STR_NULLPAD) < 0 ||
                   H5Tset_cset(t, H5T_CSET_UTF8) < 0)) {
        H5Tclose(t);
        return -1;
    }
    return t;
}

/* Writes one attribute of file type ftype from memory type mtype: a scalar (n == 0) or a 1-D array of n. */
static enum rt_status attr_set(const char *op, struct rt_h5 *f, const char *path, const char *name, hid_t ftype,
                               hid_t mtype, const void *value, size_t n)
{
    hid_t o = -1, space = -1, a = -1, acpl = -1;
    enum rt_status status;
    bool dense;
    if (!name || !name[0])
        return h5_error(RT_ERR_ARG, "%s: empty attribute name", op);
    if ((status = open_object(op, f, path, true, &o, &dense)) != RT_OK)
        goto done;
    htri_t ex = H5Aexists(o, name);
    if (ex > 0 && H5Adelete(o, name) < 0)
        H5_FAIL(RT_ERR_IO, "%s: cannot replace attribute %s of %s in %s", op, name, path, f->path);
    hsize_t dims[1] = {(hsize_t)n};
    space = n ? H5Screate_simple(1, dims, NULL) : H5Screate(H5S_SCALAR);
    acpl = H5Pcreate(H5P_ATTRIBUTE_CREATE);
    if (ftype < 0 || mtype < 0 || space < 0 || acpl < 0 || H5Pset_char_encoding(acpl, H5T_CSET_UTF8) < 0)
        H5_FAIL(RT_ERR_INTERNAL, "%s: cannot make the type of attribute %s", op, name);
    a = H5Acreate2(o, name, ftype, space, acpl, H5P_DEFAULT);
    if (a < 0 || H5Awrite(a, mtype, value) < 0)
        H5_FAIL(RT_ERR_IO, "%s: cannot write attribute %s of %s in %s", op, name, path, f->path);
    status = write_error(op, f);
done:
    if (a >= 0)
        H5Aclose(a);
    if (acpl >= 0)
        H5Pclose(acpl);
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
        return h5_error(RT_ERR_ARG, "rt_h5_attr_set_string: NULL value for %s", name ? name : "(null)");
    size_t len = strlen(v);
    if (len > ATTR_MAX_STRING)
        return h5_error(RT_ERR_ARG, "rt_h5_attr_set_string: the value of %s has %zu bytes (at most %d)",
                        name ? name : "(null)", len, ATTR_MAX_STRING);
    hid_t t = fixed_string_type(len);
    enum rt_status st = attr_set("rt_h5_attr_set_string", f, path, name, t, t, len ? v : "", 0);
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
        return h5_error(RT_ERR_ARG, "rt_h5_attr_set_int64_array: %s needs at least one value", name ? name : "(null)");
    if (n > ATTR_MAX_ARRAY)
        return h5_error(RT_ERR_ARG, "rt_h5_attr_set_int64_array: %s has %zu values (at most %d)", name ? name : "(null)",
                        n, ATTR_MAX_ARRAY);
    return attr_set("rt_h5_attr_set_int64_array", f, path, name, H5T_STD_I64LE, H5T_NATIVE_INT64, v, n);
}

/* An integer type retort reads: 1, 2, 4 or 8 bytes, every bit used. */
static bool plain_integer(hid_t type)
{
    size_t size = H5Tget_size(type);
    return (size == 1 || size == 2 || size == 4 || size == 8) && H5Tget_precision(type) == 8 * size &&
           H5Tget_offset(type) == 0;
}

/* A float type retort reads: IEEE binary32 or binary64, either byte order. */
static bool plain_float(hid_t type)
{
    size_t size = H5Tget_size(type), spos, epos, esize, mpos, msize;
    if ((size != 4 && size != 8) || H5Tget_precision(type) != 8 * size || H5Tget_offset(type) != 0 ||
        H5Tget_fields(type, &spos, &epos, &esize, &mpos, &msize) < 0)
        return false;
    return size == 4 ? spos == 31 && epos == 23 && esize == 8 && mpos == 0 && msize == 23
                     : spos == 63 && epos == 52 && esize == 11 && mpos == 0 && msize == 52;
}

/* What kind of value attribute a is, from its type class, size and dataspace; RT_H5_ATTR_OTHER for anything
 * retort does not read (compound, opaque, references, arrays of other types, null or huge dataspaces,
 * exotic number formats, and values whose stored size disagrees with their type). */
static enum rt_h5_attr_type classify(hid_t a)
{
    hid_t type = H5Aget_type(a), space = H5Aget_space(a);
    enum rt_h5_attr_type r = RT_H5_ATTR_OTHER;
    if (type < 0 || space < 0)
        goto done;
    H5S_class_t sc = H5Sget_simple_extent_type(space);
    int ndims = H5Sget_simple_extent_ndims(space);
    hssize_t npoints = H5Sget_simple_extent_npoints(space);
    H5T_class_t cls = H5Tget_class(type);
    size_t size = H5Tget_size(type);
    htri_t vlen = cls == H5T_STRING ? H5Tis_variable_str(type) : 0;
    if ((sc != H5S_SCALAR && sc != H5S_SIMPLE) || npoints < 0 || size == 0 || vlen < 0)
        goto done;
    /* the bytes stored must be what the type and dataspace say (a variable-length string stores heap ids) */
    if (!vlen && (uint64_t)npoints > (uint64_t)INT64_MAX / size)
        goto done;
    if (!vlen && H5Aget_storage_size(a) != (hsize_t)npoints * size)
        goto done;
    if (sc == H5S_SIMPLE && ndims == 1 && cls == H5T_INTEGER && plain_integer(type) && npoints <= ATTR_MAX_ARRAY)
        r = RT_H5_ATTR_INT64_ARRAY;
    else if (npoints == 1) {
        if (cls == H5T_INTEGER && plain_integer(type))
            r = RT_H5_ATTR_INT64;
        else if (cls == H5T_FLOAT && plain_float(type))
            r = RT_H5_ATTR_DOUBLE;
        else if (cls == H5T_STRING && (vlen || size <= ATTR_MAX_STRING))
            r = RT_H5_ATTR_STRING;
        else if (cls == H5T_ENUM && size == 1 && H5Tget_nmembers(type) == 2)
            r = RT_H5_ATTR_BOOL;
    }
done:
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

/* Reads a string attribute into a new malloc'ed, zero-terminated string (*s; NULL when out of memory). */
static herr_t read_string(hid_t a, char **s)
{
    herr_t r = -1;
    hid_t type = H5Aget_type(a), mt = -1;
    *s = NULL;
    if (type < 0)
        goto done;
    if (H5Tis_variable_str(type) > 0) { /* verified by h5_verify.c when the object was opened */
        char *p = NULL;
        mt = H5Tcopy(type); /* same cset (ASCII or UTF-8): no conversion needed */
        if (mt < 0 || (r = H5Aread(a, mt, &p)) < 0)
            goto done;
        *s = strdup(p ? p : "");
        H5free_memory(p);
    } else {
        size_t n = H5Tget_size(type); /* 1..ATTR_MAX_STRING (classify) */
        *s = calloc(n + 1, 1);
        if (!*s) {
            r = 0;
            goto done;
        }
        if ((r = H5Aread(a, type, *s)) < 0)
            goto done;
        if (H5Tget_strpad(type) == H5T_STR_SPACEPAD) /* Fortran's padding */
            for (size_t k = strlen(*s); k > 0 && (*s)[k - 1] == ' '; k--)
                (*s)[k - 1] = '\0';
    }
done:
    if (r < 0) {
        free(*s);
        *s = NULL;
    }
    if (mt >= 0)
        H5Tclose(mt);
    if (type >= 0)
        H5Tclose(type);
    return r;
}

enum rt_status rt_h5_attr_get(struct rt_h5 *f, const char *path, const char *name, struct rt_h5_attr *out)
{
    static const char *op = "rt_h5_attr_get";
    quiet();
    hid_t o = -1, a = -1, type = -1;
    enum rt_status status;
    bool dense;
    memset(out, 0, sizeof *out);
    if ((status = open_object(op, f, path, false, &o, &dense)) != RT_OK)
        goto done;
    if (!name || H5Aexists(o, name) <= 0) {
        H5Eclear2(H5E_DEFAULT);
        status = h5_error(RT_ERR_ARG, "%s: attribute %s of %s not found in %s", op, name ? name : "(null)", path,
                          f->path);
        goto done;
    }
    a = H5Aopen(o, name, H5P_DEFAULT);
    if (a < 0)
        H5_CORRUPT(op, "cannot open attribute %s of %s", name, path);
    out->type = classify(a);
    herr_t r = 0;
    switch (out->type) {
    case RT_H5_ATTR_INT64: r = H5Aread(a, H5T_NATIVE_INT64, &out->i); break;
    case RT_H5_ATTR_INT64_ARRAY: {
        hid_t space = H5Aget_space(a);
        hssize_t n = space < 0 ? -1 : H5Sget_simple_extent_npoints(space); /* 0..ATTR_MAX_ARRAY (classify) */
        if (space >= 0)
            H5Sclose(space);
        if (n < 0) {
            r = -1;
            break;
        }
        out->n = (size_t)n;
        out->iv = malloc((n ? (size_t)n : 1) * sizeof *out->iv);
        if (!out->iv) {
            status = h5_error(RT_ERR_OOM, "%s: out of memory", op);
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
    case RT_H5_ATTR_STRING:
        type = H5Aget_type(a);
        if (type >= 0 && dense && H5Tis_variable_str(type) > 0) {
            status = h5_error(RT_ERR_FORMAT,
                              "%s: attribute %s of %s in %s is a variable-length string kept where retort cannot check "
                              "it (dense attribute storage); write it as a fixed-length string",
                              op, name, path, f->path);
            goto done;
        }
        r = read_string(a, &out->s);
        if (r >= 0 && !out->s) {
            status = h5_error(RT_ERR_OOM, "%s: out of memory", op);
            goto done;
        }
        break;
    default:
        status = h5_error(RT_ERR_DTYPE,
                          "%s: attribute %s of %s in %s is not a scalar number, bool, string or 1-D integer array", op,
                          name, path, f->path);
        goto done;
    }
    if (r < 0)
        H5_CORRUPT(op, "cannot read attribute %s of %s", name, path);
done:
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
    (void)info;
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
    H5Eclear2(H5E_DEFAULT);
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
    bool dense;
    enum rt_status status = open_object("rt_h5_attr_list", f, path, false, &o, &dense);
    if (status != RT_OK)
        goto done;
    hsize_t idx = 0;
    if (H5Aiterate2(o, H5_INDEX_NAME, H5_ITER_INC, &idx, attr_cb, &acc) < 0 && !acc.oom)
        H5_CORRUPT("rt_h5_attr_list", "cannot list the attributes of %s", path);
    if (acc.oom)
        status = h5_error(RT_ERR_OOM, "rt_h5_attr_list: out of memory");
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
