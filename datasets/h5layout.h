/* opl datasets — HDF5 layouts of PDE data sets: the native layout (writer with incremental,
 * resumable generation; reader) and readers for the public layouts (FNO MATLAB v7.3 files,
 * PDEBench 1-D files), all described the same way in memory.
 *
 * ---------------------------------------------------------------- in-memory description
 * Every open data set (opl_ds) is seen as
 *     a  [N, X(, Y)]       the input of each sample (initial condition or coefficient field),
 *     u  [N, T, X(, Y)]    T >= 1 snapshots of the solution AFTER t = 0 (T = 1: final time),
 *     x [X], y [Y], t [T]  coordinates when the file has them,
 * row-major, in opl_real, with x the first spatial index. When a file stores a trajectory
 * that includes t = 0 (PDEBench `tensor`; FNO `output` with an extra first frame), that frame
 * is not part of u: it is the input a when the file has no separate input (PDEBench).
 * Reads are by samples (ranges or any list of indices) and frame ranges, with an optional
 * spatial stride `sub` (x[::sub], y[::sub]) applied by the HDF5 hyperslab itself; a read
 * never loads more of the file than it returns (plus the file-order scratch of a transposed
 * layout), and every value read is checked finite (OPL_ERR_NONFINITE naming the sample).
 *
 * ---------------------------------------------------------------- native layout ("opl-dataset")
 * What `opl generate` writes; readable by h5py alone:
 *     /a  [N, X] or [N, X, Y]          float32 (default) or float64, one chunk per sample
 *     /u  [N, T, X] or [N, T, X, Y]    same dtype, one chunk per sample; a steady problem
 *                                      (dims.steady, T = 1: Darcy) stores u [N, X(, Y)]; the
 *                                      reader takes either for T = 1
 *     /x  [X], /y [Y] (2-D only), /t [T]   float64 coordinates (t: the times of u's frames)
 *     when the samples have their own domain length and times (KdV's MP-PDE draws, where L and
 *     T vary per trajectory), instead of the shared /t:
 *     /t  [N, T]                       float64, row i the times of sample i's frames
 *                                      (finite, increasing from > 0)
 *     /L  [N]                          float64, sample i's domain length (> 0): its points are
 *                                      x_j = j L[i] / X; /x then holds the nominal i L / X
 *     (either may appear alone). Files with a shared /t [T] (every other data set, and KdV
 *     files written before per-sample times were stored) read as before.
 *     root attributes: layout = "opl-dataset", layout_version = 1, opl_version, then the
 *     caller's provenance (equation, every parameter as its own attribute, solver,
 *     tolerances, seed, ...) as scalar string / int64 / float64 attributes.
 * While generating, the file is "<path>.partial" and also holds /done [N] uint8 (1 = sample
 * written). The `done` dataset is REMOVED by opl_ds_writer_finish (a finished file has no
 * `done`; a file that still has one is refused by opl_ds_open as unfinished).
 *
 * Crash safety: the partial file's datasets are allocated in full when it is created (HDF5
 * early allocation, no fill, no filters) and its metadata is flushed then, so later writes
 * only overwrite raw data at fixed places; each put writes the sample, flushes, sets
 * done[i] = 1 and flushes again. A killed process therefore leaves a consistent partial file
 * in which every sample marked done is complete: only samples in flight are lost. (Flushes
 * hand data to the OS; they do not fsync: a power loss may lose more.) The partial file's
 * 512-byte user block says "unfinished" (OPL_H5_PARTIAL, core/io.h). finish() closes the
 * file, writes opl's user-block checksum (the one opl_h5_check verifies on every read, see
 * core/io.h), fsyncs it and renames it to <path> (then fsyncs the directory): nothing
 * half-written ever appears at <path>. opl_ds_open runs opl_h5_check before HDF5 parses a
 * file: a damaged opl file is OPL_ERR_FORMAT.
 *
 * ---------------------------------------------------------------- FNO MATLAB v7.3 files
 * A v7.3 .mat file is an HDF5 file with a 512-byte user block ("MATLAB 7.3 MAT-file, ...")
 * whose variables are root datasets with a MATLAB_class attribute. MATLAB is column-major, so
 * HDF5 sees every variable with its axes REVERSED: MATLAB u(n, i, j, t) is HDF5 [t][j][i][n].
 * Variables: (a, u), (input, output) or (coeff, sol), tried in that order, or named by the
 * caller. MATLAB axis order per rank (a's rank tells the spatial dimension):
 *     1-D  a (N, X);  u (N, X) final time, or (N, T, X) — time is MATLAB axis 2 (FNO's
 *          Burgers_v1000_t200 `output`); if only the LAST axis has a different extent from X,
 *          (N, X, T) is assumed instead.
 *     2-D  a (N, X, Y);  u (N, X, Y) final time, or (N, X, Y, T) — time last (FNO's
 *          NavierStokes_*.mat).
 * Whether u's first frame is t = 0 (detected, overridable by opl_ds_open_opts.u_has_t0): yes
 * if the file has a variable `t` whose first entry is 0, or if u has one more frame than `t`
 * has entries, or, without `t`, if u's first frame equals a exactly on the first samples
 * (up to 4); otherwise no. A `t` variable with as many entries as u keeps frames gives the
 * times of u's frames.
 *
 * ---------------------------------------------------------------- PDEBench 1-D files
 *     /tensor [N, T+1, X] (frame 0 is t = 0), /x-coordinate [X], /t-coordinate [T+1 or T+2]
 * (PDEBench stores one extra time), root attributes (e.g. Nu, beta) exposed as info.attrs.
 * a = tensor[:, 0], u = tensor[:, 1:], t = t-coordinate[1 .. T].
 *
 * ---------------------------------------------------------------- errors and threads
 * Functions return an opl_status and fill an opl_err (may be NULL) with a message naming the
 * file, the dataset and the expected vs found value ("ds: 'f.h5': dataset 'u' has rank 2,
 * expected 3 = rank of 'a' + 1"). HDF5's automatic error printing is switched off during
 * every call and restored afterwards: nothing is printed. All HDF5 calls of these functions
 * are serialized by the process-wide lock of core/ (opl_io_enter, core/io.h), so a writer may
 * be fed from many threads; but HDF5 (serial build) must not be called concurrently by code
 * that does not take that lock.
 *
 * ---------------------------------------------------------------- where
 * datasets/ds_write.c the native writer; ds_read.c opening and reading any layout;
 * layout_native.c, layout_fnomat.c, layout_pdebench.c the per-layout setups; ds_common.c
 * what they share (datasets/ds_internal.h); the HDF5 plumbing shared with core/ is core/h5.h.
 */
#ifndef OPL_DATASETS_H5LAYOUT_H
#define OPL_DATASETS_H5LAYOUT_H

#include "core/opl.h"
#include "core/io.h"

#define OPL_DS_LAYOUT_NAME "opl-dataset"
#define OPL_DS_LAYOUT_VERSION 1

typedef enum {
  OPL_DS_AUTO = 0,      /* detect (opl_ds_open) */
  OPL_DS_NATIVE = 1,    /* "opl-dataset" */
  OPL_DS_FNO_MAT = 2,   /* FNO MATLAB v7.3 */
  OPL_DS_PDEBENCH = 3,  /* PDEBench 1-D */
} opl_ds_layout;

/* "auto", "opl-dataset", "fno-mat", "pdebench", or "unknown". */
const char *opl_ds_layout_name(int layout);

/* Extents of a data set. */
typedef struct opl_ds_dims {
  int64_t n;    /* samples, >= 1 */
  int64_t t;    /* frames of u after t = 0, >= 1 */
  int sdim;     /* spatial dimension, 1 or 2 */
  int64_t x;    /* first spatial extent, >= 1 */
  int64_t y;    /* second spatial extent (1 when sdim == 1) */
  int steady;   /* u has no time axis (a steady problem, t = 1): stored u [N, X(, Y)] */
} opl_ds_dims;

/* ================================================================ native writer */

typedef struct opl_ds_writer opl_ds_writer;

/* Per-sample coordinates of a native data set (see the layout above); a NULL pointer stores
 * none of that kind. */
typedef struct opl_ds_per_sample {
  const double *L;   /* [N] domain lengths, finite and > 0, or NULL */
  const double *t;   /* [N, T] frame times, row-major, each row finite and increasing from > 0,
                        or NULL: the shared t [T] of the create / resume call */
} opl_ds_per_sample;

/* Start generating a native data set that will appear at <path>: creates (replacing any
 * stale one) "<path>.partial" with the datasets a, u (dtype disk: OPL_DT_F32, OPL_DT_F64, or
 * OPL_DT_NATIVE = opl_real's), done (all 0), the coordinates x [d->x], y [d->y] (2-D only;
 * ignored and may be NULL in 1-D) and t [d->t] (finite values), and the root attributes
 * layout, layout_version, opl_version followed by prov[0..nprov) (prov may be NULL when
 * nprov == 0; a key equal to a reserved one, a duplicate key, a NULL or empty key or string
 * value is OPL_ERR_ARG). Bad dims OPL_ERR_SHAPE; unwritable directory OPL_ERR_IO.
 * Returns NULL and fills err on failure (no file is left behind). */
opl_ds_writer *opl_ds_writer_create(const char *path, const opl_ds_dims *d, opl_dtype disk,
                                    const double *x, const double *y, const double *t,
                                    const opl_kv *prov, int nprov, opl_err *err);

/* The same with per-sample coordinates ps (may be NULL: opl_ds_writer_create): datasets L [N]
 * and / or t [N, T] are written; t may then be NULL. Bad values OPL_ERR_ARG naming the entry. */
opl_ds_writer *opl_ds_writer_create_ps(const char *path, const opl_ds_dims *d, opl_dtype disk, const double *x,
                                       const double *y, const double *t, const opl_ds_per_sample *ps,
                                       const opl_kv *prov, int nprov, opl_err *err);

/* Reopen "<path>.partial" left by an interrupted generation, with the SAME arguments as the
 * create call. Missing partial file: OPL_ERR_NOTFOUND (the caller then creates). The file
 * must be a native partial file (OPL_ERR_FORMAT otherwise) whose dims and dtype equal d and
 * disk (OPL_ERR_SHAPE naming both), whose coordinates equal x, y, t bit for bit and whose
 * provenance attributes (the reserved ones included: a different opl_version is a different
 * provenance) equal the requested ones: same keys, types and values (OPL_ERR_ARG naming the
 * first differing attribute with both values, or an attribute present on one side only).
 * The samples still to do are then given by opl_ds_writer_todo. */
opl_ds_writer *opl_ds_writer_resume(const char *path, const opl_ds_dims *d, opl_dtype disk,
                                    const double *x, const double *y, const double *t,
                                    const opl_kv *prov, int nprov, opl_err *err);

/* The same with per-sample coordinates, compared bit for bit like x, y, t (a partial file with
 * an 'L' that ps does not request is refused). */
opl_ds_writer *opl_ds_writer_resume_ps(const char *path, const opl_ds_dims *d, opl_dtype disk, const double *x,
                                       const double *y, const double *t, const opl_ds_per_sample *ps,
                                       const opl_kv *prov, int nprov, opl_err *err);

/* Number of samples not yet written; when idx is not NULL, also their indices in ascending
 * order into idx[0..count). */
int64_t opl_ds_writer_todo(const opl_ds_writer *w, int64_t *idx);

/* Write sample i: a [X(, Y)] and u [T, X(, Y)] of element type mem (OPL_DT_F32: float,
 * OPL_DT_F64: double, OPL_DT_NATIVE: opl_real), then mark done[i] = 1 and flush. May be
 * called from any thread, for distinct or repeated i (a repeated i overwrites). Errors:
 * i outside [0, N) or NULL data OPL_ERR_ARG; a NaN or Inf — or, for a float32 file, a value
 * beyond float32's range — OPL_ERR_NONFINITE naming the sample index, the array and the
 * position of the first bad value (nothing is written, the writer stays usable: a generator
 * reports a blow-up this way and may retry or abort). An HDF5 write failure is OPL_ERR_IO and
 * sticky (every later call returns it). */
int opl_ds_writer_put(opl_ds_writer *w, int64_t i, const void *a, const void *u, opl_dtype mem,
                      opl_err *err);

/* Complete the data set: every sample must be done (OPL_ERR_STATE naming the count and the
 * first missing index; the writer then stays open and usable). Removes `done`, closes,
 * stamps the checksum, renames "<path>.partial" over <path> atomically. On success or on an
 * I/O failure the writer is freed and *w set to NULL (after an I/O failure the partial file
 * is kept for a later resume). */
int opl_ds_writer_finish(opl_ds_writer **w, opl_err *err);

/* Close without finishing, keeping "<path>.partial" for a later resume. Accepts NULL. */
void opl_ds_writer_close(opl_ds_writer **w);
/* Close and delete "<path>.partial". Accepts NULL. */
void opl_ds_writer_abort(opl_ds_writer **w);

/* Status of the writer (OPL_OK unless an I/O error made it sticky). */
int opl_ds_writer_status(const opl_ds_writer *w);

/* ================================================================ readers (any layout) */

typedef struct opl_ds opl_ds;

/* Options of opl_ds_open; a NULL pointer or a zeroed struct with u_has_t0 = -1 means
 * "detect everything" (use OPL_DS_OPEN_DEFAULTS). */
typedef struct opl_ds_open_opts {
  int layout;          /* opl_ds_layout; OPL_DS_AUTO: detect */
  const char *a_name;  /* input variable (NULL: by layout) */
  const char *u_name;  /* solution variable (NULL: by layout) */
  int u_has_t0;        /* stored u's first frame is t = 0: 1 yes, 0 no, -1 detect */
} opl_ds_open_opts;
#define OPL_DS_OPEN_DEFAULTS {.layout = OPL_DS_AUTO, .a_name = NULL, .u_name = NULL, .u_has_t0 = -1}

/* What opl_ds_open found. Pointers are owned by the opl_ds and live until opl_ds_close. */
typedef struct opl_ds_info {
  int layout;              /* opl_ds_layout actually used */
  opl_ds_dims dims;        /* N, T (frames after t = 0), spatial extents */
  const char *path;
  const char *a_name;      /* dataset holding a ("tensor" for PDEBench: frame 0) */
  const char *u_name;      /* dataset holding u */
  int a_from_u;            /* a is frame 0 of the stored trajectory (PDEBench) */
  int t0_dropped;          /* the stored trajectory had a t = 0 frame, not part of u */
  int transposed;          /* stored with reversed (MATLAB) axes */
  int bits;                /* element size on disk of u: 32 or 64 */
  const double *x, *y, *t; /* coordinates [X], [Y], [T], or NULL when the file has none (t is
                              NULL when the times are per sample: see t_ps) */
  const double *t_ps;      /* native files with per-sample times: [N, T], row i the times of
                              sample i's frames of u (checked finite and increasing); else NULL */
  const double *L;         /* native files with per-sample domain lengths: [N] (checked finite
                              and > 0); else NULL */
  const opl_kv *attrs;     /* root attributes (provenance), name order */
  int nattrs;
} opl_ds_info;

/* The times of sample i's frames of u [T]: its row of t_ps when the times are per sample, else
 * the shared t (NULL when the file has none). i in [0, N). */
static inline const double *opl_ds_sample_times(const opl_ds_info *info, int64_t i) {
  return info->t_ps ? info->t_ps + i * info->dims.t : info->t;
}
/* 1 if the data set's samples have their own times or domain lengths. */
static inline int opl_ds_per_sample_coords(const opl_ds_info *info) { return info->t_ps || info->L; }

/* Open a data set file read-only and describe it. Missing file OPL_ERR_NOTFOUND; directory
 * or unreadable OPL_ERR_IO; not HDF5, unknown layout (the message lists the datasets found),
 * an unfinished native file, non-float data OPL_ERR_FORMAT; missing dataset OPL_ERR_NOTFOUND;
 * wrong rank, N or spatial mismatch between a and u, or coordinates of the wrong length
 * OPL_ERR_SHAPE (also a per-sample t that is not [N, T] or an L that is not [N]); per-sample
 * times that are not finite or do not increase, or an L that is not finite and > 0,
 * OPL_ERR_FORMAT naming the dataset and the entry; a newer native layout_version OPL_ERR_UNSUPPORTED. Messages name the file,
 * the dataset and expected vs found. Returns NULL on failure. */
opl_ds *opl_ds_open(const char *path, const opl_ds_open_opts *opts, opl_err *err);
/* Close; sets *d to NULL. Accepts NULL. */
void opl_ds_close(opl_ds **d);
/* The description (never NULL for an open data set). */
const opl_ds_info *opl_ds_get_info(const opl_ds *d);

/* Extents after a spatial stride x[::sub]: 1 <= sub and sub divides X (a periodic grid: X / sub
 * points), or X is odd and sub divides X - 1 (a grid of nodes with both ends, FNO's Darcy data:
 * (X - 1) / sub + 1 nodes, 421 -> 85 for sub = 5); the same for Y in 2-D; else OPL_ERR_ARG
 * "sub = 3 does not divide the resolution X = 64 of dataset 'u' ...". *nx, *ny (may be NULL) get
 * the extents (1 in 1-D). */
int opl_ds_check_sub(const opl_ds *d, int sub, int64_t *nx, int64_t *ny, opl_err *err);

/* Read a for the samples idx[0..count) (any order, repeats allowed; each in [0, N)) with
 * stride sub into dst [count, X/sub(, Y/sub)] (row j = sample idx[j]). Errors: bad index or
 * sub OPL_ERR_ARG; a NaN/Inf OPL_ERR_NONFINITE naming the sample index (dst content is then
 * unspecified); HDF5 failure OPL_ERR_IO. */
int opl_ds_read_a(opl_ds *d, const int64_t *idx, int64_t count, int sub, opl_real *dst,
                  opl_err *err);
/* The input a of ONE sample i at full resolution in float64 (whatever opl_real is: a float64
 * file gives its values exactly) into dst [X(, Y)]. Errors as opl_ds_read_a. */
int opl_ds_read_a_f64(opl_ds *d, int64_t i, double *dst, opl_err *err);
/* Same for u frames [t0, t0 + nt) (0 <= t0, nt >= 1, t0 + nt <= T) into
 * dst [count, nt, X/sub(, Y/sub)]. */
int opl_ds_read_u(opl_ds *d, const int64_t *idx, int64_t count, int64_t t0, int64_t nt, int sub,
                  opl_real *dst, opl_err *err);
/* Range forms: samples [start, start + count). */
int opl_ds_read_a_range(opl_ds *d, int64_t start, int64_t count, int sub, opl_real *dst,
                        opl_err *err);
int opl_ds_read_u_range(opl_ds *d, int64_t start, int64_t count, int64_t t0, int64_t nt, int sub,
                        opl_real *dst, opl_err *err);

#endif
