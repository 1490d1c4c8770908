/* Adaptive RK core: tableau order conditions, exact solutions, invariants, tolerance
 * proportionality, measured fixed-step orders, FSAL evaluation counts, stiffness estimate,
 * recoverable / fatal / non-finite right-hand sides, step limits, abstract vops, bad input. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "solvers/rk.h"
#include "tests/tap.h"

static const opl_rk_method METHODS[3] = {OPL_RK_DP5, OPL_RK_TSIT5, OPL_RK_BS3};

/* ------------------------------------------------------------ problems (user = problem) */

typedef struct prob {
  double lam;        /* a rate parameter */
  long calls;        /* right-hand side evaluations seen by the problem */
  double fail_after; /* failure injection time */
  int mode;
} prob;

static int f_decay(void *u, double t, const void *yv, void *dyv) { /* y' = -lam y */
  prob *p = u;
  const double *y = yv;
  double *dy = dyv;
  (void)t;
  p->calls++;
  dy[0] = -p->lam * y[0];
  return 0;
}
static int f_cos(void *u, double t, const void *yv, void *dyv) { /* y' = cos t */
  (void)u, (void)yv;
  ((double *)dyv)[0] = cos(t);
  return 0;
}
static int f_osc(void *u, double t, const void *yv, void *dyv) { /* x' = v, v' = -x */
  const double *y = yv;
  double *dy = dyv;
  (void)u, (void)t;
  dy[0] = y[1];
  dy[1] = -y[0];
  return 0;
}
/* Lotka-Volterra x' = a x - b x y, y' = d x y - g y; V = d x - g ln x + b y - a ln y constant. */
static const double LV_A = 1.5, LV_B = 1, LV_G = 3, LV_D = 1;
static int f_lv(void *u, double t, const void *yv, void *dyv) {
  const double *y = yv;
  double *dy = dyv;
  (void)t;
  if (u) ((prob *)u)->calls++;
  dy[0] = LV_A * y[0] - LV_B * y[0] * y[1];
  dy[1] = LV_D * y[0] * y[1] - LV_G * y[1];
  return 0;
}
static double lv_invariant(const double *y) {
  return LV_D * y[0] - LV_G * log(y[0]) + LV_B * y[1] - LV_A * log(y[1]);
}
static int f_kepler(void *u, double t, const void *yv, void *dyv) { /* q'' = -q / |q|^3 */
  const double *y = yv;
  double *dy = dyv;
  (void)u, (void)t;
  double r = sqrt(y[0] * y[0] + y[1] * y[1]), r3 = r * r * r;
  dy[0] = y[2];
  dy[1] = y[3];
  dy[2] = -y[0] / r3;
  dy[3] = -y[1] / r3;
  return 0;
}
static int f_stiff(void *u, double t, const void *yv, void *dyv) { /* y' = -lam (y - cos t) */
  prob *p = u;
  ((double *)dyv)[0] = -p->lam * (((const double *)yv)[0] - cos(t));
  return 0;
}
static int f_decay_domain(void *u, double t, const void *yv, void *dyv) { /* y' = -y; y < 0: > 0 */
  prob *p = u;
  const double *y = yv;
  (void)t;
  p->calls++;
  if (y[0] < 0) {
    p->mode++;
    return 1;
  }
  ((double *)dyv)[0] = -y[0];
  return 0;
}
static int f_decay_fatal(void *u, double t, const void *yv, void *dyv) { /* fails for t > 0.5 */
  prob *p = u;
  if (t > p->fail_after) return -1;
  ((double *)dyv)[0] = -((const double *)yv)[0];
  return 0;
}
static int f_decay_nan(void *u, double t, const void *yv, void *dyv) { /* NaN for t > 0.5 */
  prob *p = u;
  ((double *)dyv)[0] = t > p->fail_after ? NAN : -((const double *)yv)[0];
  return 0;
}
static int f_blowup(void *u, double t, const void *yv, void *dyv) { /* y' = y^2 */
  (void)u, (void)t;
  double y = ((const double *)yv)[0];
  ((double *)dyv)[0] = y * y;
  return 0;
}
static int f_many(void *u, double t, const void *yv, void *dyv) { /* y_i' = -lam_i y_i */
  const double *y = yv;
  double *dy = dyv;
  int64_t n = *(int64_t *)u;
  (void)t;
  for (int64_t i = 0; i < n; i++) dy[i] = -(0.5 + 1.5 * (double)i / (double)n) * y[i];
  return 0;
}

/* Integrate on double arrays; returns the status. */
static int run(opl_rk_method m, int (*f)(void *, double, const void *, void *), void *user,
               int64_t n, double *y, double t0, double t1, double rtol, double atol, double hfix,
               opl_rk_stats *st, opl_err *err) {
  opl_rk_vops ops = opl_rk_vops_double(n);
  ops.rhs = f;
  opl_err e0;
  if (!err) err = &e0;
  opl_rk *rk = opl_rk_create(&ops, user, m, err);
  if (!rk) return err->status;
  int s = opl_rk_set_tolerances(rk, rtol, atol, err);
  if (!s && hfix > 0) s = opl_rk_set_fixed_step(rk, hfix, err);
  double tr;
  if (!s) s = opl_rk_integrate(rk, t0, t1, y, &tr, err);
  if (st) opl_rk_get_stats(rk, st);
  opl_rk_free(&rk);
  return s;
}

/* Least-squares slope of log(err) against log(h). */
static double slope(int k, const double *h, const double *e) {
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (int i = 0; i < k; i++) {
    double x = log(h[i]), y = log(e[i]);
    sx += x, sy += y, sxx += x * x, sxy += x * y;
  }
  return (k * sxy - sx * sy) / (k * sxx - sx * sx);
}

/* ------------------------------------------------------------ tableau order conditions */

/* Sum_i w_i Phi_i(tree) - 1/gamma(tree) for the 17 rooted trees of order <= 5; out[17]. */
static void order_residuals(int s, const double *A, const double *w, const double *c, double *out,
                            int *ord) {
  double Ac[8] = {0}, Ac2[8] = {0}, Ac3[8] = {0}, AAc[8] = {0}, AcAc[8] = {0}, AAc2[8] = {0},
         AAAc[8] = {0};
  for (int i = 0; i < s; i++)
    for (int j = 0; j < s; j++) {
      Ac[i] += A[i * s + j] * c[j];
      Ac2[i] += A[i * s + j] * c[j] * c[j];
      Ac3[i] += A[i * s + j] * c[j] * c[j] * c[j];
    }
  for (int i = 0; i < s; i++)
    for (int j = 0; j < s; j++) {
      AAc[i] += A[i * s + j] * Ac[j];
      AcAc[i] += A[i * s + j] * c[j] * Ac[j];
      AAc2[i] += A[i * s + j] * Ac2[j];
    }
  for (int i = 0; i < s; i++)
    for (int j = 0; j < s; j++) AAAc[i] += A[i * s + j] * AAc[j];
  double S[17] = {0};
  const double want[17] = {1,      1. / 2,  1. / 3,  1. / 6,  1. / 4,  1. / 8,
                           1. / 12, 1. / 24, 1. / 5,  1. / 10, 1. / 15, 1. / 30,
                           1. / 20, 1. / 20, 1. / 40, 1. / 60, 1. / 120};
  const int o[17] = {1, 2, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5, 5};
  for (int i = 0; i < s; i++) {
    double ci = c[i];
    double phi[17] = {1,          ci,          ci * ci,     Ac[i],        ci * ci * ci, ci * Ac[i],
                      Ac2[i],     AAc[i],      ci * ci * ci * ci,          ci * ci * Ac[i],
                      ci * Ac2[i], ci * AAc[i], Ac[i] * Ac[i], Ac3[i],    AcAc[i],      AAc2[i],
                      AAAc[i]};
    for (int k = 0; k < 17; k++) S[k] += w[i] * phi[k];
  }
  for (int k = 0; k < 17; k++) {
    out[k] = S[k] - want[k];
    ord[k] = o[k];
  }
}

static void test_tableaus(void) {
  for (int mi = 0; mi < 3; mi++) {
    const double *A, *b, *e, *c;
    int p, ph;
    int s = opl_rk_tableau(METHODS[mi], &A, &b, &e, &c, &p, &ph);
    const char *nm = opl_rk_method_name(METHODS[mi]);
    double bhat[8], res[17], resh[17];
    int ord[17];
    for (int i = 0; i < s; i++) bhat[i] = b[i] - e[i];
    /* Row sums c_i = sum_j a_ij, and FSAL: last row of A == b, c_s = 1. */
    double rs = 0, fsal = 0;
    for (int i = 0; i < s; i++) {
      double r = 0;
      for (int j = 0; j < s; j++) r += A[i * s + j];
      rs = fmax(rs, fabs(r - c[i]));
      fsal = fmax(fsal, fabs(A[(s - 1) * s + i] - b[i]));
    }
    ok(rs < 1e-14, "%s: row sums equal the nodes (max dev %.2g)", nm, rs);
    ok(fsal == 0 && c[s - 1] == 1, "%s: FSAL (last row of A is b, c_s = 1)", nm);
    order_residuals(s, A, b, c, res, ord);
    order_residuals(s, A, bhat, c, resh, ord);
    double worst = 0, worsth = 0, beyond = 0, beyondh = 0;
    for (int k = 0; k < 17; k++) {
      if (ord[k] <= p) worst = fmax(worst, fabs(res[k]));
      else beyond = fmax(beyond, fabs(res[k]));
      if (ord[k] <= ph) worsth = fmax(worsth, fabs(resh[k]));
      else if (ord[k] == ph + 1) beyondh = fmax(beyondh, fabs(resh[k]));
    }
    ok(worst < 1e-14, "%s: solution weights satisfy all %d-th order conditions (max residual %.2g)",
       nm, p, worst);
    ok(worsth < 1e-14, "%s: embedded weights satisfy all %d-th order conditions (max residual %.2g)",
       nm, ph, worsth);
    ok(beyondh > 1e-6, "%s: embedded weights are not of order %d (residual %.2g)", nm, ph + 1, beyondh);
    if (p < 5) ok(beyond > 1e-6, "%s: solution weights are not of order %d (residual %.2g)", nm, p + 1, beyond);
    /* Order 6 fails for the 5th-order methods: sum b c^5 != 1/6. */
    if (p == 5) {
      double s5 = 0;
      for (int i = 0; i < s; i++) s5 += b[i] * pow(c[i], 5);
      ok(fabs(s5 - 1.0 / 6) > 1e-6, "%s: sum b c^5 = %.12g != 1/6 (order exactly 5)", nm, s5);
    }
  }
  ok(opl_rk_tableau((opl_rk_method)9, NULL, NULL, NULL, NULL, NULL, NULL) == 0 &&
         opl_rk_method_name((opl_rk_method)9) == NULL, "tableau of a bad method: 0 stages, no name");
}

/* ------------------------------------------------------------ accuracy */

static void test_exact(void) {
  for (int mi = 0; mi < 3; mi++) {
    opl_rk_method m = METHODS[mi];
    const char *nm = opl_rk_method_name(m);
    opl_err err;
    prob p = {.lam = 1};
    double y[2] = {1, 0};
    int s = run(m, f_decay, &p, 1, y, 0, 2, 1e-8, 1e-12, 0, NULL, &err);
    ok(s == OPL_OK, "%s: y' = -y integrates (%s)", nm, s ? err.msg : "ok");
    is_close(y[0], exp(-2.0), 50e-8, 0, "%s: y' = -y, y(2) = e^-2", nm);
    y[0] = 0;
    s = run(m, f_cos, NULL, 1, y, 0, 10, 1e-8, 1e-8, 0, NULL, &err);
    is_close(y[0], sin(10.0), 0, 50e-8, "%s: y' = cos t, y(10) = sin 10", nm);
    y[0] = 1, y[1] = 0;
    s = run(m, f_osc, NULL, 2, y, 0, 20, 1e-9, 1e-9, 0, NULL, &err);
    double want[2] = {cos(20.0), -sin(20.0)};
    arrays_close(2, y, want, 0, 1e-6, "%s: harmonic oscillator at t = 20", nm);
    /* Lotka-Volterra: the invariant is conserved to tolerance. */
    double z[2] = {10, 5}, V0 = lv_invariant(z);
    s = run(m, f_lv, NULL, 2, z, 0, 15, 1e-10, 1e-12, 0, NULL, &err);
    ok(s == OPL_OK, "%s: Lotka-Volterra integrates", nm);
    is_close(lv_invariant(z), V0, 1e-7, 0, "%s: Lotka-Volterra invariant conserved over [0, 15]", nm);
  }
}

/* Output times are hit exactly and each snapshot is accurate. */
static void test_snapshots(void) {
  opl_rk_vops ops = opl_rk_vops_double(2);
  ops.rhs = f_osc;
  opl_err err;
  opl_rk *rk = opl_rk_create(&ops, NULL, OPL_RK_TSIT5, &err);
  opl_rk_set_tolerances(rk, 1e-10, 1e-10, &err);
  double y0[2] = {1, 0};
  ok(opl_rk_init(rk, 0, y0, &err) == OPL_OK, "init");
  int exact = 1;
  double worst = 0;
  for (int j = 1; j <= 30; j++) {
    double tout = 0.37 * j;
    if (opl_rk_advance(rk, tout, &err)) break;
    exact &= opl_rk_time(rk) == tout;
    const double *y = opl_rk_state(rk);
    worst = fmax(worst, fmax(fabs(y[0] - cos(tout)), fabs(y[1] + sin(tout))));
  }
  ok(exact, "advance lands exactly on every output time");
  ok(worst < 1e-8, "snapshots accurate (max error %.2g)", worst);
  opl_rk_stats st;
  opl_rk_get_stats(rk, &st);
  /* The same run without output times: landing on 30 of them costs at most 30 extra steps. */
  double yf[2] = {1, 0};
  opl_rk_stats sf;
  run(OPL_RK_TSIT5, f_osc, NULL, 2, yf, 0, 0.37 * 30, 1e-10, 1e-10, 0, &sf, NULL);
  ok(st.accepted <= sf.accepted + 30 && st.accepted >= sf.accepted,
     "output times do not shrink later steps (%lld steps vs %lld without outputs)",
     (long long)st.accepted, (long long)sf.accepted);
  /* opl_rk_step takes single accepted steps and stops exactly on tstop. */
  double t = opl_rk_time(rk);
  int n = 0;
  while (opl_rk_time(rk) < t + 5 && n < 1000) {
    if (opl_rk_step(rk, t + 5, &err)) break;
    n++;
  }
  opl_rk_get_stats(rk, &st);
  ok(opl_rk_time(rk) == t + 5 && n > 1, "opl_rk_step: %d single steps end exactly on tstop", n);
  ok(opl_rk_step(rk, t + 5, &err) == OPL_OK && opl_rk_time(rk) == t + 5, "step at tstop is a no-op");
  double yc[2];
  opl_rk_get_state(rk, yc);
  is_close(yc[0], cos(t + 5), 0, 1e-8, "opl_rk_get_state copies the state");
  opl_rk_free(&rk);
  ok(rk == NULL, "free clears the pointer");
  opl_rk_free(&rk);
  opl_rk_free(NULL);
}

static void test_tolerance_proportionality(void) {
  for (int mi = 0; mi < 3; mi++) {
    opl_rk_method m = METHODS[mi];
    const char *nm = opl_rk_method_name(m);
    double tols[4] = {1e-5, 1e-7, 1e-9, 1e-11}, errs[4];
    for (int i = 0; i < 4; i++) {
      double z[2] = {10, 5}, ref[2] = {10, 5};
      run(m, f_lv, NULL, 2, z, 0, 5, tols[i], tols[i], 0, NULL, NULL);
      run(OPL_RK_DP5, f_lv, NULL, 2, ref, 0, 5, 1e-13, 1e-13, 0, NULL, NULL);
      errs[i] = fmax(fabs(z[0] - ref[0]), fabs(z[1] - ref[1])) / 10;
    }
    double sl = slope(4, tols, errs);
    diag("%s: global errors %.2g %.2g %.2g %.2g at rtol 1e-5..1e-11", nm, errs[0], errs[1], errs[2], errs[3]);
    ok(sl > 0.75 && sl < 1.25, "%s: global error proportional to tolerance (slope %.3f)", nm, sl);
    ok(errs[3] < errs[0] * 1e-4, "%s: tightening rtol 1e6x reduces the error > 1e4x", nm);
  }
}

static void test_fixed_orders(void) {
  /* Kepler problem, eccentricity 0.5, one period 2 pi: the exact solution returns to y0. */
  const double lo[3] = {4.7, 4.7, 2.7}, hi[3] = {5.3, 5.3, 3.3}, ecc = 0.5;
  for (int mi = 0; mi < 3; mi++) {
    opl_rk_method m = METHODS[mi];
    const char *nm = opl_rk_method_name(m);
    double hs[4], errs[4];
    const double T = 2 * M_PI;
    for (int i = 0; i < 4; i++) {
      int N = 200 << i;
      const double y0[4] = {1 - ecc, 0, 0, sqrt((1 + ecc) / (1 - ecc))};
      double y[4] = {y0[0], y0[1], y0[2], y0[3]};
      opl_rk_stats st;
      hs[i] = T / N;
      int s = run(m, f_kepler, NULL, 4, y, 0, T, 1e-6, 1e-6, hs[i], &st, NULL);
      errs[i] = 0;
      for (int j = 0; j < 4; j++) errs[i] = fmax(errs[i], fabs(y[j] - y0[j]));
      if (i == 0) {
        ok(s == OPL_OK && st.accepted == N && st.rejected == 0,
           "%s fixed step: %d steps, no rejections (%lld, %lld)", nm, N, (long long)st.accepted,
           (long long)st.rejected);
        int stages = opl_rk_tableau(m, NULL, NULL, NULL, NULL, NULL, NULL);
        ok(st.nfev == 1 + (int64_t)(stages - 1) * N,
           "%s FSAL: nfev = %lld = 1 + (%d - 1) * %d steps", nm, (long long)st.nfev, stages, N);
      }
    }
    double sl = slope(4, hs, errs);
    diag("%s: errors %.3g %.3g %.3g %.3g", nm, errs[0], errs[1], errs[2], errs[3]);
    ok(sl >= lo[mi] && sl <= hi[mi], "%s: measured order %.3f in [%.1f, %.1f]", nm, sl, lo[mi], hi[mi]);
  }
}

static void test_nfev_adaptive(void) {
  for (int mi = 0; mi < 3; mi++) {
    opl_rk_method m = METHODS[mi];
    prob p = {.lam = 1};
    double z[2] = {10, 5};
    opl_rk_stats st;
    run(m, f_lv, &p, 2, z, 0, 10, 1e-7, 1e-9, 0, &st, NULL);
    int stages = opl_rk_tableau(m, NULL, NULL, NULL, NULL, NULL, NULL);
    ok(st.nfev == p.calls && st.nfev == 2 + (stages - 1) * (st.accepted + st.rejected),
       "%s adaptive: nfev %lld = calls %ld = 2 + (s-1)(accepted %lld + rejected %lld)",
       opl_rk_method_name(m), (long long)st.nfev, p.calls, (long long)st.accepted, (long long)st.rejected);
    ok(st.rejected < st.accepted / 4 + 3, "%s: few rejections on a smooth problem (%lld of %lld)",
       opl_rk_method_name(m), (long long)st.rejected, (long long)st.accepted);
    ok(st.err_last <= 1 && st.err_last > 0 && st.h_last > 0 && st.t == 10,
       "%s: stats report last error %.3g, last h %.3g, t %g", opl_rk_method_name(m), st.err_last,
       st.h_last, st.t);
  }
}

static void test_stiffness(void) {
  for (int mi = 0; mi < 3; mi++) {
    opl_rk_method m = METHODS[mi];
    const char *nm = opl_rk_method_name(m);
    prob p = {.lam = 1000};
    double y[1] = {0};
    opl_rk_stats st;
    int s = run(m, f_stiff, &p, 1, y, 0, 1, 1e-6, 1e-9, 0, &st, NULL);
    ok(s == OPL_OK, "%s: stiff problem integrates (%lld steps)", nm, (long long)st.accepted);
    ok(st.stiff_last > 500 && st.stiff_last < 2000, "%s: stiff y' = -1000(y - cos t): rho = %.4g ~ 1000",
       nm, st.stiff_last);
    ok(st.stiff_last * st.h_next > 1.5 && st.stiff_last * st.h_next < 4,
       "%s: stiff problem runs at the stability limit (h rho = %.3g, h = %.3g)", nm,
       st.stiff_last * st.h_next, st.h_next);
    prob q = {.lam = 1};
    y[0] = 1;
    s = run(m, f_decay, &q, 1, y, 0, 5, 1e-6, 1e-9, 0, &st, NULL);
    ok(st.stiff_max < 3 && st.stiff_max > 0.3, "%s: non-stiff y' = -y: max rho = %.3g ~ 1", nm, st.stiff_max);
  }
}

/* After a rejection the next step does not grow; the error of accepted steps stays <= 1. */
static void test_controller(void) {
  for (int mi = 0; mi < 3; mi++) {
    opl_rk_vops ops = opl_rk_vops_double(2);
    ops.rhs = f_lv;
    opl_err err;
    opl_rk *rk = opl_rk_create(&ops, NULL, METHODS[mi], &err);
    opl_rk_set_tolerances(rk, 1e-9, 1e-9, &err);
    opl_rk_set_initial_step(rk, 0.5, &err); /* far too large: forces rejections */
    double y0[2] = {10, 5};
    opl_rk_init(rk, 0, y0, &err);
    int after_reject = 0, grew = 0, big_err = 0, nsteps = 0;
    opl_rk_stats st;
    int64_t rej = 0;
    while (opl_rk_time(rk) < 10 && nsteps < 100000) {
      if (opl_rk_step(rk, 10, &err)) break;
      nsteps++;
      opl_rk_get_stats(rk, &st);
      if (st.rejected > rej) {
        after_reject++;
        if (st.h_next > st.h_last * (1 + 1e-15)) grew++;
      }
      if (st.err_last > 1) big_err++;
      rej = st.rejected;
    }
    ok(after_reject >= 1 && grew == 0,
       "%s: %d steps followed rejections, none proposes a larger h", opl_rk_method_name(METHODS[mi]),
       after_reject);
    ok(big_err == 0 && opl_rk_time(rk) == 10, "%s: every accepted error norm <= 1 (%d steps)",
       opl_rk_method_name(METHODS[mi]), nsteps);
    opl_rk_free(&rk);
  }
}

/* A recoverable f failure shrinks h by 4 regardless of the error: the easy step that follows
 * (error << 1) must still not propose growth. */
static void test_no_growth_after_failure(void) {
  opl_rk_vops ops = opl_rk_vops_double(1);
  ops.rhs = f_decay_domain;
  prob p = {0};
  opl_err err;
  opl_rk *rk = opl_rk_create(&ops, &p, OPL_RK_DP5, &err);
  opl_rk_set_tolerances(rk, 1e-2, 1e-2, &err);
  opl_rk_set_initial_step(rk, 20, &err);
  double y0[1] = {1};
  opl_rk_init(rk, 0, y0, &err);
  int s = opl_rk_step(rk, 100, &err);
  opl_rk_stats st;
  opl_rk_get_stats(rk, &st);
  ok(s == OPL_OK && st.rhs_fails >= 1 && st.err_last < 0.1 && st.h_next <= st.h_last,
     "after %lld f failures an easy step (error %.2g) keeps h: next %.3g <= last %.3g",
     (long long)st.rhs_fails, st.err_last, st.h_next, st.h_last);
  opl_rk_step(rk, 100, &err);
  opl_rk_get_stats(rk, &st);
  ok(st.h_next > st.h_last, "the step after that grows again (%.3g -> %.3g)", st.h_last, st.h_next);
  opl_rk_free(&rk);
}

/* ------------------------------------------------------------ failures */

static void test_failures(void) {
  opl_err err;
  /* > 0: the step is rejected and retried smaller. */
  {
    opl_rk_vops ops = opl_rk_vops_double(1);
    ops.rhs = f_decay_domain;
    prob p = {0};
    opl_rk *rk = opl_rk_create(&ops, &p, OPL_RK_DP5, &err);
    opl_rk_set_tolerances(rk, 1e-8, 1e-10, &err);
    opl_rk_set_initial_step(rk, 50, &err);
    double y[1] = {1}, tr;
    int s = opl_rk_integrate(rk, 0, 3, y, &tr, &err);
    opl_rk_stats st;
    opl_rk_get_stats(rk, &st);
    ok(s == OPL_OK && tr == 3, "f > 0 is recoverable: integration completes (%s)", s ? err.msg : "ok");
    ok(st.rhs_fails >= 1 && st.rhs_fails == p.mode && st.rejected >= st.rhs_fails,
       "f > 0 rejected the step: %lld failures, %lld rejections", (long long)st.rhs_fails,
       (long long)st.rejected);
    is_close(y[0], exp(-3.0), 1e-6, 0, "retried with smaller steps, still accurate");
    /* Fixed-step mode cannot shrink. */
    opl_rk_set_fixed_step(rk, 20, &err);
    y[0] = 1;
    s = opl_rk_integrate(rk, 0, 40, y, &tr, &err);
    ok(s == OPL_ERR_CONVERGENCE && strstr(err.msg, "fixed-step"), "fixed step + f > 0: %s", err.msg);
    opl_rk_free(&rk);
  }
  /* < 0: fatal. */
  {
    prob p = {.fail_after = 0.5};
    double y[1] = {1}, tr;
    opl_rk_vops ops = opl_rk_vops_double(1);
    ops.rhs = f_decay_fatal;
    opl_rk *rk = opl_rk_create(&ops, &p, OPL_RK_TSIT5, &err);
    int s = opl_rk_integrate(rk, 0, 2, y, &tr, &err);
    ok(s == OPL_ERR_STATE && strstr(err.msg, "returned -1"), "f < 0 stops: %s", err.msg);
    ok(tr <= 0.5 && tr > 0 && fabs(y[0] - exp(-tr)) < 1e-5,
       "state left at the last accepted step t = %g", tr);
    opl_rk_free(&rk);
  }
  /* NaN: OPL_ERR_NONFINITE with t. */
  for (int mi = 0; mi < 3; mi++) {
    prob p = {.fail_after = 0.5};
    double y[1] = {1}, tr;
    opl_rk_vops ops = opl_rk_vops_double(1);
    ops.rhs = f_decay_nan;
    opl_rk *rk = opl_rk_create(&ops, &p, METHODS[mi], &err);
    int s = opl_rk_integrate(rk, 0, 2, y, &tr, &err);
    ok(s == OPL_ERR_NONFINITE && strstr(err.msg, "t = 0.4"), "%s: NaN in f stops: %s",
       opl_rk_method_name(METHODS[mi]), err.msg);
    ok(isfinite(y[0]) && tr > 0.49 && tr <= 0.5, "%s: finite state kept at t = %.6g",
       opl_rk_method_name(METHODS[mi]), tr);
    /* NaN in y0 and in f(t0, y0). */
    y[0] = NAN;
    s = opl_rk_integrate(rk, 0, 2, y, &tr, &err);
    ok(s == OPL_ERR_NONFINITE && strstr(err.msg, "y0"), "NaN y0: %s", err.msg);
    y[0] = 1;
    s = opl_rk_integrate(rk, 0.7, 2, y, &tr, &err);
    ok(s == OPL_ERR_NONFINITE && strstr(err.msg, "f(t0, y0)"), "NaN f(t0, y0): %s", err.msg);
    s = opl_rk_advance(rk, 3, &err);
    ok(s == OPL_ERR_STATE, "advance after a failed init: %s", err.msg);
    opl_rk_free(&rk);
  }
  /* Too many steps. */
  {
    prob p = {.lam = 1};
    double y[1] = {1}, tr;
    opl_rk_vops ops = opl_rk_vops_double(1);
    ops.rhs = f_decay;
    opl_rk *rk = opl_rk_create(&ops, &p, OPL_RK_DP5, &err);
    opl_rk_set_tolerances(rk, 1e-10, 1e-12, &err);
    opl_rk_set_max_steps(rk, 5, &err);
    int s = opl_rk_integrate(rk, 0, 100, y, &tr, &err);
    opl_rk_stats st;
    opl_rk_get_stats(rk, &st);
    ok(s == OPL_ERR_CONVERGENCE && strstr(err.msg, "max_steps = 5"), "max steps: %s", err.msg);
    ok(st.accepted + st.rejected == 5 && tr > 0 && tr < 100, "stopped after 5 attempts at t = %g", tr);
    /* max steps counts per advance call: 5 more are allowed. */
    s = opl_rk_advance(rk, 100, &err);
    opl_rk_get_stats(rk, &st);
    ok(s == OPL_ERR_CONVERGENCE && st.accepted + st.rejected == 10, "a new advance gets a new budget");
    opl_rk_free(&rk);
  }
  /* Step-size underflow: y' = y^2 blows up at t = 1. */
  {
    double y[1] = {1}, tr;
    opl_rk_vops ops = opl_rk_vops_double(1);
    ops.rhs = f_blowup;
    opl_rk *rk = opl_rk_create(&ops, NULL, OPL_RK_DP5, &err);
    int s = opl_rk_integrate(rk, 0, 2, y, &tr, &err);
    ok(s == OPL_ERR_CONVERGENCE && strstr(err.msg, "underflow") && fabs(tr - 1) < 1e-5 && y[0] > 1e8,
       "blow-up near t = 1 (t = %.9g, y = %.3g): %s", tr, y[0], err.msg);
    opl_rk_set_min_step(rk, 1e-3, &err);
    y[0] = 1;
    s = opl_rk_integrate(rk, 0, 2, y, &tr, &err);
    ok(s == OPL_ERR_CONVERGENCE && strstr(err.msg, "underflow") && tr < 1,
       "blow-up with hmin 1e-3 stops early (t = %g): %s", tr, err.msg);
    opl_rk_free(&rk);
  }
}

/* ------------------------------------------------------------ abstract state */

/* Vectors held through a handle (the way tape tensors would be): a slot pointing to storage. */
typedef struct slot {
  double *x;
} slot;
static void *sv_new(const opl_rk_vops *o) {
  slot *s = malloc(sizeof *s);
  if (s) s->x = calloc((size_t)o->n, sizeof(double));
  return s;
}
static void sv_free(const opl_rk_vops *o, void *v) {
  (void)o;
  if (v) free(((slot *)v)->x);
  free(v);
}
static int sv_lincomb_calls;
static void sv_lincomb(const opl_rk_vops *o, int m, const double *a, const void *const *x, void *y) {
  sv_lincomb_calls++;
  double *yy = ((slot *)y)->x;
  for (int64_t i = 0; i < o->n; i++) {
    double s = 0;
    for (int j = 0; j < m; j++) s += a[j] * ((const slot *)x[j])->x[i];
    yy[i] = s;
  }
}
static double sv_wrms(const opl_rk_vops *o, const void *e, const void *ya, const void *yb, double rtol,
                      double atol) {
  double s = 0;
  for (int64_t i = 0; i < o->n; i++) {
    double w = atol + rtol * fmax(fabs(((const slot *)ya)->x[i]), fabs(((const slot *)yb)->x[i]));
    double r = ((const slot *)e)->x[i] / w;
    s += r * r;
  }
  return sqrt(s / (double)o->n);
}
static int sv_lv(void *u, double t, const void *y, void *dy) {
  return f_lv(u, t, ((const slot *)y)->x, ((slot *)dy)->x);
}

static void test_abstract_vops(void) {
  opl_rk_vops ops = {.n = 2, .vnew = sv_new, .vfree = sv_free, .lincomb = sv_lincomb,
                     .wrms = sv_wrms, .rhs = sv_lv};
  opl_err err;
  opl_rk *rk = opl_rk_create(&ops, NULL, OPL_RK_DP5, &err);
  ok(rk != NULL, "create on custom (handle) vops");
  opl_rk_set_tolerances(rk, 1e-8, 1e-10, &err);
  slot *y = sv_new(&ops);
  y->x[0] = 10, y->x[1] = 5;
  double tr;
  sv_lincomb_calls = 0;
  int s = opl_rk_integrate(rk, 0, 3, y, &tr, &err);
  opl_rk_stats st;
  opl_rk_get_stats(rk, &st);
  double z[2] = {10, 5};
  run(OPL_RK_DP5, f_lv, NULL, 2, z, 0, 3, 1e-8, 1e-10, 0, NULL, NULL);
  ok(s == OPL_OK && fabs(y->x[0] - z[0]) < 1e-12 && fabs(y->x[1] - z[1]) < 1e-12,
     "handle vops and double vops give the same solution (%.15g vs %.15g)", y->x[0], z[0]);
  /* One lincomb per stage state, one for y1, one for the error, two for stiffness; at init one
   * copy of y0, two in the starting-step choice, one final copy-out. */
  long per = 5 + 1 + 1;
  long want = (long)(st.accepted + st.rejected) * per + 2 * (long)st.accepted + 1 + 2 + 1;
  ok(sv_lincomb_calls == want, "one vector combination per stage (%d calls, expected %ld)",
     sv_lincomb_calls, want);
  sv_free(&ops, y);
  opl_rk_free(&rk);
}

/* ------------------------------------------------------------ hooks, start step, replay */

/* Hooks on the double vops count calls and check what the accepted hook is given. */
typedef struct hook_log {
  long marks, discards, accepts;
  int n, info_ok;
  double last_err, last_rho, sum_err_h;
} hook_log;
static hook_log HL;
static void hk_mark(const opl_rk_vops *o) {
  (void)o;
  HL.marks++;
}
static void hk_discard(const opl_rk_vops *o) {
  (void)o;
  HL.discards++;
}
static void hk_accepted(const opl_rk_vops *o, void *user, const opl_rk_step_info *in) {
  (void)user;
  HL.accepts++;
  /* The error and stiffness norms recomputed from the vectors given are the controller's. */
  double e = o->wrms(o, in->e, in->y0, in->y1, in->rtol, in->atol);
  double nk = o->wrms(o, in->dk, in->y0, in->y0, 0, 1), ng = o->wrms(o, in->dg, in->y0, in->y0, 0, 1);
  double rho = ng > 0 ? nk / ng : 0;
  HL.info_ok &= e == in->err && rho == in->rho && in->tend > in->t && in->h > 0 && in->s >= 4 &&
                in->e != in->dk && in->dk != in->dg;
  HL.last_err = in->err, HL.last_rho = in->rho;
  HL.sum_err_h += in->err * in->h;
}

static void test_hooks(void) {
  opl_err err = {0};
  for (int mi = 0; mi < 3; mi++) {
    const opl_rk_method m = METHODS[mi];
    /* the same solve with and without hooks */
    double y0[2] = {10, 5}, ya[2], yb[2];
    opl_rk_stats sa, sb;
    memcpy(ya, y0, sizeof ya);
    run(m, f_lv, NULL, 2, ya, 0, 3, 1e-8, 1e-10, 0, &sa, NULL);
    opl_rk_vops ops = opl_rk_vops_double(2);
    ops.rhs = f_lv;
    ops.mark = hk_mark;
    ops.discard = hk_discard;
    ops.accepted = hk_accepted;
    opl_rk *rk = opl_rk_create(&ops, NULL, m, &err);
    opl_rk_set_tolerances(rk, 1e-8, 1e-10, &err);
    opl_rk_set_initial_step(rk, 0.5, &err); /* rejected at first */
    memset(&HL, 0, sizeof HL);
    HL.info_ok = 1;
    memcpy(yb, y0, sizeof yb);
    int s = opl_rk_integrate(rk, 0, 3, yb, NULL, &err);
    opl_rk_get_stats(rk, &sb);
    ok(s == OPL_OK && HL.marks == sb.accepted + sb.rejected && HL.discards == sb.rejected &&
           HL.accepts == sb.accepted && sb.rejected > 0,
       "%s: mark per attempt (%ld), discard per rejection (%ld), accepted hook per step (%ld)",
       opl_rk_method_name(m), HL.marks, HL.discards, HL.accepts);
    ok(HL.info_ok && HL.last_err == sb.err_last && HL.last_rho == sb.stiff_last &&
           HL.sum_err_h == sb.err_h_sum,
       "%s: the accepted hook sees the step's error vector, stiffness differences and norms",
       opl_rk_method_name(m));
    opl_rk_free(&rk);
    /* hooks on, automatic first step: same solution bits as without hooks */
    opl_rk_set_initial_step(rk = opl_rk_create(&ops, NULL, m, &err), 0, &err);
    opl_rk_set_tolerances(rk, 1e-8, 1e-10, &err);
    memset(&HL, 0, sizeof HL);
    HL.info_ok = 1;
    memcpy(yb, y0, sizeof yb);
    opl_rk_integrate(rk, 0, 3, yb, NULL, &err);
    opl_rk_get_stats(rk, &sb);
    ok(yb[0] == ya[0] && yb[1] == ya[1] && sb.accepted == sa.accepted && sb.nfev == sa.nfev &&
           HL.marks == sb.accepted + sb.rejected + 1 && HL.discards == sb.rejected + 1,
       "%s: hooks change nothing (same bits, %lld steps); the starting step is one marked and "
       "discarded trial", opl_rk_method_name(m), (long long)sb.accepted);
    /* opl_rk_start_step gives the h of the first attempt; replaying the recorded steps with
     * opl_rk_take_step reproduces the states bit for bit. */
    opl_rk_init(rk, 0, y0, &err);
    double h0 = 0;
    s = opl_rk_start_step(rk, 3, &h0, &err);
    int64_t nf = 0;
    {
      opl_rk_stats st;
      opl_rk_get_stats(rk, &st);
      nf = st.nfev;
    }
    static double ts[8192], hs[8192];
    int ns = 0;
    opl_rk_init(rk, 0, y0, &err);
    int first_ok = 1;
    while (opl_rk_time(rk) < 3 && ns < 8192) {
      ts[ns] = opl_rk_time(rk);
      opl_rk_step(rk, 3, &err);
      opl_rk_stats st;
      opl_rk_get_stats(rk, &st);
      if (ns == 0 && st.rejected == 0) first_ok = st.h_last == h0;
      hs[ns] = st.h_last, ts[ns] = opl_rk_time(rk);
      ns++;
    }
    double yr[2];
    opl_rk_get_state(rk, yr);
    ok(s == OPL_OK && first_ok && h0 > 0 && nf == 2, "%s: opl_rk_start_step h = %.4g is the first "
       "step's (one trial evaluation)", opl_rk_method_name(m), h0);
    opl_rk_init(rk, 0, y0, &err);
    int rs = OPL_OK;
    for (int j = 0; j < ns && !rs; j++) rs = opl_rk_take_step(rk, hs[j], ts[j], &err);
    double yt[2];
    opl_rk_get_state(rk, yt);
    ok(rs == OPL_OK && yt[0] == yr[0] && yt[1] == yr[1] && opl_rk_time(rk) == 3,
       "%s: replaying %d steps with opl_rk_take_step gives the same bits", opl_rk_method_name(m), ns);
    ok(opl_rk_take_step(rk, 0.1, 3, &err) == OPL_ERR_ARG && strstr(err.msg, "tend = 3"),
       "%s: take_step to a tend not after t: %s", opl_rk_method_name(m), err.msg);
    ok(opl_rk_start_step(rk, 2, &h0, &err) == OPL_ERR_ARG && strstr(err.msg, "tstop = 2"),
       "%s: start_step towards a past time: %s", opl_rk_method_name(m), err.msg);
    opl_rk_free(&rk);
  }
  opl_rk_vops ops = opl_rk_vops_double(2);
  ops.rhs = f_lv;
  ops.mark = hk_mark;
  ok(opl_rk_create(&ops, NULL, OPL_RK_DP5, &err) == NULL && err.status == OPL_ERR_ARG &&
         strstr(err.msg, "sets mark but not discard"), "mark without discard: %s", err.msg);
}

/* A large state exercises the OpenMP paths of the double vops. */
static void test_large(void) {
  int64_t n = 40000;
  double *y = malloc((size_t)n * sizeof *y);
  for (int64_t i = 0; i < n; i++) y[i] = 1 + (double)(i % 7);
  opl_rk_stats st;
  int s = run(OPL_RK_DP5, f_many, &n, n, y, 0, 2, 1e-9, 1e-12, 0, &st, NULL);
  double worst = 0;
  for (int64_t i = 0; i < n; i++) {
    double want = (1 + (double)(i % 7)) * exp(-(0.5 + 1.5 * (double)i / (double)n) * 2);
    worst = fmax(worst, fabs(y[i] - want) / want);
  }
  ok(s == OPL_OK && worst < 1e-7, "n = %lld decays: max rel error %.2g in %lld steps", (long long)n,
     worst, (long long)st.accepted);
  free(y);
}

/* ------------------------------------------------------------ bad input */

static void test_bad_args(void) {
  opl_err err = {0};
  ok(opl_rk_create(NULL, NULL, OPL_RK_DP5, &err) == NULL && err.status == OPL_ERR_ARG &&
         strstr(err.msg, "vops is NULL"), "NULL vops: %s", err.msg);
  opl_rk_vops ops = opl_rk_vops_double(3);
  ok(opl_rk_create(&ops, NULL, OPL_RK_DP5, &err) == NULL && err.status == OPL_ERR_ARG &&
         strstr(err.msg, "rhs is NULL"), "missing rhs: %s", err.msg);
  ops.rhs = f_osc;
  ok(opl_rk_create(&ops, NULL, (opl_rk_method)7, &err) == NULL && strstr(err.msg, "method = 7"),
     "bad method: %s", err.msg);
  opl_rk_vops ops0 = opl_rk_vops_double(0);
  ops0.rhs = f_osc;
  ok(opl_rk_create(&ops0, NULL, OPL_RK_DP5, &err) == NULL && strstr(err.msg, "n = 0"),
     "n = 0: %s", err.msg);
  ok(opl_rk_create(NULL, NULL, OPL_RK_DP5, NULL) == NULL, "NULL err is allowed");
  opl_rk *rk = opl_rk_create(&ops, NULL, OPL_RK_DP5, &err);
  int s = opl_rk_set_tolerances(rk, -1e-3, 1e-6, &err);
  ok(s == OPL_ERR_ARG && strstr(err.msg, "rtol = -0.001"), "rtol < 0: %s", err.msg);
  s = opl_rk_set_tolerances(rk, 0, 1e-6, &err);
  ok(s == OPL_ERR_ARG && strstr(err.msg, "rtol = 0"), "rtol = 0: %s", err.msg);
  s = opl_rk_set_tolerances(rk, 1e-6, NAN, &err);
  ok(s == OPL_ERR_ARG && strstr(err.msg, "atol = nan"), "atol NaN: %s", err.msg);
  s = opl_rk_set_initial_step(rk, -2, &err);
  ok(s == OPL_ERR_ARG && strstr(err.msg, "h0 = -2"), "h0 < 0: %s", err.msg);
  s = opl_rk_set_max_steps(rk, 0, &err);
  ok(s == OPL_ERR_ARG && strstr(err.msg, "max_steps = 0"), "max_steps 0: %s", err.msg);
  s = opl_rk_set_max_step(rk, -1, &err);
  ok(s == OPL_ERR_ARG && strstr(err.msg, "hmax = -1"), "hmax < 0: %s", err.msg);
  s = opl_rk_set_min_step(rk, -1, &err);
  ok(s == OPL_ERR_ARG && strstr(err.msg, "hmin = -1"), "hmin < 0: %s", err.msg);
  s = opl_rk_set_fixed_step(rk, INFINITY, &err);
  ok(s == OPL_ERR_ARG && strstr(err.msg, "h = inf"), "fixed h = inf: %s", err.msg);
  double y[3] = {1, 0, 0}, tr = -1;
  s = opl_rk_integrate(rk, 1, 0.5, y, &tr, &err);
  ok(s == OPL_ERR_ARG && strstr(err.msg, "t1 = 0.5") && strstr(err.msg, "t0 = 1") && tr == 1 &&
         y[0] == 1, "t1 < t0: %s", err.msg);
  s = opl_rk_step(rk, 1, &err);
  ok(s == OPL_ERR_STATE && strstr(err.msg, "not initialized"), "step before init: %s", err.msg);
  opl_rk_init(rk, 0, y, &err);
  s = opl_rk_advance(rk, -1, &err);
  ok(s == OPL_ERR_ARG && strstr(err.msg, "tout = -1"), "tout < t: %s", err.msg);
  s = opl_rk_init(rk, NAN, y, &err);
  ok(s == OPL_ERR_ARG && strstr(err.msg, "t0 = nan"), "t0 NaN: %s", err.msg);
  s = opl_rk_integrate(rk, 0, 0, y, &tr, &err);
  ok(s == OPL_OK && tr == 0 && y[0] == 1, "t1 == t0 is a no-op");
  opl_rk_free(&rk);
}

int main(void) {
  tap_begin();
  test_tableaus();
  test_exact();
  test_snapshots();
  test_tolerance_proportionality();
  test_fixed_orders();
  test_nfev_adaptive();
  test_stiffness();
  test_controller();
  test_no_growth_after_failure();
  test_failures();
  test_abstract_vops();
  test_hooks();
  test_large();
  test_bad_args();
  return tap_end();
}
