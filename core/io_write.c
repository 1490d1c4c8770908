/* opl — HDF5 tensor I/O, the writer: atomic files of tensors, parameter sets and attributes
 * (opl_h5w_*, opl_h5_save_*). See core/io.h for the layout on disk and the contracts.
 *
 * Every public call runs between opl_io_enter() and opl_io_leave() (core/h5.c). A file is
 * written to "<path>.tmp.<pid>" with a 512-byte user block; commit closes it, stamps its
 * checksum, fsyncs it, renames it into place and fsyncs the directory (opl_h5_seal). The
 * writer's status is sticky: after the first failure every call returns it.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/io_internal.h"

static hid_t mem_type(opl_dtype t) {
  return t == OPL_DT_F32 ? H5T_NATIVE_FLOAT : t == OPL_DT_F64 ? H5T_NATIVE_DOUBLE : OPL_HDF5_NATIVE;
}
static hid_t disk_type(opl_dtype t) {
  if (t == OPL_DT_F32) return H5T_IEEE_F32LE;
  if (t == OPL_DT_F64) return H5T_IEEE_F64LE;
  return sizeof(opl_real) == 4 ? H5T_IEEE_F32LE : H5T_IEEE_F64LE;
}

/* Group creation property list: link creation order tracked and indexed, so that listings
 * return parameters in the order they were written; no object times (HDF5 stamps each object
 * with its creation time by default), so that the same content gives the same bytes. */
static hid_t ordered_gcpl(void) {
  hid_t p = H5Pcreate(H5P_GROUP_CREATE);
  if (p >= 0) H5Pset_link_creation_order(p, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
  if (p >= 0) H5Pset_obj_track_times(p, 0);
  return p;
}

/* Create the group at absolute path and its missing parents. 0: ok; -1: some component
 * exists and is not a group (bad[IO_PATH_CAP] names it); -2: HDF5 failure (why[256]). */
static int ensure_group(hid_t f, const char *path, char *bad, char *why) {
  if (strcmp(path, "/") == 0) return 0;
  char buf[IO_PATH_CAP];
  snprintf(buf, sizeof buf, "%s", path);
  int rc = 0;
  hid_t gcpl = ordered_gcpl();
  for (char *p = buf + 1; rc == 0; p++) {
    if (*p == '/' || *p == 0) {
      char c = *p;
      *p = 0;
      int found;
      hid_t g = opl_io_open_typed(f, buf, H5I_GROUP, &found);
      if (g >= 0) {
        H5Oclose(g);
      } else if (found || H5Lexists(f, buf, H5P_DEFAULT) > 0) {
        snprintf(bad, IO_PATH_CAP, "%s", buf);
        rc = -1;
      } else {
        g = H5Gcreate2(f, buf, H5P_DEFAULT, gcpl, H5P_DEFAULT);
        if (g < 0) {
          opl_h5_why(why);
          rc = -2;
        }
        else H5Gclose(g);
      }
      *p = c;
      if (!c) break;
    }
  }
  OPL_H5_CLOSE_P(gcpl);
  return rc;
}

/* ================================================================ attributes (ids) */

/* Write (replace) a scalar attribute on object o: type OPL_KV_STR (s), INT (i), REAL (d).
 * On failure (< 0) why[256] holds the HDF5 reason. */
static herr_t attr_write(hid_t o, const char *key, int type, const char *s, int64_t i, double d,
                         char *why) {
  htri_t ex = H5Aexists(o, key);
  why[0] = 0;
  if (ex < 0 || (ex > 0 && H5Adelete(o, key) < 0)) {
    opl_h5_why(why);
    return -1;
  }
  opl_kv kv = {.key = key, .type = type, .s = s, .i = i, .d = d};
  return opl_h5_attr_put(o, &kv, why);
}

/* ================================================================ writer */

struct opl_h5w {
  hid_t f;
  char *path;      /* final name */
  char *tmp;       /* "<path>.tmp.<pid>" */
  int status;      /* sticky */
  opl_err err;     /* the first error */
};

static int w_fail(opl_h5w *w, opl_err *err, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int w_fail(opl_h5w *w, opl_err *err, int status, const char *fmt, ...) {
  char m[480];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(m, sizeof m, fmt, ap);
  va_end(ap);
  opl_err_set(&w->err, status, "io: '%s': %s", w->path, m);
  w->status = status;
  if (err) *err = w->err;
  return status;
}

/* OPL_OK if w can be used; else its sticky error (or OPL_ERR_ARG for NULL). */
static int w_check(opl_h5w *w, opl_err *err) {
  if (!w) return opl_err_set(err, OPL_ERR_ARG, "io: NULL writer");
  if (w->status != OPL_OK) {
    if (err) *err = w->err;
    return w->status;
  }
  return OPL_OK;
}

static void w_free(opl_h5w *w) {
  free(w->path);
  free(w->tmp);
  free(w);
}

opl_h5w *opl_h5w_create(const char *path, opl_err *err) {
  if (!path || !path[0]) {
    opl_err_set(err, OPL_ERR_ARG, "io: empty file name");
    return NULL;
  }
  /* The directory must exist and be writable; the target must not be a directory. */
  char *dir = opl_h5_dirname(path);
  if (!dir) {
    opl_err_set(err, OPL_ERR_NOMEM, "io: out of memory");
    return NULL;
  }
  struct stat st;
  int bad = 0;
  if (stat(dir, &st) != 0) {
    fail(err, OPL_ERR_IO, path, "directory '%s' does not exist (%s)", dir, strerror(errno));
    bad = 1;
  } else if (!S_ISDIR(st.st_mode)) {
    fail(err, OPL_ERR_IO, path, "'%s' is not a directory", dir);
    bad = 1;
  } else if (access(dir, W_OK | X_OK) != 0) {
    fail(err, OPL_ERR_IO, path, "directory '%s' is not writable (%s)", dir, strerror(errno));
    bad = 1;
  } else if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
    fail(err, OPL_ERR_IO, path, "is a directory, cannot be replaced by a file");
    bad = 1;
  }
  free(dir);
  if (bad) return NULL;

  opl_h5w *w = calloc(1, sizeof *w);
  size_t n = strlen(path) + 32;
  if (!w || !(w->path = strdup(path)) || !(w->tmp = malloc(n))) {
    if (w) w_free(w);
    opl_err_set(err, OPL_ERR_NOMEM, "io: out of memory");
    return NULL;
  }
  snprintf(w->tmp, n, "%s.tmp.%ld", path, (long)getpid());
  w->f = H5I_INVALID_HID;

  opl_io_guard g;
  opl_io_enter(&g);
  /* Link creation order kept; object headers version 2 (checksummed metadata). */
  hid_t fcpl = opl_h5_fcpl(1), fapl = opl_h5_fapl(1);
  if (fcpl >= 0) H5Pset_obj_track_times(fcpl, 0); /* the root group's times (see ordered_gcpl) */
  w->f = H5Fcreate(w->tmp, H5F_ACC_TRUNC, fcpl, fapl);
  int e = errno;
  char why[256];
  opl_h5_why(why);
  OPL_H5_CLOSE_P(fcpl);
  OPL_H5_CLOSE_P(fapl);
  if (w->f < 0) {
    fail(err, OPL_ERR_IO, path, "cannot create the temporary file '%s' (%s)%s", w->tmp,
         strerror(e), why);
    unlink(w->tmp);
    w_free(w);
    w = NULL;
  }
  opl_io_leave(&g);
  return w;
}

int opl_h5w_status(const opl_h5w *w) { return w ? w->status : OPL_ERR_ARG; }

/* Write a dataset (see opl_h5w_put_array). Under the lock; w checked by the caller. */
static int w_put_array(opl_h5w *w, const char *name, int rank, const int64_t *shape, int flags,
                       const void *data, opl_dtype mem, opl_dtype disk, opl_err *err) {
  char path[IO_PATH_CAP], why[256], bad[IO_PATH_CAP], sb[112];
  if (!name || !name[0] || !opl_io_path(path, sizeof path, NULL, name) || strcmp(path, "/") == 0)
    return w_fail(w, err, OPL_ERR_ARG, "bad dataset name '%s'", name ? name : "(null)");
  if (rank < 0 || rank > OPL_MAX_RANK || (rank > 0 && !shape))
    return w_fail(w, err, OPL_ERR_SHAPE, "dataset '%s': rank %d outside [0, %d]", path, rank,
                  OPL_MAX_RANK);
  for (int i = 0; i < rank; i++)
    if (shape[i] <= 0)
      return w_fail(w, err, OPL_ERR_SHAPE, "dataset '%s': shape %s has a non-positive extent",
                    path, opl_io_shape_desc(sb, rank, shape, 0));
  if (!data) return w_fail(w, err, OPL_ERR_ARG, "dataset '%s': NULL data", path);
  if ((unsigned)mem > OPL_DT_F64 || (unsigned)disk > OPL_DT_F64)
    return w_fail(w, err, OPL_ERR_ARG, "dataset '%s': unknown dtype (memory %d, disk %d)", path,
                  (int)mem, (int)disk);
  if (opl_io_exists(w->f, path))
    return w_fail(w, err, OPL_ERR_ARG, "dataset '%s' written twice (an object of that name exists)",
                  path);
  /* Parent groups. */
  char parent[IO_PATH_CAP];
  snprintf(parent, sizeof parent, "%s", path);
  char *last = strrchr(parent, '/');
  if (last == parent) parent[1] = 0;
  else *last = 0;
  int rc = ensure_group(w->f, parent, bad, why);
  if (rc == -1) return w_fail(w, err, OPL_ERR_ARG, "dataset '%s': '%s' exists and is not a group", path, bad);
  if (rc < 0) return w_fail(w, err, OPL_ERR_IO, "cannot create group '%s'%s", parent, why);

  int cplx = (flags & OPL_T_COMPLEX) != 0;
  hsize_t dims[OPL_MAX_RANK + 1];
  for (int i = 0; i < rank; i++) dims[i] = (hsize_t)shape[i];
  if (cplx) dims[rank] = 2;
  int drank = rank + cplx;
  int st = OPL_OK;
  hid_t sp = drank ? H5Screate_simple(drank, dims, NULL) : H5Screate(H5S_SCALAR);
  hid_t d = H5I_INVALID_HID;
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE); /* no object times: same content, same bytes */
  if (dcpl >= 0) H5Pset_obj_track_times(dcpl, 0);
  if (sp >= 0 && dcpl >= 0) d = H5Dcreate2(w->f, path, disk_type(disk), sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  if (dcpl >= 0) H5Pclose(dcpl);
  if (d < 0 || H5Dwrite(d, mem_type(mem), H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
    st = w_fail(w, err, OPL_ERR_IO, "cannot write dataset '%s' of shape %s%s", path,
                opl_io_shape_desc(sb, rank, shape, cplx), opl_h5_why(why));
  else if (cplx && attr_write(d, "complex", OPL_KV_INT, NULL, 1, 0, why) < 0)
    st = w_fail(w, err, OPL_ERR_IO, "cannot write attribute 'complex' of '%s'%s", path, why);
  OPL_H5_CLOSE_D(d);
  OPL_H5_CLOSE_S(sp);
  return st;
}

/* Write tensor t as "<group>/<t->name>". */
static int w_put_tensor(opl_h5w *w, const char *group, const opl_tensor *t, opl_dtype disk,
                        opl_err *err) {
  char path[IO_PATH_CAP];
  if (!t) return w_fail(w, err, OPL_ERR_ARG, "NULL tensor in group '%s'", opl_io_is_root(group) ? "/" : group);
  if (!opl_io_name_ok(t->name))
    return w_fail(w, err, OPL_ERR_ARG,
                  "tensor name '%s' is not a dataset name (1..63 characters, no '/')", t->name);
  if (!opl_io_path(path, sizeof path, group, t->name))
    return w_fail(w, err, OPL_ERR_ARG, "path of tensor '%s' is too long", t->name);
  return w_put_array(w, path, t->rank, t->shape, t->flags & OPL_T_COMPLEX, t->data, OPL_DT_NATIVE,
                     disk, err);
}

static int w_group(opl_h5w *w, const char *group, opl_err *err) {
  char path[IO_PATH_CAP], bad[IO_PATH_CAP], why[256];
  if (!opl_io_path(path, sizeof path, group, NULL))
    return w_fail(w, err, OPL_ERR_ARG, "group name too long");
  int rc = ensure_group(w->f, path, bad, why);
  if (rc == -1) return w_fail(w, err, OPL_ERR_ARG, "group '%s': '%s' exists and is not a group", path, bad);
  if (rc < 0) return w_fail(w, err, OPL_ERR_IO, "cannot create group '%s'%s", path, why);
  return OPL_OK;
}

static int w_put_tensors(opl_h5w *w, const char *group, opl_tensor *const *t, int n,
                         opl_dtype disk, opl_err *err) {
  int st = w_group(w, group, err);
  if (n > 0 && !t) return w_fail(w, err, OPL_ERR_ARG, "NULL tensor array");
  for (int i = 0; i < n && st == OPL_OK; i++) st = w_put_tensor(w, group, t[i], disk, err);
  return st;
}

/* Write one attribute on obj (root, existing object, or a new group). */
static int w_attr(opl_h5w *w, const char *obj, const char *key, int type, const char *s, int64_t i,
                  double d, opl_err *err) {
  char path[IO_PATH_CAP], why[256];
  if (!key || !key[0]) return w_fail(w, err, OPL_ERR_ARG, "empty attribute name");
  if (type == OPL_KV_STR && !s)
    return w_fail(w, err, OPL_ERR_ARG, "attribute '%s': NULL string value", key);
  if (type != OPL_KV_STR && type != OPL_KV_INT && type != OPL_KV_REAL)
    return w_fail(w, err, OPL_ERR_ARG, "attribute '%s': unknown type %d", key, type);
  if (!opl_io_path(path, sizeof path, NULL, obj)) return w_fail(w, err, OPL_ERR_ARG, "object name too long");
  hid_t o = opl_io_open_typed(w->f, path, H5I_BADID, NULL);
  if (o < 0) {
    int st = w_group(w, path, err);
    if (st) return st;
    o = opl_io_open_typed(w->f, path, H5I_BADID, NULL);
    if (o < 0) return w_fail(w, err, OPL_ERR_IO, "cannot open '%s'%s", path, opl_h5_why(why));
  }
  int st = OPL_OK;
  if (attr_write(o, key, type, s, i, d, why) < 0)
    st = w_fail(w, err, OPL_ERR_IO, "cannot write attribute '%s' on '%s'%s", key, path, why);
  H5Oclose(o);
  return st;
}

static int w_attrs(opl_h5w *w, const char *obj, const opl_kv *kv, int n, opl_err *err) {
  if (n > 0 && !kv) return w_fail(w, err, OPL_ERR_ARG, "NULL attribute array");
  int st = OPL_OK;
  for (int i = 0; i < n && st == OPL_OK; i++)
    st = w_attr(w, obj, kv[i].key, kv[i].type, kv[i].s, kv[i].i, kv[i].d, err);
  return st;
}

/* The public writer calls: lock, check the sticky status, do, unlock. */
#define W_CALL(expr) IO_CALL(w_check(w, err), expr)

int opl_h5w_put_array(opl_h5w *w, const char *name, int rank, const int64_t *shape, int flags,
                      const void *data, opl_dtype mem, opl_dtype disk, opl_err *err) {
  W_CALL(w_put_array(w, name, rank, shape, flags, data, mem, disk, err));
}
int opl_h5w_put_tensor(opl_h5w *w, const char *group, const opl_tensor *t, opl_dtype disk,
                       opl_err *err) {
  W_CALL(w_put_tensor(w, group, t, disk, err));
}
int opl_h5w_put_tensors(opl_h5w *w, const char *group, opl_tensor *const *t, int n,
                        opl_dtype disk, opl_err *err) {
  W_CALL(w_put_tensors(w, group, t, n, disk, err));
}
int opl_h5w_put_params(opl_h5w *w, const char *group, const opl_params *p, opl_dtype disk,
                       opl_err *err) {
  W_CALL(p ? w_put_tensors(w, group, p->t, p->n, disk, err)
           : w_fail(w, err, OPL_ERR_ARG, "NULL parameter set"));
}
int opl_h5w_group(opl_h5w *w, const char *group, opl_err *err) { W_CALL(w_group(w, group, err)); }
int opl_h5w_attr_str(opl_h5w *w, const char *obj, const char *key, const char *value,
                     opl_err *err) {
  W_CALL(w_attr(w, obj, key, OPL_KV_STR, value, 0, 0, err));
}
int opl_h5w_attr_int(opl_h5w *w, const char *obj, const char *key, int64_t value, opl_err *err) {
  W_CALL(w_attr(w, obj, key, OPL_KV_INT, NULL, value, 0, err));
}
int opl_h5w_attr_double(opl_h5w *w, const char *obj, const char *key, double value,
                        opl_err *err) {
  W_CALL(w_attr(w, obj, key, OPL_KV_REAL, NULL, 0, value, err));
}
int opl_h5w_attrs(opl_h5w *w, const char *obj, const opl_kv *kv, int n, opl_err *err) {
  W_CALL(w_attrs(w, obj, kv, n, err));
}

int opl_h5w_commit(opl_h5w **pw, opl_err *err) {
  if (!pw || !*pw) return opl_err_set(err, OPL_ERR_ARG, "io: NULL writer");
  opl_h5w *w = *pw;
  *pw = NULL;
  opl_io_guard g;
  opl_io_enter(&g);
  int st = w->status;
  if (st != OPL_OK) {
    if (err) *err = w->err;
    if (w->f >= 0) H5Fclose(w->f);
  } else {
    char why[256];
    herr_t rc = H5Fclose(w->f);
    if (rc < 0) st = w_fail(w, err, OPL_ERR_IO, "cannot close '%s'%s", w->tmp, opl_h5_why(why));
  }
  w->f = H5I_INVALID_HID;
  opl_io_leave(&g);
  int sealed = st == OPL_OK ? opl_h5_seal(w->tmp, w->path) : 0;   /* stamp, fsync, rename, fsync dir */
  if (sealed == 1)
    st = w_fail(w, err, OPL_ERR_IO, "cannot checksum and flush '%s' (%s)", w->tmp, strerror(errno));
  else if (sealed == 2)
    st = w_fail(w, err, OPL_ERR_IO, "cannot rename '%s' into place (%s)", w->tmp, strerror(errno));
  if (st != OPL_OK) unlink(w->tmp);
  w_free(w);
  return st;
}

void opl_h5w_abort(opl_h5w **pw) {
  if (!pw || !*pw) return;
  opl_h5w *w = *pw;
  *pw = NULL;
  opl_io_guard g;
  opl_io_enter(&g);
  if (w->f >= 0) H5Fclose(w->f);
  opl_io_leave(&g);
  unlink(w->tmp);
  w_free(w);
}
/* ================================================================ one-call conveniences */

/* One file: the root attributes meta[0..nmeta), then the parameters of p in group when
 * params, else the tensors t[0..n). */
static int save_file(const char *path, const char *group, opl_tensor *const *t, int n, const opl_params *p,
                     int params, opl_dtype disk, const opl_kv *meta, int nmeta, opl_err *err) {
  opl_err e;
  opl_h5w *w = opl_h5w_create(path, &e);
  if (!w) {
    if (err) *err = e;
    return e.status;
  }
  opl_h5w_attrs(w, "/", meta, nmeta, err);
  if (params) opl_h5w_put_params(w, group, p, disk, err);
  else opl_h5w_put_tensors(w, group, t, n, disk, err);
  return opl_h5w_commit(&w, err);
}

int opl_h5_save_tensors(const char *path, const char *group, opl_tensor *const *t, int n,
                        opl_dtype disk, const opl_kv *meta, int nmeta, opl_err *err) {
  return save_file(path, group, t, n, NULL, 0, disk, meta, nmeta, err);
}

int opl_h5_save_params(const char *path, const char *group, const opl_params *p,
                       opl_dtype disk, const opl_kv *meta, int nmeta, opl_err *err) {
  return save_file(path, group, NULL, 0, p, 1, disk, meta, nmeta, err);
}
