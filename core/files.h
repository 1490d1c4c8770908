/* opl core — files as outputs: identity (is an output the same file as an input?), atomic
 * replacement of non-HDF5 outputs (PNG, CSV, text), cleanup of the temporary files of a killed
 * process, and the free space of a file system. HDF5 outputs go through core/io.h, which uses the
 * same temporary name "<path>.tmp.<pid>".
 *
 * Nothing here prints or exits: every function returns a status and fills an opl_err. */
#ifndef OPL_CORE_FILES_H
#define OPL_CORE_FILES_H

#include <stdint.h>
#include <stdio.h>
#include "core/opl.h"

/* 1 if a and b name the same file, 0 if not. Existing files are compared by device and inode,
 * so a hard link or a symbolic link of a file, or another spelling of its name ("./d.h5",
 * "dir/../d.h5"), is the same file. A name that does not exist yet is the same as another one
 * when both name the same entry of the same directory (the directories compared by device and
 * inode, the last components by string); an existing file is never the same as a name that does
 * not exist. NULL or empty names are never the same as anything. */
int opl_same_file(const char *a, const char *b);

/* The temporary name of an output written by process pid: "<path>.tmp.<pid>", into buf[cap].
 * Returns OPL_OK, or OPL_ERR_ARG when it does not fit. */
int opl_tmp_name(const char *path, long pid, char *buf, size_t cap);

/* Remove the temporary files "<path>.tmp.<pid>" (pid: decimal digits only) left beside path by
 * processes that no longer run (kill(pid, 0) fails with ESRCH); temporaries of running
 * processes (and of this one) and every other name in the directory are left alone.
 * *removed (may be NULL) gets the number of files removed. Returns OPL_OK (also when the
 * directory holds none), or OPL_ERR_IO when the directory cannot be read or a stale file cannot
 * be removed (the message names it). */
int opl_tmp_cleanup(const char *path, int *removed, opl_err *err);

/* Bytes available to an unprivileged writer on the file system that holds path, or that would
 * hold it when it does not exist yet (then its directory is asked): statvfs f_bavail x f_frsize.
 * Returns OPL_OK, or OPL_ERR_IO naming the directory. */
int opl_fs_free_bytes(const char *path, uint64_t *bytes, opl_err *err);

/* An output written under its temporary name and renamed into place when complete: a reader
 * never sees a partial file at path, and a failed or abandoned write leaves path as it was. */
typedef struct opl_atomic opl_atomic;

/* Create "<path>.tmp.<pid>" for writing. Returns NULL and fills err on failure (OPL_ERR_ARG for
 * a NULL or empty path, OPL_ERR_IO naming the file and the reason, OPL_ERR_NOMEM). */
opl_atomic *opl_atomic_open(const char *path, opl_err *err);
/* The stream to write to (binary). */
FILE *opl_atomic_stream(opl_atomic *a);
/* The name being written to, "<path>.tmp.<pid>". */
const char *opl_atomic_tmp_path(const opl_atomic *a);
/* Finish: flush, fsync, close and rename onto path, then fsync the directory (best effort).
 * A write error seen on the stream, a failed flush, close or rename: the temporary file is
 * removed, path is untouched, and OPL_ERR_IO names the file and the reason. Frees *a and sets it
 * to NULL in every case. */
int opl_atomic_commit(opl_atomic **a, opl_err *err);
/* Give up: close and remove the temporary file; path is untouched. Frees *a, sets it to NULL;
 * NULL or *a == NULL is a no-op. */
void opl_atomic_abort(opl_atomic **a);

#endif
