/* opl datasets — HDF5 layouts: native writer (incremental, resumable) and readers for the
 * native, FNO MATLAB v7.3 and PDEBench layouts. See h5layout.h for the layouts and contracts.
 *
 * Implementation notes:
 *  - Every public function that touches HDF5 runs between opl_io_enter() and opl_io_leave(): one
 *    process-wide recursive mutex (the installed HDF5 is the serial, non-thread-safe build)
 *    and HDF5's automatic error printing switched off, the previous handler restored after.
 *    Calls into core/io.c (which has its own lock) are made while holding ours; io.c never
 *    calls back, so the lock order is always ours -> io's.
 *  - A stored array is described by a ds_var: which file axis holds each LOGICAL axis
 *    (n, t, x, y) and how many leading stored frames are skipped (a t = 0 frame). A read
 *    selects, in file coordinates, the union of hyperslabs {runs of consecutive sample
 *    indices} x [frames] x [::sub] x [::sub] — a Cartesian product, so HDF5 returns it densely
 *    in file row-major order — into a scratch buffer, and one strided copy puts it in the
 *    logical order [n][t][x][y] (the transpose of MATLAB's reversed axes happens there). When
 *    the file order already is the logical order and the indices are strictly increasing,
 *    HDF5 reads straight into the caller's buffer.
 *  - The writer allocates every dataset in full at creation (H5D_ALLOC_TIME_EARLY, no fill,
 *    no filters) and flushes the metadata then: a put only rewrites raw data at fixed file
 *    offsets, so killing the process at any moment leaves consistent metadata.
 *  - The user block: create() writes core/io.c's "unfinished data set" header into it
 *    (opl_h5_mark_partial); finish() replaces it with the checksum header (opl_h5_stamp: length
 *    and CRC-32 of everything after the user block). Readers check it through core/io.c
 *    (opl_ds_open reads the root attributes with opl_h5_read_attrs, whose opl_h5r_open runs
 *    opl_h5_check) before HDF5 parses the file.
 */
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hdf5.h>

#include "datasets/h5layout.h"

#define UB_SIZE 512                 /* user block of every file opl writes */

enum { LN = 0, LT = 1, LX = 2, LY = 3 };  /* logical axes */

/* ================================================================ lock, silence, errors */

/* HDF5 calls run between opl_io_enter and opl_io_leave (core/io.h): one process-wide lock,
 * HDF5's error printing silenced; opl_h5_why reads the failing call's reason. */

/* Fill err with "ds: '<file>': <message>"; returns status. */
static int dfail(opl_err *err, int status, const char *file, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int dfail(opl_err *err, int status, const char *file, const char *fmt, ...) {
  char m[440];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(m, sizeof m, fmt, ap);
  va_end(ap);
  return opl_err_set(err, status, "ds: '%s': %s", file ? file : "(null)", m);
}

static void close_id(hid_t *id, herr_t (*fn)(hid_t)) {
  if (*id >= 0) fn(*id);
  *id = H5I_INVALID_HID;
}
#define CLOSE_T(x) close_id(&(x), H5Tclose)
#define CLOSE_S(x) close_id(&(x), H5Sclose)
#define CLOSE_D(x) close_id(&(x), H5Dclose)
#define CLOSE_A(x) close_id(&(x), H5Aclose)
#define CLOSE_P(x) close_id(&(x), H5Pclose)
#define CLOSE_F(x) close_id(&(x), H5Fclose)

const char *opl_ds_layout_name(int layout) {
  switch (layout) {
    case OPL_DS_AUTO: return "auto";
    case OPL_DS_NATIVE: return OPL_DS_LAYOUT_NAME;
    case OPL_DS_FNO_MAT: return "fno-mat";
    case OPL_DS_PDEBENCH: return "pdebench";
    default: return "unknown";
  }
}

/* "(2, 3, 64)" from hsize_t dims into buf[96]. */
static char *hshape(char *buf, int rank, const hsize_t *dims) {
  int64_t s[8];
  for (int i = 0; i < rank && i < 8; i++) s[i] = (int64_t)dims[i];
  if (rank > OPL_MAX_RANK) {
    int k = snprintf(buf, 96, "(");
    for (int i = 0; i < rank && k < 90; i++) k += snprintf(buf + k, 96 - k, i ? ", %lld" : "%lld", (long long)s[i]);
    snprintf(buf + k, 96 - k, ")");
    return buf;
  }
  return opl_shape_str(buf, rank, s);
}

static const char *class_name(H5T_class_t c) {
  switch (c) {
    case H5T_INTEGER: return "integer";
    case H5T_FLOAT: return "float";
    case H5T_STRING: return "string";
    case H5T_COMPOUND: return "compound (complex?)";
    case H5T_REFERENCE: return "reference (a MATLAB cell or struct?)";
    case H5T_ENUM: return "enum";
    case H5T_VLEN: return "variable-length";
    case H5T_ARRAY: return "array";
    default: return "non-numeric";
  }
}

/* 1 if a link `name` exists at the root of f and is a dataset. */
static int has_dataset(hid_t f, const char *name) {
  if (!name || !name[0]) return 0;
  if (H5Lexists(f, name, H5P_DEFAULT) <= 0) return 0;
  H5O_info_t oi;
  if (H5Oget_info_by_name(f, name, &oi, H5P_DEFAULT) < 0) return 0;
  return oi.type == H5O_TYPE_DATASET;
}

/* Names of the root datasets, comma separated, into buf[cap] ("none" if empty). */
static herr_t list_cb(hid_t g, const char *name, const H5L_info_t *info, void *data) {
  (void)info;
  char **b = data;  /* b[0] = buf, b[1] = (char *)cap */
  size_t cap = (size_t)(uintptr_t)b[1];
  if (!has_dataset(g, name)) return 0;
  size_t k = strlen(b[0]);
  if (k + strlen(name) + 3 < cap) snprintf(b[0] + k, cap - k, "%s%s", k ? ", " : "", name);
  else if (k + 5 < cap && !strstr(b[0], "...")) snprintf(b[0] + k, cap - k, ", ...");
  return 0;
}
static const char *list_datasets(hid_t f, char *buf, size_t cap) {
  buf[0] = 0;
  char *b[2] = {buf, (char *)(uintptr_t)cap};
  H5Literate(f, H5_INDEX_NAME, H5_ITER_NATIVE, NULL, list_cb, b);
  H5Eclear2(H5E_DEFAULT);
  if (!buf[0]) snprintf(buf, cap, "none");
  return buf;
}

/* ================================================================ CRC-32 user block */

/* The checksum block is core/io.c's (opl_h5_stamp); 0 or -1. */
static int crc_stamp(const char *path) { return opl_h5_stamp(path, NULL) == OPL_OK ? 0 : -1; }

/* fsync the directory holding path (so a rename is durable); errors ignored. */
static void fsync_dir(const char *path) {
  char *d = strdup(path);
  if (!d) return;
  char *s = strrchr(d, '/');
  if (!s) snprintf(d, strlen(d) + 1, ".");
  else if (s == d) s[1] = 0;
  else *s = 0;
  int fd = open(d, O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
  free(d);
}

/* ================================================================ attributes (writer) */

/* Write a scalar attribute (string / int64 / float64) on object o. < 0 on failure. */
static herr_t attr_put(hid_t o, const opl_kv *kv) {
  herr_t rc = -1;
  hid_t sp = H5Screate(H5S_SCALAR), ft = H5I_INVALID_HID, a = H5I_INVALID_HID;
  if (sp < 0) return -1;
  if (kv->type == OPL_KV_STR) {
    ft = H5Tcopy(H5T_C_S1);
    if (ft >= 0 && H5Tset_size(ft, H5T_VARIABLE) >= 0 && H5Tset_cset(ft, H5T_CSET_UTF8) >= 0 &&
        (a = H5Acreate2(o, kv->key, ft, sp, H5P_DEFAULT, H5P_DEFAULT)) >= 0)
      rc = H5Awrite(a, ft, &kv->s);
  } else if (kv->type == OPL_KV_INT) {
    if ((a = H5Acreate2(o, kv->key, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT)) >= 0)
      rc = H5Awrite(a, H5T_NATIVE_INT64, &kv->i);
  } else {
    if ((a = H5Acreate2(o, kv->key, H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT)) >= 0)
      rc = H5Awrite(a, H5T_NATIVE_DOUBLE, &kv->d);
  }
  CLOSE_A(a);
  CLOSE_T(ft);
  CLOSE_S(sp);
  return rc;
}

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
                        const double *y, const double *t, const opl_kv *prov, int nprov,
                        opl_ds_dims *nd, opl_err *err) {
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
  const int64_t lim = (int64_t)1 << 28;   /* 2 GiB of float64 per sample */
  if (nd->t > lim || nd->x > lim || nd->y > lim || nd->t * nd->x > lim || nd->t * nd->x * nd->y > lim)
    return dfail(err, OPL_ERR_SHAPE, path, "one sample of u (T = %lld, X = %lld, Y = %lld) exceeds 2 GiB",
                 (long long)nd->t, (long long)nd->x, (long long)nd->y);
  if ((unsigned)disk > OPL_DT_F64) return dfail(err, OPL_ERR_ARG, path, "unknown dtype %d", (int)disk);
  const struct {
    const char *name;
    const double *v;
    int64_t n;
  } co[3] = {{"x", x, nd->x}, {"y", y, nd->sdim == 2 ? nd->y : 0}, {"t", t, nd->t}};
  for (int k = 0; k < 3; k++) {
    if (co[k].n == 0) continue;
    if (!co[k].v) return dfail(err, OPL_ERR_ARG, path, "NULL coordinate array '%s'", co[k].name);
    for (int64_t i = 0; i < co[k].n; i++)
      if (!isfinite(co[k].v[i]))
        return dfail(err, OPL_ERR_ARG, path, "coordinate %s[%lld] = %g is not finite", co[k].name,
                     (long long)i, co[k].v[i]);
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
  CLOSE_D(w->da);
  CLOSE_D(w->du);
  CLOSE_D(w->ddone);
  CLOSE_F(w->f);
  free(w->path);
  free(w->partial);
  free(w->done);
  free(w);
}

/* Dataset extents of a ([N, X(, Y)]) and u ([N, T, X(, Y)]); returns the rank. */
static int a_dims(const opl_ds_dims *d, hsize_t *s) {
  s[0] = (hsize_t)d->n;
  s[1] = (hsize_t)d->x;
  s[2] = (hsize_t)d->y;
  return d->sdim + 1;
}
static int u_dims(const opl_ds_dims *d, hsize_t *s) {
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
  CLOSE_P(dcpl);
  CLOSE_S(sp);
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

static hid_t file_fapl(void) {
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  if (fapl >= 0) H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG);
  return fapl;
}

/* Directory of path is usable and path is not a directory: OPL_OK or OPL_ERR_IO. */
static int check_target(const char *path, opl_err *err) {
  struct stat st;
  if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
    return dfail(err, OPL_ERR_IO, path, "is a directory, cannot be replaced by a data set");
  char *d = strdup(path);
  if (!d) return opl_err_set(err, OPL_ERR_NOMEM, "ds: out of memory");
  char *s = strrchr(d, '/');
  int rc = OPL_OK;
  if (s) {
    if (s == d) s[1] = 0;
    else *s = 0;
    if (stat(d, &st) != 0 || !S_ISDIR(st.st_mode)) rc = dfail(err, OPL_ERR_IO, path, "directory '%s' does not exist", d);
    else if (access(d, W_OK) != 0) rc = dfail(err, OPL_ERR_IO, path, "directory '%s' is not writable", d);
  }
  free(d);
  return rc;
}

opl_ds_writer *opl_ds_writer_create(const char *path, const opl_ds_dims *d, opl_dtype disk,
                                    const double *x, const double *y, const double *t,
                                    const opl_kv *prov, int nprov, opl_err *err) {
  opl_ds_dims nd;
  if (w_check_args(path, d, disk, x, y, t, prov, nprov, &nd, err)) return NULL;
  if (check_target(path, err)) return NULL;
  opl_ds_writer *w = w_alloc(path, &nd, disk, err);
  if (!w) return NULL;
  opl_io_guard g;
  opl_io_enter(&g);
  char why[256] = "";
  const char *what = NULL;
  hid_t fcpl = H5Pcreate(H5P_FILE_CREATE), fapl = file_fapl();
  if (fcpl >= 0) H5Pset_userblock(fcpl, UB_SIZE);
  errno = 0;
  w->f = H5Fcreate(w->partial, H5F_ACC_TRUNC, fcpl, fapl);
  int e = errno;
  if (w->f < 0) opl_h5_why(why);
  CLOSE_P(fcpl);
  CLOSE_P(fapl);
  if (w->f < 0) {
    dfail(err, OPL_ERR_IO, path, "cannot create '%s' (%s)%s", w->partial, e ? strerror(e) : "HDF5 error", why);
    char *p = strdup(w->partial);
    w_free(w);
    if (p) unlink(p);
    free(p);
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
  else if (put_coord(w->f, "t", t, nd.t)) what = "dataset 't'";
  free(zero);
  if (!what) {
    opl_kv res[3] = {OPL_KVS("layout", OPL_DS_LAYOUT_NAME), OPL_KVI("layout_version", OPL_DS_LAYOUT_VERSION),
                     OPL_KVS("opl_version", OPL_VERSION)};
    for (int i = 0; i < 3 && !what; i++)
      if (attr_put(w->f, &res[i]) < 0) what = "a root attribute";
    for (int i = 0; i < nprov && !what; i++)
      if (attr_put(w->f, &prov[i]) < 0) what = prov[i].key;
  }
  if (!what && H5Fflush(w->f, H5F_SCOPE_LOCAL) < 0) what = "the file (flush)";
  if (!what && opl_h5_mark_partial(w->partial, NULL) != OPL_OK) what = "the header block";
  if (what) {
    opl_h5_why(why);
    dfail(err, !strcmp(what, "memory") ? OPL_ERR_NOMEM : OPL_ERR_IO, path, "cannot write %s of '%s'%s",
          what, w->partial, why);
    char *p = strdup(w->partial);
    w_free(w);
    if (p) unlink(p);
    free(p);
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
  CLOSE_S(sp);
  char s1[96], s2[96];
  if (r != rank || memcmp(got, want, sizeof(hsize_t) * (size_t)rank) != 0)
    return dfail(err, OPL_ERR_SHAPE, path, "cannot resume: dataset '%s' of '%s' has shape %s, requested %s", name,
                 file, r >= 0 && r <= 8 ? hshape(s1, r, got) : "(unreadable)", hshape(s2, rank, want));
  return OPL_OK;
}

/* Open a root dataset of w's file or fail with OPL_ERR_FORMAT. */
static hid_t w_open_ds(opl_ds_writer *w, const char *name, opl_err *err) {
  hid_t ds = has_dataset(w->f, name) ? H5Dopen2(w->f, name, H5P_DEFAULT) : H5I_INVALID_HID;
  if (ds < 0) dfail(err, OPL_ERR_FORMAT, w->path, "cannot resume: '%s' has no dataset '%s'", w->partial, name);
  return ds;
}

/* Coordinate dataset equal bit for bit to v[0..n). */
static int check_coord(opl_ds_writer *w, const char *name, const double *v, int64_t n, opl_err *err) {
  hid_t ds = w_open_ds(w, name, err);
  if (ds < 0) return OPL_ERR_FORMAT;
  hsize_t want = (hsize_t)n;
  int st = check_extent(ds, w->path, w->partial, name, 1, &want, err);
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
  opl_ds_dims nd;
  if (w_check_args(path, d, disk, x, y, t, prov, nprov, &nd, err)) return NULL;
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
    hid_t fapl = file_fapl();
    w->f = H5Fopen(w->partial, H5F_ACC_RDWR, fapl);
    if (w->f < 0) rc = dfail(err, OPL_ERR_FORMAT, path, "cannot reopen '%s' for writing%s", w->partial, opl_h5_why(why));
    CLOSE_P(fapl);
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
    CLOSE_T(ft);
    size_t want = w->disk == OPL_DT_F32 ? 4 : 8;
    if (sz != want)
      rc = dfail(err, OPL_ERR_SHAPE, path, "cannot resume: '%s' holds float%d data, float%d requested", w->partial,
                 (int)sz * 8, (int)want * 8);
  }
  if (!rc) rc = check_coord(w, "x", x, nd.x, err);
  if (!rc && nd.sdim == 2) rc = check_coord(w, "y", y, nd.y, err);
  if (!rc) rc = check_coord(w, "t", t, nd.t, err);
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
  CLOSE_S(ms);
  CLOSE_S(fs);
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
                 isfinite(val) ? "a value beyond float32 range," : "a non-finite value", val, pos_desc(&w->d, 1, k, pd));

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
      CLOSE_S(ms);
      CLOSE_S(fs);
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
  CLOSE_D(w->da);
  CLOSE_D(w->du);
  CLOSE_D(w->ddone);
  if (H5Ldelete(w->f, "done", H5P_DEFAULT) < 0) {
    st = dfail(err, OPL_ERR_IO, w->path, "cannot remove dataset 'done' from '%s'%s", w->partial, opl_h5_why(why));
  }
  herr_t rc = H5Fclose(w->f);
  w->f = H5I_INVALID_HID;
  if (!st && rc < 0) st = dfail(err, OPL_ERR_IO, w->path, "cannot close '%s'%s", w->partial, opl_h5_why(why));
  if (!st && crc_stamp(w->partial) != 0)
    st = dfail(err, OPL_ERR_IO, w->path, "cannot checksum '%s' (%s)", w->partial, strerror(errno));
  if (!st && rename(w->partial, w->path) != 0)
    st = dfail(err, OPL_ERR_IO, w->path, "cannot rename '%s' to it (%s)", w->partial, strerror(errno));
  if (!st) fsync_dir(w->path);
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

/* ================================================================ readers */

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
  opl_kv *attrs;
  int nattrs;
  /* scratch, grown on demand (steady-state reads do not allocate) */
  opl_real *buf;
  size_t buf_cap;         /* elements */
  int64_t *ord;           /* [2 count]: (index, position) pairs, then [count] unique map */
  size_t ord_cap;         /* int64 elements */
};

static void var_init(ds_var *v) {
  memset(v, 0, sizeof *v);
  v->id = H5I_INVALID_HID;
  for (int k = 0; k < 4; k++) v->ax[k] = -1;
}

/* Open root dataset `name` into v (extents; float data required). */
static int var_open(opl_ds *d, ds_var *v, const char *name, opl_err *err) {
  char why[256];
  snprintf(v->name, sizeof v->name, "%s", name);
  if (!has_dataset(d->f, name)) {
    char lst[200];
    return dfail(err, OPL_ERR_NOTFOUND, d->path, "no dataset '%s' (datasets: %s)", name,
                 list_datasets(d->f, lst, sizeof lst));
  }
  v->id = H5Dopen2(d->f, name, H5P_DEFAULT);
  if (v->id < 0) return dfail(err, OPL_ERR_FORMAT, d->path, "cannot open dataset '%s'%s", name, opl_h5_why(why));
  hid_t sp = H5Dget_space(v->id), ft = H5Dget_type(v->id);
  v->frank = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
  if (v->frank > 8) v->frank = -1;
  if (v->frank >= 0) H5Sget_simple_extent_dims(sp, v->fdims, NULL);
  H5T_class_t cls = ft >= 0 ? H5Tget_class(ft) : H5T_NO_CLASS;
  CLOSE_S(sp);
  CLOSE_T(ft);
  if (v->frank < 0) return dfail(err, OPL_ERR_FORMAT, d->path, "dataset '%s' has an unsupported dataspace", name);
  if (cls != H5T_FLOAT)
    return dfail(err, OPL_ERR_FORMAT, d->path, "dataset '%s' holds %s data, expected floating point", name,
                 class_name(cls));
  for (int k = 0; k < v->frank; k++)
    if (v->fdims[k] == 0) {
      char s[96];
      return dfail(err, OPL_ERR_SHAPE, d->path, "dataset '%s' has shape %s: axis %d is empty", name,
                   hshape(s, v->frank, v->fdims), k);
    }
  return OPL_OK;
}

static int64_t var_ext(const ds_var *v, int lax) {
  return v->ax[lax] < 0 ? 1 : (int64_t)v->fdims[v->ax[lax]];
}

/* Whole 1-D (or (n, 1) / (1, n)) float dataset as a heap double array; *n its length.
 * OPL_ERR_NOTFOUND when absent. */
static int read_vector(opl_ds *d, const char *name, double **out, int64_t *n, opl_err *err) {
  ds_var v;
  var_init(&v);
  *out = NULL;
  *n = 0;
  if (!has_dataset(d->f, name)) return OPL_ERR_NOTFOUND;
  int st = var_open(d, &v, name, err);
  int64_t len = 1, big = 0;
  for (int k = 0; !st && k < v.frank; k++) {
    len *= (int64_t)v.fdims[k];
    if (v.fdims[k] > 1) big++;
  }
  char s[96];
  if (!st && big > 1)
    st = dfail(err, OPL_ERR_SHAPE, d->path, "coordinate dataset '%s' has shape %s, expected a vector", name,
               hshape(s, v.frank, v.fdims));
  if (!st) {
    *out = malloc(sizeof(double) * (size_t)(len > 0 ? len : 1));
    if (!*out) st = opl_err_set(err, OPL_ERR_NOMEM, "ds: out of memory");
    else if (H5Dread(v.id, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, *out) < 0)
      st = dfail(err, OPL_ERR_IO, d->path, "cannot read dataset '%s'", name);
  }
  CLOSE_D(v.id);
  if (st) {
    free(*out);
    *out = NULL;
  } else {
    *n = len;
  }
  return st;
}

/* Grow the scratch buffers to hold nbuf reals and nord int64s. */
static int grow(opl_ds *d, size_t nbuf, size_t nord, opl_err *err) {
  if (nbuf > d->buf_cap) {
    opl_real *p = realloc(d->buf, nbuf * sizeof *p);
    if (!p) return opl_err_set(err, OPL_ERR_NOMEM, "ds: out of memory (%zu values of scratch)", nbuf);
    d->buf = p;
    d->buf_cap = nbuf;
  }
  if (nord > d->ord_cap) {
    int64_t *p = realloc(d->ord, nord * sizeof *p);
    if (!p) return opl_err_set(err, OPL_ERR_NOMEM, "ds: out of memory");
    d->ord = p;
    d->ord_cap = nord;
  }
  return OPL_OK;
}

static int cmp_pair(const void *p, const void *q) {
  const int64_t *a = p, *b = q;
  if (a[0] != b[0]) return a[0] < b[0] ? -1 : 1;
  return a[1] < b[1] ? -1 : a[1] > b[1];
}

int opl_ds_check_sub(const opl_ds *d, int sub, int64_t *nx, int64_t *ny, opl_err *err) {
  if (!d) return opl_err_set(err, OPL_ERR_ARG, "ds: NULL data set");
  const opl_ds_dims *dm = &d->info.dims;
  if (sub < 1) return dfail(err, OPL_ERR_ARG, d->path, "spatial stride sub = %d, expected >= 1", sub);
  if (dm->x % sub != 0)
    return dfail(err, OPL_ERR_ARG, d->path, "sub = %d does not divide the resolution X = %lld of dataset '%s'", sub,
                 (long long)dm->x, d->info.u_name);
  if (dm->sdim == 2 && dm->y % sub != 0)
    return dfail(err, OPL_ERR_ARG, d->path, "sub = %d does not divide the resolution Y = %lld of dataset '%s'", sub,
                 (long long)dm->y, d->info.u_name);
  if (nx) *nx = dm->x / sub;
  if (ny) *ny = dm->sdim == 2 ? dm->y / sub : 1;
  return OPL_OK;
}

/* Read samples idx[0..count), logical frames [t0, t0 + nt), stride sub of variable v into
 * dst [count, nt, X/sub, Y/sub]; checks finiteness. Under the lock. */
static int var_read(opl_ds *d, ds_var *v, const int64_t *idx, int64_t count, int64_t t0, int64_t nt, int sub,
                    opl_real *dst, opl_err *err) {
  int64_t N = d->info.dims.n, nx, ny;
  int st = opl_ds_check_sub(d, sub, &nx, &ny, err);
  if (st) return st;
  if (count < 1 || !idx || !dst)
    return dfail(err, OPL_ERR_ARG, d->path, "dataset '%s': %s", v->name, count < 1 ? "count < 1" : "NULL buffer");
  for (int64_t j = 0; j < count; j++)
    if (idx[j] < 0 || idx[j] >= N)
      return dfail(err, OPL_ERR_ARG, d->path, "dataset '%s': sample index %lld outside [0, %lld)", v->name,
                   (long long)idx[j], (long long)N);
  /* Sort (index, position) pairs; m unique indices; map[j] = rank of idx[j] among them. */
  if ((st = grow(d, 0, (size_t)count * 3, err))) return st;
  int64_t *pairs = d->ord, *map = d->ord + 2 * count;
  int sorted = 1;
  for (int64_t j = 0; j < count; j++) {
    pairs[2 * j] = idx[j];
    pairs[2 * j + 1] = j;
    if (j && idx[j] <= idx[j - 1]) sorted = 0;
  }
  if (!sorted) qsort(pairs, (size_t)count, 2 * sizeof(int64_t), cmp_pair);
  int64_t m = 0;
  for (int64_t j = 0; j < count; j++) {
    if (j && pairs[2 * j] != pairs[2 * (j - 1)]) m++;
    map[pairs[2 * j + 1]] = m;
  }
  m++;

  /* File selection: the union over runs of consecutive indices. */
  hsize_t start[8], stride[8], cnt[8];
  for (int f = 0; f < v->frank; f++) {
    start[f] = 0;
    stride[f] = 1;
    cnt[f] = 1;   /* file axes holding no logical axis have extent 1 or are pinned at 0 */
  }
  int64_t lext[4] = {m, nt, nx, ny}, lstart[4] = {0, v->toff + t0, 0, 0}, lstride[4] = {1, 1, sub, sub};
  for (int l = 1; l < 4; l++) {
    int f = v->ax[l];
    if (f < 0) continue;
    start[f] = (hsize_t)lstart[l];
    stride[f] = (hsize_t)lstride[l];
    cnt[f] = (hsize_t)lext[l];
  }
  int fn = v->ax[LN];
  char why[256];
  hid_t fs = H5Dget_space(v->id);
  herr_t rc = fs < 0 ? -1 : 0;
  int first = 1;
  for (int64_t j = 0; j < count && rc >= 0;) {
    int64_t r0 = pairs[2 * j], r1 = r0;
    while (j < count && pairs[2 * j] <= r1 + 1) {
      if (pairs[2 * j] > r1) r1 = pairs[2 * j];
      j++;
    }
    start[fn] = (hsize_t)r0;
    cnt[fn] = (hsize_t)(r1 - r0 + 1);
    rc = H5Sselect_hyperslab(fs, first ? H5S_SELECT_SET : H5S_SELECT_OR, start, stride, cnt, NULL);
    first = 0;
  }
  int64_t per = nt * nx * ny, total = m * per;
  /* Direct read when the file order is the logical order and no reordering is needed. */
  int natural = sorted && m == count;
  for (int l = 0, last = -1; l < 4 && natural; l++) {
    if (v->ax[l] < 0) continue;
    if (v->ax[l] < last) natural = 0;
    last = v->ax[l];
  }
  opl_real *out = dst;
  if (!natural) {
    if ((st = grow(d, (size_t)total, 0, err))) {
      CLOSE_S(fs);
      return st;
    }
    out = d->buf;
  }
  hsize_t tot = (hsize_t)total;
  hid_t ms = H5Screate_simple(1, &tot, NULL);
  if (rc >= 0 && ms >= 0) rc = H5Dread(v->id, OPL_HDF5_NATIVE, ms, fs, H5P_DEFAULT, out);
  else rc = -1;
  if (rc < 0) st = dfail(err, OPL_ERR_IO, d->path, "cannot read dataset '%s'%s", v->name, opl_h5_why(why));
  CLOSE_S(ms);
  CLOSE_S(fs);
  if (st) return st;

  if (!natural) {
    /* Strides of the file-ordered scratch (row-major over the selected counts). */
    cnt[fn] = (hsize_t)m;
    int64_t fstr[8], s = 1;
    for (int f = v->frank - 1; f >= 0; f--) {
      fstr[f] = s;
      s *= (int64_t)cnt[f];
    }
    int64_t ls[4];
    for (int l = 0; l < 4; l++) ls[l] = v->ax[l] < 0 ? 0 : fstr[v->ax[l]];
    const opl_real *src = d->buf;
#pragma omp parallel for collapse(2) if (count * per > 262144)
    for (int64_t j = 0; j < count; j++)
      for (int64_t tt = 0; tt < nt; tt++) {
        opl_real *o = dst + (j * nt + tt) * nx * ny;
        const opl_real *b = src + map[j] * ls[LN] + tt * ls[LT];
        for (int64_t xx = 0; xx < nx; xx++)
          for (int64_t yy = 0; yy < ny; yy++) o[xx * ny + yy] = b[xx * ls[LX] + yy * ls[LY]];
      }
  }
  /* Finite check, naming the first bad sample (by the caller's order). */
  for (int64_t j = 0; j < count; j++) {
    const opl_real *p = dst + j * per;
    for (int64_t k = 0; k < per; k++)
      if (!isfinite(p[k])) {
        int64_t yy = k % ny, xx = (k / ny) % nx, tt = k / (nx * ny);
        char pos[96];
        if (ny > 1 || d->info.dims.sdim == 2)
          snprintf(pos, sizeof pos, "x index %lld, y index %lld", (long long)(xx * sub), (long long)(yy * sub));
        else
          snprintf(pos, sizeof pos, "x index %lld", (long long)(xx * sub));
        if (v == &d->u)
          return dfail(err, OPL_ERR_NONFINITE, d->path, "dataset '%s': sample %lld has a non-finite value (%g) at frame %lld, %s",
                       v->name, (long long)idx[j], (double)p[k], (long long)(t0 + tt), pos);
        return dfail(err, OPL_ERR_NONFINITE, d->path, "dataset '%s': sample %lld has a non-finite value (%g) at %s",
                     v->name, (long long)idx[j], (double)p[k], pos);
      }
  }
  return OPL_OK;
}

int opl_ds_read_a(opl_ds *d, const int64_t *idx, int64_t count, int sub, opl_real *dst, opl_err *err) {
  if (!d) return opl_err_set(err, OPL_ERR_ARG, "ds: NULL data set");
  opl_io_guard g;
  opl_io_enter(&g);
  int st = var_read(d, &d->a, idx, count, 0, 1, sub, dst, err);
  opl_io_leave(&g);
  return st;
}

int opl_ds_read_u(opl_ds *d, const int64_t *idx, int64_t count, int64_t t0, int64_t nt, int sub,
                  opl_real *dst, opl_err *err) {
  if (!d) return opl_err_set(err, OPL_ERR_ARG, "ds: NULL data set");
  int64_t T = d->info.dims.t;
  if (t0 < 0 || nt < 1 || t0 + nt > T)
    return dfail(err, OPL_ERR_ARG, d->path, "dataset '%s': frames [%lld, %lld) outside [0, %lld)", d->u.name,
                 (long long)t0, (long long)(t0 + nt), (long long)T);
  opl_io_guard g;
  opl_io_enter(&g);
  int st = var_read(d, &d->u, idx, count, t0, nt, sub, dst, err);
  opl_io_leave(&g);
  return st;
}

/* Index list start..start+count-1 in d's scratch-independent heap array (ranges are rare). */
static int range_call(opl_ds *d, int which, int64_t start, int64_t count, int64_t t0, int64_t nt, int sub,
                      opl_real *dst, opl_err *err) {
  if (!d) return opl_err_set(err, OPL_ERR_ARG, "ds: NULL data set");
  if (count < 1 || start < 0 || start > d->info.dims.n - count)
    return dfail(err, OPL_ERR_ARG, d->path, "samples [%lld, %lld) outside [0, %lld)", (long long)start,
                 (long long)(start + count), (long long)d->info.dims.n);
  int64_t *idx = malloc(sizeof(int64_t) * (size_t)count);
  if (!idx) return opl_err_set(err, OPL_ERR_NOMEM, "ds: out of memory");
  for (int64_t j = 0; j < count; j++) idx[j] = start + j;
  int st = which == 0 ? opl_ds_read_a(d, idx, count, sub, dst, err) : opl_ds_read_u(d, idx, count, t0, nt, sub, dst, err);
  free(idx);
  return st;
}

int opl_ds_read_a_range(opl_ds *d, int64_t start, int64_t count, int sub, opl_real *dst, opl_err *err) {
  return range_call(d, 0, start, count, 0, 1, sub, dst, err);
}
int opl_ds_read_u_range(opl_ds *d, int64_t start, int64_t count, int64_t t0, int64_t nt, int sub,
                        opl_real *dst, opl_err *err) {
  return range_call(d, 1, start, count, t0, nt, sub, dst, err);
}

/* ---------------------------------------------------------------- layout setup */

/* Check a's rank and set its axes; sets sdim, n, x, y. transposed: MATLAB order. */
static int setup_a(opl_ds *d, int transposed, opl_err *err) {
  ds_var *a = &d->a;
  char s[96];
  if (a->frank != 2 && a->frank != 3)
    return dfail(err, OPL_ERR_SHAPE, d->path, "dataset '%s' has rank %d (shape %s), expected 2 (%s) or 3 (%s)", a->name,
                 a->frank, hshape(s, a->frank, a->fdims), transposed ? "MATLAB (N, X)" : "[N, X]",
                 transposed ? "MATLAB (N, X, Y)" : "[N, X, Y]");
  int r = a->frank;
  if (!transposed) {
    a->ax[LN] = 0;
    a->ax[LX] = 1;
    if (r == 3) a->ax[LY] = 2;
  } else {
    a->ax[LN] = r - 1;
    a->ax[LX] = r - 2;
    if (r == 3) a->ax[LY] = 0;
  }
  d->info.dims.sdim = r - 1;
  d->info.dims.n = var_ext(a, LN);
  d->info.dims.x = var_ext(a, LX);
  d->info.dims.y = var_ext(a, LY);
  return OPL_OK;
}

/* After u's axes are set: check N and spatial extents against a's. */
static int check_u_vs_a(opl_ds *d, opl_err *err) {
  ds_var *u = &d->u;
  const opl_ds_dims *dm = &d->info.dims;
  if (var_ext(u, LN) != dm->n)
    return dfail(err, OPL_ERR_SHAPE, d->path, "N mismatch: dataset '%s' has %lld samples, dataset '%s' has %lld",
                 d->a.name, (long long)dm->n, u->name, (long long)var_ext(u, LN));
  if (var_ext(u, LX) != dm->x || var_ext(u, LY) != dm->y) {
    char s1[96], s2[96];
    int64_t ua[2] = {var_ext(u, LX), var_ext(u, LY)}, aa[2] = {dm->x, dm->y};
    return dfail(err, OPL_ERR_SHAPE, d->path, "spatial extents differ: dataset '%s' is %s, dataset '%s' is %s",
                 d->a.name, opl_shape_str(s1, dm->sdim, aa), u->name, opl_shape_str(s2, dm->sdim, ua));
  }
  return OPL_OK;
}

static int setup_native(opl_ds *d, const opl_ds_open_opts *o, opl_err *err) {
  const opl_kv *ver = opl_kv_find(d->attrs, d->nattrs, "layout_version");
  if (!ver || ver->type != OPL_KV_INT)
    return dfail(err, OPL_ERR_FORMAT, d->path, "attribute 'layout_version' missing or not an integer");
  if (ver->i > OPL_DS_LAYOUT_VERSION)
    return dfail(err, OPL_ERR_UNSUPPORTED, d->path, "layout_version %lld is newer than this opl reads (%d)",
                 (long long)ver->i, OPL_DS_LAYOUT_VERSION);
  if (has_dataset(d->f, "done"))
    return dfail(err, OPL_ERR_FORMAT, d->path,
                 "unfinished data set (it still has a 'done' dataset): resume and finish its generation");
  int st = var_open(d, &d->a, o->a_name ? o->a_name : "a", err);
  if (!st) st = setup_a(d, 0, err);
  if (!st) st = var_open(d, &d->u, o->u_name ? o->u_name : "u", err);
  if (st) return st;
  int sd = d->info.dims.sdim;
  char s[96];
  if (d->u.frank != sd + 2)
    return dfail(err, OPL_ERR_SHAPE, d->path, "dataset '%s' has rank %d (shape %s), expected %d = rank of '%s' + 1",
                 d->u.name, d->u.frank, hshape(s, d->u.frank, d->u.fdims), sd + 2, d->a.name);
  d->u.ax[LN] = 0;
  d->u.ax[LT] = 1;
  d->u.ax[LX] = 2;
  if (sd == 2) d->u.ax[LY] = 3;
  return check_u_vs_a(d, err);
}

static int setup_pdebench(opl_ds *d, const opl_ds_open_opts *o, opl_err *err) {
  const char *un = o->u_name ? o->u_name : "tensor";
  int st = var_open(d, &d->u, un, err);
  if (st) return st;
  ds_var *u = &d->u;
  char s[96];
  if (u->frank != 3 && u->frank != 4)
    return dfail(err, OPL_ERR_SHAPE, d->path, "dataset '%s' has rank %d (shape %s), expected 3 ([N, T, X]) or 4 ([N, T, X, Y])",
                 un, u->frank, hshape(s, u->frank, u->fdims));
  u->ax[LN] = 0;
  u->ax[LT] = 1;
  u->ax[LX] = 2;
  if (u->frank == 4) u->ax[LY] = 3;
  if (o->a_name) {
    if ((st = var_open(d, &d->a, o->a_name, err)) || (st = setup_a(d, 0, err))) return st;
    if (d->info.dims.sdim != u->frank - 2)
      return dfail(err, OPL_ERR_SHAPE, d->path, "dataset '%s' has rank %d, expected %d for dataset '%s' of rank %d",
                   d->a.name, d->a.frank, u->frank - 1, un, u->frank);
    return check_u_vs_a(d, err);
  }
  /* a = frame 0 of the trajectory: the same dataset, frame axis pinned to 0. */
  d->a = *u;
  d->a.id = H5Dopen2(d->f, un, H5P_DEFAULT);
  if (d->a.id < 0) return dfail(err, OPL_ERR_IO, d->path, "cannot open dataset '%s'", un);
  d->a.toff = 0;
  d->info.a_from_u = 1;
  d->info.dims.sdim = u->frank - 2;
  d->info.dims.n = var_ext(u, LN);
  d->info.dims.x = var_ext(u, LX);
  d->info.dims.y = var_ext(u, LY);
  return OPL_OK;
}

/* FNO .mat: variable names, axes (reversed) and time axis. */
static int setup_fno(opl_ds *d, const opl_ds_open_opts *o, opl_err *err) {
  static const char *pairs[][2] = {{"a", "u"}, {"input", "output"}, {"coeff", "sol"}};
  const char *an = o->a_name, *un = o->u_name;
  if (!an || !un) {
    for (int k = 0; k < 3 && (!an || !un); k++) {
      int ha = has_dataset(d->f, an ? an : pairs[k][0]), hu = has_dataset(d->f, un ? un : pairs[k][1]);
      if (ha && hu) {
        if (!an) an = pairs[k][0];
        if (!un) un = pairs[k][1];
      }
    }
    if (!an || !un) {
      char lst[200];
      return dfail(err, OPL_ERR_NOTFOUND, d->path,
                   "no input/solution variables (tried a/u, input/output, coeff/sol); variables found: %s",
                   list_datasets(d->f, lst, sizeof lst));
    }
  }
  int st = var_open(d, &d->a, an, err);
  if (!st) st = setup_a(d, 1, err);
  if (!st) st = var_open(d, &d->u, un, err);
  if (st) return st;
  ds_var *u = &d->u;
  int sd = d->info.dims.sdim, r = u->frank;
  int64_t X = d->info.dims.x;
  char s[96];
  if (sd == 1 && r == 2) {           /* MATLAB (N, X) = HDF5 [X][N] */
    u->ax[LN] = 1;
    u->ax[LX] = 0;
  } else if (sd == 1 && r == 3) {    /* MATLAB (N, T, X) = HDF5 [X][T][N], or (N, X, T) = [T][X][N] */
    u->ax[LN] = 2;
    if ((int64_t)u->fdims[0] != X && (int64_t)u->fdims[1] == X) {
      u->ax[LT] = 0;
      u->ax[LX] = 1;
    } else {
      u->ax[LT] = 1;
      u->ax[LX] = 0;
    }
  } else if (sd == 2 && r == 3) {    /* MATLAB (N, X, Y) = HDF5 [Y][X][N] */
    u->ax[LN] = 2;
    u->ax[LX] = 1;
    u->ax[LY] = 0;
  } else if (sd == 2 && r == 4) {    /* MATLAB (N, X, Y, T) = HDF5 [T][Y][X][N] */
    u->ax[LN] = 3;
    u->ax[LX] = 2;
    u->ax[LY] = 1;
    u->ax[LT] = 0;
  } else {
    return dfail(err, OPL_ERR_SHAPE, d->path,
                 "variable '%s' has HDF5 shape %s (rank %d); for a %d-D input '%s' expected rank %d or %d "
                 "(MATLAB %s)",
                 un, hshape(s, r, u->fdims), r, sd, an, sd + 1, sd + 2, sd == 1 ? "(N, X) or (N, T, X)" : "(N, X, Y) or (N, X, Y, T)");
  }
  return check_u_vs_a(d, err);
}

/* First bytes of the file's user block (MATLAB header) into buf[cap]; 0 if none. */
static int read_header(const char *path, char *buf, size_t cap) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) return 0;
  ssize_t got = pread(fd, buf, cap - 1, 0);
  close(fd);
  if (got < 0) got = 0;
  buf[got] = 0;
  return (int)got;
}

/* 1 if some root dataset has a MATLAB_class attribute. */
static herr_t mat_cb(hid_t g, const char *name, const H5L_info_t *info, void *data) {
  (void)info;
  if (!has_dataset(g, name)) return 0;
  if (H5Aexists_by_name(g, name, "MATLAB_class", H5P_DEFAULT) > 0) {
    *(int *)data = 1;
    return 1;
  }
  return 0;
}

/* Decide whether stored u starts with t = 0 and set toff, T and the times. */
static int setup_time(opl_ds *d, const opl_ds_open_opts *o, opl_err *err) {
  ds_var *u = &d->u;
  int64_t Ts = var_ext(u, LT);
  double *tv = NULL;
  int64_t nt = 0;
  int st = OPL_OK;
  const char *tname = d->info.layout == OPL_DS_NATIVE ? "t" : d->info.layout == OPL_DS_PDEBENCH ? "t-coordinate" : "t";
  st = read_vector(d, tname, &tv, &nt, err);
  if (st == OPL_ERR_NOTFOUND) {
    if (d->info.layout == OPL_DS_NATIVE)
      return dfail(err, OPL_ERR_NOTFOUND, d->path, "no dataset 't' (the native layout requires it)");
    st = OPL_OK;
  }
  if (st) return st;
  int drop;
  if (o->u_has_t0 >= 0) drop = o->u_has_t0;
  else if (d->info.layout == OPL_DS_PDEBENCH) drop = 1;
  else if (d->info.layout == OPL_DS_NATIVE) drop = 0;
  else if (Ts < 2) drop = 0;
  else if (tv && nt > 0) drop = tv[0] == 0.0 || nt == Ts - 1;
  else {
    /* No times: frame 0 equal to a on the first samples means it is t = 0. */
    int64_t k = d->info.dims.n < 4 ? d->info.dims.n : 4, P = d->info.dims.x * d->info.dims.y;
    opl_real *pa = malloc(sizeof(opl_real) * (size_t)(k * P)), *pu = malloc(sizeof(opl_real) * (size_t)(k * P));
    int64_t idx[4] = {0, 1, 2, 3};
    opl_err e2;
    drop = 0;
    if (pa && pu && var_read(d, &d->a, idx, k, 0, 1, 1, pa, &e2) == OPL_OK &&
        var_read(d, u, idx, k, 0, 1, 1, pu, &e2) == OPL_OK)
      drop = memcmp(pa, pu, sizeof(opl_real) * (size_t)(k * P)) == 0;
    free(pa);
    free(pu);
  }
  if (drop && Ts < 2) {
    free(tv);
    return dfail(err, OPL_ERR_SHAPE, d->path, "dataset '%s' has %lld frame(s): nothing after t = 0", u->name,
                 (long long)Ts);
  }
  u->toff = drop;
  d->info.t0_dropped = drop;
  d->info.dims.t = Ts - drop;
  if (tv) {
    if (d->info.layout == OPL_DS_NATIVE && nt != Ts) {
      free(tv);
      return dfail(err, OPL_ERR_SHAPE, d->path, "dataset 't' has %lld entries, expected T = %lld (frames of '%s')",
                   (long long)nt, (long long)Ts, u->name);
    }
    if (d->info.layout == OPL_DS_PDEBENCH && nt < Ts) {
      free(tv);
      return dfail(err, OPL_ERR_SHAPE, d->path,
                   "dataset 't-coordinate' has %lld entries, expected at least %lld (frames of '%s')", (long long)nt,
                   (long long)Ts, u->name);
    }
    int64_t off = nt >= Ts ? drop : (nt == Ts - drop ? 0 : -1);
    if (off >= 0) {
      d->t = malloc(sizeof(double) * (size_t)d->info.dims.t);
      if (!d->t) {
        free(tv);
        return opl_err_set(err, OPL_ERR_NOMEM, "ds: out of memory");
      }
      memcpy(d->t, tv + off, sizeof(double) * (size_t)d->info.dims.t);
    }
  }
  free(tv);
  return OPL_OK;
}

/* Spatial coordinates: native x, y (required); PDEBench x-coordinate, y-coordinate; FNO: x, y
 * when present with the right length. */
static int setup_space(opl_ds *d, opl_err *err) {
  int nat = d->info.layout == OPL_DS_NATIVE, pdb = d->info.layout == OPL_DS_PDEBENCH;
  const char *names[2] = {nat ? "x" : pdb ? "x-coordinate" : "x", nat ? "y" : pdb ? "y-coordinate" : "y"};
  double **dst[2] = {&d->x, &d->y};
  int64_t want[2] = {d->info.dims.x, d->info.dims.y};
  for (int k = 0; k < d->info.dims.sdim; k++) {
    int64_t n = 0;
    int st = read_vector(d, names[k], dst[k], &n, err);
    if (st == OPL_ERR_NOTFOUND) {
      if (nat) return dfail(err, OPL_ERR_NOTFOUND, d->path, "no dataset '%s' (the native layout requires it)", names[k]);
      continue;
    }
    if (st) return st;
    if (n != want[k]) {
      free(*dst[k]);
      *dst[k] = NULL;
      if (nat || pdb)
        return dfail(err, OPL_ERR_SHAPE, d->path, "dataset '%s' has %lld entries, expected %lld", names[k],
                     (long long)n, (long long)want[k]);
    }
  }
  return OPL_OK;
}

static void ds_free(opl_ds *d) {
  if (!d) return;
  CLOSE_D(d->a.id);
  CLOSE_D(d->u.id);
  CLOSE_F(d->f);
  free(d->path);
  free(d->x);
  free(d->y);
  free(d->t);
  opl_kv_free(&d->attrs, d->nattrs);
  free(d->buf);
  free(d->ord);
  free(d);
}

opl_ds *opl_ds_open(const char *path, const opl_ds_open_opts *opts, opl_err *err) {
  opl_ds_open_opts o = OPL_DS_OPEN_DEFAULTS;
  if (opts) o = *opts;
  if (!path || !path[0]) {
    opl_err_set(err, OPL_ERR_ARG, "ds: empty path");
    return NULL;
  }
  if (o.layout < OPL_DS_AUTO || o.layout > OPL_DS_PDEBENCH) {
    dfail(err, OPL_ERR_ARG, path, "unknown layout %d", o.layout);
    return NULL;
  }
  struct stat sb;
  if (stat(path, &sb) != 0) {
    int e = errno;
    dfail(err, e == ENOENT || e == ENOTDIR ? OPL_ERR_NOTFOUND : OPL_ERR_IO, path, "cannot open (%s)", strerror(e));
    return NULL;
  }
  if (S_ISDIR(sb.st_mode)) {
    dfail(err, OPL_ERR_IO, path, "is a directory, not a data set file");
    return NULL;
  }
  if (access(path, R_OK) != 0) {
    dfail(err, OPL_ERR_IO, path, "not readable (%s)", strerror(errno));
    return NULL;
  }
  opl_ds *d = calloc(1, sizeof *d);
  if (!d || !(d->path = strdup(path))) {
    free(d);
    opl_err_set(err, OPL_ERR_NOMEM, "ds: out of memory");
    return NULL;
  }
  d->f = H5I_INVALID_HID;
  var_init(&d->a);
  var_init(&d->u);
  d->info.a_name = d->a.name;
  d->info.u_name = d->u.name;
  opl_io_guard g;
  opl_io_enter(&g);
  char why[256];
  int st = OPL_OK;
  /* The root attributes come through core/io.c's reader, which runs the integrity check
   * (opl_h5_check: the checksum of an opl file, a damaged header, opl attributes without a
   * checksum) before HDF5 parses anything. */
  opl_err e;
  if (opl_h5_read_attrs(path, "/", &d->attrs, &d->nattrs, &e) != OPL_OK) {
    if (err) *err = e;   /* names the file and what is wrong with it */
    st = e.status;
  }
  if (!st) {
    hid_t fapl = file_fapl();
    d->f = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    if (d->f < 0) st = dfail(err, OPL_ERR_FORMAT, path, "truncated or corrupt HDF5 file%s", opl_h5_why(why));
    CLOSE_P(fapl);
  }
  if (!st) {
    int layout = o.layout;
    const opl_kv *lay = opl_kv_find(d->attrs, d->nattrs, "layout");
    char hdr[64];
    int matlab = 0;
    if (read_header(path, hdr, sizeof hdr) && !strncmp(hdr, "MATLAB", 6)) matlab = 1;
    if (!matlab) {
      H5Literate(d->f, H5_INDEX_NAME, H5_ITER_NATIVE, NULL, mat_cb, &matlab);
      H5Eclear2(H5E_DEFAULT);
    }
    if (layout == OPL_DS_AUTO) {
      if (lay && lay->type == OPL_KV_STR && !strcmp(lay->s, OPL_DS_LAYOUT_NAME)) layout = OPL_DS_NATIVE;
      else if (has_dataset(d->f, "tensor")) layout = OPL_DS_PDEBENCH;
      else if (matlab) layout = OPL_DS_FNO_MAT;
      else {
        char lst[200];
        st = dfail(err, OPL_ERR_FORMAT, path,
                   "unknown layout: no attribute layout = '%s', no dataset 'tensor' (PDEBench), no MATLAB "
                   "v7.3 header or MATLAB_class attributes; datasets: %s",
                   OPL_DS_LAYOUT_NAME, list_datasets(d->f, lst, sizeof lst));
      }
    } else if (layout == OPL_DS_NATIVE && !(lay && lay->type == OPL_KV_STR && !strcmp(lay->s, OPL_DS_LAYOUT_NAME))) {
      st = dfail(err, OPL_ERR_FORMAT, path, "not an opl data set: root attribute layout = '%s' expected, found %s",
                 OPL_DS_LAYOUT_NAME, lay ? (lay->type == OPL_KV_STR ? lay->s : "a non-string") : "none");
    }
    d->info.layout = layout;
    d->info.transposed = layout == OPL_DS_FNO_MAT;
    if (!st) {
      if (layout == OPL_DS_NATIVE) st = setup_native(d, &o, err);
      else if (layout == OPL_DS_PDEBENCH) st = setup_pdebench(d, &o, err);
      else st = setup_fno(d, &o, err);
    }
    if (!st && d->info.dims.n < 1)
      st = dfail(err, OPL_ERR_SHAPE, path, "dataset '%s' holds no samples", d->u.name);
    if (!st) st = setup_time(d, &o, err);
    if (!st) st = setup_space(d, err);
  }
  if (!st) {
    hid_t ft = H5Dget_type(d->u.id);
    d->info.bits = ft >= 0 ? (int)H5Tget_size(ft) * 8 : 0;
    CLOSE_T(ft);
    if (d->info.dims.sdim == 1) d->info.dims.y = 1;
    d->info.path = d->path;
    d->info.a_name = d->a.name;
    d->info.u_name = d->u.name;
    d->info.x = d->x;
    d->info.y = d->y;
    d->info.t = d->t;
    d->info.attrs = d->attrs;
    d->info.nattrs = d->nattrs;
  } else {
    ds_free(d);
    d = NULL;
  }
  opl_io_leave(&g);
  return d;
}

void opl_ds_close(opl_ds **pd) {
  if (!pd || !*pd) return;
  opl_io_guard g;
  opl_io_enter(&g);
  ds_free(*pd);
  *pd = NULL;
  opl_io_leave(&g);
}

const opl_ds_info *opl_ds_get_info(const opl_ds *d) { return d ? &d->info : NULL; }
