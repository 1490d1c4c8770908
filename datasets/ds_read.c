/* opl datasets — the readers: opening a data set file of any layout (after core/'s integrity
 * check), its frames and coordinates, and reads of a and u by samples, frames and spatial
 * stride (opl_ds_open, opl_ds_read_*). The per-layout choice of variables and axes is in
 * layout_native.c, layout_fnomat.c and layout_pdebench.c. See datasets/h5layout.h.
 *
 * Implementation notes:
 *  - Every public function that touches HDF5 runs between opl_io_enter() and opl_io_leave()
 *    (core/h5.c).
 *  - A stored array is described by a ds_var: which file axis holds each LOGICAL axis
 *    (n, t, x, y) and how many leading stored frames are skipped (a t = 0 frame). A read
 *    selects, in file coordinates, the union of hyperslabs {runs of consecutive sample
 *    indices} x [frames] x [::sub] x [::sub] — a Cartesian product, so HDF5 returns it densely
 *    in file row-major order — into a scratch buffer, and one strided copy puts it in the
 *    logical order [n][t][x][y] (the transpose of MATLAB's reversed axes happens there). When
 *    the file order already is the logical order and the indices are strictly increasing,
 *    HDF5 reads straight into the caller's buffer.
 *  - opl_ds_open reads the root attributes with opl_h5_read_attrs, whose opl_h5r_open runs
 *    opl_h5_check before HDF5 parses the file.
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

static void var_init(ds_var *v) {
  memset(v, 0, sizeof *v);
  v->id = H5I_INVALID_HID;
  for (int k = 0; k < 4; k++) v->ax[k] = -1;
}

/* Open root dataset `name` into v (extents; float data required). */
int opl_ds_var_open(opl_ds *d, ds_var *v, const char *name, opl_err *err) {
  char why[256];
  snprintf(v->name, sizeof v->name, "%s", name);
  if (!opl_ds_has_dataset(d->f, name)) {
    char lst[200];
    return dfail(err, OPL_ERR_NOTFOUND, d->path, "no dataset '%s' (datasets: %s)", name,
                 opl_ds_list_datasets(d->f, lst, sizeof lst));
  }
  v->id = H5Dopen2(d->f, name, H5P_DEFAULT);
  if (v->id < 0) return dfail(err, OPL_ERR_FORMAT, d->path, "cannot open dataset '%s'%s", name, opl_h5_why(why));
  hid_t sp = H5Dget_space(v->id), ft = H5Dget_type(v->id);
  v->frank = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
  if (v->frank > 8) v->frank = -1;
  if (v->frank >= 0) H5Sget_simple_extent_dims(sp, v->fdims, NULL);
  H5T_class_t cls = ft >= 0 ? H5Tget_class(ft) : H5T_NO_CLASS;
  OPL_H5_CLOSE_S(sp);
  OPL_H5_CLOSE_T(ft);
  if (v->frank < 0) return dfail(err, OPL_ERR_FORMAT, d->path, "dataset '%s' has an unsupported dataspace", name);
  if (cls != H5T_FLOAT)
    return dfail(err, OPL_ERR_FORMAT, d->path, "dataset '%s' holds %s data, expected floating point", name,
                 class_name(cls));
  for (int k = 0; k < v->frank; k++)
    if (v->fdims[k] == 0) {
      char s[96];
      return dfail(err, OPL_ERR_SHAPE, d->path, "dataset '%s' has shape %s: axis %d is empty", name,
                   opl_ds_hshape(s, v->frank, v->fdims), k);
    }
  return OPL_OK;
}

/* Whole 1-D (or (n, 1) / (1, n)) float dataset as a heap double array; *n its length.
 * OPL_ERR_NOTFOUND when absent. */
static int read_vector(opl_ds *d, const char *name, double **out, int64_t *n, opl_err *err) {
  ds_var v;
  var_init(&v);
  *out = NULL;
  *n = 0;
  if (!opl_ds_has_dataset(d->f, name)) return OPL_ERR_NOTFOUND;
  int st = opl_ds_var_open(d, &v, name, err);
  int64_t len = 1, big = 0;
  for (int k = 0; !st && k < v.frank; k++) {
    len *= (int64_t)v.fdims[k];
    if (v.fdims[k] > 1) big++;
  }
  char s[96];
  if (!st && big > 1)
    st = dfail(err, OPL_ERR_SHAPE, d->path, "coordinate dataset '%s' has shape %s, expected a vector", name,
               opl_ds_hshape(s, v.frank, v.fdims));
  if (!st) {
    *out = malloc(sizeof(double) * (size_t)(len > 0 ? len : 1));
    if (!*out) st = opl_err_set(err, OPL_ERR_NOMEM, "ds: out of memory");
    else if (H5Dread(v.id, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, *out) < 0)
      st = dfail(err, OPL_ERR_IO, d->path, "cannot read dataset '%s'", name);
  }
  OPL_H5_CLOSE_D(v.id);
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
  /* x[::sub] keeps X / sub points of a periodic grid (sub | X) or, on a grid of an odd number of
   * nodes with both ends (FNO's Darcy data: 421 nodes, every 5th = 85), (X - 1) / sub + 1 */
  const int64_t ext[2] = {dm->x, dm->sdim == 2 ? dm->y : 1};
  int64_t out[2] = {1, 1};
  for (int k = 0; k < dm->sdim; k++) {
    if (ext[k] % sub == 0) out[k] = ext[k] / sub;
    else if (ext[k] % 2 == 1 && (ext[k] - 1) % sub == 0) out[k] = (ext[k] - 1) / sub + 1;
    else
      return dfail(err, OPL_ERR_ARG, d->path,
                   "sub = %d does not divide the resolution %s = %lld of dataset '%s' (nor, on an odd node grid, "
                   "%s - 1)", sub, k ? "Y" : "X", (long long)ext[k], d->info.u_name, k ? "Y" : "X");
  }
  if (nx) *nx = out[0];
  if (ny) *ny = out[1];
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
      OPL_H5_CLOSE_S(fs);
      return st;
    }
    out = d->buf;
  }
  hsize_t tot = (hsize_t)total;
  hid_t ms = H5Screate_simple(1, &tot, NULL);
  if (rc >= 0 && ms >= 0) rc = H5Dread(v->id, OPL_HDF5_NATIVE, ms, fs, H5P_DEFAULT, out);
  else rc = -1;
  if (rc < 0) st = dfail(err, OPL_ERR_IO, d->path, "cannot read dataset '%s'%s", v->name, opl_h5_why(why));
  OPL_H5_CLOSE_S(ms);
  OPL_H5_CLOSE_S(fs);
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

int opl_ds_read_a_f64(opl_ds *d, int64_t i, double *dst, opl_err *err) {
  if (!d || !dst) return opl_err_set(err, OPL_ERR_ARG, "ds: NULL data set or buffer");
  const ds_var *v = &d->a;
  const int64_t X = d->info.dims.x, Y = d->info.dims.sdim == 2 ? d->info.dims.y : 1;
  if (i < 0 || i >= d->info.dims.n)
    return dfail(err, OPL_ERR_ARG, d->path, "dataset '%s': sample index %lld outside [0, %lld)", v->name, (long long)i,
                 (long long)d->info.dims.n);
  /* the block of sample i in file order, then its logical order [x][y] */
  hsize_t start[8], cnt[8];
  int64_t fstride[8];
  for (int f = 0; f < v->frank; f++) start[f] = 0, cnt[f] = 1;
  start[v->ax[LN]] = (hsize_t)i;
  if (v->ax[LT] >= 0) start[v->ax[LT]] = (hsize_t)v->toff; /* a stored as frame 0 (PDEBench) */
  cnt[v->ax[LX]] = (hsize_t)X;
  if (v->ax[LY] >= 0) cnt[v->ax[LY]] = (hsize_t)Y;
  int64_t acc = 1;
  for (int f = v->frank - 1; f >= 0; f--) fstride[f] = acc, acc *= (int64_t)cnt[f];
  double *buf = malloc(sizeof(double) * (size_t)(X * Y));
  if (!buf) return opl_err_set(err, OPL_ERR_NOMEM, "ds: out of memory");
  opl_io_guard g;
  opl_io_enter(&g);
  int st = OPL_OK;
  hid_t fs = H5Dget_space(v->id), ms = H5Screate_simple(1, (hsize_t[]){(hsize_t)(X * Y)}, NULL);
  if (fs < 0 || ms < 0 || H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, cnt, NULL) < 0 ||
      H5Dread(v->id, H5T_NATIVE_DOUBLE, ms, fs, H5P_DEFAULT, buf) < 0)
    st = dfail(err, OPL_ERR_IO, d->path, "cannot read sample %lld of dataset '%s'", (long long)i, v->name);
  OPL_H5_CLOSE_S(fs);
  OPL_H5_CLOSE_S(ms);
  opl_io_leave(&g);
  for (int64_t x = 0; !st && x < X; x++)
    for (int64_t y = 0; !st && y < Y; y++) {
      double val = buf[x * fstride[v->ax[LX]] + (v->ax[LY] >= 0 ? y * fstride[v->ax[LY]] : 0)];
      if (!isfinite(val))
        st = dfail(err, OPL_ERR_NONFINITE, d->path, "dataset '%s': sample %lld holds %g at point %lld", v->name,
                   (long long)i, val, (long long)(x * Y + y));
      dst[x * Y + y] = val;
    }
  free(buf);
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

/* Check a's rank and set its axes; sets sdim, n, x, y. transposed: MATLAB order. */
int opl_ds_setup_a(opl_ds *d, int transposed, opl_err *err) {
  ds_var *a = &d->a;
  char s[96];
  if (a->frank != 2 && a->frank != 3)
    return dfail(err, OPL_ERR_SHAPE, d->path, "dataset '%s' has rank %d (shape %s), expected 2 (%s) or 3 (%s)", a->name,
                 a->frank, opl_ds_hshape(s, a->frank, a->fdims), transposed ? "MATLAB (N, X)" : "[N, X]",
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
  d->info.dims.n = opl_ds_var_ext(a, LN);
  d->info.dims.x = opl_ds_var_ext(a, LX);
  d->info.dims.y = opl_ds_var_ext(a, LY);
  return OPL_OK;
}

/* After u's axes are set: check N and spatial extents against a's. */
int opl_ds_check_u_vs_a(opl_ds *d, opl_err *err) {
  ds_var *u = &d->u;
  const opl_ds_dims *dm = &d->info.dims;
  if (opl_ds_var_ext(u, LN) != dm->n)
    return dfail(err, OPL_ERR_SHAPE, d->path, "N mismatch: dataset '%s' has %lld samples, dataset '%s' has %lld",
                 d->a.name, (long long)dm->n, u->name, (long long)opl_ds_var_ext(u, LN));
  if (opl_ds_var_ext(u, LX) != dm->x || opl_ds_var_ext(u, LY) != dm->y) {
    char s1[96], s2[96];
    int64_t ua[2] = {opl_ds_var_ext(u, LX), opl_ds_var_ext(u, LY)}, aa[2] = {dm->x, dm->y};
    return dfail(err, OPL_ERR_SHAPE, d->path, "spatial extents differ: dataset '%s' is %s, dataset '%s' is %s",
                 d->a.name, opl_shape_str(s1, dm->sdim, aa), u->name, opl_shape_str(s2, dm->sdim, ua));
  }
  return OPL_OK;
}

/* Native files: the per-sample times t [N, T] (when 't' has rank 2) into d->t_ps, and the
 * per-sample domain lengths L [N] (when present) into d->L, checked. *have_t: 't' was
 * per-sample (then the shared times are absent). */
static int setup_per_sample(opl_ds *d, int *have_t, opl_err *err) {
  const int64_t N = d->info.dims.n, T = opl_ds_var_ext(&d->u, LT);
  char s[96];
  *have_t = 0;
  ds_var v;
  var_init(&v);
  int st = OPL_OK;
  if (opl_ds_has_dataset(d->f, "t")) {
    st = opl_ds_var_open(d, &v, "t", err);
    if (!st && v.frank == 2) {
      *have_t = 1;
      if ((int64_t)v.fdims[0] != N || (int64_t)v.fdims[1] != T)
        st = dfail(err, OPL_ERR_SHAPE, d->path,
                   "dataset 't' has shape %s, expected [%lld] (shared times) or [%lld, %lld] (per-sample times: N "
                   "samples x T frames of '%s')",
                   opl_ds_hshape(s, v.frank, v.fdims), (long long)T, (long long)N, (long long)T, d->u.name);
      if (!st && !(d->t_ps = malloc(sizeof(double) * (size_t)(N * T))))
        st = opl_err_set(err, OPL_ERR_NOMEM, "ds: out of memory");
      if (!st && H5Dread(v.id, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, d->t_ps) < 0)
        st = dfail(err, OPL_ERR_IO, d->path, "cannot read dataset 't'");
      for (int64_t i = 0; !st && i < N; i++)
        for (int64_t j = 0; !st && j < T; j++) {
          double tv = d->t_ps[i * T + j], prev = j ? d->t_ps[i * T + j - 1] : 0.0;
          if (!isfinite(tv) || !(tv > prev))
            st = dfail(err, OPL_ERR_FORMAT, d->path,
                       "dataset 't' (per-sample times): t[%lld, %lld] = %g, expected finite and %s %g", (long long)i,
                       (long long)j, tv, j ? "greater than the previous time" : "greater than", prev);
        }
    }
    OPL_H5_CLOSE_D(v.id);
  }
  if (!st && opl_ds_has_dataset(d->f, "L")) {
    int64_t n = 0;
    var_init(&v);
    st = opl_ds_var_open(d, &v, "L", err);
    if (!st && (v.frank != 1 || (int64_t)v.fdims[0] != N))
      st = dfail(err, OPL_ERR_SHAPE, d->path, "dataset 'L' (per-sample domain lengths) has shape %s, expected [%lld]",
                 opl_ds_hshape(s, v.frank, v.fdims), (long long)N);
    OPL_H5_CLOSE_D(v.id);
    if (!st) st = read_vector(d, "L", &d->L, &n, err);
    for (int64_t i = 0; !st && i < N; i++)
      if (!(d->L[i] > 0) || !isfinite(d->L[i]))
        st = dfail(err, OPL_ERR_FORMAT, d->path, "dataset 'L' (per-sample domain lengths): L[%lld] = %g, expected finite "
                   "and > 0", (long long)i, d->L[i]);
  }
  return st;
}

/* Decide whether stored u starts with t = 0 and set toff, T and the times. */
static int setup_time(opl_ds *d, const opl_ds_open_opts *o, opl_err *err) {
  ds_var *u = &d->u;
  int64_t Ts = opl_ds_var_ext(u, LT);
  double *tv = NULL;
  int64_t nt = 0;
  int st = OPL_OK;
  const char *tname = d->info.layout == OPL_DS_NATIVE ? "t" : d->info.layout == OPL_DS_PDEBENCH ? "t-coordinate" : "t";
  if (d->info.layout == OPL_DS_NATIVE) {
    int per = 0;
    if ((st = setup_per_sample(d, &per, err))) return st;
    if (per) { /* native frames never include t = 0 */
      d->info.dims.t = Ts;
      return OPL_OK;
    }
  }
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
  OPL_H5_CLOSE_D(d->a.id);
  OPL_H5_CLOSE_D(d->u.id);
  OPL_H5_CLOSE_F(d->f);
  free(d->path);
  free(d->x);
  free(d->y);
  free(d->t);
  free(d->t_ps);
  free(d->L);
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
  if (opl_h5_open_precheck(path, "ds", "not a data set file", 0, err) != OPL_OK) return NULL;
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
  /* The root attributes come through core/'s reader (opl_h5_read_attrs), which runs the integrity check
   * (opl_h5_check: the checksum of an opl file, a damaged header, opl attributes without a
   * checksum) before HDF5 parses anything. */
  opl_err e;
  if (opl_h5_read_attrs(path, "/", &d->attrs, &d->nattrs, &e) != OPL_OK) {
    if (err) *err = e;   /* names the file and what is wrong with it */
    st = e.status;
  }
  if (!st) {
    d->f = opl_h5_open_rdonly(path, why);
    if (d->f < 0) st = dfail(err, OPL_ERR_FORMAT, path, "truncated or corrupt HDF5 file%s", why);
  }
  if (!st) {
    int layout = o.layout;
    const opl_kv *lay = opl_kv_find(d->attrs, d->nattrs, "layout");
    int matlab = opl_ds_is_matlab(d);
    if (layout == OPL_DS_AUTO) {
      if (lay && lay->type == OPL_KV_STR && !strcmp(lay->s, OPL_DS_LAYOUT_NAME)) layout = OPL_DS_NATIVE;
      else if (opl_ds_has_dataset(d->f, "tensor")) layout = OPL_DS_PDEBENCH;
      else if (matlab) layout = OPL_DS_FNO_MAT;
      else {
        char lst[200];
        st = dfail(err, OPL_ERR_FORMAT, path,
                   "unknown layout: no attribute layout = '%s', no dataset 'tensor' (PDEBench), no MATLAB "
                   "v7.3 header or MATLAB_class attributes; datasets: %s",
                   OPL_DS_LAYOUT_NAME, opl_ds_list_datasets(d->f, lst, sizeof lst));
      }
    } else if (layout == OPL_DS_NATIVE && !(lay && lay->type == OPL_KV_STR && !strcmp(lay->s, OPL_DS_LAYOUT_NAME))) {
      st = dfail(err, OPL_ERR_FORMAT, path, "not an opl data set: root attribute layout = '%s' expected, found %s",
                 OPL_DS_LAYOUT_NAME, lay ? (lay->type == OPL_KV_STR ? lay->s : "a non-string") : "none");
    }
    d->info.layout = layout;
    d->info.transposed = layout == OPL_DS_FNO_MAT;
    if (!st) {
      if (layout == OPL_DS_NATIVE) st = opl_ds_setup_native(d, &o, err);
      else if (layout == OPL_DS_PDEBENCH) st = opl_ds_setup_pdebench(d, &o, err);
      else st = opl_ds_setup_fnomat(d, &o, err);
    }
    if (!st && d->info.dims.n < 1)
      st = dfail(err, OPL_ERR_SHAPE, path, "dataset '%s' holds no samples", d->u.name);
    if (!st) st = setup_time(d, &o, err);
    if (!st) st = setup_space(d, err);
  }
  if (!st) {
    hid_t ft = H5Dget_type(d->u.id);
    d->info.bits = ft >= 0 ? (int)H5Tget_size(ft) * 8 : 0;
    OPL_H5_CLOSE_T(ft);
    if (d->info.dims.sdim == 1) d->info.dims.y = 1;
    d->info.path = d->path;
    d->info.a_name = d->a.name;
    d->info.u_name = d->u.name;
    d->info.x = d->x;
    d->info.y = d->y;
    d->info.t = d->t;
    d->info.t_ps = d->t_ps;
    d->info.L = d->L;
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
