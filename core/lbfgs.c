/* opl — L-BFGS with a strong-Wolfe line search (Nocedal & Wright, Numerical Optimization,
 * 2nd ed., Alg. 7.4, 7.5, 3.5, 3.6). See lbfgs.h. Vector work is BLAS level 1 in double. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/lbfgs.h"

#define C1 1e-4        /* sufficient decrease (Armijo) constant */
#define C2 0.9         /* curvature constant, the usual choice for quasi-Newton methods */
#define AW_DELTA 0.1   /* approximate Wolfe: phi'(a) <= (1 - 2 delta) |phi'(0)| (Hager & Zhang 2005) */
#define ALPHA_MAX 1e20 /* largest step the bracketing phase tries */
#define EXTRAP 4.0     /* growth of the trial step while bracketing */

struct opl_lbfgs {
  int n, m;
  int64_t max_iter, max_evals;
  int ls_max_evals;        /* evaluations per line search */
  double gtol;
  double fnoise;           /* relative rounding level of f (opl_lbfgs_set_fnoise) */
  double gamma;            /* H0 scale s'y / y'y of the newest pair of this run (0: none yet) */
  opl_lbfgs_monitor_fn monitor;
  void *monitor_user;
  double *S, *Y;           /* [m][n] correction pairs s_i = x_{i+1} - x_i, y_i = g_{i+1} - g_i */
  double *rho;             /* [m] 1 / (y_i' s_i) */
  double *alpha;           /* [m] two-loop scratch */
  double *g, *d;           /* [n] gradient at x, search direction */
  double *xt, *gt;         /* [n] trial point and its gradient */
  int head, count;         /* next slot to write in S/Y, number of stored pairs */
  opl_lbfgs_stats st;
};

/* The objective and the current line (x + a d) during a line search. */
typedef struct line {
  opl_lbfgs *s;
  opl_lbfgs_fn f;
  void *user;
  const double *x;         /* [n] start of the line */
  double f0, dphi0;        /* phi(0), phi'(0) < 0 */
  int evals;               /* evaluations in this search */
} line;

static double dot(int n, const double *a, const double *b) { return cblas_ddot(n, a, 1, b, 1); }
static void axpy(int n, double a, const double *x, double *y) { cblas_daxpy(n, a, x, 1, y, 1); }

static double norm_inf(int n, const double *v) {
  double r = 0;
  for (int i = 0; i < n; i++) r = fmax(r, fabs(v[i]));
  return r;
}

/* f at x[n] into g[n]; NAN if f or any gradient entry is not finite. Counts the evaluation. */
static double evaluate(opl_lbfgs *s, opl_lbfgs_fn f, void *user, const double *x, double *g) {
  s->st.evaluations++;
  double v = f(user, x, g, s->n);
  if (!isfinite(v)) return NAN;
  for (int i = 0; i < s->n; i++)
    if (!isfinite(g[i])) return NAN;
  return v;
}

static int budget_left(const opl_lbfgs *s, const line *L) {
  if (L->evals >= s->ls_max_evals) return 0;
  if (s->max_evals > 0 && s->st.evaluations >= s->max_evals) return 0;
  return 1;
}

/* phi(a) = f(x + a d) and phi'(a) = g(x + a d)' d; the point and gradient go to s->xt, s->gt. */
static double phi(line *L, double a, double *dphi) {
  opl_lbfgs *s = L->s;
  memcpy(s->xt, L->x, (size_t)s->n * sizeof(double));
  axpy(s->n, a, s->d, s->xt);
  L->evals++;
  double v = evaluate(s, L->f, L->user, s->xt, s->gt);
  *dphi = isnan(v) ? NAN : dot(s->n, s->gt, s->d);
  return v;
}

/* A trial step in the bracket between a_lo and a_hi: the minimizer of the cubic interpolating
 * phi and phi' at both ends (N&W eq. 3.59), if it is finite and at least 10% of the bracket
 * away from either end; otherwise the midpoint. */
static double interpolate(double alo, double flo, double glo, double ahi, double fhi, double ghi) {
  double lo = fmin(alo, ahi), hi = fmax(alo, ahi), w = hi - lo;
  double mid = 0.5 * (alo + ahi);
  if (!(isfinite(fhi) && isfinite(ghi) && isfinite(flo) && isfinite(glo))) return mid;
  double d1 = glo + ghi - 3 * (flo - fhi) / (alo - ahi);
  double disc = d1 * d1 - glo * ghi;
  if (!(disc >= 0)) return mid;
  double d2 = copysign(sqrt(disc), ahi - alo);
  double den = ghi - glo + 2 * d2;
  if (den == 0) return mid;
  double a = ahi - (ahi - alo) * (ghi + d2 - d1) / den;
  if (!(a >= lo + 0.1 * w && a <= hi - 0.1 * w)) return mid;
  return a;
}

/* Sufficient decrease phi(a) <= phi(0) + c1 a phi'(0), with an allowance of 1e-12 |phi(0)| for
 * rounding in f: near a minimizer the true decrease falls below the rounding error of f, and
 * without the allowance the search would reject steps that the gradient (still accurate
 * there) shows to be good. False for NaN. */
static int armijo(const line *L, double a, double fa) {
  return fa <= L->f0 + C1 * a * L->dphi0 + L->s->fnoise * fabs(L->f0);
}

/* The approximate Wolfe conditions of Hager & Zhang ("A new conjugate gradient method with
 * guaranteed descent and an efficient line search", SIAM J. Optim. 16 (2005) 170, eq. 4.1-4.2):
 *     C2 phi'(0) <= phi'(a) <= (2 delta - 1) phi'(0),   phi(a) <= phi(0) + fnoise |phi(0)|.
 * For a quadratic phi the first pair is the Armijo condition with constant delta written with
 * derivatives only; it decides by the gradient (accurate to the last digits of its entries)
 * where the decrease in f is below f's rounding level and the Armijo test sees noise. */
static int approx_wolfe(const line *L, double fa, double ga) {
  return fa <= L->f0 + L->s->fnoise * fabs(L->f0) && ga >= C2 * L->dphi0 && ga <= (2 * AW_DELTA - 1) * L->dphi0;
}

/* Zoom (N&W Alg. 3.6): phi(a_lo) satisfies sufficient decrease and is the lowest value seen;
 * the bracket [a_lo, a_hi] (either order) holds a strong-Wolfe step. On success returns 1
 * with the accepted step in *astar and its point in s->xt / s->gt (value *fstar). */
static int zoom(line *L, double alo, double flo, double glo, double ahi, double fhi, double ghi,
                double *astar, double *fstar) {
  while (budget_left(L->s, L)) {
    if (fabs(ahi - alo) <= 1e-16 * fmax(1.0, fabs(alo))) return 0; /* bracket collapsed */
    double a = interpolate(alo, flo, glo, ahi, fhi, ghi), ga;
    double fa = phi(L, a, &ga);
    if (approx_wolfe(L, fa, ga)) {
      *astar = a;
      *fstar = fa;
      return 1;
    }
    if (!armijo(L, a, fa) || fa >= flo) {
      ahi = a;
      fhi = fa;
      ghi = ga;
    } else {
      if (fabs(ga) <= -C2 * L->dphi0) {
        *astar = a;
        *fstar = fa;
        return 1;
      }
      if (ga * (ahi - alo) >= 0) {
        ahi = alo;
        fhi = flo;
        ghi = glo;
      }
      alo = a;
      flo = fa;
      glo = ga;
    }
  }
  return 0;
}

/* Line search for a strong-Wolfe step along s->d from x (N&W Alg. 3.5), starting at a1.
 * Returns 1 with the step in *astar, its point in s->xt / s->gt and value in *fstar;
 * 0 when the evaluation budget runs out or the bracket collapses. */
static int line_search(line *L, double a1, double *astar, double *fstar) {
  double aprev = 0, fprev = L->f0, gprev = L->dphi0, a = a1;
  for (int i = 1; budget_left(L->s, L); i++) {
    double ga, fa = phi(L, a, &ga);
    if (approx_wolfe(L, fa, ga)) {
      *astar = a;
      *fstar = fa;
      return 1;
    }
    if (!armijo(L, a, fa) || (i > 1 && fa >= fprev))
      return zoom(L, aprev, fprev, gprev, a, fa, ga, astar, fstar);
    if (fabs(ga) <= -C2 * L->dphi0) {
      *astar = a;
      *fstar = fa;
      return 1;
    }
    if (ga >= 0) return zoom(L, a, fa, ga, aprev, fprev, gprev, astar, fstar);
    if (a >= ALPHA_MAX) return 0;
    aprev = a;
    fprev = fa;
    gprev = ga;
    a = fmin(EXTRAP * a, ALPHA_MAX);
  }
  return 0;
}

/* d = -H g by the two-loop recursion (N&W Alg. 7.4) over the stored pairs, oldest to newest,
 * with H0 = gamma I, gamma = s'y / y'y of the newest pair; with no pair stored (after a reset)
 * that of the run's last pair, 1 when the run has had none. */
static void two_loop(opl_lbfgs *s) {
  int n = s->n, m = s->m;
  double *q = s->d;
  memcpy(q, s->g, (size_t)n * sizeof(double));
  for (int j = 0; j < s->count; j++) { /* newest to oldest */
    int i = (s->head - 1 - j + 2 * m) % m;
    s->alpha[i] = s->rho[i] * dot(n, s->S + (size_t)i * n, q);
    axpy(n, -s->alpha[i], s->Y + (size_t)i * n, q);
  }
  if (s->count > 0) {
    int k = (s->head - 1 + m) % m;
    const double *yk = s->Y + (size_t)k * n;
    s->gamma = 1.0 / (s->rho[k] * dot(n, yk, yk));
    cblas_dscal(n, s->gamma, q, 1);
  } else if (s->gamma > 0) {
    cblas_dscal(n, s->gamma, q, 1);
  }
  for (int j = s->count - 1; j >= 0; j--) { /* oldest to newest */
    int i = (s->head - 1 - j + 2 * m) % m;
    double beta = s->rho[i] * dot(n, s->Y + (size_t)i * n, q);
    axpy(n, s->alpha[i] - beta, s->S + (size_t)i * n, q);
  }
  cblas_dscal(n, -1.0, q, 1);
}

opl_lbfgs *opl_lbfgs_create(int n, int m, opl_err *err) {
  if (n < 1 || m < 1) {
    opl_err_set(err, OPL_ERR_ARG, "lbfgs: n = %d and history m = %d must be >= 1", n, m);
    return NULL;
  }
  opl_lbfgs *s = calloc(1, sizeof *s);
  if (!s) goto oom;
  s->n = n;
  s->m = m;
  s->max_iter = 1000;
  s->max_evals = 0;
  s->ls_max_evals = 40;
  s->gtol = 1e-5;
  s->fnoise = 1e-12;
  size_t nm = (size_t)n * (size_t)m;
  s->S = malloc(nm * sizeof(double));
  s->Y = malloc(nm * sizeof(double));
  s->rho = malloc((size_t)m * sizeof(double));
  s->alpha = malloc((size_t)m * sizeof(double));
  s->g = malloc((size_t)n * sizeof(double));
  s->d = malloc((size_t)n * sizeof(double));
  s->xt = malloc((size_t)n * sizeof(double));
  s->gt = malloc((size_t)n * sizeof(double));
  if (!s->S || !s->Y || !s->rho || !s->alpha || !s->g || !s->d || !s->xt || !s->gt) goto oom;
  return s;
oom:
  opl_lbfgs_free(&s);
  opl_err_set(err, OPL_ERR_NOMEM, "lbfgs: out of memory for n = %d, m = %d", n, m);
  return NULL;
}

void opl_lbfgs_free(opl_lbfgs **ps) {
  if (!ps || !*ps) return;
  opl_lbfgs *s = *ps;
  free(s->S);
  free(s->Y);
  free(s->rho);
  free(s->alpha);
  free(s->g);
  free(s->d);
  free(s->xt);
  free(s->gt);
  free(s);
  *ps = NULL;
}

int opl_lbfgs_set_max_iter(opl_lbfgs *s, int64_t max_iter) {
  OPL_ASSERT(s != NULL);
  if (max_iter < 1) return OPL_ERR_ARG;
  s->max_iter = max_iter;
  return OPL_OK;
}

int opl_lbfgs_set_max_evals(opl_lbfgs *s, int64_t max_evals) {
  OPL_ASSERT(s != NULL);
  if (max_evals < 0) return OPL_ERR_ARG;
  s->max_evals = max_evals;
  return OPL_OK;
}

int opl_lbfgs_set_gtol(opl_lbfgs *s, double gtol) {
  OPL_ASSERT(s != NULL);
  if (!(gtol >= 0) || isinf(gtol)) return OPL_ERR_ARG;
  s->gtol = gtol;
  return OPL_OK;
}

int opl_lbfgs_set_fnoise(opl_lbfgs *s, double fnoise) {
  OPL_ASSERT(s != NULL);
  if (!(fnoise >= 0) || !(fnoise < 1)) return OPL_ERR_ARG;
  s->fnoise = fnoise;
  return OPL_OK;
}

void opl_lbfgs_set_monitor(opl_lbfgs *s, opl_lbfgs_monitor_fn fn, void *user) {
  OPL_ASSERT(s != NULL);
  s->monitor = fn;
  s->monitor_user = user;
}

void opl_lbfgs_get_stats(const opl_lbfgs *s, opl_lbfgs_stats *st) {
  OPL_ASSERT(s != NULL && st != NULL);
  *st = s->st;
}

/* Finish a run: record the status and final numbers; copy the message. */
static int finish(opl_lbfgs *s, int status, double f, double *fx) {
  s->st.status = status;
  s->st.f = f;
  s->st.gnorm = norm_inf(s->n, s->g);
  if (fx) *fx = f;
  return status;
}

int opl_lbfgs_run(opl_lbfgs *s, opl_lbfgs_fn f, void *user, double *x, double *fx, opl_err *err) {
  OPL_ASSERT(s != NULL);
  memset(&s->st, 0, sizeof s->st);
  s->head = s->count = 0;
  s->gamma = 0;
  if (!f || !x) {
    s->st.status = OPL_ERR_ARG;
    return opl_err_set(err, OPL_ERR_ARG, "lbfgs: objective and x must not be NULL");
  }
  int n = s->n;
  double fk = evaluate(s, f, user, x, s->g);
  if (isnan(fk)) {
    s->st.status = OPL_ERR_NONFINITE;
    return opl_err_set(err, OPL_ERR_NONFINITE,
                       "lbfgs: the objective or its gradient is not finite at the start point");
  }
  if (s->monitor) s->monitor(s->monitor_user, 0, x, fk, s->g, n);
  for (;;) {
    double gn = norm_inf(n, s->g);
    if (gn <= s->gtol) return finish(s, OPL_OK, fk, fx);
    if (s->st.iterations >= s->max_iter) {
      finish(s, OPL_ERR_CONVERGENCE, fk, fx);
      return opl_err_set(err, OPL_ERR_CONVERGENCE,
                         "lbfgs: %lld iterations without reaching ||g||_inf <= %g (||g||_inf = %g)",
                         (long long)s->st.iterations, s->gtol, gn);
    }
    two_loop(s);
    double dphi0 = dot(n, s->g, s->d);
    if (!(dphi0 < 0)) { /* not a descent direction: forget the history, go downhill */
      s->count = s->head = 0;
      s->st.resets++;
      two_loop(s);
      dphi0 = dot(n, s->g, s->d);
    }
    /* Unit step for quasi-Newton directions (and for the scaled steepest descent after a reset);
     * a first steepest-descent step of length <= 1. */
    double a1 = s->count > 0 || s->gamma > 0 ? 1.0 : fmin(1.0, 1.0 / sqrt(-dphi0));
    line L = {s, f, user, x, fk, dphi0, 0};
    double a, fa;
    if (!line_search(&L, a1, &a, &fa)) {
      int out_of_evals = s->max_evals > 0 && s->st.evaluations >= s->max_evals;
      if (s->count > 0 && !out_of_evals) { /* retry from steepest descent */
        s->count = s->head = 0;
        s->st.resets++;
        continue;
      }
      finish(s, OPL_ERR_CONVERGENCE, fk, fx);
      return opl_err_set(err, OPL_ERR_CONVERGENCE,
                         out_of_evals ? "lbfgs: %lld evaluations used up at iteration %lld (||g||_inf = %g)"
                                      : "lbfgs: line search found no Wolfe step after %lld evaluations, "
                                        "iteration %lld (||g||_inf = %g)",
                         (long long)s->st.evaluations, (long long)s->st.iterations, gn);
    }
    /* New pair s = xt - x, y = gt - g, kept when it has positive curvature. */
    double *sk = s->S + (size_t)s->head * n, *yk = s->Y + (size_t)s->head * n;
    for (int i = 0; i < n; i++) {
      sk[i] = s->xt[i] - x[i];
      yk[i] = s->gt[i] - s->g[i];
    }
    double sy = dot(n, sk, yk);
    if (sy > 1e-10 * sqrt(dot(n, sk, sk) * dot(n, yk, yk))) {
      s->rho[s->head] = 1.0 / sy;
      s->head = (s->head + 1) % s->m;
      if (s->count < s->m) s->count++;
    } else {
      s->st.skipped_updates++;
    }
    memcpy(x, s->xt, (size_t)n * sizeof(double));
    memcpy(s->g, s->gt, (size_t)n * sizeof(double));
    fk = fa;
    s->st.iterations++;
    if (s->monitor) s->monitor(s->monitor_user, (int)s->st.iterations, x, fk, s->g, n);
    (void)a;
  }
}
