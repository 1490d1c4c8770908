/* Trajectory solver, Burgers (pde/solve.h): the Cole-Hopf solution of the PINN benchmark
 * (nu = 0.01/pi, u0 = -sin(pi x) on [-1, 1]), the energy budget along it by Gauss-Legendre
 * quadrature of snapshots, convergence orders (ETDRK4 4, DP5 / Tsit5 5, BS3 3, CN-Heun 2,
 * CN-Euler 1), the presets with their measured time errors, the 2x refinement check, storage,
 * custom times, and bad input (including blow-ups that report their time). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "tests/tap.h"
#include "pde/solve.h"
#include "tests/pde/pdetest.h"

/* Least-squares slope of log err against log dt over m points. */
static double loglog_slope(int m, const double *dt, const double *err) {
  double mx = 0, my = 0, sxy = 0, sxx = 0;
  for (int i = 0; i < m; i++) mx += log(dt[i]) / m, my += log(err[i]) / m;
  for (int i = 0; i < m; i++) {
    double dx = log(dt[i]) - mx;
    sxy += dx * (log(err[i]) - my);
    sxx += dx * dx;
  }
  return sxy / sxx;
}

/* Gauss-Legendre nodes x[K] and weights w[K] on [a, b] (Newton on the three-term recurrence
 * of P_K, started at the Chebyshev-like guesses cos(pi (i + 3/4) / (K + 1/2))). */
static void gauss_legendre(int K, double a, double b, double *x, double *w) {
  for (int i = 0; i < K; i++) {
    double z = cos(M_PI * (i + 0.75) / (K + 0.5)), dp = 1;
    for (int it = 0; it < 100; it++) {
      double p0 = 1, p1 = z;
      for (int k = 2; k <= K; k++) {
        double p2 = ((2 * k - 1) * z * p1 - (k - 1) * p0) / k;
        p0 = p1, p1 = p2;
      }
      dp = K * (z * p1 - p0) / (z * z - 1);
      double dz = p1 / dp;
      z -= dz;
      if (fabs(dz) < 1e-16) break;
    }
    x[K - 1 - i] = 0.5 * (a + b) + 0.5 * (b - a) * z;
    w[K - 1 - i] = (b - a) / ((1 - z * z) * dp * dp);
  }
}

/* The PINN benchmark on [-1, 1] is solved on the periodic grid [0, 2) with x_grid = x + 1:
 * u0(x_grid) = -sin(pi (x_grid - 1)) = sin(pi x_grid). */
static const double NU_CH = 0.01 / M_PI;
static void ch_initial(int n, double *u0) {
  for (int i = 0; i < n; i++) u0[i] = sin(M_PI * 2.0 * i / n);
}
static double ch_error(int n, const double *u, double t, double xcut) {
  double m = 0;
  for (int i = 0; i < n; i++) {
    double x = 2.0 * i / n - 1;
    if (fabs(x) >= xcut) m = fmax(m, fabs(u[i] - opl_burgers_cole_hopf(x, t, NU_CH)));
  }
  return m;
}

/* Against Cole-Hopf. Measured (ETDRK4): n = 512, dt = 2.5e-4, t <= 0.25: 2e-12 (resolution
 * takes over near t = 0.3: 4.7e-9 at n = 512, 1e-11 at n = 1024); n = 1024, dt = 1e-4, up to
 * t = 1/pi (gradient -152 at x = 0): 1.1e-12 over the whole interval. */
static void test_cole_hopf(void) {
  const int nt = 10;
  struct { int n; double T, dt, xcut; } runs[] = {{512, 0.25, 2.5e-4, 0}, {1024, 1 / M_PI, 1e-4, 0},
                                                 {512, 1 / M_PI, 1e-4, 0.2}};
  const double tol[] = {1e-10, 1e-10, 1e-6};
  for (int r = 0; r < 3; r++) {
    if (sanitized() && r == 1) {
      skip("sanitized build", "Cole-Hopf at n = 1024 up to t = 1/pi");
      continue;
    }
    const int n = runs[r].n;
    opl_burgers_params p = {n, 2.0, NU_CH};
    double *u0 = opl_pde_alloc(n), *out = opl_pde_alloc((int64_t)nt * n);
    ch_initial(n, u0);
    opl_solve_opts o = test_opts(runs[r].T, nt, runs[r].dt);
    opl_solve_stats st;
    opl_err e = {0};
    int rc = opl_solve_burgers(&p, u0, &o, out, &st, &e);
    double worst = 0, last = 0;
    for (int j = 0; j < nt; j++) {
      last = ch_error(n, out + (int64_t)j * n, runs[r].T * (j + 1) / nt, runs[r].xcut);
      worst = fmax(worst, last);
    }
    diag("Cole-Hopf n = %d, dt = %g, t <= %.4f, |x| >= %g: max error %.3e (at the end %.3e), %lld steps, %.2f s", n,
         runs[r].dt, runs[r].T, runs[r].xcut, worst, last, (long long)st.steps, st.wall);
    ok(rc == OPL_OK && worst < tol[r], "Cole-Hopf, n = %d, t <= %.3f, |x| >= %g: max error %.2e < %g (%s)", n, runs[r].T,
       runs[r].xcut, worst, tol[r], e.msg);
    opl_pde_free(u0);
    opl_pde_free(out);
  }
}

/* The energy budget along the Cole-Hopf solution: E(T) - E(0) = -int_0^T D dt with
 * D = nu int u_x^2 (opl_burgers_dissipation, the exact rate of the semi-discrete energy), the
 * integral by 24-point Gauss-Legendre quadrature of snapshots at the nodes (custom output
 * times; D(t) is analytic in t, so the quadrature error is far below the solver's). */
static void test_energy_budget(void) {
  const int n = sanitized() ? 256 : 1024, K = 24;
  const double T = sanitized() ? 0.2 : 1 / M_PI;
  opl_burgers_params p = {n, 2.0, NU_CH};
  double times[25], w[24];
  gauss_legendre(K, 0, T, times, w);
  times[K] = T;
  double wsum = 0, m3 = 0;
  for (int i = 0; i < K; i++) wsum += w[i], m3 += w[i] * pow(times[i], 3);
  ok(fabs(wsum - T) < 1e-14 && fabs(m3 - pow(T, 4) / 4) < 1e-15, "Gauss-Legendre rule integrates 1 and t^3");
  double *u0 = opl_pde_alloc(n), *out = opl_pde_alloc((int64_t)(K + 2) * n);
  ch_initial(n, u0);
  opl_solve_opts o = test_opts(T, K + 1, 1e-4);
  o.times = times;
  o.with_t0 = 1;
  opl_solve_stats st;
  opl_err e = {0};
  int rc = opl_solve_burgers(&p, u0, &o, out, &st, &e);
  ok(rc == OPL_OK && st.frames == K + 2, "solved at %d Gauss-Legendre times (%s)", K, e.msg);
  opl_burgers *b = opl_burgers_new(&p, NULL, OPL_GRID_ESTIMATE, NULL);
  double E0 = opl_burgers_energy(b, out), E1 = opl_burgers_energy(b, out + (int64_t)(K + 1) * n), diss = 0;
  for (int i = 0; i < K; i++) diss += w[i] * opl_burgers_dissipation(b, out + (int64_t)(i + 1) * n);
  double rel = fabs((E1 - E0) + diss) / fabs(E1 - E0);
  diag("energy budget n = %d, T = %.4f: E(0) = %.12f, E(T) - E(0) = %.12e, -int D = %.12e, relative mismatch %.2e", n,
       T, E0, E1 - E0, -diss, rel);
  ok(rel < 1e-9, "d/dt E = -nu int u_x^2 along the solution: relative mismatch %.2e < 1e-9", rel);
  /* the same budget with every other quadrature node dropped is visibly worse: the check can
   * tell a wrong integral */
  double diss2 = 0;
  double x12[12], w12[12];
  gauss_legendre(12, 0, T, x12, w12);
  for (int i = 0; i < 12; i++) diss2 += w12[i] * opl_burgers_dissipation(b, out + (int64_t)(2 * i + 1) * n);
  diag("  (a 12-point rule on the wrong nodes gives a mismatch %.2e)", fabs((E1 - E0) + diss2) / fabs(E1 - E0));
  opl_burgers_free(&b);
  opl_pde_free(u0);
  opl_pde_free(out);
}

/* Convergence orders on a smooth problem: Burgers with nu = 0.1 on [0, 2 pi), u0 = sin x +
 * 0.5 cos 2x + 0.2 sin(3x + 1), T = 1, errors at T against DP5 with fixed step 5e-4 (its own
 * error ~1e-17; the rounding floor of these runs is ~5e-14). The RK core runs in fixed-step
 * mode on 16 points (dealiased band |k| <= 5; on 32 points Tsit5, whose principal error
 * coefficient is small, is still pre-asymptotic where the rounding floor starts). */
static void test_orders(void) {
  struct { const char *name; int scheme, method, n; double dt0; double lo, hi; } runs[] = {
      {"ETDRK4", OPL_SCHEME_ETDRK4, 0, 32, 0.05, 3.6, 4.4},   {"DP5", OPL_SCHEME_RK, OPL_RK_DP5, 16, 0.05, 4.5, 5.5},
      {"Tsit5", OPL_SCHEME_RK, OPL_RK_TSIT5, 16, 0.05, 4.5, 5.5}, {"BS3", OPL_SCHEME_RK, OPL_RK_BS3, 16, 0.05, 2.7, 3.3},
      {"CN-Heun", OPL_SCHEME_CN_HEUN, 0, 16, 0.05, 1.8, 2.2},  {"CN-Euler", OPL_SCHEME_CN_EULER, 0, 16, 0.05, 0.9, 1.1},
  };
  for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++) {
    const int n = runs[r].n;
    opl_burgers_params p = {n, 2 * M_PI, 0.1};
    double *u0 = opl_pde_alloc(n), *ref = opl_pde_alloc(n), *out = opl_pde_alloc(n);
    for (int i = 0; i < n; i++) {
      double x = 2 * M_PI * i / n;
      u0[i] = sin(x) + 0.5 * cos(2 * x) + 0.2 * sin(3 * x + 1);
    }
    opl_solve_opts o = test_opts(1, 1, 5e-4);
    o.scheme = OPL_SCHEME_RK;
    o.rk_method = OPL_RK_DP5;
    opl_solve_burgers(&p, u0, &o, ref, NULL, NULL);
    o.scheme = runs[r].scheme;
    o.rk_method = runs[r].method;
    double dts[3], errs[3];
    for (int k = 0; k < 3; k++) {
      o.dt = dts[k] = runs[r].dt0 / (1 << k);
      opl_solve_stats st;
      opl_solve_burgers(&p, u0, &o, out, &st, NULL);
      errs[k] = maxabs_diff(n, out, ref);
      if (st.steps != (int64_t)llround(1 / o.dt)) errs[k] = NAN;
    }
    double s = loglog_slope(3, dts, errs);
    diag("%s (n = %d): dt = %g, %g, %g: errors %.3e, %.3e, %.3e", runs[r].name, n, dts[0], dts[1], dts[2], errs[0], errs[1],
         errs[2]);
    ok(s >= runs[r].lo && s <= runs[r].hi, "%s converges at order %.2f (in [%g, %g])", runs[r].name, s, runs[r].lo,
       runs[r].hi);
    opl_pde_free(u0);
    opl_pde_free(ref);
    opl_pde_free(out);
  }
}

/* Presets and their step sizes, with the time error of each default measured here.
 * "fno": nu = 0.1 leaves < 100 modes above 1e-14, so its time error at 8192 points equals
 * the one at 1024 (measured here): dt = 5e-4 gives ~3e-12 against dt / 8 (1e-3: 3e-11;
 * 2e-4: 1.6e-13; max |u0| ~ 2, max |u(1)| ~ 0.01 since mode 1 decays as e^(-4 pi^2 nu t)).
 * "chebfun": nu = 1e-3, measured at 2048 points up to T = 0.5: dt = 2e-4 gives ~1e-12 against
 * dt / 4 (1e-3: 2e-11; 5e-4: 2.4e-12 at 4096 points and T = 1, where the refinement check
 * against 8192 points with dt / 2 reads 1.2e-12 and 4.0e-12 on two draws). */
static void test_presets(void) {
  opl_burgers_params p;
  opl_solve_opts o;
  opl_grf_params gp;
  opl_err e = {0};
  int rc = opl_solve_burgers_preset("fno", &p, &o, &gp, &e);
  ok(rc == OPL_OK && p.n == 8192 && p.L == 1 && p.nu == 0.1 && o.T == 1 && o.nt == 1 && !o.with_t0 &&
         o.store_n == 1024 && o.store_mode == OPL_STORE_STRIDE && o.scheme == OPL_SCHEME_ETDRK4 && o.dt == 5e-4 &&
         gp.sigma == 25 && gp.tau == 5 && gp.alpha == 2 && gp.convention == OPL_GRF_GRF1,
     "preset fno: n 8192 -> 1024, nu 0.1, T 1, final time only, GRF burgers-fno, ETDRK4 dt 5e-4");
  rc = opl_solve_burgers_preset("chebfun", &p, &o, &gp, &e);
  ok(rc == OPL_OK && p.n == 4096 && p.nu == 1e-3 && o.nt == 200 && o.store_n == 1024 && o.dt == 2e-4 &&
         gp.sigma == 49 && gp.tau == 7 && gp.alpha == 2.5,
     "preset chebfun: n 4096 -> 1024, nu 1e-3, 200 snapshots, GRF burgers-chebfun, ETDRK4 dt 2e-4");
  ok(opl_solve_burgers_preset("pinn", &p, &o, NULL, &e) == OPL_ERR_ARG && strstr(e.msg, "\"pinn\""),
     "unknown preset (%s)", e.msg);
  if (sanitized()) {
    skip("sanitized build", "time errors of the presets");
    return;
  }
  for (int which = 0; which < 2; which++) {
    opl_solve_burgers_preset(which ? "chebfun" : "fno", &p, &o, &gp, NULL);
    p.n = 1024;
    o.store_n = 1024;
    if (which) o.T = 0.5, o.nt = 100;
    o.grid_flags = OPL_GRID_ESTIMATE;
    opl_grid *g = opl_grid_new_1d(p.n, p.L, OPL_GRID_ESTIMATE, NULL);
    opl_grf *f = opl_grf_new(g, &gp, NULL);
    double *u0 = opl_pde_alloc(p.n), *w = opl_pde_alloc(opl_grf_work_size(f));
    opl_grf_sample_seeded(f, 7, 0, u0, w);
    const int64_t fs = (int64_t)opl_solve_frames(&o) * o.store_n;
    double *a = opl_pde_alloc(fs), *b = opl_pde_alloc(fs);
    const double dt = o.dt, ref_div = which ? 4 : 8;
    opl_solve_stats st;
    rc = opl_solve_burgers(&p, u0, &o, a, &st, &e);
    o.dt = dt / ref_div;
    rc |= opl_solve_burgers(&p, u0, &o, b, NULL, &e);
    double err = maxabs_diff(fs, a, b), um = 0;
    for (int64_t i = 0; i < fs; i++) um = fmax(um, fabs(b[i]));
    diag("preset %s at n = %d: dt = %g vs dt/%g: time error %.2e (max|u| over the frames %.3f), %.2f s for %lld steps",
         which ? "chebfun" : "fno", p.n, dt, ref_div, err, um, st.wall, (long long)st.steps);
    ok(rc == OPL_OK && err < (which ? 1e-10 : 2e-11), "preset %s: the default step's time error %.2e is at rounding "
       "level", which ? "chebfun" : "fno", err);
    opl_grf_free(&f);
    opl_grid_free(&g);
    opl_pde_free(u0);
    opl_pde_free(w);
    opl_pde_free(a);
    opl_pde_free(b);
  }
}

/* The 2x refinement check of the chebfun preset on reduced grids: a grid that does not resolve
 * the fronts reads a large difference, one that does a small one, and the value equals an
 * independent re-solve at 2n, dt/2 compared on the stored points. On this draw (seed 7, index
 * 3) the check reads 6.4e-4 at 128 points, 1.3e-5 at 256, 5.2e-8 at 512 and 2.1e-12 at 1024:
 * the preset's 4096 points keep a margin for draws of larger amplitude (index 2 of seed 7,
 * max |u| = 0.74, reads 2.9e-2 at 256 points). */
static void test_refinement(void) {
  if (sanitized()) {
    skip("sanitized build", "refinement check");
    return;
  }
  double md[2];
  for (int r = 0; r < 2; r++) {
    opl_burgers_params p;
    opl_solve_opts o;
    opl_grf_params gp;
    opl_solve_burgers_preset("chebfun", &p, &o, &gp, NULL);
    p.n = r ? 1024 : 256;
    o.store_n = 256;
    o.nt = 20;
    o.grid_flags = OPL_GRID_ESTIMATE;
    opl_grid *g = opl_grid_new_1d(p.n, p.L, OPL_GRID_ESTIMATE, NULL);
    opl_grf *f = opl_grf_new(g, &gp, NULL);
    double *u0 = opl_pde_alloc(p.n), *w = opl_pde_alloc(opl_grf_work_size(f));
    opl_grf_sample_seeded(f, 7, 3, u0, w);
    opl_solve_stats st;
    opl_err e = {0};
    int rc = opl_solve_burgers_refinement(&p, u0, &o, NULL, &md[r], &st, &e);
    ok(rc == OPL_OK, "refinement check at n = %d (%s)", p.n, e.msg);
    diag("chebfun refinement at n = %d (vs %d, dt %g vs %g): max difference %.3e (fine solve %.2f s)", p.n, 2 * p.n, o.dt,
         o.dt / 2, md[r], st.wall);
    if (r == 0) {
      /* independent: solve both by hand and compare */
      const int64_t fs = (int64_t)o.nt * o.store_n;
      double *a = opl_pde_alloc(fs), *b = opl_pde_alloc(fs), *u2 = opl_pde_alloc(2 * p.n);
      opl_grid *g2 = opl_grid_new_1d(2 * p.n, p.L, OPL_GRID_ESTIMATE, NULL);
      double *rw = opl_pde_alloc(opl_grid_resample_work(g, g2));
      opl_grid_resample(g, u0, g2, u2, rw, NULL);
      opl_solve_burgers(&p, u0, &o, a, NULL, NULL);
      opl_burgers_params p2 = p;
      p2.n *= 2;
      opl_solve_opts o2 = o;
      o2.dt /= 2;
      opl_solve_burgers(&p2, u2, &o2, b, NULL, NULL);
      double want = maxabs_diff(fs, a, b), md2 = -1;
      ok(md[r] == want, "the check equals a re-solve at 2n, dt/2 (%.3e)", want);
      ok(opl_solve_burgers_refinement(&p, u0, &o, a, &md2, NULL, &e) == OPL_OK && md2 == want,
         "and reuses the caller's frames");
      opl_grid_free(&g2);
      opl_pde_free(a);
      opl_pde_free(b);
      opl_pde_free(u2);
      opl_pde_free(rw);
    }
    opl_grf_free(&f);
    opl_grid_free(&g);
    opl_pde_free(u0);
    opl_pde_free(w);
  }
  ok(md[0] > 1e-6 && md[1] < 1e-9, "under-resolved 256 points read %.2e, resolved 1024 points %.2e", md[0], md[1]);
}

/* The CN and RK paths agree with ETDRK4; custom times, with_t0, spectral storage of a
 * band-limited field, and a shared grid. */
static void test_paths(void) {
  const int n = 64;
  opl_burgers_params p = {n, 1.0, 0.05};
  double *u0 = opl_pde_alloc(n);
  for (int i = 0; i < n; i++) u0[i] = 0.5 * sin(2 * M_PI * i / n) + 0.2 * cos(6 * M_PI * i / n);
  const int64_t F = 4;
  double *a = opl_pde_alloc(F * n), *b = opl_pde_alloc(F * n);
  double times[3] = {0.05, 0.125, 0.3};
  opl_solve_opts o = test_opts(0.3, 3, 1e-3);
  o.times = times;
  o.with_t0 = 1;
  opl_solve_stats st;
  opl_err e = {0};
  int rc = opl_solve_burgers(&p, u0, &o, a, &st, &e);
  ok(rc == OPL_OK && st.frames == 4 && st.steps == 300 && maxabs_diff(n, a, u0) == 0,
     "custom times: 50 + 75 + 175 steps of 1e-3, frame 0 = u0 (%lld steps)", (long long)st.steps);
  struct { int scheme, method; double dt, tol; const char *name; } alt[] = {
      {OPL_SCHEME_RK, OPL_RK_DP5, 0, 1e-8, "rk dp5 adaptive"}, {OPL_SCHEME_RK, OPL_RK_TSIT5, 0, 1e-8, "rk tsit5 adaptive"},
      {OPL_SCHEME_RK, OPL_RK_BS3, 0, 1e-7, "rk bs3 adaptive"}, {OPL_SCHEME_CN_HEUN, 0, 1e-4, 1e-7, "cn-heun dt 1e-4"},
      {OPL_SCHEME_CN_EULER, 0, 1e-5, 1e-4, "cn-euler dt 1e-5"}};
  for (size_t k = 0; k < sizeof alt / sizeof alt[0]; k++) {
    opl_solve_opts q = o;
    q.scheme = alt[k].scheme, q.rk_method = alt[k].method, q.dt = alt[k].dt, q.rtol = 1e-10, q.atol = 1e-12;
    memset(&e, 0, sizeof e);
    rc = opl_solve_burgers(&p, u0, &q, b, &st, &e);
    double d = maxabs_diff(F * n, a, b);
    diag("%s vs ETDRK4: %.2e (%lld steps, %lld rejected, %lld evaluations)", alt[k].name, d, (long long)st.steps,
         (long long)st.rejected, (long long)st.nfev);
    ok(rc == OPL_OK && d < alt[k].tol, "%s agrees with ETDRK4 (%.1e < %g) %s", alt[k].name, d, alt[k].tol, e.msg);
  }
  /* spectral storage: a band-limited state (nu large, 4 modes) is resampled exactly onto 16
   * and onto 128 points */
  opl_grid *g = opl_grid_new_1d(n, 1.0, OPL_GRID_ESTIMATE, NULL);
  opl_solve_opts q = test_opts(0.3, 3, 1e-3);
  q.times = times;
  q.grid = g;
  double *full = opl_pde_alloc(3 * n), *s16 = opl_pde_alloc(3 * 16), *s128 = opl_pde_alloc(3 * 128);
  opl_solve_burgers(&p, u0, &q, full, NULL, NULL);
  q.store_mode = OPL_STORE_SPECTRAL;
  q.store_n = 128;
  rc = opl_solve_burgers(&p, u0, &q, s128, NULL, &e);
  double dmax = 0;
  for (int j = 0; j < 3; j++)
    for (int i = 0; i < n; i++) dmax = fmax(dmax, fabs(s128[j * 128 + 2 * i] - full[j * n + i]));
  ok(rc == OPL_OK && dmax < 1e-14, "spectral storage onto 128 points interpolates: equal at the solve points (%.1e)",
     dmax);
  q.store_mode = OPL_STORE_STRIDE;
  q.store_n = 16;
  opl_solve_burgers(&p, u0, &q, s16, NULL, NULL);
  int same = 1;
  for (int j = 0; j < 3; j++)
    for (int i = 0; i < 16; i++) same &= s16[j * 16 + i] == full[j * n + 4 * i];
  ok(same, "stride storage onto 16 points keeps every 4th point");
  /* a shared grid of another size is refused */
  opl_burgers_params p2 = {128, 1.0, 0.05};
  double *u2 = opl_pde_alloc(128);
  ok(opl_solve_burgers(&p2, u2, &q, s128, NULL, &e) == OPL_ERR_ARG && strstr(e.msg, "n = 64"),
     "a shared grid of another resolution is refused (%s)", e.msg);
  opl_grid_free(&g);
  opl_pde_free(u2);
  opl_pde_free(full);
  opl_pde_free(s16);
  opl_pde_free(s128);
  opl_pde_free(u0);
  opl_pde_free(a);
  opl_pde_free(b);
}

static void test_bad_input(void) {
  const int n = 64;
  opl_burgers_params p = {n, 1.0, 0.01};
  double *u0 = opl_pde_alloc(n), *out = opl_pde_alloc(8 * n);
  for (int i = 0; i < n; i++) u0[i] = sin(2 * M_PI * i / n);
  opl_err e = {0};
  opl_solve_opts o = test_opts(1, 2, 0.01);
  struct { opl_burgers_params p; const char *want; } badp[] = {
      {{n, 1.0, 0}, "nu = 0"}, {{n, 1.0, -0.1}, "nu = -0.1"}, {{n, 0, 0.1}, "L = 0"}, {{63, 1, 0.1}, "n = 63"}};
  for (size_t i = 0; i < sizeof badp / sizeof badp[0]; i++) {
    memset(&e, 0, sizeof e);
    ok(opl_solve_burgers(&badp[i].p, u0, &o, out, NULL, &e) == OPL_ERR_ARG && strstr(e.msg, badp[i].want),
       "refuses %s (%s)", badp[i].want, e.msg);
  }
  struct { const char *what; double T, dt, cfl; int scheme, store_n, mode, status; const char *want; } bad[] = {
      {"T = 0", 0, 0.01, 0, OPL_SCHEME_ETDRK4, 0, 0, OPL_ERR_ARG, "T = 0"},
      {"T = -2", -2, 0.01, 0, OPL_SCHEME_ETDRK4, 0, 0, OPL_ERR_ARG, "T = -2"},
      {"T = inf", INFINITY, 0.01, 0, OPL_SCHEME_ETDRK4, 0, 0, OPL_ERR_ARG, "T = inf"},
      {"dt = -1", 1, -1, 0, OPL_SCHEME_CN_HEUN, 0, 0, OPL_ERR_ARG, "dt = -1"},
      {"cfl = -1", 1, 0.01, -1, OPL_SCHEME_CN_HEUN, 0, 0, OPL_ERR_ARG, "cfl = -1"},
      {"fno scheme", 1, 0.01, 0, OPL_SCHEME_FNO, 0, 0, OPL_ERR_ARG, "Navier-Stokes only"},
      {"store 48 of 64", 1, 0.01, 0, OPL_SCHEME_ETDRK4, 48, 0, OPL_ERR_SHAPE,
       "store resolution 48 does not divide the solve resolution 64"},
      {"store 9 spectral", 1, 0.01, 0, OPL_SCHEME_ETDRK4, 9, OPL_STORE_SPECTRAL, OPL_ERR_SHAPE,
       "store resolution 9 must be even"},
      {"store mode 5", 1, 0.01, 0, OPL_SCHEME_ETDRK4, 0, 5, OPL_ERR_ARG, "store_mode = 5"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    opl_solve_opts b = o;
    b.T = bad[i].T, b.dt = bad[i].dt, b.cfl = bad[i].cfl, b.scheme = bad[i].scheme, b.store_n = bad[i].store_n;
    b.store_mode = bad[i].mode;
    memset(&e, 0, sizeof e);
    ok(opl_solve_burgers(&p, u0, &b, out, NULL, &e) == bad[i].status && strstr(e.msg, bad[i].want), "refuses %s (%s)",
       bad[i].what, e.msg);
  }
  opl_solve_opts b = o;
  b.scheme = OPL_SCHEME_RK;
  b.rtol = 0;
  ok(opl_solve_burgers(&p, u0, &b, out, NULL, &e) == OPL_ERR_ARG && strstr(e.msg, "rtol = 0"), "refuses rtol = 0 (%s)",
     e.msg);
  u0[5] = INFINITY;
  ok(opl_solve_burgers(&p, u0, &o, out, NULL, &e) == OPL_ERR_NONFINITE && strstr(e.msg, "u0[5] = inf"),
     "refuses a non-finite initial value (%s)", e.msg);
  u0[5] = NAN;
  double md;
  ok(opl_solve_burgers_refinement(&p, u0, &o, NULL, &md, NULL, &e) == OPL_ERR_NONFINITE && strstr(e.msg, "u0[5]"),
     "the refinement check refuses it too (%s)", e.msg);
  ok(opl_solve_burgers(&p, NULL, &o, out, NULL, &e) == OPL_ERR_ARG && opl_solve_burgers(&p, u0, NULL, out, NULL, &e) ==
     OPL_ERR_ARG, "NULL initial condition or options refused");
  /* Blow-ups report their time: nu tiny with a big ETDRK4 step (the front forms at t = 1/(2 pi)
   * and the explicit advection of its unresolved modes explodes) ... */
  for (int i = 0; i < n; i++) u0[i] = sin(2 * M_PI * i / n);
  opl_burgers_params pt = {n, 1.0, 1e-6};
  o = test_opts(4, 8, 0.25);
  opl_solve_stats st;
  memset(out, 0, sizeof(double) * 8 * n);
  int rc = opl_solve_burgers(&pt, u0, &o, out, &st, &e);
  const char *at = strstr(e.msg, "blow-up at t = ");
  double tb = at ? atof(at + strlen("blow-up at t = ")) : -1;
  ok(rc == OPL_ERR_NONFINITE && at && tb > 0 && tb < 4 && tb == st.t_reached,
     "ETDRK4 blow-up with nu = 1e-6, dt = 0.25 reports t = %g (%s)", tb, e.msg);
  ok(st.frames == (int64_t)(tb / 0.5 + 1e-9) && isfinite(out[(st.frames - 1) * n]),
     "the %lld frames before the blow-up are written", (long long)st.frames);
  /* ... the RK core in fixed-step mode, and a CFL limit on CN-Heun */
  o = test_opts(1, 4, 0.2);
  o.scheme = OPL_SCHEME_RK;
  o.rk_method = OPL_RK_BS3;
  pt.nu = 1e-3;
  for (int i = 0; i < n; i++) u0[i] = 50 * sin(2 * M_PI * i / n);
  rc = opl_solve_burgers(&pt, u0, &o, out, &st, &e);
  ok(rc == OPL_ERR_NONFINITE && strstr(e.msg, "blow-up at t = "), "RK fixed-step blow-up (%s)", e.msg);
  o = test_opts(1, 4, 0.01);
  o.scheme = OPL_SCHEME_CN_HEUN;
  o.cfl = 0.5;
  for (int i = 0; i < n; i++) u0[i] = 0.5 * sin(2 * M_PI * i / n);
  rc = opl_solve_burgers(&pt, u0, &o, out, &st, &e);
  ok(rc == OPL_OK && st.cfl_max > 0.3 && st.cfl_max < 0.5, "CN-Heun within the CFL limit: max Courant %.3f", st.cfl_max);
  o.cfl = 0.25;
  rc = opl_solve_burgers(&pt, u0, &o, out, &st, &e);
  ok(rc == OPL_ERR_CONVERGENCE && strstr(e.msg, "blow-up at t = 0:") && strstr(e.msg, "CFL"), "CFL violation (%s)",
     e.msg);
  opl_pde_free(u0);
  opl_pde_free(out);
}

int main(void) {
  tap_begin();
  test_cole_hopf();
  test_energy_budget();
  test_orders();
  test_presets();
  test_refinement();
  test_paths();
  test_bad_input();
  return tap_end();
}
