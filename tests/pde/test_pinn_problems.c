/* The PINN problems' table and reference solutions (pde/pinn_problems.h): the table and the
 * residual form, bad input, u0 at t = 0, the Burgers exact solution against the periodic
 * pseudo-spectral solver, self-convergence of the Allen-Cahn and KdV references in the solver
 * resolution and step, and the cost at nx = 256, nt = 101 (printed, never asserted). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "tests/tap.h"
#include "pde/pinn_problems.h"
#include "pde/solve.h"
#include "tests/pde/pdetest.h"

static void test_table(void) {
  ok(opl_pinn_problem_count() == 3, "three problems");
  const char *names[] = {"burgers", "allen-cahn", "kdv"};
  for (int i = 0; i < 3; i++) {
    const opl_pinn_problem *p = opl_pinn_problem_find(names[i], NULL);
    ok(p && p == opl_pinn_problem_at(i) && !strcmp(p->name, names[i]) && p->x0 == -1 && p->x1 == 1 && p->T == 1,
       "%s: found, on [-1, 1] x [0, 1]", names[i]);
  }
  ok(!opl_pinn_problem_at(3) && !opl_pinn_problem_at(-1), "out-of-range index gives NULL");
  ok(opl_pinn_problem_find("allen_cahn", NULL) == opl_pinn_problem_at(1), "alias allen_cahn");
  opl_err e = {0};
  ok(!opl_pinn_problem_find("navier-stokes", &e) && e.status == OPL_ERR_ARG && strstr(e.msg, "navier-stokes") &&
         strstr(e.msg, "allen-cahn"),
     "unknown name refused, known ones listed (%s)", e.msg);
  const opl_pinn_problem *b = opl_pinn_problem_at(0), *a = opl_pinn_problem_at(1), *k = opl_pinn_problem_at(2);
  ok(b->bc == OPL_PINN_DIRICHLET && a->bc == OPL_PINN_PERIODIC && k->bc == OPL_PINN_PERIODIC, "boundary kinds");
  /* The residual form against each equation written out. */
  double u = 0.7, ut = -0.3, ux = 1.1, uxx = -2.5, uxxx = 4.0;
  is_close(opl_pinn_residual(b, u, ut, ux, uxx, uxxx), ut + u * ux - 0.01 / M_PI * uxx, 1e-15, 0, "burgers residual");
  is_close(opl_pinn_residual(a, u, ut, ux, uxx, uxxx), ut - 1e-4 * uxx + 5 * u * u * u - 5 * u, 1e-15, 0,
           "allen-cahn residual");
  is_close(opl_pinn_residual(k, u, ut, ux, uxx, uxxx), ut + u * ux + 0.022 * 0.022 * uxxx, 1e-15, 0, "kdv residual");
  is_close(b->u0(0.25), -sin(M_PI / 4), 1e-15, 0, "burgers u0");
  is_close(a->u0(0.5), 0.25 * cos(M_PI / 2), 0, 1e-16, "allen-cahn u0");
  is_close(k->u0(0.25), cos(M_PI / 4), 1e-15, 0, "kdv u0");
}

static void test_bad_input(void) {
  double x[8], t[8], u[64];
  const opl_pinn_problem *p = opl_pinn_problem_at(2);
  struct {
    int nx, nt;
    opl_pinn_ref_opts o;
    const char *want;
  } bad[] = {{1, 4, {0, 0}, "nx = 1"}, {4, 1, {0, 0}, "nt = 1"}, {4, 0, {0, 0}, "nt = 0"},
             {-3, 4, {0, 0}, "nx = -3"}, {4, 4, {15, 0}, "n = 15"}, {4, 4, {8, 0}, "n = 8"},
             {4, 4, {0, -1e-3}, "dt = -0.001"}, {4, 4, {0, NAN}, "dt = nan"}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    opl_err e = {0};
    int rc = opl_pinn_reference(p, bad[i].nx, bad[i].nt, &bad[i].o, x, t, u, NULL, &e);
    ok(rc == OPL_ERR_ARG && strstr(e.msg, bad[i].want) && strstr(e.msg, "kdv"), "refused: %s (%s)", bad[i].want,
       e.msg);
  }
  opl_err e = {0};
  ok(opl_pinn_reference(p, 4, 4, NULL, x, t, NULL, NULL, &e) == OPL_ERR_ARG && strstr(e.msg, "u is NULL"),
     "NULL output refused (%s)", e.msg);
  ok(opl_pinn_reference(NULL, 4, 4, NULL, x, t, u, NULL, &e) == OPL_ERR_ARG, "NULL problem refused (%s)", e.msg);
  ok(opl_pinn_reference_named("heat", 4, 4, x, t, u, &e) == OPL_ERR_ARG && strstr(e.msg, "\"heat\""),
     "unknown name refused by reference_named (%s)", e.msg);
  e = (opl_err){0};
  ok(opl_pinn_reference_named("burgers", 8, 8, x, t, u, &e) == OPL_OK, "reference_named burgers 8 x 8 (%s)", e.msg);
}

/* u0 at t = 0 exactly, the grids, and the boundary conditions, for each problem at nx = 256,
 * nt = 101 (the size of the issue); prints the cost. */
static void test_grid_and_u0(void) {
  const int nx = sanitized() ? 64 : 256, nt = sanitized() ? 11 : 101;
  double *x = malloc(sizeof(double) * nx), *t = malloc(sizeof(double) * nt), *u = malloc(sizeof(double) * nx * nt);
  for (int k = 0; k < 3; k++) {
    const opl_pinn_problem *p = opl_pinn_problem_at(k);
    opl_pinn_ref_stats st;
    opl_err e = {0};
    int rc = opl_pinn_reference(p, nx, nt, NULL, x, t, u, &st, &e);
    ok(rc == OPL_OK, "%s reference %d x %d (%s)", p->name, nt, nx, e.msg);
    diag("%s: %d x %d in %.2f s (solver n = %d, dt = %g, %lld steps)", p->name, nt, nx, st.wall, st.n, st.dt,
         st.steps);
    int grid = x[0] == -1 && x[nx - 1] == 1 && t[0] == 0 && t[nt - 1] == 1;
    for (int i = 0; i < nx; i++) grid &= fabs(x[i] - (-1 + 2.0 * i / (nx - 1))) < 1e-15;
    for (int j = 0; j < nt; j++) grid &= fabs(t[j] - (double)j / (nt - 1)) < 1e-15;
    ok(grid, "%s: x and t uniform, both ends included", p->name);
    int u0ok = 1, fin = 1;
    for (int i = 0; i < nx; i++) u0ok &= u[i] == p->u0(x[i]);
    for (int i = 0; i < nx * nt; i++) fin &= isfinite(u[i]);
    ok(u0ok && fin, "%s: row t = 0 is u0 exactly; all values finite", p->name);
    double bc = 0;
    for (int j = 1; j < nt; j++) {
      const double *r = u + (int64_t)j * nx;
      bc = fmax(bc, p->bc == OPL_PINN_DIRICHLET ? fmax(fabs(r[0]), fabs(r[nx - 1])) : fabs(r[0] - r[nx - 1]));
    }
    ok(bc == 0, "%s: %s at both ends for t > 0 (%.1e)", p->name,
       p->bc == OPL_PINN_DIRICHLET ? "u = 0" : "equal values", bc);
  }
  free(x);
  free(t);
  free(u);
}

/* The exact Burgers solution against opl's periodic pseudo-spectral solver: u0 = -sin(pi x) is
 * odd and 2-periodic, so the periodic solution on [-1, 1) is odd about 0 and about +-1 and
 * satisfies u(+-1) = 0: it is the Dirichlet problem's solution. The solver runs on y = x + 1 in
 * [0, 2) (u0(y) = sin(pi y)) at 4096 points, ETDRK4 dt = 1e-4, and is compared at the output
 * points (nx = 257: every 16th solver point) at t = 0.1, 0.2, .., 1. */
static void test_burgers_vs_spectral(void) {
  const int n = sanitized() ? 1024 : 4096, nx = 257, nt = 11, stride = n / (nx - 1);
  const opl_pinn_problem *p = opl_pinn_problem_find("burgers", NULL);
  double *u = malloc(sizeof(double) * nx * nt), *x = malloc(sizeof(double) * nx);
  opl_err e = {0};
  ok(opl_pinn_reference(p, nx, nt, NULL, x, NULL, u, NULL, &e) == OPL_OK, "burgers reference (%s)", e.msg);
  opl_burgers_params bp = {.n = n, .L = 2, .nu = 0.01 / M_PI};
  double *u0 = opl_pde_alloc(n), *out = opl_pde_alloc((int64_t)(nt - 1) * n);
  for (int i = 0; i < n; i++) u0[i] = p->u0(i * 2.0 / n - 1);
  opl_solve_opts o = test_opts(1.0, nt - 1, 1e-4);
  opl_solve_stats st;
  int rc = opl_solve_burgers(&bp, u0, &o, out, &st, &e);
  ok(rc == OPL_OK, "spectral solve at %d points (%s)", n, e.msg);
  double far = 0, l2d = 0, l2n = 0, near = 0;
  for (int j = 1; j < nt; j++)
    for (int i = 0; i < nx; i++) {
      double a = u[j * nx + i], b = out[(int64_t)(j - 1) * n + (int64_t)i * stride % n];
      double d = fabs(a - b);
      if (fabs(x[i]) > 0.1) far = fmax(far, d);
      else near = fmax(near, d);
      l2d += d * d;
      l2n += a * a;
    }
  double rel = sqrt(l2d / l2n);
  diag("burgers exact vs spectral (n = %d, %lld steps, %.2f s): max |diff| %.2e for |x| > 0.1, %.2e near the shock, "
       "relative L2 %.2e", n, (long long)st.steps, st.wall, far, near, rel);
  ok(far < (sanitized() ? 1e-5 : 1e-9), "away from the shock (|x| > 0.1): max |diff| %.2e", far);
  ok(rel < (sanitized() ? 1e-4 : 1e-7), "relative L2 over all points and t > 0: %.2e", rel);
  opl_pde_free(u0);
  opl_pde_free(out);
  free(u);
  free(x);
}

/* Self-convergence of a periodic reference: the default solver against (n/2, 2 dt) and
 * (n, 2 dt) and (n/2, dt): each difference separates the space or time error. */
static void test_self_convergence(const char *name, double tol_n, double tol_dt) {
  const int nx = 129, nt = 11;
  const opl_pinn_problem *p = opl_pinn_problem_find(name, NULL);
  double *ref = malloc(sizeof(double) * nx * nt), *v = malloc(sizeof(double) * nx * nt);
  opl_pinn_ref_stats st;
  opl_err e = {0};
  ok(opl_pinn_reference(p, nx, nt, NULL, NULL, NULL, ref, &st, &e) == OPL_OK, "%s default reference (%s)", name,
     e.msg);
  opl_pinn_ref_opts half_n = {st.n / 2, st.dt}, twice_dt = {st.n, 2 * st.dt};
  ok(opl_pinn_reference(p, nx, nt, &half_n, NULL, NULL, v, NULL, &e) == OPL_OK, "%s at n = %d (%s)", name, half_n.n,
     e.msg);
  double dn = maxabs_diff((int64_t)nx * nt, ref, v);
  ok(opl_pinn_reference(p, nx, nt, &twice_dt, NULL, NULL, v, NULL, &e) == OPL_OK, "%s at dt = %g (%s)", name,
     twice_dt.dt, e.msg);
  double ddt = maxabs_diff((int64_t)nx * nt, ref, v);
  diag("%s: n = %d vs %d: %.2e; dt = %g vs %g: %.2e (max over %d x %d)", name, st.n, half_n.n, dn, st.dt, twice_dt.dt,
       ddt, nt, nx);
  ok(dn < tol_n, "%s: halving the solver resolution changes the reference by %.2e < %.0e", name, dn, tol_n);
  ok(ddt < tol_dt, "%s: doubling the step changes the reference by %.2e < %.0e", name, ddt, tol_dt);
  free(ref);
  free(v);
}

/* Gauss-Hermite nodes x[n] and weights w[n] (weight e^{-z^2} on the real line) by the
 * Golub-Welsch method (G. H. Golub, J. H. Welsch, "Calculation of Gauss quadrature rules",
 * Math. Comp. 23 (1969) 221): the nodes are the eigenvalues of the Jacobi matrix (diagonal 0,
 * off-diagonal sqrt(k / 2)), the weights sqrt(pi) times the squared first components of its
 * normalized eigenvectors; the eigenproblem by the implicit QL iteration (tqli, W. H. Press et
 * al., Numerical Recipes, 2nd ed., section 11.3), carrying only the first eigenvector row. */
static void gauss_hermite(int n, double *x, double *w) {
  double *d = x, *e = malloc(sizeof(double) * (size_t)n), *v = w;
  for (int i = 0; i < n; i++) d[i] = 0, e[i] = i + 1 < n ? sqrt((i + 1) / 2.0) : 0, v[i] = i == 0;
  for (int l = 0; l < n; l++) {
    int iter = 0, m;
    do {
      for (m = l; m < n - 1; m++)
        if (fabs(e[m]) <= 1e-16 * (fabs(d[m]) + fabs(d[m + 1]))) break;
      if (m != l) {
        if (iter++ == 60) break;
        double g = (d[l + 1] - d[l]) / (2.0 * e[l]), r = hypot(g, 1.0);
        g = d[m] - d[l] + e[l] / (g + (g >= 0 ? r : -r));
        double sn = 1, c = 1, p = 0;
        int i;
        for (i = m - 1; i >= l; i--) {
          double f = sn * e[i], b = c * e[i];
          e[i + 1] = (r = hypot(f, g));
          if (r == 0) {
            d[i + 1] -= p;
            e[m] = 0;
            break;
          }
          sn = f / r, c = g / r;
          g = d[i + 1] - p;
          r = (d[i] - g) * sn + 2.0 * c * b;
          d[i + 1] = g + (p = sn * r);
          g = c * r - b;
          f = v[i + 1];
          v[i + 1] = sn * v[i] + c * f;
          v[i] = c * v[i] - sn * f;
        }
        if (r == 0 && i >= l) continue;
        d[l] -= p, e[l] = g, e[m] = 0;
      }
    } while (m != l);
  }
  for (int i = 0; i < n; i++) w[i] = sqrt(M_PI) * v[i] * v[i];
  free(e);
}

/* The Burgers reference (pde/burgers.h opl_burgers_cole_hopf: the trapezoid rule in the Hermite
 * variable z) against Gauss-Hermite quadrature of the same Cole-Hopf integrals (Basdevant et al.
 * 1986; the rule of experiments/pinn/peer_burgers.py, 200 nodes), with the largest term of F
 * factored out: the two agree where the Gaussian rule resolves F, i.e. everywhere at this nu. */
static void test_burgers_gauss_hermite(void) {
  enum { NQ = 200 };
  double z[NQ], w[NQ];
  gauss_hermite(NQ, z, w);
  double ws = 0;
  for (int i = 0; i < NQ; i++) ws += w[i];
  double w2 = 0;
  for (int i = 0; i < NQ; i++) w2 += w[i] * z[i] * z[i];
  ok(fabs(ws - sqrt(M_PI)) < 1e-13 && fabs(w2 - sqrt(M_PI) / 2) < 1e-13,
     "200-node Gauss-Hermite rule: integrates 1 and z^2 against e^(-z^2) (sqrt(pi), sqrt(pi)/2)");
  const int nx = 65, nt = 11;
  double *u = malloc(sizeof(double) * nx * nt), *x = malloc(sizeof(double) * nx), *t = malloc(sizeof(double) * nt);
  const opl_pinn_problem *p = opl_pinn_problem_find("burgers", NULL);
  ok(opl_pinn_reference(p, nx, nt, NULL, x, t, u, NULL, NULL) == OPL_OK, "burgers reference 11 x 65");
  const double nu = p->diff;
  double worst = 0;
  for (int j = 1; j < nt; j++)
    for (int i = 0; i < nx; i++) {
      double c = sqrt(4 * nu * t[j]), emax = -INFINITY, num = 0, den = 0;
      for (int q = 0; q < NQ; q++) emax = fmax(emax, -cos(M_PI * (x[i] - c * z[q])) / (2 * M_PI * nu));
      for (int q = 0; q < NQ; q++) {
        double y = x[i] - c * z[q], f = w[q] * exp(-cos(M_PI * y) / (2 * M_PI * nu) - emax);
        num += sin(M_PI * y) * f;
        den += f;
      }
      worst = fmax(worst, fabs(-num / den - u[j * nx + i]));
    }
  diag("burgers reference against 200-node Gauss-Hermite: max |diff| %.2e over t = 0.1 .. 1, 65 points", worst);
  ok(worst < 1e-10, "the Cole-Hopf reference equals 200-node Gauss-Hermite quadrature (max |diff| %.1e)", worst);
  free(u);
  free(x);
  free(t);
}

int main(void) {
  tap_begin();
  test_table();
  test_bad_input();
  test_grid_and_u0();
  test_burgers_vs_spectral();
  test_burgers_gauss_hermite();
  test_self_convergence("allen-cahn", 1e-8, 1e-10);
  test_self_convergence("kdv", 1e-11, 1e-8);
  return tap_end();
}
