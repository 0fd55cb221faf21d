/* What every fuzz target shares: the input written to a per-process temporary file (the readers
 * take paths), checks that turn a broken promise into a crash libFuzzer reports, and the leak
 * check between inputs.
 *
 * Choices:
 * - The file lives in /dev/shm when it is writable (no disk I/O per execution), else in $TMPDIR or
 *   /tmp. Its name holds the pid, so parallel fuzzers (-jobs, -workers) never share one. Each input
 *   unlinks the old file and creates a new one: a new inode, so no library (HDF5's open-file table)
 *   can mistake it for the previous input's file.
 * - FUZZ_CHECK aborts with a message: libFuzzer reports it as a crash and saves the input. It is
 *   used for the promises of the readers (a refusal says why and names the file; what is read
 *   equals the bytes of the file; nothing is left alive), not for what the input may legitimately
 *   be.
 * - Leaks: LeakSanitizer (libFuzzer's -detect_leaks=1) finds memory nobody points to; tensors or
 *   HDF5 objects still held somewhere are reachable and invisible to it, so fuzz_expect_released
 *   also compares the live tensor count, the CPU bytes in use and the open HDF5 objects with their
 *   values before the input. */
#ifndef RETORT_FUZZ_COMMON_H
#define RETORT_FUZZ_COMMON_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "retort/data.h"
#include "retort/h5.h"
#include "retort/retort.h"

#define FUZZ_CHECK(cond, ...)                                                                                          \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            fprintf(stderr, "fuzz check failed (%s:%d): %s: ", __FILE__, __LINE__, #cond);                             \
            fprintf(stderr, __VA_ARGS__);                                                                              \
            fprintf(stderr, "\n");                                                                                     \
            abort();                                                                                                   \
        }                                                                                                              \
    } while (0)

static char fuzz_path_buf[4096];

static inline void fuzz_remove_file(void)
{
    if (fuzz_path_buf[0])
        unlink(fuzz_path_buf);
}

/* The per-process file the inputs are written to ("<dir>/retort-fuzz-<tag>-<pid><ext>"). */
static inline const char *fuzz_file_path(const char *tag, const char *ext)
{
    if (!fuzz_path_buf[0]) {
        const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
        if (!dir || !*dir)
            dir = "/tmp";
        int n = snprintf(fuzz_path_buf, sizeof fuzz_path_buf, "%s/retort-fuzz-%s-%ld%s", dir, tag, (long)getpid(),
                         ext);
        FUZZ_CHECK(n > 0 && (size_t)n < sizeof fuzz_path_buf, "temporary path too long");
        atexit(fuzz_remove_file);
    }
    return fuzz_path_buf;
}

/* Writes the input to the per-process file (a new inode each time) and returns its path. */
static inline const char *fuzz_write_input(const char *tag, const char *ext, const uint8_t *data, size_t size)
{
    const char *path = fuzz_file_path(tag, ext);
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FUZZ_CHECK(fd >= 0, "cannot create %s: %s", path, strerror(errno));
    size_t done = 0;
    while (done < size) {
        ssize_t w = write(fd, data + done, size - done);
        if (w < 0 && errno == EINTR)
            continue;
        FUZZ_CHECK(w > 0, "cannot write %s: %s", path, strerror(errno));
        done += (size_t)w;
    }
    FUZZ_CHECK(close(fd) == 0, "cannot close %s: %s", path, strerror(errno));
    return path;
}

/* A refusal keeps its promise: an error status, a message that names the function, and for a
 * file's content or its reading (FORMAT, DTYPE, IO) the file itself. */
static inline void fuzz_expect_refusal(enum rt_status st, const char *fn, const char *path)
{
    const char *msg = rt_error_msg();
    FUZZ_CHECK(st != RT_OK, "%s: no error", fn);
    FUZZ_CHECK(st != RT_ERR_INTERNAL, "%s: internal error: %s", fn, msg);
    FUZZ_CHECK(msg && msg[0], "%s: status %d without a message", fn, (int)st);
    FUZZ_CHECK(strstr(msg, fn) != NULL, "%s: the message does not name the function: %s", fn, msg);
    if (path && (st == RT_ERR_FORMAT || st == RT_ERR_DTYPE || st == RT_ERR_IO))
        FUZZ_CHECK(strstr(msg, path) != NULL, "%s: the message does not name the file %s: %s", fn, path, msg);
    rt_error_clear();
}

/* FUZZ_SEEDS_VALID=1 (run_bounded.sh, over the seed corpora before fuzzing): every input must be
 * read, not refused. The seeds are valid files written by other implementations (numpy, PIL, h5py)
 * and by retort, so this also checks that retort reads what they write. */
static inline void fuzz_expect_accepted(bool accepted, const char *what, const char *why)
{
    static int mode = -1;
    if (mode < 0)
        mode = getenv("FUZZ_SEEDS_VALID") && strcmp(getenv("FUZZ_SEEDS_VALID"), "1") == 0;
    FUZZ_CHECK(!mode || accepted, "%s refused a seed: %s", what, why ? why : "(no message)");
}

/* What is alive before an input; fuzz_expect_released checks that the input left nothing more. */
struct fuzz_alive {
    int64_t tensors;
    size_t cpu_bytes;
    int64_t h5_objects;
};

static inline struct fuzz_alive fuzz_alive_now(void)
{
    struct fuzz_alive a = {rt_tensor_live_count(), rt_memory_in_use(RT_CPU), rt_h5_open_ids()};
    return a;
}

static inline void fuzz_expect_released(struct fuzz_alive before, const char *what)
{
    struct fuzz_alive now = fuzz_alive_now();
    FUZZ_CHECK(now.tensors == before.tensors, "%s left %lld tensor(s) alive", what,
               (long long)(now.tensors - before.tensors));
    FUZZ_CHECK(now.cpu_bytes == before.cpu_bytes, "%s left %lld bytes of tensor storage held", what,
               (long long)now.cpu_bytes - (long long)before.cpu_bytes);
    FUZZ_CHECK(now.h5_objects == before.h5_objects, "%s left %lld HDF5 object(s) open", what,
               (long long)(now.h5_objects - before.h5_objects));
}

#endif
