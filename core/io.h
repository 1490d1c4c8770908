/* opl — HDF5 I/O of the engine: tensors, parameter sets, attributes and checkpoints.
 *
 * Layout on disk (readable by h5py / h5dump with no opl code):
 *  - A tensor is one dataset named after the tensor (opl_tensor.name) with the tensor's shape,
 *    row-major, float32 or float64 little-endian. A complex tensor gets one extra trailing
 *    axis of length 2 holding (re, im) and an int64 attribute "complex" = 1 on the dataset;
 *    a rank-0 real tensor is a scalar dataspace.
 *  - A parameter set is one group holding one dataset per parameter (creation order kept).
 *  - Provenance is stored as scalar attributes (string, int64, double) on the root group or
 *    on a group; strings are variable-length UTF-8 (h5py reads them as str).
 *  - A checkpoint is a file with the groups /model and (optionally) /optim and the root
 *    attributes format = "opl-checkpoint", format_version, opl_version and precision,
 *    followed by the caller's metadata.
 *
 * Writes are atomic: a file is written to "<path>.tmp.<pid>", flushed to disk and renamed
 * over <path> only when complete; on any error the temporary is removed and an existing
 * file at <path> is left untouched. Every file opl writes starts with a 512-byte HDF5 user
 * block (ignored by h5py / h5dump) holding the length and CRC-32 of the rest of the file;
 * every read verifies it before HDF5 parses the file (HDF5 itself may crash on corrupted
 * metadata): see opl_h5_check. Parameter loads from a checkpoint refuse NaN / Inf values
 * (OPL_ERR_NONFINITE).
 *
 * Errors: every function returns an opl_status (or NULL) and fills an opl_err (which may
 * be NULL) with a message naming the file, the dataset or attribute and the expected vs
 * found value. Missing file -> OPL_ERR_NOTFOUND; directory or unreadable/unwritable path
 * -> OPL_ERR_IO; empty, non-HDF5, truncated or foreign files -> OPL_ERR_FORMAT; missing
 * dataset/group/attribute -> OPL_ERR_NOTFOUND; shape mismatch -> OPL_ERR_SHAPE; integer
 * or string data where reals are expected -> OPL_ERR_FORMAT. HDF5's own error printing is
 * silenced for the duration of every call (the previous handler is restored), so nothing
 * is ever printed.
 *
 * Threads: the HDF5 library installed here is serial (not thread-safe). Every function of
 * this file takes one process-wide lock, so opl I/O calls from several threads are
 * serialized and safe with each other; but no other code may call HDF5 concurrently with
 * them, and I/O is not meant to be called from inside OpenMP parallel regions.
 *
 * Where: core/io_write.c the writer and opl_h5_save_*; core/io_read.c the reader and the other
 * one-call forms; core/io_checkpoint.c checkpoints; core/h5check.c the checksum user block
 * (opl_h5_check, opl_h5_stamp, ...); core/h5.c the lock, opl_h5_why and the plumbing shared
 * with datasets/ (core/h5.h).
 */
#ifndef OPL_IO_H
#define OPL_IO_H

#include "core/opl.h"

/* Element type of an array in memory or on disk. OPL_DT_NATIVE is opl_real (float32 in
 * single builds, float64 in double builds). HDF5 converts float32 <-> float64. */
typedef enum { OPL_DT_NATIVE = 0, OPL_DT_F32 = 1, OPL_DT_F64 = 2 } opl_dtype;

/* ---------------------------------------------------------------- metadata (key, value) */

typedef enum { OPL_KV_STR = 0, OPL_KV_INT = 1, OPL_KV_REAL = 2 } opl_kv_type;

/* One attribute: a key and a string, int64 or double value (the field named by type). */
typedef struct opl_kv {
  const char *key;
  int type;          /* opl_kv_type */
  const char *s;     /* OPL_KV_STR */
  int64_t i;         /* OPL_KV_INT */
  double d;          /* OPL_KV_REAL */
} opl_kv;

/* Initializers: opl_kv meta[] = {OPL_KVS("equation", "burgers"), OPL_KVI("seed", 42),
 * OPL_KVD("nu", 1e-3)}; */
#define OPL_KVS(k, v) {.key = (k), .type = OPL_KV_STR, .s = (v)}
#define OPL_KVI(k, v) {.key = (k), .type = OPL_KV_INT, .i = (v)}
#define OPL_KVD(k, v) {.key = (k), .type = OPL_KV_REAL, .d = (v)}

/* The entry with the given key in kv[0..n), or NULL. */
const opl_kv *opl_kv_find(const opl_kv *kv, int n, const char *key);
/* Free an array returned by the attribute readers (keys and strings included); sets *kv to
 * NULL. Accepts NULL. */
void opl_kv_free(opl_kv **kv, int n);
/* Free a name list returned by opl_h5_list / opl_h5r_list; sets *names to NULL. */
void opl_h5_names_free(char ***names, int n);

/* Shape of a stored dataset as opl sees it. */
typedef struct opl_h5_dsinfo {
  int rank;                        /* tensor rank (the complex trailing axis not counted) */
  int64_t shape[OPL_MAX_RANK];
  int cplx;                        /* 1 if stored complex (attribute "complex" = 1) */
  int bits;                        /* 32 or 64 (float data), the element size on disk */
} opl_h5_dsinfo;

/* ---------------------------------------------------------------- writer (atomic file) */

typedef struct opl_h5w opl_h5w;

/* Start writing a new HDF5 file that will replace <path> on commit. The data goes to
 * "<path>.tmp.<pid>" until opl_h5w_commit. Returns NULL and fills err when the directory of
 * path does not exist or is not writable (OPL_ERR_IO) or HDF5 cannot create the file.
 *
 * The writer keeps a sticky status: after the first failed call every later call returns
 * the same status without doing anything, and commit removes the temporary. */
opl_h5w *opl_h5w_create(const char *path, opl_err *err);

/* Status of the writer (OPL_OK while nothing has failed). */
int opl_h5w_status(const opl_h5w *w);

/* Write an array as dataset `name` (a path such as "a", "/grp/a"; missing groups are
 * created). data holds prod(shape) elements of type mem (OPL_DT_F32: float, OPL_DT_F64:
 * double, OPL_DT_NATIVE: opl_real), times 2 if flags has OPL_T_COMPLEX (interleaved
 * re, im). disk chooses the element type in the file. rank in [0, OPL_MAX_RANK], every
 * extent > 0 (else OPL_ERR_SHAPE); an existing object of that name is OPL_ERR_ARG. */
int opl_h5w_put_array(opl_h5w *w, const char *name, int rank, const int64_t *shape, int flags,
                      const void *data, opl_dtype mem, opl_dtype disk, opl_err *err);
/* Write tensor t as dataset "<group>/<t->name>" (group NULL, "" or "/" = root; created if
 * missing). The name must be 1..63 characters without '/' (OPL_ERR_ARG), t non-NULL. */
int opl_h5w_put_tensor(opl_h5w *w, const char *group, const opl_tensor *t, opl_dtype disk,
                       opl_err *err);
/* Same for t[0..n), in order; stops at the first failure (a NULL entry is OPL_ERR_ARG).
 * The group is created even when n == 0. */
int opl_h5w_put_tensors(opl_h5w *w, const char *group, opl_tensor *const *t, int n,
                        opl_dtype disk, opl_err *err);
/* Same for every parameter of p (parameter values, not gradients). */
int opl_h5w_put_params(opl_h5w *w, const char *group, const opl_params *p, opl_dtype disk,
                       opl_err *err);
/* Create a group (and its parents) if it does not exist. */
int opl_h5w_group(opl_h5w *w, const char *group, opl_err *err);

/* Write (or overwrite) one scalar attribute `key` on object obj: NULL, "" or "/" is the
 * root group; a missing object is created as a group; an existing dataset is allowed. */
int opl_h5w_attr_str(opl_h5w *w, const char *obj, const char *key, const char *value,
                     opl_err *err);
int opl_h5w_attr_int(opl_h5w *w, const char *obj, const char *key, int64_t value, opl_err *err);
int opl_h5w_attr_double(opl_h5w *w, const char *obj, const char *key, double value,
                        opl_err *err);
/* Write kv[0..n) as attributes of obj (a NULL string value or a bad type is OPL_ERR_ARG). */
int opl_h5w_attrs(opl_h5w *w, const char *obj, const opl_kv *kv, int n, opl_err *err);

/* Finish: close the file, flush it to disk and rename it over <path>. If the writer holds
 * an error, or closing, syncing or renaming fails, the temporary is removed, an existing
 * <path> is left untouched and the error is returned. Frees the writer; sets *w to NULL. */
int opl_h5w_commit(opl_h5w **w, opl_err *err);
/* Give up: close and remove the temporary, free the writer, set *w to NULL. Accepts NULL. */
void opl_h5w_abort(opl_h5w **w);

/* ---------------------------------------------------------------- reader (open file) */

typedef struct opl_h5r opl_h5r;

/* Open an HDF5 file read-only, after opl_h5_check (a damaged opl file, or one with opl's
 * root attributes but no valid checksum, is OPL_ERR_FORMAT and never parsed further). Returns
 * NULL and fills err: missing file OPL_ERR_NOTFOUND, directory or unreadable OPL_ERR_IO,
 * empty / not HDF5 / truncated / corrupt OPL_ERR_FORMAT. */
opl_h5r *opl_h5r_open(const char *path, opl_err *err);
/* Close the file; sets *r to NULL. Accepts NULL. */
void opl_h5r_close(opl_h5r **r);

/* Shape, complex flag and element size of a float dataset. OPL_ERR_NOTFOUND if missing or
 * not a dataset, OPL_ERR_FORMAT if its data are not floating point or its "complex"
 * attribute does not match a trailing axis of 2, OPL_ERR_SHAPE if its rank exceeds
 * OPL_MAX_RANK. */
int opl_h5r_info(opl_h5r *r, const char *dataset, opl_h5_dsinfo *info, opl_err *err);
/* Read a whole float dataset into a new heap tensor (opl_tensor_alloc; complex when stored
 * complex; name = the last path component). *out is NULL on failure. */
int opl_h5r_read_tensor(opl_h5r *r, const char *dataset, opl_tensor **out, opl_err *err);
/* Read rows [start, start + count) along the first axis of a dataset into dst, which must
 * have shape (count, rest of the dataset's shape) and the same complex flag (OPL_ERR_SHAPE
 * otherwise); start >= 0, count >= 1, start + count <= rows (else OPL_ERR_ARG). dst is
 * unchanged when a check fails (a read error from HDF5 may leave it partly written).
 * Meant for batched loaders: no allocation by opl. */
int opl_h5r_read_rows(opl_h5r *r, const char *dataset, int64_t start, int64_t count,
                      opl_tensor *dst, opl_err *err);
/* Names of the datasets directly in group (creation order when the file tracks it, else
 * name order) as a heap array of heap strings (free with opl_h5_names_free); *n = count.
 * A missing group is OPL_ERR_NOTFOUND. */
int opl_h5r_list(opl_h5r *r, const char *group, char ***names, int *n, opl_err *err);

/* Load the values of every tensor t[i] from dataset "<group>/<t[i]->name>". For each: the
 * dataset must exist (OPL_ERR_NOTFOUND), hold floating-point data (OPL_ERR_FORMAT) and have
 * t[i]'s shape and complex flag (OPL_ERR_SHAPE naming both). All-or-nothing: the data are
 * read into temporaries and copied only when every tensor matched and was read; on failure
 * no tensor is modified. Other datasets in the group are ignored. Gradients untouched. */
int opl_h5r_load_tensors(opl_h5r *r, const char *group, opl_tensor *const *t, int n,
                         opl_err *err);
/* Same for every parameter of p, strictly: a dataset of the group that p does not have is
 * OPL_ERR_SHAPE too (the file describes another model). In an opl checkpoint (root attribute
 * format = "opl-checkpoint") a NaN or Inf value is OPL_ERR_NONFINITE naming the parameter and
 * the index: the weights of a usable model are finite. */
int opl_h5r_load_params(opl_h5r *r, const char *group, opl_params *p, opl_err *err);
/* Fill an EMPTY set p (OPL_ERR_ARG otherwise) with one new parameter per dataset of group,
 * in list order, with the stored shapes and values (finite in a checkpoint, as above). On failure p is left
 * empty. */
int opl_h5r_read_params(opl_h5r *r, const char *group, opl_params *p, opl_err *err);

/* Read one scalar attribute of obj (NULL, "" or "/" = root). Missing object or attribute
 * OPL_ERR_NOTFOUND; wrong type or not a single value OPL_ERR_FORMAT. attr_str returns a heap
 * string (free()); attr_int needs integer data; attr_double accepts float or integer. */
int opl_h5r_attr_str(opl_h5r *r, const char *obj, const char *key, char **out, opl_err *err);
int opl_h5r_attr_int(opl_h5r *r, const char *obj, const char *key, int64_t *out, opl_err *err);
int opl_h5r_attr_double(opl_h5r *r, const char *obj, const char *key, double *out,
                        opl_err *err);
/* Every single-valued string, integer or float attribute of obj, in name order, as a heap
 * array (free with opl_kv_free); others (arrays, compounds) are skipped. */
int opl_h5r_attrs(opl_h5r *r, const char *obj, opl_kv **kv, int *n, opl_err *err);

/* ---------------------------------------------------------------- one-call conveniences */

/* Atomically write a file holding the tensors / parameters in group (see opl_h5w_*) and
 * the attributes meta[0..nmeta) on the root group (meta may be NULL with nmeta 0). */
int opl_h5_save_tensors(const char *path, const char *group, opl_tensor *const *t, int n,
                        opl_dtype disk, const opl_kv *meta, int nmeta, opl_err *err);
int opl_h5_save_params(const char *path, const char *group, const opl_params *p,
                       opl_dtype disk, const opl_kv *meta, int nmeta, opl_err *err);
/* Open path, do the reader call, close (see the opl_h5r_* contracts). */
int opl_h5_load_tensors(const char *path, const char *group, opl_tensor *const *t, int n,
                        opl_err *err);
int opl_h5_load_params(const char *path, const char *group, opl_params *p, opl_err *err);
int opl_h5_info(const char *path, const char *dataset, opl_h5_dsinfo *info, opl_err *err);
int opl_h5_read_tensor(const char *path, const char *dataset, opl_tensor **out, opl_err *err);
/* Rows [start, start + count) of a dataset into a new heap tensor of shape (count, ...). */
int opl_h5_read_rows(const char *path, const char *dataset, int64_t start, int64_t count,
                     opl_tensor **out, opl_err *err);
int opl_h5_list(const char *path, const char *group, char ***names, int *n, opl_err *err);
int opl_h5_read_attrs(const char *path, const char *obj, opl_kv **kv, int *n, opl_err *err);

/* Where a file comes from, as its HDF5 user block tells (opl_h5_check). */
typedef enum {
  OPL_H5_FOREIGN = 0,  /* written by other software: no user block, an all-zero one, a MATLAB v7.3
                        * header, or not HDF5 at all (the HDF5 open then says so) */
  OPL_H5_OPL = 1,      /* written by opl: checksum header present, length and CRC-32 verified */
  OPL_H5_PARTIAL = 2,  /* an unfinished opl data set ("<path>.partial" while generating): its header
                        * says so; it has no checksum yet */
} opl_h5_origin;

/* The integrity check every opl reader runs before HDF5 parses a file (HDF5 1.10 can crash or
 * hang on damaged metadata). Reads the first 512 bytes; when they are opl's checksum header
 * ("OPL-CRC32 v1", the length and CRC-32 of everything after the user block, zeros after the
 * text), streams the whole file once to check both (slicing-by-8 CRC-32, about 1 s per GiB on
 * one core from the page cache). OPL_OK with *origin (may be NULL) set; OPL_ERR_FORMAT naming
 * the damage when the header is opl's but not byte-exact, the length or the CRC differ, or the
 * file has a user block that is neither opl's, a MATLAB v7.3 header nor all zeros (an opl
 * header damaged beyond recognition is never taken for a foreign file); OPL_ERR_NOTFOUND /
 * OPL_ERR_IO when the file cannot be read. opl_h5r_open (and so every opl_h5_* and checkpoint
 * reader) and opl_ds_open call it; after it, a file that is not OPL_H5_OPL but carries opl's root
 * attributes (opl_version, format = "opl-checkpoint", layout = "opl-dataset", generator =
 * "opl ...") is refused as damaged too (OPL_ERR_FORMAT), except an unfinished data set. */
int opl_h5_check(const char *path, int *origin, opl_err *err);

/* opl_h5_check, with *verified (may be NULL) = 1 for OPL_H5_OPL and 0 otherwise. */
int opl_h5_verify(const char *path, int *verified, opl_err *err);

/* ---------------------------------------------------------------- checkpoints */

#define OPL_CHECKPOINT_FORMAT "opl-checkpoint"
#define OPL_CHECKPOINT_VERSION 1

/* Atomically write a checkpoint: /model holds model's parameters, /optim optim_state's
 * (only when optim_state is not NULL), both in the build's precision (bit-exact); root
 * attributes format, format_version, opl_version, precision, then meta[0..nmeta) (a meta
 * key equal to one of those four is OPL_ERR_ARG). */
int opl_checkpoint_save(const char *path, const opl_params *model, const opl_params *optim_state,
                        const opl_kv *meta, int nmeta, opl_err *err);
/* Load a checkpoint into model (strict, as opl_h5r_load_params) and, when optim_state is
 * not NULL, into optim_state: strictly if it has parameters, or by filling it
 * (opl_h5r_read_params) if it is empty — optimizers may create their state lazily. A file
 * that is not an opl checkpoint (no or wrong "format" attribute, or no /model group) is
 * OPL_ERR_FORMAT, a file that fails opl_h5_check (truncated, corrupt, damaged header, or opl
 * attributes without a valid checksum) OPL_ERR_FORMAT, a NaN or Inf weight or optimizer value
 * OPL_ERR_NONFINITE, a newer format_version OPL_ERR_UNSUPPORTED, a missing /optim when
 * optim_state is given OPL_ERR_NOTFOUND. All-or-nothing over model and optim_state both.
 * Checkpoints of the other precision load (converted). */
int opl_checkpoint_load(const char *path, opl_params *model, opl_params *optim_state,
                        opl_err *err);
/* The root attributes of a checkpoint (format fields included) as a heap array (free with
 * opl_kv_free). OPL_ERR_FORMAT if path is not an opl checkpoint or fails opl_h5_check. */
int opl_checkpoint_read_meta(const char *path, opl_kv **kv, int *n, opl_err *err);

/* Guard for code that calls HDF5 directly (datasets/): opl_io_enter takes the process-wide
 * HDF5 lock below and silences HDF5's automatic error printing; opl_io_leave clears the HDF5
 * error stack, restores the previous handler and releases the lock. Nests. */
typedef struct opl_io_guard {
  void (*func)(void); /* the H5E_auto2_t handler in force before opl_io_enter */
  void *data;
} opl_io_guard;
void opl_io_enter(opl_io_guard *g);
void opl_io_leave(opl_io_guard *g);

/* " (HDF5: <innermost error description>)" or "" into buf[256]; clears the HDF5 error stack.
 * Call it right after the failing HDF5 call: every successful HDF5 call clears the stack. */
const char *opl_h5_why(char *buf);

/* The process-wide lock that serializes every HDF5 call made by opl (the installed HDF5 is
 * the serial, non-thread-safe build). Recursive: code outside core/'s I/O files that calls
 * HDF5 directly (datasets/) takes it too, so all HDF5 use in the process is serialized by one lock. */
void opl_io_lock(void);
void opl_io_unlock(void);

/* Write opl's "unfinished data set" header (OPL_H5_PARTIAL) into the 512-byte user block of
 * the HDF5 file at path (created with that user block; HDF5 never writes it). OPL_OK or
 * OPL_ERR_IO. opl_h5_stamp replaces it with the checksum when the file is complete. */
int opl_h5_mark_partial(const char *path, opl_err *err);

/* Write the length and CRC-32 of the bytes after the 512-byte user block of the closed HDF5
 * file at path into that user block (the file must have been created with a 512-byte user
 * block). opl_h5_verify checks it. OPL_OK or OPL_ERR_IO. */
int opl_h5_stamp(const char *path, opl_err *err);

#endif
