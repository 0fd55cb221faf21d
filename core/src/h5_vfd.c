/* The file driver every retort HDF5 file is opened through: HDF5's POSIX driver (sec2) underneath,
 * with one addition, a record of the first write error.
 *
 * Why: libhdf5 1.10 does not reliably report write errors. A chunk that cannot be written when the disk
 * is full is dropped while H5Dwrite and H5Fclose return success (the file then reads back the fill value,
 * zeros, where the data was), and when H5Fclose itself fails (a metadata write hits ENOSPC) the file's
 * identifier is left half-closed and the process crashes at exit in H5_term_library. This driver sees
 * every write: the first one that fails keeps its errno, and every write after it is skipped and reported
 * as done, so that HDF5 finishes closing the file cleanly. rt_h5_close then reports the recorded error
 * ("No space left on device") and removes the temporary file instead of committing it.
 *
 * Otherwise it does what sec2 does (pread/pwrite on one descriptor, the end of allocation kept in memory,
 * reads past the end of the file give zeros, truncate to the end of allocation on close, flock). It is
 * written against POSIX directly rather than on top of sec2 through the public H5FD* functions because
 * every public HDF5 call clears the error stack: a read through H5FDread would erase the reason of a
 * failure ("incorrect metadata checksum") before the caller sees it. Files written through this driver
 * are ordinary HDF5 files (it stores no driver information in the superblock). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "h5_internal.h"

/* The write-error record, shared by the struct rt_h5 that opened the file and the driver's file (each
 * holds a reference), so that it can be read after H5Fclose has closed the driver's file. */
struct rt__h5_record {
    int refs;
    int write_errno; /* 0 until a write or truncate fails */
};

/* What the file access property list carries to g_open (copied by HDF5 as plain bytes). */
struct guard_info {
    struct rt__h5_record *rec;
};

struct guard_file {
    H5FD_t pub; /* must be first: HDF5 sees this */
    int fd;
    haddr_t eoa, eof;
    dev_t dev;
    ino_t ino;
    struct rt__h5_record *rec; /* NULL when opened without one */
    int write_errno;
};

#define MAXADDR ((haddr_t)(((haddr_t)1 << 62) - 1))

struct rt__h5_record *rt__h5_record_new(void)
{
    struct rt__h5_record *r = calloc(1, sizeof *r);
    if (r)
        r->refs = 1;
    return r;
}

void rt__h5_record_release(struct rt__h5_record *r)
{
    if (r && --r->refs == 0)
        free(r);
}

int rt__h5_record_errno(const struct rt__h5_record *r) { return r ? r->write_errno : 0; }

static hid_t guard_id = -1;
static pthread_once_t guard_once = PTHREAD_ONCE_INIT;

static H5FD_t *g_open(const char *name, unsigned flags, hid_t fapl, haddr_t maxaddr)
{
    if (!name || !*name || maxaddr == 0 || maxaddr == HADDR_UNDEF || maxaddr > MAXADDR)
        return NULL;
    int o = (flags & H5F_ACC_RDWR) ? O_RDWR : O_RDONLY;
    if (flags & H5F_ACC_TRUNC)
        o |= O_TRUNC;
    if (flags & H5F_ACC_CREAT)
        o |= O_CREAT;
    if (flags & H5F_ACC_EXCL)
        o |= O_EXCL;
    int fd = open(name, o | O_CLOEXEC, 0666);
    struct stat sb;
    if (fd < 0)
        return NULL;
    if (fstat(fd, &sb) != 0) {
        close(fd);
        return NULL;
    }
    struct guard_file *g = calloc(1, sizeof *g);
    if (!g) {
        close(fd);
        return NULL;
    }
    g->fd = fd;
    g->eof = (haddr_t)sb.st_size;
    g->dev = sb.st_dev;
    g->ino = sb.st_ino;
    const struct guard_info *info = fapl >= 0 ? H5Pget_driver_info(fapl) : NULL;
    if (info && info->rec) {
        g->rec = info->rec;
        g->rec->refs++;
    }
    return &g->pub;
}

static void record(struct guard_file *g, int e)
{
    if (!g->write_errno)
        g->write_errno = e ? e : EIO;
    if (g->rec && !g->rec->write_errno)
        g->rec->write_errno = g->write_errno;
}

static herr_t g_close(H5FD_t *file)
{
    struct guard_file *g = (struct guard_file *)file;
    int r = close(g->fd);
    if (r != 0 && (g->pub.access_flags & H5F_ACC_RDWR))
        record(g, errno); /* (NFS reports some write errors only here) */
    rt__h5_record_release(g->rec);
    free(g);
    return r == 0 ? 0 : -1;
}

static int g_cmp(const H5FD_t *a, const H5FD_t *b)
{
    const struct guard_file *x = (const struct guard_file *)a, *y = (const struct guard_file *)b;
    if (x->dev != y->dev)
        return x->dev < y->dev ? -1 : 1;
    if (x->ino != y->ino)
        return x->ino < y->ino ? -1 : 1;
    return 0;
}

static herr_t g_query(const H5FD_t *file, unsigned long *flags)
{
    (void)file;
    *flags = H5FD_FEAT_AGGREGATE_METADATA | H5FD_FEAT_ACCUMULATE_METADATA | H5FD_FEAT_DATA_SIEVE |
             H5FD_FEAT_AGGREGATE_SMALLDATA | H5FD_FEAT_POSIX_COMPAT_HANDLE | H5FD_FEAT_DEFAULT_VFD_COMPATIBLE;
    return 0;
}

static haddr_t g_get_eoa(const H5FD_t *file, H5FD_mem_t type)
{
    (void)type;
    return ((const struct guard_file *)file)->eoa;
}

static herr_t g_set_eoa(H5FD_t *file, H5FD_mem_t type, haddr_t addr)
{
    (void)type;
    if (addr > MAXADDR)
        return -1;
    ((struct guard_file *)file)->eoa = addr;
    return 0;
}

static haddr_t g_get_eof(const H5FD_t *file, H5FD_mem_t type)
{
    (void)type;
    return ((const struct guard_file *)file)->eof;
}

static herr_t g_get_handle(H5FD_t *file, hid_t fapl, void **handle)
{
    (void)fapl;
    *handle = &((struct guard_file *)file)->fd;
    return 0;
}

/* addr and size inside the allocated space (and no overflow) */
static bool in_eoa(const struct guard_file *g, haddr_t addr, size_t size)
{
    return addr != HADDR_UNDEF && addr <= MAXADDR && (haddr_t)size <= MAXADDR - addr && addr + size <= g->eoa;
}

static herr_t g_read(H5FD_t *file, H5FD_mem_t type, hid_t dxpl, haddr_t addr, size_t size, void *buf)
{
    (void)type, (void)dxpl;
    struct guard_file *g = (struct guard_file *)file;
    if (!in_eoa(g, addr, size))
        return -1;
    unsigned char *p = buf;
    while (size > 0) {
        ssize_t n = pread(g->fd, p, size, (off_t)addr);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0) { /* past the end of the file: zeros, as sec2 gives */
            memset(p, 0, size);
            break;
        }
        p += n;
        addr += (haddr_t)n;
        size -= (size_t)n;
    }
    return 0;
}

/* Writes are skipped (and reported as done) once one has failed: see the header comment. */
static herr_t g_write(H5FD_t *file, H5FD_mem_t type, hid_t dxpl, haddr_t addr, size_t size, const void *buf)
{
    (void)type, (void)dxpl;
    struct guard_file *g = (struct guard_file *)file;
    if (g->write_errno)
        return 0;
    if (!in_eoa(g, addr, size)) {
        record(g, EFBIG);
        return 0;
    }
    const unsigned char *p = buf;
    while (size > 0) {
        ssize_t n = pwrite(g->fd, p, size, (off_t)addr);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            record(g, n < 0 ? errno : ENOSPC);
            return 0;
        }
        p += n;
        addr += (haddr_t)n;
        size -= (size_t)n;
    }
    if (addr > g->eof)
        g->eof = addr;
    return 0;
}

static herr_t g_truncate(H5FD_t *file, hid_t dxpl, hbool_t closing)
{
    (void)dxpl, (void)closing;
    struct guard_file *g = (struct guard_file *)file;
    if (g->write_errno || g->eoa == g->eof)
        return 0;
    if (ftruncate(g->fd, (off_t)g->eoa) != 0) {
        record(g, errno);
        return 0;
    }
    g->eof = g->eoa;
    return 0;
}

static herr_t g_lock(H5FD_t *file, hbool_t rw)
{
    struct guard_file *g = (struct guard_file *)file;
    if (flock(g->fd, (rw ? LOCK_EX : LOCK_SH) | LOCK_NB) != 0 && errno != ENOSYS && errno != ENOTSUP)
        return -1;
    return 0;
}

static herr_t g_unlock(H5FD_t *file)
{
    struct guard_file *g = (struct guard_file *)file;
    if (flock(g->fd, LOCK_UN) != 0 && errno != ENOSYS && errno != ENOTSUP)
        return -1;
    return 0;
}

static const H5FD_class_t guard_class = {
    .name = "retort_guard",
    .maxaddr = MAXADDR,
    .fc_degree = H5F_CLOSE_WEAK,
    .fapl_size = sizeof(struct guard_info),
    .open = g_open,
    .close = g_close,
    .cmp = g_cmp,
    .query = g_query,
    .get_eoa = g_get_eoa,
    .set_eoa = g_set_eoa,
    .get_eof = g_get_eof,
    .get_handle = g_get_handle,
    .read = g_read,
    .write = g_write,
    .truncate = g_truncate,
    .lock = g_lock,
    .unlock = g_unlock,
    .fl_map = H5FD_FLMAP_DICHOTOMY,
};

static void guard_register(void) { guard_id = H5FDregister(&guard_class); }

herr_t rt__h5_guard_fapl(hid_t fapl, struct rt__h5_record *rec)
{
    pthread_once(&guard_once, guard_register);
    if (guard_id < 0)
        return -1;
    struct guard_info info = {rec};
    return H5Pset_driver(fapl, guard_id, &info);
}
