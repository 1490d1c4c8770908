/* ETDRK4: coefficients against long-double references (tiny, large negative, imaginary, complex
 * L h), exactness for u' = lambda u + a, a stiff system against the RK core at rtol 1e-12, the
 * measured order on a manufactured solution, failures and bad input. */
#include <complex.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "solvers/etdrk4.h"
#include "solvers/rk.h"
#include "tests/tap.h"

typedef long double complex ldc;

/* phi_k(z) = sum_m z^m / (m + k)! for |z| < 1, else by the recursion
 * phi_k = (phi_{k-1} - 1/(k-1)!) / z from phi_0 = e^z, all in long double. */
static ldc phi_ref(int k, ldc z) {
  if (cabsl(z) < 1) {
    ldc s = 0, zm = 1;
    long double f = 1;
    for (int i = 1; i <= k; i++) f *= i;
    for (int m = 0; m < 40; m++) {
      s += zm / f;
      zm *= z;
      f *= (m + 1 + k);
    }
    return s;
  }
  ldc p = cexpl(z);
  long double f = 1;
  for (int i = 1; i <= k; i++) {
    p = (p - 1.0L / f) / z;
    f *= i;
  }
  return p;
}

/* The six coefficients for symbol l and step h, in long double. */
static void coef_ref(ldc l, long double h, ldc c[6]) {
  ldc z = l * h;
  c[OPL_ETD_E] = cexpl(z);
  c[OPL_ETD_E2] = cexpl(z / 2);
  c[OPL_ETD_Q] = h * phi_ref(1, z / 2) / 2;
  c[OPL_ETD_F1] = h * (phi_ref(1, z) - 3 * phi_ref(2, z) + 4 * phi_ref(3, z));
  c[OPL_ETD_F2] = h * (phi_ref(2, z) - 2 * phi_ref(3, z));
  c[OPL_ETD_F3] = h * (4 * phi_ref(3, z) - phi_ref(2, z));
}

static int n_zero(void *u, double t, const double *x, double *nx) {
  (void)u, (void)t, (void)x, (void)nx;
  return 0;
}

static void test_coefficients(void) {
  const char *names[6] = {"E", "E2", "Q", "f1", "f2", "f3"};
  /* z = L h: tiny, small, order one, large negative, purely imaginary, complex, positive. */
  const double zs[][2] = {{1e-8, 0},  {-1e-8, 0}, {0, 1e-8},  {0, 0},      {-1e-3, 0},  {-1, 0},
                          {-50, 0},   {-1000, 0}, {-1e5, 0},  {0, 5},      {0, 100},    {0, -2000},
                          {-2, 3},    {-300, 1e3}, {1, 0},    {0.5, -0.25}, {-0.99, 0.14}};
  const int nz = (int)(sizeof zs / sizeof zs[0]);
  const double hs[2] = {1, 0.01};
  for (int ih = 0; ih < 2; ih++) {
    double h = hs[ih];
    double *L = malloc(sizeof(double) * 2 * nz);
    for (int i = 0; i < nz; i++) L[2 * i] = zs[i][0] / h, L[2 * i + 1] = zs[i][1] / h;
    opl_err err;
    opl_etdrk4 *s = opl_etdrk4_create(nz, L, h, n_zero, NULL, &err);
    ok(s != NULL, "create for %d test symbols, h = %g", nz, h);
    if (!s) return;
    double worst[6] = {0};
    int worst_i[6] = {0};
    for (int i = 0; i < nz; i++) {
      ldc ref[6];
      coef_ref(CMPLXL(L[2 * i], L[2 * i + 1]), h, ref);
      for (int q = 0; q < 6; q++) {
        const double *c = opl_etdrk4_coefficients(s, q);
        long double dr = c[2 * i] - creall(ref[q]), di = c[2 * i + 1] - cimagl(ref[q]);
        /* relative, except below 1e-300 (e^-1000 underflows to 0 in double) */
        double rel = (double)(sqrtl(dr * dr + di * di) / fmaxl(cabsl(ref[q]), 1e-300L));
        if (!(rel <= worst[q])) worst[q] = rel, worst_i[q] = i;
      }
    }
    for (int q = 0; q < 6; q++)
      ok(worst[q] < 5e-14, "h = %g: %s matches the long-double reference (max rel err %.2g at z = %g%+gi)",
         h, names[q], worst[q], zs[worst_i[q]][0], zs[worst_i[q]][1]);
    /* Exactly real coefficients for real symbols. */
    int real = 1;
    for (int i = 0; i < nz; i++)
      if (zs[i][1] == 0)
        for (int q = 0; q < 6; q++) real &= opl_etdrk4_coefficients(s, q)[2 * i + 1] == 0;
    ok(real, "h = %g: real L gives exactly real coefficients", h);
    opl_etdrk4_free(&s);
    ok(s == NULL, "free clears the pointer");
    free(L);
  }
  /* The naive formula for f1 at z = 1e-8 cancels catastrophically: the reference catches it. */
  double complex z = 1e-8;
  double complex naive = (-4 - z + cexp(z) * (4 - 3 * z + z * z)) / (z * z * z);
  ldc ref[6];
  coef_ref(1e-8L, 1, ref);
  double rel = cabs(naive - (double complex)ref[OPL_ETD_F1]) / (double)cabsl(ref[OPL_ETD_F1]);
  ok(rel > 1e-2, "naive f1 at z = 1e-8 is wrong by %.2g (the contour mean avoids it)", rel);
  /* A contour point close to 0 (z near -e^(i pi/32)) is handled by the series. */
  double Lc[2] = {-cos(M_PI / 32) + 1e-13, -sin(M_PI / 32)};
  opl_err err;
  opl_etdrk4 *s = opl_etdrk4_create(1, Lc, 1, n_zero, NULL, &err);
  coef_ref(CMPLXL(Lc[0], Lc[1]), 1, ref);
  double w = 0;
  for (int q = 0; q < 6; q++) {
    const double *c = opl_etdrk4_coefficients(s, q);
    w = fmax(w, (double)(cabsl(CMPLXL(c[0], c[1]) - ref[q]) / cabsl(ref[q])));
  }
  ok(w < 1e-13, "z on top of a contour node: coefficients accurate (max rel err %.2g)", w);
  opl_etdrk4_free(&s);
}

/* ------------------------------------------------------------ u' = lambda u + a */

typedef struct lin {
  int n;
  const double *a; /* [2n] constant forcing */
} lin;
static int n_const(void *u, double t, const double *x, double *nx) {
  const lin *p = u;
  (void)t, (void)x;
  memcpy(nx, p->a, sizeof(double) * 2 * (size_t)p->n);
  return 0;
}

static void test_linear_exact(void) {
  enum { NL = 7 };
  const double L[2 * NL] = {-1, 0, -200, 0, 0, 30, -3, 7, 1e-9, 0, 0, 0, 0.5, 0};
  const double a[2 * NL] = {1, 0.5, -2, 1, 0.3, -0.7, 1, 1, 2, 0, -1, 3, 0.25, -0.5};
  const double u0[2 * NL] = {1, 0, 0.5, -0.5, 2, 1, 0, 1, 1, 1, 1, -1, -1, 0};
  lin p = {NL, a};
  opl_err err;
  double h = 0.05, t = 0, u[2 * NL];
  memcpy(u, u0, sizeof u);
  opl_etdrk4 *s = opl_etdrk4_create(NL, L, h, n_const, &p, &err);
  int st = opl_etdrk4_steps(s, 40, &t, u, &err);
  ok(st == OPL_OK && t == 40 * h, "40 steps to t = %g", t);
  double got[2 * NL], want[2 * NL];
  for (int k = 0; k < NL; k++) {
    ldc l = CMPLXL(L[2 * k], L[2 * k + 1]), ak = CMPLXL(a[2 * k], a[2 * k + 1]);
    ldc ex = cexpl(l * t) * CMPLXL(u0[2 * k], u0[2 * k + 1]) + t * phi_ref(1, l * t) * ak;
    want[2 * k] = (double)creall(ex), want[2 * k + 1] = (double)cimagl(ex);
    got[2 * k] = u[2 * k], got[2 * k + 1] = u[2 * k + 1];
  }
  arrays_close(2 * NL, got, want, 1e-12, 1e-14,
               "u' = lambda u + a is exact (real, stiff, imaginary, complex, tiny, zero, positive lambda)");
  opl_etdrk4_stats sst;
  opl_etdrk4_get_stats(s, &sst);
  ok(sst.nfev == 160 && sst.nsteps == 40 && sst.n == NL && sst.h == h, "stats: nfev = %lld = 4 per step",
     (long long)sst.nfev);
  opl_etdrk4_free(&s);
}

/* Many modes (OpenMP path): u' = lambda_k u + a_k stays exact. */
static void test_large(void) {
  const int64_t n = 40000;
  double *L = malloc(sizeof(double) * 2 * n), *a = malloc(sizeof(double) * 2 * n);
  double *u = malloc(sizeof(double) * 2 * n);
  for (int64_t k = 0; k < n; k++) {
    L[2 * k] = -(double)k / 1000, L[2 * k + 1] = (double)(k % 97) - 48;
    a[2 * k] = cos((double)k), a[2 * k + 1] = sin((double)k);
    u[2 * k] = 1, u[2 * k + 1] = -0.5;
  }
  lin p = {(int)n, a};
  opl_err err;
  double t = 0, h = 0.02;
  opl_etdrk4 *s = opl_etdrk4_create(n, L, h, n_const, &p, &err);
  int st = opl_etdrk4_steps(s, 10, &t, u, &err);
  double worst = 0;
  for (int64_t k = 0; k < n; k++) {
    ldc l = CMPLXL(L[2 * k], L[2 * k + 1]), ak = CMPLXL(a[2 * k], a[2 * k + 1]);
    ldc ex = cexpl(l * t) * CMPLXL(1, -0.5) + t * phi_ref(1, l * t) * ak;
    worst = fmax(worst, (double)(cabsl(CMPLXL(u[2 * k], u[2 * k + 1]) - ex) / cabsl(ex)));
  }
  ok(st == OPL_OK && worst < 1e-12, "%lld modes (threaded kernels): exact to %.2g", (long long)n, worst);
  opl_etdrk4_free(&s);
  free(L), free(a), free(u);
}

/* ------------------------------------------------------------ nonlinear systems */

/* Stiff dispersive-dissipative system, n modes: L_k = -k^2 + i k^3 / 10,
 * N_k(u, t) = -u_k u_{k+1} / 2 + i u_{k-1} / 4 + cos(3t) [k == 0] (indices mod n). */
enum { NS = 16 };
static void stiff_L(double *L) {
  for (int k = 0; k < NS; k++) L[2 * k] = -(double)k * k, L[2 * k + 1] = (double)k * k * k / 10;
}
static int stiff_N(void *u, double t, const double *x, double *nx) {
  long *calls = u;
  if (calls) (*calls)++;
  for (int k = 0; k < NS; k++) {
    int kp = (k + 1) % NS, km = (k + NS - 1) % NS;
    double ar = x[2 * k], ai = x[2 * k + 1], br = x[2 * kp], bi = x[2 * kp + 1];
    nx[2 * k] = -0.5 * (ar * br - ai * bi) - 0.25 * x[2 * km + 1];
    nx[2 * k + 1] = -0.5 * (ar * bi + ai * br) + 0.25 * x[2 * km];
  }
  nx[0] += cos(3 * t);
  return 0;
}
/* The same system as a real ODE of 2 NS unknowns for the RK core. */
static int stiff_full(void *u, double t, const void *yv, void *dyv) {
  const double *y = yv;
  double *dy = dyv, L[2 * NS];
  (void)u;
  stiff_L(L);
  stiff_N(NULL, t, y, dy);
  for (int k = 0; k < NS; k++) {
    double lr = L[2 * k], li = L[2 * k + 1], yr = y[2 * k], yi = y[2 * k + 1];
    dy[2 * k] += lr * yr - li * yi;
    dy[2 * k + 1] += lr * yi + li * yr;
  }
  return 0;
}
static void stiff_u0(double *u) {
  for (int k = 0; k < NS; k++) u[2 * k] = 1.0 / (1 + k), u[2 * k + 1] = 0.5 / (1 + k * k);
}

static void test_stiff_system(void) {
  const double T = 1;
  double ref[2 * NS];
  stiff_u0(ref);
  opl_rk_vops ops = opl_rk_vops_double(2 * NS);
  ops.rhs = stiff_full;
  opl_err err;
  opl_rk *rk = opl_rk_create(&ops, NULL, OPL_RK_DP5, &err);
  opl_rk_set_tolerances(rk, 1e-12, 1e-14, &err);
  double tr;
  int st = opl_rk_integrate(rk, 0, T, ref, &tr, &err);
  opl_rk_stats rst;
  opl_rk_get_stats(rk, &rst);
  ok(st == OPL_OK, "RK reference at rtol 1e-12: %lld steps (%s)", (long long)rst.accepted, st ? err.msg : "ok");
  opl_rk_free(&rk);
  double L[2 * NS];
  stiff_L(L);
  /* Stiff modes with a forced nonlinear term show the known order reduction of Cox-Matthews
   * ETDRK4 while |L h| >> 1; the accuracy still approaches the reference. */
  const int Ns[4] = {10, 40, 200, 1000};
  const double tol[4] = {1e-3, 1e-4, 1e-6, 1e-9};
  for (int i = 0; i < 4; i++) {
    double u[2 * NS], t = 0, h = T / Ns[i];
    long calls = 0;
    stiff_u0(u);
    opl_etdrk4 *s = opl_etdrk4_create(NS, L, h, stiff_N, &calls, &err);
    st = opl_etdrk4_steps(s, Ns[i], &t, u, &err);
    double e = 0, m = 0;
    for (int k = 0; k < 2 * NS; k++) e = fmax(e, fabs(u[k] - ref[k])), m = fmax(m, fabs(ref[k]));
    ok(st == OPL_OK && e / m < tol[i] && t == T,
       "stiff system (|L h| up to %.2g) with %d steps: max error %.2g relative to max |u| (< %g)",
       cabs(CMPLX(L[2 * NS - 2], L[2 * NS - 1])) * h, Ns[i], e / m, tol[i]);
    ok(calls == 4L * Ns[i], "N called 4 times per step (%ld)", calls);
    opl_etdrk4_free(&s);
  }
}

/* Manufactured solution: u_k(t) = (1 + k/10) cos(t + k) + i sin(2t + 3k/10) / 2 solves
 * u' = L u + N(u, t) with N_k = -u_k u_{k+1} / 2 + g_k(t), g = u' - L u + u_k u_{k+1} / 2. */
enum { NM = 6 };
static const double MF_L[2 * NM] = {-1, 0, -5, 0, -3, 4, 0, 6, -0.5, -8, -10, 0};
static void mf_exact(double t, double *u, double *du) {
  for (int k = 0; k < NM; k++) {
    u[2 * k] = (1 + k / 10.0) * cos(t + k);
    u[2 * k + 1] = 0.5 * sin(2 * t + 0.3 * k);
    if (du) du[2 * k] = -(1 + k / 10.0) * sin(t + k), du[2 * k + 1] = cos(2 * t + 0.3 * k);
  }
}
static void mf_quad(const double *x, double *q) { /* q_k = -x_k x_{k+1} / 2 */
  for (int k = 0; k < NM; k++) {
    int kp = (k + 1) % NM;
    q[2 * k] = -0.5 * (x[2 * k] * x[2 * kp] - x[2 * k + 1] * x[2 * kp + 1]);
    q[2 * k + 1] = -0.5 * (x[2 * k] * x[2 * kp + 1] + x[2 * k + 1] * x[2 * kp]);
  }
}
static int mf_N(void *u, double t, const double *x, double *nx) {
  (void)u;
  double ue[2 * NM], due[2 * NM], qe[2 * NM];
  mf_exact(t, ue, due);
  mf_quad(ue, qe);
  mf_quad(x, nx);
  for (int k = 0; k < NM; k++) {
    const double lr = MF_L[2 * k], li = MF_L[2 * k + 1];
    nx[2 * k] += due[2 * k] - (lr * ue[2 * k] - li * ue[2 * k + 1]) - qe[2 * k];
    nx[2 * k + 1] += due[2 * k + 1] - (lr * ue[2 * k + 1] + li * ue[2 * k]) - qe[2 * k + 1];
  }
  return 0;
}

/* Order in the asymptotic regime: |L h| <= 0.5 at the coarsest step. */
static void test_order(void) {
  const double T = 1;
  double hs[4], errs[4];
  for (int i = 0; i < 4; i++) {
    int N = 20 << i;
    double u[2 * NM], ue[2 * NM], t = 0;
    hs[i] = T / N;
    mf_exact(0, u, NULL);
    opl_err err;
    opl_etdrk4 *s = opl_etdrk4_create(NM, MF_L, hs[i], mf_N, NULL, &err);
    opl_etdrk4_steps(s, N, &t, u, &err);
    mf_exact(T, ue, NULL);
    errs[i] = 0;
    for (int k = 0; k < 2 * NM; k++) errs[i] = fmax(errs[i], fabs(u[k] - ue[k]));
    opl_etdrk4_free(&s);
  }
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (int i = 0; i < 4; i++) {
    double x = log(hs[i]), y = log(errs[i]);
    sx += x, sy += y, sxx += x * x, sxy += x * y;
  }
  double slope = (4 * sxy - sx * sy) / (4 * sxx - sx * sx);
  diag("manufactured solution: errors %.3g %.3g %.3g %.3g at h = %g .. %g", errs[0], errs[1],
       errs[2], errs[3], hs[0], hs[3]);
  ok(slope >= 3.7 && slope <= 4.3, "measured order %.3f in [3.7, 4.3]", slope);
}

/* ------------------------------------------------------------ failures and bad input */

static int n_fail(void *u, double t, const double *x, double *nx) {
  (void)x;
  nx[0] = nx[1] = 0;
  return t > *(double *)u ? 7 : 0;
}
static int n_nan(void *u, double t, const double *x, double *nx) {
  (void)x;
  nx[0] = t > *(double *)u ? NAN : 0;
  nx[1] = 0;
  return 0;
}

static void test_bad(void) {
  opl_err err = {0};
  double L[2] = {-1, 0}, when = 0.3;
  ok(opl_etdrk4_create(0, L, 0.1, n_zero, NULL, &err) == NULL && err.status == OPL_ERR_ARG &&
         strstr(err.msg, "n = 0"), "n = 0: %s", err.msg);
  ok(opl_etdrk4_create(1, NULL, 0.1, n_zero, NULL, &err) == NULL && strstr(err.msg, "L is NULL"),
     "L NULL: %s", err.msg);
  ok(opl_etdrk4_create(1, L, 0.1, NULL, NULL, &err) == NULL && strstr(err.msg, "N is NULL"),
     "N NULL: %s", err.msg);
  ok(opl_etdrk4_create(1, L, -0.1, n_zero, NULL, &err) == NULL && strstr(err.msg, "h = -0.1"),
     "h < 0: %s", err.msg);
  ok(opl_etdrk4_create(1, L, NAN, n_zero, NULL, &err) == NULL && strstr(err.msg, "h = nan"),
     "h NaN: %s", err.msg);
  double Lbad[4] = {-1, 0, NAN, 2};
  ok(opl_etdrk4_create(2, Lbad, 0.1, n_zero, NULL, &err) == NULL && strstr(err.msg, "L[1] = nan"),
     "L NaN: %s", err.msg);
  double Lbig[4] = {-1, 0, 1e4, 0};
  ok(opl_etdrk4_create(2, Lbig, 0.1, n_zero, NULL, &err) == NULL && err.status == OPL_ERR_ARG &&
         strstr(err.msg, "L[1] h = 1000"), "overflowing e^(L h): %s", err.msg);
  ok(opl_etdrk4_create(0, L, 0.1, n_zero, NULL, NULL) == NULL, "NULL err allowed");
  opl_etdrk4 *s = opl_etdrk4_create(1, L, 0.1, n_fail, &when, &err);
  double u[2] = {1, 0}, t = 0;
  int st = opl_etdrk4_steps(s, 10, &t, u, &err);
  ok(st == OPL_ERR_STATE && strstr(err.msg, "returned 7") && fabs(t - 0.2) < 1e-12,
     "N failing stops at t = %g: %s", t, err.msg);
  ok(opl_etdrk4_steps(s, -1, &t, u, &err) == OPL_ERR_ARG && strstr(err.msg, "nsteps = -1"),
     "nsteps < 0: %s", err.msg);
  opl_etdrk4_free(&s);
  when = 0.33;
  s = opl_etdrk4_create(1, L, 0.1, n_nan, &when, &err);
  t = 0, u[0] = 1;
  st = opl_etdrk4_steps(s, 10, &t, u, &err);
  ok(st == OPL_ERR_NONFINITE && strstr(err.msg, "t = 0.3") && fabs(t - 0.3) < 1e-12,
     "NaN in N: %s", err.msg);
  opl_etdrk4_free(&s);
  opl_etdrk4_free(&s);
  opl_etdrk4_free(NULL);
}

int main(void) {
  tap_begin();
  test_coefficients();
  test_linear_exact();
  test_large();
  test_stiff_system();
  test_order();
  test_bad();
  return tap_end();
}
