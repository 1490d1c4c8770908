/* Normalization ops (group norm, instance norm, layer norm, group norm + GELU): gradient checks
 * (table), forward values against a naive reference written per element in double, zero mean /
 * unit variance of each group, hand-computed values, the fused group norm + GELU against the two
 * ops it replaces (values and gradients), and bad input. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "tests/gradcheck.h"
#include "tests/tap.h"

/* ------------------------------------------------------------ op wrappers for the table */

/* Inputs: x, then gamma and beta when the option says so. */
typedef struct norm_opt {
  int groups;     /* group norm: groups; layer norm: nd */
  int affine;     /* 0: none, 1: gamma and beta, 2: gamma only, 3: beta only */
  double eps;
} norm_opt;

static void affine_args(opl_tensor **x, int affine, opl_tensor **g, opl_tensor **b) {
  *g = affine == 1 || affine == 2 ? x[1] : NULL;
  *b = affine == 1 ? x[2] : (affine == 3 ? x[1] : NULL);
}
static opl_tensor *f_group(opl_ctx *c, opl_tensor **x, const void *o) {
  const norm_opt *p = o;
  opl_tensor *g, *b;
  affine_args(x, p->affine, &g, &b);
  return opl_group_norm(c, x[0], p->groups, g, b, p->eps);
}
static opl_tensor *f_group_gelu(opl_ctx *c, opl_tensor **x, const void *o) {
  const norm_opt *p = o;
  opl_tensor *g, *b;
  affine_args(x, p->affine, &g, &b);
  return opl_group_norm_gelu(c, x[0], p->groups, g, b, p->eps);
}
static opl_tensor *f_group_gelu_add(opl_ctx *c, opl_tensor **x, const void *o) {
  const norm_opt *p = o;
  return opl_group_norm_gelu_add(c, x[0], p->groups, x[1], x[2], p->eps, x[3]);
}
static opl_tensor *f_instance(opl_ctx *c, opl_tensor **x, const void *o) {
  const norm_opt *p = o;
  opl_tensor *g, *b;
  affine_args(x, p->affine, &g, &b);
  return opl_instance_norm(c, x[0], g, b, p->eps);
}
static opl_tensor *f_layer(opl_ctx *c, opl_tensor **x, const void *o) {
  const norm_opt *p = o;
  opl_tensor *g, *b;
  affine_args(x, p->affine, &g, &b);
  return opl_layer_norm(c, x[0], p->groups, g, b, p->eps);
}

static const norm_opt g2 = {2, 1, 1e-5}, g3 = {3, 1, 1e-5}, g1 = {1, 1, 1e-5}, g6 = {6, 1, 1e-5},
                      g2n = {2, 0, 1e-5}, g2g = {2, 2, 1e-5}, g2b = {3, 3, 1e-5},
                      g4big = {4, 1, 1e-5}, i_aff = {0, 1, 1e-5}, i_none = {0, 0, 1e-5},
                      l1 = {1, 1, 1e-5}, l2 = {2, 1, 1e-5}, l3 = {3, 1, 1e-5}, l2n = {2, 0, 1e-5},
                      l1g = {1, 2, 1e-5}, g2e = {2, 1, 0.5};

#define IN(r, ...) {.rank = r, .shape = {__VA_ARGS__}}
#define INNG(r, ...) {.rank = r, .shape = {__VA_ARGS__}, .no_grad = 1}
#ifdef OPL_DOUBLE
#define BIG_RTOL 2e-5 /* ~3e4 outputs: the finite-difference sum carries ~1e-6 relative noise */
#else
#define BIG_RTOL 0
#endif

static const gc_case rows[] = {
    {"group_norm (2,4,5) G2 affine", f_group, &g2, 3, {IN(3, 2, 4, 5), IN(1, 4), IN(1, 4)}},
    {"group_norm (3,6,3,5) G3 affine", f_group, &g3, 3, {IN(4, 3, 6, 3, 5), IN(1, 6), IN(1, 6)}},
    {"group_norm (2,6,2,3,3) G1 (3-D)", f_group, &g1, 3, {IN(5, 2, 6, 2, 3, 3), IN(1, 6), IN(1, 6)}},
    {"group_norm (2,6,7) G6", f_group, &g6, 3, {IN(3, 2, 6, 7), IN(1, 6), IN(1, 6)}},
    {"group_norm (4,6) rank 2 G2", f_group, &g2, 3, {IN(2, 4, 6), IN(1, 6), IN(1, 6)}},
    {"group_norm no affine", f_group, &g2n, 1, {IN(3, 3, 4, 7)}},
    {"group_norm gamma only", f_group, &g2g, 2, {IN(3, 2, 4, 5), IN(1, 4)}},
    {"group_norm beta only", f_group, &g2b, 2, {IN(4, 2, 6, 3, 3), IN(1, 6)}},
    {"group_norm large eps", f_group, &g2e, 3, {IN(3, 2, 4, 5), IN(1, 4), IN(1, 4)}},
    {"group_norm x without grad", f_group, &g2, 3, {INNG(3, 2, 4, 5), IN(1, 4), IN(1, 4)}},
    {"group_norm gamma/beta without grad", f_group, &g2, 3, {IN(3, 2, 4, 5), INNG(1, 4), INNG(1, 4)}},
    {"group_norm large (parallel)", f_group, &g4big, 3, {IN(4, 4, 8, 32, 33), IN(1, 8), IN(1, 8)}, BIG_RTOL},
    {"group_norm_gelu (2,4,5) G2 affine", f_group_gelu, &g2, 3, {IN(3, 2, 4, 5), IN(1, 4), IN(1, 4)}},
    {"group_norm_gelu (2,6,2,3,3) G1 (3-D)", f_group_gelu, &g1, 3, {IN(5, 2, 6, 2, 3, 3), IN(1, 6), IN(1, 6)}},
    {"group_norm_gelu (3,6,3,5) G3 affine", f_group_gelu, &g3, 3, {IN(4, 3, 6, 3, 5), IN(1, 6), IN(1, 6)}},
    {"group_norm_gelu no affine", f_group_gelu, &g2n, 1, {IN(3, 3, 4, 7)}},
    {"group_norm_gelu gamma only", f_group_gelu, &g2g, 2, {IN(3, 2, 4, 5), IN(1, 4)}},
    {"group_norm_gelu beta only", f_group_gelu, &g2b, 2, {IN(4, 2, 6, 3, 3), IN(1, 6)}},
    {"group_norm_gelu x without grad", f_group_gelu, &g2, 3, {INNG(3, 2, 4, 5), IN(1, 4), IN(1, 4)}},
    {"group_norm_gelu gamma/beta without grad", f_group_gelu, &g2, 3, {IN(3, 2, 4, 5), INNG(1, 4), INNG(1, 4)}},
    {"group_norm_gelu large (parallel, rows of several chunks)", f_group_gelu, &g1, 3,
     {IN(4, 4, 8, 17, 33), IN(1, 8), IN(1, 8)}, BIG_RTOL},
    {"group_norm_gelu_add (2,4,5) G2 affine", f_group_gelu_add, &g2, 4,
     {IN(3, 2, 4, 5), IN(1, 4), IN(1, 4), IN(3, 2, 4, 5)}},
    {"group_norm_gelu_add (3,6,3,5) G1, r without grad", f_group_gelu_add, &g1, 4,
     {IN(4, 3, 6, 3, 5), IN(1, 6), IN(1, 6), INNG(4, 3, 6, 3, 5)}},
    {"group_norm_gelu_add x without grad", f_group_gelu_add, &g2, 4,
     {INNG(3, 2, 4, 5), IN(1, 4), IN(1, 4), IN(3, 2, 4, 5)}},
    {"group_norm_gelu_add large (parallel, rows of several chunks)", f_group_gelu_add, &g1, 4,
     {IN(4, 4, 8, 17, 33), IN(1, 8), IN(1, 8), IN(4, 4, 8, 17, 33)}, BIG_RTOL},
    {"instance_norm 1-D affine", f_instance, &i_aff, 3, {IN(3, 2, 3, 9), IN(1, 3), IN(1, 3)}},
    {"instance_norm 2-D", f_instance, &i_none, 1, {IN(4, 2, 3, 4, 5)}},
    {"instance_norm 3-D affine", f_instance, &i_aff, 3, {IN(5, 2, 2, 3, 3, 4), IN(1, 2), IN(1, 2)}},
    {"layer_norm nd1 (2,3,7)", f_layer, &l1, 3, {IN(3, 2, 3, 7), IN(1, 7), IN(1, 7)}},
    {"layer_norm nd2 (3,4,5)", f_layer, &l2, 3, {IN(3, 3, 4, 5), IN(2, 4, 5), IN(2, 4, 5)}},
    {"layer_norm nd3 (2,3,4,3)", f_layer, &l3, 3, {IN(4, 2, 3, 4, 3), IN(3, 3, 4, 3), IN(3, 3, 4, 3)}},
    {"layer_norm nd2 no affine", f_layer, &l2n, 1, {IN(4, 2, 3, 5, 3)}},
    {"layer_norm nd1 gamma only", f_layer, &l1g, 2, {IN(2, 5, 9), IN(1, 9)}},
    {"layer_norm large (parallel)", f_layer, &l1, 3, {IN(3, 64, 16, 33), IN(1, 33), IN(1, 33)}, BIG_RTOL},
};

/* ------------------------------------------------------------ helpers */

static uint64_t rng = 11;

static void fill(opl_tensor *t, double lo, double hi) {
  for (int64_t i = 0; i < opl_nreal(t); i++)
    t->data[i] = (opl_real)(lo + (hi - lo) * gc_uniform(&rng));
}

static double *to_double(const opl_tensor *t) {
  double *d = malloc((size_t)opl_nreal(t) * sizeof *d);
  for (int64_t i = 0; i < opl_nreal(t); i++) d[i] = t->data[i];
  return d;
}

#ifdef OPL_DOUBLE
#define TOL 1e-12
#else
#define TOL 2e-5
#endif

/* Naive group norm, element by element: group of (n, c) is c / (C / G); statistics of the
 * group by direct sums over the channels in it and all spatial points. x (N, C, S). */
static void naive_group_norm(const opl_tensor *x, int G, const opl_tensor *gamma,
                             const opl_tensor *beta, double eps, double *y) {
  int64_t N = x->shape[0], C = x->shape[1], S = x->numel / (N * C), Cg = C / G;
  for (int64_t n = 0; n < N; n++)
    for (int64_t c = 0; c < C; c++) {
      int64_t g = c / Cg;
      /* long double sums: the reference stays exact enough for values 1e4 +- 1 in the double build */
      long double sum = 0, sq = 0, cnt = 0;
      for (int64_t c2 = g * Cg; c2 < (g + 1) * Cg; c2++)
        for (int64_t s = 0; s < S; s++) sum += x->data[(n * C + c2) * S + s], cnt++;
      long double mean = sum / cnt;
      for (int64_t c2 = g * Cg; c2 < (g + 1) * Cg; c2++)
        for (int64_t s = 0; s < S; s++) {
          long double d = x->data[(n * C + c2) * S + s] - mean;
          sq += d * d;
        }
      double var = (double)(sq / cnt);
      for (int64_t s = 0; s < S; s++) {
        double v = (double)(x->data[(n * C + c) * S + s] - mean) / sqrt(var + eps);
        y[(n * C + c) * S + s] = v * (gamma ? gamma->data[c] : 1) + (beta ? beta->data[c] : 0);
      }
    }
}

/* Naive layer norm over the trailing M values of each of the B rows; gamma/beta [M]. */
static void naive_layer_norm(const opl_tensor *x, int64_t M, const opl_tensor *gamma,
                             const opl_tensor *beta, double eps, double *y) {
  int64_t B = x->numel / M;
  for (int64_t b = 0; b < B; b++) {
    double sum = 0, sq = 0;
    for (int64_t m = 0; m < M; m++) sum += x->data[b * M + m];
    double mean = sum / M;
    for (int64_t m = 0; m < M; m++) sq += (x->data[b * M + m] - mean) * (x->data[b * M + m] - mean);
    double rs = 1 / sqrt(sq / M + eps);
    for (int64_t m = 0; m < M; m++)
      y[b * M + m] = (x->data[b * M + m] - mean) * rs * (gamma ? gamma->data[m] : 1) +
                     (beta ? beta->data[m] : 0);
  }
}

/* ------------------------------------------------------------ forward values */

static void test_group_values(void) {
  /* the last: values 1e4 +- 1, where a variance taken as E[x^2] - E[x]^2 about 0 would lose
   * every digit; the statistics are sums about the group's first value */
  struct { int rank; int64_t shape[5]; int G; double lo, hi; } cases[] = {
      {3, {2, 6, 7}, 3, 2, 5}, {4, {3, 4, 5, 3}, 2, 2, 5}, {5, {2, 6, 3, 2, 3}, 6, 2, 5}, {2, {5, 8}, 4, 2, 5},
      {4, {4, 8, 32, 33}, 4, 2, 5}, {4, {2, 4, 9, 11}, 2, 1e4 - 1, 1e4 + 1},
  };
  for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
    opl_ctx *c = opl_ctx_new(0);
    opl_tensor *x = opl_new(c, cases[t].rank, cases[t].shape);
    int64_t C = cases[t].shape[1];
    opl_tensor *gm = opl_new(c, 1, &C), *bt = opl_new(c, 1, &C);
    /* an offset and a scale, so that the mean matters */
    fill(x, cases[t].lo, cases[t].hi), fill(gm, 0.5, 1.5), fill(bt, -1, 1);
    opl_tensor *y = opl_group_norm(c, x, cases[t].G, gm, bt, 1e-5);
    double *want = malloc((size_t)x->numel * sizeof *want);
    naive_group_norm(x, cases[t].G, gm, bt, 1e-5, want);
    if (y) {
      double *got = to_double(y);
      arrays_close(x->numel, got, want, TOL, TOL, "group_norm rank %d G%d case %zu = naive",
                   cases[t].rank, cases[t].G, t);
      free(got);
    } else {
      ok(0, "group_norm case %zu: %s", t, opl_ctx_errmsg(c));
    }
    /* Without affine and eps 0: each group has zero mean and unit (biased) variance. */
    opl_tensor *z = opl_group_norm(c, x, cases[t].G, NULL, NULL, 0);
    int64_t N = cases[t].shape[0], G = cases[t].G, M = x->numel / (N * G);
    double worst_mean = 0, worst_var = 0;
    for (int64_t k = 0; z && k < N * G; k++) {
      double s = 0, q = 0;
      for (int64_t i = 0; i < M; i++) s += z->data[k * M + i];
      for (int64_t i = 0; i < M; i++) q += (z->data[k * M + i] - s / M) * (z->data[k * M + i] - s / M);
      worst_mean = fmax(worst_mean, fabs(s / M));
      worst_var = fmax(worst_var, fabs(q / M - 1));
    }
    ok(z && worst_mean < 100 * TOL && worst_var < 100 * TOL,
       "group_norm case %zu: every group has mean 0 (err %.2g) and variance 1 (err %.2g)", t,
       worst_mean, worst_var);
    free(want);
    opl_ctx_free(&c);
  }
}

static void test_instance_layer_values(void) {
  opl_ctx *c = opl_ctx_new(0);
  /* instance norm = group norm with C groups */
  opl_tensor *x = opl_new(c, OPL_DIMS(2, 5, 4, 3)), *gm = opl_new(c, OPL_DIMS(5)),
             *bt = opl_new(c, OPL_DIMS(5));
  fill(x, -3, 1), fill(gm, -1, 1), fill(bt, -1, 1);
  opl_tensor *yi = opl_instance_norm(c, x, gm, bt, 1e-5), *yg = opl_group_norm(c, x, 5, gm, bt, 1e-5);
  if (yi && yg) {
    double *a = to_double(yi), *b = to_double(yg);
    arrays_close(x->numel, a, b, 0, 0, "instance_norm = group_norm with C groups");
    free(a), free(b);
  } else {
    ok(0, "instance_norm: %s", opl_ctx_errmsg(c));
  }
  /* layer norm over the trailing 2 axes against the naive loop */
  opl_tensor *g2 = opl_new(c, OPL_DIMS(4, 3)), *b2 = opl_new(c, OPL_DIMS(4, 3));
  fill(g2, 0.5, 2), fill(b2, -1, 1);
  opl_tensor *yl = opl_layer_norm(c, x, 2, g2, b2, 1e-5);
  double want[120];
  naive_layer_norm(x, 12, g2, b2, 1e-5, want);
  if (yl) {
    double *got = to_double(yl);
    arrays_close(120, got, want, TOL, TOL, "layer_norm nd 2 = naive");
    free(got);
  } else {
    ok(0, "layer_norm: %s", opl_ctx_errmsg(c));
  }
  /* layer norm over all axes (one group) */
  opl_tensor *yall = opl_layer_norm(c, x, 4, NULL, NULL, 1e-5);
  naive_layer_norm(x, 120, NULL, NULL, 1e-5, want);
  if (yall) {
    double *got = to_double(yall);
    arrays_close(120, got, want, TOL, TOL, "layer_norm over all axes = naive");
    free(got);
  }
  /* Hand values: [1, 2, 3, 4] has mean 2.5 and biased variance 1.25 (PyTorch
   * F.layer_norm(x, (4,), eps=0) = (x - 2.5) / sqrt(1.25)). */
  opl_tensor *h = opl_new(c, OPL_DIMS(1, 4));
  for (int i = 0; i < 4; i++) h->data[i] = (opl_real)(i + 1);
  opl_tensor *yh = opl_layer_norm(c, h, 1, NULL, NULL, 0);
  double r = 1 / sqrt(1.25);
  double wh[4] = {-1.5 * r, -0.5 * r, 0.5 * r, 1.5 * r};
  if (yh) {
    double *got = to_double(yh);
    arrays_close(4, got, wh, TOL, TOL, "layer_norm [1,2,3,4] = [-1.3416, -0.4472, 0.4472, 1.3416]");
    free(got);
  }
  /* eps inside the square root: eps = 0.75 gives (x - 2.5) / sqrt(2) */
  opl_tensor *ye = opl_group_norm(c, opl_reshape(c, h, OPL_DIMS(1, 1, 4)), 1, NULL, NULL, 0.75);
  double we[4] = {-1.5 / sqrt(2.0), -0.5 / sqrt(2.0), 0.5 / sqrt(2.0), 1.5 / sqrt(2.0)};
  if (ye) {
    double *got = to_double(ye);
    arrays_close(4, got, we, TOL, TOL, "group_norm eps = 0.75 divides by sqrt(var + eps)");
    free(got);
  }
  /* A constant group normalizes to beta (variance 0, eps > 0). */
  opl_tensor *k = opl_full(c, OPL_DIMS(1, 2, 3), 7.0), *kb = opl_full(c, OPL_DIMS(2), 0.25);
  opl_tensor *yk = opl_group_norm(c, k, 1, NULL, kb, 1e-5);
  double wk[6] = {0.25, 0.25, 0.25, 0.25, 0.25, 0.25};
  if (yk) {
    double *got = to_double(yk);
    arrays_close(6, got, wk, 0, 1e-6, "constant input normalizes to beta");
    free(got);
  }
  ok(opl_ctx_status(c) == OPL_OK, "norm values: no error (%s)", opl_ctx_errmsg(c));
  opl_ctx_free(&c);
}

/* The gradient of a mean-like loss through a norm: sum(y) does not depend on x without
 * affine (every group sums to 0), so the x gradient of a uniform seed is 0. */
static void test_uniform_seed_grad(void) {
  opl_ctx *c = opl_ctx_new(0);
  opl_tensor *x = opl_tensor_alloc(OPL_DIMS(2, 4, 6), OPL_T_REQGRAD, NULL);
  fill(x, -1, 1);
  opl_tensor *y = opl_group_norm(c, x, 2, NULL, NULL, 1e-5);
  opl_real seed[48];
  for (int i = 0; i < 48; i++) seed[i] = 1;
  opl_backward_seed(c, y, seed);
  double worst = 0;
  for (int i = 0; i < 48; i++) worst = fmax(worst, fabs(x->grad[i]));
  ok(worst < 1e3 * TOL, "uniform seed gives a zero x gradient (max %.2g)", worst);
  opl_tensor_free(&x);
  opl_ctx_free(&c);
}

/* Backward from y with a seed drawn from rng, then y's values and the gradients of ts[0 .. nt)
 * packed into one array (malloc'd) of *n values. */
static double *seeded_backward(opl_ctx *c, opl_tensor *y, opl_tensor *const *ts, int nt, int64_t *n) {
  opl_real *seed = malloc((size_t)y->numel * sizeof *seed);
  for (int64_t i = 0; i < y->numel; i++) seed[i] = (opl_real)(2 * gc_uniform(&rng) - 1);
  opl_backward_seed(c, y, seed);
  free(seed);
  *n = y->numel;
  for (int k = 0; k < nt; k++) *n += ts[k]->numel;
  double *res = malloc((size_t)*n * sizeof *res);
  int64_t j = 0;
  for (int64_t i = 0; i < y->numel; i++) res[j++] = y->data[i];
  for (int k = 0; k < nt; k++)
    for (int64_t i = 0; i < ts[k]->numel; i++) res[j++] = ts[k]->grad[i];
  return res;
}

/* The fused op equals opl_gelu(opl_group_norm(...)): values, and the gradients of x, gamma and
 * beta for a random output seed, on shapes whose rows are shorter than, equal to and longer
 * than the fused kernels' chunk of 256 (and not a multiple of it). */
static void test_group_gelu_matches(void) {
  struct { int rank; int64_t shape[5]; int G; } cases[] = {
      {3, {2, 6, 7}, 3}, {4, {3, 4, 16, 16}, 1}, {4, {2, 6, 19, 23}, 2}, {5, {2, 4, 3, 5, 7}, 4},
  };
  for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
    double *res[2];
    int64_t n = 0;
    for (int fused = 0; fused < 2; fused++) {
      rng = 1234 + t;
      int64_t C = cases[t].shape[1];
      opl_tensor *x = opl_tensor_alloc(cases[t].rank, cases[t].shape, OPL_T_REQGRAD, NULL);
      opl_tensor *gm = opl_tensor_alloc(1, &C, OPL_T_REQGRAD, NULL), *bt = opl_tensor_alloc(1, &C, OPL_T_REQGRAD, NULL);
      fill(x, -2, 3), fill(gm, 0.5, 1.5), fill(bt, -1, 1);
      opl_ctx *c = opl_ctx_new(0);
      opl_tensor *y = fused ? opl_group_norm_gelu(c, x, cases[t].G, gm, bt, 1e-5)
                            : opl_gelu(c, opl_group_norm(c, x, cases[t].G, gm, bt, 1e-5));
      OPL_ASSERT(y != NULL, "%s", opl_ctx_errmsg(c));
      res[fused] = seeded_backward(c, y, (opl_tensor *const[]){x, gm, bt}, 3, &n);
      opl_ctx_free(&c);
      opl_tensor_free(&x), opl_tensor_free(&gm), opl_tensor_free(&bt);
    }
    arrays_close(n, res[1], res[0], 10 * TOL, 10 * TOL,
                 "group_norm_gelu case %zu (rank %d, G%d) = gelu(group_norm): values and gradients", t,
                 cases[t].rank, cases[t].G);
    free(res[0]), free(res[1]);
  }
}

/* opl_group_norm_gelu_add equals opl_add(opl_group_norm_gelu(...), r): values and the gradients of
 * x, gamma, beta and r for a random output seed. */
static void test_group_gelu_add_matches(void) {
  const int64_t shape[4] = {3, 4, 19, 23}, C = 4;
  double *res[2];
  int64_t n = 0;
  for (int fused = 0; fused < 2; fused++) {
    rng = 4321;
    opl_tensor *x = opl_tensor_alloc(4, shape, OPL_T_REQGRAD, NULL), *r = opl_tensor_alloc(4, shape, OPL_T_REQGRAD, NULL);
    opl_tensor *gm = opl_tensor_alloc(1, &C, OPL_T_REQGRAD, NULL), *bt = opl_tensor_alloc(1, &C, OPL_T_REQGRAD, NULL);
    fill(x, -2, 3), fill(r, -1, 1), fill(gm, 0.5, 1.5), fill(bt, -1, 1);
    opl_ctx *c = opl_ctx_new(0);
    opl_tensor *y = fused ? opl_group_norm_gelu_add(c, x, 2, gm, bt, 1e-5, r)
                          : opl_add(c, opl_group_norm_gelu(c, x, 2, gm, bt, 1e-5), r);
    OPL_ASSERT(y != NULL, "%s", opl_ctx_errmsg(c));
    res[fused] = seeded_backward(c, y, (opl_tensor *const[]){x, r, gm, bt}, 4, &n);
    opl_ctx_free(&c);
    opl_tensor_free(&x), opl_tensor_free(&r), opl_tensor_free(&gm), opl_tensor_free(&bt);
  }
  arrays_close(n, res[1], res[0], TOL, TOL, "group_norm_gelu_add = group_norm_gelu + r: values and gradients");
  free(res[0]), free(res[1]);
}

/* The fused op keeps x, not its output: the output can be released before backward, which then
 * gives the same gradients. */
static void test_group_gelu_release(void) {
  opl_ctx *c = opl_ctx_new(0);
  opl_tensor *x = opl_tensor_alloc(OPL_DIMS(2, 3, 8, 8), OPL_T_REQGRAD, NULL);
  opl_tensor *x2 = opl_tensor_alloc(OPL_DIMS(2, 3, 8, 8), OPL_T_REQGRAD, NULL);
  rng = 77;
  fill(x, -1, 1);
  memcpy(x2->data, x->data, (size_t)x->numel * sizeof *x->data);
  opl_real seed[384];
  for (int i = 0; i < 384; i++) seed[i] = (opl_real)(2 * gc_uniform(&rng) - 1);
  opl_tensor *y = opl_group_norm_gelu(c, x, 1, NULL, NULL, 1e-5);
  opl_backward_seed(c, y, seed);
  opl_ctx_reset(c);
  opl_tensor *y2 = opl_group_norm_gelu(c, x2, 1, NULL, NULL, 1e-5);
  opl_tensor *keep = y2;
  opl_real *seed2 = opl_arena_alloc(c, sizeof seed);
  memcpy(seed2, seed, sizeof seed);
  opl_release(c, y2);
  ok(keep->data == NULL, "group_norm_gelu: the output is released (its backward does not read it)");
  opl_backward_seed(c, keep, seed2);
  double worst = 0;
  for (int64_t i = 0; i < x->numel; i++) worst = fmax(worst, fabs((double)x->grad[i] - x2->grad[i]));
  ok(opl_ctx_status(c) == OPL_OK && worst == 0, "group_norm_gelu: same gradient after the release (max diff %.2g)",
     worst);
  opl_tensor_free(&x), opl_tensor_free(&x2);
  opl_ctx_free(&c);
}

/* ------------------------------------------------------------ bad input */

static void err_is(opl_ctx *c, const opl_tensor *y, int status, const char *a, const char *b,
                   const char *what) {
  const char *m = opl_ctx_errmsg(c);
  ok(y == NULL && opl_ctx_status(c) == status && (!a || strstr(m, a)) && (!b || strstr(m, b)),
     "%s -> NULL + %s: %s", what, opl_status_name(status), m);
  opl_ctx_clear_error(c);
}

static void test_bad_input(void) {
  opl_ctx *c = opl_ctx_new(0);
  opl_tensor *x = opl_new(c, OPL_DIMS(2, 6, 5)), *g6 = opl_new(c, OPL_DIMS(6)),
             *g5 = opl_new(c, OPL_DIMS(5)), *g23 = opl_new(c, OPL_DIMS(2, 3));
  err_is(c, opl_group_norm(c, x, 4, NULL, NULL, 1e-5), OPL_ERR_SHAPE, "(2, 6, 5)", "4 groups",
         "group_norm 4 groups of 6 channels");
  err_is(c, opl_group_norm(c, x, 0, NULL, NULL, 1e-5), OPL_ERR_ARG, "groups", NULL, "group_norm 0 groups");
  err_is(c, opl_group_norm(c, x, 2, g5, NULL, 1e-5), OPL_ERR_SHAPE, "(5)", "(2, 6, 5)",
         "group_norm gamma (5) for 6 channels");
  err_is(c, opl_group_norm(c, x, 2, g6, g23, 1e-5), OPL_ERR_SHAPE, "(2, 3)", "(6)",
         "group_norm beta (2,3)");
  err_is(c, opl_group_norm(c, x, 2, NULL, NULL, -1), OPL_ERR_ARG, "eps", NULL, "group_norm eps < 0");
  err_is(c, opl_group_norm(c, x, 2, NULL, NULL, NAN), OPL_ERR_ARG, "eps", NULL, "group_norm eps NaN");
  opl_tensor *x1 = opl_new(c, OPL_DIMS(6));
  err_is(c, opl_group_norm(c, x1, 1, NULL, NULL, 1e-5), OPL_ERR_SHAPE, "(6)", NULL, "group_norm of rank 1");
  err_is(c, opl_instance_norm(c, x, g5, NULL, 1e-5), OPL_ERR_SHAPE, "(5)", "(2, 6, 5)",
         "instance_norm gamma (5) for 6 channels");
  err_is(c, opl_layer_norm(c, x, 1, g6, NULL, 1e-5), OPL_ERR_SHAPE, "(6)", "(5)",
         "layer_norm nd 1 with gamma (6) instead of (5)");
  opl_tensor *g30 = opl_new(c, OPL_DIMS(30));
  err_is(c, opl_layer_norm(c, x, 2, g30, NULL, 1e-5), OPL_ERR_SHAPE, "(30)", "(6, 5)",
         "layer_norm nd 2 with flat gamma (30)");
  err_is(c, opl_layer_norm(c, x, 0, NULL, NULL, 1e-5), OPL_ERR_ARG, "nd = 0", NULL, "layer_norm nd 0");
  err_is(c, opl_layer_norm(c, x, 4, NULL, NULL, 1e-5), OPL_ERR_ARG, "nd = 4", NULL, "layer_norm nd > rank");
  opl_tensor *cx = opl_new_flags(c, OPL_DIMS(2, 6, 5), OPL_T_COMPLEX);
  err_is(c, opl_layer_norm(c, cx, 1, NULL, NULL, 1e-5), OPL_ERR_ARG, "complex", NULL, "layer_norm of complex");
  err_is(c, opl_group_norm(c, NULL, 1, NULL, NULL, 1e-5), OPL_ERR_ARG, "NULL", NULL, "group_norm of NULL");
  err_is(c, opl_group_norm_gelu(c, x, 4, NULL, NULL, 1e-5), OPL_ERR_SHAPE, "(2, 6, 5)", "4 groups",
         "group_norm_gelu 4 groups of 6 channels");
  err_is(c, opl_group_norm_gelu(c, x, 2, g5, NULL, 1e-5), OPL_ERR_SHAPE, "(5)", "(2, 6, 5)",
         "group_norm_gelu gamma (5) for 6 channels");
  err_is(c, opl_group_norm_gelu(c, x, 2, NULL, NULL, -1), OPL_ERR_ARG, "eps", NULL, "group_norm_gelu eps < 0");
  err_is(c, opl_group_norm_gelu(c, x1, 1, NULL, NULL, 1e-5), OPL_ERR_SHAPE, "(6)", NULL,
         "group_norm_gelu of rank 1");
  opl_tensor *r65 = opl_new(c, OPL_DIMS(2, 6, 4)), *rc = opl_new_flags(c, OPL_DIMS(2, 6, 5), OPL_T_COMPLEX);
  err_is(c, opl_group_norm_gelu_add(c, x, 2, NULL, NULL, 1e-5, r65), OPL_ERR_SHAPE, "(2, 6, 4)", "(2, 6, 5)",
         "group_norm_gelu_add r of another shape");
  err_is(c, opl_group_norm_gelu_add(c, x, 2, NULL, NULL, 1e-5, NULL), OPL_ERR_ARG, "NULL", NULL,
         "group_norm_gelu_add r NULL");
  err_is(c, opl_group_norm_gelu_add(c, x, 2, NULL, NULL, 1e-5, rc), OPL_ERR_ARG, "complex", NULL,
         "group_norm_gelu_add complex r");
  err_is(c, opl_group_norm_gelu_add(c, x, 4, NULL, NULL, 1e-5, x), OPL_ERR_SHAPE, "4 groups", NULL,
         "group_norm_gelu_add 4 groups of 6 channels");
  opl_ctx_free(&c);
}

int main(void) {
  tap_begin();
  gc_run_table(rows, (int)(sizeof rows / sizeof rows[0]));
  test_group_values();
  test_instance_layer_values();
  test_uniform_seed_grad();
  test_group_gelu_matches();
  test_group_gelu_release();
  test_group_gelu_add_matches();
  test_bad_input();
  return tap_end();
}
