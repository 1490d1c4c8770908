/* opl datasets — the native layout's writer: incremental, resumable generation of an
 * "opl-dataset" file (opl_ds_writer_*). See datasets/h5layout.h for the layout and contracts.
 *
 * Implementation notes:
 *  - Every public function that touches HDF5 runs between opl_io_enter() and opl_io_leave()
 *    (core/h5.c): one process-wide recursive mutex, HDF5's error printing silenced. Calls into
 *    core/ I/O (which takes the same recursive lock) are made while holding it.
 *  - The writer allocates every dataset in full at creation (H5D_ALLOC_TIME_EARLY, no fill,
 *    no filters) and flushes the metadata then: a put only rewrites raw data at fixed file
 *    offsets, so killing the process at any moment leaves consistent metadata.
 *  - The user block: create() writes core/'s "unfinished data set" header into it
 *    (opl_h5_mark_partial); finish() replaces it with the checksum header and renames the file
 *    into place (opl_h5_seal: length and CRC-32 of everything after the user block, fsync,
 *    rename, fsync of the directory).
 */
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "datasets/ds_internal.h"


/* "'burgers' (a string)", "3 (an integer)", "0.001 (a float)" into buf[160]. */
static const char *kv_desc(const opl_kv *kv, char *buf) {
  if (kv->type == OPL_KV_STR) snprintf(buf, 160, "'%.120s' (a string)", kv->s ? kv->s : "");
  else if (kv->type == OPL_KV_INT) snprintf(buf, 160, "%lld (an integer)", (long long)kv->i);
  else snprintf(buf, 160, "%.17g (a float)", kv->d);
  return buf;
}

static int kv_equal(const opl_kv *a, const opl_kv *b) {
  if (a->type != b->type) return 0;
  if (a->type == OPL_KV_STR) return strcmp(a->s ? a->s : "", b->s ? b->s : "") == 0;
  if (a->type == OPL_KV_INT) return a->i == b->i;
  return memcmp(&a->d, &b->d, sizeof a->d) == 0;   /* bit for bit (NaN == NaN, -0 != 0) */
}

static const char *reserved_keys[] = {"layout", "layout_version", "opl_version"};

/* ================================================================ writer */

struct opl_ds_writer {
  char *path;           /* final name */
  char *partial;        /* "<path>.partial" */
  hid_t f, da, du, ddone;
  opl_ds_dims d;
  opl_dtype disk;       /* OPL_DT_F32 or OPL_DT_F64 (resolved) */
  unsigned char *done;  /* [N] */
  int64_t ndone;
  int status;           /* sticky I/O status */
  opl_err err;
};

static opl_dtype resolve_disk(opl_dtype t) {
  if (t == OPL_DT_NATIVE) return sizeof(opl_real) == 4 ? OPL_DT_F32 : OPL_DT_F64;
  return t;
}

/* Check the arguments shared by create and resume; d is copied (normalized) into *nd. */
static int w_check_args(const char *path, const opl_ds_dims *d, opl_dtype disk, const double *x,
                        const double *y, const double *t, const opl_ds_per_sample *ps, const opl_kv *prov,
                        int nprov, opl_ds_dims *nd, opl_err *err) {
  if (!path || !path[0]) return opl_err_set(err, OPL_ERR_ARG, "ds: writer: empty path");
  if (!d) return dfail(err, OPL_ERR_ARG, path, "NULL dims");
  *nd = *d;
  if (nd->sdim == 1) nd->y = 1;
  if (nd->sdim != 1 && nd->sdim != 2)
    return dfail(err, OPL_ERR_SHAPE, path, "spatial dimension %d, expected 1 or 2", d->sdim);
  if (nd->n < 1 || nd->t < 1 || nd->x < 1 || nd->y < 1)
    return dfail(err, OPL_ERR_SHAPE, path,
                 "dims N = %lld, T = %lld, X = %lld, Y = %lld: every extent must be >= 1",
                 (long long)d->n, (long long)d->t, (long long)d->x, (long long)nd->y);
  if (nd->steady && nd->t != 1)
    return dfail(err, OPL_ERR_SHAPE, path, "a steady data set (u without a time axis) has T = 1, got T = %lld",
                 (long long)d->t);
  const int64_t lim = (int64_t)1 << 28;   /* 2 GiB of float64 per sample */
  if (nd->t > lim || nd->x > lim || nd->y > lim || nd->t * nd->x > lim || nd->t * nd->x * nd->y > lim)
    return dfail(err, OPL_ERR_SHAPE, path, "one sample of u (T = %lld, X = %lld, Y = %lld) exceeds 2 GiB",
                 (long long)nd->t, (long long)nd->x, (long long)nd->y);
  if ((unsigned)disk > OPL_DT_F64) return dfail(err, OPL_ERR_ARG, path, "unknown dtype %d", (int)disk);
  const struct {
    const char *name;
    const double *v;
    int64_t n;
  } co[3] = {{"x", x, nd->x}, {"y", y, nd->sdim == 2 ? nd->y : 0}, {"t", t, ps && ps->t ? 0 : nd->t}};
  for (int k = 0; k < 3; k++) {
    if (co[k].n == 0) continue;
    if (!co[k].v) return dfail(err, OPL_ERR_ARG, path, "NULL coordinate array '%s'", co[k].name);
    for (int64_t i = 0; i < co[k].n; i++)
      if (!isfinite(co[k].v[i]))
        return dfail(err, OPL_ERR_ARG, path, "coordinate %s[%lld] = %g is not finite", co[k].name,
                     (long long)i, co[k].v[i]);
  }
  if (ps && ps->L)
    for (int64_t i = 0; i < nd->n; i++)
      if (!(ps->L[i] > 0) || !isfinite(ps->L[i]))
        return dfail(err, OPL_ERR_ARG, path, "per-sample domain length L[%lld] = %g, expected finite and > 0",
                     (long long)i, ps->L[i]);
  if (ps && ps->t)
    for (int64_t i = 0; i < nd->n; i++)
      for (int64_t j = 0; j < nd->t; j++) {
        double v = ps->t[i * nd->t + j], prev = j ? ps->t[i * nd->t + j - 1] : 0.0;
        if (!isfinite(v) || !(v > prev))
          return dfail(err, OPL_ERR_ARG, path,
                       "per-sample time t[%lld, %lld] = %g, expected finite and after %g (times increase from t = 0)",
                       (long long)i, (long long)j, v, prev);
      }
  if (nprov < 0 || (nprov > 0 && !prov)) return dfail(err, OPL_ERR_ARG, path, "bad provenance list (n = %d)", nprov);
  for (int i = 0; i < nprov; i++) {
    const opl_kv *kv = &prov[i];
    if (!kv->key || !kv->key[0] || strchr(kv->key, '/'))
      return dfail(err, OPL_ERR_ARG, path, "provenance entry %d: bad key '%s'", i, kv->key ? kv->key : "(null)");
    for (int r = 0; r < 3; r++)
      if (!strcmp(kv->key, reserved_keys[r]))
        return dfail(err, OPL_ERR_ARG, path, "provenance key '%s' is reserved by the layout", kv->key);
    for (int j = 0; j < i; j++)
      if (!strcmp(prov[j].key, kv->key))
        return dfail(err, OPL_ERR_ARG, path, "provenance key '%s' given twice", kv->key);
    if (kv->type != OPL_KV_STR && kv->type != OPL_KV_INT && kv->type != OPL_KV_REAL)
      return dfail(err, OPL_ERR_ARG, path, "provenance '%s': unknown type %d", kv->key, kv->type);
    if (kv->type == OPL_KV_STR && !kv->s)
      return dfail(err, OPL_ERR_ARG, path, "provenance '%s': NULL string", kv->key);
  }
  return OPL_OK;
}

static opl_ds_writer *w_alloc(const char *path, const opl_ds_dims *nd, opl_dtype disk, opl_err *err) {
  opl_ds_writer *w = calloc(1, sizeof *w);
  size_t n = strlen(path) + 16;
  if (w) {
    w->path = strdup(path);
    w->partial = malloc(n);
    w->done = calloc((size_t)nd->n, 1);
  }
  if (!w || !w->path || !w->partial || !w->done) {
    if (w) {
      free(w->path);
      free(w->partial);
      free(w->done);
      free(w);
    }
    opl_err_set(err, OPL_ERR_NOMEM, "ds: out of memory");
    return NULL;
  }
  snprintf(w->partial, n, "%s.partial", path);
  w->f = w->da = w->du = w->ddone = H5I_INVALID_HID;
  w->d = *nd;
  w->disk = resolve_disk(disk);
  return w;
}

/* Close every HDF5 id of w (under the lock) and free it. */
static void w_free(opl_ds_writer *w) {
  if (!w) return;
  OPL_H5_CLOSE_D(w->da);
  OPL_H5_CLOSE_D(w->du);
  OPL_H5_CLOSE_D(w->ddone);
  OPL_H5_CLOSE_F(w->f);
  free(w->path);
  free(w->partial);
  free(w->done);
  free(w);
}

/* Close and free w (under the lock) and delete its partial file. */
static void w_discard(opl_ds_writer *w) {
  char *p = strdup(w->partial);
  w_free(w);
  if (p) unlink(p);
  free(p);
}

/* Dataset extents of a ([N, X(, Y)]) and u ([N, T, X(, Y)], or [N, X(, Y)] when steady); returns
 * the rank. */
static int a_dims(const opl_ds_dims *d, hsize_t *s) {
  s[0] = (hsize_t)d->n;
  s[1] = (hsize_t)d->x;
  s[2] = (hsize_t)d->y;
  return d->sdim + 1;
}
static int u_dims(const opl_ds_dims *d, hsize_t *s) {
  if (d->steady) return a_dims(d, s);
  s[0] = (hsize_t)d->n;
  s[1] = (hsize_t)d->t;
  s[2] = (hsize_t)d->x;
  s[3] = (hsize_t)d->y;
  return d->sdim + 2;
}

/* Create a fully allocated dataset, chunked by `chunk` (NULL: contiguous), type ft. */
static hid_t make_dataset(hid_t f, const char *name, hid_t ft, int rank, const hsize_t *dims,
                          const hsize_t *chunk) {
  hid_t sp = H5Screate_simple(rank, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE), ds = H5I_INVALID_HID;
  if (sp >= 0 && dcpl >= 0 && (!chunk || H5Pset_chunk(dcpl, rank, chunk) >= 0) &&
      H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY) >= 0 && H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER) >= 0 &&
      H5Pset_obj_track_times(dcpl, 0) >= 0)
    ds = H5Dcreate2(f, name, ft, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  OPL_H5_CLOSE_P(dcpl);
  OPL_H5_CLOSE_S(sp);
  return ds;
}

/* Write a whole 1-D double dataset. */
static int put_coord(hid_t f, const char *name, const double *v, int64_t n) {
  hsize_t dim = (hsize_t)n;
  hid_t ds = make_dataset(f, name, H5T_IEEE_F64LE, 1, &dim, NULL);
  if (ds < 0) return -1;
  herr_t rc = H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
  H5Dclose(ds);
  return rc < 0 ? -1 : 0;
}

/* Write a whole 2-D double dataset [n0, n1]. */
static int put_coord2(hid_t f, const char *name, const double *v, int64_t n0, int64_t n1) {
  hsize_t dim[2] = {(hsize_t)n0, (hsize_t)n1};
  hid_t ds = make_dataset(f, name, H5T_IEEE_F64LE, 2, dim, NULL);
  if (ds < 0) return -1;
  herr_t rc = H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
  H5Dclose(ds);
  return rc < 0 ? -1 : 0;
}

/* Directory of path is usable and path is not a directory: OPL_OK or OPL_ERR_IO. */
static int check_target(const char *path, opl_err *err) {
  struct stat st;
  if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
    return dfail(err, OPL_ERR_IO, path, "is a directory, cannot be replaced by a data set");
  if (!strchr(path, '/')) return OPL_OK;
  char *d = opl_h5_dirname(path);
  if (!d) return opl_err_set(err, OPL_ERR_NOMEM, "ds: out of memory");
  int rc = OPL_OK;
  if (stat(d, &st) != 0 || !S_ISDIR(st.st_mode)) rc = dfail(err, OPL_ERR_IO, path, "directory '%s' does not exist", d);
  else if (access(d, W_OK) != 0) rc = dfail(err, OPL_ERR_IO, path, "directory '%s' is not writable", d);
  free(d);
  return rc;
}

opl_ds_writer *opl_ds_writer_create(const char *path, const opl_ds_dims *d, opl_dtype disk,
                                    const double *x, const double *y, const double *t,
                                    const opl_kv *prov, int nprov, opl_err *err) {
  return opl_ds_writer_create_ps(path, d, disk, x, y, t, NULL, prov, nprov, err);
}

opl_ds_writer *opl_ds_writer_create_ps(const char *path, const opl_ds_dims *d, opl_dtype disk, const double *x,
                                       const double *y, const double *t, const opl_ds_per_sample *ps,
                                       const opl_kv *prov, int nprov, opl_err *err) {
  opl_ds_dims nd;
  if (w_check_args(path, d, disk, x, y, t, ps, prov, nprov, &nd, err)) return NULL;
  if (check_target(path, err)) return NULL;
  opl_ds_writer *w = w_alloc(path, &nd, disk, err);
  if (!w) return NULL;
  opl_io_guard g;
  opl_io_enter(&g);
  char why[256] = "";
  const char *what = NULL;
  hid_t fcpl = opl_h5_fcpl(0), fapl = opl_h5_fapl(0);
  errno = 0;
  w->f = H5Fcreate(w->partial, H5F_ACC_TRUNC, fcpl, fapl);
  int e = errno;
  if (w->f < 0) opl_h5_why(why);
  OPL_H5_CLOSE_P(fcpl);
  OPL_H5_CLOSE_P(fapl);
  if (w->f < 0) {
    dfail(err, OPL_ERR_IO, path, "cannot create '%s' (%s)%s", w->partial, e ? strerror(e) : "HDF5 error", why);
    w_discard(w);
    opl_io_leave(&g);
    return NULL;
  }
  hid_t ft = w->disk == OPL_DT_F32 ? H5T_IEEE_F32LE : H5T_IEEE_F64LE;
  hsize_t ad[3], ud[4], ac[3], uc[4], nn = (hsize_t)nd.n;
  int ar = a_dims(&nd, ad), ur = u_dims(&nd, ud);
  memcpy(ac, ad, sizeof ad);
  memcpy(uc, ud, sizeof ud);
  ac[0] = uc[0] = 1;
  unsigned char *zero = calloc((size_t)nd.n, 1);
  if (!zero) what = "memory";
  else if ((w->da = make_dataset(w->f, "a", ft, ar, ad, ac)) < 0) what = "dataset 'a'";
  else if ((w->du = make_dataset(w->f, "u", ft, ur, ud, uc)) < 0) what = "dataset 'u'";
  else if ((w->ddone = make_dataset(w->f, "done", H5T_STD_U8LE, 1, &nn, NULL)) < 0 ||
           H5Dwrite(w->ddone, H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, zero) < 0)
    what = "dataset 'done'";
  else if (put_coord(w->f, "x", x, nd.x)) what = "dataset 'x'";
  else if (nd.sdim == 2 && put_coord(w->f, "y", y, nd.y)) what = "dataset 'y'";
  else if (ps && ps->t ? put_coord2(w->f, "t", ps->t, nd.n, nd.t) : put_coord(w->f, "t", t, nd.t))
    what = "dataset 't'";
  else if (ps && ps->L && put_coord(w->f, "L", ps->L, nd.n)) what = "dataset 'L'";
  free(zero);
  if (!what) {
    opl_kv res[3] = {OPL_KVS("layout", OPL_DS_LAYOUT_NAME), OPL_KVI("layout_version", OPL_DS_LAYOUT_VERSION),
                     OPL_KVS("opl_version", OPL_VERSION)};
    for (int i = 0; i < 3 && !what; i++)
      if (opl_h5_attr_put(w->f, &res[i], NULL) < 0) what = "a root attribute";
    for (int i = 0; i < nprov && !what; i++)
      if (opl_h5_attr_put(w->f, &prov[i], NULL) < 0) what = prov[i].key;
  }
  if (!what && H5Fflush(w->f, H5F_SCOPE_LOCAL) < 0) what = "the file (flush)";
  if (!what && opl_h5_mark_partial(w->partial, NULL) != OPL_OK) what = "the header block";
  if (what) {
    opl_h5_why(why);
    dfail(err, !strcmp(what, "memory") ? OPL_ERR_NOMEM : OPL_ERR_IO, path, "cannot write %s of '%s'%s",
          what, w->partial, why);
    w_discard(w);
    w = NULL;
  }
  opl_io_leave(&g);
  return w;
}

/* Compare the root attributes of the partial file with the requested ones. */
static int compare_prov(const char *path, const char *partial, const opl_kv *prov, int nprov, opl_err *err) {
  opl_kv *kv = NULL;
  int n = 0;
  opl_err e;
  if (opl_h5_read_attrs(partial, "/", &kv, &n, &e) != OPL_OK)
    return dfail(err, e.status, path, "cannot read the attributes of '%s': %s", partial, e.msg);
  const opl_kv *lay = opl_kv_find(kv, n, "layout");
  int st = OPL_OK;
  if (!lay || lay->type != OPL_KV_STR || strcmp(lay->s, OPL_DS_LAYOUT_NAME) != 0) {
    st = dfail(err, OPL_ERR_FORMAT, path, "'%s' is not a partial opl data set (no attribute layout = '%s')",
               partial, OPL_DS_LAYOUT_NAME);
    goto done;
  }
  opl_kv res[3] = {OPL_KVS("layout", OPL_DS_LAYOUT_NAME), OPL_KVI("layout_version", OPL_DS_LAYOUT_VERSION),
                   OPL_KVS("opl_version", OPL_VERSION)};
  char b1[160], b2[160];
  for (int i = 0; i < 3 + nprov; i++) {
    const opl_kv *want = i < 3 ? &res[i] : &prov[i - 3];
    const opl_kv *have = opl_kv_find(kv, n, want->key);
    if (!have) {
      st = dfail(err, OPL_ERR_ARG, path, "cannot resume: attribute '%s' = %s requested, absent from '%s'",
                 want->key, kv_desc(want, b1), partial);
      goto done;
    }
    if (!kv_equal(have, want)) {
      st = dfail(err, OPL_ERR_ARG, path, "cannot resume: attribute '%s' is %s in '%s', %s requested",
                 want->key, kv_desc(have, b1), partial, kv_desc(want, b2));
      goto done;
    }
  }
  for (int i = 0; i < n; i++) {
    int known = 0;
    for (int r = 0; r < 3; r++) known |= !strcmp(kv[i].key, reserved_keys[r]);
    for (int j = 0; j < nprov && !known; j++) known |= !strcmp(kv[i].key, prov[j].key);
    if (!known) {
      st = dfail(err, OPL_ERR_ARG, path, "cannot resume: attribute '%s' = %s is in '%s' but not requested",
                 kv[i].key, kv_desc(&kv[i], b1), partial);
      goto done;
    }
  }
done:
  opl_kv_free(&kv, n);
  return st;
}

/* Check that dataset ds has the expected extents; OPL_ERR_SHAPE naming both. */
static int check_extent(hid_t ds, const char *path, const char *file, const char *name, int rank,
                        const hsize_t *want, opl_err *err) {
  hid_t sp = H5Dget_space(ds);
  hsize_t got[8];
  int r = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
  if (r >= 0 && r <= 8) H5Sget_simple_extent_dims(sp, got, NULL);
  OPL_H5_CLOSE_S(sp);
  char s1[96], s2[96];
  if (r != rank || memcmp(got, want, sizeof(hsize_t) * (size_t)rank) != 0)
    return dfail(err, OPL_ERR_SHAPE, path, "cannot resume: dataset '%s' of '%s' has shape %s, requested %s", name,
                 file, r >= 0 && r <= 8 ? opl_ds_hshape(s1, r, got) : "(unreadable)", opl_ds_hshape(s2, rank, want));
  return OPL_OK;
}

/* Open a root dataset of w's file or fail with OPL_ERR_FORMAT. */
static hid_t w_open_ds(opl_ds_writer *w, const char *name, opl_err *err) {
  hid_t ds = opl_ds_has_dataset(w->f, name) ? H5Dopen2(w->f, name, H5P_DEFAULT) : H5I_INVALID_HID;
  if (ds < 0) dfail(err, OPL_ERR_FORMAT, w->path, "cannot resume: '%s' has no dataset '%s'", w->partial, name);
  return ds;
}

/* Coordinate dataset of shape [n] (n1 == 0) or [n, n1] equal bit for bit to v. */
static int check_coord(opl_ds_writer *w, const char *name, const double *v, int64_t n, int64_t n1, opl_err *err) {
  hid_t ds = w_open_ds(w, name, err);
  if (ds < 0) return OPL_ERR_FORMAT;
  hsize_t want[2] = {(hsize_t)n, (hsize_t)n1};
  int st = check_extent(ds, w->path, w->partial, name, n1 ? 2 : 1, want, err);
  if (n1) n *= n1;
  double *buf = st ? NULL : malloc(sizeof(double) * (size_t)n);
  if (!st && !buf) st = opl_err_set(err, OPL_ERR_NOMEM, "ds: out of memory");
  if (!st && H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
    st = dfail(err, OPL_ERR_IO, w->path, "cannot read dataset '%s' of '%s'", name, w->partial);
  for (int64_t i = 0; !st && i < n; i++)
    if (memcmp(&buf[i], &v[i], sizeof(double)) != 0)
      st = dfail(err, OPL_ERR_ARG, w->path, "cannot resume: coordinate %s[%lld] is %.17g in '%s', %.17g requested",
                 name, (long long)i, buf[i], w->partial, v[i]);
  free(buf);
  H5Dclose(ds);
  return st;
}

opl_ds_writer *opl_ds_writer_resume(const char *path, const opl_ds_dims *d, opl_dtype disk,
                                    const double *x, const double *y, const double *t,
                                    const opl_kv *prov, int nprov, opl_err *err) {
  return opl_ds_writer_resume_ps(path, d, disk, x, y, t, NULL, prov, nprov, err);
}

opl_ds_writer *opl_ds_writer_resume_ps(const char *path, const opl_ds_dims *d, opl_dtype disk, const double *x,
                                       const double *y, const double *t, const opl_ds_per_sample *ps,
                                       const opl_kv *prov, int nprov, opl_err *err) {
  opl_ds_dims nd;
  if (w_check_args(path, d, disk, x, y, t, ps, prov, nprov, &nd, err)) return NULL;
  opl_ds_writer *w = w_alloc(path, &nd, disk, err);
  if (!w) return NULL;
  struct stat st;
  if (stat(w->partial, &st) != 0) {
    dfail(err, OPL_ERR_NOTFOUND, path, "no partial file '%s' to resume", w->partial);
    opl_io_guard g;
    opl_io_enter(&g);
    w_free(w);
    opl_io_leave(&g);
    return NULL;
  }
  opl_io_guard g;
  opl_io_enter(&g);
  char why[256];
  int rc = compare_prov(path, w->partial, prov, nprov, err);
  if (!rc) {
    hid_t fapl = opl_h5_fapl(0);
    w->f = H5Fopen(w->partial, H5F_ACC_RDWR, fapl);
    if (w->f < 0) rc = dfail(err, OPL_ERR_FORMAT, path, "cannot reopen '%s' for writing%s", w->partial, opl_h5_why(why));
    OPL_H5_CLOSE_P(fapl);
  }
  hsize_t ad[3], ud[4], nn = (hsize_t)nd.n;
  int ar = a_dims(&nd, ad), ur = u_dims(&nd, ud);
  if (!rc && (w->da = w_open_ds(w, "a", err)) < 0) rc = OPL_ERR_FORMAT;
  if (!rc && (w->du = w_open_ds(w, "u", err)) < 0) rc = OPL_ERR_FORMAT;
  if (!rc && (w->ddone = w_open_ds(w, "done", err)) < 0) rc = OPL_ERR_FORMAT;
  if (!rc) rc = check_extent(w->da, path, w->partial, "a", ar, ad, err);
  if (!rc) rc = check_extent(w->du, path, w->partial, "u", ur, ud, err);
  if (!rc) rc = check_extent(w->ddone, path, w->partial, "done", 1, &nn, err);
  if (!rc) {
    hid_t ft = H5Dget_type(w->du);
    size_t sz = ft >= 0 ? H5Tget_size(ft) : 0;
    OPL_H5_CLOSE_T(ft);
    size_t want = w->disk == OPL_DT_F32 ? 4 : 8;
    if (sz != want)
      rc = dfail(err, OPL_ERR_SHAPE, path, "cannot resume: '%s' holds float%d data, float%d requested", w->partial,
                 (int)sz * 8, (int)want * 8);
  }
  if (!rc) rc = check_coord(w, "x", x, nd.x, 0, err);
  if (!rc && nd.sdim == 2) rc = check_coord(w, "y", y, nd.y, 0, err);
  if (!rc) rc = ps && ps->t ? check_coord(w, "t", ps->t, nd.n, nd.t, err) : check_coord(w, "t", t, nd.t, 0, err);
  if (!rc && ps && ps->L) rc = check_coord(w, "L", ps->L, nd.n, 0, err);
  if (!rc && !(ps && ps->L) && opl_ds_has_dataset(w->f, "L"))
    rc = dfail(err, OPL_ERR_ARG, path, "cannot resume: '%s' has per-sample domain lengths 'L', none requested",
               w->partial);
  if (!rc && H5Dread(w->ddone, H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, w->done) < 0)
    rc = dfail(err, OPL_ERR_IO, path, "cannot read dataset 'done' of '%s'%s", w->partial, opl_h5_why(why));
  if (rc) {
    w_free(w);
    w = NULL;
  } else {
    for (int64_t i = 0; i < nd.n; i++) w->ndone += w->done[i] != 0;
  }
  opl_io_leave(&g);
  return w;
}

int opl_ds_writer_status(const opl_ds_writer *w) {
  if (!w) return OPL_ERR_ARG;
  opl_io_guard g;
  opl_io_enter(&g);
  int st = w->status;
  opl_io_leave(&g);
  return st;
}

int64_t opl_ds_writer_todo(const opl_ds_writer *w, int64_t *idx) {
  if (!w) return 0;
  opl_io_guard g;
  opl_io_enter(&g);
  int64_t k = 0;
  for (int64_t i = 0; i < w->d.n; i++)
    if (!w->done[i]) {
      if (idx) idx[k] = i;
      k++;
    }
  opl_io_leave(&g);
  return k;
}

/* Position of flat element k of a sample array as "t=.., x=.., y=.." into buf[96]. */
static const char *pos_desc(const opl_ds_dims *d, int has_t, int64_t k, char *buf) {
  int64_t yy = k % d->y, xx = (k / d->y) % d->x, tt = k / (d->x * d->y);
  int n = 0;
  if (has_t) n = snprintf(buf, 96, "t index %lld, ", (long long)tt);
  if (d->sdim == 2) snprintf(buf + n, 96 - n, "x index %lld, y index %lld", (long long)xx, (long long)yy);
  else snprintf(buf + n, 96 - n, "x index %lld", (long long)xx);
  return buf;
}

/* Index of the first element of v[0..n) (type mem) that is not finite or, when f32, exceeds
 * float32's range; -1 if none. *val gets it. */
static int64_t first_bad(const void *v, opl_dtype mem, int64_t n, int f32, double *val) {
  int64_t bad = -1;
  if (mem == OPL_DT_F32) {
    const float *p = v;
    for (int64_t i = 0; i < n; i++)
      if (!isfinite(p[i])) {
        bad = i;
        break;
      }
    if (bad >= 0) *val = p[bad];
  } else {
    const double *p = v;
    for (int64_t i = 0; i < n; i++)
      if (!isfinite(p[i]) || (f32 && fabs(p[i]) > FLT_MAX)) {
        bad = i;
        break;
      }
    if (bad >= 0) *val = p[bad];
  }
  return bad;
}

/* Write one sample's slab of dataset ds: file rows [i, i+1), memory type mt. */
static herr_t write_row(hid_t ds, int rank, const hsize_t *dims, int64_t i, hid_t mt, const void *data) {
  hsize_t start[4] = {(hsize_t)i, 0, 0, 0}, count[4];
  memcpy(count, dims, sizeof(hsize_t) * (size_t)rank);
  count[0] = 1;
  hsize_t nel = 1;
  for (int k = 1; k < rank; k++) nel *= dims[k];
  hid_t fs = H5Dget_space(ds), ms = H5Screate_simple(1, &nel, NULL);
  herr_t rc = -1;
  if (fs >= 0 && ms >= 0 && H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) >= 0)
    rc = H5Dwrite(ds, mt, ms, fs, H5P_DEFAULT, data);
  OPL_H5_CLOSE_S(ms);
  OPL_H5_CLOSE_S(fs);
  return rc;
}

int opl_ds_writer_put(opl_ds_writer *w, int64_t i, const void *a, const void *u, opl_dtype mem,
                      opl_err *err) {
  if (!w) return opl_err_set(err, OPL_ERR_ARG, "ds: NULL writer");
  /* (the sticky status is checked under the lock below: puts may run on many threads) */
  if (i < 0 || i >= w->d.n)
    return dfail(err, OPL_ERR_ARG, w->path, "sample index %lld outside [0, %lld)", (long long)i, (long long)w->d.n);
  if (!a || !u) return dfail(err, OPL_ERR_ARG, w->path, "sample %lld: NULL %s", (long long)i, !a ? "a" : "u");
  if ((unsigned)mem > OPL_DT_F64) return dfail(err, OPL_ERR_ARG, w->path, "unknown memory dtype %d", (int)mem);
  opl_dtype m = resolve_disk(mem);
  int f32 = w->disk == OPL_DT_F32;
  int64_t pa = w->d.x * w->d.y, pu = w->d.t * pa;
  double val = 0;
  char pd[96];
  int64_t k = first_bad(a, m, pa, f32, &val);
  if (k >= 0)
    return dfail(err, OPL_ERR_NONFINITE, w->path, "sample %lld: a has %s %g at %s", (long long)i,
                 isfinite(val) ? "a value beyond float32 range," : "a non-finite value", val, pos_desc(&w->d, 0, k, pd));
  k = first_bad(u, m, pu, f32, &val);
  if (k >= 0)
    return dfail(err, OPL_ERR_NONFINITE, w->path, "sample %lld: u has %s %g at %s", (long long)i,
                 isfinite(val) ? "a value beyond float32 range," : "a non-finite value", val, pos_desc(&w->d, !w->d.steady, k, pd));

  opl_io_guard g;
  opl_io_enter(&g);
  int st = w->status;
  if (st) {
    if (err) *err = w->err;
  } else {
    hid_t mt = m == OPL_DT_F32 ? H5T_NATIVE_FLOAT : H5T_NATIVE_DOUBLE;
    hsize_t ad[3], ud[4];
    int ar = a_dims(&w->d, ad), ur = u_dims(&w->d, ud);
    hsize_t one = 1, pos = (hsize_t)i;
    unsigned char flag = 1;
    const char *what = NULL;
    char why[256] = "";
    if (write_row(w->da, ar, ad, i, mt, a) < 0) what = "a";
    else if (write_row(w->du, ur, ud, i, mt, u) < 0) what = "u";
    else if (H5Fflush(w->f, H5F_SCOPE_LOCAL) < 0) what = "(flush)";
    else {
      hid_t fs = H5Dget_space(w->ddone), ms = H5Screate_simple(1, &one, NULL);
      herr_t rc = -1;
      if (fs >= 0 && ms >= 0 && H5Sselect_elements(fs, H5S_SELECT_SET, 1, &pos) >= 0)
        rc = H5Dwrite(w->ddone, H5T_NATIVE_UCHAR, ms, fs, H5P_DEFAULT, &flag);
      if (rc < 0) opl_h5_why(why);
      OPL_H5_CLOSE_S(ms);
      OPL_H5_CLOSE_S(fs);
      if (rc < 0) what = "done";
      else if (H5Fflush(w->f, H5F_SCOPE_LOCAL) < 0) what = "(flush)";
    }
    if (what) {
      if (!why[0]) opl_h5_why(why);
      st = dfail(&w->err, OPL_ERR_IO, w->path, "sample %lld: cannot write %s%s to '%s'%s", (long long)i,
                 what[0] == '(' ? "" : "dataset ", what, w->partial, why);
      w->status = st;
      if (err) *err = w->err;
    } else {
      if (!w->done[i]) w->ndone++;
      w->done[i] = 1;
    }
  }
  opl_io_leave(&g);
  return st;
}

int opl_ds_writer_finish(opl_ds_writer **pw, opl_err *err) {
  if (!pw || !*pw) return opl_err_set(err, OPL_ERR_ARG, "ds: NULL writer");
  opl_ds_writer *w = *pw;
  opl_io_guard g;
  opl_io_enter(&g);
  int st = w->status;
  if (st) {
    if (err) *err = w->err;
    opl_io_leave(&g);
    return st;
  }
  if (w->ndone < w->d.n) {
    int64_t first = 0;
    while (first < w->d.n && w->done[first]) first++;
    st = dfail(err, OPL_ERR_STATE, w->path, "cannot finish: %lld of %lld samples not written (first missing: %lld)",
               (long long)(w->d.n - w->ndone), (long long)w->d.n, (long long)first);
    opl_io_leave(&g);
    return st;
  }
  char why[256] = "";
  OPL_H5_CLOSE_D(w->da);
  OPL_H5_CLOSE_D(w->du);
  OPL_H5_CLOSE_D(w->ddone);
  if (H5Ldelete(w->f, "done", H5P_DEFAULT) < 0) {
    st = dfail(err, OPL_ERR_IO, w->path, "cannot remove dataset 'done' from '%s'%s", w->partial, opl_h5_why(why));
  }
  herr_t rc = H5Fclose(w->f);
  w->f = H5I_INVALID_HID;
  if (!st && rc < 0) st = dfail(err, OPL_ERR_IO, w->path, "cannot close '%s'%s", w->partial, opl_h5_why(why));
  int sealed = st ? 0 : opl_h5_seal(w->partial, w->path);   /* stamp, fsync, rename, fsync dir */
  if (sealed == 1)
    st = dfail(err, OPL_ERR_IO, w->path, "cannot checksum '%s' (%s)", w->partial, strerror(errno));
  else if (sealed == 2)
    st = dfail(err, OPL_ERR_IO, w->path, "cannot rename '%s' to it (%s)", w->partial, strerror(errno));
  w_free(w);
  *pw = NULL;
  opl_io_leave(&g);
  return st;
}

void opl_ds_writer_close(opl_ds_writer **pw) {
  if (!pw || !*pw) return;
  opl_io_guard g;
  opl_io_enter(&g);
  w_free(*pw);
  *pw = NULL;
  opl_io_leave(&g);
}

void opl_ds_writer_abort(opl_ds_writer **pw) {
  if (!pw || !*pw) return;
  char *p = strdup((*pw)->partial);
  opl_ds_writer_close(pw);
  if (p) unlink(p);
  free(p);
}
