/* Spectral grid: wavenumbers, transforms, derivatives (exact on trigonometric polynomials),
 * the 2/3 dealiasing mask, spectral interpolation, batched and unaligned transforms, threads,
 * bad parameters. */
#include <math.h>
#include <omp.h>
#include <string.h>
#include "tests/tap.h"
#include "pde/grid.h"
#include "tests/pde/pdetest.h"

static uint64_t rs = 12345;
static double urand(void) { return pdetest_urand(&rs); } /* U(-1, 1) */

/* A random trigonometric polynomial with integer wavenumbers |m| <= K (1-D, on [0, L)):
 * coefficients a[m], b[m] of cos / sin, m = 0..K. */
typedef struct trig1 { int K; double L, a[64], b[64]; } trig1;
static void trig1_rand(trig1 *t, int K, double L) {
  t->K = K;
  t->L = L;
  for (int m = 0; m <= K; m++) t->a[m] = urand(), t->b[m] = m ? urand() : 0;
}
/* d-th derivative of the polynomial at x, by the closed form. */
static double trig1_eval(const trig1 *t, double x, int d) {
  double s = 0;
  for (int m = 0; m <= t->K; m++) {
    double k = 2 * M_PI * m / t->L, th = k * x, kd = pow(k, d);
    /* d/dx of cos(kx) = -k sin(kx), of sin(kx) = k cos(kx): rotate by d quarter turns. */
    double c = cos(th + d * M_PI / 2), sn = sin(th + d * M_PI / 2);
    s += kd * (t->a[m] * c + t->b[m] * sn);
  }
  return s;
}

static void test_bad_params(void) {
  opl_err e = {0};
  struct { int n; double L; const char *want; } bad[] = {
      {3, 1, "n = 3"}, {5, 1, "n = 5"}, {2, 1, "n = 2"}, {0, 1, "n = 0"}, {-4, 1, "n = -4"},
      {8, 0, "L = 0"}, {8, -1, "L = -1"}, {8, NAN, "L = nan"}, {8, INFINITY, "L = inf"}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    memset(&e, 0, sizeof e);
    opl_grid *g = opl_grid_new_1d(bad[i].n, bad[i].L, OPL_GRID_ESTIMATE, &e);
    ok(g == NULL && e.status == OPL_ERR_ARG && strstr(e.msg, bad[i].want) != NULL,
       "grid_new_1d(%d, %g) -> ERR_ARG naming '%s' (%s)", bad[i].n, bad[i].L, bad[i].want, e.msg);
  }
  memset(&e, 0, sizeof e);
  opl_grid *g = opl_grid_new_2d(8, 7, 1, 1, OPL_GRID_ESTIMATE, &e);
  ok(!g && e.status == OPL_ERR_ARG && strstr(e.msg, "ny = 7"), "2-D odd ny named (%s)", e.msg);
  memset(&e, 0, sizeof e);
  g = opl_grid_new_2d(8, 8, 1, -2, OPL_GRID_ESTIMATE, &e);
  ok(!g && e.status == OPL_ERR_ARG && strstr(e.msg, "Ly = -2"), "2-D negative Ly named (%s)", e.msg);
  ok(opl_grid_new_1d(3, 1, 0, NULL) == NULL, "NULL err allowed");
  opl_grid_free(NULL);
  opl_grid *z = NULL;
  opl_grid_free(&z);
  ok(1, "opl_grid_free accepts NULL");
}

static void test_wavenumbers(void) {
  opl_grid *g = opl_grid_new_2d(8, 6, 2.0, 3.0, OPL_GRID_ESTIMATE, NULL);
  const int want_row[8] = {0, 1, 2, 3, 4, -3, -2, -1};
  int okr = 1, okc = 1;
  for (int m = 0; m < 8; m++) {
    okr &= opl_grid_kint(g, 0, m) == want_row[m];
    okr &= fabs(opl_grid_k(g, 0, m) - 2 * M_PI * want_row[m] / 2.0) < 1e-15;
    okr &= fabs(g->krow[m] - 2 * M_PI * want_row[m] / 2.0) < 1e-15;
  }
  for (int m = 0; m < 4; m++) {
    okc &= opl_grid_kint(g, 1, m) == m;
    okc &= fabs(g->kcol[m] - 2 * M_PI * m / 3.0) < 1e-15;
  }
  ok(okr, "2-D rows: k = 0..n/2, -n/2+1..-1 times 2 pi / Lx");
  ok(okc, "2-D halved columns: k = 0..n/2 times 2 pi / Ly");
  ok(g->nspec == 8 * 4 && g->nreal == 48 && g->nrow == 8 && g->nch == 4, "2-D sizes");
  is_close(opl_grid_k2(g, 5 * 4 + 2), pow(2 * M_PI * -3 / 2.0, 2) + pow(2 * M_PI * 2 / 3.0, 2),
           1e-14, 0, "|k|^2 of entry (row 5, col 2)");
  is_close(opl_grid_x(g, 1, 5), 2.5, 1e-15, 0, "y_5 = 5 Ly / ny");
  ok(opl_grid_herm_weight(g, 0) == 1 && opl_grid_herm_weight(g, 1) == 2 &&
     opl_grid_herm_weight(g, 3) == 1, "Hermitian weights 1, 2, .., 1");
  opl_grid_free(&g);
  g = opl_grid_new_1d(10, 5.0, OPL_GRID_ESTIMATE, NULL);
  ok(g->nspec == 6 && g->nrow == 1 && g->krow[0] == 0 && opl_grid_kint(g, 0, 5) == 5 &&
     fabs(opl_grid_k(g, 0, 5) - 2 * M_PI * 5 / 5.0) < 1e-15, "1-D: n/2+1 coefficients, Nyquist +n/2");
  /* Transform convention: A cos(2 pi 3 x / L) -> uh_3 = n A / 2 (real), uh_{else} = 0. */
  double *u = opl_pde_alloc(10), *uh = opl_pde_alloc(12);
  for (int i = 0; i < 10; i++) u[i] = 1.5 * cos(2 * M_PI * 3 * opl_grid_x(g, 0, i) / 5.0);
  opl_grid_forward(g, u, uh);
  double rest = 0;
  for (int m = 0; m < 6; m++) rest += m == 3 ? fabs(uh[7]) : hypot(uh[2 * m], uh[2 * m + 1]);
  ok(fabs(uh[6] - 10 * 1.5 / 2) < 1e-13 && rest < 1e-13, "forward is unnormalized: uh_3 = n A / 2");
  opl_pde_free(u);
  opl_pde_free(uh);
  opl_grid_free(&g);
}

static void test_roundtrip(void) {
  for (int d = 1; d <= 2; d++) {
    opl_grid *g = d == 1 ? opl_grid_new_1d(64, 3.0, 0, NULL) : opl_grid_new_2d(32, 24, 1, 2, 0, NULL);
    double *u = opl_pde_alloc(g->nreal), *v = opl_pde_alloc(g->nreal), *uh = opl_pde_alloc(2 * g->nspec);
    double s2 = 0, s1 = 0;
    for (int64_t i = 0; i < g->nreal; i++) u[i] = urand(), s2 += u[i] * u[i], s1 += u[i];
    opl_grid_forward(g, u, uh);
    double area = g->L[0] * g->L[1];
    is_close(opl_grid_parseval(g, uh), s2 * area / g->nreal, 1e-13, 0, "%d-D Parseval", d);
    is_close(opl_grid_integral(g, u), s1 * area / g->nreal, 1e-13, 1e-15, "%d-D integral", d);
    opl_grid_inverse(g, uh, v);
    arrays_close(g->nreal, v, u, 0, 1e-14, "%d-D inverse(forward(u)) == u", d);
    opl_grid_forward(g, u, uh);
    opl_grid_inverse_raw(g, uh, v);
    for (int64_t i = 0; i < g->nreal; i++) v[i] /= (double)g->nreal;
    arrays_close(g->nreal, v, u, 0, 1e-14, "%d-D inverse_raw = nreal * inverse", d);
    opl_pde_free(u);
    opl_pde_free(v);
    opl_pde_free(uh);
    opl_grid_free(&g);
  }
}

/* Derivatives of every order 0..5 of random trigonometric polynomials below the Nyquist bin,
 * against the closed form. */
static void test_deriv_1d(void) {
  const int n = 32;
  const double L = 2.5;
  opl_grid *g = opl_grid_new_1d(n, L, 0, NULL);
  double *u = opl_pde_alloc(n), *du = opl_pde_alloc(n), *want = opl_pde_alloc(n),
         *w = opl_pde_alloc(2 * g->nspec);
  trig1 t;
  trig1_rand(&t, n / 2 - 1, L);
  for (int i = 0; i < n; i++) u[i] = trig1_eval(&t, opl_grid_x(g, 0, i), 0);
  for (int d = 0; d <= 5; d++) {
    for (int i = 0; i < n; i++) want[i] = trig1_eval(&t, opl_grid_x(g, 0, i), d);
    opl_grid_deriv(g, d, 0, u, du, w);
    double scale = maxabs(want, n);
    arrays_close(n, du, want, 0, 1e-12 * scale, "1-D d^%d/dx^%d of a random trig polynomial (|k| < n/2)", d, d);
  }
  /* In place. */
  memcpy(du, u, sizeof(double) * n);
  opl_grid_deriv(g, 1, 0, du, du, w);
  for (int i = 0; i < n; i++) want[i] = trig1_eval(&t, opl_grid_x(g, 0, i), 1);
  arrays_close(n, du, want, 0, 1e-12 * maxabs(want, n), "1-D derivative in place");
  /* sin(x) on [0, 2 pi): derivatives exactly cos, -sin. */
  opl_grid *g2 = opl_grid_new_1d(16, 2 * M_PI, OPL_GRID_ESTIMATE, NULL);
  for (int i = 0; i < 16; i++) u[i] = sin(opl_grid_x(g2, 0, i));
  opl_grid_deriv(g2, 1, 0, u, du, w);
  for (int i = 0; i < 16; i++) want[i] = cos(opl_grid_x(g2, 0, i));
  arrays_close(16, du, want, 0, 1e-14, "(sin x)' = cos x to 1e-14");
  /* The Nyquist cosine (-1)^i: odd derivatives vanish, even ones give (-k_N^2)^(d/2) u. */
  for (int i = 0; i < 16; i++) u[i] = (i & 1) ? -1 : 1;
  opl_grid_deriv(g2, 1, 0, u, du, w);
  ok(maxabs(du, 16) < 1e-13, "odd derivative of the Nyquist mode is zeroed");
  opl_grid_deriv(g2, 3, 0, u, du, w);
  ok(maxabs(du, 16) < 1e-11, "third derivative of the Nyquist mode is zeroed");
  opl_grid_deriv(g2, 2, 0, u, du, w);
  for (int i = 0; i < 16; i++) want[i] = -64.0 * u[i];
  arrays_close(16, du, want, 0, 1e-12, "second derivative of the Nyquist mode is -k_N^2 u");
  opl_grid_free(&g2);
  opl_pde_free(u);
  opl_pde_free(du);
  opl_pde_free(want);
  opl_pde_free(w);
  opl_grid_free(&g);
}

static void test_deriv_2d(void) {
  const int nx = 16, ny = 12;
  const double Lx = 1.0, Ly = 2.0;
  opl_grid *g = opl_grid_new_2d(nx, ny, Lx, Ly, 0, NULL);
  int64_t N = g->nreal;
  double *u = opl_pde_alloc(N), *du = opl_pde_alloc(N), *want = opl_pde_alloc(N),
         *w = opl_pde_alloc(2 * g->nspec);
  /* u = sin(2 pi 3 x) cos(2 pi 2 y / 2) + cos(2 pi 7 x + 2 pi 5 y / 2) (modes below Nyquist). */
  const double ax = 2 * M_PI * 3, by = 2 * M_PI * 2 / Ly, cx = 2 * M_PI * 7, cy = 2 * M_PI * 5 / Ly;
  for (int i = 0; i < nx; i++)
    for (int j = 0; j < ny; j++) {
      double x = opl_grid_x(g, 0, i), y = opl_grid_x(g, 1, j);
      u[i * ny + j] = sin(ax * x) * cos(by * y) + cos(cx * x + cy * y);
    }
  const int ords[][2] = {{1, 0}, {0, 1}, {1, 1}, {2, 0}, {0, 2}, {2, 1}, {3, 2}, {0, 3}};
  for (size_t o = 0; o < sizeof ords / sizeof ords[0]; o++) {
    int p = ords[o][0], q = ords[o][1];
    for (int i = 0; i < nx; i++)
      for (int j = 0; j < ny; j++) {
        double x = opl_grid_x(g, 0, i), y = opl_grid_x(g, 1, j);
        /* d^p/dx^p sin(ax x) = ax^p sin(ax x + p pi/2), same rotation for cos. */
        double t1 = pow(ax, p) * sin(ax * x + p * M_PI / 2) * pow(by, q) * cos(by * y + q * M_PI / 2);
        double t2 = pow(cx, p) * pow(cy, q) * cos(cx * x + cy * y + (p + q) * M_PI / 2);
        want[i * ny + j] = t1 + t2;
      }
    opl_grid_deriv(g, p, q, u, du, w);
    arrays_close(N, du, want, 0, 1e-12 * maxabs(want, N), "2-D d^%d/dx^%d d^%d/dy^%d exact", p, p, q, q);
  }
  /* Laplacian of a spectrum equals -|k|^2 times it (deriv_spec against opl_grid_k2). */
  double *uh = opl_pde_alloc(2 * g->nspec), *a = opl_pde_alloc(2 * g->nspec), *b = opl_pde_alloc(2 * g->nspec);
  opl_grid_forward(g, u, uh);
  opl_grid_deriv_spec(g, 2, 0, uh, a);
  opl_grid_deriv_spec(g, 0, 2, uh, b);
  int good = 1;
  for (int64_t e = 0; e < g->nspec; e++)
    for (int c = 0; c < 2; c++)
      good &= fabs(a[2 * e + c] + b[2 * e + c] + opl_grid_k2(g, e) * uh[2 * e + c]) <=
              1e-12 * (1 + opl_grid_k2(g, e) * fabs(uh[2 * e + c]));
  ok(good, "spectral Laplacian = -|k|^2 uh entrywise");
  opl_pde_free(uh);
  opl_pde_free(a);
  opl_pde_free(b);
  opl_pde_free(u);
  opl_pde_free(du);
  opl_pde_free(want);
  opl_pde_free(w);
  opl_grid_free(&g);
}

/* Full-spectrum coefficient c_m (m in -n/2+1..n/2) of a 1-D spectrum, normalized (u = sum c e^{ikx}). */
static void coef1(const opl_grid *g, const double *uh, int m, double *re, double *im) {
  int n = g->n[0];
  if (m >= 0) {
    *re = uh[2 * m] / n, *im = uh[2 * m + 1] / n;
  } else {
    *re = uh[-2 * m] / n, *im = -uh[-2 * m + 1] / n;
  }
}

static void test_dealias(void) {
  opl_grid *g = opl_grid_new_1d(256, 1, OPL_GRID_ESTIMATE, NULL);
  ok(opl_grid_dealias_keep(g, 0, 85) && !opl_grid_dealias_keep(g, 0, 86) && !opl_grid_dealias_keep(g, 0, 128),
     "n = 256 keeps |k| <= 85 and drops 86..128");
  opl_grid_free(&g);
  const int ns[] = {6, 8, 12, 14, 16, 64, 96};
  const int K[] = {1, 2, 3, 4, 5, 21, 31};
  for (int t = 0; t < 7; t++) {
    g = opl_grid_new_1d(ns[t], 1, OPL_GRID_ESTIMATE, NULL);
    int kmax = -1, good = 1;
    for (int m = 0; m < g->nch; m++) {
      if (opl_grid_dealias_keep(g, 0, m)) kmax = m;
      good &= opl_grid_dealias_keep(g, 0, m) == (3 * m < ns[t]);
    }
    ok(good && kmax == K[t], "n = %d: the 2/3 rule keeps |k| <= %d (got %d)", ns[t], K[t], kmax);
    opl_grid_free(&g);
  }
  /* 2-D: kept iff kept on both axes (square truncation), rows with negative wavenumbers too. */
  g = opl_grid_new_2d(12, 16, 1, 1, OPL_GRID_ESTIMATE, NULL);
  double *uh = opl_pde_alloc(2 * g->nspec);
  for (int64_t i = 0; i < 2 * g->nspec; i++) uh[i] = 1;
  opl_grid_dealias(g, uh);
  int good = 1, kept = 0;
  for (int r = 0; r < 12; r++)
    for (int c = 0; c < g->nch; c++) {
      int kr = opl_grid_kint(g, 0, r);
      int keep = 3 * abs(kr) < 12 && 3 * c < 16;
      double *p = uh + 2 * (r * g->nch + c);
      good &= keep ? (p[0] == 1 && p[1] == 1) : (p[0] == 0 && p[1] == 0);
      kept += keep;
    }
  ok(good && kept == 7 * 6, "2-D mask: |kx| <= 3 and ky <= 5 kept (%d entries)", kept);
  opl_pde_free(uh);
  opl_grid_free(&g);

  /* The point of the rule: the dealiased spectrum of the grid product of two fields with
   * |k| <= K equals the exact product's coefficients, by direct convolution, in the kept band. */
  const int n = 48, Kb = 15; /* 3 * 15 < 48 */
  g = opl_grid_new_1d(n, 1, OPL_GRID_ESTIMATE, NULL);
  double ca[2][64], cb[2][64]; /* coefficients of e^{i m x}, m = -Kb..Kb stored at m + Kb */
  double *u = opl_pde_alloc(n), *v = opl_pde_alloc(n), *w = opl_pde_alloc(n), *wh = opl_pde_alloc(2 * g->nspec);
  for (int m = 0; m <= Kb; m++) {
    double ar = urand(), ai = m ? urand() : 0, br = urand(), bi = m ? urand() : 0;
    ca[0][Kb + m] = ar, ca[1][Kb + m] = ai, ca[0][Kb - m] = ar, ca[1][Kb - m] = -ai;
    cb[0][Kb + m] = br, cb[1][Kb + m] = bi, cb[0][Kb - m] = br, cb[1][Kb - m] = -bi;
  }
  for (int i = 0; i < n; i++) {
    double x = 2 * M_PI * i / n;
    u[i] = v[i] = 0;
    for (int m = -Kb; m <= Kb; m++) {
      u[i] += ca[0][Kb + m] * cos(m * x) - ca[1][Kb + m] * sin(m * x);
      v[i] += cb[0][Kb + m] * cos(m * x) - cb[1][Kb + m] * sin(m * x);
    }
    w[i] = u[i] * v[i];
  }
  opl_grid_forward(g, w, wh);
  opl_grid_dealias(g, wh);
  double err = 0, errnaive = 0;
  for (int m = 0; m <= n / 2; m++) {
    double pr = 0, pi = 0; /* exact product coefficient at m: sum_j a_j b_{m-j} */
    for (int j = -Kb; j <= Kb; j++) {
      int l = m - j;
      if (l < -Kb || l > Kb) continue;
      pr += ca[0][Kb + j] * cb[0][Kb + l] - ca[1][Kb + j] * cb[1][Kb + l];
      pi += ca[0][Kb + j] * cb[1][Kb + l] + ca[1][Kb + j] * cb[0][Kb + l];
    }
    double re, im;
    coef1(g, wh, m, &re, &im);
    if (3 * m < n) err = fmax(err, hypot(re - pr, im - pi));
    else errnaive = fmax(errnaive, hypot(re, im));
  }
  ok(err < 1e-13, "dealiased product = exact product in the kept band (err %.2g)", err);
  ok(errnaive == 0, "dropped band is zero");
  opl_pde_free(u);
  opl_pde_free(v);
  opl_pde_free(w);
  opl_pde_free(wh);
  opl_grid_free(&g);
}

/* Resampling: up-sampling evaluates the interpolant, round trips are exact, Nyquist rules. */
static void test_resample_1d(void) {
  opl_err e = {0};
  const double L = 3.0;
  opl_grid *c = opl_grid_new_1d(16, L, 0, NULL), *f = opl_grid_new_1d(40, L, 0, NULL);
  int64_t nw = opl_grid_resample_work(c, f);
  double *w = opl_pde_alloc(nw), *uc = opl_pde_alloc(16), *uf = opl_pde_alloc(40), *want = opl_pde_alloc(48),
         *back = opl_pde_alloc(40);
  trig1 t;
  trig1_rand(&t, 7, L); /* |k| <= 7 < 16/2 */
  for (int i = 0; i < 16; i++) uc[i] = trig1_eval(&t, opl_grid_x(c, 0, i), 0);
  for (int i = 0; i < 40; i++) want[i] = trig1_eval(&t, opl_grid_x(f, 0, i), 0);
  ok(opl_grid_resample(c, uc, f, uf, w, &e) == OPL_OK, "resample 16 -> 40");
  arrays_close(40, uf, want, 0, 1e-13, "up-sampling a band-limited field is exact at the fine points");
  ok(opl_grid_resample(f, uf, c, back, w, &e) == OPL_OK, "resample 40 -> 16");
  arrays_close(16, back, uc, 0, 1e-13, "down-then-up / up-then-down round trip of |k| < 8 field");
  /* Up then down of a RANDOM coarse field (Nyquist present) is exact. */
  for (int i = 0; i < 16; i++) uc[i] = urand();
  opl_grid_resample(c, uc, f, uf, w, &e);
  opl_grid_resample(f, uf, c, back, w, &e);
  arrays_close(16, back, uc, 0, 1e-13, "up-then-down of a random field (with Nyquist) is exact");
  /* 16 -> 48 is a refinement by 3: the coarse points are every third fine point. */
  opl_grid *f3 = opl_grid_new_1d(48, L, OPL_GRID_ESTIMATE, NULL);
  double *u3 = opl_pde_alloc(48), *w3 = opl_pde_alloc(opl_grid_resample_work(c, f3));
  opl_grid_resample(c, uc, f3, u3, w3, &e);
  double d = 0;
  for (int i = 0; i < 16; i++) d = fmax(d, fabs(u3[3 * i] - uc[i]));
  ok(d < 1e-13, "the interpolant passes through the coarse values (err %.2g)", d);
  /* The Nyquist cosine (-1)^i refines to cos(pi n x / L): zero at the midpoints. */
  for (int i = 0; i < 16; i++) uc[i] = (i & 1) ? -1 : 1;
  opl_grid_resample(c, uc, f3, u3, w3, &e);
  for (int i = 0; i < 48; i++) want[i] = cos(M_PI * 16 * opl_grid_x(f3, 0, i) / L);
  arrays_close(48, u3, want, 0, 1e-13, "Nyquist bin split into +-n/2: cosine interpolant");
  /* Coarsening a field with a cosine at the new Nyquist frequency keeps the common values. */
  for (int i = 0; i < 48; i++) {
    double x = opl_grid_x(f3, 0, i);
    u3[i] = 0.3 + cos(2 * M_PI * 8 * x / L) + 0.5 * sin(2 * M_PI * 5 * x / L);
  }
  opl_grid_resample(f3, u3, c, uc, w3, &e);
  d = 0;
  for (int i = 0; i < 16; i++) d = fmax(d, fabs(uc[i] - u3[3 * i]));
  ok(d < 1e-13, "coarsening folds +-m/2 into the new Nyquist bin (err %.2g)", d);
  /* Same grid size: identity. */
  opl_grid_resample(c, uc, c, back, w, &e);
  arrays_close(16, back, uc, 0, 1e-14, "16 -> 16 is the identity");
  /* Bad input. */
  opl_grid *g2 = opl_grid_new_2d(16, 16, L, L, OPL_GRID_ESTIMATE, NULL), *gL = opl_grid_new_1d(16, 2.0, OPL_GRID_ESTIMATE, NULL);
  memset(&e, 0, sizeof e);
  ok(opl_grid_resample(c, uc, g2, uf, w, &e) == OPL_ERR_ARG && strstr(e.msg, "1-D") && strstr(e.msg, "2-D"),
     "1-D -> 2-D refused (%s)", e.msg);
  memset(&e, 0, sizeof e);
  ok(opl_grid_resample(c, uc, gL, uf, w, &e) == OPL_ERR_ARG && strstr(e.msg, "3") && strstr(e.msg, "2"),
     "different L refused (%s)", e.msg);
  opl_grid_free(&g2);
  opl_grid_free(&gL);
  opl_grid_free(&f3);
  opl_pde_free(u3);
  opl_pde_free(w3);
  opl_pde_free(w);
  opl_pde_free(uc);
  opl_pde_free(uf);
  opl_pde_free(want);
  opl_pde_free(back);
  opl_grid_free(&c);
  opl_grid_free(&f);
}

static void test_resample_2d(void) {
  opl_err e = {0};
  opl_grid *c = opl_grid_new_2d(8, 12, 1.0, 2.0, 0, NULL), *f = opl_grid_new_2d(24, 20, 1.0, 2.0, 0, NULL);
  opl_grid *m = opl_grid_new_2d(24, 8, 1.0, 2.0, OPL_GRID_ESTIMATE, NULL); /* refine x, coarsen y */
  int64_t nw = opl_grid_resample_work(f, f);
  double *w = opl_pde_alloc(nw), *uc = opl_pde_alloc(c->nreal), *uf = opl_pde_alloc(f->nreal),
         *want = opl_pde_alloc(f->nreal), *back = opl_pde_alloc(f->nreal), *um = opl_pde_alloc(m->nreal);
  /* Band-limited field: modes |kx| < 4, |ky| < 4 (below both coarse Nyquists). */
  for (int i = 0; i < 8; i++)
    for (int j = 0; j < 12; j++) {
      double x = opl_grid_x(c, 0, i), y = opl_grid_x(c, 1, j);
      uc[i * 12 + j] = 0.2 + sin(2 * M_PI * 3 * x + 2 * M_PI * 2 * y / 2) + cos(2 * M_PI * 2 * x) * sin(2 * M_PI * 3 * y / 2) +
                       0.7 * cos(2 * M_PI * -1 * x + 2 * M_PI * 3 * y / 2);
    }
  for (int i = 0; i < 24; i++)
    for (int j = 0; j < 20; j++) {
      double x = opl_grid_x(f, 0, i), y = opl_grid_x(f, 1, j);
      want[i * 20 + j] = 0.2 + sin(2 * M_PI * 3 * x + 2 * M_PI * 2 * y / 2) + cos(2 * M_PI * 2 * x) * sin(2 * M_PI * 3 * y / 2) +
                         0.7 * cos(2 * M_PI * -1 * x + 2 * M_PI * 3 * y / 2);
    }
  ok(opl_grid_resample(c, uc, f, uf, w, &e) == OPL_OK, "2-D resample 8x12 -> 24x20");
  arrays_close(f->nreal, uf, want, 0, 1e-13, "2-D up-sampling of a band-limited field is exact");
  opl_grid_resample(f, uf, c, back, w, &e);
  arrays_close(c->nreal, back, uc, 0, 1e-13, "2-D down-sampling back is exact");
  /* Random coarse field (all Nyquist rows/columns populated): up then down is exact. */
  for (int64_t i = 0; i < c->nreal; i++) uc[i] = urand();
  opl_grid_resample(c, uc, f, uf, w, &e);
  opl_grid_resample(f, uf, c, back, w, &e);
  arrays_close(c->nreal, back, uc, 0, 1e-13, "2-D up-then-down of a random field is exact");
  /* The fine field passes through the coarse values where the grids share points
   * (x: 8 -> 24 every 3rd; y: 12 -> 20 shares y = 0 and y = 1 only, j = 0, 6 vs 0, 10). */
  double d = 0;
  for (int i = 0; i < 8; i++) {
    d = fmax(d, fabs(uf[(3 * i) * 20 + 0] - uc[i * 12 + 0]));
    d = fmax(d, fabs(uf[(3 * i) * 20 + 10] - uc[i * 12 + 6]));
  }
  ok(d < 1e-13, "2-D interpolant passes through shared points (err %.2g)", d);
  /* Mixed: refine x, coarsen y (12 -> 8), then back: exact for a field band-limited in y to
   * |ky| < 4 with random x content. */
  for (int i = 0; i < 8; i++) {
    double a = urand(), b = urand(), d0 = urand(); /* random along x, per row */
    for (int j = 0; j < 12; j++) {
      double y = opl_grid_x(c, 1, j);
      uc[i * 12 + j] = a * cos(2 * M_PI * 3 * y / 2) + b * sin(2 * M_PI * y / 2) + d0;
    }
  }
  opl_grid_resample(c, uc, m, um, w, &e);
  opl_grid_resample(m, um, c, back, w, &e);
  arrays_close(c->nreal, back, uc, 0, 1e-13, "2-D mixed refine-x / coarsen-y round trip");
  opl_pde_free(w);
  opl_pde_free(uc);
  opl_pde_free(uf);
  opl_pde_free(want);
  opl_pde_free(back);
  opl_pde_free(um);
  opl_grid_free(&c);
  opl_grid_free(&f);
  opl_grid_free(&m);
}

/* Batched and unaligned transforms agree with the single aligned ones. */
static void test_batch_unaligned(void) {
  opl_grid *g = opl_grid_new_2d(16, 10, 1, 1, 0, NULL);
  const int cnt = 6; /* one batch of 4 + 2 singles */
  int64_t N = g->nreal, S = 2 * g->nspec;
  double *u = opl_pde_alloc(cnt * N), *uh = opl_pde_alloc(cnt * S), *ref = opl_pde_alloc(cnt * S),
         *v = opl_pde_alloc(cnt * N), *tmp = opl_pde_alloc(S);
  for (int64_t i = 0; i < cnt * N; i++) u[i] = urand();
  for (int b = 0; b < cnt; b++) opl_grid_forward(g, u + b * N, ref + b * S);
  opl_grid_forward_many(g, cnt, u, uh);
  arrays_close(cnt * S, uh, ref, 0, 1e-13, "forward_many == forward per field");
  opl_grid_inverse_many(g, cnt, uh, v);
  arrays_close(cnt * N, v, u, 0, 1e-14, "inverse_many(forward_many(u)) == u");
  /* Unaligned (odd double offset): falls back to FFTW_UNALIGNED plans. */
  double *ub = opl_pde_alloc(N + 1), *hb = opl_pde_alloc(S + 1), *vb = opl_pde_alloc(N + 1);
  memcpy(ub + 1, u, sizeof(double) * N);
  opl_grid_forward(g, ub + 1, hb + 1);
  arrays_close(S, hb + 1, ref, 0, 1e-13, "unaligned forward");
  opl_grid_inverse(g, hb + 1, vb + 1);
  arrays_close(N, vb + 1, u, 0, 1e-14, "unaligned inverse");
  opl_pde_free(ub);
  opl_pde_free(hb);
  opl_pde_free(vb);
  opl_pde_free(u);
  opl_pde_free(uh);
  opl_pde_free(ref);
  opl_pde_free(v);
  opl_pde_free(tmp);
  opl_grid_free(&g);
}

/* One shared grid, per-thread workspaces: results equal the serial ones bit for bit. */
static void test_threads(void) {
  opl_grid *g = opl_grid_new_2d(32, 32, 1, 1, 0, NULL);
  const int T = 8;
  int64_t N = g->nreal;
  double *u = opl_pde_alloc(T * N), *ser = opl_pde_alloc(T * N), *par = opl_pde_alloc(T * N),
         *w = opl_pde_alloc(T * 2 * g->nspec);
  for (int64_t i = 0; i < T * N; i++) u[i] = urand();
  for (int t = 0; t < T; t++) opl_grid_deriv(g, 1, 2, u + t * N, ser + t * N, w);
#pragma omp parallel for num_threads(2) schedule(static, 1)
  for (int t = 0; t < T; t++) opl_grid_deriv(g, 1, 2, u + t * N, par + t * N, w + t * 2 * g->nspec);
  ok(memcmp(ser, par, sizeof(double) * T * N) == 0, "derivatives from 2 threads on one grid == serial");
  opl_pde_free(u);
  opl_pde_free(ser);
  opl_pde_free(par);
  opl_pde_free(w);
  opl_grid_free(&g);
}

int main(void) {
  tap_begin();
  test_bad_params();
  test_wavenumbers();
  test_roundtrip();
  test_deriv_1d();
  test_deriv_2d();
  test_dealias();
  test_resample_1d();
  test_resample_2d();
  test_batch_unaligned();
  test_threads();
  return tap_end();
}
