/* Reductions and losses: gradient checks (table), adjoint checks for the linear reductions,
 * forward values against naive double loops written here, precision of the double
 * accumulation, the parallel paths on large tensors, and bad input. */
#include <math.h>
#include <string.h>
#include "tests/gradcheck.h"
#include "tests/tap.h"

typedef struct ax_opt {
  int axis, keepdim;
} ax_opt;

static opl_tensor *f_sum(opl_ctx *c, opl_tensor **x, const void *o) { (void)o; return opl_sum(c, x[0]); }
static opl_tensor *f_mean(opl_ctx *c, opl_tensor **x, const void *o) { (void)o; return opl_mean(c, x[0]); }
static opl_tensor *f_sum_axis(opl_ctx *c, opl_tensor **x, const void *o) {
  const ax_opt *a = o;
  return opl_sum_axis(c, x[0], a->axis, a->keepdim);
}
static opl_tensor *f_mean_axis(opl_ctx *c, opl_tensor **x, const void *o) {
  const ax_opt *a = o;
  return opl_mean_axis(c, x[0], a->axis, a->keepdim);
}
/* The output of sum/mean reached through another op, so that the reduction's input is an
 * arena tensor whose gradient starts empty. */
static opl_tensor *f_sum_of_square(opl_ctx *c, opl_tensor **x, const void *o) {
  (void)o;
  return opl_mean_axis(c, opl_square(c, x[0]), 1, 0);
}

typedef struct loss_opt {
  int p;
  opl_reduction red;
} loss_opt;

static opl_tensor *f_rel(opl_ctx *c, opl_tensor **x, const void *o) {
  const loss_opt *l = o;
  return opl_rel_lp_loss(c, x[0], x[1], l->p, l->red);
}
/* The loss of a prediction computed by another op (an arena tensor), as in training. */
static opl_tensor *f_rel_tanh(opl_ctx *c, opl_tensor **x, const void *o) {
  const loss_opt *l = o;
  return opl_rel_lp_loss(c, opl_tanh(c, x[0]), x[1], l->p, l->red);
}
/* u against a small target v = 0.05 x[1] (keeps p = 1 away from the kinks, see the table). */
static opl_tensor *f_rel_small_v(opl_ctx *c, opl_tensor **x, const void *o) {
  const loss_opt *l = o;
  return opl_rel_lp_loss(c, x[0], opl_scale(c, x[1], 0.05), l->p, l->red);
}
static opl_tensor *f_mse(opl_ctx *c, opl_tensor **x, const void *o) { (void)o; return opl_mse_loss(c, x[0], x[1]); }

static const ax_opt AX0 = {0, 0}, AX1 = {1, 0}, AXM1 = {-1, 0}, AX1K = {1, 1}, AXM2K = {-2, 1},
                    AX2 = {2, 0}, AX0K = {0, 1};
static const loss_opt L2M = {2, OPL_REDUCE_MEAN}, L2S = {2, OPL_REDUCE_SUM},
                      L1M = {1, OPL_REDUCE_MEAN}, L1S = {1, OPL_REDUCE_SUM};

#define IN(r, ...) {.rank = r, .shape = {__VA_ARGS__}}
#define INI(r, init_, ...) {.rank = r, .shape = {__VA_ARGS__}, .init = init_}
#define INNG(r, ...) {.rank = r, .shape = {__VA_ARGS__}, .no_grad = 1}

static const gc_case rows[] = {
    {"sum (2,3,4)", f_sum, NULL, 1, {IN(3, 2, 3, 4)}},
    {"mean (2,3,4)", f_mean, NULL, 1, {IN(3, 2, 3, 4)}},
    {"sum (1)", f_sum, NULL, 1, {IN(1, 1)}},
    {"sum_axis 0 (3,4,5)", f_sum_axis, &AX0, 1, {IN(3, 3, 4, 5)}},
    {"sum_axis 1 (3,4,5)", f_sum_axis, &AX1, 1, {IN(3, 3, 4, 5)}},
    {"sum_axis -1 (3,4,5)", f_sum_axis, &AXM1, 1, {IN(3, 3, 4, 5)}},
    {"sum_axis 1 keepdim (2,3,2,5)", f_sum_axis, &AX1K, 1, {IN(4, 2, 3, 2, 5)}},
    {"sum_axis 0 keepdim (7)", f_sum_axis, &AX0K, 1, {IN(1, 7)}},
    {"sum_axis 2 (2,2,300) blocked", f_sum_axis, &AX2, 1, {IN(3, 2, 2, 300)}},
    {"sum_axis 1 (2,3,600) two blocks", f_sum_axis, &AX1, 1, {IN(3, 2, 3, 600)}},
    {"mean_axis 1 (3,4,5)", f_mean_axis, &AX1, 1, {IN(3, 3, 4, 5)}},
    {"mean_axis -2 keepdim (2,3,4,5)", f_mean_axis, &AXM2K, 1, {IN(4, 2, 3, 4, 5)}},
    {"mean_axis -1 (6)", f_mean_axis, &AXM1, 1, {IN(1, 6)}},
    {"mean_axis 1 of square (arena input)", f_sum_of_square, NULL, 1, {IN(3, 2, 3, 4)}},
    {"rel_l2 mean (3,2,5)", f_rel, &L2M, 2, {IN(3, 3, 2, 5), IN(3, 3, 2, 5)}},
    {"rel_l2 sum (4,7)", f_rel, &L2S, 2, {IN(2, 4, 7), IN(2, 4, 7)}},
    {"rel_l2 mean (2,2,3,3,2)", f_rel, &L2M, 2, {IN(5, 2, 2, 3, 3, 2), IN(5, 2, 2, 3, 3, 2)}},
    {"rel_l2 mean, v without grad", f_rel, &L2M, 2, {IN(3, 3, 2, 5), INNG(3, 3, 2, 5)}},
    {"rel_l2 mean of tanh (arena input)", f_rel_tanh, &L2M, 2, {IN(3, 3, 2, 5), IN(3, 3, 2, 5)}},
    /* Samples longer than one block of the loss are checked against the closed-form gradient in
     * test_parallel_paths: a finite difference of one scalar over 10^4 elements is too noisy. */
    /* p = 1: v = 0.05 v' keeps |u - v| >= 0.05 and |v'| >= 0.1 away from the kinks of |.| by
     * more than the single-precision step, with both signs of u - v and of v present. */
    {"rel_l1 mean (3,2,5)", f_rel_small_v, &L1M, 2, {INI(3, GC_INIT_AWAY0, 3, 2, 5), INI(3, GC_INIT_AWAY0, 3, 2, 5)}},
    {"rel_l1 sum (4,7)", f_rel_small_v, &L1S, 2, {INI(2, GC_INIT_AWAY0, 4, 7), INI(2, GC_INIT_AWAY0, 4, 7)}},
    {"rel_l1 mean (3,5), v positive", f_rel, &L1M, 2, {INI(2, GC_INIT_AWAY0, 3, 5), INI(2, GC_INIT_POS, 3, 5)}},
    {"mse (3,4)", f_mse, NULL, 2, {IN(2, 3, 4), IN(2, 3, 4)}},
    {"mse (2,3,2,2), v without grad", f_mse, NULL, 2, {IN(4, 2, 3, 2, 2), INNG(4, 2, 3, 2, 2)}},
};

static const gc_case adjoint_rows[] = {
    {"sum", f_sum, NULL, 1, {IN(3, 2, 3, 4)}},
    {"mean", f_mean, NULL, 1, {IN(3, 2, 3, 4)}},
    {"sum_axis 1", f_sum_axis, &AX1, 1, {IN(3, 3, 4, 5)}},
    {"sum_axis -1", f_sum_axis, &AXM1, 1, {IN(3, 3, 4, 5)}},
    {"mean_axis 0 keepdim", f_mean_axis, &AX0K, 1, {IN(3, 3, 4, 5)}},
    {"mean_axis -2 keepdim", f_mean_axis, &AXM2K, 1, {IN(4, 2, 3, 4, 5)}},
};

/* Fill t with a deterministic pattern in [-1, 1). */
static void fill(opl_tensor *t, uint64_t seed) {
  for (int64_t i = 0; i < t->numel; i++) t->data[i] = (opl_real)(2 * gc_uniform(&seed) - 1);
}

/* Naive sum over one axis: x [outer, D, inner] -> want [outer, inner] (double). */
static void naive_sum_axis(const opl_tensor *x, int ax, double *want) {
  int64_t outer = 1, inner = 1, D = x->shape[ax];
  for (int i = 0; i < ax; i++) outer *= x->shape[i];
  for (int i = ax + 1; i < x->rank; i++) inner *= x->shape[i];
  for (int64_t o = 0; o < outer; o++)
    for (int64_t i = 0; i < inner; i++) {
      double s = 0;
      for (int64_t d = 0; d < D; d++) s += x->data[(o * D + d) * inner + i];
      want[o * inner + i] = s;
    }
}

#ifdef OPL_DOUBLE
#define VTOL 1e-12
#define GATOL 1e-18
#else
#define VTOL 1e-5
#define GATOL 1e-10
#endif

static void test_sum_values(void) {
  opl_ctx *c = opl_ctx_new(0);
  opl_tensor *x = opl_new(c, OPL_DIMS(2, 3, 4, 5));
  fill(x, 11);
  double s = 0;
  for (int64_t i = 0; i < x->numel; i++) s += x->data[i];
  opl_tensor *ys = opl_sum(c, x), *ym = opl_mean(c, x);
  ok(ys && ys->rank == 1 && ys->shape[0] == 1, "sum has shape (1)");
  is_close(ys->data[0], s, VTOL, VTOL, "sum value");
  is_close(ym->data[0], s / 120, VTOL, VTOL, "mean value");
  /* Every axis, negative and keepdim forms, against the naive loop. */
  double want[120], got[120];
  for (int ax = 0; ax < 4; ax++)
    for (int keep = 0; keep < 2; keep++) {
      opl_tensor *y = opl_sum_axis(c, x, ax - 4 * keep, keep);  /* keep: use the negative axis */
      opl_tensor *m = opl_mean_axis(c, x, ax, keep);
      int shape_ok = y && m && y->rank == (keep ? 4 : 3) && m->rank == y->rank;
      for (int i = 0, j = 0; shape_ok && i < 4; i++) {
        if (i == ax && !keep) continue;
        int64_t e = i == ax ? 1 : x->shape[i];
        shape_ok = y->shape[j] == e && m->shape[j] == e;
        j++;
      }
      ok(shape_ok, "sum_axis/mean_axis axis %d keepdim %d shape", ax, keep);
      if (!shape_ok) continue;
      naive_sum_axis(x, ax, want);
      for (int64_t i = 0; i < y->numel; i++) got[i] = y->data[i];
      arrays_close((long)y->numel, got, want, VTOL, VTOL, "sum_axis axis %d keepdim %d values", ax, keep);
      for (int64_t i = 0; i < m->numel; i++) got[i] = m->data[i], want[i] /= (double)x->shape[ax];
      arrays_close((long)m->numel, got, want, VTOL, VTOL, "mean_axis axis %d keepdim %d values", ax, keep);
    }
  /* Rank 1 without keepdim gives shape (1). */
  opl_tensor *v = opl_full(c, OPL_DIMS(4), 2.5);
  opl_tensor *r = opl_sum_axis(c, v, 0, 0);
  ok(r && r->rank == 1 && r->shape[0] == 1 && r->data[0] == 10, "sum_axis of (4) is (1) = 10");
  ok(opl_ctx_status(c) == OPL_OK, "no error on valid input");
  /* Without gradients nothing is recorded. */
  opl_ctx_stats st;
  opl_ctx_get_stats(c, &st);
  ok(st.tape_nodes == 0, "no tape node when no input requires grad");
  opl_ctx_free(&c);
}

/* A float32 sum accumulated in float drifts by ~1e-3 relative over 4M elements; the double
 * accumulator keeps the error at the rounding of the stored values. */
static void test_sum_precision(void) {
  opl_ctx *c = opl_ctx_new(0);
  int64_t n = 1 << 22;
  opl_tensor *x = opl_full(c, OPL_DIMS(n), 0.1);
  double exact = (double)n * (double)(opl_real)0.1;
  opl_tensor *s = opl_sum(c, x), *m = opl_mean(c, x);
  is_close(s->data[0], exact, 1e-6, 0, "sum of 4M x 0.1 accumulated in double");
  is_close(m->data[0], (double)(opl_real)0.1, 1e-6, 0, "mean of 4M x 0.1");
  opl_tensor *x2 = opl_full(c, OPL_DIMS(2, n / 2), 0.1);
  opl_tensor *sa = opl_sum_axis(c, x2, 0, 0);
  opl_tensor *sb = opl_sum_axis(c, opl_view(c, x2, OPL_DIMS(n / 2, 2)), 0, 0);
  is_close(sb->data[1], exact / 2, 1e-6, 0, "sum_axis over 2M rows accumulated in double");
  is_close(sa->data[7], 2 * (double)(opl_real)0.1, 1e-6, 0, "sum_axis 0 of (2, 2M)");
  opl_tensor *u = opl_full(c, OPL_DIMS(n), 0.2);
  opl_tensor *l = opl_mse_loss(c, u, x);
  double d = (double)(opl_real)0.2 - (double)(opl_real)0.1;
  is_close(l->data[0], d * d, 1e-6, 0, "mse over 4M elements");
  opl_ctx_free(&c);
}

/* Large tensors take the OpenMP paths: values and gradients against naive loops. */
static void test_parallel_paths(void) {
  opl_ctx *c = opl_ctx_new(0);
  opl_err err;
  int64_t shape[4] = {6, 3, 70, 90};
  opl_tensor *x = opl_tensor_alloc(4, shape, OPL_T_REQGRAD, &err);
  fill(x, 5);
  int64_t n = x->numel;
  double *want = malloc(n * sizeof *want), *got = malloc(n * sizeof *got);
  for (int ax = 0; ax < 4; ax++) {
    opl_ctx_reset(c);
    opl_tensor_zero_grad(x);
    opl_tensor *y = opl_mean_axis(c, x, ax, 0);
    naive_sum_axis(x, ax, want);
    for (int64_t i = 0; i < y->numel; i++) got[i] = y->data[i], want[i] /= (double)shape[ax];
    arrays_close((long)y->numel, got, want, VTOL, VTOL, "large mean_axis %d values", ax);
    /* Backward with seed g[o, i] = o + i: gx[o, d, i] = g[o, i] / D. */
    opl_real *seed = malloc(y->numel * sizeof *seed);
    for (int64_t i = 0; i < y->numel; i++) seed[i] = (opl_real)((i % 97) * 0.01);
    opl_backward_seed(c, y, seed);
    int64_t D = shape[ax], inner = 1;
    for (int i = ax + 1; i < 4; i++) inner *= shape[i];
    for (int64_t j = 0; j < n; j++) {
      int64_t o = j / (D * inner), i = j % inner;
      want[j] = (double)seed[o * inner + i] / (double)D;
      got[j] = x->grad[j];
    }
    arrays_close((long)n, got, want, VTOL, VTOL, "large mean_axis %d gradient", ax);
    free(seed);
  }
  /* Relative L2 / L1 over 6 samples of 18900 elements, value and gradient. */
  opl_tensor *v = opl_tensor_alloc(4, shape, OPL_T_REQGRAD, &err);
  fill(v, 9);
  int64_t N = shape[0], M = n / N;
  for (int p = 1; p <= 2; p++) {
    opl_ctx_reset(c);
    opl_tensor_zero_grad(x);
    opl_tensor_zero_grad(v);
    opl_tensor *l = opl_rel_lp_loss(c, x, v, p, OPL_REDUCE_MEAN);
    double loss = 0;
    double dn[6], sn[6];
    for (int64_t s = 0; s < N; s++) {
      double a = 0, b = 0;
      for (int64_t i = 0; i < M; i++) {
        double e = (double)x->data[s * M + i] - v->data[s * M + i], vv = v->data[s * M + i];
        a += p == 2 ? e * e : fabs(e);
        b += p == 2 ? vv * vv : fabs(vv);
      }
      dn[s] = p == 2 ? sqrt(a) : a, sn[s] = p == 2 ? sqrt(b) : b;
      loss += dn[s] / sn[s] / (double)N;
    }
    is_close(l->data[0], loss, VTOL, 0, "large rel_l%d value", p);
    opl_backward(c, l);
    double *wv = malloc(n * sizeof *wv), *gv = malloc(n * sizeof *gv);
    for (int64_t j = 0; j < n; j++) {
      int64_t s = j / M;
      double e = (double)x->data[j] - v->data[j], vv = v->data[j], w = 1.0 / (double)N;
      double se = (e > 0) - (e < 0), sv = (vv > 0) - (vv < 0);
      if (p == 2) {
        want[j] = w * e / (dn[s] * sn[s]);
        wv[j] = -w * e / (dn[s] * sn[s]) - w * dn[s] * vv / (sn[s] * sn[s] * sn[s]);
      } else {
        want[j] = w * se / sn[s];
        wv[j] = -w * se / sn[s] - w * dn[s] * sv / (sn[s] * sn[s]);
      }
      got[j] = x->grad[j], gv[j] = v->grad[j];
    }
    arrays_close((long)n, got, want, VTOL, GATOL, "large rel_l%d gradient into u", p);
    arrays_close((long)n, gv, wv, VTOL, GATOL, "large rel_l%d gradient into v", p);
    free(wv), free(gv);
  }
  free(want), free(got);
  opl_tensor_free(&x);
  opl_tensor_free(&v);
  opl_ctx_free(&c);
}

static void test_loss_values(void) {
  opl_ctx *c = opl_ctx_new(0);
  /* Closed forms: u = 3 v gives ||u - v|| / ||v|| = 2 for every p; u = v gives 0. */
  opl_tensor *v = opl_new(c, OPL_DIMS(3, 2, 4)), *u = opl_new(c, OPL_DIMS(3, 2, 4));
  fill(v, 3);
  for (int64_t i = 0; i < v->numel; i++) u->data[i] = 3 * v->data[i];
  for (int p = 1; p <= 2; p++) {
    is_close(opl_rel_lp_loss(c, u, v, p, OPL_REDUCE_MEAN)->data[0], 2, VTOL, 0, "rel_l%d(3v, v) mean = 2", p);
    is_close(opl_rel_lp_loss(c, u, v, p, OPL_REDUCE_SUM)->data[0], 6, VTOL, 0, "rel_l%d(3v, v) sum = 6", p);
    is_close(opl_rel_lp_loss(c, v, v, p, OPL_REDUCE_MEAN)->data[0], 0, 0, 0, "rel_l%d(v, v) = 0", p);
  }
  /* Hand-computed: samples [3, 4] vs [0, 5]: ||(3,-1)||_2 / 5 = sqrt(10)/5; L1: 4/5.
   * Second sample [1, 1] vs [1, -1]: ||(0, 2)||_2 / sqrt 2 = sqrt 2; L1: 2/2 = 1. */
  opl_tensor *a = opl_new(c, OPL_DIMS(2, 2)), *b = opl_new(c, OPL_DIMS(2, 2));
  const double av[4] = {3, 4, 1, 1}, bv[4] = {0, 5, 1, -1};
  for (int i = 0; i < 4; i++) a->data[i] = (opl_real)av[i], b->data[i] = (opl_real)bv[i];
  is_close(opl_rel_lp_loss(c, a, b, 2, OPL_REDUCE_MEAN)->data[0], (sqrt(10) / 5 + sqrt(2)) / 2,
           VTOL, 0, "rel_l2 hand-computed");
  is_close(opl_rel_lp_loss(c, a, b, 1, OPL_REDUCE_SUM)->data[0], 0.8 + 1, VTOL, 0, "rel_l1 hand-computed");
  is_close(opl_mse_loss(c, a, b)->data[0], (9 + 1 + 0 + 4) / 4.0, VTOL, 0, "mse hand-computed");
  /* Gradient of rel_l1 at a kink of |u - v| uses sign(0) = 0. */
  opl_err err;
  opl_tensor *ua = opl_tensor_alloc(2, (int64_t[]){1, 2}, OPL_T_REQGRAD, &err);
  opl_tensor *va = opl_tensor_alloc(2, (int64_t[]){1, 2}, 0, &err);
  ua->data[0] = 1, ua->data[1] = 3, va->data[0] = 1, va->data[1] = 1;
  opl_tensor *l = opl_rel_lp_loss(c, ua, va, 1, OPL_REDUCE_MEAN);
  ok(opl_backward(c, l) == OPL_OK && ua->grad[0] == 0 && ua->grad[1] == (opl_real)0.5,
     "rel_l1 gradient: sign(0) = 0, sign(2)/||v||_1 = 0.5 (got %g, %g)", (double)ua->grad[0],
     (double)ua->grad[1]);
  /* rel_l2 with u = v: the gradient into u is 0 (no NaN from 0/0). */
  opl_ctx_reset(c);
  opl_tensor_zero_grad(ua);
  ua->data[0] = 1, ua->data[1] = 1;
  l = opl_rel_lp_loss(c, ua, va, 2, OPL_REDUCE_MEAN);
  ok(opl_backward(c, l) == OPL_OK && ua->grad[0] == 0 && ua->grad[1] == 0,
     "rel_l2 gradient at u = v is 0");
  ok(opl_ctx_status(c) == OPL_OK, "no error on valid losses");
  opl_tensor_free(&ua);
  opl_tensor_free(&va);
  opl_ctx_free(&c);
}

static void test_bad_input(void) {
  opl_ctx *c = opl_ctx_new(0);
  opl_tensor *a = opl_new(c, OPL_DIMS(2, 3)), *b = opl_new(c, OPL_DIMS(3, 2));
  fill(a, 1), fill(b, 2);
  ok(opl_sum_axis(c, a, 2, 0) == NULL && opl_ctx_status(c) == OPL_ERR_ARG, "sum_axis axis 2 of rank 2");
  ok(strstr(opl_ctx_errmsg(c), "axis 2") && strstr(opl_ctx_errmsg(c), "(2, 3)"),
     "message names axis and shape: %s", opl_ctx_errmsg(c));
  opl_ctx_clear_error(c);
  ok(opl_mean_axis(c, a, -3, 1) == NULL && opl_ctx_status(c) == OPL_ERR_ARG, "mean_axis axis -3 of rank 2");
  opl_ctx_clear_error(c);
  ok(opl_rel_lp_loss(c, a, b, 2, OPL_REDUCE_MEAN) == NULL && opl_ctx_status(c) == OPL_ERR_SHAPE,
     "rel_lp_loss (2,3) vs (3,2) is a shape error");
  ok(strstr(opl_ctx_errmsg(c), "(2, 3)") && strstr(opl_ctx_errmsg(c), "(3, 2)"),
     "message names both shapes: %s", opl_ctx_errmsg(c));
  opl_ctx_clear_error(c);
  ok(opl_mse_loss(c, a, b) == NULL && opl_ctx_status(c) == OPL_ERR_SHAPE &&
         strstr(opl_ctx_errmsg(c), "(2, 3)") && strstr(opl_ctx_errmsg(c), "(3, 2)"),
     "mse_loss (2,3) vs (3,2) names both shapes: %s", opl_ctx_errmsg(c));
  opl_ctx_clear_error(c);
  ok(opl_rel_lp_loss(c, a, a, 3, OPL_REDUCE_MEAN) == NULL && opl_ctx_status(c) == OPL_ERR_ARG &&
         strstr(opl_ctx_errmsg(c), "p = 3"),
     "rel_lp_loss p = 3 is an argument error: %s", opl_ctx_errmsg(c));
  opl_ctx_clear_error(c);
  ok(opl_rel_lp_loss(c, a, a, 2, (opl_reduction)7) == NULL && opl_ctx_status(c) == OPL_ERR_ARG,
     "rel_lp_loss unknown reduction");
  opl_ctx_clear_error(c);
  /* Sample 1 of v is all zero. */
  opl_tensor *v = opl_new(c, OPL_DIMS(3, 4)), *u = opl_new(c, OPL_DIMS(3, 4));
  fill(v, 4), fill(u, 5);
  for (int i = 4; i < 8; i++) v->data[i] = 0;
  for (int p = 1; p <= 2; p++) {
    ok(opl_rel_lp_loss(c, u, v, p, OPL_REDUCE_SUM) == NULL && opl_ctx_status(c) == OPL_ERR_ARG &&
           strstr(opl_ctx_errmsg(c), "sample 1"),
       "rel_l%d with ||v_1|| = 0 names the sample: %s", p, opl_ctx_errmsg(c));
    opl_ctx_clear_error(c);
  }
  ok(opl_sum(c, NULL) == NULL && opl_ctx_status(c) == OPL_ERR_ARG, "sum of NULL");
  opl_ctx_clear_error(c);
  ok(opl_mse_loss(c, a, NULL) == NULL && opl_ctx_status(c) == OPL_ERR_ARG, "mse_loss with NULL v");
  opl_ctx_clear_error(c);
  opl_tensor *cx = opl_new_flags(c, OPL_DIMS(2, 3), OPL_T_COMPLEX);
  ok(opl_mean(c, cx) == NULL && opl_ctx_status(c) == OPL_ERR_ARG, "mean of a complex tensor");
  opl_ctx_clear_error(c);
  /* Sticky: after an error, valid calls return NULL. */
  opl_sum_axis(c, a, 5, 0);
  ok(opl_sum(c, a) == NULL && strstr(opl_ctx_errmsg(c), "sum_axis"), "error is sticky");
  opl_ctx_free(&c);
}

/* sum, mean and mse of a large array are the same bits at every thread count and on every
 * call: the partial sums are added in an order fixed by the size alone (an OpenMP reduction
 * adds them in the order the threads finish, and partitions by thread count). The float build
 * rounds the double sum to float, which can hide a last-bit difference; the double build cannot. */
static void test_thread_invariance(void) {
  opl_ctx *c = opl_ctx_new(0);
  opl_err err;
  int64_t shape[1] = {300007};
  opl_tensor *x = opl_tensor_alloc(1, shape, 0, &err), *v = opl_tensor_alloc(1, shape, 0, &err);
  fill(x, 11);
  fill(v, 12);
  for (int64_t i = 0; i < x->numel; i += 7) x->data[i] *= (opl_real)1e3; /* mixed magnitudes */
  int prev = opl_get_num_threads(), same = 1;
  opl_real ref[3] = {0, 0, 0};
  for (int run = 0; run < 8; run++) {
    int nt = 1 + run % 4;
    opl_set_num_threads(nt);
    opl_ctx_reset(c);
    opl_real got[3] = {opl_sum(c, x)->data[0], opl_mean(c, x)->data[0], opl_mse_loss(c, x, v)->data[0]};
    if (run == 0) memcpy(ref, got, sizeof ref);
    else same &= memcmp(ref, got, sizeof ref) == 0;
  }
  opl_set_num_threads(prev);
  ok(same, "sum, mean and mse of %lld values: the same bits at 1, 2, 3 and 4 threads, twice", (long long)shape[0]);
  opl_tensor_free(&x);
  opl_tensor_free(&v);
  opl_ctx_free(&c);
}

int main(void) {
  tap_begin();
  gc_run_table(rows, (int)(sizeof rows / sizeof rows[0]));
  gc_run_adjoint_table(adjoint_rows, (int)(sizeof adjoint_rows / sizeof adjoint_rows[0]));
  test_sum_values();
  test_sum_precision();
  test_parallel_paths();
  test_thread_invariance();
  test_loss_values();
  test_bad_input();
  return tap_end();
}
