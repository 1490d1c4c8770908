/* opl datasets — Gaussian normalizers (FNO's UnitGaussianNormalizer / GaussianNormalizer),
 * resampling to other resolutions, storage. See normalizer.h for the maths and contracts. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ops.h"
#include "datasets/normalizer.h"
#include "pde/grid.h"

#define NORM_PAR_MIN 32768   /* elements before a loop is worth OpenMP threads */

/* ================================================================ construction */

static const char *kind_name(int kind) {
  return kind == OPL_NORM_UNIT_GAUSSIAN ? "unit_gaussian" : kind == OPL_NORM_GAUSSIAN ? "gaussian" : "unknown";
}

/* A normalizer with zeroed mean / std of the given (sample) shape; GAUSSIAN: shape (1). */
static opl_normalizer *nz_new(int kind, int rank, const int64_t *shape, opl_err *err) {
  opl_normalizer *nz = calloc(1, sizeof *nz);
  if (!nz) {
    opl_err_set(err, OPL_ERR_NOMEM, "normalizer: out of memory");
    return NULL;
  }
  nz->kind = kind;
  nz->eps = OPL_NORM_EPS;
  int64_t one = 1;
  if (kind == OPL_NORM_UNIT_GAUSSIAN) {
    nz->rank = rank;
    memcpy(nz->shape, shape, sizeof(int64_t) * (size_t)rank);
  }
  int r = kind == OPL_NORM_UNIT_GAUSSIAN ? rank : 1;
  const int64_t *s = kind == OPL_NORM_UNIT_GAUSSIAN ? shape : &one;
  nz->mean = opl_tensor_alloc(r, s, 0, err);
  nz->std = nz->mean ? opl_tensor_alloc(r, s, 0, err) : NULL;
  if (!nz->std) {
    opl_normalizer_free(&nz);
    return NULL;
  }
  snprintf(nz->mean->name, sizeof nz->mean->name, "mean");
  snprintf(nz->std->name, sizeof nz->std->name, "std");
  return nz;
}

void opl_normalizer_free(opl_normalizer **pnz) {
  if (!pnz || !*pnz) return;
  opl_tensor_free(&(*pnz)->mean);
  opl_tensor_free(&(*pnz)->std);
  free(*pnz);
  *pnz = NULL;
}

/* ---------------------------------------------------------------- Welford accumulator */

typedef struct welford {
  int64_t n;        /* samples seen */
  int64_t P;        /* points per sample */
  double *mean;     /* [P] */
  double *m2;       /* [P] sum of squared deviations */
} welford;

static int wf_init(welford *w, int64_t P, opl_err *err) {
  w->n = 0;
  w->P = P;
  w->mean = calloc((size_t)P, sizeof(double));
  w->m2 = calloc((size_t)P, sizeof(double));
  if (!w->mean || !w->m2) {
    free(w->mean);
    free(w->m2);
    w->mean = w->m2 = NULL;
    return opl_err_set(err, OPL_ERR_NOMEM, "normalizer: out of memory (%lld points)", (long long)P);
  }
  return OPL_OK;
}
static void wf_free(welford *w) {
  free(w->mean);
  free(w->m2);
}

/* Add samples x [b, P] (first has index `first` for error messages); a non-finite value is
 * OPL_ERR_NONFINITE naming the sample. */
static int wf_add(welford *w, const opl_real *x, int64_t b, int64_t first, opl_err *err) {
  int64_t P = w->P;
  for (int64_t k = 0; k < b; k++)
    for (int64_t p = 0; p < P; p++)
      if (!isfinite(x[k * P + p]))
        return opl_err_set(err, OPL_ERR_NONFINITE, "normalizer: sample %lld has a non-finite value (%g) at point %lld",
                           (long long)(first + k), (double)x[k * P + p], (long long)p);
  int64_t n0 = w->n;
  double *mean = w->mean, *m2 = w->m2;
  /* Points are independent: parallel over points, samples in order inside. */
#pragma omp parallel for if (b * P > NORM_PAR_MIN) schedule(static)
  for (int64_t p = 0; p < P; p++) {
    double mu = mean[p], s = m2[p];
    for (int64_t k = 0; k < b; k++) {
      double v = (double)x[k * P + p], d = v - mu;
      mu += d / (double)(n0 + k + 1);
      s += d * (v - mu);
    }
    mean[p] = mu;
    m2[p] = s;
  }
  w->n += b;
  return OPL_OK;
}

/* Turn the accumulator into the statistics of nz (allocated by the caller). */
static int wf_finish(const welford *w, opl_normalizer *nz, opl_err *err) {
  int64_t n = w->n, P = w->P;
  nz->nfit = n;
  if (nz->kind == OPL_NORM_UNIT_GAUSSIAN) {
    if (n < 2)
      return opl_err_set(err, OPL_ERR_ARG,
                         "normalizer: unit_gaussian needs at least 2 samples for an unbiased std, got %lld", (long long)n);
    for (int64_t p = 0; p < P; p++) {
      nz->mean->data[p] = (opl_real)w->mean[p];
      nz->std->data[p] = (opl_real)sqrt(w->m2[p] / (double)(n - 1));
    }
    return OPL_OK;
  }
  if (n * P < 2)
    return opl_err_set(err, OPL_ERR_ARG, "normalizer: gaussian needs at least 2 values, got %lld", (long long)(n * P));
  /* Combine the per-point statistics (equal counts n): mean of means; M2 = sum M2_p +
   * n sum (mean_p - mu)^2 (Chan, Golub, LeVeque). */
  double mu = 0, m2 = 0;
  for (int64_t p = 0; p < P; p++) mu += w->mean[p];
  mu /= (double)P;
  for (int64_t p = 0; p < P; p++) {
    double d = w->mean[p] - mu;
    m2 += w->m2[p] + (double)n * d * d;
  }
  nz->mean->data[0] = (opl_real)mu;
  nz->std->data[0] = (opl_real)sqrt(m2 / (double)(n * P - 1));
  return OPL_OK;
}

static int check_kind(int kind, opl_err *err) {
  if (kind != OPL_NORM_UNIT_GAUSSIAN && kind != OPL_NORM_GAUSSIAN)
    return opl_err_set(err, OPL_ERR_ARG, "normalizer: unknown kind %d", kind);
  return OPL_OK;
}

opl_normalizer *opl_normalizer_fit(int kind, const opl_real *data, int64_t n, int rank, const int64_t *shape,
                                   opl_err *err) {
  if (check_kind(kind, err)) return NULL;
  char sb[96];
  if (rank < 1 || rank > OPL_MAX_RANK - 1 || !shape) {
    opl_err_set(err, OPL_ERR_SHAPE, "normalizer: sample rank %d, expected 1..%d", rank, OPL_MAX_RANK - 1);
    return NULL;
  }
  int64_t P = 1;
  for (int i = 0; i < rank; i++) {
    if (shape[i] < 1) {
      opl_err_set(err, OPL_ERR_SHAPE, "normalizer: sample shape %s has a non-positive extent",
                  opl_shape_str(sb, rank, shape));
      return NULL;
    }
    P *= shape[i];
  }
  if (!data || n < 1) {
    opl_err_set(err, OPL_ERR_ARG, "normalizer: %s", !data ? "NULL data" : "no samples");
    return NULL;
  }
  opl_normalizer *nz = nz_new(kind, rank, shape, err);
  if (!nz) return NULL;
  welford w = {0};
  int st = wf_init(&w, P, err);
  if (!st) st = wf_add(&w, data, n, 0, err);
  if (!st) st = wf_finish(&w, nz, err);
  wf_free(&w);
  if (st) opl_normalizer_free(&nz);
  return nz;
}

opl_normalizer *opl_normalizer_fit_loader(opl_loader *l, int which, int kind, opl_err *err) {
  if (check_kind(kind, err)) return NULL;
  if (!l || (which != 0 && which != 1)) {
    opl_err_set(err, OPL_ERR_ARG, "normalizer: %s", !l ? "NULL loader" : "which must be 0 (inputs) or 1 (targets)");
    return NULL;
  }
  const opl_loader_info *in = opl_loader_get_info(l);
  int64_t C = which ? in->cout : in->cin, P = C * in->nx * in->ny, n = in->n[OPL_SPLIT_TRAIN], B = in->batch;
  int rank = in->sdim + 1;
  int64_t shape[3] = {C, in->nx, in->ny};
  if (n < 2 && kind == OPL_NORM_UNIT_GAUSSIAN) {
    opl_err_set(err, OPL_ERR_ARG, "normalizer: '%s': unit_gaussian needs at least 2 training samples, ntrain = %lld",
                opl_ds_get_info(opl_loader_ds(l))->path, (long long)n);
    return NULL;
  }
  if (n < 1) {
    opl_err_set(err, OPL_ERR_ARG, "normalizer: '%s': no training samples", opl_ds_get_info(opl_loader_ds(l))->path);
    return NULL;
  }
  opl_normalizer *nz = nz_new(kind, rank, shape, err);
  if (!nz) return NULL;
  welford w = {0};
  opl_real *buf = malloc(sizeof(opl_real) * (size_t)(B * P));
  int64_t *idx = malloc(sizeof(int64_t) * (size_t)B);
  int st = (!buf || !idx) ? opl_err_set(err, OPL_ERR_NOMEM, "normalizer: out of memory") : wf_init(&w, P, err);
  int64_t first = in->first[OPL_SPLIT_TRAIN];
  for (int64_t s = 0; !st && s < n; s += B) {
    int64_t b = n - s < B ? n - s : B;
    for (int64_t j = 0; j < b; j++) idx[j] = first + s + j;
    st = opl_loader_read(l, idx, b, which ? NULL : buf, which ? buf : NULL, err);
    if (!st) st = wf_add(&w, buf, b, first + s, err);
  }
  if (!st) st = wf_finish(&w, nz, err);
  wf_free(&w);
  free(buf);
  free(idx);
  if (st) opl_normalizer_free(&nz);
  return nz;
}

/* ================================================================ encode / decode */

/* Check a batch shape against nz; on success *B = batch count, *P = points per sample. */
static int check_batch(const opl_normalizer *nz, const char *op, int rank, const int64_t *shape, int64_t *B,
                       int64_t *P, char *msg) {
  char s1[96], s2[96];
  msg[0] = 0;
  if (rank < 1 || rank > OPL_MAX_RANK || !shape) {
    snprintf(msg, 400, "normalizer_%s: batch rank %d outside [1, %d]", op, rank, OPL_MAX_RANK);
    return OPL_ERR_SHAPE;
  }
  if (nz->kind == OPL_NORM_GAUSSIAN) {
    *B = 1;
    *P = 1;
    for (int i = 0; i < rank; i++) *P *= shape[i];
    return OPL_OK;
  }
  if (rank != nz->rank + 1 || !opl_shape_eq(rank - 1, shape + 1, nz->rank, nz->shape)) {
    int64_t want[OPL_MAX_RANK];
    want[0] = rank >= 1 ? shape[0] : 1;
    memcpy(want + 1, nz->shape, sizeof(int64_t) * (size_t)nz->rank);
    snprintf(msg, 400, "normalizer_%s: batch shape %s does not match the normalizer's sample shape (expected %s)", op,
             opl_shape_str(s1, rank, shape), opl_shape_str(s2, nz->rank + 1, want));
    return OPL_ERR_SHAPE;
  }
  *B = shape[0];
  *P = nz->mean->numel;
  return OPL_OK;
}

/* Encode (dir = 0) or decode (dir = 1) kernel: x [B, P], mean / std [P] or [1] (scalar). */
static void affine_kernel(opl_real *x /* [B, P] */, int64_t B, int64_t P, const opl_real *mean /* [P] or [1] */,
                          const opl_real *std /* [P] or [1] */, int scalar, double eps, int dir) {
  const opl_real e = (opl_real)eps;
#pragma omp parallel for if (B * P > NORM_PAR_MIN) schedule(static)
  for (int64_t b = 0; b < B; b++) {
    opl_real *xb = x + b * P;
    for (int64_t p = 0; p < P; p++) {
      opl_real m = mean[scalar ? 0 : p], s = std[scalar ? 0 : p] + e;
      xb[p] = dir ? xb[p] * s + m : (xb[p] - m) / s;
    }
  }
}

static int affine(const opl_normalizer *nz, opl_real *x, int rank, const int64_t *shape, int dir, opl_err *err) {
  const char *op = dir ? "decode" : "encode";
  if (!nz || !x) return opl_err_set(err, OPL_ERR_ARG, "normalizer_%s: NULL %s", op, nz ? "data" : "normalizer");
  int64_t B, P;
  char msg[400];
  int st = check_batch(nz, op, rank, shape, &B, &P, msg);
  if (st) return opl_err_set(err, st, "%s", msg);
  affine_kernel(x, B, P, nz->mean->data, nz->std->data, nz->kind == OPL_NORM_GAUSSIAN, nz->eps, dir);
  return OPL_OK;
}

int opl_normalizer_encode(const opl_normalizer *nz, opl_real *x, int rank, const int64_t *shape, opl_err *err) {
  return affine(nz, x, rank, shape, 0, err);
}
int opl_normalizer_decode(const opl_normalizer *nz, opl_real *x, int rank, const int64_t *shape, opl_err *err) {
  return affine(nz, x, rank, shape, 1, err);
}

/* Arena constants of nz for a graph: *m = mean, *s = std + eps (shape of one sample). */
static int graph_consts(opl_ctx *c, const opl_normalizer *nz, opl_tensor **m, opl_tensor **s) {
  *m = opl_new(c, nz->rank, nz->shape);
  *s = opl_new(c, nz->rank, nz->shape);
  if (!*m || !*s) return 0;
  for (int64_t p = 0; p < nz->mean->numel; p++) {
    (*m)->data[p] = nz->mean->data[p];
    (*s)->data[p] = nz->std->data[p] + (opl_real)nz->eps;
  }
  return 1;
}

static opl_tensor *affine_op(opl_ctx *c, const opl_normalizer *nz, opl_tensor *x, int dir) {
  const char *op = dir ? "decode" : "encode";
  if (!c || opl_ctx_status(c)) return NULL;
  if (!nz) {
    opl_ctx_error(c, OPL_ERR_ARG, "normalizer_%s_op: NULL normalizer", op);
    return NULL;
  }
  if (!opl_check_input(c, dir ? "normalizer_decode_op" : "normalizer_encode_op", "x", x, -1, 0)) return NULL;
  int64_t B, P;
  char msg[400];
  int st = check_batch(nz, op, x->rank, x->shape, &B, &P, msg);
  if (st) {
    opl_ctx_error(c, st, "%s", msg);
    return NULL;
  }
  if (nz->kind == OPL_NORM_GAUSSIAN) {
    double m = nz->mean->data[0], s = (double)(nz->std->data[0] + (opl_real)nz->eps);
    return dir ? opl_add_scalar(c, opl_scale(c, x, s), m) : opl_scale(c, opl_add_scalar(c, x, -m), 1.0 / s);
  }
  opl_tensor *m, *s;
  if (!graph_consts(c, nz, &m, &s)) return NULL;
  return dir ? opl_add(c, opl_mul(c, x, s), m) : opl_div(c, opl_sub(c, x, m), s);
}

opl_tensor *opl_normalizer_decode_op(opl_ctx *c, const opl_normalizer *nz, opl_tensor *x) {
  return affine_op(c, nz, x, 1);
}
opl_tensor *opl_normalizer_encode_op(opl_ctx *c, const opl_normalizer *nz, opl_tensor *x) {
  return affine_op(c, nz, x, 0);
}

/* ================================================================ resampling */

/* Periodic linear interpolation of lines: in [lines, n] -> out [lines, m]; new point j sits
 * at old index position j n / m. */
static void linear_lines(const opl_real *in /* [lines, n] */, int64_t lines, int64_t n, int64_t m,
                         opl_real *out /* [lines, m] */) {
#pragma omp parallel for if (lines * m > NORM_PAR_MIN)
  for (int64_t l = 0; l < lines; l++)
    for (int64_t j = 0; j < m; j++) {
      int64_t num = j * n, i0 = num / m;        /* exact integer position when m divides j n */
      double w = (double)(num - i0 * m) / (double)m;
      const opl_real *f = in + l * n;
      double v0 = f[i0 % n], v1 = f[(i0 + 1) % n];
      out[l * m + j] = (opl_real)(w == 0 ? v0 : (1 - w) * v0 + w * v1);
    }
}

static void resample_lines(const opl_real *in, int64_t lines, int64_t n, int64_t m, opl_real *out) {
  if (n == m) memcpy(out, in, sizeof(opl_real) * (size_t)(lines * n));
  else linear_lines(in, lines, n, m, out);
}

/* Trigonometric interpolation of each channel of f [C, X(, Y)] onto [C, nx(, ny)] (out), by
 * the one spectral interpolation of the house, opl_grid_resample (pde/grid.h: its Nyquist rules
 * are the ones normalizer.h states). Every extent must be even and >= 4 (OPL_ERR_ARG). */
static int spectral_field(const opl_real *f, int64_t C, int sdim, int64_t X, int64_t Y, int64_t nx,
                          int64_t ny, opl_real *out, opl_err *err) {
  const int64_t ext[4] = {X, sdim == 2 ? Y : 4, nx, sdim == 2 ? ny : 4};
  for (int i = 0; i < 4; i++)
    if (ext[i] < 4 || ext[i] % 2 || ext[i] > INT32_MAX)
      return opl_err_set(err, OPL_ERR_ARG,
                         "normalizer_resample: spectral resampling from %lld x %lld to %lld x %lld needs "
                         "even extents >= 4 (use linear resampling)",
                         (long long)X, (long long)(sdim == 2 ? Y : 1), (long long)nx,
                         (long long)(sdim == 2 ? ny : 1));
  opl_grid *gs = sdim == 1 ? opl_grid_new_1d((int)X, 1, OPL_GRID_ESTIMATE, err)
                           : opl_grid_new_2d((int)X, (int)Y, 1, 1, OPL_GRID_ESTIMATE, err);
  opl_grid *gd = !gs ? NULL
                 : sdim == 1 ? opl_grid_new_1d((int)nx, 1, OPL_GRID_ESTIMATE, err)
                             : opl_grid_new_2d((int)nx, (int)ny, 1, 1, OPL_GRID_ESTIMATE, err);
  int st = gd ? OPL_OK : (err && err->status ? err->status : OPL_ERR_NOMEM);
  double *u = NULL, *v = NULL, *w = NULL;
  if (!st) {
    u = opl_pde_alloc(gs->nreal);
    v = opl_pde_alloc(gd->nreal);
    w = opl_pde_alloc(opl_grid_resample_work(gs, gd));
    if (!u || !v || !w) st = opl_err_set(err, OPL_ERR_NOMEM, "normalizer: out of memory");
  }
  for (int64_t c = 0; !st && c < C; c++) {
    for (int64_t p = 0; p < gs->nreal; p++) u[p] = f[c * gs->nreal + p];
    st = opl_grid_resample(gs, u, gd, v, w, err);
    for (int64_t p = 0; !st && p < gd->nreal; p++) out[c * gd->nreal + p] = (opl_real)v[p];
  }
  opl_pde_free(u);
  opl_pde_free(v);
  opl_pde_free(w);
  opl_grid_free(&gd);
  opl_grid_free(&gs);
  return st;
}

/* Per-channel transpose: in [C, R, S] -> out [C, S, R]. */
static void transpose_cs(const opl_real *in, int64_t C, int64_t R, int64_t S, opl_real *out) {
  for (int64_t c = 0; c < C; c++)
    for (int64_t r = 0; r < R; r++)
      for (int64_t s = 0; s < S; s++) out[(c * S + s) * R + r] = in[(c * R + r) * S + s];
}

/* Resample one field f [C, X(, Y)] to [C, nx(, ny)] into out. */
static int resample_field(const opl_real *f, int64_t C, int sdim, int64_t X, int64_t Y, int64_t nx, int64_t ny,
                          int mode, opl_real *out, opl_err *err) {
  if (mode == OPL_NORM_RESAMPLE_SPECTRAL) return spectral_field(f, C, sdim, X, Y, nx, ny, out, err);
  if (sdim == 1) {
    resample_lines(f, C, X, nx, out);
    return OPL_OK;
  }
  /* along y (contiguous), then transpose, along x, transpose back */
  opl_real *t1 = malloc(sizeof(opl_real) * (size_t)(C * X * ny));
  opl_real *t2 = malloc(sizeof(opl_real) * (size_t)(C * X * ny));
  opl_real *t3 = malloc(sizeof(opl_real) * (size_t)(C * nx * ny));
  int st = (!t1 || !t2 || !t3) ? opl_err_set(err, OPL_ERR_NOMEM, "normalizer: out of memory") : OPL_OK;
  if (!st) {
    resample_lines(f, C * X, Y, ny, t1);
    transpose_cs(t1, C, X, ny, t2);                   /* [C, ny, X] */
    resample_lines(t2, C * ny, X, nx, t3);            /* [C, ny, nx] */
    transpose_cs(t3, C, ny, nx, out);                 /* [C, nx, ny] */
  }
  free(t1);
  free(t2);
  free(t3);
  return st;
}

opl_normalizer *opl_normalizer_resample(const opl_normalizer *nz, int64_t nx, int64_t ny, int mode, opl_err *err) {
  if (!nz) {
    opl_err_set(err, OPL_ERR_ARG, "normalizer_resample: NULL normalizer");
    return NULL;
  }
  if (mode != OPL_NORM_RESAMPLE_LINEAR && mode != OPL_NORM_RESAMPLE_SPECTRAL) {
    opl_err_set(err, OPL_ERR_ARG, "normalizer_resample: unknown mode %d", mode);
    return NULL;
  }
  if (nz->kind == OPL_NORM_GAUSSIAN) {
    opl_normalizer *c = nz_new(nz->kind, 0, NULL, err);
    if (c) {
      c->eps = nz->eps;
      c->nfit = nz->nfit;
      c->mean->data[0] = nz->mean->data[0];
      c->std->data[0] = nz->std->data[0];
    }
    return c;
  }
  char sb[96];
  if (nz->rank != 2 && nz->rank != 3) {
    opl_err_set(err, OPL_ERR_SHAPE, "normalizer_resample: sample shape %s, expected (C, X) or (C, X, Y)",
                opl_shape_str(sb, nz->rank, nz->shape));
    return NULL;
  }
  int sdim = nz->rank - 1;
  if (sdim == 1) ny = 1;
  if (nx < 1 || ny < 1) {
    opl_err_set(err, OPL_ERR_ARG, "normalizer_resample: new grid %lld x %lld, extents must be >= 1", (long long)nx,
                (long long)ny);
    return NULL;
  }
  int64_t C = nz->shape[0], X = nz->shape[1], Y = sdim == 2 ? nz->shape[2] : 1;
  int64_t shape[3] = {C, nx, ny};
  opl_normalizer *r = nz_new(nz->kind, nz->rank, shape, err);
  if (!r) return NULL;
  r->eps = nz->eps;
  r->nfit = nz->nfit;
  int st = resample_field(nz->mean->data, C, sdim, X, Y, nx, ny, mode, r->mean->data, err);
  if (!st) st = resample_field(nz->std->data, C, sdim, X, Y, nx, ny, mode, r->std->data, err);
  if (!st)
    for (int64_t p = 0; p < r->std->numel; p++)
      if (r->std->data[p] < 0) r->std->data[p] = 0;   /* spectral ringing */
  if (st) opl_normalizer_free(&r);
  return r;
}

/* ================================================================ storage */

int opl_normalizer_put(opl_h5w *w, const char *group, const opl_normalizer *nz, opl_err *err) {
  if (!nz) return opl_err_set(err, OPL_ERR_ARG, "normalizer_put: NULL normalizer");
  const char *g = group ? group : "normalizer";
  opl_tensor *t[2] = {nz->mean, nz->std};
  int st = opl_h5w_put_tensors(w, g, t, 2, OPL_DT_NATIVE, err);
  if (!st) st = opl_h5w_attr_str(w, g, "format", OPL_NORM_FORMAT, err);
  if (!st) st = opl_h5w_attr_str(w, g, "kind", kind_name(nz->kind), err);
  if (!st) st = opl_h5w_attr_double(w, g, "eps", nz->eps, err);
  if (!st) st = opl_h5w_attr_int(w, g, "nfit", nz->nfit, err);
  return st;
}

opl_normalizer *opl_normalizer_get(opl_h5r *r, const char *group, opl_err *err) {
  const char *g = group ? group : "normalizer";
  char *fmt = NULL, *kind = NULL, path[256], sb1[96], sb2[96];
  opl_tensor *m = NULL, *s = NULL;
  opl_normalizer *nz = NULL;
  double eps = 0;
  int64_t nfit = 0;
  int st = opl_h5r_attr_str(r, g, "format", &fmt, err);
  if (st == OPL_ERR_NOTFOUND) {
    opl_err e2 = {0};
    if (err) e2 = *err;
    st = opl_err_set(err, OPL_ERR_NOTFOUND, "normalizer: no normalizer in group '%s' (%s)", g, e2.msg);
  } else if (!st && strcmp(fmt, OPL_NORM_FORMAT) != 0) {
    st = opl_err_set(err, OPL_ERR_FORMAT, "normalizer: group '%s' has format '%s', expected '%s'", g, fmt,
                     OPL_NORM_FORMAT);
  }
  if (!st) st = opl_h5r_attr_str(r, g, "kind", &kind, err);
  if (!st) st = opl_h5r_attr_double(r, g, "eps", &eps, err);
  if (!st) st = opl_h5r_attr_int(r, g, "nfit", &nfit, err);
  int k = -1;
  if (!st) {
    k = !strcmp(kind, "unit_gaussian") ? OPL_NORM_UNIT_GAUSSIAN : !strcmp(kind, "gaussian") ? OPL_NORM_GAUSSIAN : -1;
    if (k < 0) st = opl_err_set(err, OPL_ERR_FORMAT, "normalizer: group '%s': unknown kind '%s'", g, kind);
    else if (!isfinite(eps) || eps < 0) st = opl_err_set(err, OPL_ERR_FORMAT, "normalizer: group '%s': eps = %g", g, eps);
  }
  if (!st) {
    snprintf(path, sizeof path, "%s/mean", g);
    st = opl_h5r_read_tensor(r, path, &m, err);
  }
  if (!st) {
    snprintf(path, sizeof path, "%s/std", g);
    st = opl_h5r_read_tensor(r, path, &s, err);
  }
  if (!st && (!opl_shape_eq(m->rank, m->shape, s->rank, s->shape) || opl_is_complex(m) || opl_is_complex(s) ||
              (k == OPL_NORM_GAUSSIAN && m->numel != 1) || m->rank < 1 || m->rank > OPL_MAX_RANK - 1))
    st = opl_err_set(err, OPL_ERR_FORMAT, "normalizer: group '%s': mean %s and std %s do not fit a %s normalizer", g,
                     opl_shape_str(sb1, m->rank, m->shape), opl_shape_str(sb2, s->rank, s->shape), kind);
  for (int64_t p = 0; !st && p < m->numel; p++)
    if (!isfinite(m->data[p]) || !isfinite(s->data[p]) || s->data[p] < 0)
      st = opl_err_set(err, OPL_ERR_FORMAT, "normalizer: group '%s': bad statistics at point %lld (mean %g, std %g)",
                       g, (long long)p, (double)m->data[p], (double)s->data[p]);
  if (!st) nz = nz_new(k, m->rank, m->shape, err);
  if (nz) {
    nz->eps = eps;
    nz->nfit = nfit;
    memcpy(nz->mean->data, m->data, sizeof(opl_real) * (size_t)m->numel);
    memcpy(nz->std->data, s->data, sizeof(opl_real) * (size_t)s->numel);
  }
  free(fmt);
  free(kind);
  opl_tensor_free(&m);
  opl_tensor_free(&s);
  return nz;
}

int opl_normalizer_save(const char *path, const opl_normalizer *nz, opl_err *err) {
  if (!nz) return opl_err_set(err, OPL_ERR_ARG, "normalizer_save: NULL normalizer");
  opl_h5w *w = opl_h5w_create(path, err);
  if (!w) return err ? err->status : OPL_ERR_IO;
  int st = opl_normalizer_put(w, NULL, nz, err);
  if (st) {
    opl_h5w_abort(&w);
    return st;
  }
  return opl_h5w_commit(&w, err);
}

opl_normalizer *opl_normalizer_load(const char *path, opl_err *err) {
  opl_h5r *r = opl_h5r_open(path, err);
  if (!r) return NULL;
  opl_normalizer *nz = opl_normalizer_get(r, NULL, err);
  opl_h5r_close(&r);
  return nz;
}
