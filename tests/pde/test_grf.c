/* Gaussian random fields: the FNO conventions (GRF1.m in 1-D, GaussianRF in 2-D) checked by
 * independent variance formulas and by sample statistics, Hermitian consistency, seeded
 * reproducibility, resolution-consistent draws, bad parameters. */
#include <math.h>
#include <string.h>
#include "tests/tap.h"
#include "pde/grf.h"

/* Pointwise variance of GRF1.m with N = n/2 modes on [0, L): sum_{m=1}^{n/2} 2 sigma^2 lambda_m^-g. */
static double var_grf1(int n, double L, double sigma, double tau, double g) {
  double v = 0;
  for (int m = 1; m <= n / 2; m++) v += 2 * sigma * sigma * pow(pow(2 * M_PI * m / L, 2) + tau * tau, -g);
  return v;
}

/* Pointwise variance of FNO's GaussianRF(2, n) on [0,1)^2: every (kx, ky) in {-n/2..n/2-1}^2
 * but 0 carries 2 sigma^2 lambda^-alpha (Re of a complex normal of std sqrt2 sigma lambda^-a/2). */
static double var_fno2(int n, double sigma, double tau, double alpha) {
  double v = 0;
  for (int kx = -n / 2; kx < n / 2; kx++)
    for (int ky = -n / 2; ky < n / 2; ky++) {
      if (!kx && !ky) continue;
      v += 2 * sigma * sigma * pow(4 * M_PI * M_PI * (kx * kx + ky * ky) + tau * tau, -alpha);
    }
  return v;
}

static void test_params(void) {
  opl_grf_params p;
  opl_err e = {0};
  ok(opl_grf_preset("burgers-fno", &p, &e) == OPL_OK && p.sigma == 25 && p.tau == 5 && p.alpha == 2 &&
     p.convention == OPL_GRF_GRF1, "preset burgers-fno: sigma 25, tau 5, alpha 2, GRF1");
  ok(opl_grf_preset("burgers-chebfun", &p, &e) == OPL_OK && p.sigma == 49 && p.tau == 7 && p.alpha == 2.5,
     "preset burgers-chebfun: sigma 49, tau 7, alpha 2.5");
  ok(opl_grf_preset("ns-fno", &p, &e) == OPL_OK && fabs(p.sigma - pow(7, 1.5)) < 1e-12 && p.tau == 7 &&
     p.alpha == 2.5 && p.convention == OPL_GRF_FNO, "preset ns-fno: sigma 7^1.5, tau 7, alpha 2.5, FNO");
  ok(opl_grf_preset("darcy", &p, &e) == OPL_ERR_ARG && strstr(e.msg, "darcy"), "unknown preset named (%s)", e.msg);
  opl_grid *g = opl_grid_new_1d(16, 1, OPL_GRID_ESTIMATE, NULL);
  struct { opl_grf_params p; const char *want; } bad[] = {
      {{0, 5, 2, 0, 0}, "sigma = 0"}, {{-1, 5, 2, 0, 0}, "sigma = -1"}, {{NAN, 5, 2, 0, 0}, "sigma = nan"},
      {{1, -2, 2, 0, 0}, "tau = -2"}, {{1, INFINITY, 2, 0, 0}, "tau = inf"}, {{1, 5, 0, 0, 0}, "alpha = 0"},
      {{1, 5, -1.5, 0, 0}, "alpha = -1.5"}, {{1, 5, 2, 7, 0}, "convention = 7"}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    memset(&e, 0, sizeof e);
    opl_grf *f = opl_grf_new(g, &bad[i].p, &e);
    ok(!f && e.status == OPL_ERR_ARG && strstr(e.msg, bad[i].want), "grf_new refuses %s (%s)", bad[i].want, e.msg);
  }
  opl_grf_free(NULL);
  opl_grid_free(&g);
}

/* The implementation's variance equals the reference formulas of both conventions. */
static void test_variance_formula(void) {
  opl_grf_params p;
  const char *pre[2] = {"burgers-fno", "burgers-chebfun"};
  for (int i = 0; i < 2; i++) {
    opl_grf_preset(pre[i], &p, NULL);
    opl_grid *g = opl_grid_new_1d(256, 1, OPL_GRID_ESTIMATE, NULL);
    opl_grf *f = opl_grf_new(g, &p, NULL);
    is_close(opl_grf_variance(f), var_grf1(256, 1, p.sigma, p.tau, p.alpha), 1e-13, 0,
             "%s: variance = GRF1 sum (std %.4f)", pre[i], sqrt(opl_grf_variance(f)));
    opl_grf_free(&f);
    opl_grid_free(&g);
  }
  /* Domain length enters lambda = (2 pi m / L)^2 + tau^2. */
  p = (opl_grf_params){.sigma = 2, .tau = 1.5, .alpha = 1.7, .convention = OPL_GRF_GRF1};
  opl_grid *g = opl_grid_new_1d(64, 3.5, OPL_GRID_ESTIMATE, NULL);
  opl_grf *f = opl_grf_new(g, &p, NULL);
  is_close(opl_grf_variance(f), var_grf1(64, 3.5, 2, 1.5, 1.7), 1e-13, 0, "GRF1 variance on L = 3.5");
  opl_grf_free(&f);
  opl_grid_free(&g);
  opl_grf_preset("ns-fno", &p, NULL);
  const int ns[] = {16, 64, 256};
  for (int i = 0; i < 3; i++) {
    g = opl_grid_new_2d(ns[i], ns[i], 1, 1, OPL_GRID_ESTIMATE, NULL);
    f = opl_grf_new(g, &p, NULL);
    is_close(opl_grf_variance(f), var_fno2(ns[i], p.sigma, p.tau, p.alpha), 1e-12, 0,
             "ns-fno %d^2: variance = GaussianRF sum over its grid (std %.4f)", ns[i], sqrt(opl_grf_variance(f)));
    opl_grf_free(&f);
    opl_grid_free(&g);
  }
}

/* Expected spatial std E[sqrt(mean_x u^2)] of GRF1: the spatial mean square of a sample is
 * sum_m sigma^2 lambda_m^-g (xi_m^2 + eta_m^2) (+ the Nyquist term), so a Monte-Carlo over the
 * mode energies alone (no transforms) gives an independent reference. */
static double spatial_std_ref(int n, double sigma, double tau, double g, int M, opl_rng *r) {
  double acc = 0, c[41];
  for (int m = 1; m <= 40; m++) c[m] = sigma * sigma * pow(pow(2 * M_PI * m, 2) + tau * tau, -g);
  for (int s = 0; s < M; s++) {
    double S = 0;
    for (int m = 1; m < n / 2 && m <= 40; m++) {
      double a = opl_rng_normal(r), b = opl_rng_normal(r);
      S += c[m] * (a * a + b * b);
    }
    acc += sqrt(S);
  }
  return acc / M;
}

static void test_stats_1d(void) {
  const int n = 256, M = 4000;
  const char *pre[2] = {"burgers-fno", "burgers-chebfun"};
  const double issue_std[2] = {0.62, 0.28};
  opl_grid *g = opl_grid_new_1d(n, 1, 0, NULL);
  double *u = opl_pde_alloc(n), *w = opl_pde_alloc(2 * g->nspec), *uh = opl_pde_alloc(2 * g->nspec);
  for (int i = 0; i < 2; i++) {
    opl_grf_params p;
    opl_grf_preset(pre[i], &p, NULL);
    opl_grf *f = opl_grf_new(g, &p, NULL);
    opl_rng r;
    opl_rng_seed(&r, 2024 + i);
    double s1 = 0, s2 = 0, sstd = 0, maxmean = 0, m1 = 0, m2 = 0;
    for (int s = 0; s < M; s++) {
      opl_grf_sample(f, &r, u, w);
      double a = 0, b = 0;
      for (int j = 0; j < n; j++) a += u[j], b += u[j] * u[j];
      maxmean = fmax(maxmean, fabs(a / n));
      s1 += a, s2 += b;
      sstd += sqrt(b / n - (a / n) * (a / n));
      /* Per-mode second moment of mode 1 (cos and sin parts). */
      opl_grid_forward(g, u, uh);
      m1 += (uh[2] * uh[2] + uh[3] * uh[3]) / ((double)n * n);
      m2 += (uh[4] * uh[4] + uh[5] * uh[5]) / ((double)n * n);
    }
    double var = s2 / ((double)M * n), want = opl_grf_variance(f);
    /* The estimate is dominated by mode 1 (2 dof per sample): relative sd ~ 1/sqrt(M) ~ 1.6%. */
    is_close(var, want, 0.06, 0, "%s: pooled sample variance %.4f vs analytic %.4f (M = %d)", pre[i], var, want, M);
    ok(maxmean < 1e-13, "%s: every sample has zero mean (max |mean| %.2g)", pre[i], maxmean);
    ok(fabs(s1 / ((double)M * n)) < 0.05 * sqrt(want), "%s: ensemble mean ~ 0", pre[i]);
    /* E|c_1|^2 = 2 a_1^2 = sigma^2 lambda_1^-g (c: normalized coefficient of e^{2 pi i x}). */
    is_close(m1 / M, p.sigma * p.sigma * pow(4 * M_PI * M_PI + p.tau * p.tau, -p.alpha), 0.06, 0,
             "%s: E|c_1|^2 = sigma^2 lambda_1^-alpha", pre[i]);
    is_close(m2 / M, p.sigma * p.sigma * pow(16 * M_PI * M_PI + p.tau * p.tau, -p.alpha), 0.06, 0,
             "%s: E|c_2|^2 = sigma^2 lambda_2^-alpha", pre[i]);
    opl_rng rr;
    opl_rng_seed(&rr, 77);
    double ref = spatial_std_ref(n, p.sigma, p.tau, p.alpha, 100000, &rr);
    is_close(sstd / M, ref, 0.03, 0, "%s: mean spatial std %.4f vs mode-energy reference %.4f", pre[i], sstd / M, ref);
    /* The issue quotes ~0.62 / ~0.28 for the measured std; the exact pointwise std on [0,1) is
     * 0.594 / 0.274 and the mean spatial std 0.547 / 0.252. Loose check of the quoted numbers. */
    is_close(sqrt(var), issue_std[i], 0.08, 0, "%s: sample std %.3f ~ %.2f quoted in the issue", pre[i], sqrt(var),
             issue_std[i]);
    diag("%s: pointwise std analytic %.4f sample %.4f; mean spatial std %.4f (reference %.4f)", pre[i], sqrt(want),
         sqrt(var), sstd / M, ref);
    opl_grf_free(&f);
  }
  opl_pde_free(u);
  opl_pde_free(w);
  opl_pde_free(uh);
  opl_grid_free(&g);
}

static void test_stats_2d(void) {
  const int n = 64, M = 300;
  opl_grf_params p;
  opl_grf_preset("ns-fno", &p, NULL);
  opl_grid *g = opl_grid_new_2d(n, n, 1, 1, 0, NULL);
  opl_grf *f = opl_grf_new(g, &p, NULL);
  double *u = opl_pde_alloc(g->nreal), *w = opl_pde_alloc(2 * g->nspec), *uh = opl_pde_alloc(2 * g->nspec);
  opl_rng r;
  opl_rng_seed(&r, 99);
  double s2 = 0, e10 = 0, e11 = 0, eN0 = 0, e1m1 = 0;
  double N2 = (double)g->nreal * g->nreal;
  for (int s = 0; s < M; s++) {
    opl_grf_sample(f, &r, u, w);
    for (int64_t j = 0; j < g->nreal; j++) s2 += u[j] * u[j];
    opl_grid_forward(g, u, uh);
    int64_t i10 = 1 * g->nch + 0, i11 = 1 * g->nch + 1, iN0 = (n / 2) * g->nch, i1m1 = (n - 1) * g->nch + 1;
    e10 += (uh[2 * i10] * uh[2 * i10] + uh[2 * i10 + 1] * uh[2 * i10 + 1]) / N2;
    e11 += (uh[2 * i11] * uh[2 * i11] + uh[2 * i11 + 1] * uh[2 * i11 + 1]) / N2;
    e1m1 += (uh[2 * i1m1] * uh[2 * i1m1] + uh[2 * i1m1 + 1] * uh[2 * i1m1 + 1]) / N2;
    eN0 += uh[2 * iN0] * uh[2 * iN0] / N2;
  }
  double var = s2 / ((double)M * g->nreal), want = var_fno2(n, p.sigma, p.tau, p.alpha);
  /* Dominated by the 4 modes |k| = 1 (8 dof per sample): relative sd ~ 1/sqrt(2M) ~ 4%. */
  is_close(var, want, 0.12, 0, "ns-fno 64^2: sample variance %.5f vs GaussianRF analytic %.5f", var, want);
  /* Per mode: the real part of FNO's field has c_k = (z_k + conj z_{-k}) / 2 with independent
   * z of E|z|^2 = 4 sigma^2 lambda^-alpha, so E|c_k|^2 = 2 sigma^2 lambda^-alpha; a
   * self-conjugate bin has c = Re z, also 2 sigma^2 lambda^-alpha. */
  double l1 = 2 * p.sigma * p.sigma * pow(4 * M_PI * M_PI + 49, -p.alpha);
  double l2 = 2 * p.sigma * p.sigma * pow(8 * M_PI * M_PI + 49, -p.alpha);
  double lN = 2 * p.sigma * p.sigma * pow(4 * M_PI * M_PI * (n / 2) * (n / 2) + 49, -p.alpha);
  is_close(e10 / M, l1, 0.25, 0, "E|c_(1,0)|^2 = 2 sigma^2 lambda^-alpha");
  is_close(e11 / M, l2, 0.25, 0, "E|c_(1,1)|^2 = 2 sigma^2 lambda^-alpha");
  is_close(e1m1 / M, l2, 0.25, 0, "E|c_(-1,1)|^2 = 2 sigma^2 lambda^-alpha");
  is_close(eN0 / M, lN, 0.25, 0, "E c_(N/2,0)^2 = 2 sigma^2 lambda^-alpha (self-conjugate Nyquist)");
  diag("ns-fno 64^2: pointwise std analytic %.4f sample %.4f", sqrt(want), sqrt(var));
  opl_pde_free(u);
  opl_pde_free(w);
  opl_pde_free(uh);
  opl_grf_free(&f);
  opl_grid_free(&g);
}

/* The sampled spectrum is Hermitian-consistent: forward(inverse(spec)) == spec exactly, so the
 * field carries every drawn coefficient (column 0, the Nyquist row and column included). */
static void test_hermitian(void) {
  const int dims[][2] = {{1, 16}, {8, 8}, {8, 12}, {10, 6}};
  for (int t = 0; t < 4; t++) {
    opl_grid *g = dims[t][0] == 1 ? opl_grid_new_1d(dims[t][1], 1, OPL_GRID_ESTIMATE, NULL)
                                  : opl_grid_new_2d(dims[t][0], dims[t][1], 1, 1, OPL_GRID_ESTIMATE, NULL);
    for (int conv = 0; conv < 2; conv++) {
      opl_grf_params p = {.sigma = 3, .tau = 0.5, .alpha = 0.6, .convention = conv};
      opl_grf *f = opl_grf_new(g, &p, NULL);
      double *sp = opl_pde_alloc(2 * g->nspec), *cp = opl_pde_alloc(2 * g->nspec), *u = opl_pde_alloc(g->nreal),
             *back = opl_pde_alloc(2 * g->nspec);
      opl_rng r;
      opl_rng_seed(&r, 5);
      opl_grf_sample_spec(f, &r, sp);
      memcpy(cp, sp, sizeof(double) * 2 * g->nspec);
      opl_grid_inverse(g, cp, u);
      opl_grid_forward(g, u, back);
      double scale = 0;
      for (int64_t i = 0; i < 2 * g->nspec; i++) scale = fmax(scale, fabs(sp[i]));
      arrays_close(2 * g->nspec, back, sp, 0, 1e-13 * scale, "%dx%d conv %d: spectrum survives a round trip",
                   dims[t][0], dims[t][1], conv);
      /* Count: every coefficient but the mean is drawn (a real field of nreal points has nreal
       * real degrees of freedom: nreal - 1 draws). */
      ok(opl_grf_ndraws(f) == g->nreal - 1, "%dx%d: %lld draws = nreal - 1", dims[t][0], dims[t][1],
         (long long)opl_grf_ndraws(f));
      opl_pde_free(sp);
      opl_pde_free(cp);
      opl_pde_free(u);
      opl_pde_free(back);
      opl_grf_free(&f);
    }
    opl_grid_free(&g);
  }
}

static void test_reproducible(void) {
  opl_grf_params p;
  opl_grf_preset("ns-fno", &p, NULL);
  opl_grid *g = opl_grid_new_2d(32, 32, 1, 1, OPL_GRID_ESTIMATE, NULL), *g2 = opl_grid_new_2d(64, 64, 1, 1, OPL_GRID_ESTIMATE, NULL);
  opl_grf *f = opl_grf_new(g, &p, NULL), *f2 = opl_grf_new(g2, &p, NULL);
  int64_t N = g->nreal;
  double *a = opl_pde_alloc(N), *b = opl_pde_alloc(N), *c = opl_pde_alloc(N), *w = opl_pde_alloc(2 * g2->nspec);
  opl_grf_sample_seeded(f, 42, 7, a, w);
  opl_grf_sample_seeded(f, 42, 7, b, w);
  ok(memcmp(a, b, sizeof(double) * N) == 0, "sample (seed 42, index 7) is reproducible");
  opl_rng parent, child;
  opl_rng_seed(&parent, 42);
  child = opl_rng_split(&parent, 7);
  opl_grf_sample(f, &child, c, w);
  ok(memcmp(a, c, sizeof(double) * N) == 0, "sample_seeded = sample from opl_rng_split(seed, index)");
  opl_grf_sample_seeded(f, 42, 8, b, w);
  ok(memcmp(a, b, sizeof(double) * N) != 0, "index 8 differs from index 7");
  /* The stream advances by exactly ndraws normals. */
  opl_rng r1, r2;
  opl_rng_seed(&r1, 3);
  r2 = r1;
  opl_grf_sample(f, &r1, a, w);
  for (int64_t i = 0; i < opl_grf_ndraws(f); i++) opl_rng_normal(&r2);
  ok(opl_rng_u64(&r1) == opl_rng_u64(&r2), "one sample draws ndraws = %lld normals", (long long)opl_grf_ndraws(f));
  /* Resolution consistency: the same stream on 32^2 and 64^2 gives the same normalized
   * coefficients on every mode with max(|kx|, |ky|) < 16. */
  double *s1 = opl_pde_alloc(2 * g->nspec), *s2 = opl_pde_alloc(2 * g2->nspec);
  opl_rng_seed(&r1, 11);
  r2 = r1;
  opl_grf_sample_spec(f, &r1, s1);
  opl_grf_sample_spec(f2, &r2, s2);
  double d = 0, mag = 0;
  for (int kx = -15; kx <= 15; kx++)
    for (int ky = 0; ky <= 15; ky++) {
      int64_t e1 = (kx >= 0 ? kx : kx + 32) * g->nch + ky, e2 = (kx >= 0 ? kx : kx + 64) * g2->nch + ky;
      for (int q = 0; q < 2; q++) {
        d = fmax(d, fabs(s1[2 * e1 + q] / g->nreal - s2[2 * e2 + q] / g2->nreal));
        mag = fmax(mag, fabs(s1[2 * e1 + q] / g->nreal));
      }
    }
  ok(d <= 1e-15 * mag && mag > 0, "32^2 and 64^2 draw the same low modes from one stream (diff %.2g)", d);
  /* kmax truncates by shells. */
  opl_grf_params pk = p;
  pk.kmax = 3;
  opl_grf *fk = opl_grf_new(g, &pk, NULL);
  opl_rng_seed(&r1, 1);
  opl_grf_sample_spec(fk, &r1, s1);
  int good = 1, nz = 0;
  for (int r = 0; r < 32; r++)
    for (int cc = 0; cc < g->nch; cc++) {
      int kx = r <= 16 ? r : r - 32;
      int sh = abs(kx) > cc ? abs(kx) : cc;
      int64_t e = r * g->nch + cc;
      int zero = s1[2 * e] == 0 && s1[2 * e + 1] == 0;
      if (sh > 3) good &= zero;
      else nz += !zero;
    }
  ok(good && nz == 24 + 3 && opl_grf_ndraws(fk) == 48,
     "kmax = 3: only shells 1..3 drawn (24 pairs + 3 conjugates in column 0: %d nonzero, %lld draws)", nz,
     (long long)opl_grf_ndraws(fk));
  opl_grf_free(&fk);
  opl_pde_free(s1);
  opl_pde_free(s2);
  opl_pde_free(a);
  opl_pde_free(b);
  opl_pde_free(c);
  opl_pde_free(w);
  opl_grf_free(&f);
  opl_grf_free(&f2);
  opl_grid_free(&g);
  opl_grid_free(&g2);
}

int main(void) {
  tap_begin();
  test_params();
  test_variance_formula();
  test_stats_1d();
  test_stats_2d();
  test_hermitian();
  test_reproducible();
  return tap_end();
}
