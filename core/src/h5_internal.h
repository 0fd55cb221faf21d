/* Internals of retort's HDF5 layer shared by h5.c (the API), h5_vfd.c (the file driver that records
 * write errors) and h5_verify.c (checks of file structures libhdf5 trusts). Not public API. */
#ifndef RETORT_H5_INTERNAL_H
#define RETORT_H5_INTERNAL_H

#include <hdf5.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The write-error record of one file (h5_vfd.c): refcounted, shared with the driver. */
struct rt__h5_record;
struct rt__h5_record *rt__h5_record_new(void); /* NULL when out of memory */
void rt__h5_record_release(struct rt__h5_record *r);
/* The errno of the first write, flush or truncate of the file that failed; 0 while none has. */
int rt__h5_record_errno(const struct rt__h5_record *r);
/* Makes fapl open files through the guard driver (sec2 underneath), recording write errors in rec. */
herr_t rt__h5_guard_fapl(hid_t fapl, struct rt__h5_record *rec);

/* Checks the attribute messages of obj's object header, and the global heap objects behind its
 * variable-length strings, before libhdf5 decodes them (h5_verify.c), reading the file's bytes through the
 * descriptor libhdf5 uses (path, the file's name, when there is none). RT__H5_DAMAGED (with a reason in why) when something would make libhdf5 read out of bounds or
 * loop, RT__H5_UNSUPPORTED for valid structures it cannot check (shared messages in a header without
 * checksums). *dense: some attributes are in dense storage, which is not checked (their variable-length
 * strings must not be read). */
enum { RT__H5_VERIFIED = 0, RT__H5_DAMAGED, RT__H5_UNSUPPORTED };
int rt__h5_verify_attributes(hid_t file, hid_t obj, const char *path, bool *dense, char *why, size_t why_n);

/* Before libhdf5 loads an object header (h5_verify.c): every chunk of the header at addr lies inside the file
 * (libhdf5 1.10 allocates a chunk's recorded size, gigabytes from a forged field), and an old-format group's
 * B-tree and local heap are in the file with the heap's data segment (libhdf5 copies into a failed
 * allocation). RT__H5_DAMAGED with why; RT__H5_UNSUPPORTED when it cannot be checked. */
int rt__h5_verify_object(hid_t file, const char *path, uint64_t addr, char *why, size_t why_n);
/* The same for the root group of the file at path, found through its superblock, before H5Fopen. */
int rt__h5_verify_root(const char *path, char *why, size_t why_n);

#endif
