/* opl datasets — what the data set files share among themselves: the reader's state (opl_ds,
 * one ds_var per stored array), dataset lookup and listing, shape text (ds_common.c), and the
 * steps of opening a data set that the per-layout setups (layout_native.c, layout_fnomat.c,
 * layout_pdebench.c) call back into (ds_read.c). Not part of the public API (that is
 * datasets/h5layout.h). The HDF5 plumbing shared with core/ is core/h5.h.
 */
#ifndef OPL_DATASETS_DS_INTERNAL_H
#define OPL_DATASETS_DS_INTERNAL_H

#include "core/h5.h"
#include "datasets/h5layout.h"

enum { LN = 0, LT = 1, LX = 2, LY = 3 };  /* logical axes */

/* Fill err with "ds: '<file>': <message>"; returns status. */
#define dfail(err, status, file, ...) opl_h5_fail(err, status, "ds", 440, file, __VA_ARGS__)

/* ---------------------------------------------------------------- ds_common.c */

/* "(2, 3, 64)" from hsize_t dims into buf[96]. */
char *opl_ds_hshape(char *buf, int rank, const hsize_t *dims);
/* 1 if a link `name` exists at the root of f and is a dataset. */
int opl_ds_has_dataset(hid_t f, const char *name);
/* Names of the root datasets of f, comma separated, into buf[cap] ("none" if empty). */
const char *opl_ds_list_datasets(hid_t f, char *buf, size_t cap);

/* ---------------------------------------------------------------- the reader's state */

/* One stored array seen through the logical axes (n, t, x, y). */
typedef struct ds_var {
  char name[64];
  hid_t id;
  int frank;
  hsize_t fdims[8];
  int ax[4];        /* file axis of logical n, t, x, y; -1 if absent */
  int64_t toff;     /* stored frames skipped before logical frame 0 */
} ds_var;

struct opl_ds {
  char *path;
  hid_t f;
  opl_ds_info info;
  ds_var a, u;
  double *x, *y, *t;
  double *t_ps, *L;       /* native per-sample times [N, T] and domain lengths [N], or NULL */
  opl_kv *attrs;
  int nattrs;
  /* scratch, grown on demand (steady-state reads do not allocate) */
  opl_real *buf;
  size_t buf_cap;         /* elements */
  int64_t *ord;           /* [2 count]: (index, position) pairs, then [count] unique map */
  size_t ord_cap;         /* int64 elements */
};

/* Extent of v along logical axis lax (1 when no file axis holds it). */
static inline int64_t opl_ds_var_ext(const ds_var *v, int lax) {
  return v->ax[lax] < 0 ? 1 : (int64_t)v->fdims[v->ax[lax]];
}

/* ---------------------------------------------------------------- ds_read.c, for the layouts */

/* Open root dataset `name` into v (extents; float data required). */
int opl_ds_var_open(opl_ds *d, ds_var *v, const char *name, opl_err *err);
/* Check a's rank and set its axes; sets sdim, n, x, y. transposed: MATLAB order. */
int opl_ds_setup_a(opl_ds *d, int transposed, opl_err *err);
/* After u's axes are set: check N and spatial extents against a's. */
int opl_ds_check_u_vs_a(opl_ds *d, opl_err *err);

/* ---------------------------------------------------------------- the layouts */

/* Set up a and u of an open file of that layout (variables, axes, extents); the frames and
 * coordinates are set up after, by ds_read.c. OPL_OK or an error naming the file. */
int opl_ds_setup_native(opl_ds *d, const opl_ds_open_opts *o, opl_err *err);     /* layout_native.c */
int opl_ds_setup_fnomat(opl_ds *d, const opl_ds_open_opts *o, opl_err *err);     /* layout_fnomat.c */
int opl_ds_setup_pdebench(opl_ds *d, const opl_ds_open_opts *o, opl_err *err);   /* layout_pdebench.c */
/* 1 if the open file d->f looks like a MATLAB v7.3 file: a "MATLAB" user block or a root
 * dataset with a MATLAB_class attribute (layout_fnomat.c). */
int opl_ds_is_matlab(opl_ds *d);

#endif
