/* opl — what the HDF5 tensor I/O files of core/ share among themselves (io_paths.c: object
 * paths; io_read.c: the reader's state and staged loads, used by checkpoint.c). Not part of the
 * public API, not for datasets/ (which shares core/h5.h only).
 */
#ifndef OPL_CORE_IO_INTERNAL_H
#define OPL_CORE_IO_INTERNAL_H

#include <stdio.h>

#include "core/h5.h"

#define IO_PATH_CAP 1024   /* longest HDF5 object path handled (bytes, with the NUL) */

/* Fill err with "io: '<file>': <message>" and return status. */
#define fail(err, status, file, ...) opl_h5_fail(err, status, "io", 480, file, __VA_ARGS__)

/* The body of a public writer / reader call: check (a status expression: the handle is usable),
 * then run expr between opl_io_enter and opl_io_leave and return its status. */
#define IO_CALL(check, expr)   \
  do {                         \
    opl_io_guard g_;           \
    int st_ = (check);         \
    if (st_) return st_;       \
    opl_io_enter(&g_);         \
    st_ = (expr);              \
    opl_io_leave(&g_);         \
    return st_;                \
  } while (0)

/* "(3, 4)" or "complex (3, 4)" into buf[112]. */
static inline char *opl_io_shape_desc(char *buf, int rank, const int64_t *shape, int cplx) {
  char s[96];
  opl_shape_str(s, rank, shape);
  snprintf(buf, 112, "%s%s", cplx ? "complex " : "", s);
  return buf;
}

/* ---------------------------------------------------------------- object paths (io_paths.c) */

/* 1 for NULL, "" and "/": the root group. */
int opl_io_is_root(const char *g);
/* Absolute, normalized HDF5 path of name inside group into out[cap]: "/grp/name", with
 * repeated and trailing '/' removed; "/" for the root. group may be NULL/""/"/" (root),
 * name may be NULL or "" (the group itself). Returns 0 when it does not fit. */
int opl_io_path(char *out, size_t cap, const char *group, const char *name);
/* A tensor / dataset name usable as one path component: 1..63 chars, no '/', not "." or "..". */
int opl_io_name_ok(const char *name);
/* 1 if the object at absolute normalized path exists in f (every link on the way resolves). */
int opl_io_exists(hid_t f, const char *path);
/* Open the object at path if it exists and has type want (H5I_GROUP, H5I_DATASET or
 * H5I_BADID for either); otherwise H5I_INVALID_HID. *found (if not NULL) tells whether
 * something of another type exists there. */
hid_t opl_io_open_typed(hid_t f, const char *path, H5I_type_t want, int *found);

/* ---------------------------------------------------------------- the reader (io_read.c) */

struct opl_h5r {
  hid_t f;
  char *path;
  int ckpt;   /* root attribute format = "opl-checkpoint": parameter loads require finite values */
};

/* A tensor of an all-or-nothing load and the values read for it. */
typedef struct opl_io_stage {
  opl_tensor *t;
  opl_real *buf;   /* [nreal(t)] the values read, copied into t->data on success */
} opl_io_stage;

/* Free n stages (accepts NULL). */
void opl_io_stages_free(opl_io_stage *s, int n);
/* Copy the values of n stages into their tensors. */
void opl_io_stages_commit(const opl_io_stage *s, int n);
/* Stage every parameter of p from group strictly (as opl_h5r_load_params: every parameter
 * found and matching, no extra dataset, finite values in a checkpoint) into *s (p->n stages);
 * no tensor modified. Under the lock. */
int opl_io_stage_params(opl_h5r *r, const char *group, const opl_params *p, opl_io_stage **s, opl_err *err);
/* opl_h5r_read_params without the lock. */
int opl_io_read_params(opl_h5r *r, const char *group, opl_params *p, opl_err *err);

/* The body of a one-call reader function: open path (reader r), run call, close; an open
 * failure is returned in err. */
#define PATH_CALL(call)                                   \
  do {                                                    \
    opl_err e_;                                           \
    opl_h5r *r = opl_h5r_open(path, &e_);                 \
    if (!r) {                                             \
      if (err) *err = e_;                                 \
      return e_.status;                                   \
    }                                                     \
    int st_ = (call);                                     \
    opl_h5r_close(&r);                                    \
    return st_;                                           \
  } while (0)

#endif
