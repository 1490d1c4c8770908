/* Darcy flow: the Neumann random field against its cosine series summed directly, the
 * five-point operator's symmetry, the CHOLMOD solve against a dense LAPACK solve, second-order
 * convergence on a manufactured solution, a cloned solver, bad input, and the solve on one
 * thread in every OpenMP context with the same bits. */
#include <dirent.h>
#include <fftw3.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include "tests/tap.h"
#include "core/rng.h"
#include "pde/darcy.h"

/* LAPACK (OpenBLAS): general dense solve, the independent reference. */
extern void dgesv_(const int *n, const int *nrhs, double *a, const int *lda, int *ipiv, double *b, const int *ldb,
                   int *info);

static void test_params(void) {
  opl_darcy_params p;
  int r, sr;
  opl_err e = {0};
  ok(opl_darcy_preset("fno", &p, &r, &sr, &e) == OPL_OK && p.tau == 3 && p.alpha == 2 && p.a_pos == 12 &&
     p.a_neg == 3 && r == 421 && sr == 85, "preset fno: tau 3, alpha 2, psi 12/3, 421 -> 85");
  ok(opl_darcy_preset("rough", &p, &r, &sr, &e) == OPL_OK && p.tau == 5 && p.alpha == 2 && r == 511 && sr == 256,
     "preset rough: tau 5, alpha 2, 511 -> 256 (every second node)");
  ok(opl_darcy_preset("smooth", &p, NULL, NULL, &e) == OPL_ERR_ARG && strstr(e.msg, "'smooth'"),
     "unknown preset named (%s)", e.msg);
  struct { opl_darcy_params p; const char *want; } bad[] = {
      {{0, 2, 12, 3}, "tau = 0"}, {{-1, 2, 12, 3}, "tau = -1"}, {{3, 0, 12, 3}, "alpha = 0"},
      {{3, 2, -12, 3}, "a_pos = -12"}, {{3, 2, 12, 0}, "a_neg = 0"}, {{NAN, 2, 12, 3}, "tau = nan"}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    memset(&e, 0, sizeof e);
    ok(opl_darcy_check(&bad[i].p, &e) == OPL_ERR_ARG && strstr(e.msg, bad[i].want), "check refuses %s (%s)",
       bad[i].want, e.msg);
  }
  memset(&e, 0, sizeof e);
  ok(!opl_darcy_grf_new(16, -3, 2, &e) && e.status == OPL_ERR_ARG && strstr(e.msg, "tau = -3"),
     "grf refuses tau <= 0 (%s)", e.msg);
  for (int s = -1; s < 3; s++) {
    memset(&e, 0, sizeof e);
    ok(!opl_darcy_new(s, &e) && e.status == OPL_ERR_ARG && strstr(e.msg, "s >= 3"), "solver refuses s = %d (%s)", s,
       e.msg);
    memset(&e, 0, sizeof e);
    ok(!opl_darcy_grf_new(s, 3, 2, &e) && e.status == OPL_ERR_ARG, "grf refuses s = %d (%s)", s, e.msg);
  }
}

/* The DCT-I evaluation equals the cosine series summed term by term on the nodes; the draw
 * order is row-major (k1, k2) from the split stream; same seed and index, same bits. */
static void test_grf(void) {
  const int s = 9;
  const double tau = 3, alpha = 2;
  opl_darcy_grf *f = opl_darcy_grf_new(s, tau, alpha, NULL);
  double *g = fftw_malloc(sizeof(double) * s * s), *w = fftw_malloc(sizeof(double) * s * s);
  double ref[81], xi[81];
  opl_darcy_grf_sample(f, 42, 5, g, w);
  opl_rng parent, r;
  opl_rng_seed(&parent, 42);
  r = opl_rng_split(&parent, 5);
  for (int k = 0; k < s * s; k++) xi[k] = opl_rng_normal(&r);
  for (int i = 0; i < s; i++)
    for (int j = 0; j < s; j++) {
      double x = (double)i / (s - 1), y = (double)j / (s - 1), v = 0;
      for (int k1 = 0; k1 < s; k1++)
        for (int k2 = 0; k2 < s; k2++) {
          if (!k1 && !k2) continue;
          double c = pow(tau, alpha - 1) * pow(M_PI * M_PI * (k1 * k1 + k2 * k2) + tau * tau, -alpha / 2);
          v += c * xi[k1 * s + k2] * cos(M_PI * k1 * x) * cos(M_PI * k2 * y);
        }
      ref[i * s + j] = v;
    }
  arrays_close(s * s, g, ref, 1e-12, 1e-13, "DCT-I field equals the cosine series summed directly (9 x 9)");
  double *g2 = fftw_malloc(sizeof(double) * s * s);
  opl_darcy_grf_sample(f, 42, 5, g2, w);
  ok(!memcmp(g, g2, sizeof(double) * s * s), "same seed and index: same bits");
  opl_darcy_grf_sample(f, 42, 6, g2, w);
  ok(memcmp(g, g2, sizeof(double) * s * s) != 0, "another index: another field");
  opl_darcy_params p = {3, 2, 12, 3};
  double a[81];
  opl_darcy_psi(&p, g, a, s * s);
  int okpsi = 1;
  for (int k = 0; k < s * s; k++) okpsi &= a[k] == (g[k] >= 0 ? 12.0 : 3.0);
  ok(okpsi, "psi: 12 where g >= 0, 3 where g < 0");
  fftw_free(g);
  fftw_free(g2);
  fftw_free(w);
  opl_darcy_grf_free(&f);
  /* at the FNO resolution both values occur in sizeable proportion (the field has zero mean) */
  const int S = 85;
  f = opl_darcy_grf_new(S, 3, 2, NULL);
  g = fftw_malloc(sizeof(double) * S * S);
  w = fftw_malloc(sizeof(double) * S * S);
  double frac = 0;
  for (int i = 0; i < 20; i++) {
    opl_darcy_grf_sample(f, 7, (uint64_t)i, g, w);
    for (int k = 0; k < S * S; k++) frac += g[k] >= 0;
  }
  frac /= 20.0 * S * S;
  ok(frac > 0.3 && frac < 0.7, "fraction of nodes with g >= 0 over 20 fields at 85^2: %.3f", frac);
  fftw_free(g);
  fftw_free(w);
  opl_darcy_grf_free(&f);
}

/* A smooth positive coefficient or a piecewise-constant one, [s, s]. */
static void coef(int s, int rough, double *a) {
  opl_rng r;
  opl_rng_seed(&r, 3);
  for (int i = 0; i < s; i++)
    for (int j = 0; j < s; j++) {
      double x = (double)i / (s - 1), y = (double)j / (s - 1);
      a[i * s + j] = rough ? (opl_rng_uniform(&r) < 0.5 ? 12 : 3) : 1 + x * x + 0.5 * sin(3 * y);
    }
}

/* Dense matrix of the interior unknowns, row p from the stencil of node p. */
static void dense(int s, const double *a, double *M) {
  int m = s - 2, n = m * m;
  memset(M, 0, sizeof(double) * n * n);
  for (int i = 1; i <= m; i++)
    for (int j = 1; j <= m; j++) {
      double c[5];
      opl_darcy_stencil(s, a, i, j, c);
      int p = (i - 1) * m + (j - 1);
      M[p * n + p] = c[0];
      if (i > 1) M[p * n + p - m] = c[1];
      if (i < m) M[p * n + p + m] = c[2];
      if (j > 1) M[p * n + p - 1] = c[3];
      if (j < m) M[p * n + p + 1] = c[4];
    }
}

static void test_operator(void) {
  for (int rough = 0; rough < 2; rough++) {
    const int s = 9, m = s - 2, n = m * m;
    double a[81], *M = malloc(sizeof(double) * n * n), *Mt = malloc(sizeof(double) * n * n);
    coef(s, rough, a);
    dense(s, a, M);
    double asym = 0;
    for (int p = 0; p < n; p++)
      for (int q = 0; q < n; q++) asym = fmax(asym, fabs(M[p * n + q] - M[q * n + p]));
    ok(asym == 0, "%s coefficient: the stencil matrix is symmetric (max |A - A^T| = %g)", rough ? "rough" : "smooth",
       asym);
    /* apply equals the dense product */
    double x[49], y[49], yd[49];
    for (int p = 0; p < n; p++) x[p] = sin(p + 1.0);
    opl_darcy_apply(s, a, x, y);
    for (int p = 0; p < n; p++) {
      yd[p] = 0;
      for (int q = 0; q < n; q++) yd[p] += M[p * n + q] * x[q];
    }
    arrays_close(n, y, yd, 1e-13, 0, "apply equals the dense matrix product");
    /* CHOLMOD solve against LAPACK dgesv on the same matrix, f = 1 and a varying f */
    opl_darcy *d = opl_darcy_new(s, NULL);
    for (int fk = 0; fk < 2; fk++) {
      double f[81], u[81], b[49], uref[49], got[49];
      int ipiv[49], info, one = 1, nn = n;
      for (int k = 0; k < s * s; k++) f[k] = fk ? cos(0.7 * k) : 1.0;
      for (int p = 0; p < n; p++) b[p] = f[(p / m + 1) * s + p % m + 1];
      for (int p = 0; p < n; p++)
        for (int q = 0; q < n; q++) Mt[q * n + p] = M[p * n + q]; /* column-major */
      dgesv_(&nn, &one, Mt, &nn, ipiv, b, &nn, &info);
      memcpy(uref, b, sizeof b);
      opl_err e = {0};
      int rc = opl_darcy_solve(d, a, fk ? f : NULL, u, &e);
      double bnd = 0;
      for (int i = 0; i < s; i++)
        bnd = fmax(bnd, fmax(fmax(fabs(u[i]), fabs(u[(s - 1) * s + i])), fmax(fabs(u[i * s]), fabs(u[i * s + s - 1]))));
      for (int p = 0; p < n; p++) got[p] = u[(p / m + 1) * s + p % m + 1];
      ok(rc == OPL_OK && info == 0 && bnd == 0, "solve ok, u = 0 on the boundary (%s)", e.msg);
      arrays_close(n, got, uref, 1e-11, 1e-14, "%s a, %s: CHOLMOD equals the dense LAPACK solve (9 x 9)",
                   rough ? "rough" : "smooth", fk ? "f = cos" : "f = 1");
    }
    /* a clone (copied analysis, own workspace) solves to the same bits */
    opl_darcy *d2 = opl_darcy_clone(d, NULL);
    double u1[81], u2[81];
    opl_darcy_solve(d, a, NULL, u1, NULL);
    ok(d2 && opl_darcy_solve(d2, a, NULL, u2, NULL) == OPL_OK && !memcmp(u1, u2, sizeof u1),
       "a cloned solver gives the same bits");
    opl_darcy_free(&d2);
    opl_darcy_free(&d);
    free(M);
    free(Mt);
  }
}

/* u = sin(pi x) sin(pi y) x-weighted, a = 1 + x^2 + y/2: f = -div(a grad u) by hand. */
static double mu(double x, double y) { return sin(M_PI * x) * sin(M_PI * y) * exp(x); }
static double ma(double x, double y) { return 1 + x * x + 0.5 * y; }
static double mf(double x, double y) {
  double sx = sin(M_PI * x), cx = cos(M_PI * x), sy = sin(M_PI * y), cy = cos(M_PI * y), e = exp(x);
  double ux = e * sy * (sx + M_PI * cx), uxx = e * sy * (sx + 2 * M_PI * cx - M_PI * M_PI * sx);
  double uy = M_PI * e * sx * cy, uyy = -M_PI * M_PI * e * sx * sy;
  double ax = 2 * x, ay = 0.5;
  return -(ma(x, y) * (uxx + uyy) + ax * ux + ay * uy);
}

static void test_manufactured(void) {
  const int ss[4] = {17, 33, 65, 129};
  double errs[4];
  for (int r = 0; r < 4; r++) {
    int s = ss[r];
    double *a = malloc(sizeof(double) * s * s), *f = malloc(sizeof(double) * s * s),
           *u = malloc(sizeof(double) * s * s);
    for (int i = 0; i < s; i++)
      for (int j = 0; j < s; j++) {
        double x = (double)i / (s - 1), y = (double)j / (s - 1);
        a[i * s + j] = ma(x, y);
        f[i * s + j] = mf(x, y);
      }
    opl_darcy *d = opl_darcy_new(s, NULL);
    opl_err e = {0};
    int rc = opl_darcy_solve(d, a, f, u, &e);
    double err = 0;
    for (int i = 0; i < s; i++)
      for (int j = 0; j < s; j++) err = fmax(err, fabs(u[i * s + j] - mu((double)i / (s - 1), (double)j / (s - 1))));
    errs[r] = err;
    ok(rc == OPL_OK, "manufactured solution solved at s = %d: max error %.3e (%s)", s, err, e.msg);
    opl_darcy_free(&d);
    free(a);
    free(f);
    free(u);
  }
  for (int r = 1; r < 4; r++) {
    double order = log2(errs[r - 1] / errs[r]);
    ok(order > 1.9 && order < 2.1, "second order in h: s = %d -> %d, observed order %.3f", ss[r - 1], ss[r], order);
  }
}

static void test_bad_coefficient(void) {
  const int s = 7;
  double a[49], u[49];
  opl_darcy *d = opl_darcy_new(s, NULL);
  for (int k = 0; k < s * s; k++) a[k] = 1;
  const double badv[3] = {0, -2, NAN};
  for (int b = 0; b < 3; b++) {
    a[2 * s + 3] = badv[b];
    opl_err e = {0};
    ok(opl_darcy_solve(d, a, NULL, u, &e) == OPL_ERR_ARG && strstr(e.msg, "(2, 3)"),
       "non-positive / non-finite coefficient %g refused naming the node (%s)", badv[b], e.msg);
  }
  a[2 * s + 3] = 1;
  ok(opl_darcy_solve(d, a, NULL, u, NULL) == OPL_OK, "the solver stays usable after a refusal");
  opl_darcy_free(&d);
  opl_darcy_free(NULL);
}

/* Threads of this process (Linux /proc/self/task), -1 where unreadable. libgomp keeps the
 * threads of a team for later regions, so the count after a call shows the widest team that
 * any region in it had. */
static int os_threads(void) {
  DIR *dir = opendir("/proc/self/task");
  if (!dir) return -1;
  int n = 0;
  for (struct dirent *e; (e = readdir(dir));)
    if (e->d_name[0] != '.') n++;
  closedir(dir);
  return n;
}

/* CHOLMOD's supernodal code opens `parallel num_threads(4)` regions and OpenBLAS splits its work
 * by omp_get_max_threads(): opl_darcy_solve must run both on the calling thread (pde/darcy.c
 * cm_numeric) at top level, inside an inactive (1-thread) region and nested in an active one
 * even where nesting is allowed, leave the caller's OpenMP settings as they were, and give the
 * same bits everywhere. Runs first: no region may have run before the thread count. Without the
 * mechanism, a 33^2 solve at top level leaves 4 threads, and nested in the 2-thread region the
 * bits differ. */
static void test_threads(void) {
  const int s = 33;
  double *a = malloc(sizeof(double) * s * s), *u0 = malloc(sizeof(double) * s * s);
  double *u[3] = {malloc(sizeof(double) * s * s), malloc(sizeof(double) * s * s), malloc(sizeof(double) * s * s)};
  opl_darcy *d[2] = {opl_darcy_new(s, NULL), NULL};
  d[1] = d[0] ? opl_darcy_clone(d[0], NULL) : NULL;
  if (!d[0] || !d[1]) {
    ok(0, "solvers for the thread tests");
    return;
  }
  for (int k = 0; k < s * s; k++) a[k] = (k * 7919) % 13 < 6 ? 3 : 12;
  omp_set_num_threads(2);
  const int mal0 = omp_get_max_active_levels();
  const int t0 = os_threads();
  int rc = opl_darcy_solve(d[0], a, NULL, u0, NULL);
  const int t1 = os_threads();
  if (t0 == 1)
    ok(rc == OPL_OK && t1 == 1, "top level, 2 threads asked: the solve runs on this thread alone (%d -> %d)", t0, t1);
  else
    skip("no /proc/self/task, or threads already running", "top-level solve on one thread");
  ok(omp_get_max_threads() == 2 && omp_get_max_active_levels() == mal0,
     "top level: the caller's nthreads (2) and max-active-levels (%d) are as before", mal0);
  /* an inactive region: a 1-thread team is no active level */
  int same = 1, kept = 1;
#pragma omp parallel num_threads(1)
  {
    const int mal = omp_get_max_active_levels();
    same = opl_darcy_solve(d[0], a, NULL, u[0], NULL) == OPL_OK && !memcmp(u0, u[0], sizeof(double) * s * s);
    kept = omp_get_max_threads() == 2 && omp_get_max_active_levels() == mal;
  }
  const int t2 = os_threads();
  ok(same && kept, "inside a 1-thread region: the same bits, the caller's settings kept");
  if (t0 == 1) ok(t2 == 1, "inside a 1-thread region: still one thread (%d)", t2);
  /* an active 2-thread region that allows nested active regions */
  omp_set_max_active_levels(4);
  int good[2] = {0, 0};
#pragma omp parallel num_threads(2)
  {
    const int t = omp_get_thread_num();
    if (t < 2) {
      int r = opl_darcy_solve(d[t], a, NULL, u[t + 1], NULL);
      good[t] = r == OPL_OK && omp_get_max_active_levels() == 4 && !memcmp(u0, u[t + 1], sizeof(double) * s * s);
    }
  }
  omp_set_max_active_levels(mal0);
  /* (libgomp ends a nested team's threads with its region, so no thread count here) */
  ok(good[0] && good[1], "two threads solving at once, nesting allowed: the same bits, max-active-levels kept");
  opl_darcy_free(&d[0]);
  opl_darcy_free(&d[1]);
  for (int k = 0; k < 3; k++) free(u[k]);
  free(u0);
  free(a);
}

int main(void) {
  tap_begin();
  test_threads();
  test_params();
  test_grf();
  test_operator();
  test_manufactured();
  test_bad_coefficient();
  return tap_end();
}
