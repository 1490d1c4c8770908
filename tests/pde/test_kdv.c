/* KdV: parameters, L(k) and N(uh) against analytic evaluations, the invariants (conserved by
 * the right-hand side, sign of the Hamiltonian), one- and two-soliton solutions (PDE residual
 * by spectral space derivatives and finite differences in time, Hirota's formula against a
 * direct (log F)_xx, the a/b scaling), an RK4 solve against the travelling soliton, and the
 * MP-PDE initial condition. */
#include <math.h>
#include <string.h>
#include "tests/tap.h"
#include "pde/kdv.h"
#include "tests/pde/pdetest.h"

static uint64_t rs = 4242;

static void test_params(void) {
  struct { opl_kdv_params p; const char *want; } bad[] = {
      {{64, 0, 1, 1}, "L = 0"}, {{64, -5, 1, 1}, "L = -5"}, {{65, 10, 1, 1}, "n = 65"}, {{0, 10, 1, 1}, "n = 0"},
      {{64, 10, NAN, 1}, "a = nan"}, {{64, 10, 1, INFINITY}, "b = inf"}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    opl_err e = {0};
    opl_kdv *k = opl_kdv_new(&bad[i].p, NULL, OPL_GRID_ESTIMATE, &e);
    ok(!k && e.status == OPL_ERR_ARG && strstr(e.msg, bad[i].want), "kdv refuses %s (%s)", bad[i].want, e.msg);
  }
  opl_kdv_params p = OPL_KDV_PARAMS(32, 10);
  ok(p.a == 1 && p.b == 1, "defaults a = b = 1");
  opl_grid *g = opl_grid_new_1d(32, 11, OPL_GRID_ESTIMATE, NULL);
  opl_err e = {0};
  ok(!opl_kdv_new(&p, g, 0, &e) && e.status == OPL_ERR_ARG && strstr(e.msg, "L = 11"), "mismatched grid refused (%s)",
     e.msg);
  opl_grid_free(&g);
}

static void test_terms(void) {
  const int n = 64;
  const double L = 7.0, a = 1.7, b = -0.6;
  opl_kdv_params p = {n, L, a, b};
  opl_kdv *k = opl_kdv_new(&p, NULL, OPL_GRID_ESTIMATE, NULL);
  const opl_grid *g = opl_kdv_grid(k);
  double *Lk = opl_pde_alloc(2 * g->nspec);
  opl_kdv_linear(k, Lk);
  int good = 1;
  for (int c = 0; c < g->nch; c++) {
    double kk = 2 * M_PI * c / L, want = c == n / 2 ? 0 : b * kk * kk * kk;
    good &= Lk[2 * c] == 0 && fabs(Lk[2 * c + 1] - want) <= 1e-13 * (1 + fabs(want));
  }
  ok(good, "L(k) = i b k^3, 0 at the Nyquist bin");
  trig t;
  trig_rand(&t, 9, L, &rs); /* 2 * 9 < 64/3: u^2 fully kept */
  double *u = opl_pde_alloc(n), *uh = opl_pde_alloc(2 * g->nspec), *nh = opl_pde_alloc(2 * g->nspec),
         *v = opl_pde_alloc(n), *want = opl_pde_alloc(n);
  for (int i = 0; i < n; i++) {
    double x = opl_grid_x(g, 0, i);
    u[i] = trig_d(&t, x, 0);
    want[i] = -a * u[i] * trig_d(&t, x, 1);
  }
  opl_grid_forward(g, u, uh);
  opl_kdv_nonlinear(k, 0, uh, nh);
  opl_grid_inverse(g, nh, v);
  arrays_close(n, v, want, 0, 1e-12 * maxabs(want, n), "IFFT N(uh) = -a u u_x (analytic)");
  for (int i = 0; i < n; i++) want[i] += -b * trig_d(&t, opl_grid_x(g, 0, i), 3);
  ok(opl_kdv_rhs(k, 0, u, v) == 0, "rhs returns 0");
  arrays_close(n, v, want, 0, 1e-12 * maxabs(want, n), "rhs = -a u u_x - b u_xxx (analytic)");
  opl_pde_free(Lk);
  opl_pde_free(u);
  opl_pde_free(uh);
  opl_pde_free(nh);
  opl_pde_free(v);
  opl_pde_free(want);
  opl_kdv_free(&k);
}

/* d/dt of the invariants along f(u), each from its definition: I1' = int f, I2' = 2 int u f,
 * H' = int (b u_x f_x - a/2 u^2 f) (spectral derivatives). */
static void test_invariants(void) {
  const int n = 96;
  const double L = 12.0;
  const double ab[][2] = {{1, 1}, {6, 1}, {-2, 0.5}};
  for (int q = 0; q < 3; q++) {
    opl_kdv_params p = {n, L, ab[q][0], ab[q][1]};
    opl_kdv *k = opl_kdv_new(&p, NULL, OPL_GRID_ESTIMATE, NULL);
    const opl_grid *g = opl_kdv_grid(k);
    trig t;
    trig_rand(&t, 31, L, &rs); /* the full kept band: 3 * 31 < 96 */
    double *u = opl_pde_alloc(n), *f = opl_pde_alloc(n), *ux = opl_pde_alloc(n), *fx = opl_pde_alloc(n),
           *w = opl_pde_alloc(2 * g->nspec);
    for (int i = 0; i < n; i++) u[i] = trig_d(&t, opl_grid_x(g, 0, i), 0);
    opl_kdv_rhs(k, 0, u, f);
    opl_grid_deriv(g, 1, 0, u, ux, w);
    opl_grid_deriv(g, 1, 0, f, fx, w);
    double d1 = 0, d2 = 0, dH = 0, s1 = 0, s2 = 0, sH = 0;
    for (int i = 0; i < n; i++) {
      d1 += f[i], s1 += fabs(f[i]);
      d2 += 2 * u[i] * f[i], s2 += fabs(2 * u[i] * f[i]);
      double h1 = p.b * ux[i] * fx[i], h2 = -0.5 * p.a * u[i] * u[i] * f[i];
      dH += h1 + h2, sH += fabs(h1) + fabs(h2);
    }
    ok(fabs(d1) <= 1e-13 * s1, "a = %g, b = %g: d/dt int u = 0 (%.2g of %.2g)", p.a, p.b, d1, s1);
    ok(fabs(d2) <= 1e-13 * s2, "a = %g, b = %g: d/dt int u^2 = 0 (%.2g of %.2g)", p.a, p.b, d2, s2);
    ok(fabs(dH) <= 1e-12 * sH, "a = %g, b = %g: dH/dt = 0, H = int(b/2 u_x^2 - a/6 u^3) (%.2g of %.2g)", p.a, p.b,
       dH, sH);
    /* The other sign of the cubic term is not conserved: the test can tell. */
    double dHw = 0;
    for (int i = 0; i < n; i++) dHw += p.b * ux[i] * fx[i] + 0.5 * p.a * u[i] * u[i] * f[i];
    ok(fabs(dHw) > 1e-6 * sH, "a = %g, b = %g: int(b/2 u_x^2 + a/6 u^3) is not conserved (%.2g)", p.a, p.b, dHw);
    /* opl_kdv_invariants against the coefficients / direct sums. */
    double inv[3];
    opl_kdv_invariants(k, u, inv);
    double I2 = t.a[0] * t.a[0], H = 0;
    for (int m = 1; m <= t.K; m++) I2 += 0.5 * (t.a[m] * t.a[m] + t.b[m] * t.b[m]);
    for (int i = 0; i < n; i++) {
      double x = opl_grid_x(g, 0, i), v = trig_d(&t, x, 0), vx = trig_d(&t, x, 1);
      H += 0.5 * p.b * vx * vx - p.a / 6 * v * v * v;
    }
    is_close(inv[0], t.a[0] * L, 1e-12, 1e-14, "int u = a0 L");
    is_close(inv[1], I2 * L, 1e-12, 0, "int u^2 from the coefficients");
    is_close(inv[2], H * L / n, 1e-12, 1e-14, "H against the closed-form u_x");
    opl_pde_free(u);
    opl_pde_free(f);
    opl_pde_free(ux);
    opl_pde_free(fx);
    opl_pde_free(w);
    opl_kdv_free(&k);
  }
}

/* PDE residual of an exact solution u(x, t): u_t by a 4th-order difference in t, space
 * derivatives spectrally on the grid. Returns max |residual| / max |a u u_x|. */
typedef double (*sol_fn)(const opl_kdv_params *p, const double *args, double x, double t);
static double residual(const opl_kdv_params *p, const opl_grid *g, sol_fn fn, const double *args, double t) {
  int n = g->n[0];
  double *u = opl_pde_alloc(n), *ux = opl_pde_alloc(n), *uxxx = opl_pde_alloc(n), *w = opl_pde_alloc(2 * g->nspec);
  for (int i = 0; i < n; i++) u[i] = fn(p, args, opl_grid_x(g, 0, i), t);
  opl_grid_deriv(g, 1, 0, u, ux, w);
  opl_grid_deriv(g, 3, 0, u, uxxx, w);
  double r = 0, s = 0, h = 1e-3;
  for (int i = 0; i < n; i++) {
    double x = opl_grid_x(g, 0, i);
    double ut = (-fn(p, args, x, t + 2 * h) + 8 * fn(p, args, x, t + h) - 8 * fn(p, args, x, t - h) +
                 fn(p, args, x, t - 2 * h)) / (12 * h);
    r = fmax(r, fabs(ut + p->a * u[i] * ux[i] + p->b * uxxx[i]));
    s = fmax(s, fabs(p->a * u[i] * ux[i]));
  }
  opl_pde_free(u);
  opl_pde_free(ux);
  opl_pde_free(uxxx);
  opl_pde_free(w);
  return r / s;
}
static double f_one(const opl_kdv_params *p, const double *a, double x, double t) {
  return opl_kdv_soliton(p, a[0], a[1], x, t);
}
static double f_two(const opl_kdv_params *p, const double *a, double x, double t) {
  return opl_kdv_two_soliton(p, a[0], a[1], a[2], a[3], x, t);
}

static void test_solitons(void) {
  const double ab[][2] = {{1, 1}, {6, 1}, {-2, 0.5}, {3, -1.5}};
  opl_grid *g = opl_grid_new_1d(256, 40, OPL_GRID_ESTIMATE, NULL);
  for (int q = 0; q < 4; q++) {
    opl_kdv_params p = {256, 40, ab[q][0], ab[q][1]};
    double args[2] = {4.0, 20.0};
    double r = residual(&p, g, f_one, args, 0.3);
    ok(r < 1e-8, "a = %g, b = %g: one soliton solves the PDE (relative residual %.2g)", p.a, p.b, r);
    /* amplitude 3 b c / a at x0 + b c t. */
    is_close(opl_kdv_soliton(&p, 4.0, 20.0, 20 + p.b * 4 * 0.7, 0.7), 3 * p.b * 4 / p.a, 1e-14, 0,
             "a = %g, b = %g: amplitude 3bc/a travels at speed bc", p.a, p.b);
  }
  /* The 6 u u_x form: u = (c/2) sech^2(sqrt(c)/2 (x - c t - x0)) exactly. */
  opl_kdv_params p6 = {256, 40, 6, 1};
  double x = 21.3, tt = 0.2, c = 2.5;
  is_close(opl_kdv_soliton(&p6, c, 20, x, tt), 0.5 * c / pow(cosh(0.5 * sqrt(c) * (x - c * tt - 20)), 2), 1e-14, 0,
           "a = 6: u = c/2 sech^2(sqrt(c)/2 (x - ct - x0))");
  /* Periodic wrap: the nearest image. */
  is_close(opl_kdv_soliton(&p6, c, 1.0, 39.5, 0), opl_kdv_soliton(&p6, c, 1.0, -0.5, 0), 1e-14, 0,
           "soliton wraps to the nearest periodic image");
  opl_grid_free(&g);

  /* Two solitons on L = 80, n = 512: before, during and after the collision. */
  g = opl_grid_new_1d(512, 80, OPL_GRID_ESTIMATE, NULL);
  for (int q = 0; q < 3; q++) {
    opl_kdv_params p = {512, 80, ab[q][0], ab[q][1]};
    double args[4] = {1.0, 1.6, 42.0, 36.0};
    const double ts[3] = {0.0, 2.5 / p.b, 5.0 / p.b};
    for (int s = 0; s < 3; s++) {
      double r = residual(&p, g, f_two, args, ts[s]);
      ok(r < 1e-7, "a = %g, b = %g: two solitons solve the PDE at t = %g (relative residual %.2g)", p.a, p.b, ts[s], r);
    }
  }
  /* Hirota's formula against a direct second difference of log F (6 u u_x form, u = w). */
  double k1 = 1.0, k2 = 1.6, A = pow((k1 - k2) / (k1 + k2), 2), d = 0;
  for (double xx = 30; xx < 50; xx += 0.7) {
    double t = 1.1, h = 1e-3, lf[5];
    for (int j = -2; j <= 2; j++) {
      double y = xx + j * h, e1 = k1 * (y - 42) - k1 * k1 * k1 * t, e2 = k2 * (y - 36) - k2 * k2 * k2 * t;
      lf[j + 2] = log(1 + exp(e1) + exp(e2) + A * exp(e1 + e2));
    }
    double lxx = (-lf[0] + 16 * lf[1] - 30 * lf[2] + 16 * lf[3] - lf[4]) / (12 * h * h);
    d = fmax(d, fabs(opl_kdv_two_soliton(&p6, k1, k2, 42, 36, xx, 1.1) - 2 * lxx));
  }
  ok(d < 1e-6, "two-soliton = 2 (log F)_xx by direct differences (max diff %.2g)", d);
  /* Far apart the two solitons are two one-solitons of c = k^2 (up to the phase shifts). */
  double peak = 0;
  for (double xx = 0; xx < 80; xx += 0.01) peak = fmax(peak, opl_kdv_two_soliton(&p6, k1, k2, 20, 60, xx, 0));
  is_close(peak, k2 * k2 / 2, 1e-4, 0, "far apart: the taller peak is c/2 = k2^2/2 (sampled every 0.01)");
  /* Large arguments do not overflow. */
  ok(isfinite(opl_kdv_two_soliton(&p6, k1, k2, 0, 0, 900, 0)) && isfinite(opl_kdv_two_soliton(&p6, k1, k2, 0, 0, -900, 0)),
     "no overflow far from the centres");
  opl_grid_free(&g);
}

/* RK4 with the equation's RHS: a soliton travels once across part of the domain, exactly. */
static void test_solve(void) {
  const int n = 128;
  opl_kdv_params p = OPL_KDV_PARAMS(n, 40.0);
  opl_kdv *k = opl_kdv_new(&p, NULL, 0, NULL);
  const opl_grid *g = opl_kdv_grid(k);
  double *u = opl_pde_alloc(n), *k1 = opl_pde_alloc(n), *k2 = opl_pde_alloc(n), *k3 = opl_pde_alloc(n),
         *k4 = opl_pde_alloc(n), *y = opl_pde_alloc(n), *want = opl_pde_alloc(n);
  const double c = 1.0, x0 = 15, T = 2.0;
  for (int i = 0; i < n; i++) u[i] = opl_kdv_soliton(&p, c, x0, opl_grid_x(g, 0, i), 0);
  double inv0[3], inv1[3];
  opl_kdv_invariants(k, u, inv0);
  const int S = 2000;
  double dt = T / S;
  for (int s = 0; s < S; s++) {
    opl_kdv_rhs(k, 0, u, k1);
    for (int i = 0; i < n; i++) y[i] = u[i] + 0.5 * dt * k1[i];
    opl_kdv_rhs(k, 0, y, k2);
    for (int i = 0; i < n; i++) y[i] = u[i] + 0.5 * dt * k2[i];
    opl_kdv_rhs(k, 0, y, k3);
    for (int i = 0; i < n; i++) y[i] = u[i] + dt * k3[i];
    opl_kdv_rhs(k, 0, y, k4);
    for (int i = 0; i < n; i++) u[i] += dt / 6 * (k1[i] + 2 * k2[i] + 2 * k3[i] + k4[i]);
  }
  for (int i = 0; i < n; i++) want[i] = opl_kdv_soliton(&p, c, x0, opl_grid_x(g, 0, i), T);
  arrays_close(n, u, want, 0, 1e-7, "RK4 (n = 128, dt = 1e-3) moves the soliton exactly to t = 2");
  opl_kdv_invariants(k, u, inv1);
  is_close(inv1[0], inv0[0], 1e-12, 0, "int u conserved along the solve");
  is_close(inv1[1], inv0[1], 1e-9, 0, "int u^2 conserved along the solve");
  is_close(inv1[2], inv0[2], 1e-7, 0, "H conserved along the solve");
  is_close(inv0[1], 24.0 * sqrt(c) * c * 0.5 * 2, 1e-10, 0, "int u^2 of the soliton = 24 c^1.5 (closed form)");
  opl_pde_free(u);
  opl_pde_free(k1);
  opl_pde_free(k2);
  opl_pde_free(k3);
  opl_pde_free(k4);
  opl_pde_free(y);
  opl_pde_free(want);
  opl_kdv_free(&k);
}

/* Field-by-field equality (the struct has padding). */
static int ic_eq(const opl_kdv_ic *a, const opl_kdv_ic *b) {
  int e = a->L == b->L && a->T == b->T && a->n == b->n;
  for (int j = 0; j < OPL_KDV_IC_MODES; j++) e &= a->A[j] == b->A[j] && a->phi[j] == b->phi[j] && a->l[j] == b->l[j];
  return e;
}

static void test_ic(void) {
  opl_rng r;
  opl_rng_seed(&r, 1);
  double Lmin = 1e9, Lmax = 0, Tmin = 1e9, Tmax = 0, Amin = 1, Amax = -1, pmin = 9, pmax = -1;
  int cnt[3] = {0, 0, 0};
  opl_kdv_ic ic;
  for (int s = 0; s < 2000; s++) {
    opl_kdv_ic_mppde(&r, &ic);
    Lmin = fmin(Lmin, ic.L), Lmax = fmax(Lmax, ic.L), Tmin = fmin(Tmin, ic.T), Tmax = fmax(Tmax, ic.T);
    for (int j = 0; j < OPL_KDV_IC_MODES; j++) {
      Amin = fmin(Amin, ic.A[j]), Amax = fmax(Amax, ic.A[j]);
      pmin = fmin(pmin, ic.phi[j]), pmax = fmax(pmax, ic.phi[j]);
      cnt[ic.l[j] >= 0 && ic.l[j] <= 2 ? ic.l[j] : 0]++;
    }
  }
  ok(Lmin >= 115.2 && Lmax <= 140.8 && Lmin < 116 && Lmax > 140, "L in 128 [0.9, 1.1] (%.2f .. %.2f)", Lmin, Lmax);
  ok(Tmin >= 90 && Tmax <= 110 && Tmin < 90.5 && Tmax > 109.5, "T in 100 [0.9, 1.1] (%.2f .. %.2f)", Tmin, Tmax);
  ok(Amin >= -0.5 && Amax <= 0.5 && Amin < -0.49 && Amax > 0.49, "A in [-1/2, 1/2]");
  ok(pmin >= 0 && pmax < 2 * M_PI && pmin < 0.01 && pmax > 2 * M_PI - 0.01, "phi in [0, 2 pi)");
  ok(cnt[0] == 0 && abs(cnt[1] - cnt[2]) < 600, "l in {1, 2} equally often (%d, %d)", cnt[1], cnt[2]);
  /* Evaluation: n = 256 points on [0, L), only modes 1 and 2, the formula. */
  opl_kdv_ic_mppde_seeded(9, 3, &ic);
  opl_kdv_ic ic2;
  opl_kdv_ic_mppde_seeded(9, 3, &ic2);
  ok(ic_eq(&ic, &ic2), "seeded draw is reproducible");
  opl_rng parent;
  opl_rng_seed(&parent, 9);
  opl_rng child = opl_rng_split(&parent, 3);
  opl_kdv_ic_mppde(&child, &ic2);
  ok(ic_eq(&ic, &ic2), "seeded draw = draw from opl_rng_split(seed, index)");
  opl_kdv_ic_mppde_seeded(9, 4, &ic2);
  ok(!ic_eq(&ic, &ic2), "index 4 differs from index 3");
  double u[256];
  opl_kdv_ic_eval(&ic, u);
  double s = 0;
  for (int j = 0; j < OPL_KDV_IC_MODES; j++) s += ic.A[j] * sin(2 * M_PI * ic.l[j] * 17 / 256.0 + ic.phi[j]);
  is_close(u[17], s, 1e-14, 1e-15, "u0(x_17) from the formula");
  opl_grid *g = opl_grid_new_1d(256, ic.L, OPL_GRID_ESTIMATE, NULL);
  double *uh = opl_pde_alloc(2 * g->nspec), *ua = opl_pde_alloc(256);
  memcpy(ua, u, sizeof u);
  opl_grid_forward(g, ua, uh);
  double other = 0;
  for (int c = 0; c < g->nch; c++)
    if (c != 1 && c != 2) other = fmax(other, hypot(uh[2 * c], uh[2 * c + 1]));
  ok(other < 1e-12, "u0 has only the modes l = 1, 2 on its periodic domain");
  opl_pde_free(uh);
  opl_pde_free(ua);
  opl_grid_free(&g);
}

int main(void) {
  tap_begin();
  test_params();
  test_terms();
  test_invariants();
  test_solitons();
  test_solve();
  test_ic();
  return tap_end();
}
