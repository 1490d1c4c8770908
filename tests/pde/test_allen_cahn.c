/* Allen-Cahn (pde/allen_cahn.h): parameters, L(k), N(uh) and the right-hand side against
 * analytic evaluations, the equilibria +-1 and 0, the energy as a Lyapunov functional along a
 * solve of the PINN problem, ETDRK4's fourth order in dt and spectral convergence in n, and the
 * RK core against ETDRK4. */
#include <math.h>
#include <string.h>
#include "tests/tap.h"
#include "pde/allen_cahn.h"
#include "pde/solve.h"
#include "tests/pde/pdetest.h"

static uint64_t rs = 777;

static void test_params(void) {
  struct {
    opl_allen_cahn_params p;
    const char *want;
  } bad[] = {{{64, 0, 1e-4, 5}, "L = 0"},         {{63, 2, 1e-4, 5}, "n = 63"},
             {{64, 2, 0, 5}, "diffusion = 0"},     {{64, 2, -1, 5}, "diffusion = -1"},
             {{64, 2, 1e-4, -5}, "reaction = -5"}, {{64, 2, 1e-4, NAN}, "reaction = nan"},
             {{64, INFINITY, 1e-4, 5}, "L = inf"}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    opl_err e = {0};
    opl_allen_cahn *a = opl_allen_cahn_new(&bad[i].p, NULL, OPL_GRID_ESTIMATE, &e);
    ok(!a && e.status == OPL_ERR_ARG && strstr(e.msg, bad[i].want), "allen_cahn refuses %s (%s)", bad[i].want, e.msg);
  }
  opl_allen_cahn_params p = {32, 2, 1e-4, 5};
  opl_grid *g = opl_grid_new_1d(32, 3, OPL_GRID_ESTIMATE, NULL);
  opl_err e = {0};
  ok(!opl_allen_cahn_new(&p, g, 0, &e) && e.status == OPL_ERR_ARG && strstr(e.msg, "L = 3"),
     "mismatched grid refused (%s)", e.msg);
  opl_grid_free(&g);
  opl_solve_opts o = test_opts(1, 1, 1e-3);
  o.scheme = OPL_SCHEME_FNO;
  double u0[32] = {0}, out[32];
  ok(opl_solve_allen_cahn(&p, u0, &o, out, NULL, &e) == OPL_ERR_ARG && strstr(e.msg, "fno"), "fno scheme refused (%s)",
     e.msg);
}

static void test_terms(void) {
  const int n = 64;
  const double L = 3.0, d = 0.03, r = 2.5;
  opl_allen_cahn_params p = {n, L, d, r};
  opl_allen_cahn *a = opl_allen_cahn_new(&p, NULL, OPL_GRID_ESTIMATE, NULL);
  const opl_grid *g = opl_allen_cahn_grid(a);
  double *Lk = opl_pde_alloc(2 * g->nspec), *Lr = opl_pde_alloc(g->nspec);
  opl_allen_cahn_linear(a, Lk);
  opl_allen_cahn_linear_real(a, Lr);
  int good = 1;
  for (int c = 0; c < g->nch; c++) {
    double kk = 2 * M_PI * c / L, want = -d * kk * kk;
    good &= Lk[2 * c + 1] == 0 && fabs(Lk[2 * c] - want) <= 1e-13 * (1 + fabs(want)) && Lr[c] == Lk[2 * c];
  }
  ok(good, "L(k) = -d k^2, real");
  trig t;
  trig_rand(&t, 6, L, &rs); /* the cube has modes <= 18 < 64/3: no aliasing */
  double *u = opl_pde_alloc(n), *uh = opl_pde_alloc(2 * g->nspec), *nh = opl_pde_alloc(2 * g->nspec),
         *v = opl_pde_alloc(n), *want = opl_pde_alloc(n);
  for (int i = 0; i < n; i++) {
    u[i] = trig_d(&t, opl_grid_x(g, 0, i), 0);
    want[i] = r * (u[i] - u[i] * u[i] * u[i]);
  }
  opl_grid_forward(g, u, uh);
  opl_allen_cahn_nonlinear(a, 0, uh, nh);
  opl_grid_inverse(g, nh, v);
  arrays_close(n, v, want, 0, 1e-12 * maxabs(want, n), "IFFT N(uh) = r (u - u^3) (analytic)");
  for (int i = 0; i < n; i++) want[i] += d * trig_d(&t, opl_grid_x(g, 0, i), 2);
  ok(opl_allen_cahn_rhs(a, 0, u, v) == 0, "rhs returns 0");
  arrays_close(n, v, want, 0, 1e-12 * maxabs(want, n), "rhs = d u_xx + r (u - u^3) (analytic)");
  /* In-place N. */
  opl_grid_forward(g, u, uh);
  opl_allen_cahn_nonlinear(a, 0, uh, uh);
  double *nh2 = opl_pde_alloc(2 * g->nspec);
  opl_grid_forward(g, u, nh);
  opl_allen_cahn_nonlinear(a, 0, nh, nh2);
  ok(maxabs_diff(2 * g->nspec, uh, nh2) == 0, "N in place equals N out of place");
  opl_pde_free(nh2);
  /* Energy of a trigonometric polynomial against a fine quadrature of the exact integrand. */
  double e = opl_allen_cahn_energy(a, u), ex = 0;
  const int M = 20000;
  for (int i = 0; i < M; i++) {
    double x = L * i / M, w = trig_d(&t, x, 0), wx = trig_d(&t, x, 1);
    ex += 0.5 * d * wx * wx + 0.25 * r * (w * w - 1) * (w * w - 1);
  }
  ex *= L / M;
  is_close(e, ex, 1e-12, 0, "energy of a trigonometric polynomial (%.6f)", e);
  opl_pde_free(Lk);
  opl_pde_free(Lr);
  opl_pde_free(u);
  opl_pde_free(uh);
  opl_pde_free(nh);
  opl_pde_free(v);
  opl_pde_free(want);
  opl_allen_cahn_free(&a);
}

/* u = 1, -1 and 0 are equilibria: a solve keeps them to rounding (all three schemes). */
static void test_equilibria(void) {
  const int n = 64;
  opl_allen_cahn_params p = {n, 2, 1e-4, 5};
  double u0[64], out[64 * 4];
  const double vals[3] = {1, -1, 0};
  const int schemes[3] = {OPL_SCHEME_ETDRK4, OPL_SCHEME_RK, OPL_SCHEME_CN_HEUN};
  for (int s = 0; s < 3; s++)
    for (int k = 0; k < 3; k++) {
      for (int i = 0; i < n; i++) u0[i] = vals[k];
      opl_solve_opts o = test_opts(2.0, 4, 1e-2);
      o.scheme = schemes[s];
      if (schemes[s] == OPL_SCHEME_RK) o.dt = 0;
      opl_err e = {0};
      int rc = opl_solve_allen_cahn(&p, u0, &o, out, NULL, &e);
      double dev = 0;
      for (int i = 0; i < 4 * n; i++) dev = fmax(dev, fabs(out[i] - vals[k]));
      ok(rc == OPL_OK && dev < 1e-14, "%s keeps u = %g to %.1e", opl_solve_scheme_name(schemes[s]), vals[k], dev);
    }
}

static double u0_pinn(double x) { return x * x * cos(M_PI * x); }
/* A smooth periodic start on [-1, 1] that also forms fronts. */
static double u0_smooth(double x) { return 0.6 * sin(M_PI * x) + 0.3 * cos(2 * M_PI * x) - 0.1; }
static int smooth_u0;

/* Solve the PINN problem (d = 1e-4, r = 5 on [-1, 1], u0 = x^2 cos(pi x), or u0_smooth when
 * smooth_u0) on y = x + 1. */
static int solve_pinn(int n, double dt, double T, int nt, double *out, opl_solve_stats *st) {
  opl_allen_cahn_params p = {n, 2, 1e-4, 5};
  double *u0 = opl_pde_alloc(n);
  for (int i = 0; i < n; i++) u0[i] = (smooth_u0 ? u0_smooth : u0_pinn)(i * 2.0 / n - 1);
  opl_solve_opts o = test_opts(T, nt, dt);
  opl_err e = {0};
  int rc = opl_solve_allen_cahn(&p, u0, &o, out, st, &e);
  if (rc) diag("solve_pinn: %s", e.msg);
  opl_pde_free(u0);
  return rc;
}

/* E(u(t)) along the PINN problem at 200 times: strictly decreasing (a gradient flow), and
 * dE/dt = -int u_t^2 dx checked by centred differences at a few times. */
static void test_energy(void) {
  const int n = 1024, nt = sanitized() ? 50 : 200;
  const double T = 1;
  double *out = opl_pde_alloc((int64_t)nt * n), *f = opl_pde_alloc(n);
  ok(solve_pinn(n, 2e-4, T, nt, out, NULL) == OPL_OK, "PINN problem solved at %d points", n);
  opl_allen_cahn_params p = {n, 2, 1e-4, 5};
  opl_allen_cahn *a = opl_allen_cahn_new(&p, NULL, OPL_GRID_ESTIMATE, NULL);
  int mono = 1;
  double prev = INFINITY, e0 = 0, e1 = 0, minstep = INFINITY;
  for (int j = 0; j < nt; j++) {
    double E = opl_allen_cahn_energy(a, out + (int64_t)j * n);
    if (j == 0) e0 = E;
    e1 = E;
    if (!(E < prev)) mono = 0;
    if (j) minstep = fmin(minstep, prev - E);
    prev = E;
  }
  diag("energy from %.6f (t = %g) to %.6f (t = 1); smallest decrease between frames %.3e", e0, T / nt, e1, minstep);
  ok(mono, "energy strictly decreasing over %d frames", nt);
  /* dE/dt = -int f^2: centred difference of E over frames j-1, j+1 (dt_f = T/nt; O(dt_f^2)). */
  double worst = 0;
  for (int j = 5; j < nt - 1; j += nt / 8) {
    double Em = opl_allen_cahn_energy(a, out + (int64_t)(j - 1) * n), Ep = opl_allen_cahn_energy(a, out + (int64_t)(j + 1) * n);
    double dEdt = (Ep - Em) / (2 * T / nt);
    opl_allen_cahn_rhs(a, 0, out + (int64_t)j * n, f);
    double s = 0;
    for (int i = 0; i < n; i++) s += f[i] * f[i];
    s *= 2.0 / n;
    worst = fmax(worst, fabs(dEdt + s) / s);
  }
  diag("dE/dt = -int u_t^2: worst relative mismatch %.2e (centred differences over %g)", worst, 2 * T / nt);
  ok(worst < 2e-2, "dE/dt = -int u_t^2 dx within %.1e (difference quotient)", worst);
  opl_allen_cahn_free(&a);
  opl_pde_free(out);
  opl_pde_free(f);
}

/* ETDRK4's order in dt on the PINN problem (n = 512, T = 0.5) against dt = 1e-4, and
 * convergence in n at fixed dt against n = 4096. */
static void test_convergence(void) {
  const int n = 512, nt = 1;
  const double T = 0.5;
  double ref[512], out[512];
  opl_solve_stats st;
  ok(solve_pinn(n, 1e-4, T, nt, ref, &st) == OPL_OK, "reference dt = 1e-4");
  const double dts[3] = {0.02, 0.01, 0.005};
  double err[3];
  for (int k = 0; k < 3; k++) {
    solve_pinn(n, dts[k], T, nt, out, NULL);
    err[k] = maxabs_diff(n, out, ref);
  }
  double o1 = log2(err[0] / err[1]), o2 = log2(err[1] / err[2]);
  diag("ETDRK4 errors at dt = 0.02, 0.01, 0.005: %.3e %.3e %.3e; observed orders %.2f %.2f", err[0], err[1], err[2], o1,
       o2);
  ok(o1 > 3.6 && o2 > 3.6 && o1 < 4.6 && o2 < 4.6, "fourth order in dt (%.2f, %.2f)", o1, o2);
  /* In n, from a smooth periodic start (the PINN u0 has a kink at x = +-1, whose sampling at
   * n points aliases O(1/n^2) into every mode; pinn_problems.c projects it instead), to T = 1:
   * the final frames at the points common to all grids against n = 4096. */
  smooth_u0 = 1;
  const int nf = 4096;
  double *fine = opl_pde_alloc(nf), *co = opl_pde_alloc(nf);
  solve_pinn(nf, 1e-3, 1.0, nt, fine, NULL);
  const int ns[3] = {256, 512, 1024};
  double en[3];
  for (int k = 0; k < 3; k++) {
    solve_pinn(ns[k], 1e-3, 1.0, nt, co, NULL);
    double m = 0;
    for (int i = 0; i < 256; i++) m = fmax(m, fabs(co[i * (ns[k] / 256)] - fine[i * (nf / 256)]));
    en[k] = m;
  }
  smooth_u0 = 0;
  diag("error against n = %d at n = 256, 512, 1024: %.3e %.3e %.3e", nf, en[0], en[1], en[2]);
  /* Measured 6.2e-2, 2.9e-3, 1.2e-5: the ratio grows with n (exponential, not algebraic). */
  ok(en[1] < en[0] / 10 && en[2] < en[1] / 100 && en[2] < 1e-4, "spectral convergence in n (%.1e -> %.1e -> %.1e)",
     en[0], en[1], en[2]);
  opl_pde_free(fine);
  opl_pde_free(co);
}

/* The adaptive RK core on the full right-hand side against ETDRK4 on (L, N). */
static void test_rk_vs_etdrk4(void) {
  const int n = 256;
  opl_allen_cahn_params p = {n, 2, 0.01, 1};
  double u0[256], a[256], b[256];
  for (int i = 0; i < n; i++) u0[i] = 0.8 * sin(M_PI * (i * 2.0 / n)) + 0.3 * cos(3 * M_PI * (i * 2.0 / n));
  opl_solve_opts o = test_opts(0.5, 1, 1e-4);
  opl_err e = {0};
  ok(opl_solve_allen_cahn(&p, u0, &o, a, NULL, &e) == OPL_OK, "ETDRK4 (%s)", e.msg);
  o.scheme = OPL_SCHEME_RK;
  o.dt = 0;
  o.rtol = 1e-11;
  o.atol = 1e-12;
  ok(opl_solve_allen_cahn(&p, u0, &o, b, NULL, &e) == OPL_OK, "RK core (%s)", e.msg);
  double d = maxabs_diff(n, a, b);
  ok(d < 1e-9, "RK core on the rhs agrees with ETDRK4 on (L, N): %.2e", d);
}

int main(void) {
  tap_begin();
  test_params();
  test_terms();
  test_equilibria();
  test_energy();
  test_convergence();
  test_rk_vs_etdrk4();
  return tap_end();
}
