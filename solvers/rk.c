/* opl solvers — adaptive explicit Runge-Kutta core: Butcher tableaus, error norm, PI step
 * controller, Hairer's starting step, stiffness estimate, step loop, vops for double arrays.
 * The formulas are documented in rk.h. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "solvers/rk.h"
#include "core/par.h"

#define RK_MAXS 7         /* most stages of any method */
#define RK_MAXTERMS 8     /* most terms of one linear combination (vops contract) */
#define RK_MAX_FAILS 10   /* consecutive recoverable f failures / non-finite attempts allowed */

/* ------------------------------------------------------------ tableaus */

typedef struct rk_tableau {
  const char *name;
  int s, order, emb;       /* stages, order of the solution, order of the embedded pair */
  const double *a;         /* [s*s] row-major, strictly lower triangular */
  const double *b;         /* [s] solution weights (== last row of a: FSAL) */
  const double *e;         /* [s] error weights b - bhat */
  const double *c;         /* [s] nodes */
  const double *alpha;     /* [s] stage weights of the stiffness difference (rk.h) */
} rk_tableau;

/* Dormand & Prince (1980), RK5(4)7M: the rational coefficients of the paper. */
static const double dp5_c[7] = {0, 1.0 / 5, 3.0 / 10, 4.0 / 5, 8.0 / 9, 1, 1};
static const double dp5_a[49] = {
    0, 0, 0, 0, 0, 0, 0,
    1.0 / 5, 0, 0, 0, 0, 0, 0,
    3.0 / 40, 9.0 / 40, 0, 0, 0, 0, 0,
    44.0 / 45, -56.0 / 15, 32.0 / 9, 0, 0, 0, 0,
    19372.0 / 6561, -25360.0 / 2187, 64448.0 / 6561, -212.0 / 729, 0, 0, 0,
    9017.0 / 3168, -355.0 / 33, 46732.0 / 5247, 49.0 / 176, -5103.0 / 18656, 0, 0,
    35.0 / 384, 0, 500.0 / 1113, 125.0 / 192, -2187.0 / 6784, 11.0 / 84, 0};
static const double dp5_b[7] = {35.0 / 384, 0, 500.0 / 1113, 125.0 / 192, -2187.0 / 6784, 11.0 / 84, 0};
/* b - bhat with bhat = (5179/57600, 0, 7571/16695, 393/640, -92097/339200, 187/2100, 1/40). */
static const double dp5_e[7] = {71.0 / 57600,     0, -71.0 / 16695, 71.0 / 1920,
                                -17253.0 / 339200, 22.0 / 525, -1.0 / 40};

/* Tsitouras (2011), Table 1 (the coefficients as published, to 16+ digits). The error weights
 * are b - bhat of the paper's embedded 4th-order row. */
static const double ts5_c[7] = {0, 0.161, 0.327, 0.9, 0.9800255409045097, 1, 1};
static const double ts5_a[49] = {
    0, 0, 0, 0, 0, 0, 0,
    0.161, 0, 0, 0, 0, 0, 0,
    -0.008480655492356989, 0.335480655492357, 0, 0, 0, 0, 0,
    2.897153057105493, -6.359448489975075, 4.3622954328695815, 0, 0, 0, 0,
    5.325864828439257, -11.748883564062828, 7.4955393428898365, -0.09249506636175525, 0, 0, 0,
    5.86145544294642, -12.92096931784711, 8.159367898576159, -0.071584973281401,
    -0.028269050394068383, 0, 0,
    0.09646076681806523, 0.01, 0.4798896504144996, 1.379008574103742, -3.290069515436081,
    2.324710524099774, 0};
static const double ts5_b[7] = {0.09646076681806523, 0.01, 0.4798896504144996, 1.379008574103742,
                                -3.290069515436081, 2.324710524099774, 0};
static const double ts5_e[7] = {-0.00178001105222577714, -0.0008164344596567469,
                                0.007880878010261995,    -0.1447110071732629,
                                0.5823571654525552,      -0.45808210592918697,
                                0.015151515151515152};

/* Bogacki & Shampine (1989). bhat = (7/24, 1/4, 1/3, 1/8). */
static const double bs3_c[4] = {0, 0.5, 0.75, 1};
static const double bs3_a[16] = {
    0, 0, 0, 0,
    0.5, 0, 0, 0,
    0, 0.75, 0, 0,
    2.0 / 9, 1.0 / 3, 4.0 / 9, 0};
static const double bs3_b[4] = {2.0 / 9, 1.0 / 3, 4.0 / 9, 0};
static const double bs3_e[4] = {-5.0 / 72, 1.0 / 12, 1.0 / 9, -1.0 / 8};

/* Stiffness differences (rk.h): Hairer's k7 - k6 for the two 7-stage pairs (c6 = c7 = 1); for
 * BS3 (distinct nodes 0, 1/2, 3/4, 1) the third divided difference, scaled: sum alpha = sum
 * alpha c = sum alpha c^2 = 0. */
static const double st7_alpha[7] = {0, 0, 0, 0, 0, -1, 1};
static const double bs3_alpha[4] = {-1, 6, -8, 3};

static const rk_tableau tableaus[OPL_RK_METHOD_COUNT] = {
    [OPL_RK_DP5] = {"dp5", 7, 5, 4, dp5_a, dp5_b, dp5_e, dp5_c, st7_alpha},
    [OPL_RK_TSIT5] = {"tsit5", 7, 5, 4, ts5_a, ts5_b, ts5_e, ts5_c, st7_alpha},
    [OPL_RK_BS3] = {"bs3", 4, 3, 2, bs3_a, bs3_b, bs3_e, bs3_c, bs3_alpha},
};

int opl_rk_tableau(opl_rk_method m, const double **a, const double **b, const double **e,
                   const double **c, int *order, int *embedded_order) {
  if ((int)m < 0 || m >= OPL_RK_METHOD_COUNT) return 0;
  const rk_tableau *T = &tableaus[m];
  if (a) *a = T->a;
  if (b) *b = T->b;
  if (e) *e = T->e;
  if (c) *c = T->c;
  if (order) *order = T->order;
  if (embedded_order) *embedded_order = T->emb;
  return T->s;
}

const char *opl_rk_method_name(opl_rk_method m) {
  if ((int)m < 0 || m >= OPL_RK_METHOD_COUNT) return NULL;
  return tableaus[m].name;
}

/* ------------------------------------------------------------ vops for double arrays */

/* Elements per block of a linear combination: the output block stays in L1 while the m inputs
 * stream through it once. */
#define DV_BLOCK 512

static void *dv_new(const opl_rk_vops *o) {
  if (o->n < 1) return NULL;
  return opl_aligned_calloc((size_t)o->n * sizeof(double));
}

static void dv_free(const opl_rk_vops *o, void *v) {
  (void)o;
  free(v);
}

/* Blocks [blo, bhi) of y = sum_{j<m} a[j] x[j]: y [n], x[j] [n] (DV_BLOCK elements a block). */
static void dv_lincomb_blocks(int64_t n, int m, const double *a, const double *const *x, double *y,
                              int64_t blo, int64_t bhi) {
  for (int64_t blk = blo; blk < bhi; blk++) {
    const int64_t lo = blk * DV_BLOCK, len = n - lo < DV_BLOCK ? n - lo : DV_BLOCK;
    double *restrict yb = y + lo;
    const double *restrict x0 = x[0] + lo;
    const double a0 = a[0];
    for (int64_t i = 0; i < len; i++) yb[i] = a0 * x0[i];
    for (int j = 1; j < m; j++) {
      const double *restrict xj = x[j] + lo;
      const double aj = a[j];
      for (int64_t i = 0; i < len; i++) yb[i] += aj * xj[i];
    }
  }
}

/* y[n] = sum_{j<m} a[j] x[j][n]; y distinct from every x[j]. Below OPL_PAR_MIN no OpenMP region
 * is entered at all (libgomp sets up a team even for if(0): ~20 us per step for tiny systems). */
static void dv_lincomb(const opl_rk_vops *o, int m, const double *a, const void *const *xv,
                       void *yv) {
  const int64_t n = o->n, nb = (n + DV_BLOCK - 1) / DV_BLOCK;
  const double *x[RK_MAXTERMS];
  OPL_ASSERT(m >= 1 && m <= RK_MAXTERMS, "m = %d", m);
  for (int j = 0; j < m; j++) x[j] = xv[j];
  if (n < OPL_PAR_MIN) {
    dv_lincomb_blocks(n, m, a, x, yv, 0, nb);
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t blk = 0; blk < nb; blk++) dv_lincomb_blocks(n, m, a, x, yv, blk, blk + 1);
}

/* Partial sums over [lo, hi) for dv_wrms: s += (e_i / w_i)^2 and chk += (ya_i - ya_i) +
 * (yb_i - yb_i), which is 0 for finite values and NaN otherwise, so a non-finite weight can
 * never hide (e / Inf would be 0). e, ya, yb [n]. */
static void dv_wrms_range(const double *restrict e, const double *restrict ya,
                          const double *restrict yb, double rtol, double atol, int64_t lo,
                          int64_t hi, double *s_out, double *chk_out) {
  double s = 0, chk = 0;
  for (int64_t i = lo; i < hi; i++) {
    double p = fabs(ya[i]), q = fabs(yb[i]);
    double w = atol + rtol * (p > q ? p : q);
    double r = e[i] / w;
    s += r * r;
    chk += (ya[i] - ya[i]) + (yb[i] - yb[i]);
  }
  *s_out = s;
  *chk_out = chk;
}

/* sqrt(mean_i (e_i / (atol + rtol max(|ya_i|, |yb_i|)))^2), e, ya, yb [n]; non-finite input
 * gives a non-finite result. */
struct dv_wrms_args {
  const double *e, *ya, *yb;
  double rtol, atol;
  int64_t n;
};

/* opl_par_sums callback: acc[0] += s, acc[1] += chk over blocks [b0, b1). */
static void dv_wrms_blocks(void *ctx, int64_t b0, int64_t b1, double *acc) {
  const struct dv_wrms_args *a = ctx;
  int64_t lo = b0 * DV_BLOCK, hi = b1 * DV_BLOCK < a->n ? b1 * DV_BLOCK : a->n;
  dv_wrms_range(a->e, a->ya, a->yb, a->rtol, a->atol, lo, hi, &acc[0], &acc[1]);
}

void opl_rk_wrms_sums(int64_t n, const double *e, const double *ya, const double *yb, double rtol, double atol,
                      double sc[2]) {
  if (n < OPL_PAR_MIN) {
    dv_wrms_range(e, ya, yb, rtol, atol, 0, n, &sc[0], &sc[1]);
  } else { /* a fixed summation order (core/par.h): the same bits at every thread count */
    struct dv_wrms_args a = {e, ya, yb, rtol, atol, n};
    opl_par_sums((n + DV_BLOCK - 1) / DV_BLOCK, 2, 1, dv_wrms_blocks, &a, sc);
  }
}

static double dv_wrms(const opl_rk_vops *o, const void *ev, const void *yav, const void *ybv,
                      double rtol, double atol) {
  double sc[2];
  opl_rk_wrms_sums(o->n, ev, yav, ybv, rtol, atol, sc);
  return sqrt(sc[0] / (double)o->n) + sc[1];
}

opl_rk_vops opl_rk_vops_double(int64_t n) {
  opl_rk_vops o = {.n = n, .vspace = NULL, .vnew = dv_new, .vfree = dv_free,
                   .lincomb = dv_lincomb, .wrms = dv_wrms, .rhs = NULL};
  return o;
}

/* ------------------------------------------------------------ solver object */

struct opl_rk {
  opl_rk_vops ops;
  void *user;
  const rk_tableau *T;
  double q;                         /* min(order, emb) + 1 */
  /* Nonzero coefficients, per stage i (1..s-1; row s-1 is b) and for the error weights. */
  int na[RK_MAXS], aj[RK_MAXS][RK_MAXS];
  double av[RK_MAXS][RK_MAXS];
  int ne, ej[RK_MAXS];
  double ev[RK_MAXS];
  /* Stiffness differences: dk = sum alpha_i k_i, dg = h sum beta_j k_j with beta = A^T alpha. */
  int nsa, saj[RK_MAXS], nsb, sbj[RK_MAXS];
  double sav[RK_MAXS], sbv[RK_MAXS];
  /* settings */
  double rtol, atol, h0, hmin, hmax, hfixed;
  int64_t max_steps;
  int stiff_on;
  /* vectors */
  void *y, *ynew, *ytmp, *evec, *k[RK_MAXS];
  void *dkv, *dgv;                  /* stiffness differences, kept only for the accepted hook */
  /* state */
  int initialized, last_rejected;
  double t, h, errprev;
  /* Dense output: the last accepted step began at tprev with size hprev; dense_ok while its
   * stage derivatives are still in k[] (until the next attempt, heuristic or init). */
  int dense_ok;
  double tprev, hprev;
  opl_rk_stats st;
};

opl_rk *opl_rk_create(const opl_rk_vops *ops, void *state_ctx, opl_rk_method m, opl_err *err) {
  if (!ops) {
    opl_err_set(err, OPL_ERR_ARG, "opl_rk_create: vops is NULL");
    return NULL;
  }
  if (!ops->vnew || !ops->vfree || !ops->lincomb || !ops->wrms || !ops->rhs) {
    opl_err_set(err, OPL_ERR_ARG, "opl_rk_create: vops is missing an operation (%s is NULL)",
                !ops->vnew ? "vnew" : !ops->vfree ? "vfree" : !ops->lincomb ? "lincomb"
                : !ops->wrms ? "wrms" : "rhs");
    return NULL;
  }
  if (!ops->mark != !ops->discard) {
    opl_err_set(err, OPL_ERR_ARG, "opl_rk_create: vops sets %s but not %s (both or neither)",
                ops->mark ? "mark" : "discard", ops->mark ? "discard" : "mark");
    return NULL;
  }
  if ((int)m < 0 || m >= OPL_RK_METHOD_COUNT) {
    opl_err_set(err, OPL_ERR_ARG, "opl_rk_create: method = %d is not a method (0..%d)", (int)m,
                OPL_RK_METHOD_COUNT - 1);
    return NULL;
  }
  if (ops->vnew == dv_new && ops->n < 1) {
    opl_err_set(err, OPL_ERR_ARG, "opl_rk_create: vector length n = %lld (must be >= 1)",
                (long long)ops->n);
    return NULL;
  }
  opl_rk *rk = calloc(1, sizeof *rk);
  if (!rk) goto oom;
  rk->ops = *ops;
  rk->user = state_ctx;
  const rk_tableau *T = rk->T = &tableaus[m];
  rk->q = (T->order < T->emb ? T->order : T->emb) + 1;
  for (int i = 1; i < T->s; i++) {
    rk->na[i] = 0;
    for (int j = 0; j < i; j++) {
      double v = T->a[i * T->s + j];
      if (v != 0) {
        rk->aj[i][rk->na[i]] = j;
        rk->av[i][rk->na[i]++] = v;
      }
    }
  }
  for (int j = 0; j < T->s; j++)
    if (T->e[j] != 0) {
      rk->ej[rk->ne] = j;
      rk->ev[rk->ne++] = T->e[j];
    }
  for (int j = 0; j < T->s; j++) {
    double beta = 0;
    for (int i = 0; i < T->s; i++) beta += T->alpha[i] * T->a[i * T->s + j];
    if (T->alpha[j] != 0) {
      rk->saj[rk->nsa] = j;
      rk->sav[rk->nsa++] = T->alpha[j];
    }
    if (beta != 0) {
      rk->sbj[rk->nsb] = j;
      rk->sbv[rk->nsb++] = beta;
    }
  }
  /* Every method here is FSAL: last node 1 and last row of a == b. */
  OPL_ASSERT(T->c[T->s - 1] == 1 && rk->na[T->s - 1] + 1 <= RK_MAXTERMS && rk->ne <= RK_MAXTERMS &&
             rk->nsa <= RK_MAXTERMS && rk->nsb <= RK_MAXTERMS);
  rk->rtol = 1e-6;
  rk->atol = 1e-9;
  rk->hmax = INFINITY;
  rk->max_steps = 100000;
  rk->stiff_on = 1;
  void **vecs[4 + RK_MAXS] = {&rk->y, &rk->ynew, &rk->ytmp, &rk->evec};
  for (int i = 0; i < T->s; i++) vecs[4 + i] = &rk->k[i];
  for (int i = 0; i < 4 + T->s; i++)
    if (!(*vecs[i] = rk->ops.vnew(&rk->ops))) goto oom;
  if (rk->ops.accepted &&
      (!(rk->dkv = rk->ops.vnew(&rk->ops)) || !(rk->dgv = rk->ops.vnew(&rk->ops))))
    goto oom;
  return rk;
oom:
  opl_rk_free(&rk);
  opl_err_set(err, OPL_ERR_NOMEM, "opl_rk_create: out of memory for the %s stage vectors",
              tableaus[m].name);
  return NULL;
}

void opl_rk_free(opl_rk **prk) {
  if (!prk || !*prk) return;
  opl_rk *rk = *prk;
  void *vecs[4] = {rk->y, rk->ynew, rk->ytmp, rk->evec};
  for (int i = 0; i < 4; i++)
    if (vecs[i]) rk->ops.vfree(&rk->ops, vecs[i]);
  for (int i = 0; i < RK_MAXS; i++)
    if (rk->k[i]) rk->ops.vfree(&rk->ops, rk->k[i]);
  if (rk->dkv) rk->ops.vfree(&rk->ops, rk->dkv);
  if (rk->dgv) rk->ops.vfree(&rk->ops, rk->dgv);
  free(rk);
  *prk = NULL;
}

/* ------------------------------------------------------------ settings */

int opl_rk_set_tolerances(opl_rk *rk, double rtol, double atol, opl_err *err) {
  OPL_ASSERT(rk);
  if (!(rtol > 0) || !isfinite(rtol))
    return opl_err_set(err, OPL_ERR_ARG, "opl_rk_set_tolerances: rtol = %g (must be > 0 and finite)", rtol);
  if (!(atol >= 0) || !isfinite(atol))
    return opl_err_set(err, OPL_ERR_ARG, "opl_rk_set_tolerances: atol = %g (must be >= 0 and finite)", atol);
  rk->rtol = rtol;
  rk->atol = atol;
  return OPL_OK;
}

int opl_rk_set_initial_step(opl_rk *rk, double h0, opl_err *err) {
  OPL_ASSERT(rk);
  if (!(h0 >= 0) || !isfinite(h0))
    return opl_err_set(err, OPL_ERR_ARG, "opl_rk_set_initial_step: h0 = %g (must be > 0, or 0 for automatic)", h0);
  rk->h0 = h0;
  return OPL_OK;
}

int opl_rk_set_max_steps(opl_rk *rk, int64_t max_steps, opl_err *err) {
  OPL_ASSERT(rk);
  if (max_steps < 1)
    return opl_err_set(err, OPL_ERR_ARG, "opl_rk_set_max_steps: max_steps = %lld (must be >= 1)",
                       (long long)max_steps);
  rk->max_steps = max_steps;
  return OPL_OK;
}

int opl_rk_set_min_step(opl_rk *rk, double hmin, opl_err *err) {
  OPL_ASSERT(rk);
  if (!(hmin >= 0) || !isfinite(hmin) || hmin > rk->hmax)
    return opl_err_set(err, OPL_ERR_ARG, "opl_rk_set_min_step: hmin = %g (must be >= 0, finite and <= hmax = %g)",
                       hmin, rk->hmax);
  rk->hmin = hmin;
  return OPL_OK;
}

int opl_rk_set_max_step(opl_rk *rk, double hmax, opl_err *err) {
  OPL_ASSERT(rk);
  if (!(hmax > 0) || hmax < rk->hmin)
    return opl_err_set(err, OPL_ERR_ARG, "opl_rk_set_max_step: hmax = %g (must be > 0 and >= hmin = %g)",
                       hmax, rk->hmin);
  rk->hmax = hmax;
  return OPL_OK;
}

int opl_rk_set_fixed_step(opl_rk *rk, double h, opl_err *err) {
  OPL_ASSERT(rk);
  if (!(h >= 0) || !isfinite(h))
    return opl_err_set(err, OPL_ERR_ARG, "opl_rk_set_fixed_step: h = %g (must be > 0, or 0 for adaptive)", h);
  rk->hfixed = h;
  if (h > 0 && rk->initialized) rk->h = h;
  return OPL_OK;
}

void opl_rk_set_stiffness_detection(opl_rk *rk, int on) {
  OPL_ASSERT(rk);
  rk->stiff_on = on != 0;
}

/* ------------------------------------------------------------ stepping */

double opl_rk_time(const opl_rk *rk) { return rk->t; }
const void *opl_rk_state(const opl_rk *rk) { return rk->y; }

void opl_rk_get_state(const opl_rk *rk, void *y) {
  const double one = 1;
  const void *x = rk->y;
  rk->ops.lincomb(&rk->ops, 1, &one, &x, y);
}

void opl_rk_get_stats(const opl_rk *rk, opl_rk_stats *st) {
  *st = rk->st;
  st->t = rk->t;
  st->h_next = rk->h;
}

/* out = y + h sum_q coef[q] k[idx[q]] in one vops call. */
static void rk_combo(opl_rk *rk, const void *y, double h, int cnt, const int *idx,
                     const double *coef, void *out) {
  double a[RK_MAXTERMS];
  const void *x[RK_MAXTERMS];
  a[0] = 1;
  x[0] = y;
  for (int q = 0; q < cnt; q++) {
    a[q + 1] = h * coef[q];
    x[q + 1] = rk->k[idx[q]];
  }
  rk->ops.lincomb(&rk->ops, cnt + 1, a, x, out);
}

/* The dense output u(t + theta h) = y0 + h sum_i bth[i] k[i] of a step (rk.h, "Dense output")
 * into out: y0 (and, when theta is exactly 1, y1) are copied as they are. kv[i] is stage i's
 * derivative (kv[0] = f(t, y0), kv[s-1] = f(t + h, y1)). */
static void rk_dense_combo(const opl_rk_vops *o, opl_rk_method m, int s, double theta, double h,
                           const void *y0, const void *y1, const void *const *kv, void *out) {
  double a[RK_MAXTERMS], bth[RK_MAXS];
  const void *x[RK_MAXTERMS];
  int n = 1;
  a[0] = 1;
  x[0] = theta == 1 ? y1 : y0;
  if (theta != 0 && theta != 1) {
    opl_rk_dense_weights(m, theta, bth);
    for (int i = 0; i < s; i++)
      if (bth[i] != 0) {
        a[n] = h * bth[i];
        x[n++] = kv[i];
      }
  }
  o->lincomb(o, n, a, x, out);
}

static int rk_rhs(opl_rk *rk, double t, const void *y, void *dy) {
  rk->st.nfev++;
  return rk->ops.rhs(rk->user, t, y, dy);
}

/* One attempt of size h from (t, y, k[0] = f(t, y)), ending at tend (= t + h up to rounding).
 * Leaves the new state in ynew, f(tend, ynew) in k[s-1], the last intermediate stage state in
 * ytmp, and the error norm in *errn. Returns f's non-zero code if an evaluation failed. */
static int rk_attempt(opl_rk *rk, double h, double tend, double *errn) {
  const rk_tableau *T = rk->T;
  const int s = T->s;
  int rv;
  for (int i = 1; i < s - 1; i++) {
    rk_combo(rk, rk->y, h, rk->na[i], rk->aj[i], rk->av[i], rk->ytmp);
    if ((rv = rk_rhs(rk, rk->t + T->c[i] * h, rk->ytmp, rk->k[i]))) return rv;
  }
  rk_combo(rk, rk->y, h, rk->na[s - 1], rk->aj[s - 1], rk->av[s - 1], rk->ynew);
  if ((rv = rk_rhs(rk, tend, rk->ynew, rk->k[s - 1]))) return rv;
  double a[RK_MAXTERMS];
  const void *x[RK_MAXTERMS];
  for (int q = 0; q < rk->ne; q++) {
    a[q] = h * rk->ev[q];
    x[q] = rk->k[rk->ej[q]];
  }
  rk->ops.lincomb(&rk->ops, rk->ne, a, x, rk->evec);
  *errn = rk->ops.wrms(&rk->ops, rk->evec, rk->y, rk->ynew, rk->rtol, rk->atol);
  return 0;
}

/* rho = ||sum_i alpha_i k_i|| / ||sum_i alpha_i g_i|| after an attempt of size h, where
 * sum_i alpha_i g_i = h sum_j beta_j k_j (sum alpha = 0, g_i = y + h sum_j a_ij k_j): computed
 * from the stage derivatives alone, without cancellation. The differences go to evec (which
 * then no longer holds the error vector), or to dkv and dgv when the accepted hook wants them. */
static double rk_stiffness(opl_rk *rk, double h) {
  void *dk = rk->dkv ? rk->dkv : rk->evec, *dg = rk->dgv ? rk->dgv : rk->evec;
  double a[RK_MAXTERMS];
  const void *x[RK_MAXTERMS];
  for (int q = 0; q < rk->nsa; q++) {
    a[q] = rk->sav[q];
    x[q] = rk->k[rk->saj[q]];
  }
  rk->ops.lincomb(&rk->ops, rk->nsa, a, x, dk);
  double nk = rk->ops.wrms(&rk->ops, dk, rk->y, rk->y, 0, 1);
  for (int q = 0; q < rk->nsb; q++) {
    a[q] = h * rk->sbv[q];
    x[q] = rk->k[rk->sbj[q]];
  }
  rk->ops.lincomb(&rk->ops, rk->nsb, a, x, dg);
  double ng = rk->ops.wrms(&rk->ops, dg, rk->y, rk->y, 0, 1);
  return ng > 0 ? nk / ng : 0;
}

/* Hairer-Norsett-Wanner starting step (rk.h), for a first step towards tstop. Uses ynew, k[1]
 * and evec as scratch. Returns 0 or f's non-zero code (a recoverable failure of the trial
 * evaluation just keeps the small trial step). */
static int rk_initial_step(opl_rk *rk, double tstop, double *hout) {
  const opl_rk_vops *o = &rk->ops;
  double d0 = o->wrms(o, rk->y, rk->y, rk->y, rk->rtol, rk->atol);
  double d1 = o->wrms(o, rk->k[0], rk->y, rk->y, rk->rtol, rk->atol);
  double h0 = (d0 < 1e-5 || d1 < 1e-5) ? 1e-6 : 0.01 * d0 / d1;
  if (h0 > rk->hmax) h0 = rk->hmax;
  if (h0 > tstop - rk->t) h0 = tstop - rk->t;
  const double a[2] = {1, h0};
  const void *x[2] = {rk->y, rk->k[0]};
  o->lincomb(o, 2, a, x, rk->ynew);
  int rv = rk_rhs(rk, rk->t + h0, rk->ynew, rk->k[1]);
  if (rv < 0) return rv;
  double h = h0;
  if (rv == 0) {
    const double a2[2] = {1 / h0, -1 / h0};
    const void *x2[2] = {rk->k[1], rk->k[0]};
    o->lincomb(o, 2, a2, x2, rk->evec);
    double d2 = o->wrms(o, rk->evec, rk->y, rk->y, rk->rtol, rk->atol);
    double dm = d1 > d2 ? d1 : d2;
    if (isfinite(d2)) {
      double h1 = dm <= 1e-15 ? fmax(1e-6, h0 * 1e-3) : pow(0.01 / dm, 1 / rk->q);
      h = fmin(100 * h0, h1);
    }
  }
  h = fmin(h, rk->hmax);
  *hout = fmax(h, rk->hmin);
  return 0;
}

int opl_rk_init(opl_rk *rk, double t0, const void *y0, opl_err *err) {
  OPL_ASSERT(rk && y0);
  rk->initialized = 0;
  if (!isfinite(t0)) return opl_err_set(err, OPL_ERR_ARG, "opl_rk_init: t0 = %g is not finite", t0);
  memset(&rk->st, 0, sizeof rk->st);
  const double one = 1;
  rk->ops.lincomb(&rk->ops, 1, &one, &y0, rk->y);
  rk->t = t0;
  rk->dense_ok = 0;
  if (!isfinite(rk->ops.wrms(&rk->ops, rk->y, rk->y, rk->y, 0, 1)))
    return opl_err_set(err, OPL_ERR_NONFINITE, "opl_rk_init: non-finite value in y0 at t = %g", t0);
  int rv = rk_rhs(rk, t0, rk->y, rk->k[0]);
  if (rv)
    return opl_err_set(err, OPL_ERR_STATE, "opl_rk_init: the right-hand side failed (returned %d) at t0 = %g",
                       rv, t0);
  if (!isfinite(rk->ops.wrms(&rk->ops, rk->k[0], rk->y, rk->y, 0, 1)))
    return opl_err_set(err, OPL_ERR_NONFINITE, "opl_rk_init: non-finite value in f(t0, y0) at t = %g", t0);
  rk->h = rk->hfixed > 0 ? rk->hfixed : rk->h0 > 0 ? fmin(fmax(rk->h0, rk->hmin), rk->hmax) : 0;
  rk->errprev = 1;
  rk->last_rejected = 0;
  rk->initialized = 1;
  return OPL_OK;
}

/* A rejected attempt: shrink to h_new and fail if that underflows. A non-finite error norm
 * means the rejection was caused by NaN/Inf: then the failure is reported as such. */
static int rk_shrink(opl_rk *rk, double h_new, double errn, opl_err *err) {
  rk->st.rejected++;
  rk->last_rejected = 1;
  rk->h = h_new;
  double floor_h = fmax(rk->hmin, 16 * DBL_EPSILON * fabs(rk->t));
  if (h_new >= floor_h && h_new >= 1e-300) return OPL_OK;
  if (!isfinite(errn))
    return opl_err_set(err, OPL_ERR_NONFINITE,
                       "opl_rk: non-finite value in the state or right-hand side at t = %.17g "
                       "(step size underflow: h = %g below the minimum %g)", rk->t, h_new, floor_h);
  return opl_err_set(err, OPL_ERR_CONVERGENCE,
                     "opl_rk: step size underflow at t = %.17g: h = %g below the minimum %g "
                     "(error norm %g)", rk->t, h_new, floor_h, errn);
}

/* Accept the attempt of size h ending at tend with error norm errn: stiffness estimate, the
 * accepted hook, state and FSAL derivative advance, statistics. */
static void rk_commit(opl_rk *rk, double h, double tend, double errn) {
  const int s = rk->T->s;
  double rho = rk->stiff_on ? rk_stiffness(rk, h) : 0;
  if (rk->ops.accepted) {
    opl_rk_step_info info = {.t = rk->t, .h = h, .tend = tend, .err = errn, .rho = rho,
                             .rtol = rk->rtol, .atol = rk->atol, .y0 = rk->y, .y1 = rk->ynew,
                             .e = rk->evec, .dk = rk->stiff_on ? rk->dkv : NULL,
                             .dg = rk->stiff_on ? rk->dgv : NULL,
                             .k = (const void *const *)rk->k, .s = s};
    rk->ops.accepted(&rk->ops, rk->user, &info);
  }
  rk->tprev = rk->t;
  rk->hprev = h;
  rk->dense_ok = 1;
  rk->t = tend;
  void *tmp = rk->y;
  rk->y = rk->ynew;
  rk->ynew = tmp;
  tmp = rk->k[0];
  rk->k[0] = rk->k[s - 1];
  rk->k[s - 1] = tmp;
  rk->st.accepted++;
  rk->st.h_last = h;
  rk->st.err_last = errn;
  rk->st.stiff_last = rho;
  if (rho > rk->st.stiff_max) rk->st.stiff_max = rho;
  rk->st.err_h_sum += errn * h;
  rk->st.stiff_h_sum += rho * h;
}

static void rk_mark(opl_rk *rk) {
  rk->dense_ok = 0; /* the attempt or the heuristic overwrites the stage vectors */
  if (rk->ops.mark) rk->ops.mark(&rk->ops);
}
static void rk_discard(opl_rk *rk) {
  if (rk->ops.discard) rk->ops.discard(&rk->ops);
}

/* One accepted step towards tstop > t, drawing attempts from *budget. */
static int rk_step_internal(opl_rk *rk, double tstop, int64_t *budget, opl_err *err) {
  const int fixed = rk->hfixed > 0;
  int fails = 0, nonfinite = 0;
  if (rk->h <= 0) {
    double h;
    rk_mark(rk);
    int rv = rk_initial_step(rk, tstop, &h);
    rk_discard(rk);
    if (rv < 0)
      return opl_err_set(err, OPL_ERR_STATE, "opl_rk: the right-hand side failed (returned %d) at t = %.17g",
                         rv, rk->t);
    rk->h = h;
  }
  for (;;) {
    if (*budget <= 0)
      return opl_err_set(err, OPL_ERR_CONVERGENCE,
                         "opl_rk: max_steps = %lld step attempts reached at t = %.17g before tout = %.17g "
                         "(h = %g)", (long long)rk->max_steps, rk->t, tstop, rk->h);
    (*budget)--;
    const double hprop = rk->h, rem = tstop - rk->t;
    double h = hprop, tend;
    int clamped = h + 1e-4 * h >= rem;
    if (clamped) {
      h = rem;
      tend = tstop;
    } else {
      tend = rk->t + h;
    }
    double errn = 0;
    rk_mark(rk);
    int rv = rk_attempt(rk, h, tend, &errn);
    if (rv) rk_discard(rk);
    if (rv < 0)
      return opl_err_set(err, OPL_ERR_STATE,
                         "opl_rk: the right-hand side failed (returned %d) at t = %.17g (h = %g)", rv,
                         rk->t, h);
    if (rv > 0) {
      rk->st.rhs_fails++;
      if (fixed) {
        rk->st.rejected++;
        return opl_err_set(err, OPL_ERR_CONVERGENCE,
                           "opl_rk: the right-hand side failed recoverably (returned %d) at t = %.17g, "
                           "but fixed-step mode cannot shrink h = %g", rv, rk->t, h);
      }
      if (++fails > RK_MAX_FAILS) {
        rk->st.rejected++;
        return opl_err_set(err, OPL_ERR_CONVERGENCE,
                           "opl_rk: the right-hand side failed %d times in a row at t = %.17g (h = %g)",
                           fails, rk->t, h);
      }
      int st = rk_shrink(rk, 0.25 * h, errn, err);
      if (st) return st;
      continue;
    }
    if (!isfinite(errn)) {
      rk_discard(rk);
      if (fixed || ++nonfinite > RK_MAX_FAILS) {
        rk->st.rejected++;
        return opl_err_set(err, OPL_ERR_NONFINITE,
                           "opl_rk: non-finite value in the state or right-hand side at t = %.17g "
                           "(step h = %g%s)", rk->t, h, fixed ? ", fixed step" : ", after shrinking h");
      }
      int st = rk_shrink(rk, 0.25 * h, errn, err);
      if (st) return st;
      continue;
    }
    if (!fixed && errn > 1) {
      rk_discard(rk);
      double fac = fmax(0.2, 0.9 * pow(errn, -1 / rk->q));
      int st = rk_shrink(rk, h * fac, errn, err);
      if (st) return st;
      continue;
    }
    /* accepted */
    if (fixed) {
      rk->h = rk->hfixed;
    } else {
      double fac = errn == 0 ? 10
                             : 0.9 * pow(errn, -0.7 / rk->q) * pow(rk->errprev, 0.4 / rk->q);
      fac = fmin(10, fmax(0.2, fac));
      if (rk->last_rejected && fac > 1) fac = 1;
      double hn = h * fac;
      if (clamped && hn < hprop) hn = hprop;
      rk->h = fmax(fmin(hn, rk->hmax), rk->hmin);
      /* A step shortened to land on tstop keeps the controller memory of the last full step
       * (its small error would otherwise damp the next step through err_prev). */
      if (!clamped) rk->errprev = fmax(errn, 1e-4);
    }
    rk->last_rejected = 0;
    rk_commit(rk, h, tend, errn);
    return OPL_OK;
  }
}

int opl_rk_start_step(opl_rk *rk, double tstop, double *h, opl_err *err) {
  OPL_ASSERT(rk && h);
  if (!rk->initialized)
    return opl_err_set(err, OPL_ERR_STATE, "opl_rk_start_step: not initialized (call opl_rk_init first)");
  if (!isfinite(tstop) || !(tstop > rk->t))
    return opl_err_set(err, OPL_ERR_ARG, "opl_rk_start_step: tstop = %.17g must be finite and after t = %.17g",
                       tstop, rk->t);
  rk_mark(rk);
  int rv = rk_initial_step(rk, tstop, h);
  rk_discard(rk);
  if (rv < 0)
    return opl_err_set(err, OPL_ERR_STATE, "opl_rk_start_step: the right-hand side failed (returned %d) at t = %.17g",
                       rv, rk->t);
  return OPL_OK;
}

int opl_rk_take_step(opl_rk *rk, double h, double tend, opl_err *err) {
  OPL_ASSERT(rk);
  if (!rk->initialized)
    return opl_err_set(err, OPL_ERR_STATE, "opl_rk_take_step: not initialized (call opl_rk_init first)");
  if (!(h > 0) || !isfinite(h) || !isfinite(tend) || !(tend > rk->t))
    return opl_err_set(err, OPL_ERR_ARG, "opl_rk_take_step: h = %g and tend = %.17g (need h > 0 finite and "
                       "tend after t = %.17g)", h, tend, rk->t);
  double errn = 0;
  rk_mark(rk);
  int rv = rk_attempt(rk, h, tend, &errn);
  if (rv || !isfinite(errn)) rk_discard(rk);
  if (rv)
    return opl_err_set(err, OPL_ERR_STATE, "opl_rk_take_step: the right-hand side failed (returned %d) at "
                       "t = %.17g (h = %g)", rv, rk->t, h);
  if (!isfinite(errn))
    return opl_err_set(err, OPL_ERR_NONFINITE, "opl_rk_take_step: non-finite value in the state or right-hand "
                       "side at t = %.17g (h = %g)", rk->t, h);
  rk_commit(rk, h, tend, errn);
  return OPL_OK;
}

static int rk_check_tout(opl_rk *rk, const char *fn, double tout, opl_err *err) {
  if (!rk->initialized)
    return opl_err_set(err, OPL_ERR_STATE, "%s: not initialized (call opl_rk_init first, or the last init failed)", fn);
  if (!isfinite(tout) || tout < rk->t)
    return opl_err_set(err, OPL_ERR_ARG, "%s: tout = %.17g is before the current t = %.17g or not finite "
                       "(backward integration is not supported)", fn, tout, rk->t);
  return OPL_OK;
}

int opl_rk_step(opl_rk *rk, double tstop, opl_err *err) {
  OPL_ASSERT(rk);
  int st = rk_check_tout(rk, "opl_rk_step", tstop, err);
  if (st || tstop == rk->t) return st;
  int64_t budget = rk->max_steps;
  return rk_step_internal(rk, tstop, &budget, err);
}

int opl_rk_advance(opl_rk *rk, double tout, opl_err *err) {
  OPL_ASSERT(rk);
  int st = rk_check_tout(rk, "opl_rk_advance", tout, err);
  int64_t budget = rk->max_steps;
  while (!st && rk->t < tout) st = rk_step_internal(rk, tout, &budget, err);
  return st;
}

int opl_rk_integrate(opl_rk *rk, double t0, double t1, void *y, double *t_reached, opl_err *err) {
  OPL_ASSERT(rk && y);
  if (t_reached) *t_reached = t0;
  if (!(t1 >= t0))
    return opl_err_set(err, OPL_ERR_ARG, "opl_rk_integrate: t1 = %.17g < t0 = %.17g (backward integration "
                       "is not supported)", t1, t0);
  int st = opl_rk_init(rk, t0, y, err);
  if (st) return st;
  st = opl_rk_advance(rk, t1, err);
  opl_rk_get_state(rk, y);
  if (t_reached) *t_reached = rk->t;
  return st;
}

/* ------------------------------------------------------------ dense output */

/* Dormand-Prince's continuous extension as in Hairer's DOPRI5 (contd5): with theta1 = 1 - theta,
 *   u = y0 + theta D + theta theta1 (h k1 - D) + theta^2 theta1 (2 D - h k1 - h k7)
 *         + theta^2 theta1^2 h sum_i d_i k_i,             D = y1 - y0 = h sum_i b_i k_i,
 * so b_i(theta) = theta b_i + theta theta1 ([i = 1] - b_i) + theta^2 theta1 (2 b_i - [i = 1] - [i = 7])
 * + theta^2 theta1^2 d_i. */
static const double dp5_d[7] = {-12715105075.0 / 11282082432.0, 0, 87487479700.0 / 32700410799.0,
                                -10690763975.0 / 1880347072.0,  701980252875.0 / 199316789632.0,
                                -1453857185.0 / 822651844.0,    69997945.0 / 29380423.0};
/* Tsitouras (2011), the interpolant's b_i(theta) = sum_k r_ik theta^k expanded (the same digits
 * as OrdinaryDiffEq's Tsit5Interp): rows i = 1..7, columns theta^1..theta^4. */
static const double ts5_r[7][4] = {
    {1.0, -2.763706197274826, 2.9132554618219126, -1.0530884977290216},
    {0, 0.13169999999999998, -0.2234, 0.1017},
    {0, 3.9302962368947516, -5.941033872131505, 2.490627285651253},
    {0, -12.411077166933676, 30.33818863028232, -16.548102889244902},
    {0, 37.50931341651104, -88.1789048947664, 47.37952196281928},
    {0, -27.896526289197286, 65.09189467479366, -34.87065786149661},
    {0, 1.5, -4, 2.5}};

int opl_rk_dense_weights(opl_rk_method m, double theta, double *bth) {
  if ((int)m < 0 || m >= OPL_RK_METHOD_COUNT || !bth) return 0;
  const double th = theta, t1 = 1 - theta;
  switch (m) {
  case OPL_RK_DP5:
    for (int i = 0; i < 7; i++) {
      const double b = dp5_b[i], e1 = i == 0, e7 = i == 6;
      bth[i] = th * b + th * t1 * (e1 - b) + th * th * t1 * (2 * b - e1 - e7) + th * th * t1 * t1 * dp5_d[i];
    }
    return 7;
  case OPL_RK_TSIT5:
    for (int i = 0; i < 7; i++) {
      const double *r = ts5_r[i];
      bth[i] = th * (r[0] + th * (r[1] + th * (r[2] + th * r[3])));
    }
    return 7;
  default: {
    /* BS3: the cubic Hermite interpolant of y0, y1 = y0 + h sum b_i k_i, f0 = k1 and f1 = k4
     * (free: k4 is the FSAL stage): u = h00 y0 + h10 h k1 + h01 y1 + h11 h k4, h00 + h01 = 1. */
    const double h10 = th * t1 * t1, h01 = th * th * (3 - 2 * th), h11 = -th * th * t1;
    for (int i = 0; i < 4; i++) bth[i] = h01 * bs3_b[i] + (i == 0 ? h10 : 0) + (i == 3 ? h11 : 0);
    return 4;
  }
  }
}

int opl_rk_dense(const opl_rk *rk, double t, void *y, opl_err *err) {
  OPL_ASSERT(rk && y);
  if (!rk->initialized || !rk->dense_ok)
    return opl_err_set(err, OPL_ERR_STATE, "opl_rk_dense: no accepted step to interpolate (dense output is valid "
                       "from an accepted step until the next step attempt)");
  if (!(t >= rk->tprev && t <= rk->t))
    return opl_err_set(err, OPL_ERR_ARG, "opl_rk_dense: t = %.17g outside the last step [%.17g, %.17g]", t,
                       rk->tprev, rk->t);
  const int s = rk->T->s;
  /* After the commit: the old state is in ynew, f(tprev) in k[s-1] and f(t) in k[0]. */
  const void *kv[RK_MAXS];
  for (int i = 0; i < s; i++) kv[i] = rk->k[i];
  kv[0] = rk->k[s - 1];
  kv[s - 1] = rk->k[0];
  const double theta = t == rk->t ? 1 : (t - rk->tprev) / rk->hprev;
  rk_dense_combo(&rk->ops, (opl_rk_method)(rk->T - tableaus), s, theta, rk->hprev, rk->ynew, rk->y, kv, y);
  return OPL_OK;
}

void opl_rk_dense_step(const opl_rk_step_info *info, opl_rk_method m, const opl_rk_vops *ops, double t,
                       void *y) {
  const double theta = t == info->tend ? 1 : (t - info->t) / info->h;
  rk_dense_combo(ops, m, info->s, theta, info->h, info->y0, info->y1, info->k, y);
}
