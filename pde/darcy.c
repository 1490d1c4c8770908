/* opl pde — steady Darcy flow: the Neumann random field, the five-point operator and its
 * CHOLMOD solve. See pde/darcy.h.
 */
#include "pde/darcy.h"

#include <fftw3.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <suitesparse/cholmod.h>

#include "core/rng.h"

#define TAG "darcy: "

int opl_darcy_check(const opl_darcy_params *p, opl_err *err) {
  struct { const char *name; double v; } v[] = {
      {"tau", p->tau}, {"alpha", p->alpha}, {"a_pos", p->a_pos}, {"a_neg", p->a_neg}};
  for (int k = 0; k < 4; k++)
    if (!isfinite(v[k].v) || v[k].v <= 0)
      return opl_err_set(err, OPL_ERR_ARG, TAG "%s = %g, expected a finite value > 0", v[k].name, v[k].v);
  return OPL_OK;
}

int opl_darcy_preset(const char *name, opl_darcy_params *p, int *res, int *store_res, opl_err *err) {
  if (!name) name = "fno";
  int r, sr;
  if (!strcmp(name, "fno")) {
    *p = (opl_darcy_params){.tau = 3, .alpha = 2, .a_pos = 12, .a_neg = 3};
    r = 421;
    sr = 85;
  } else if (!strcmp(name, "rough")) {
    /* MgNO's rough set: 512^2 nodes, stored as every second node ([::2], 256^2, which drops the
     * last node). opl keeps every k-th node with both ends, so it solves on 511^2 nodes (the
     * 512-node grid less its last node) and stores every second one: 256^2, the same sizes. */
    *p = (opl_darcy_params){.tau = 5, .alpha = 2, .a_pos = 12, .a_neg = 3};
    r = 511;
    sr = 256;
  } else {
    return opl_err_set(err, OPL_ERR_ARG, TAG "unknown preset '%s' (expected fno or rough)", name);
  }
  if (res) *res = r;
  if (store_res) *store_res = sr;
  return OPL_OK;
}

/* ================================================================ Neumann random field */

struct opl_darcy_grf {
  int s;
  double *coef;   /* [s*s] c_k times the DCT-I end weights (1 at k = 0, s-1; 1/2 inside) */
  fftw_plan plan; /* 2-D REDFT00, s x s, in place */
};

opl_darcy_grf *opl_darcy_grf_new(int s, double tau, double alpha, opl_err *err) {
  if (s < 3) {
    opl_err_set(err, OPL_ERR_ARG, TAG "resolution s = %d, expected s >= 3", s);
    return NULL;
  }
  opl_darcy_params chk = {.tau = tau, .alpha = alpha, .a_pos = 1, .a_neg = 1};
  if (opl_darcy_check(&chk, err)) return NULL;
  opl_darcy_grf *f = calloc(1, sizeof *f);
  double *tmp = fftw_malloc(sizeof(double) * (size_t)s * (size_t)s);
  if (f) f->coef = malloc(sizeof(double) * (size_t)s * (size_t)s);
  if (!f || !f->coef || !tmp) {
    fftw_free(tmp);
    if (f) free(f->coef);
    free(f);
    opl_err_set(err, OPL_ERR_NOMEM, TAG "out of memory for a %d x %d random field", s, s);
    return NULL;
  }
  f->s = s;
  const double pi2 = M_PI * M_PI, scale = pow(tau, alpha - 1);
  for (int k1 = 0; k1 < s; k1++)
    for (int k2 = 0; k2 < s; k2++) {
      double w = (k1 == 0 || k1 == s - 1 ? 1.0 : 0.5) * (k2 == 0 || k2 == s - 1 ? 1.0 : 0.5);
      double c = scale * pow(pi2 * ((double)k1 * k1 + (double)k2 * k2) + tau * tau, -alpha / 2);
      f->coef[(size_t)k1 * s + k2] = k1 == 0 && k2 == 0 ? 0.0 : w * c;
    }
#pragma omp critical(opl_fftw_double_planner)
  f->plan = fftw_plan_r2r_2d(s, s, tmp, tmp, FFTW_REDFT00, FFTW_REDFT00, FFTW_ESTIMATE);
  fftw_free(tmp);
  if (!f->plan) {
    opl_darcy_grf_free(&f);
    opl_err_set(err, OPL_ERR_STATE, TAG "FFTW could not plan a %d x %d DCT-I", s, s);
    return NULL;
  }
  return f;
}

void opl_darcy_grf_free(opl_darcy_grf **pf) {
  if (!pf || !*pf) return;
  opl_darcy_grf *f = *pf;
  if (f->plan) {
#pragma omp critical(opl_fftw_double_planner)
    fftw_destroy_plan(f->plan);
  }
  free(f->coef);
  free(f);
  *pf = NULL;
}

int64_t opl_darcy_grf_work_size(const opl_darcy_grf *f) { return (int64_t)f->s * f->s; }

void opl_darcy_grf_sample(const opl_darcy_grf *f, uint64_t seed, uint64_t index, double *g, double *work) {
  opl_rng parent;
  opl_rng_seed(&parent, seed);
  opl_rng r = opl_rng_split(&parent, index);
  int64_t n = (int64_t)f->s * f->s;
  for (int64_t k = 0; k < n; k++) work[k] = f->coef[k] * opl_rng_normal(&r);
  fftw_execute_r2r(f->plan, work, g);
}

void opl_darcy_psi(const opl_darcy_params *p, const double *g, double *a, int64_t n) {
  for (int64_t k = 0; k < n; k++) a[k] = g[k] >= 0 ? p->a_pos : p->a_neg;
}

/* ================================================================ operator */

void opl_darcy_stencil(int s, const double *a, int i, int j, double c[5]) {
  const double h2 = (double)(s - 1) * (s - 1);
  const double ap = a[(size_t)i * s + j];
  const int nb[4][2] = {{i - 1, j}, {i + 1, j}, {i, j - 1}, {i, j + 1}};
  c[0] = 0;
  for (int k = 0; k < 4; k++) {
    double face = 0.5 * (ap + a[(size_t)nb[k][0] * s + nb[k][1]]);
    c[0] += h2 * face;
    c[k + 1] = -h2 * face;
  }
}

void opl_darcy_apply(int s, const double *a, const double *x, double *y) {
  const int m = s - 2;
  for (int i = 1; i <= m; i++)
    for (int j = 1; j <= m; j++) {
      double c[5];
      opl_darcy_stencil(s, a, i, j, c);
      int p = (i - 1) * m + (j - 1);
      double v = c[0] * x[p];
      if (i > 1) v += c[1] * x[p - m];
      if (i < m) v += c[2] * x[p + m];
      if (j > 1) v += c[3] * x[p - 1];
      if (j < m) v += c[4] * x[p + 1];
      y[p] = v;
    }
}

/* ================================================================ CHOLMOD solve */

struct opl_darcy {
  int s;
  cholmod_common c;
  int started;
  cholmod_sparse *A;   /* upper triangle (stype 1), column p: rows p - m, p - 1, p */
  cholmod_factor *L;   /* symbolic after new/clone, numeric after a solve */
  cholmod_dense *b;    /* [m^2] right-hand side */
};

static const char *cm_status(int st) {
  switch (st) {
    case CHOLMOD_OK: return "ok";
    case CHOLMOD_NOT_INSTALLED: return "method not installed";
    case CHOLMOD_OUT_OF_MEMORY: return "out of memory";
    case CHOLMOD_TOO_LARGE: return "problem too large";
    case CHOLMOD_INVALID: return "invalid input";
    case CHOLMOD_GPU_PROBLEM: return "GPU problem";
    case CHOLMOD_NOT_POSDEF: return "matrix not positive definite";
    case CHOLMOD_DSMALL: return "diagonal entry tiny";
    default: return "unknown status";
  }
}

/* CHOLMOD's status after a call as an opl status (0 when fine). */
static int cm_fail(opl_darcy *d, const char *what, opl_err *err) {
  int st = d->c.status;
  if (st == CHOLMOD_OK) return OPL_OK;
  int code = st == CHOLMOD_OUT_OF_MEMORY ? OPL_ERR_NOMEM
             : st == CHOLMOD_NOT_POSDEF  ? OPL_ERR_ARG
             : st == CHOLMOD_TOO_LARGE   ? OPL_ERR_SHAPE
                                         : OPL_ERR_STATE;
  return opl_err_set(err, code, TAG "CHOLMOD %s failed on the %d x %d grid: %s (status %d)", what, d->s, d->s,
                     cm_status(st), st);
}

static opl_darcy *d_start(int s, opl_err *err) {
  if (s < 3) {
    opl_err_set(err, OPL_ERR_ARG, TAG "resolution s = %d, expected s >= 3", s);
    return NULL;
  }
  if ((int64_t)(s - 2) * (s - 2) > 0x3fffffff / 3) {
    opl_err_set(err, OPL_ERR_SHAPE, TAG "resolution s = %d is too large", s);
    return NULL;
  }
  opl_darcy *d = calloc(1, sizeof *d);
  if (!d) {
    opl_err_set(err, OPL_ERR_NOMEM, TAG "out of memory");
    return NULL;
  }
  d->s = s;
  cholmod_start(&d->c);
  d->started = 1;
  d->c.print = 0;             /* CHOLMOD prints nothing; its status is checked after each call */
  d->c.error_handler = NULL;
  /* Simplicial (up-looking LDL') factorization: no BLAS and no OpenMP inside CHOLMOD. The
   * supernodal one opens OpenMP regions of its own (a fixed 4 threads in Debian's build) that
   * are nested, and ~5x slower, inside the generation's parallel loop over samples; single-
   * threaded at 421^2 it was no faster. Its bits do not depend on any thread count. */
  d->c.supernodal = CHOLMOD_SIMPLICIAL;
  /* Fill-reducing ordering: AMD and METIS nested dissection both tried, the one with the least
   * fill kept (nested dissection wins on 2-D grids: George, "Nested dissection of a regular
   * finite element mesh", SIAM J. Numer. Anal. 1973). Both are deterministic. */
  d->c.nmethods = 2;
  d->c.method[0].ordering = CHOLMOD_AMD;
  d->c.method[1].ordering = CHOLMOD_METIS;
  return d;
}

opl_darcy *opl_darcy_new(int s, opl_err *err) {
  opl_darcy *d = d_start(s, err);
  if (!d) return NULL;
  const int m = s - 2, n = m * m;
  const size_t nnz = (size_t)n + 2 * (size_t)m * (m - 1);
  d->A = cholmod_allocate_sparse((size_t)n, (size_t)n, nnz, 1, 1, 1, CHOLMOD_REAL, &d->c);
  if (!d->A) goto fail;
  int *Ap = d->A->p, *Ai = d->A->i, k = 0;
  double *Ax = d->A->x;
  for (int p = 0; p < n; p++) {
    int i = p / m, j = p % m;
    Ap[p] = k;
    if (i > 0) Ai[k++] = p - m;
    if (j > 0) Ai[k++] = p - 1;
    Ai[k++] = p;
  }
  Ap[n] = k;
  for (int q = 0; q < k; q++) Ax[q] = 0;
  d->L = cholmod_analyze(d->A, &d->c);
  if (!d->L) goto fail;
  d->b = cholmod_allocate_dense((size_t)n, 1, (size_t)n, CHOLMOD_REAL, &d->c);
  if (!d->b) goto fail;
  return d;
fail:
  if (d->c.status == CHOLMOD_OK) d->c.status = CHOLMOD_OUT_OF_MEMORY;
  cm_fail(d, "analysis", err);
  opl_darcy_free(&d);
  return NULL;
}

opl_darcy *opl_darcy_clone(const opl_darcy *src, opl_err *err) {
  opl_darcy *d = d_start(src->s, err);
  if (!d) return NULL;
  /* copies read src without modifying it; all allocation goes through d's common */
  d->A = cholmod_copy_sparse(src->A, &d->c);
  if (d->A) d->L = cholmod_copy_factor(src->L, &d->c);
  if (d->L) d->b = cholmod_allocate_dense(src->b->nrow, 1, src->b->nrow, CHOLMOD_REAL, &d->c);
  if (!d->b) {
    if (d->c.status == CHOLMOD_OK) d->c.status = CHOLMOD_OUT_OF_MEMORY;
    cm_fail(d, "copy of the analysis", err);
    opl_darcy_free(&d);
    return NULL;
  }
  return d;
}

void opl_darcy_free(opl_darcy **pd) {
  if (!pd || !*pd) return;
  opl_darcy *d = *pd;
  if (d->started) {
    if (d->b) cholmod_free_dense(&d->b, &d->c);
    if (d->L) cholmod_free_factor(&d->L, &d->c);
    if (d->A) cholmod_free_sparse(&d->A, &d->c);
    cholmod_finish(&d->c);
  }
  free(d);
  *pd = NULL;
}

int opl_darcy_size(const opl_darcy *d) { return d->s; }

int opl_darcy_solve(opl_darcy *d, const double *a, const double *f, double *u, opl_err *err) {
  const int s = d->s, m = s - 2;
  for (int64_t k = 0; k < (int64_t)s * s; k++)
    if (!isfinite(a[k]) || a[k] <= 0)
      return opl_err_set(err, OPL_ERR_ARG, TAG "coefficient a = %g at node (%d, %d), expected finite and > 0", a[k],
                         (int)(k / s), (int)(k % s));
  if (f)
    for (int i = 1; i <= m; i++)
      for (int j = 1; j <= m; j++)
        if (!isfinite(f[(size_t)i * s + j]))
          return opl_err_set(err, OPL_ERR_NONFINITE, TAG "right-hand side f = %g at node (%d, %d)",
                             f[(size_t)i * s + j], i, j);
  double *Ax = d->A->x, *bx = d->b->x;
  int k = 0;
  for (int p = 0; p < m * m; p++) {
    int i = p / m + 1, j = p % m + 1;
    double c[5];
    opl_darcy_stencil(s, a, i, j, c);
    if (i > 1) Ax[k++] = c[1];
    if (j > 1) Ax[k++] = c[3];
    Ax[k++] = c[0];
    bx[p] = f ? f[(size_t)i * s + j] : 1.0;
  }
  d->c.status = CHOLMOD_OK;
  if (!cholmod_factorize(d->A, d->L, &d->c) || d->c.status != CHOLMOD_OK) {
    if (d->c.status == CHOLMOD_OK) d->c.status = CHOLMOD_INVALID;
    return cm_fail(d, "factorization", err);
  }
  cholmod_dense *x = cholmod_solve(CHOLMOD_A, d->L, d->b, &d->c);
  if (!x || d->c.status != CHOLMOD_OK) {
    if (x) cholmod_free_dense(&x, &d->c);
    if (d->c.status == CHOLMOD_OK) d->c.status = CHOLMOD_INVALID;
    return cm_fail(d, "solve", err);
  }
  const double *xv = x->x;
  memset(u, 0, sizeof(double) * (size_t)s * (size_t)s);
  int bad = -1;
  for (int p = 0; p < m * m; p++) {
    u[(size_t)(p / m + 1) * s + (p % m + 1)] = xv[p];
    if (bad < 0 && !isfinite(xv[p])) bad = p;
  }
  cholmod_free_dense(&x, &d->c);
  if (bad >= 0)
    return opl_err_set(err, OPL_ERR_NONFINITE, TAG "non-finite solution at node (%d, %d)", bad / m + 1, bad % m + 1);
  return OPL_OK;
}
