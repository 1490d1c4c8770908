/* Linear ops (linear, channel_linear, matmul, bmm): gradient checks (table), adjoint checks in
 * each input, forward and backward values against naive loops written here on both the
 * single-threaded and the parallel-over-samples paths, steady-state allocation, bad input. */
#include <math.h>
#include <string.h>
#include "tests/gradcheck.h"
#include "tests/tap.h"

static opl_tensor *f_linear(opl_ctx *c, opl_tensor **x, const void *o) {
  (void)o;
  return opl_linear(c, x[0], x[1], NULL);
}
static opl_tensor *f_linear_b(opl_ctx *c, opl_tensor **x, const void *o) {
  (void)o;
  return opl_linear(c, x[0], x[1], x[2]);
}
/* Input through another op (arena tensor whose gradient starts empty), and one arena tensor
 * feeding two linear layers (the first backward writes its gradient, the second accumulates). */
static opl_tensor *f_linear_twice(opl_ctx *c, opl_tensor **x, const void *o) {
  (void)o;
  opl_tensor *h = opl_tanh(c, x[0]);
  return opl_add(c, opl_linear(c, h, x[1], x[2]), opl_linear(c, h, x[3], NULL));
}
/* x used as both input and weight: linear(h, h) = h h^T. */
static opl_tensor *f_linear_self(opl_ctx *c, opl_tensor **x, const void *o) {
  (void)o;
  opl_tensor *h = opl_scale(c, x[0], 1.5);
  return opl_linear(c, h, h, NULL);
}
static opl_tensor *f_chlin(opl_ctx *c, opl_tensor **x, const void *o) {
  (void)o;
  return opl_channel_linear(c, x[0], x[1], NULL);
}
static opl_tensor *f_chlin_b(opl_ctx *c, opl_tensor **x, const void *o) {
  (void)o;
  return opl_channel_linear(c, x[0], x[1], x[2]);
}
static opl_tensor *f_chlin_twice(opl_ctx *c, opl_tensor **x, const void *o) {
  (void)o;
  opl_tensor *h = opl_tanh(c, x[0]);
  return opl_add(c, opl_channel_linear(c, h, x[1], x[2]), opl_channel_linear(c, h, x[3], NULL));
}

/* channel_mlp with opt = activation kind (int); inputs x, w1, b1, w2, b2 (b1, b2 may be absent:
 * nin 3 = x, w1, w2 without biases). */
static opl_tensor *f_cmlp(opl_ctx *c, opl_tensor **x, const void *o) {
  const int act = *(const int *)o;
  if (!x[3]) return opl_channel_mlp(c, x[0], x[1], NULL, x[2], NULL, act);
  return opl_channel_mlp(c, x[0], x[1], x[2], x[3], x[4], act);
}
/* h = tanh(x) used by channel_mlp and by a channel_linear (gx accumulates). */
static opl_tensor *f_cmlp_twice(opl_ctx *c, opl_tensor **x, const void *o) {
  const int act = *(const int *)o;
  opl_tensor *h = opl_tanh(c, x[0]);
  opl_tensor *a = opl_channel_linear(c, h, x[5], NULL);
  return opl_add(c, a, opl_channel_mlp(c, h, x[1], x[2], x[3], x[4], act));
}
static const int act_gelu = OPL_GELU, act_tanh = OPL_TANH, act_silu = OPL_SILU;

typedef struct tr_opt {
  int ta, tb;
} tr_opt;
static opl_tensor *f_matmul(opl_ctx *c, opl_tensor **x, const void *o) {
  const tr_opt *t = o;
  return opl_matmul(c, x[0], x[1], t->ta, t->tb);
}
static opl_tensor *f_matmul_self(opl_ctx *c, opl_tensor **x, const void *o) {
  const tr_opt *t = o;
  opl_tensor *h = opl_tanh(c, x[0]);
  return opl_matmul(c, h, h, t->ta, t->tb);
}
static opl_tensor *f_bmm(opl_ctx *c, opl_tensor **x, const void *o) {
  (void)o;
  return opl_bmm(c, x[0], x[1]);
}
static opl_tensor *f_bmm_self(opl_ctx *c, opl_tensor **x, const void *o) {
  (void)o;
  opl_tensor *h = opl_tanh(c, x[0]);
  return opl_bmm(c, h, h);
}

static const tr_opt NN = {0, 0}, TN = {1, 0}, NT = {0, 1}, TT = {1, 1};

#define IN(r, ...) {.rank = r, .shape = {__VA_ARGS__}}
#define INNG(r, ...) {.rank = r, .shape = {__VA_ARGS__}, .no_grad = 1}

static const gc_case rows[] = {
    {"linear (4,3)x(5,3)^T", f_linear, NULL, 2, {IN(2, 4, 3), IN(2, 5, 3)}},
    {"linear (4,3)x(5,3)^T + b", f_linear_b, NULL, 3, {IN(2, 4, 3), IN(2, 5, 3), IN(1, 5)}},
    {"linear (3) vector + b", f_linear_b, NULL, 3, {IN(1, 3), IN(2, 2, 3), IN(1, 2)}},
    {"linear (2,3,4) + b", f_linear_b, NULL, 3, {IN(3, 2, 3, 4), IN(2, 6, 4), IN(1, 6)}},
    {"linear (2,2,3,2,4)", f_linear, NULL, 2, {IN(5, 2, 2, 3, 2, 4), IN(2, 3, 4)}},
    {"linear (64,40) + b, big M", f_linear_b, NULL, 3, {IN(2, 64, 40), IN(2, 24, 40), IN(1, 24)}},
    {"linear, w without grad", f_linear_b, NULL, 3, {IN(2, 4, 3), INNG(2, 5, 3), IN(1, 5)}},
    {"linear, x without grad", f_linear_b, NULL, 3, {INNG(2, 4, 3), IN(2, 5, 3), INNG(1, 5)}},
    {"linear twice on one arena tensor", f_linear_twice, NULL, 4,
     {IN(2, 4, 3), IN(2, 5, 3), IN(1, 5), IN(2, 5, 3)}},
    {"linear(h, h)", f_linear_self, NULL, 1, {IN(2, 4, 4)}},
    {"channel_linear (2,3,5)", f_chlin, NULL, 2, {IN(3, 2, 3, 5), IN(2, 4, 3)}},
    {"channel_linear (2,3,5) + b", f_chlin_b, NULL, 3, {IN(3, 2, 3, 5), IN(2, 4, 3), IN(1, 4)}},
    {"channel_linear (2,3,4,5) + b", f_chlin_b, NULL, 3, {IN(4, 2, 3, 4, 5), IN(2, 2, 3), IN(1, 2)}},
    {"channel_linear (1,2,3,2,2) + b", f_chlin_b, NULL, 3, {IN(5, 1, 2, 3, 2, 2), IN(2, 3, 2), IN(1, 3)}},
    {"channel_linear (4,8,16,32) + b", f_chlin_b, NULL, 3,
     {IN(4, 4, 8, 16, 32), IN(2, 8, 8), IN(1, 8)}},
    {"channel_linear (5,8,512) + b", f_chlin_b, NULL, 3, {IN(3, 5, 8, 512), IN(2, 6, 8), IN(1, 6)}},
    {"channel_linear, w without grad", f_chlin_b, NULL, 3, {IN(3, 2, 3, 5), INNG(2, 4, 3), IN(1, 4)}},
    {"channel_linear, x without grad", f_chlin_b, NULL, 3, {INNG(3, 2, 3, 5), IN(2, 4, 3), IN(1, 4)}},
    {"channel_linear twice on one arena tensor", f_chlin_twice, NULL, 4,
     {IN(3, 2, 3, 5), IN(2, 4, 3), IN(1, 4), IN(2, 4, 3)}},
    {"channel_linear twice (4,8,512)", f_chlin_twice, NULL, 4,
     {IN(3, 4, 8, 512), IN(2, 8, 8), IN(1, 8), IN(2, 8, 8)}},
    {"channel_mlp gelu (2,3,5) h 6 o 2", f_cmlp, &act_gelu, 5,
     {IN(3, 2, 3, 5), IN(2, 6, 3), IN(1, 6), IN(2, 2, 6), IN(1, 2)}},
    {"channel_mlp tanh (1,2,3,4) no biases", f_cmlp, &act_tanh, 3, {IN(4, 1, 2, 3, 4), IN(2, 5, 2), IN(2, 3, 5)}},
    {"channel_mlp gelu (4,8,512) parallel", f_cmlp, &act_gelu, 5,
     {IN(3, 4, 8, 512), IN(2, 16, 8), IN(1, 16), IN(2, 1, 16), IN(1, 1)}},
    {"channel_mlp silu, x used twice", f_cmlp_twice, &act_silu, 6,
     {IN(3, 2, 3, 5), IN(2, 4, 3), IN(1, 4), IN(2, 3, 4), IN(1, 3), IN(2, 3, 3)}},
    {"channel_mlp tanh S = 2500 (blocks of points)", f_cmlp, &act_tanh, 5,
     {IN(3, 2, 2, 2500), IN(2, 3, 2), IN(1, 3), IN(2, 2, 3), IN(1, 2)}},
    {"channel_mlp gelu (4,8,512) parallel, x used twice", f_cmlp_twice, &act_gelu, 6,
     {IN(3, 4, 8, 512), IN(2, 16, 8), IN(1, 16), IN(2, 2, 16), IN(1, 2), IN(2, 2, 8)}},
    {"channel_mlp gelu, weights without grad", f_cmlp, &act_gelu, 5,
     {IN(3, 2, 3, 5), INNG(2, 6, 3), IN(1, 6), INNG(2, 2, 6), IN(1, 2)}},
    {"matmul NN (3,4)(4,5)", f_matmul, &NN, 2, {IN(2, 3, 4), IN(2, 4, 5)}},
    {"matmul TN (4,3)^T(4,5)", f_matmul, &TN, 2, {IN(2, 4, 3), IN(2, 4, 5)}},
    {"matmul NT (3,4)(5,4)^T", f_matmul, &NT, 2, {IN(2, 3, 4), IN(2, 5, 4)}},
    {"matmul TT (4,3)^T(5,4)^T", f_matmul, &TT, 2, {IN(2, 4, 3), IN(2, 5, 4)}},
    {"matmul NT h h^T", f_matmul_self, &NT, 1, {IN(2, 3, 4)}},
    {"matmul TN h^T h", f_matmul_self, &TN, 1, {IN(2, 3, 4)}},
    {"matmul NN h h (square)", f_matmul_self, &NN, 1, {IN(2, 4, 4)}},
    {"bmm (3,2,4)(3,4,5)", f_bmm, NULL, 2, {IN(3, 3, 2, 4), IN(3, 3, 4, 5)}},
    {"bmm (1,3,1)(1,1,2)", f_bmm, NULL, 2, {IN(3, 1, 3, 1), IN(3, 1, 1, 2)}},
    {"bmm (4,16,24)(4,24,16)", f_bmm, NULL, 2, {IN(3, 4, 16, 24), IN(3, 4, 24, 16)}},
    {"bmm h h (3,3,3)", f_bmm_self, NULL, 1, {IN(3, 3, 3, 3)}},
};

/* Linear maps of x reaching the op through another op (its input is an arena tensor whose
 * gradient the op creates) and feeding two ops (the second accumulates). */
static opl_tensor *f_chlin_twice_lin(opl_ctx *c, opl_tensor **x, const void *o) {
  (void)o;
  opl_tensor *h = opl_scale(c, x[0], -0.5);
  return opl_add(c, opl_channel_linear(c, h, x[1], NULL), opl_channel_linear(c, h, x[2], NULL));
}
static opl_tensor *f_bmm_scaled(opl_ctx *c, opl_tensor **x, const void *o) {
  (void)o;
  opl_tensor *h = opl_scale(c, x[0], 2.0);
  return opl_add(c, opl_bmm(c, h, x[1]), opl_bmm(c, h, x[1]));
}

/* Bilinear ops are linear in each input when the other is held fixed (no_grad). The rows
 * "parallel" exceed the 2 Mflop threshold of the OpenMP loop over samples / batch members; they
 * are too large for finite differences (the rounding of a sum over 10^5 outputs dominates), and
 * the adjoint identity checks their backward exactly. */
static const gc_case adjoint_rows[] = {
    {"linear in x", f_linear, NULL, 2, {IN(3, 2, 3, 4), INNG(2, 5, 4)}},
    {"linear in w", f_linear, NULL, 2, {INNG(3, 2, 3, 4), IN(2, 5, 4)}},
    {"channel_linear in x", f_chlin, NULL, 2, {IN(4, 2, 3, 4, 5), INNG(2, 6, 3)}},
    {"channel_linear in w", f_chlin, NULL, 2, {INNG(4, 2, 3, 4, 5), IN(2, 6, 3)}},
    {"channel_linear in x, parallel", f_chlin, NULL, 2, {IN(3, 8, 16, 1024), INNG(2, 12, 16)}},
    {"channel_linear in w, parallel", f_chlin, NULL, 2, {INNG(3, 8, 16, 1024), IN(2, 12, 16)}},
    {"channel_linear in x, parallel, uneven batch", f_chlin, NULL, 2, {IN(4, 5, 16, 32, 32), INNG(2, 12, 16)}},
    {"channel_linear in w, parallel, uneven batch", f_chlin, NULL, 2, {INNG(4, 5, 16, 32, 32), IN(2, 12, 16)}},
    {"channel_linear twice on one arena tensor, parallel", f_chlin_twice_lin, NULL, 3,
     {IN(3, 4, 16, 2048), INNG(2, 16, 16), INNG(2, 16, 16)}},
    {"matmul NN in a", f_matmul, &NN, 2, {IN(2, 3, 4), INNG(2, 4, 5)}},
    {"matmul NN in b", f_matmul, &NN, 2, {INNG(2, 3, 4), IN(2, 4, 5)}},
    {"matmul TT in a", f_matmul, &TT, 2, {IN(2, 4, 3), INNG(2, 5, 4)}},
    {"matmul TT in b", f_matmul, &TT, 2, {INNG(2, 4, 3), IN(2, 5, 4)}},
    {"matmul TN in a", f_matmul, &TN, 2, {IN(2, 4, 3), INNG(2, 4, 5)}},
    {"matmul NT in b", f_matmul, &NT, 2, {INNG(2, 3, 4), IN(2, 5, 4)}},
    {"bmm in a", f_bmm, NULL, 2, {IN(3, 3, 2, 4), INNG(3, 3, 4, 5)}},
    {"bmm in b", f_bmm, NULL, 2, {INNG(3, 3, 2, 4), IN(3, 3, 4, 5)}},
    {"bmm in a, parallel", f_bmm, NULL, 2, {IN(3, 4, 64, 80), INNG(3, 4, 80, 64)}},
    {"bmm in b, parallel", f_bmm, NULL, 2, {INNG(3, 4, 64, 80), IN(3, 4, 80, 64)}},
    {"bmm twice on one arena tensor, parallel", f_bmm_scaled, NULL, 2, {IN(3, 4, 64, 80), INNG(3, 4, 80, 64)}},
};

#ifdef OPL_DOUBLE
#define VTOL 1e-12
#else
#define VTOL 2e-5
#endif

static void fill(opl_tensor *t, uint64_t seed) {
  for (int64_t i = 0; i < opl_nreal(t); i++) t->data[i] = (opl_real)(2 * gc_uniform(&seed) - 1);
}

static opl_tensor *heap(int rank, const int64_t *shape, int flags, uint64_t seed) {
  opl_err err;
  opl_tensor *t = opl_tensor_alloc(rank, shape, flags, &err);
  if (t) fill(t, seed);
  return t;
}

static int compare(const opl_real *got, const double *want, int64_t n, double tol, const char *what) {
  double *g = malloc((size_t)n * sizeof *g);
  for (int64_t i = 0; i < n; i++) g[i] = got[i];
  int r = arrays_close((long)n, g, want, tol, tol, "%s", what);
  free(g);
  return r;
}

/* Element (i, j) of op(m) where m is stored (rows, cols) row-major. */
static double at(const opl_tensor *m, int t, int64_t i, int64_t j) {
  int64_t cols = m->shape[m->rank - 1];
  return t ? m->data[j * cols + i] : m->data[i * cols + j];
}

static void test_linear_values(void) {
  opl_ctx *c = opl_ctx_new(0);
  int64_t M = 37, In = 19, Out = 23;
  opl_tensor *x = opl_new(c, OPL_DIMS(M, In)), *w = opl_new(c, OPL_DIMS(Out, In)),
             *b = opl_new(c, OPL_DIMS(Out));
  fill(x, 1), fill(w, 2), fill(b, 3);
  opl_tensor *y = opl_linear(c, x, w, b);
  double *want = malloc(M * Out * sizeof *want);
  for (int64_t m = 0; m < M; m++)
    for (int64_t o = 0; o < Out; o++) {
      double s = b->data[o];
      for (int64_t i = 0; i < In; i++) s += (double)x->data[m * In + i] * w->data[o * In + i];
      want[m * Out + o] = s;
    }
  ok(y && y->rank == 2 && y->shape[0] == M && y->shape[1] == Out, "linear shape (37, 23)");
  if (y) compare(y->data, want, M * Out, VTOL, "linear values with bias");
  /* Leading axes are kept: (1, 37, 19) -> (1, 37, 23), same values without the bias. */
  opl_tensor *y3 = opl_linear(c, opl_view(c, x, OPL_DIMS(1, M, In)), w, NULL);
  ok(y3 && y3->rank == 3 && y3->shape[0] == 1 && y3->shape[2] == Out, "linear keeps leading axes");
  for (int64_t m = 0; m < M; m++)
    for (int64_t o = 0; o < Out; o++) want[m * Out + o] -= b->data[o];
  if (y3) compare(y3->data, want, M * Out, VTOL, "linear values without bias");
  opl_ctx_stats st;
  opl_ctx_get_stats(c, &st);
  ok(st.tape_nodes == 0 && opl_ctx_status(c) == OPL_OK, "no tape node without gradients");
  free(want);
  opl_ctx_free(&c);
}

/* Naive forward, and backward of a seeded output, of channel_linear with bias. */
static void naive_chlin(int64_t N, int64_t Ci, int64_t Co, int64_t S, const opl_tensor *x,
                        const opl_tensor *w, const opl_tensor *b, const opl_real *gy, double *y,
                        double *gx, double *gw, double *gb) {
  for (int64_t n = 0; n < N; n++)
    for (int64_t o = 0; o < Co; o++)
      for (int64_t s = 0; s < S; s++) {
        double a = b->data[o];
        for (int64_t i = 0; i < Ci; i++) a += (double)w->data[o * Ci + i] * x->data[(n * Ci + i) * S + s];
        y[(n * Co + o) * S + s] = a;
      }
  for (int64_t k = 0; k < N * Ci * S; k++) gx[k] = 0;
  for (int64_t k = 0; k < Co * Ci; k++) gw[k] = 0;
  for (int64_t k = 0; k < Co; k++) gb[k] = 0;
  for (int64_t n = 0; n < N; n++)
    for (int64_t o = 0; o < Co; o++)
      for (int64_t s = 0; s < S; s++) {
        double g = gy[(n * Co + o) * S + s];
        gb[o] += g;
        for (int64_t i = 0; i < Ci; i++) {
          gx[(n * Ci + i) * S + s] += w->data[o * Ci + i] * g;
          gw[o * Ci + i] += g * x->data[(n * Ci + i) * S + s];
        }
      }
}

/* Forward and backward of channel_linear on N samples against the naive loops, with 1 thread
 * and 2 threads (N = 1: one multi-threaded gemm per product; N >= 2: the loop over samples,
 * evenly or unevenly split); parameters start with a gradient of 0.5 that must be
 * kept (accumulation). */
static void test_chlin_values(int64_t N) {
  int64_t Ci = 8, Co = 12, X = 80, Y = 64, S = X * Y;
  int64_t xs[4] = {N, Ci, X, Y}, ws[2] = {Co, Ci}, bs[1] = {Co};
  opl_tensor *x = heap(4, xs, OPL_T_REQGRAD, 7), *w = heap(2, ws, OPL_T_REQGRAD, 8),
             *b = heap(1, bs, OPL_T_REQGRAD, 9);
  int64_t ny = N * Co * S, nx = N * Ci * S;
  opl_real *seed = malloc(ny * sizeof *seed);
  uint64_t st = 99;
  for (int64_t k = 0; k < ny; k++) seed[k] = (opl_real)(2 * gc_uniform(&st) - 1);
  double *y = malloc(ny * sizeof *y), *gx = malloc(nx * sizeof *gx), gw[96], gb[12];
  char what[3][64];
  naive_chlin(N, Ci, Co, S, x, w, b, seed, y, gx, gw, gb);
  int saved = opl_get_num_threads();
  for (int th = 1; th <= 2; th++) {
    opl_set_num_threads(th);
    opl_ctx *c = opl_ctx_new(0);
    for (int64_t k = 0; k < nx; k++) x->grad[k] = 0.5;
    for (int64_t k = 0; k < Co * Ci; k++) w->grad[k] = 0.5;
    for (int64_t k = 0; k < Co; k++) b->grad[k] = 0.5;
    opl_tensor *out = opl_channel_linear(c, x, w, b);
    ok(out && out->rank == 4 && out->shape[0] == N && out->shape[1] == Co && out->shape[2] == X &&
           out->shape[3] == Y, "channel_linear shape (%lld, 12, 80, 64), %d thread(s)", (long long)N, th);
    if (!out) { opl_ctx_free(&c); continue; }
    snprintf(what[0], 64, "channel_linear N=%lld forward, %d thread(s)", (long long)N, th);
    compare(out->data, y, ny, VTOL, what[0]);
    ok(opl_backward_seed(c, out, seed) == OPL_OK, "channel_linear backward runs");
    double *gxw = malloc(nx * sizeof *gxw), gww[96], gbw[12];
    for (int64_t k = 0; k < nx; k++) gxw[k] = gx[k] + 0.5;
    for (int64_t k = 0; k < Co * Ci; k++) gww[k] = gw[k] + 0.5;
    for (int64_t k = 0; k < Co; k++) gbw[k] = gb[k] + 0.5;
    /* gw and gb sum up to N*S = 30720 products: scale the tolerance. */
    snprintf(what[0], 64, "channel_linear N=%lld gx accumulated, %d thread(s)", (long long)N, th);
    snprintf(what[1], 64, "channel_linear N=%lld gw accumulated, %d thread(s)", (long long)N, th);
    snprintf(what[2], 64, "channel_linear N=%lld gb accumulated, %d thread(s)", (long long)N, th);
    compare(x->grad, gxw, nx, VTOL, what[0]);
    compare(w->grad, gww, Co * Ci, 30 * VTOL, what[1]);
    compare(b->grad, gbw, Co, 30 * VTOL, what[2]);
    free(gxw);
    opl_ctx_free(&c);
  }
  opl_set_num_threads(saved);
  free(seed), free(y), free(gx);
  opl_tensor_free(&x), opl_tensor_free(&w), opl_tensor_free(&b);
}

static void test_matmul_values(void) {
  opl_ctx *c = opl_ctx_new(0);
  int64_t M = 13, K = 9, N = 11;
  double want[13 * 11];
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++) {
      opl_tensor *a = ta ? opl_new(c, OPL_DIMS(K, M)) : opl_new(c, OPL_DIMS(M, K));
      opl_tensor *b = tb ? opl_new(c, OPL_DIMS(N, K)) : opl_new(c, OPL_DIMS(K, N));
      fill(a, 10 + ta), fill(b, 20 + tb);
      for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
          double s = 0;
          for (int64_t k = 0; k < K; k++) s += at(a, ta, i, k) * at(b, tb, k, j);
          want[i * N + j] = s;
        }
      opl_tensor *y = opl_matmul(c, a, b, ta, tb);
      ok(y && y->shape[0] == M && y->shape[1] == N, "matmul ta=%d tb=%d shape (13, 11)", ta, tb);
      if (y) compare(y->data, want, M * N, VTOL, ta ? (tb ? "matmul TT values" : "matmul TN values")
                                                     : (tb ? "matmul NT values" : "matmul NN values"));
    }
  /* Small (one thread) and large (OpenMP loop over the batch) batched products. */
  const int64_t bs[2][4] = {{5, 13, 9, 11}, {4, 64, 80, 64}};
  for (int v = 0; v < 2; v++) {
    int64_t B = bs[v][0], Mb = bs[v][1], Kb = bs[v][2], Nb = bs[v][3];
    opl_tensor *a = opl_new(c, OPL_DIMS(B, Mb, Kb)), *b = opl_new(c, OPL_DIMS(B, Kb, Nb));
    fill(a, 30), fill(b, 31);
    double *bw = malloc(B * Mb * Nb * sizeof *bw);
    for (int64_t p = 0; p < B; p++)
      for (int64_t i = 0; i < Mb; i++)
        for (int64_t j = 0; j < Nb; j++) {
          double s = 0;
          for (int64_t k = 0; k < Kb; k++)
            s += (double)a->data[(p * Mb + i) * Kb + k] * b->data[(p * Kb + k) * Nb + j];
          bw[(p * Mb + i) * Nb + j] = s;
        }
    opl_tensor *y = opl_bmm(c, a, b);
    ok(y && y->rank == 3 && y->shape[0] == B && y->shape[1] == Mb && y->shape[2] == Nb,
       "bmm shape (%lld, %lld, %lld)", (long long)B, (long long)Mb, (long long)Nb);
    if (y) compare(y->data, bw, B * Mb * Nb, VTOL, v ? "bmm values, parallel" : "bmm values");
    free(bw);
  }
  opl_ctx_free(&c);
}

/* A training step (forward, backward, reset) repeated: after the first, no system allocation. */
static void test_steady_state(void) {
  opl_ctx *c = opl_ctx_new(0);
  opl_params p;
  opl_params_init(&p);
  opl_err err;
  opl_tensor *w1 = opl_params_add(&p, "w1", OPL_DIMS(32, 16), 0, &err);
  opl_tensor *b1 = opl_params_add(&p, "b1", OPL_DIMS(32), 0, &err);
  opl_tensor *w2 = opl_params_add(&p, "w2", OPL_DIMS(16, 32), 0, &err);
  opl_tensor *w3 = opl_params_add(&p, "w3", OPL_DIMS(64, 1024), 0, &err);
  opl_tensor *b3 = opl_params_add(&p, "b3", OPL_DIMS(64), 0, &err);
  fill(w1, 1), fill(b1, 2), fill(w2, 3), fill(w3, 4), fill(b3, 5);
  opl_tensor *x = heap(3, (int64_t[]){8, 16, 1024}, 0, 6), *v = heap(3, (int64_t[]){8, 16, 64}, 0, 7);
  int64_t allocs[4] = {0};
  double loss0 = 0, gnorm[4] = {0};
  for (int it = 0; it < 4; it++) {
    opl_ctx_reset(c);
    opl_params_zero_grad(&p);
    opl_tensor *h = opl_tanh(c, opl_channel_linear(c, x, w1, b1));
    opl_tensor *u = opl_linear(c, opl_channel_linear(c, h, w2, NULL), w3, b3);
    opl_tensor *loss = opl_add(c, opl_rel_lp_loss(c, u, v, 2, OPL_REDUCE_MEAN), opl_mse_loss(c, u, v));
    if (opl_backward(c, loss) != OPL_OK) break;
    if (it == 0) loss0 = loss->data[0];
    gnorm[it] = opl_params_grad_norm(&p);
    opl_ctx_stats st;
    opl_ctx_get_stats(c, &st);
    allocs[it] = st.sys_allocs;
  }
  ok(opl_ctx_status(c) == OPL_OK && loss0 > 0 && opl_params_grad_norm(&p) > 0,
     "training step runs (loss %g): %s", loss0, opl_ctx_errmsg(c));
  /* The arena holds the previous step's values: a gradient created in it must not start from them. */
  ok(gnorm[0] > 0 && fabs(gnorm[3] - gnorm[0]) <= 1e-9 * gnorm[0],
     "same gradients in every step on reused arena memory (%.12g, %.12g)", gnorm[0], gnorm[3]);
  ok(allocs[1] == allocs[2] && allocs[2] == allocs[3],
     "no system allocation in steady state (%lld, %lld, %lld)", (long long)allocs[1],
     (long long)allocs[2], (long long)allocs[3]);
  opl_tensor_free(&x);
  opl_tensor_free(&v);
  opl_params_free(&p);
  opl_ctx_free(&c);
}

static void test_bad_input(void) {
  opl_ctx *c = opl_ctx_new(0);
  opl_tensor *x = opl_new(c, OPL_DIMS(4, 3)), *w = opl_new(c, OPL_DIMS(5, 2)),
             *w3 = opl_new(c, OPL_DIMS(5, 3)), *b4 = opl_new(c, OPL_DIMS(4));
  opl_tensor *xc = opl_new(c, OPL_DIMS(2, 3, 8)), *x2 = opl_new(c, OPL_DIMS(2, 3));
  opl_tensor *cx = opl_new_flags(c, OPL_DIMS(2, 3, 8), OPL_T_COMPLEX);
  opl_tensor *a = opl_new(c, OPL_DIMS(3, 4)), *bb = opl_new(c, OPL_DIMS(5, 6));
  opl_tensor *p = opl_new(c, OPL_DIMS(2, 3, 4)), *q = opl_new(c, OPL_DIMS(3, 4, 5)),
             *r = opl_new(c, OPL_DIMS(2, 5, 5));
  fill(x, 1), fill(w, 2), fill(w3, 3), fill(b4, 4);
#define BAD(expr, st, s1, s2, what)                                                        \
  do {                                                                                     \
    opl_ctx_clear_error(c);                                                                \
    ok((expr) == NULL && opl_ctx_status(c) == (st) && strstr(opl_ctx_errmsg(c), s1) &&     \
           strstr(opl_ctx_errmsg(c), s2),                                                  \
       "%s: %s", what, opl_ctx_errmsg(c));                                                 \
  } while (0)
  BAD(opl_linear(c, x, w, NULL), OPL_ERR_SHAPE, "(4, 3)", "(5, 2)", "linear In mismatch names both shapes");
  BAD(opl_linear(c, x, w3, b4), OPL_ERR_SHAPE, "(4)", "(5, 3)", "linear bias length");
  BAD(opl_linear(c, x, b4, NULL), OPL_ERR_SHAPE, "w", "(4)", "linear w of rank 1");
  BAD(opl_linear(c, x, NULL, NULL), OPL_ERR_ARG, "linear", "w", "linear NULL w");
  BAD(opl_channel_linear(c, x2, w3, NULL), OPL_ERR_SHAPE, "(2, 3)", "(5, 3)", "channel_linear x of rank 2");
  BAD(opl_channel_linear(c, xc, w, NULL), OPL_ERR_SHAPE, "(2, 3, 8)", "(5, 2)", "channel_linear Ci mismatch");
  /* channel_mlp: xc (2, 3, 8); w3 (5, 3) is a valid w1 (Ch 5), w (5, 2) is not a w2 for Ch 5 */
  opl_ctx_clear_error(c);
  opl_tensor *w25 = opl_new(c, OPL_DIMS(2, 5));
  if (!ok(w25 != NULL, "channel_mlp bad-input setup: %s", opl_ctx_errmsg(c))) {
    opl_ctx_free(&c);
    return;
  }
  fill(w25, 5);
  ok(opl_channel_mlp(c, xc, w3, NULL, w25, NULL, OPL_GELU) != NULL, "valid channel_mlp runs");
  BAD(opl_channel_mlp(c, xc, w, NULL, w25, NULL, OPL_GELU), OPL_ERR_SHAPE, "(2, 3, 8)", "(5, 2)",
      "channel_mlp w1 Ci mismatch names x and w1");
  BAD(opl_channel_mlp(c, xc, w3, NULL, w, NULL, OPL_GELU), OPL_ERR_SHAPE, "w2 (5, 2)", "Ch", "channel_mlp w2 Ch mismatch");
  BAD(opl_channel_mlp(c, xc, w3, b4, w25, NULL, OPL_GELU), OPL_ERR_SHAPE, "channel_mlp", "b1", "channel_mlp b1 length");
  BAD(opl_channel_mlp(c, x2, w3, NULL, w25, NULL, OPL_GELU), OPL_ERR_SHAPE, "(2, 3)", "rank", "channel_mlp x of rank 2");
  BAD(opl_channel_mlp(c, xc, w3, NULL, w25, NULL, -1), OPL_ERR_ARG, "act = -1", "opl_unary_kind", "channel_mlp act -1");
  BAD(opl_channel_mlp(c, xc, w3, NULL, NULL, NULL, OPL_GELU), OPL_ERR_ARG, "channel_mlp", "w2", "channel_mlp NULL w2");
  BAD(opl_channel_linear(c, xc, w3, b4), OPL_ERR_SHAPE, "(4)", "(5, 3)", "channel_linear bias length");
  BAD(opl_channel_linear(c, cx, w3, NULL), OPL_ERR_ARG, "channel_linear", "complex", "channel_linear complex x");
  BAD(opl_matmul(c, a, bb, 0, 0), OPL_ERR_SHAPE, "(3, 4)", "(5, 6)", "matmul inner mismatch names both shapes");
  BAD(opl_matmul(c, a, a, 0, 0), OPL_ERR_SHAPE, "(3, 4)", "do not multiply", "matmul (3,4)(3,4)");
  opl_ctx_clear_error(c);
  ok(opl_matmul(c, a, a, 1, 0) != NULL && opl_matmul(c, a, a, 0, 1) != NULL, "matmul (3,4)^T(3,4) and (3,4)(3,4)^T are fine");
  BAD(opl_matmul(c, xc, a, 0, 0), OPL_ERR_SHAPE, "rank 2", "(2, 3, 8)", "matmul of rank 3");
  BAD(opl_bmm(c, p, q), OPL_ERR_SHAPE, "(2, 3, 4)", "(3, 4, 5)", "bmm batch mismatch");
  BAD(opl_bmm(c, p, r), OPL_ERR_SHAPE, "(2, 3, 4)", "(2, 5, 5)", "bmm inner mismatch");
  BAD(opl_bmm(c, a, a), OPL_ERR_SHAPE, "rank 3", "(3, 4)", "bmm of rank 2");
#undef BAD
  opl_ctx_free(&c);
}

/* channel_mlp equals channel_linear, unary, channel_linear in values and gradients, and keeps
 * one hidden-width buffer for backward instead of two: a training step's arena high-water
 * mark drops by at least the size of the hidden activation. */
static void test_cmlp_matches_ops(int64_t N, int64_t S, int act) {
  const int64_t Ci = 8, Ch = 32, Co = 2;
  opl_tensor *x = heap(OPL_DIMS(N, Ci, S), OPL_T_REQGRAD, 1), *w1 = heap(OPL_DIMS(Ch, Ci), OPL_T_REQGRAD, 2),
             *b1 = heap(OPL_DIMS(Ch), OPL_T_REQGRAD, 3), *w2 = heap(OPL_DIMS(Co, Ch), OPL_T_REQGRAD, 4),
             *b2 = heap(OPL_DIMS(Co), OPL_T_REQGRAD, 5);
  opl_tensor *all[5] = {x, w1, b1, w2, b2};
  opl_real *val[2], *grad[2][5];
  size_t high[2];
  for (int fused = 0; fused < 2; fused++) {
    opl_ctx *c = opl_ctx_new(0);
    for (int i = 0; i < 5; i++) opl_tensor_zero_grad(all[i]);
    opl_tensor *y = fused ? opl_channel_mlp(c, x, w1, b1, w2, b2, act)
                          : opl_channel_linear(c, opl_unary(c, opl_channel_linear(c, x, w1, b1), act), w2, b2);
    opl_backward(c, opl_mean(c, opl_square(c, y)));
    opl_ctx_stats st;
    opl_ctx_get_stats(c, &st);
    high[fused] = st.arena_high;
    ok(opl_ctx_status(c) == OPL_OK, "channel_mlp %s N %lld: %s step runs", opl_unary_name(act), (long long)N,
       fused ? "fused" : "composed");
    val[fused] = malloc(sizeof(opl_real) * (size_t)(N * Co * S));
    memcpy(val[fused], y ? y->data : x->data, sizeof(opl_real) * (size_t)(N * Co * S));
    for (int i = 0; i < 5; i++) {
      grad[fused][i] = malloc(sizeof(opl_real) * (size_t)all[i]->numel);
      memcpy(grad[fused][i], all[i]->grad, sizeof(opl_real) * (size_t)all[i]->numel);
    }
    opl_ctx_free(&c);
  }
  double *want = malloc(sizeof(double) * (size_t)(N * Ci * S));
  for (int64_t i = 0; i < N * Co * S; i++) want[i] = val[0][i];
  compare(val[1], want, N * Co * S, VTOL, "channel_mlp forward equals the composed ops");
  for (int i = 0; i < 5; i++) {
    for (int64_t j = 0; j < all[i]->numel; j++) want[j] = grad[0][i][j];
    compare(grad[1][i], want, all[i]->numel, 10 * VTOL, "channel_mlp gradient equals the composed ops'");
  }
  double saved = ((double)high[0] - (double)high[1]) / (double)(N * Ch * S * (int64_t)sizeof(opl_real));
  ok(saved >= 1.0, "channel_mlp training step keeps %.2f hidden activations less than the composed ops (need >= 1)",
     saved);
  free(want);
  for (int f = 0; f < 2; f++) {
    free(val[f]);
    for (int i = 0; i < 5; i++) free(grad[f][i]);
  }
  for (int i = 0; i < 5; i++) opl_tensor_free(&all[i]);
}

int main(void) {
  tap_begin();
  /* The parallel-over-samples rows need at least 2 threads whatever OMP_NUM_THREADS says. */
  if (opl_get_num_threads() < 2) opl_set_num_threads(2);
  gc_run_table(rows, (int)(sizeof rows / sizeof rows[0]));
  gc_run_adjoint_table(adjoint_rows, (int)(sizeof adjoint_rows / sizeof adjoint_rows[0]));
  test_linear_values();
  test_chlin_values(6);
  test_chlin_values(3);
  test_chlin_values(1);
  test_matmul_values();
  test_cmlp_matches_ops(6, 256, OPL_GELU);
  test_cmlp_matches_ops(1, 3000, OPL_SIGMOID);
  test_steady_state();
  test_bad_input();
  return tap_end();
}
