/* Crank-Nicolson / Heun and / Euler: exact CN amplification for N = 0, measured orders 2 and 1
 * on nonlinear ODEs with known solutions, agreement with the formulas of one step, the CFL
 * check, failures and bad input. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "solvers/cnheun.h"
#include "tests/tap.h"

static int n_zero(void *u, double t, const double *x, double *nx) {
  (void)u, (void)t, (void)x, (void)nx;
  return 0;
}

static void test_linear_exact(void) {
  enum { NL = 6 };
  const double L[NL] = {-1, -100, -1e6, 0, 0.3, -4e4};
  const double u0[2 * NL] = {1, 0, 0.5, -0.5, 2, 1, 0, 1, 1, 1, -1, 3};
  const double dt = 0.01;
  for (int v = 0; v < 2; v++) {
    opl_err err;
    /* The N = 0 buffers stay zero: n_zero writes nothing, the workspace is zeroed at create. */
    opl_cnheun *s = opl_cnheun_create(NL, L, dt, (opl_cnheun_variant)v, n_zero, NULL, &err);
    double u[2 * NL], t = 0;
    memcpy(u, u0, sizeof u);
    opl_cnheun_step(s, &t, u, &err);
    double want[2 * NL];
    for (int k = 0; k < NL; k++) {
      double z = dt * L[k], R = (1 + z / 2) / (1 - z / 2);
      want[2 * k] = R * u0[2 * k], want[2 * k + 1] = R * u0[2 * k + 1];
    }
    arrays_close(2 * NL, u, want, 1e-15, 0, "%s, N = 0: one step is u (1 + z/2)/(1 - z/2)",
                 v ? "euler" : "heun");
    int st = opl_cnheun_steps(s, 99, &t, u, &err);
    for (int k = 0; k < NL; k++) {
      double z = dt * L[k], R = pow((1 + z / 2) / (1 - z / 2), 100);
      want[2 * k] = R * u0[2 * k], want[2 * k + 1] = R * u0[2 * k + 1];
    }
    ok(st == OPL_OK && fabs(t - 1) < 1e-15, "100 steps reach t = %.17g", t);
    arrays_close(2 * NL, u, want, 1e-13, 1e-300, "%s, N = 0: 100 steps give R^100 u0 (stiff modes alternate sign)",
                 v ? "euler" : "heun");
    opl_cnheun_free(&s);
    ok(s == NULL, "free clears the pointer");
  }
}

/* Two independent modes with known solutions:
 * mode 0: u' = -2u + u^2, u(0) = 1: u = 2 / (1 + e^(2t))                     (autonomous);
 * mode 1: u' = -5u + N(u, t), N = -u^2 + g(t), g = -sin t + 5 cos t + cos^2 t: u = cos t
 *         (time-dependent: the corrector must evaluate N at t + dt). */
static const double ORD_L[2] = {-2, -5};
static int ord_N(void *u, double t, const double *x, double *nx) {
  long *calls = u;
  if (calls) (*calls)++;
  nx[0] = x[0] * x[0] - x[1] * x[1];
  nx[1] = 2 * x[0] * x[1];
  double g = -sin(t) + 5 * cos(t) + cos(t) * cos(t);
  nx[2] = -(x[2] * x[2] - x[3] * x[3]) + g;
  nx[3] = -2 * x[2] * x[3];
  return 0;
}

static void test_orders(void) {
  const double T = 1, lo[2] = {1.8, 0.8}, hi[2] = {2.2, 1.2};
  for (int v = 0; v < 2; v++) {
    double hs[4], errs[4];
    for (int i = 0; i < 4; i++) {
      int N = 20 << i;
      double u[4] = {1, 0, 1, 0}, t = 0;
      long calls = 0;
      hs[i] = T / N;
      opl_err err;
      opl_cnheun *s = opl_cnheun_create(2, ORD_L, hs[i], (opl_cnheun_variant)v, ord_N, &calls, &err);
      opl_cnheun_steps(s, N, &t, u, &err);
      opl_cnheun_stats st;
      opl_cnheun_get_stats(s, &st);
      if (i == 0)
        ok(st.nfev == calls && calls == (v ? 1 : 2) * N && st.nsteps == N,
           "%s: %ld calls of N for %d steps", v ? "euler" : "heun", calls, N);
      errs[i] = fmax(fabs(u[0] - 2 / (1 + exp(2 * T))), fabs(u[2] - cos(T)));
      errs[i] = fmax(errs[i], fmax(fabs(u[1]), fabs(u[3])));
      opl_cnheun_free(&s);
    }
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (int i = 0; i < 4; i++) {
      double x = log(hs[i]), y = log(errs[i]);
      sx += x, sy += y, sxx += x * x, sxy += x * y;
    }
    double slope = (4 * sxy - sx * sy) / (4 * sxx - sx * sx);
    diag("%s: errors %.3g %.3g %.3g %.3g", v ? "euler" : "heun", errs[0], errs[1], errs[2], errs[3]);
    ok(slope >= lo[v] && slope <= hi[v], "%s: measured order %.3f in [%.1f, %.1f]",
       v ? "CN/Euler" : "CN/Heun", slope, lo[v], hi[v]);
  }
}

/* One step against the formulas written out, on a complex state with a complex N. */
static int cx_N(void *u, double t, const double *x, double *nx) {
  (void)u;
  for (int k = 0; k < 3; k++) {
    nx[2 * k] = sin(x[2 * k + 1]) + t;
    nx[2 * k + 1] = x[2 * k] * x[2 * k + 1] - 0.5 * t * t;
  }
  return 0;
}
static void test_one_step(void) {
  const double L[3] = {-3, -0.1, -50}, dt = 0.07, t0 = 0.4;
  const double u0[6] = {0.3, -0.2, 1.1, 0.5, -0.4, 0.9};
  for (int v = 0; v < 2; v++) {
    double u[6], want[6], n0[6], us[6], ns[6], t = t0;
    memcpy(u, u0, sizeof u);
    opl_err err;
    opl_cnheun *s = opl_cnheun_create(3, L, dt, (opl_cnheun_variant)v, cx_N, NULL, &err);
    opl_cnheun_step(s, &t, u, &err);
    cx_N(NULL, t0, u0, n0);
    for (int k = 0; k < 3; k++)
      for (int p = 0; p < 2; p++) {
        int i = 2 * k + p;
        us[i] = ((1 + dt * L[k] / 2) * u0[i] + dt * n0[i]) / (1 - dt * L[k] / 2);
      }
    cx_N(NULL, t0 + dt, us, ns);
    for (int k = 0; k < 3; k++)
      for (int p = 0; p < 2; p++) {
        int i = 2 * k + p;
        want[i] = v ? us[i]
                    : ((1 + dt * L[k] / 2) * u0[i] + dt / 2 * (n0[i] + ns[i])) / (1 - dt * L[k] / 2);
      }
    arrays_close(6, u, want, 1e-14, 1e-15, "%s: one complex step equals the documented formula",
                 v ? "euler" : "heun");
    ok(t == t0 + dt, "time advanced by dt");
    opl_cnheun_free(&s);
  }
}

/* Many coefficients (OpenMP path): one step against the formulas. */
static int big_N(void *u, double t, const double *x, double *nx) {
  int64_t n = *(int64_t *)u;
  for (int64_t i = 0; i < 2 * n; i++) nx[i] = sin(x[i]) + t;
  return 0;
}
static void test_large(void) {
  int64_t n = 40000;
  const double dt = 0.01, t0 = 0.3;
  double *L = malloc(sizeof(double) * n), *u = malloc(sizeof(double) * 2 * n);
  double *u0 = malloc(sizeof(double) * 2 * n), *n0 = malloc(sizeof(double) * 2 * n);
  double *us = malloc(sizeof(double) * 2 * n), *ns = malloc(sizeof(double) * 2 * n);
  double *want = malloc(sizeof(double) * 2 * n);
  for (int64_t k = 0; k < n; k++) L[k] = -(double)k;
  for (int64_t i = 0; i < 2 * n; i++) u0[i] = u[i] = cos(0.37 * (double)i);
  for (int v = 0; v < 2; v++) {
    memcpy(u, u0, sizeof(double) * 2 * n);
    opl_err err;
    double t = t0;
    opl_cnheun *s = opl_cnheun_create(n, L, dt, (opl_cnheun_variant)v, big_N, &n, &err);
    int st = opl_cnheun_step(s, &t, u, &err);
    big_N(&n, t0, u0, n0);
    for (int64_t i = 0; i < 2 * n; i++) {
      double z = dt * L[i / 2];
      us[i] = ((1 + z / 2) * u0[i] + dt * n0[i]) / (1 - z / 2);
    }
    big_N(&n, t0 + dt, us, ns);
    for (int64_t i = 0; i < 2 * n; i++) {
      double z = dt * L[i / 2];
      want[i] = v ? us[i] : ((1 + z / 2) * u0[i] + dt / 2 * (n0[i] + ns[i])) / (1 - z / 2);
    }
    ok(st == OPL_OK, "%s: step of %lld coefficients", v ? "euler" : "heun", (long long)n);
    arrays_close(2 * n, u, want, 1e-13, 1e-15, "%s: %lld coefficients (threaded kernels) match the formula",
                 v ? "euler" : "heun", (long long)n);
    opl_cnheun_free(&s);
  }
  free(L), free(u), free(u0), free(n0), free(us), free(ns), free(want);
}

/* ------------------------------------------------------------ CFL and failures */

static double speed_abs(void *u, double t, const double *x) {
  (void)u, (void)t;
  return fabs(x[0]);
}
static double speed_nan(void *u, double t, const double *x) {
  (void)u, (void)t, (void)x;
  return NAN;
}
static int grow_N(void *u, double t, const double *x, double *nx) { /* u' = u (via N) */
  (void)u, (void)t;
  nx[0] = x[0], nx[1] = x[1];
  return 0;
}
static int fail_N(void *u, double t, const double *x, double *nx) {
  (void)x;
  nx[0] = nx[1] = 0;
  return t > *(double *)u ? -3 : 0;
}
static int nan_N(void *u, double t, const double *x, double *nx) {
  (void)x;
  nx[0] = t > *(double *)u ? NAN : 0;
  nx[1] = 0;
  return 0;
}

static void test_cfl_and_failures(void) {
  opl_err err;
  const double L[1] = {0};
  /* u grows like e^t from 1: with dt = 0.1, dx = 0.25, limit 1 the Courant number 0.4 u
   * exceeds 1 once u > 2.5, i.e. after t ~ ln 2.5 = 0.92. */
  opl_cnheun *s = opl_cnheun_create(1, L, 0.1, OPL_CN_HEUN, grow_N, NULL, &err);
  ok(opl_cnheun_set_cfl(s, speed_abs, 0.25, 1, &err) == OPL_OK, "set_cfl");
  double u[2] = {1, 0}, t = 0;
  int st = opl_cnheun_steps(s, 100, &t, u, &err);
  opl_cnheun_stats cs;
  opl_cnheun_get_stats(s, &cs);
  ok(st == OPL_ERR_CONVERGENCE && strstr(err.msg, "CFL") && strstr(err.msg, "limit 1"),
     "CFL violation stops: %s", err.msg);
  ok(u[0] > 2.5 && u[0] < 2.9 && fabs(t - 1.0) < 1e-12 && fabs(0.4 * u[0] - cs.cfl_last) < 1e-12 && cs.cfl_last > 1,
     "state kept before the violating step (t = %g, u = %g, Courant %g)", t, u[0], cs.cfl_last);
  ok(cs.cfl_max == cs.cfl_last, "stats: max Courant number %g", cs.cfl_max);
  ok(opl_cnheun_set_cfl(s, NULL, 0, 0, &err) == OPL_OK &&
         opl_cnheun_steps(s, 1, &t, u, &err) == OPL_OK, "CFL check disabled with speed = NULL");
  ok(opl_cnheun_set_cfl(s, speed_abs, 0, 1, &err) == OPL_ERR_ARG && strstr(err.msg, "dx = 0"),
     "dx = 0: %s", err.msg);
  ok(opl_cnheun_set_cfl(s, speed_abs, 0.1, -1, &err) == OPL_ERR_ARG && strstr(err.msg, "limit = -1"),
     "limit < 0: %s", err.msg);
  opl_cnheun_set_cfl(s, speed_nan, 0.1, 1, &err);
  ok(opl_cnheun_step(s, &t, u, &err) == OPL_ERR_NONFINITE && strstr(err.msg, "speed"),
     "NaN speed: %s", err.msg);
  opl_cnheun_free(&s);

  double when = 0.25;
  for (int v = 0; v < 2; v++) {
    s = opl_cnheun_create(1, L, 0.1, (opl_cnheun_variant)v, fail_N, &when, &err);
    u[0] = 1, t = 0;
    st = opl_cnheun_steps(s, 10, &t, u, &err);
    ok(st == OPL_ERR_STATE && strstr(err.msg, "returned -3") && fabs(t - (v ? 0.3 : 0.2)) < 1e-12 && u[0] == 1,
       "%s: N failing stops at t = %g: %s", v ? "euler" : "heun", t, err.msg);
    opl_cnheun_free(&s);
    s = opl_cnheun_create(1, L, 0.1, (opl_cnheun_variant)v, nan_N, &when, &err);
    u[0] = 1, t = 0;
    st = opl_cnheun_steps(s, 10, &t, u, &err);
    ok(st == OPL_ERR_NONFINITE && strstr(err.msg, "t = 0.") && t < 0.35, "%s: NaN in N: %s",
       v ? "euler" : "heun", err.msg);
    opl_cnheun_free(&s);
  }
}

static void test_bad(void) {
  opl_err err = {0};
  double L[2] = {-1, 20};
  ok(opl_cnheun_create(0, L, 0.1, OPL_CN_HEUN, n_zero, NULL, &err) == NULL && err.status == OPL_ERR_ARG &&
         strstr(err.msg, "n = 0"), "n = 0: %s", err.msg);
  ok(opl_cnheun_create(1, NULL, 0.1, OPL_CN_HEUN, n_zero, NULL, &err) == NULL && strstr(err.msg, "L is NULL"),
     "L NULL: %s", err.msg);
  ok(opl_cnheun_create(1, L, 0.1, OPL_CN_HEUN, NULL, NULL, &err) == NULL && strstr(err.msg, "N is NULL"),
     "N NULL: %s", err.msg);
  ok(opl_cnheun_create(1, L, 0, OPL_CN_HEUN, n_zero, NULL, &err) == NULL && strstr(err.msg, "dt = 0"),
     "dt = 0: %s", err.msg);
  ok(opl_cnheun_create(1, L, 0.1, (opl_cnheun_variant)5, n_zero, NULL, &err) == NULL &&
         strstr(err.msg, "variant = 5"), "bad variant: %s", err.msg);
  ok(opl_cnheun_create(2, L, 0.1, OPL_CN_HEUN, n_zero, NULL, &err) == NULL &&
         strstr(err.msg, "L[1] = 20") && strstr(err.msg, "= 0"), "1 - dt L/2 = 0: %s", err.msg);
  double Ln[1] = {NAN};
  ok(opl_cnheun_create(1, Ln, 0.1, OPL_CN_HEUN, n_zero, NULL, &err) == NULL && strstr(err.msg, "L[0] = nan"),
     "L NaN: %s", err.msg);
  ok(opl_cnheun_create(0, L, 0.1, OPL_CN_HEUN, n_zero, NULL, NULL) == NULL, "NULL err allowed");
  opl_cnheun *s = opl_cnheun_create(1, L, 0.1, OPL_CN_EULER, n_zero, NULL, &err);
  double u[2] = {1, 0}, t = 0;
  ok(opl_cnheun_steps(s, -2, &t, u, &err) == OPL_ERR_ARG && strstr(err.msg, "nsteps = -2"),
     "nsteps < 0: %s", err.msg);
  opl_cnheun_free(&s);
  opl_cnheun_free(&s);
  opl_cnheun_free(NULL);
}

int main(void) {
  tap_begin();
  test_linear_exact();
  test_orders();
  test_one_step();
  test_large();
  test_cfl_and_failures();
  test_bad();
  return tap_end();
}
