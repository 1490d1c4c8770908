/* L-BFGS: Rosenbrock (2-D and 10-D) from the standard start, a convex quadratic against a
 * direct solve, the strong Wolfe conditions at every accepted step (recorded through the
 * objective and the monitor), NaN regions, budgets, bad arguments. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "core/lbfgs.h"
#include "tests/tap.h"

/* Extended Rosenbrock: f = sum_{i < n-1} 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2. */
static double rosenbrock(void *user, const double *x, double *g, int n) {
  int *calls = user;
  if (calls) (*calls)++;
  double f = 0;
  for (int i = 0; i < n; i++) g[i] = 0;
  for (int i = 0; i < n - 1; i++) {
    double t = x[i + 1] - x[i] * x[i], u = 1 - x[i];
    f += 100 * t * t + u * u;
    g[i] += -400 * t * x[i] - 2 * u;
    g[i + 1] += 200 * t;
  }
  return f;
}

/* Every evaluation (x, f, g), and the iterates reported by the monitor as indices into it. */
typedef struct rec {
  int n, nev, nit, cap;
  double *x, *f, *g;      /* [cap][n], [cap], [cap][n] */
  int *iter_ev;           /* [cap] index of the evaluation of each accepted iterate */
  int monitor_mismatch;
} rec;

static double rec_rosen(void *user, const double *x, double *g, int n) {
  rec *r = user;
  double f = rosenbrock(NULL, x, g, n);
  if (r->nev < r->cap) {
    memcpy(r->x + (size_t)r->nev * n, x, (size_t)n * sizeof(double));
    memcpy(r->g + (size_t)r->nev * n, g, (size_t)n * sizeof(double));
    r->f[r->nev] = f;
  }
  r->nev++;
  return f;
}

/* The accepted iterate must be the last point evaluated (value and gradient included). */
static void rec_monitor(void *user, int iter, const double *x, double f, const double *g, int n) {
  rec *r = user;
  int e = r->nev - 1;
  if (iter != r->nit || e < 0 || e >= r->cap || memcmp(r->x + (size_t)e * n, x, (size_t)n * sizeof(double)) ||
      r->f[e] != f || memcmp(r->g + (size_t)e * n, g, (size_t)n * sizeof(double)))
    r->monitor_mismatch++;
  if (r->nit < r->cap) r->iter_ev[r->nit] = e;
  r->nit++;
}

static double dotn(int n, const double *a, const double *b) {
  double s = 0;
  for (int i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}

static void run_rosenbrock(int n, int maxit_expected) {
  opl_err err;
  opl_lbfgs *s = opl_lbfgs_create(n, 7, &err);
  double *x = malloc((size_t)n * sizeof(double));
  for (int i = 0; i < n; i++) x[i] = i % 2 ? 1.0 : -1.2;
  rec r = {.n = n, .cap = 4000};
  r.x = malloc((size_t)r.cap * n * sizeof(double));
  r.g = malloc((size_t)r.cap * n * sizeof(double));
  r.f = malloc((size_t)r.cap * sizeof(double));
  r.iter_ev = malloc((size_t)r.cap * sizeof(int));
  opl_lbfgs_set_gtol(s, 1e-9);
  opl_lbfgs_set_monitor(s, rec_monitor, &r);
  double fx;
  int st = opl_lbfgs_run(s, rec_rosen, &r, x, &fx, &err);
  opl_lbfgs_stats S;
  opl_lbfgs_get_stats(s, &S);
  ok(st == OPL_OK && S.status == OPL_OK, "rosenbrock %d-D converges (status %s) %s", n, opl_status_name(st),
     st ? err.msg : "");
  double maxe = 0;
  for (int i = 0; i < n; i++) maxe = fmax(maxe, fabs(x[i] - 1));
  ok(maxe < 1e-6, "rosenbrock %d-D: max |x_i - 1| = %.3g < 1e-6", n, maxe);
  ok(S.iterations <= maxit_expected, "rosenbrock %d-D: %lld iterations, %lld evaluations (<= %d iterations)",
     n, (long long)S.iterations, (long long)S.evaluations, maxit_expected);
  ok(S.evaluations == r.nev && S.iterations + 1 == r.nit, "statistics count every evaluation and iterate");
  ok(r.monitor_mismatch == 0, "each accepted iterate is the last evaluated point");
  is_close(S.f, fx, 0, 0, "stats f = returned value");
  ok(fx < 1e-15 && S.gnorm <= 1e-9, "final f = %.3g, ||g||_inf = %.3g", fx, S.gnorm);
  /* Strong Wolfe conditions (c1 = 1e-4, c2 = 0.9) between consecutive iterates, from the
   * recorded values: f_{k+1} <= f_k + c1 g_k's, |g_{k+1}'s| <= c2 |g_k's|, s = x_{k+1} - x_k
   * (= a p with a > 0, so the conditions on s are those on p). */
  int bad = 0, nchk = 0, descent = 1;
  for (int k = 0; k + 1 < r.nit && r.iter_ev[k + 1] < r.cap; k++) {
    int e0 = r.iter_ev[k], e1 = r.iter_ev[k + 1];
    const double *x0 = r.x + (size_t)e0 * n, *x1 = r.x + (size_t)e1 * n;
    const double *g0 = r.g + (size_t)e0 * n, *g1 = r.g + (size_t)e1 * n;
    double sv[64];
    for (int i = 0; i < n; i++) sv[i] = x1[i] - x0[i];
    double gs0 = dotn(n, g0, sv), gs1 = dotn(n, g1, sv);
    double slack = 1e-12 * fmax(1.0, fabs(r.f[e0]));
    descent &= gs0 < 0;
    if (!(r.f[e1] <= r.f[e0] + 1e-4 * gs0 + slack)) bad++;
    if (!(fabs(gs1) <= 0.9 * fabs(gs0) + 1e-14)) bad++;
    nchk++;
  }
  ok(nchk == (int)S.iterations && bad == 0 && descent,
     "rosenbrock %d-D: strong Wolfe conditions hold at all %d accepted steps (%d violations)", n, nchk, bad);
  opl_lbfgs_free(&s);
  ok(s == NULL, "free sets the pointer to NULL");
  free(x);
  free(r.x);
  free(r.g);
  free(r.f);
  free(r.iter_ev);
}

/* f = 1/2 x'Ax - b'x with A = tridiag(-1, 2 + d_i, -1), d_i = 0.01 i (SPD), n = 100;
 * reference x* from the Thomas algorithm. */
typedef struct quad {
  int n;
  double d[100], b[100];
} quad;

static double quad_f(void *user, const double *x, double *g, int n) {
  const quad *q = user;
  double f = 0;
  for (int i = 0; i < n; i++) {
    double ax = (2 + q->d[i]) * x[i] - (i > 0 ? x[i - 1] : 0) - (i < n - 1 ? x[i + 1] : 0);
    g[i] = ax - q->b[i];
    f += 0.5 * x[i] * ax - q->b[i] * x[i];
  }
  return f;
}

static void test_quadratic(void) {
  quad q = {.n = 100};
  for (int i = 0; i < 100; i++) {
    q.d[i] = 0.01 * i;
    q.b[i] = sin(0.3 * i) + 0.5;
  }
  /* Thomas algorithm on the tridiagonal system. */
  double cp[100], dp[100], xs[100];
  for (int i = 0; i < 100; i++) {
    /* sub- and super-diagonal -1: den = b_i - a_i c'_{i-1} = b_i + c'_{i-1} */
    double den = 2 + q.d[i] + (i ? cp[i - 1] : 0);
    cp[i] = -1 / den;
    dp[i] = (q.b[i] + (i ? dp[i - 1] : 0)) / den;
  }
  xs[99] = dp[99];
  for (int i = 98; i >= 0; i--) xs[i] = dp[i] - cp[i] * xs[i + 1];
  /* residual of the reference */
  double g[100], res;
  quad_f(&q, xs, g, 100);
  res = 0;
  for (int i = 0; i < 100; i++) res = fmax(res, fabs(g[i]));
  ok(res < 1e-12, "reference solve residual %.3g", res);

  opl_err err;
  opl_lbfgs *s = opl_lbfgs_create(100, 5, &err);
  opl_lbfgs_set_gtol(s, 1e-10);
  double x[100] = {0}, fx;
  int st = opl_lbfgs_run(s, quad_f, &q, x, &fx, &err);
  opl_lbfgs_stats S;
  opl_lbfgs_get_stats(s, &S);
  double maxe = 0;
  for (int i = 0; i < 100; i++) maxe = fmax(maxe, fabs(x[i] - xs[i]));
  ok(st == OPL_OK, "quadratic n = 100, m = 5 converges in %lld iterations, %lld evaluations %s",
     (long long)S.iterations, (long long)S.evaluations, st ? err.msg : "");
  ok(maxe < 1e-8, "quadratic: max |x - x*| = %.3g", maxe);
  /* Running again restarts cleanly and takes the same path. */
  double x2[100] = {0};
  opl_lbfgs_stats S2;
  opl_lbfgs_run(s, quad_f, &q, x2, NULL, &err);
  opl_lbfgs_get_stats(s, &S2);
  ok(memcmp(x, x2, sizeof x) == 0 && S2.iterations == S.iterations && S2.evaluations == S.evaluations,
     "a second run repeats the first exactly");
  opl_lbfgs_free(&s);
}

/* f = x - log x (minimum at 1), NaN for x <= 0: from x = 3 the first quasi-Newton step
 * (secant slope from the first steepest-descent step) overshoots to x < 0 and must back off. */
static double nan_below_0(void *user, const double *x, double *g, int n) {
  int *nans = user;
  (void)n;
  if (x[0] <= 0) {
    (*nans)++;
    g[0] = NAN;
    return NAN;
  }
  g[0] = 1 - 1 / x[0];
  return x[0] - log(x[0]);
}

/* A gradient with the wrong sign (a typical bug): no step along -g decreases f. */
static double wrong_grad(void *user, const double *x, double *g, int n) {
  (void)user;
  double f = 0;
  for (int i = 0; i < n; i++) {
    g[i] = -2 * x[i];
    f += x[i] * x[i];
  }
  return f;
}

static double nan_f(void *user, const double *x, double *g, int n) {
  (void)user;
  (void)x;
  for (int i = 0; i < n; i++) g[i] = 0;
  return NAN;
}

static double inf_grad(void *user, const double *x, double *g, int n) {
  (void)user;
  for (int i = 0; i < n; i++) g[i] = INFINITY;
  return x[0];
}

static void test_edge_cases(void) {
  opl_err err;
  opl_lbfgs *s = opl_lbfgs_create(1, 3, &err);
  int nans = 0, st;
  double x = 3, fx;
  opl_lbfgs_set_gtol(s, 1e-12);
  st = opl_lbfgs_run(s, nan_below_0, &nans, &x, &fx, &err);
  ok(st == OPL_OK && fabs(x - 1) < 1e-10 && nans > 0,
     "NaN region: backs off and converges to 1 (x = %.15g, %d NaN evaluations)", x, nans);

  x = 0.7;
  st = opl_lbfgs_run(s, wrong_grad, NULL, &x, &fx, &err);
  ok(st == OPL_ERR_CONVERGENCE && x == 0.7 && strstr(err.msg, "line search"),
     "gradient of the wrong sign: stays at the start: %s", err.msg);

  x = 1;
  ok(opl_lbfgs_run(s, nan_f, NULL, &x, &fx, &err) == OPL_ERR_NONFINITE && x == 1,
     "NaN at the start point: %s", err.msg);
  ok(opl_lbfgs_run(s, inf_grad, NULL, &x, &fx, &err) == OPL_ERR_NONFINITE,
     "infinite gradient at the start point: %s", err.msg);
  opl_lbfgs_free(&s);

  /* Budgets: 5 iterations of 2-D Rosenbrock stop early, with progress. */
  s = opl_lbfgs_create(2, 5, &err);
  double x2[2] = {-1.2, 1}, g[2];
  double f0 = rosenbrock(NULL, x2, g, 2);
  opl_lbfgs_set_max_iter(s, 5);
  st = opl_lbfgs_run(s, rosenbrock, NULL, x2, &fx, &err);
  opl_lbfgs_stats S;
  opl_lbfgs_get_stats(s, &S);
  ok(st == OPL_ERR_CONVERGENCE && S.iterations == 5 && fx < f0 && strstr(err.msg, "5 iterations"),
     "max_iter 5: %s", err.msg);
  ok(fabs(rosenbrock(NULL, x2, g, 2) - fx) == 0, "x returned is the point of the returned value");
  opl_lbfgs_set_max_iter(s, 1000);
  opl_lbfgs_set_max_evals(s, 12);
  int calls = 0;
  x2[0] = -1.2;
  x2[1] = 1;
  st = opl_lbfgs_run(s, rosenbrock, &calls, x2, &fx, &err);
  opl_lbfgs_get_stats(s, &S);
  ok(st == OPL_ERR_CONVERGENCE && calls == 12 && S.evaluations == 12 && strstr(err.msg, "evaluations"),
     "max_evals 12: %s", err.msg);
  /* gtol huge: the start point already satisfies it. */
  opl_lbfgs_set_max_evals(s, 0);
  opl_lbfgs_set_gtol(s, 1e6);
  calls = 0;
  ok(opl_lbfgs_run(s, rosenbrock, &calls, x2, &fx, &err) == OPL_OK && calls == 1,
     "gtol met at the start: one evaluation");
  /* Bad arguments. */
  ok(opl_lbfgs_set_gtol(s, -1) == OPL_ERR_ARG && opl_lbfgs_set_gtol(s, NAN) == OPL_ERR_ARG,
     "gtol < 0 or NaN refused");
  ok(opl_lbfgs_set_max_iter(s, 0) == OPL_ERR_ARG && opl_lbfgs_set_max_evals(s, -1) == OPL_ERR_ARG,
     "max_iter 0 / max_evals -1 refused");
  ok(opl_lbfgs_run(s, NULL, NULL, x2, &fx, &err) == OPL_ERR_ARG, "NULL objective: %s", err.msg);
  ok(opl_lbfgs_run(s, rosenbrock, NULL, NULL, &fx, &err) == OPL_ERR_ARG, "NULL x: %s", err.msg);
  opl_lbfgs_free(&s);
  opl_lbfgs_free(&s);
  ok(opl_lbfgs_create(0, 5, &err) == NULL && err.status == OPL_ERR_ARG && strstr(err.msg, "n = 0"),
     "n = 0: %s", err.msg);
  ok(opl_lbfgs_create(3, -2, &err) == NULL && err.status == OPL_ERR_ARG && strstr(err.msg, "m = -2"),
     "m = -2: %s", err.msg);
}

/* A noisy objective, as a loss computed in single precision is: 1 + the 10-D Rosenbrock function
 * (a minimum of 1, not 0, as a PINN's loss), times (1 + eta h(x)), h in [-1, 1] a deterministic
 * hash of x's bits, eta = 1e-5, with the exact gradient. Near the minimum the true decrease of a step falls below the noise and the Armijo
 * test rejects steps at random; with fnoise >= eta the approximate Wolfe conditions (decided by
 * the gradient) accept them and the run goes on to the gradient tolerance. */
static double noisy_rosen(void *user, const double *x, double *g, int n) {
  double f = rosenbrock(NULL, x, g, n);
  uint64_t h = 1469598103934665603ull;
  for (int i = 0; i < n; i++) {
    uint64_t b;
    memcpy(&b, &x[i], sizeof b);
    h = (h ^ b) * 1099511628211ull;
    h ^= h >> 29;
  }
  double u = (double)(h >> 11) / 9007199254740992.0 * 2 - 1;
  (void)user;
  return (1 + f) * (1 + 1e-5 * u);
}

static void test_noisy(void) {
  opl_err err;
  double best[2], gn[2];
  int st[2];
  for (int k = 0; k < 2; k++) {
    opl_lbfgs *s = opl_lbfgs_create(10, 5, &err);
    opl_lbfgs_set_gtol(s, 1e-9);
    opl_lbfgs_set_max_iter(s, 2000);
    if (k) ok(opl_lbfgs_set_fnoise(s, 1e-4) == OPL_OK, "fnoise 1e-4 accepted");
    double x[10], fx;
    for (int i = 0; i < 10; i++) x[i] = i % 2 ? 1.2 : -1.2;
    st[k] = opl_lbfgs_run(s, noisy_rosen, NULL, x, &fx, &err);
    opl_lbfgs_stats S;
    opl_lbfgs_get_stats(s, &S);
    best[k] = 0;
    for (int i = 0; i < 10; i++) best[k] = fmax(best[k], fabs(x[i] - 1));
    gn[k] = S.gnorm;
    opl_lbfgs_free(&s);
  }
  ok(st[0] == OPL_ERR_CONVERGENCE && gn[0] > 1e-9,
     "noisy rosenbrock 10-D, fnoise 1e-12: the line search stalls (||g||_inf = %.2g, max |x_i - 1| = %.2g)", gn[0],
     best[0]);
  ok(st[1] == OPL_OK && gn[1] <= 1e-9 && best[1] < 1e-6,
     "noisy rosenbrock 10-D, fnoise 1e-4: ||g||_inf = %.2g <= 1e-9, max |x_i - 1| = %.2g", gn[1], best[1]);
  opl_lbfgs *s = opl_lbfgs_create(2, 2, &err);
  ok(opl_lbfgs_set_fnoise(s, -1) == OPL_ERR_ARG && opl_lbfgs_set_fnoise(s, 1) == OPL_ERR_ARG &&
         opl_lbfgs_set_fnoise(s, NAN) == OPL_ERR_ARG,
     "fnoise outside [0, 1) refused");
  opl_lbfgs_free(&s);
}

int main(void) {
  tap_begin();
  run_rosenbrock(2, 60);
  run_rosenbrock(10, 120);
  test_quadratic();
  test_edge_cases();
  test_noisy();
  return tap_end();
}
