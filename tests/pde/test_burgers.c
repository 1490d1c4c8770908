/* Burgers: parameters, the linear symbol, the dealiased nonlinear term and the full
 * right-hand side against analytic evaluations, the energy budget, the Cole-Hopf exact solution
 * (reference values of Basdevant et al. 1986, PDE residual, self-convergence) and a spectral
 * RK4 solve against it. */
#include <math.h>
#include <omp.h>
#include <string.h>
#include "tests/tap.h"
#include "pde/burgers.h"
#include "tests/pde/pdetest.h"

static uint64_t rs = 777;
static double urand(void) { return pdetest_urand(&rs); }

static void test_params(void) {
  struct { opl_burgers_params p; const char *want; } bad[] = {
      {{64, 1, 0}, "nu = 0"}, {{64, 1, -0.1}, "nu = -0.1"}, {{64, 1, NAN}, "nu = nan"}, {{64, 0, 0.1}, "L = 0"},
      {{64, -2, 0.1}, "L = -2"}, {{63, 1, 0.1}, "n = 63"}, {{2, 1, 0.1}, "n = 2"}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    opl_err e = {0};
    opl_burgers *b = opl_burgers_new(&bad[i].p, NULL, OPL_GRID_ESTIMATE, &e);
    ok(!b && e.status == OPL_ERR_ARG && strstr(e.msg, bad[i].want), "burgers refuses %s (%s)", bad[i].want, e.msg);
  }
  opl_grid *g = opl_grid_new_1d(32, 1, OPL_GRID_ESTIMATE, NULL);
  opl_burgers_params p = {64, 1, 0.1};
  opl_err e = {0};
  ok(!opl_burgers_new(&p, g, 0, &e) && e.status == OPL_ERR_ARG && strstr(e.msg, "n = 32"),
     "a shared grid of another size is refused (%s)", e.msg);
  p.n = 32;
  opl_burgers *b = opl_burgers_new(&p, g, 0, &e);
  ok(b && opl_burgers_grid(b) == g, "a matching shared grid is used");
  opl_burgers_free(&b);
  opl_burgers_free(&b);
  opl_grid_free(&g);
}

static void test_linear_nonlinear(void) {
  const int n = 64;
  const double L = 3.0, nu = 0.07;
  opl_burgers_params p = {n, L, nu};
  opl_burgers *b = opl_burgers_new(&p, NULL, OPL_GRID_ESTIMATE, NULL);
  const opl_grid *g = opl_burgers_grid(b);
  double *Lk = opl_pde_alloc(2 * g->nspec);
  opl_burgers_linear(b, Lk);
  int good = 1;
  for (int c = 0; c < g->nch; c++) good &= fabs(Lk[2 * c] + nu * pow(2 * M_PI * c / L, 2)) <= 1e-14 * (1 + nu * pow(2 * M_PI * c / L, 2)) &&
            Lk[2 * c + 1] == 0;
  ok(good, "L(k) = -nu k^2 (k = 2 pi m / L), real");
  double *Lr = opl_pde_alloc(g->nspec);
  opl_burgers_linear_real(b, Lr);
  good = 1;
  for (int c = 0; c < g->nch; c++) good &= Lr[c] == Lk[2 * c];
  ok(good, "linear_real = real part of linear");
  opl_pde_free(Lr);
  /* N against -u u_x for u with modes <= 9 (2 * 9 < 64 / 3: no truncation of u^2). */
  trig t;
  trig_rand(&t, 9, L, &rs);
  double *u = opl_pde_alloc(n), *uh = opl_pde_alloc(2 * g->nspec), *nh = opl_pde_alloc(2 * g->nspec),
         *nx = opl_pde_alloc(n), *want = opl_pde_alloc(n), *f = opl_pde_alloc(n);
  for (int i = 0; i < n; i++) {
    double x = opl_grid_x(g, 0, i);
    u[i] = trig_d(&t, x, 0);
    want[i] = -u[i] * trig_d(&t, x, 1);
  }
  opl_grid_forward(g, u, uh);
  ok(opl_burgers_nonlinear(b, 0.0, uh, nh) == 0, "nonlinear returns 0");
  opl_grid_inverse(g, nh, nx);
  arrays_close(n, nx, want, 0, 1e-12 * maxabs(want, n), "IFFT N(uh) = -u u_x (analytic)");
  /* In place (nh == uh). */
  opl_grid_forward(g, u, uh);
  opl_burgers_nonlinear(b, 0.0, uh, uh);
  opl_grid_inverse(g, uh, nx);
  arrays_close(n, nx, want, 0, 1e-12 * maxabs(want, n), "nonlinear in place");
  /* Dealiased: modes above n/3 in the input do not change N, and N has none above n/3. */
  opl_grid_forward(g, u, uh);
  opl_burgers_nonlinear(b, 0.0, uh, nh);
  double *uh2 = opl_pde_alloc(2 * g->nspec), *nh2 = opl_pde_alloc(2 * g->nspec);
  memcpy(uh2, uh, sizeof(double) * 2 * g->nspec);
  uh2[2 * 25] += 7.0, uh2[2 * 30 + 1] -= 3.0; /* 3 * 25 >= 64 */
  opl_burgers_nonlinear(b, 0.0, uh2, nh2);
  double d = 0, hi = 0;
  for (int c = 0; c < g->nch; c++) {
    d = fmax(d, fabs(nh2[2 * c] - nh[2 * c]) + fabs(nh2[2 * c + 1] - nh[2 * c + 1]));
    if (3 * c >= n) hi = fmax(hi, fabs(nh[2 * c]) + fabs(nh[2 * c + 1]));
  }
  ok(d == 0 && hi == 0, "N ignores input modes |k| >= n/3 and has none itself");
  /* Full RHS against -u u_x + nu u_xx (analytic). */
  for (int i = 0; i < n; i++) want[i] = -u[i] * trig_d(&t, opl_grid_x(g, 0, i), 1) + nu * trig_d(&t, opl_grid_x(g, 0, i), 2);
  ok(opl_burgers_rhs(b, 0.5, u, f) == 0, "rhs returns 0");
  arrays_close(n, f, want, 0, 1e-12 * maxabs(want, n), "rhs = -u u_x + nu u_xx (analytic, band-limited u)");
  /* A smooth non-band-limited field: u = exp(sin(2 pi x / L)) on n = 128 against closed-form
   * derivatives (Fourier coefficients decay like 1/m!: spectral accuracy). */
  opl_burgers_params p2 = {128, L, nu};
  opl_burgers *b2 = opl_burgers_new(&p2, NULL, OPL_GRID_ESTIMATE, NULL);
  double *v = opl_pde_alloc(128), *fv = opl_pde_alloc(128), *wv = opl_pde_alloc(128);
  for (int i = 0; i < 128; i++) {
    double x = i * L / 128, k = 2 * M_PI / L, s = sin(k * x), c = cos(k * x), e = exp(s);
    double ux = k * c * e, uxx = k * k * (c * c - s) * e;
    v[i] = e;
    wv[i] = -e * ux + nu * uxx;
  }
  opl_burgers_rhs(b2, 0, v, fv);
  arrays_close(128, fv, wv, 0, 1e-11 * maxabs(wv, 128), "rhs of exp(sin x) = closed form (spectral accuracy)");
  /* Against a 4th-order centered finite difference on a fine grid of the same function. */
  double fd = 0;
  for (int i = 0; i < 128; i++) {
    double x = i * L / 128, h = 1e-3, k = 2 * M_PI / L;
    double um2 = exp(sin(k * (x - 2 * h))), um1 = exp(sin(k * (x - h))), u0 = exp(sin(k * x)),
           up1 = exp(sin(k * (x + h))), up2 = exp(sin(k * (x + 2 * h)));
    double ux = (um2 - 8 * um1 + 8 * up1 - up2) / (12 * h);
    double uxx = (-um2 + 16 * um1 - 30 * u0 + 16 * up1 - up2) / (12 * h * h);
    fd = fmax(fd, fabs(fv[i] - (-u0 * ux + nu * uxx)));
  }
  ok(fd < 1e-8, "rhs agrees with a 4th-order finite difference (max diff %.2g)", fd);
  opl_pde_free(v);
  opl_pde_free(fv);
  opl_pde_free(wv);
  opl_burgers_free(&b2);
  opl_pde_free(uh2);
  opl_pde_free(nh2);
  opl_pde_free(Lk);
  opl_pde_free(u);
  opl_pde_free(uh);
  opl_pde_free(nh);
  opl_pde_free(nx);
  opl_pde_free(want);
  opl_pde_free(f);
  opl_burgers_free(&b);
}

static void test_energy(void) {
  const int n = 96;
  const double L = 2.0, nu = 0.013;
  opl_burgers_params p = {n, L, nu};
  opl_burgers *b = opl_burgers_new(&p, NULL, OPL_GRID_ESTIMATE, NULL);
  const opl_grid *g = opl_burgers_grid(b);
  trig t;
  trig_rand(&t, 12, L, &rs);
  double *u = opl_pde_alloc(n), *f = opl_pde_alloc(n), *ux = opl_pde_alloc(n), *w = opl_pde_alloc(2 * g->nspec);
  for (int i = 0; i < n; i++) u[i] = trig_d(&t, opl_grid_x(g, 0, i), 0);
  /* E = 1/2 int u^2 against the coefficients: 1/2 L (a0^2 + sum (a_m^2 + b_m^2) / 2). */
  double E = t.a[0] * t.a[0];
  for (int m = 1; m <= t.K; m++) E += 0.5 * (t.a[m] * t.a[m] + t.b[m] * t.b[m]);
  E *= 0.5 * L;
  is_close(opl_burgers_energy(b, u), E, 1e-13, 0, "energy = 1/2 int u^2 (from the coefficients)");
  double D = 0;
  for (int m = 1; m <= t.K; m++) D += 0.5 * pow(2 * M_PI * m / L, 2) * (t.a[m] * t.a[m] + t.b[m] * t.b[m]);
  D *= nu * L;
  is_close(opl_burgers_dissipation(b, u), D, 1e-12, 0, "dissipation = nu int u_x^2 (from the coefficients)");
  /* Budget: dE/dt = <u, f(u)> = -D, for a field with modes up to 12 (u^2 aliased beyond n/3
   * but the dealiased term is still exactly energy-conserving). */
  opl_burgers_rhs(b, 0, u, f);
  double dE = 0;
  for (int i = 0; i < n; i++) dE += u[i] * f[i];
  dE *= g->dx[0];
  is_close(dE, -opl_burgers_dissipation(b, u), 1e-11, 0, "energy budget dE/dt = -nu int u_x^2");
  /* The same for a band-limited field filling the kept band (|k| <= 31). */
  trig t2;
  trig_rand(&t2, 31, L, &rs);
  for (int i = 0; i < n; i++) u[i] = trig_d(&t2, opl_grid_x(g, 0, i), 0);
  opl_burgers_rhs(b, 0, u, f);
  dE = 0;
  for (int i = 0; i < n; i++) dE += u[i] * f[i];
  dE *= g->dx[0];
  is_close(dE, -opl_burgers_dissipation(b, u), 1e-11, 0, "energy budget with the full kept band");
  opl_grid_deriv(g, 1, 0, u, ux, w);
  double s = 0;
  for (int i = 0; i < n; i++) s += ux[i] * ux[i];
  is_close(opl_burgers_dissipation(b, u), nu * s * g->dx[0], 1e-12, 0, "dissipation = nu dx sum (spectral u_x)^2");
  opl_pde_free(u);
  opl_pde_free(f);
  opl_pde_free(ux);
  opl_pde_free(w);
  opl_burgers_free(&b);
}

static double ch(double x, double t) { return opl_burgers_cole_hopf(x, t, 0.01 / M_PI); }
static double ch_x(double x, double t) { /* 4th-order centered difference */
  double h = 1e-6;
  return (-ch(x + 2 * h, t) + 8 * ch(x + h, t) - 8 * ch(x - h, t) + ch(x - 2 * h, t)) / (12 * h);
}

static void test_cole_hopf(void) {
  const double nu = 0.01 / M_PI;
  is_close(ch(0.3, 0), -sin(M_PI * 0.3), 0, 1e-15, "t = 0 returns -sin(pi x)");
  double d = 0;
  for (double x = -1; x <= 1; x += 0.05) d = fmax(d, fabs(ch(x, 1e-9) + sin(M_PI * x)));
  ok(d < 1e-7, "t -> 0 limit is -sin(pi x) (max diff %.2g at t = 1e-9)", d);
  /* Odd symmetry and periodicity. */
  d = 0;
  for (double x = 0.01; x < 1; x += 0.1) d = fmax(d, fabs(ch(x, 0.6) + ch(-x, 0.6)) + fabs(ch(x, 0.6) - ch(x - 2, 0.6)));
  ok(d < 1e-13, "u(-x) = -u(x), u(x - 2) = u(x) (diff %.2g)", d);
  /* Basdevant et al. (1986): for nu = 0.01/pi the maximum of |u_x| (at x = 0) is 152.00516,
   * reached at t = 1.6037/pi. */
  is_close(ch_x(0, 1.6037 / M_PI), -152.00516, 2e-8, 0, "u_x(0, 1.6037/pi) = -152.00516 (Basdevant et al.)");
  ok(fabs(ch_x(0, 1.58 / M_PI)) < 152.00516 && fabs(ch_x(0, 1.63 / M_PI)) < 152.00516,
     "and that is a maximum in t");
  /* Self-convergence: the quadrature (h, range) against a 4x finer and wider brute-force sum
   * written here, in y directly. */
  double t = 0.8, maxd = 0;
  for (double x = -0.9; x < 1; x += 0.3) {
    double H = 2e-5, emax = -INFINITY;
    for (double y = -1.5; y <= 1.5; y += H) emax = fmax(emax, -cos(M_PI * (x - y)) / (2 * M_PI * nu) - y * y / (4 * nu * t));
    double num = 0, den = 0;
    for (double y = -1.5; y <= 1.5; y += H) {
      double w = exp(-cos(M_PI * (x - y)) / (2 * M_PI * nu) - y * y / (4 * nu * t) - emax);
      num += sin(M_PI * (x - y)) * w, den += w;
    }
    maxd = fmax(maxd, fabs(ch(x, t) + num / den));
  }
  ok(maxd < 1e-12, "quadrature = brute-force trapezoid in y (max diff %.2g)", maxd);
  /* PDE residual u_t + u u_x - nu u_xx by 4th-order differences, away from the shock. */
  double res = 0;
  const double xs[] = {-0.8, -0.5, -0.3, 0.25, 0.6, 0.9};
  for (int i = 0; i < 6; i++) {
    double x = xs[i], tt = 0.45, h = 1e-3, k = 1e-3;
    double ut = (-ch(x, tt + 2 * k) + 8 * ch(x, tt + k) - 8 * ch(x, tt - k) + ch(x, tt - 2 * k)) / (12 * k);
    double um2 = ch(x - 2 * h, tt), um1 = ch(x - h, tt), u0 = ch(x, tt), up1 = ch(x + h, tt), up2 = ch(x + 2 * h, tt);
    double ux = (um2 - 8 * um1 + 8 * up1 - up2) / (12 * h), uxx = (-um2 + 16 * um1 - 30 * u0 + 16 * up1 - up2) / (12 * h * h);
    res = fmax(res, fabs(ut + u0 * ux - nu * uxx));
  }
  ok(res < 1e-7, "Cole-Hopf solves the PDE (max residual %.2g away from the shock)", res);
}

/* Spectral RK4 with the equation's RHS from -sin(pi x) on [-1, 1) against Cole-Hopf. */
static void test_solve_against_exact(void) {
  const int n = 512;
  const double nu = 0.01 / M_PI, T = 0.25;
  opl_burgers_params p = {n, 2.0, nu};
  opl_burgers *b = opl_burgers_new(&p, NULL, 0, NULL);
  double *u = opl_pde_alloc(n), *k1 = opl_pde_alloc(n), *k2 = opl_pde_alloc(n), *k3 = opl_pde_alloc(n),
         *k4 = opl_pde_alloc(n), *y = opl_pde_alloc(n), *want = opl_pde_alloc(n);
  double dx = 2.0 / n;
  for (int i = 0; i < n; i++) u[i] = -sin(M_PI * (-1 + i * dx));
  const int S = 1000;
  double dt = T / S, E0 = opl_burgers_energy(b, u), Dint = 0;
  for (int s = 0; s < S; s++) {
    double D0 = opl_burgers_dissipation(b, u);
    opl_burgers_rhs(b, 0, u, k1);
    for (int i = 0; i < n; i++) y[i] = u[i] + 0.5 * dt * k1[i];
    opl_burgers_rhs(b, 0, y, k2);
    for (int i = 0; i < n; i++) y[i] = u[i] + 0.5 * dt * k2[i];
    opl_burgers_rhs(b, 0, y, k3);
    for (int i = 0; i < n; i++) y[i] = u[i] + dt * k3[i];
    opl_burgers_rhs(b, 0, y, k4);
    for (int i = 0; i < n; i++) u[i] += dt / 6 * (k1[i] + 2 * k2[i] + 2 * k3[i] + k4[i]);
    Dint += 0.5 * dt * (D0 + opl_burgers_dissipation(b, u)); /* trapezoid in time */
  }
  for (int i = 0; i < n; i++) want[i] = opl_burgers_cole_hopf(-1 + i * dx, T, nu);
  arrays_close(n, u, want, 0, 1e-9, "spectral RK4 (n = 512) at t = 0.25 = Cole-Hopf");
  is_close(opl_burgers_energy(b, u), E0 - Dint, 1e-6, 0, "E(T) = E(0) - int_0^T D dt along the solve");
  opl_pde_free(u);
  opl_pde_free(k1);
  opl_pde_free(k2);
  opl_pde_free(k3);
  opl_pde_free(k4);
  opl_pde_free(y);
  opl_pde_free(want);
  opl_burgers_free(&b);
}

/* One grid, one equation object per thread: the same results as serially. */
static void test_threads(void) {
  const int n = 128, T = 6;
  opl_grid *g = opl_grid_new_1d(n, 1, 0, NULL);
  opl_burgers_params p = {n, 1, 0.02};
  opl_burgers *eq[2] = {opl_burgers_new(&p, g, 0, NULL), opl_burgers_new(&p, g, 0, NULL)};
  double *u = opl_pde_alloc(T * n), *ser = opl_pde_alloc(T * n), *par = opl_pde_alloc(T * n);
  for (int i = 0; i < T * n; i++) u[i] = urand();
  for (int t = 0; t < T; t++) opl_burgers_rhs(eq[0], 0, u + t * n, ser + t * n);
#pragma omp parallel for num_threads(2) schedule(static, 1)
  for (int t = 0; t < T; t++) opl_burgers_rhs(eq[omp_get_thread_num()], 0, u + t * n, par + t * n);
  ok(memcmp(ser, par, sizeof(double) * T * n) == 0, "two equation objects on one grid in two threads == serial");
  opl_burgers_free(&eq[0]);
  opl_burgers_free(&eq[1]);
  opl_pde_free(u);
  opl_pde_free(ser);
  opl_pde_free(par);
  opl_grid_free(&g);
}

int main(void) {
  tap_begin();
  test_params();
  test_linear_nonlinear();
  test_energy();
  test_cole_hopf();
  test_solve_against_exact();
  test_threads();
  return tap_end();
}
