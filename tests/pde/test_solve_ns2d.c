/* Trajectory solver, 2-D Navier-Stokes (pde/solve.h): the Taylor-Green decay (CN-Heun's error
 * is exactly the Crank-Nicolson amplification error, order 2; ETDRK4 and RK exact), relaxation
 * to FNO's forced steady state, the unforced energy budget dE/dt = -2 nu Z (by quadrature of
 * snapshots and from the right-hand side), the `fno` scheme against a direct transcription of
 * ns_2d.py's update with naive DFTs, its first order in dt, presets, 2-D storage, concurrent
 * trajectories, and bad input (CFL blow-ups that report their time). */
#include <complex.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "tests/tap.h"
#include "pde/solve.h"
#include "tests/pde/pdetest.h"

/* test_opts with a scheme. */
static opl_solve_opts ns_opts(double T, int nt, double dt, int scheme) {
  opl_solve_opts o = test_opts(T, nt, dt);
  o.scheme = scheme;
  return o;
}

/* A GRF "ns-fno" draw on n x n (all modes, Nyquist bins included). */
static void grf_draw(int n, uint64_t index, double *w) {
  opl_grid *g = opl_grid_new_2d(n, n, 1, 1, OPL_GRID_ESTIMATE, NULL);
  opl_grf_params gp;
  opl_grf_preset("ns-fno", &gp, NULL);
  opl_grf *f = opl_grf_new(g, &gp, NULL);
  double *work = opl_pde_alloc(opl_grf_work_size(f));
  opl_grf_sample_seeded(f, 99, index, w, work);
  opl_pde_free(work);
  opl_grf_free(&f);
  opl_grid_free(&g);
}

/* Taylor-Green omega = A sin 2 pi x sin 2 pi y, unforced, nu = 0.01 (decay rate
 * lambda = 8 pi^2 nu): the advection term vanishes (one shell), so CN-Heun and the fno scheme
 * give exactly omega_0 r^m with the Crank-Nicolson factor r = (1 - lambda h / 2)/(1 + lambda h /
 * 2) after m steps of h, whose error against e^(-lambda t) is second order; ETDRK4 is exact. */
static void test_taylor_green(void) {
  const int n = 16;
  const double nu = 0.01, A = 1.3, T = 1, lam = 8 * M_PI * M_PI * nu;
  opl_ns2d_params p = {n, 1.0, nu, OPL_NS2D_FORCE_NONE};
  double *w0 = opl_pde_alloc(n * n), *out = opl_pde_alloc(n * n), *ex = opl_pde_alloc(n * n);
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) w0[i * n + j] = opl_ns2d_taylor_green(&p, A, (double)i / n, (double)j / n, 0);
  for (int i = 0; i < n * n; i++) ex[i] = w0[i] * exp(-lam * T);
  const double dts[3] = {0.1, 0.05, 0.025};
  double errs[3];
  for (int k = 0; k < 3; k++) {
    opl_solve_opts o = ns_opts(T, 1, dts[k], OPL_SCHEME_CN_HEUN);
    opl_err e = {0};
    int rc = opl_solve_ns2d(&p, w0, &o, out, NULL, &e);
    double z = lam * dts[k], r = pow((1 - z / 2) / (1 + z / 2), T / dts[k]), dcn = 0;
    for (int i = 0; i < n * n; i++) dcn = fmax(dcn, fabs(out[i] - w0[i] * r));
    errs[k] = maxabs_diff(n * n, out, ex);
    diag("Taylor-Green CN-Heun dt = %g: error vs exact %.3e, vs the CN amplification r^m %.2e", dts[k], errs[k], dcn);
    ok(rc == OPL_OK && dcn < 1e-14 * A, "CN-Heun dt = %g: error is only the CN amplification (%.1e)", dts[k], dcn);
    if (k == 1) {
      o.scheme = OPL_SCHEME_FNO;
      rc = opl_solve_ns2d(&p, w0, &o, out, NULL, &e);
      double dfno = 0;
      for (int i = 0; i < n * n; i++) dfno = fmax(dfno, fabs(out[i] - w0[i] * r));
      ok(rc == OPL_OK && dfno < 1e-14 * A, "fno scheme on Taylor-Green: the same CN factor (%.1e)", dfno);
    }
  }
  double o1 = log2(errs[0] / errs[1]), o2 = log2(errs[1] / errs[2]);
  ok(o1 > 1.9 && o1 < 2.1 && o2 > 1.9 && o2 < 2.1, "CN-Heun on Taylor-Green converges at order %.3f, %.3f", o1, o2);
  opl_solve_opts o = ns_opts(T, 1, 0.1, OPL_SCHEME_ETDRK4);
  opl_solve_ns2d(&p, w0, &o, out, NULL, NULL);
  double d = maxabs_diff(n * n, out, ex);
  ok(d < 1e-14, "ETDRK4 (dt = 0.1) decays Taylor-Green exactly: error %.1e", d);
  o = ns_opts(T, 1, 0, OPL_SCHEME_RK);
  o.rtol = 1e-10;
  o.atol = 1e-12;
  opl_solve_stats st;
  opl_solve_ns2d(&p, w0, &o, out, &st, NULL);
  d = maxabs_diff(n * n, out, ex);
  ok(d < 1e-9, "RK DP5 (rtol 1e-10, %lld steps) on Taylor-Green: error %.1e", (long long)st.steps, d);
  opl_pde_free(w0);
  opl_pde_free(out);
  opl_pde_free(ex);
}

/* FNO's forcing with nu = 0.01: omega* = f / (8 pi^2 nu) is steady; from omega* plus 0.2 of a
 * GRF draw the deviation decays, at late times like the slowest modes (|k|^2 = 4 pi^2, rate
 * 4 pi^2 nu = 0.39). CN-Heun, dt = 0.02, 32^2. */
static void test_forced_relaxation(void) {
  const int n = 32, nt = 10;
  const double nu = 0.01, T = sanitized() ? 10 : 50;
  opl_ns2d_params p = {n, 1.0, nu, OPL_NS2D_FORCE_FNO};
  double *w0 = opl_pde_alloc(n * n), *ws = opl_pde_alloc(n * n), *out = opl_pde_alloc((int64_t)nt * n * n);
  grf_draw(n, 1, w0);
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) {
      double s = 2 * M_PI * (i + j) / (double)n;
      ws[i * n + j] = 0.1 * (sin(s) + cos(s)) / (8 * M_PI * M_PI * nu);
      w0[i * n + j] = ws[i * n + j] + 0.2 * w0[i * n + j];
    }
  opl_solve_opts o = ns_opts(T, nt, 0.02, OPL_SCHEME_CN_HEUN);
  o.cfl = 1;
  opl_solve_stats st;
  opl_err e = {0};
  int rc = opl_solve_ns2d(&p, w0, &o, out, &st, &e);
  double sc = maxabs(ws, n * n), d0 = maxabs_diff(n * n, w0, ws) / sc, dev[nt];
  for (int j = 0; j < nt; j++) dev[j] = maxabs_diff(n * n, out + (int64_t)j * n * n, ws) / sc;
  double rate = log(dev[nt - 2] / dev[nt - 1]) / (T / nt);
  diag("forced relaxation nu = %g, T = %g: relative deviation %.2e at t = 0, %.2e at T/%d, %.2e at T; late decay rate "
       "%.3f (4 pi^2 nu = %.3f); %lld steps, max Courant %.3f, %.2f s", nu, T, d0, dev[0], nt, dev[nt - 1], rate,
       4 * M_PI * M_PI * nu, (long long)st.steps, st.cfl_max, st.wall);
  ok(rc == OPL_OK && d0 > 0.5, "forced run from a perturbed start (deviation %.2f) (%s)", d0, e.msg);
  ok(dev[nt - 1] < (sanitized() ? 1e-2 : 1e-7), "relaxes to omega* = f/(8 pi^2 nu): deviation %.2e", dev[nt - 1]);
  ok(fabs(rate / (4 * M_PI * M_PI * nu) - 1) < 0.1, "late decay rate %.3f within 10%% of 4 pi^2 nu", rate);
  opl_pde_free(w0);
  opl_pde_free(ws);
  opl_pde_free(out);
}

/* Gauss-Legendre nodes and weights on [a, b] (Newton on the Legendre recurrence). */
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

/* Unforced energy budget on 32^2, nu = 0.01, T = 1, from a GRF draw projected onto the 2/3 band
 * (where the dealiased advection conserves E exactly): E(T) - E(0) against -2 nu int Z dt by
 * composite Gauss-Legendre quadrature of snapshots at the nodes (RK DP5, rtol 1e-11; and CN-Heun
 * dt = 1e-3, whose budget error is O(dt^2)), and pointwise dE/dt = int psi omega_t (from the
 * right-hand side) = -2 nu Z at every node. */
static void test_energy_budget(void) {
  enum { NP = 4, KP = 10, K = NP * KP };
  const int n = 32;
  const double nu = 0.01, T = 1;
  opl_ns2d_params p = {n, 1.0, nu, OPL_NS2D_FORCE_NONE};
  opl_ns2d *ns = opl_ns2d_new(&p, NULL, OPL_GRID_ESTIMATE, NULL);
  const opl_grid *g = opl_ns2d_grid(ns);
  const int64_t N = g->nreal, S = 2 * g->nspec;
  double *w0 = opl_pde_alloc(N), *wh = opl_pde_alloc(S), *wt = opl_pde_alloc(N), *wth = opl_pde_alloc(S);
  grf_draw(n, 2, w0);
  opl_grid_forward(g, w0, wh);
  opl_grid_dealias(g, wh);
  opl_grid_inverse(g, wh, w0);
  /* composite rule on panels graded towards t = 0, where the high modes decay fast (up to
   * 2 nu |k|^2 = 160 on the 2/3 band): NP panels of KP nodes */
  const double edges[NP + 1] = {0, 0.01, 0.05, 0.25, 1};
  double times[K + 1], wq[K];
  for (int q = 0; q < NP; q++) gauss_legendre(KP, edges[q], edges[q + 1], times + q * KP, wq + q * KP);
  times[K] = T;
  double *out = opl_pde_alloc((int64_t)(K + 2) * N);
  for (int pass = 0; pass < 2; pass++) {
    opl_solve_opts o = ns_opts(T, K + 1, pass ? 1e-3 : 0, pass ? OPL_SCHEME_CN_HEUN : OPL_SCHEME_RK);
    o.times = times;
    o.with_t0 = 1;
    o.rtol = 1e-11;
    o.atol = 1e-13;
    opl_solve_stats st;
    opl_err e = {0};
    int rc = opl_solve_ns2d(&p, w0, &o, out, &st, &e);
    double E[K + 2], Z[K + 2], rhs_mis = 0;
    for (int j = 0; j < K + 2; j++) {
      const double *w = out + (int64_t)j * N;
      opl_grid_forward(g, w, wh);
      E[j] = opl_ns2d_energy(ns, wh);
      Z[j] = opl_ns2d_enstrophy(ns, wh);
      /* dE/dt = sum over the spectrum of Re(conj(w_hat) w_t_hat) / |k|^2, scaled as E */
      opl_ns2d_rhs(ns, 0, w, wt);
      opl_grid_forward(g, wt, wth);
      double s = 0;
      for (int64_t q = 1; q < g->nspec; q++) {
        double k2 = opl_grid_k2(g, q);
        s += opl_grid_herm_weight(g, q) * (wh[2 * q] * wth[2 * q] + wh[2 * q + 1] * wth[2 * q + 1]) / k2;
      }
      double dEdt = s / ((double)N * (double)N);
      rhs_mis = fmax(rhs_mis, fabs(dEdt + 2 * nu * Z[j]) / (2 * nu * Z[j]));
    }
    double integral = 0;
    for (int i = 0; i < K; i++) integral += wq[i] * (-2 * nu * Z[i + 1]);
    double dE = E[K + 1] - E[0], rel = fabs(dE - integral) / fabs(dE);
    diag("energy budget (%s): E(0) = %.10f, E(T) - E(0) = %.10e, -2 nu int Z = %.10e, relative mismatch %.2e; "
         "pointwise dE/dt vs -2 nu Z: %.1e; %lld steps", pass ? "CN-Heun dt 1e-3" : "RK DP5 rtol 1e-11", E[0], dE,
         integral, rel, rhs_mis, (long long)st.steps);
    ok(rc == OPL_OK && rel < (pass ? 1e-5 : 1e-9), "%s: E(T) - E(0) = -2 nu int Z within %.1e (%s)",
       pass ? "CN-Heun" : "RK", rel, e.msg);
    if (!pass) ok(rhs_mis < 1e-12, "dE/dt from the right-hand side = -2 nu Z at every node (%.1e)", rhs_mis);
  }
  opl_ns2d_free(&ns);
  opl_pde_free(w0);
  opl_pde_free(wh);
  opl_pde_free(wt);
  opl_pde_free(wth);
  opl_pde_free(out);
}

/* ------------------------------------------------------------ the fno scheme, by hand */

/* A direct transcription of ns_2d.py's update (Li et al. 2021) with naive DFTs on N x N, L = 1:
 * rfft2 / irfft2 with numpy's conventions (irfft2: inverse DFT along x of each column, then the
 * real inverse along y, which ignores the imaginary parts of the columns 0 and N/2). */
typedef struct { int N; double complex *tw; } naive;

static double complex tw_at(const naive *z, long k) { return z->tw[((k % z->N) + z->N) % z->N]; }

/* F[N][N/2+1] = sum_{x,y} f[x][y] e^(-2 pi i (r x + c y) / N) */
static void naive_rfft2(const naive *z, const double *f, double complex *F) {
  const int N = z->N, H = N / 2 + 1;
  for (int r = 0; r < N; r++)
    for (int c = 0; c < H; c++) {
      double complex s = 0;
      for (int x = 0; x < N; x++)
        for (int y = 0; y < N; y++) s += f[x * N + y] * tw_at(z, -(long)(r * x + c * y));
      F[r * H + c] = s;
    }
}

static void naive_irfft2(const naive *z, const double complex *F, double *f) {
  const int N = z->N, H = N / 2 + 1;
  double complex Zc[64];
  for (int x = 0; x < N; x++) {
    for (int c = 0; c < H; c++) {
      double complex s = 0;
      for (int r = 0; r < N; r++) s += F[r * H + c] * tw_at(z, (long)r * x);
      Zc[c] = s;
    }
    for (int y = 0; y < N; y++) {
      double v = creal(Zc[0]) + creal(Zc[N / 2]) * ((y & 1) ? -1 : 1);
      for (int c = 1; c < N / 2; c++) v += 2 * creal(Zc[c] * tw_at(z, (long)c * y));
      f[x * N + y] = v / ((double)N * N);
    }
  }
}

/* K steps of ns_2d.py from w0 with forcing f, viscosity visc, step dt; result in w. */
static void ns_2d_py(int N, const double *w0, const double *f, double visc, double dt, int K, double *w) {
  naive z = {N, malloc(sizeof(double complex) * N)};
  for (int k = 0; k < N; k++) z.tw[k] = cexp(2 * M_PI * I * k / N);
  const int H = N / 2 + 1, kmax = N / 2;
  double complex *wh = malloc(sizeof(double complex) * N * H), *fh = malloc(sizeof(double complex) * N * H),
                 *t = malloc(sizeof(double complex) * N * H), *Fh = malloc(sizeof(double complex) * N * H);
  double *kx = malloc(sizeof(double) * N * H), *ky = malloc(sizeof(double) * N * H), *lap = malloc(sizeof(double) * N * H),
         *dealias = malloc(sizeof(double) * N * H), *q = malloc(sizeof(double) * N * N), *v = malloc(sizeof(double) * N * N),
         *wx = malloc(sizeof(double) * N * N), *wy = malloc(sizeof(double) * N * N), *nl = malloc(sizeof(double) * N * N);
  for (int r = 0; r < N; r++)
    for (int c = 0; c < H; c++) {
      /* k_y = cat(arange(0, kmax), arange(-kmax, 0)) truncated to kmax + 1 columns; k_x its transpose */
      ky[r * H + c] = c < kmax ? c : c - N;
      kx[r * H + c] = r < kmax ? r : r - N;
      lap[r * H + c] = 4 * M_PI * M_PI * (kx[r * H + c] * kx[r * H + c] + ky[r * H + c] * ky[r * H + c]);
      dealias[r * H + c] = fabs(ky[r * H + c]) <= (2.0 / 3.0) * kmax && fabs(kx[r * H + c]) <= (2.0 / 3.0) * kmax;
    }
  lap[0] = 1.0;
  naive_rfft2(&z, w0, wh);
  naive_rfft2(&z, f, fh);
  for (int j = 0; j < K; j++) {
    for (int e = 0; e < N * H; e++) t[e] = 2 * M_PI * ky[e] * I * (wh[e] / lap[e]);
    naive_irfft2(&z, t, q);
    for (int e = 0; e < N * H; e++) t[e] = -2 * M_PI * kx[e] * I * (wh[e] / lap[e]);
    naive_irfft2(&z, t, v);
    for (int e = 0; e < N * H; e++) t[e] = 2 * M_PI * kx[e] * I * wh[e];
    naive_irfft2(&z, t, wx);
    for (int e = 0; e < N * H; e++) t[e] = 2 * M_PI * ky[e] * I * wh[e];
    naive_irfft2(&z, t, wy);
    for (int i = 0; i < N * N; i++) nl[i] = q[i] * wx[i] + v[i] * wy[i];
    naive_rfft2(&z, nl, Fh);
    for (int e = 0; e < N * H; e++) {
      Fh[e] *= dealias[e];
      wh[e] = (-dt * Fh[e] + dt * fh[e] + (1.0 - 0.5 * dt * visc * lap[e]) * wh[e]) / (1.0 + 0.5 * dt * visc * lap[e]);
    }
  }
  naive_irfft2(&z, wh, w);
  free(z.tw);
  free(wh), free(fh), free(t), free(Fh), free(kx), free(ky), free(lap), free(dealias);
  free(q), free(v), free(wx), free(wy), free(nl);
}

/* The fno scheme against the transcription, from a GRF draw plus a strong mode on the Nyquist
 * row (where torch's wavenumber -N/2 and grid.h's zeroed odd derivative differ), forced. Then
 * it differs visibly from CN-Euler on opl's (input-dealiased) N, and is first order in dt while
 * CN-Heun is second order (errors against dt / 32 of the same scheme). */
static void test_fno_scheme(void) {
  const int n = 16, K = sanitized() ? 5 : 20;
  const double nu = 1e-3, dt = 0.01;
  opl_ns2d_params p = {n, 1.0, nu, OPL_NS2D_FORCE_FNO};
  double *w0 = opl_pde_alloc(n * n), *f = opl_pde_alloc(n * n), *want = opl_pde_alloc(n * n), *got = opl_pde_alloc(n * n),
         *eul = opl_pde_alloc(n * n);
  grf_draw(n, 3, w0);
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) {
      w0[i * n + j] += 0.3 * ((i & 1) ? -1 : 1) * cos(2 * M_PI * 3 * j / n + 0.4);
      double s = 2 * M_PI * (i + j) / (double)n;
      f[i * n + j] = 0.1 * (sin(s) + cos(s));
    }
  ns_2d_py(n, w0, f, nu, dt, K, want);
  opl_solve_opts o = ns_opts(K * dt, 1, dt, OPL_SCHEME_FNO);
  opl_solve_stats st;
  opl_err e = {0};
  int rc = opl_solve_ns2d(&p, w0, &o, got, &st, &e);
  double d = maxabs_diff(n * n, got, want) / maxabs(want, n * n);
  o.scheme = OPL_SCHEME_CN_EULER;
  opl_solve_ns2d(&p, w0, &o, eul, NULL, NULL);
  double de = maxabs_diff(n * n, eul, want) / maxabs(want, n * n);
  diag("fno scheme vs ns_2d.py by hand (16^2, %d steps of %g): relative difference %.2e (CN-Euler on opl's N: %.2e); "
       "%lld steps, %lld N", K, dt, d, de, (long long)st.steps, (long long)st.nfev);
  ok(rc == OPL_OK && st.steps == K && st.nfev == K && d < 1e-13, "the fno scheme reproduces ns_2d.py's update (%.1e)",
     d);
  ok(de > 1e-6, "and differs from CN-Euler on opl's dealiased N (%.1e)", de);

  /* orders, 32^2, forced, GRF start, T = 0.4 */
  const int m = 32;
  const double T = 0.4;
  opl_ns2d_params q = {m, 1.0, nu, OPL_NS2D_FORCE_FNO};
  double *v0 = opl_pde_alloc(m * m), *ref = opl_pde_alloc(m * m), *out = opl_pde_alloc(m * m);
  grf_draw(m, 4, v0);
  for (int s = 0; s < 2; s++) {
    const int scheme = s ? OPL_SCHEME_CN_HEUN : OPL_SCHEME_FNO;
    const double dts[3] = {0.02, 0.01, 0.005};
    opl_solve_opts oo = ns_opts(T, 1, dts[2] / 32, scheme);
    opl_solve_ns2d(&q, v0, &oo, ref, NULL, NULL);
    double err[3];
    for (int k = 0; k < 3; k++) {
      oo.dt = dts[k];
      opl_solve_ns2d(&q, v0, &oo, out, NULL, NULL);
      err[k] = maxabs_diff(m * m, out, ref);
    }
    double o1 = log2(err[0] / err[1]), o2 = log2(err[1] / err[2]);
    diag("%s on 32^2, T = %g: errors %.3e, %.3e, %.3e at dt = 0.02, 0.01, 0.005: orders %.3f, %.3f",
         opl_solve_scheme_name(scheme), T, err[0], err[1], err[2], o1, o2);
    if (s == 0)
      ok(o1 > 0.9 && o1 < 1.1 && o2 > 0.9 && o2 < 1.1, "the fno scheme is first order in dt (%.3f, %.3f)", o1, o2);
    else
      ok(o1 > 1.8 && o1 < 2.2 && o2 > 1.8 && o2 < 2.2, "CN-Heun is second order in dt (%.3f, %.3f)", o1, o2);
  }
  opl_pde_free(v0);
  opl_pde_free(ref);
  opl_pde_free(out);
  opl_pde_free(w0);
  opl_pde_free(f);
  opl_pde_free(want);
  opl_pde_free(got);
  opl_pde_free(eul);
}

/* Presets, 2-D storage (stride and spectral), concurrency. */
static void test_api(void) {
  opl_ns2d_params p;
  opl_solve_opts o;
  opl_grf_params gp;
  opl_err e = {0};
  const char *names[4] = {"fno", "fno-1e-3", "fno-1e-4", "fno-1e-5"};
  const double nus[4] = {1e-3, 1e-3, 1e-4, 1e-5}, Ts[4] = {50, 50, 30, 20};
  for (int i = 0; i < 4; i++) {
    int rc = opl_solve_ns2d_preset(names[i], &p, &o, &gp, &e);
    ok(rc == OPL_OK && p.n == 256 && p.L == 1 && p.nu == nus[i] && p.forcing == OPL_NS2D_FORCE_FNO && o.T == Ts[i] &&
           o.nt == (int)Ts[i] && !o.with_t0 && o.store_n == 64 && o.scheme == OPL_SCHEME_CN_HEUN && o.dt == 1e-4 &&
           o.cfl == 1 && gp.alpha == 2.5 && gp.tau == 7 && gp.convention == OPL_GRF_FNO,
       "preset %s: nu %g, T %g, 256^2 -> 64^2, one frame per unit time, CN-Heun dt 1e-4, CFL 1", names[i], nus[i], Ts[i]);
  }
  ok(opl_solve_ns2d_preset("fno-1e-2", &p, &o, NULL, &e) == OPL_ERR_ARG && strstr(e.msg, "\"fno-1e-2\""),
     "unknown preset (%s)", e.msg);

  const int n = 32;
  p = (opl_ns2d_params){n, 1.0, 1e-3, OPL_NS2D_FORCE_FNO};
  double *w0 = opl_pde_alloc(n * n), *full = opl_pde_alloc(3 * n * n), *s8 = opl_pde_alloc(3 * 64),
         *sp = opl_pde_alloc(3 * 64 * 64);
  grf_draw(n, 5, w0);
  o = ns_opts(0.1, 2, 0.01, OPL_SCHEME_CN_HEUN);
  o.with_t0 = 1;
  opl_solve_stats st;
  int rc = opl_solve_ns2d(&p, w0, &o, full, &st, &e);
  ok(rc == OPL_OK && st.frames == 3 && st.steps == 10 && st.nfev == 20 && maxabs_diff(n * n, full, w0) == 0,
     "with_t0: frame 0 is w0; 10 CN-Heun steps, 20 N evaluations");
  o.store_n = 8;
  opl_solve_ns2d(&p, w0, &o, s8, NULL, NULL);
  int same = 1;
  for (int j = 0; j < 3; j++)
    for (int a = 0; a < 8; a++)
      for (int b = 0; b < 8; b++) same &= s8[j * 64 + a * 8 + b] == full[(int64_t)j * n * n + (4 * a) * n + 4 * b];
  ok(same, "stride storage 32^2 -> 8^2 keeps every 4th point along both axes");
  o.store_mode = OPL_STORE_SPECTRAL;
  o.store_n = 64;
  rc = opl_solve_ns2d(&p, w0, &o, sp, NULL, &e);
  double d = 0;
  for (int j = 0; j < 3; j++)
    for (int a = 0; a < n; a++)
      for (int b = 0; b < n; b++)
        d = fmax(d, fabs(sp[(int64_t)j * 4096 + (2 * a) * 64 + 2 * b] - full[(int64_t)j * n * n + a * n + b]));
  ok(rc == OPL_OK && d < 1e-13, "spectral storage onto 64^2 interpolates the 32^2 frames (%.1e)", d);

  /* concurrent trajectories (fno and CN-Heun) on a shared grid equal serial ones bitwise */
  enum { NTRAJ = 4 };
  opl_grid *g = opl_grid_new_2d(n, n, 1, 1, OPL_GRID_ESTIMATE, NULL);
  double *ics = opl_pde_alloc(NTRAJ * n * n), *ser = opl_pde_alloc(NTRAJ * n * n), *par = opl_pde_alloc(NTRAJ * n * n);
  for (int r = 0; r < NTRAJ; r++) grf_draw(n, 10 + r, ics + (int64_t)r * n * n);
  o = ns_opts(0.05, 1, 0.01, OPL_SCHEME_CN_HEUN);
  o.grid = g;
  for (int r = 0; r < NTRAJ; r++) {
    o.scheme = r & 1 ? OPL_SCHEME_FNO : OPL_SCHEME_CN_HEUN;
    opl_solve_ns2d(&p, ics + (int64_t)r * n * n, &o, ser + (int64_t)r * n * n, NULL, NULL);
  }
  int fails = 0;
#pragma omp parallel for num_threads(2) reduction(+ : fails)
  for (int r = 0; r < NTRAJ; r++) {
    opl_solve_opts oo = o;
    oo.scheme = r & 1 ? OPL_SCHEME_FNO : OPL_SCHEME_CN_HEUN;
    fails += opl_solve_ns2d(&p, ics + (int64_t)r * n * n, &oo, par + (int64_t)r * n * n, NULL, NULL) != OPL_OK;
  }
  ok(fails == 0 && maxabs_diff(NTRAJ * n * n, ser, par) == 0,
     "%d trajectories from 2 threads on a shared grid equal the serial ones bitwise", NTRAJ);
  opl_grid_free(&g);
  opl_pde_free(ics);
  opl_pde_free(ser);
  opl_pde_free(par);
  opl_pde_free(w0);
  opl_pde_free(full);
  opl_pde_free(s8);
  opl_pde_free(sp);
}

static void test_bad_input(void) {
  const int n = 32;
  opl_ns2d_params p = {n, 1.0, 1e-3, OPL_NS2D_FORCE_FNO};
  double *w0 = opl_pde_alloc(n * n), *out = opl_pde_alloc(64 * n * n);
  grf_draw(n, 6, w0);
  opl_err e = {0};
  opl_solve_opts o = ns_opts(1, 2, 0.01, OPL_SCHEME_CN_HEUN);
  opl_ns2d_params bp = p;
  bp.nu = 0;
  ok(opl_solve_ns2d(&bp, w0, &o, out, NULL, &e) == OPL_ERR_ARG && strstr(e.msg, "nu = 0"), "refuses nu = 0 (%s)", e.msg);
  bp.nu = -1e-3;
  ok(opl_solve_ns2d(&bp, w0, &o, out, NULL, &e) == OPL_ERR_ARG && strstr(e.msg, "nu = -0.001"), "refuses nu < 0 (%s)",
     e.msg);
  opl_solve_opts b = o;
  b.T = 0;
  ok(opl_solve_ns2d(&p, w0, &b, out, NULL, &e) == OPL_ERR_ARG && strstr(e.msg, "T = 0"), "refuses T = 0 (%s)", e.msg);
  b = o;
  b.T = -5;
  ok(opl_solve_ns2d(&p, w0, &b, out, NULL, &e) == OPL_ERR_ARG && strstr(e.msg, "T = -5"), "refuses T < 0 (%s)", e.msg);
  b = o;
  b.store_n = 12;
  ok(opl_solve_ns2d(&p, w0, &b, out, NULL, &e) == OPL_ERR_SHAPE && strstr(e.msg, "store resolution 12") &&
         strstr(e.msg, "solve resolution 32"), "refuses a store resolution that does not divide (%s)", e.msg);
  w0[100] = NAN;
  ok(opl_solve_ns2d(&p, w0, &o, out, NULL, &e) == OPL_ERR_NONFINITE && strstr(e.msg, "w0[100] = nan"),
     "refuses a non-finite initial vorticity (%s)", e.msg);
  grf_draw(n, 6, w0);
  /* a huge step from a strong random start: the CFL check fails before the first step */
  for (int i = 0; i < n * n; i++) w0[i] *= 50;
  b = o;
  b.dt = 0.5;
  b.cfl = 1;
  opl_solve_stats st;
  int rc = opl_solve_ns2d(&p, w0, &b, out, &st, &e);
  ok(rc == OPL_ERR_CONVERGENCE && strstr(e.msg, "blow-up at t = 0:") && strstr(e.msg, "CFL") && st.frames == 0,
     "huge dt: CFL violation at t = 0 (%s)", e.msg);
  /* from rest under FNO's forcing the vorticity grows as f t (one shell: no advection), so
   * max |u| = 0.1 t / (2 pi) and the Courant number dt max|u| n = 0.2546 t (dt = 0.5, n = 32):
   * the check passes at t = 3.5 and fails at t = 4 */
  memset(w0, 0, sizeof(double) * n * n);
  p.nu = 1e-5;
  for (int s = 0; s < 2; s++) {
    b = ns_opts(50, 100, 0.5, s ? OPL_SCHEME_FNO : OPL_SCHEME_CN_HEUN);
    b.cfl = 1;
    memset(&e, 0, sizeof e);
    rc = opl_solve_ns2d(&p, w0, &b, out, &st, &e);
    const char *at = strstr(e.msg, "blow-up at t = ");
    double tb = at ? atof(at + strlen("blow-up at t = ")) : -1;
    diag("%s: %s; max Courant number seen %.4f", opl_solve_scheme_name(b.scheme), e.msg, st.cfl_max);
    ok(rc == OPL_ERR_CONVERGENCE && tb == 4 && st.t_reached == 4 && st.frames == 8,
       "%s: CFL blow-up reported at t = %g (predicted 4), 8 frames written", opl_solve_scheme_name(b.scheme), tb);
  }
  /* without the check, a huge step makes the state non-finite: reported with its time */
  p.nu = 1e-3;
  grf_draw(n, 6, w0);
  for (int i = 0; i < n * n; i++) w0[i] *= 200;
  b = ns_opts(50, 10, 0.05, OPL_SCHEME_CN_HEUN);
  rc = opl_solve_ns2d(&p, w0, &b, out, &st, &e);
  const char *at = strstr(e.msg, "blow-up at t = ");
  ok(rc == OPL_ERR_NONFINITE && at && st.t_reached > 0 && st.t_reached < 50, "non-finite blow-up at t = %g (%s)",
     st.t_reached, e.msg);
  opl_pde_free(w0);
  opl_pde_free(out);
}

/* One trajectory with the grid's pointwise loops threaded (OPL_GRID_THREADS, 2 OpenMP threads,
 * the FFTW plans single-threaded and made the same way) equals the serial solve bitwise, for both
 * schemes: the loops are elementwise or a max reduction. 256^2, so every loop is above the
 * threading threshold. */
static void test_threaded_loops(void) {
  const int n = 256;
  opl_ns2d_params p;
  opl_solve_opts po;
  opl_solve_ns2d_preset("fno", &p, &po, NULL, NULL);
  double *w0 = opl_pde_alloc(n * n), *a = opl_pde_alloc(n * n), *b = opl_pde_alloc(n * n);
  grf_draw(n, 3, w0);
  for (int s = 0; s < 2; s++) {
    const int scheme = s ? OPL_SCHEME_CN_HEUN : OPL_SCHEME_FNO;
    opl_grid *gs = opl_grid_new_2d(n, n, 1, 1, OPL_GRID_ESTIMATE, NULL);
    opl_grid *gp = opl_grid_new_2d(n, n, 1, 1, OPL_GRID_ESTIMATE | OPL_GRID_THREADS, NULL);
    opl_solve_opts o = ns_opts(10 * 1e-3, 1, 1e-3, scheme);
    o.grid = gs;
    int rc = opl_solve_ns2d(&p, w0, &o, a, NULL, NULL);
    o.grid = gp;
    opl_set_num_threads(2);
    rc |= opl_solve_ns2d(&p, w0, &o, b, NULL, NULL);
    ok(rc == OPL_OK && gs && gp && maxabs_diff(n * n, a, b) == 0,
       "%s scheme, 256^2: threaded pointwise loops equal the serial solve bitwise", s ? "cn-heun" : "fno");
    opl_grid_free(&gs);
    opl_grid_free(&gp);
  }
  opl_pde_free(w0);
  opl_pde_free(a);
  opl_pde_free(b);
}

int main(void) {
  tap_begin();
  test_taylor_green();
  test_forced_relaxation();
  test_energy_budget();
  test_fno_scheme();
  test_threaded_loops();
  test_api();
  test_bad_input();
  return tap_end();
}
