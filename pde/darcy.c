/* opl pde — steady Darcy flow: the Neumann random field, the five-point operator and its
 * CHOLMOD solve. See pde/darcy.h.
 */
#include "pde/darcy.h"

#include <fftw3.h>
#include <math.h>
#include <omp.h>
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

/* CHOLMOD's numeric factorization of d->A into d->L and the solve L L' x = d->b: the solution
 * (CHOLMOD-allocated), or NULL with *stage naming the failed call ("factorization", "solve"); a
 * CHOLMOD warning (status > 0, e.g. not positive definite) counts as a failure. */
static cholmod_dense *cm_factor_solve(opl_darcy *d, const char **stage) {
  d->c.status = CHOLMOD_OK;
  if (!cholmod_factorize(d->A, d->L, &d->c) || d->c.status != CHOLMOD_OK) {
    *stage = "factorization";
    return NULL;
  }
  cholmod_dense *x = cholmod_solve(CHOLMOD_A, d->L, d->b, &d->c);
  if (!x || d->c.status != CHOLMOD_OK) *stage = "solve";
  return x;
}

/* cm_factor_solve with CHOLMOD's OpenMP regions and the BLAS it calls on the calling thread
 * alone, whatever the environment and the caller's context; the caller's OpenMP settings are
 * as before on return. Contract as cm_factor_solve.
 *
 * Why: Debian's CHOLMOD (SuiteSparse 5.12) opens `parallel num_threads(4)` regions (a fixed
 * CHOLMOD_OMP_NUM_THREADS, under size thresholds) in its supernodal numeric code; a
 * num_threads clause overrides omp_set_num_threads / OMP_NUM_THREADS, and the generation runs
 * one solve per thread already. How, with the per-task ICVs of OpenMP 5.0 (libgomp keeps both
 * of these per task, so other threads, even inside the same parallel region, are untouched):
 *  - max-active-levels := the current active level. A region that would be one level deeper
 *    and active gets one thread: at top level (0, the sequential part of a program, where the
 *    call is defined and binds to this thread alone), inside an inactive region (a 1-thread
 *    team is no active level, so capping at 1 would not do), and nested in an active region
 *    (where libgomp's default of 1 already does it, but OMP_MAX_ACTIVE_LEVELS may not).
 *    Inside a parallel region the effect of omp_set_max_active_levels is implementation
 *    defined; libgomp 12 applies it to the calling task only.
 *  - nthreads-var := 1 where no active region encloses the call: OpenBLAS (OpenMP build) sizes
 *    its work split by omp_get_max_threads() and then opens its own region; capped to one
 *    thread by the rule above, its level-3 drivers would wait for partner threads that never
 *    run (a hang), and a different split is a different sum order. Inside an active region
 *    OpenBLAS runs on one thread by itself (omp_in_parallel()). (OpenBLAS keeps its own thread
 *    count in a global that it resets to omp_get_max_threads() at each call: its behaviour
 *    whenever two callers differ.)
 * Measured (421^2, CHOLMOD's regions at 4 threads on 2 cores): 2-4 s a sample against ~0.18 s
 * on one; with max-active-levels 0 at top level and nthreads 2, a 1500^3 OpenBLAS dgemm never
 * returned. Not chosen: a host `teams num_teams(1) thread_limit(1)` (OpenMP 5.0) emulates
 * OMP_THREAD_LIMIT=1 at top level, but teams may not be nested in a parallel region, and only
 * parallel / distribute / loop constructs (no runtime calls, which OpenBLAS makes) may run in
 * one; OMP_THREAD_LIMIT itself is read once at start-up; a 2-thread region where one thread
 * idles wastes a core. One thread for both makes the factor's bits independent of the
 * caller's thread count and context (tests/pde/test_darcy.c test_threads). */
static cholmod_dense *cm_numeric(opl_darcy *d, const char **stage) {
  const int mal = omp_get_max_active_levels(), act = omp_get_active_level();
  const int nt = omp_get_max_threads(), in_active = omp_in_parallel();
  if (mal > act) omp_set_max_active_levels(act);
  if (!in_active && nt != 1) omp_set_num_threads(1);
  cholmod_dense *x = cm_factor_solve(d, stage);
  if (!in_active && nt != 1) omp_set_num_threads(nt);
  if (mal > act) omp_set_max_active_levels(mal);
  return x;
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
  /* Supernodal Cholesky LL' (dense BLAS-3 blocks over supernodes: Ng & Peyton, "Block sparse
   * Cholesky algorithms on advanced uniprocessor computers", SIAM J. Sci. Comput. 1993, as
   * CHOLMOD implements it) on a nested-dissection ordering (George, "Nested dissection of a
   * regular finite element mesh", SIAM J. Numer. Anal. 1973): CHOLMOD_NESDIS, METIS node
   * separators then constrained minimum degree, the only method tried. Relaxed supernode
   * amalgamation: nrelax 4x CHOLMOD's defaults (4 / 16 / 48 -> 16 / 64 / 192 columns), zrelax
   * left at 0.8 / 0.1 / 0.05: fewer, larger dense blocks. At 421^2, process CPU time of the
   * numeric factorization + solves per sample, one thread (experiments/darcy/results.md; load
   * 7-15, two interleaved rounds): these settings 179-230 ms; nrelax 1x 338-354, 2x 253-259,
   * 8x 221-224; METIS alone 229-241, AMD 224-228; zrelax halved 277-282; the simplicial LDL'
   * used before (better of AMD / METIS) 473-489. The numeric calls run CHOLMOD's own OpenMP
   * regions and the BLAS on one thread (cm_numeric), so the factor's bits do not depend on any
   * thread count. All of it is deterministic (METIS runs with its fixed default seed). */
  d->c.supernodal = CHOLMOD_SUPERNODAL;
  d->c.nmethods = 1;
  d->c.method[0].ordering = CHOLMOD_NESDIS;
  d->c.postorder = 1;
  d->c.nrelax[0] = 16;
  d->c.nrelax[1] = 64;
  d->c.nrelax[2] = 192;
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
  const char *stage = NULL;
  cholmod_dense *x = cm_numeric(d, &stage);
  if (stage) {
    if (x) cholmod_free_dense(&x, &d->c);
    if (d->c.status == CHOLMOD_OK) d->c.status = CHOLMOD_INVALID;
    return cm_fail(d, stage, err);
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
