/* opl — HDF5 plumbing shared by core/ (tensor I/O, checkpoints) and datasets/ (data set layouts).
 *
 * One copy of what every opl HDF5 file operation needs around the HDF5 calls themselves:
 *  - the process-wide HDF5 lock, HDF5's error printing silenced, the failing call's reason
 *    (opl_io_enter / opl_io_leave / opl_io_lock / opl_h5_why are declared in core/io.h, public;
 *    core/h5.c implements them);
 *  - "<who>: '<file>': <message>" error messages (opl_h5_fail);
 *  - closing HDF5 handles on every path (OPL_H5_CLOSE_*);
 *  - the file property lists opl creates and opens files with (the 512-byte user block that
 *    carries the CRC-32, see core/h5check.c; strong close degree);
 *  - the pre-checks before a file is opened for reading (missing, directory, empty,
 *    unreadable), and the end of an atomic write (checksum stamped and fsynced, rename,
 *    fsync of the directory);
 *  - writing one scalar attribute.
 * Floor 1: core/ includes it, and datasets/ may; it includes <hdf5.h>. Not part of the
 * public API: the names may change with the files that use them.
 */
#ifndef OPL_CORE_H5_H
#define OPL_CORE_H5_H

#include <stddef.h>

#include <hdf5.h>

#include "core/io.h"

#define OPL_H5_USERBLOCK 512   /* bytes reserved at the start of every file opl writes */

/* Run HDF5's library set-up once per process (H5dont_atexit, H5open, the exit-time error
 * silencing, the recursive lock). Every entry point that may be the process's first HDF5 use
 * calls it; opl_io_enter and opl_io_lock do. */
void opl_h5_init(void);

/* Fill err with "<who>: '<file>': <message>" and return status; the message (printf format
 * fmt) is cut at cap - 1 bytes before the prefix is added. file NULL reads "(null)". */
int opl_h5_fail(opl_err *err, int status, const char *who, size_t cap, const char *file, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* Close *id with fn when it is valid, and set it to H5I_INVALID_HID. */
static inline void opl_h5_close_id(hid_t *id, herr_t (*fn)(hid_t)) {
  if (*id >= 0) fn(*id);
  *id = H5I_INVALID_HID;
}
#define OPL_H5_CLOSE_T(x) opl_h5_close_id(&(x), H5Tclose)
#define OPL_H5_CLOSE_S(x) opl_h5_close_id(&(x), H5Sclose)
#define OPL_H5_CLOSE_D(x) opl_h5_close_id(&(x), H5Dclose)
#define OPL_H5_CLOSE_A(x) opl_h5_close_id(&(x), H5Aclose)
#define OPL_H5_CLOSE_O(x) opl_h5_close_id(&(x), H5Oclose)
#define OPL_H5_CLOSE_P(x) opl_h5_close_id(&(x), H5Pclose)
#define OPL_H5_CLOSE_F(x) opl_h5_close_id(&(x), H5Fclose)

/* File creation property list: the OPL_H5_USERBLOCK-byte user block; with ordered != 0 also
 * link creation order tracked and indexed (listings in write order). H5I_INVALID_HID when
 * HDF5 cannot create it (H5Fcreate then takes the defaults and fails later if it must). */
hid_t opl_h5_fcpl(int ordered);
/* File access property list: H5F_CLOSE_STRONG (closing the file closes whatever a failure
 * path left open); with v18 != 0 also object headers version 2 (checksummed metadata,
 * readable by HDF5 >= 1.8 / any h5py). */
hid_t opl_h5_fapl(int v18);

/* Open the HDF5 file path read-only with opl_h5_fapl(0). On failure (< 0) why[256] holds
 * opl_h5_why's reason, else "". Under the lock; run the open pre-checks and opl_h5_check first. */
hid_t opl_h5_open_rdonly(const char *path, char *why);

/* The directory part of path as a heap string: "." without a '/', "/" for "/name"; NULL when
 * out of memory. */
char *opl_h5_dirname(const char *path);

/* Checks before path is opened for reading; messages "<who>: '<path>': ...". A missing path
 * (ENOENT, ENOTDIR) is OPL_ERR_NOTFOUND "cannot open (<strerror>)", another stat failure
 * OPL_ERR_IO likewise; a directory OPL_ERR_IO "is a directory, <dir_msg>"; when check_empty,
 * an empty regular file OPL_ERR_FORMAT "empty file, expected an HDF5 file"; an unreadable
 * file OPL_ERR_IO "not readable (<strerror>)". OPL_OK otherwise. */
int opl_h5_open_precheck(const char *path, const char *who, const char *dir_msg, int check_empty, opl_err *err);

/* The end of an atomic write, after the HDF5 file tmp (created with opl_h5_fcpl's user block)
 * is closed: stamp the checksum into its user block and fsync it (opl_h5_stamp), rename it
 * over path, then fsync path's directory so that the rename is durable (best effort: some
 * file systems refuse). Returns 0; 1 when stamping failed, 2 when the rename failed, with
 * errno telling why; tmp is left in place on failure (the caller removes or keeps it). */
int opl_h5_seal(const char *tmp, const char *path);

/* Create the scalar attribute kv->key on object o with kv's value: a variable-length UTF-8
 * string (h5py reads str), an int64 or a float64 (kv->type). The attribute must not exist.
 * < 0 on failure; then why[256], when not NULL, holds opl_h5_why's reason. */
herr_t opl_h5_attr_put(hid_t o, const opl_kv *kv, char *why);

#endif
