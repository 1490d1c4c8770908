/* Elementwise ops: gradient checks (table), forward values, broadcasting, bad input. */
#include <math.h>
#include <string.h>
#include "tests/gradcheck.h"
#include "tests/tap.h"

static opl_tensor *f_add(opl_ctx *c, opl_tensor **x, const void *o) { (void)o; return opl_add(c, x[0], x[1]); }
static opl_tensor *f_sub(opl_ctx *c, opl_tensor **x, const void *o) { (void)o; return opl_sub(c, x[0], x[1]); }
static opl_tensor *f_mul(opl_ctx *c, opl_tensor **x, const void *o) { (void)o; return opl_mul(c, x[0], x[1]); }
static opl_tensor *f_div(opl_ctx *c, opl_tensor **x, const void *o) { (void)o; return opl_div(c, x[0], x[1]); }
static opl_tensor *f_scale(opl_ctx *c, opl_tensor **x, const void *o) { (void)o; return opl_scale(c, x[0], -1.75); }
static opl_tensor *f_adds(opl_ctx *c, opl_tensor **x, const void *o) { (void)o; return opl_mul(c, opl_add_scalar(c, x[0], 0.5), x[0]); }
static opl_tensor *f_axpby(opl_ctx *c, opl_tensor **x, const void *o) { (void)o; return opl_axpby(c, 0.5, x[0], -2.0, x[1]); }
static opl_tensor *f_bias1(opl_ctx *c, opl_tensor **x, const void *o) { (void)o; return opl_bias(c, x[0], x[1], 1); }
static opl_tensor *f_biasl(opl_ctx *c, opl_tensor **x, const void *o) { (void)o; return opl_bias(c, x[0], x[1], -1); }
static opl_tensor *f_unary(opl_ctx *c, opl_tensor **x, const void *o) {
  return opl_unary(c, x[0], *(const opl_unary_kind *)o);
}

static const opl_unary_kind K[OPL_UNARY_COUNT] = {
    OPL_SQUARE, OPL_SQRT, OPL_EXP, OPL_LOG, OPL_SIN, OPL_COS, OPL_TANH, OPL_RELU,
    OPL_GELU, OPL_SILU, OPL_SOFTPLUS, OPL_ABS, OPL_SIGMOID};

#define IN(r, ...) {.rank = r, .shape = {__VA_ARGS__}}
#define INI(r, init_, ...) {.rank = r, .shape = {__VA_ARGS__}, .init = init_}

static const gc_case rows[] = {
    {"add same", f_add, NULL, 2, {IN(3, 2, 3, 5), IN(3, 2, 3, 5)}},
    {"add broadcast (2,3,5)+(3,1)", f_add, NULL, 2, {IN(3, 2, 3, 5), IN(2, 3, 1)}},
    {"sub broadcast (1,4)-(3,1)", f_sub, NULL, 2, {IN(2, 1, 4), IN(2, 3, 1)}},
    {"mul same", f_mul, NULL, 2, {IN(2, 4, 6), IN(2, 4, 6)}},
    {"mul broadcast (2,1,4,1,3)*(4,5,1)", f_mul, NULL, 2, {IN(5, 2, 1, 4, 1, 3), IN(3, 4, 5, 1)}},
    {"div same", f_div, NULL, 2, {IN(2, 4, 6), INI(2, GC_INIT_POS, 4, 6)}},
    {"div broadcast", f_div, NULL, 2, {IN(3, 2, 4, 6), INI(1, GC_INIT_POS, 6)}},
    {"scale", f_scale, NULL, 1, {IN(2, 3, 7)}},
    {"add_scalar", f_adds, NULL, 1, {IN(2, 3, 7)}},
    {"axpby", f_axpby, NULL, 2, {IN(2, 3, 7), IN(2, 3, 7)}},
    {"bias axis 1", f_bias1, NULL, 2, {IN(3, 2, 4, 5), IN(1, 4)}},
    {"bias last axis", f_biasl, NULL, 2, {IN(3, 2, 4, 5), IN(1, 5)}},
    {"square", f_unary, &K[OPL_SQUARE], 1, {IN(2, 3, 9)}},
    {"sqrt", f_unary, &K[OPL_SQRT], 1, {INI(2, GC_INIT_POS, 3, 9)}},
    {"exp", f_unary, &K[OPL_EXP], 1, {IN(2, 3, 9)}},
    {"log", f_unary, &K[OPL_LOG], 1, {INI(2, GC_INIT_POS, 3, 9)}},
    {"sin", f_unary, &K[OPL_SIN], 1, {IN(2, 3, 9)}},
    {"cos", f_unary, &K[OPL_COS], 1, {IN(2, 3, 9)}},
    {"tanh", f_unary, &K[OPL_TANH], 1, {IN(2, 3, 9)}},
    {"relu", f_unary, &K[OPL_RELU], 1, {INI(2, GC_INIT_AWAY0, 3, 9)}},
    {"gelu", f_unary, &K[OPL_GELU], 1, {IN(2, 3, 9)}},
    {"silu", f_unary, &K[OPL_SILU], 1, {IN(2, 3, 9)}},
    {"softplus", f_unary, &K[OPL_SOFTPLUS], 1, {IN(2, 3, 9)}},
    {"abs", f_unary, &K[OPL_ABS], 1, {INI(2, GC_INIT_AWAY0, 3, 9)}},
    {"sigmoid", f_unary, &K[OPL_SIGMOID], 1, {IN(2, 3, 9)}},
};

static const gc_case adjoint_rows[] = {
    {"scale", f_scale, NULL, 1, {IN(2, 3, 7)}},
};

static void test_values(void) {
  opl_ctx *c = opl_ctx_new(0);
  opl_tensor *x = opl_new(c, OPL_DIMS(5));
  const double xs[5] = {-3, -0.5, 0, 0.7, 4};
  for (int i = 0; i < 5; i++) x->data[i] = (opl_real)xs[i];
  /* Reference values of PyTorch's exact GELU and softplus, computed from the formulas. */
  opl_tensor *g = opl_gelu(c, x), *sp = opl_softplus(c, x), *si = opl_silu(c, x);
  for (int i = 0; i < 5; i++) {
    double v = xs[i];
    /* Single builds use a vectorized erf (abs error ~4e-7): gelu's absolute error is then of
     * the order of float rounding of x itself. */
    is_close(g->data[i], 0.5 * v * (1 + erf(v / sqrt(2.0))), 1e-6, 4 * OPL_REAL_EPS * fmax(1, fabs(v)), "gelu(%g)", v);
    is_close(sp->data[i], log1p(exp(v)), 1e-6, 1e-7, "softplus(%g)", v);
    is_close(si->data[i], v / (1 + exp(-v)), 1e-6, 1e-7, "silu(%g)", v);
  }
  /* Large arguments must not overflow. */
  x->data[0] = 100;
  x->data[1] = -100;
  opl_tensor *sp2 = opl_softplus(c, x), *sg = opl_sigmoid(c, x);
  is_close(sp2->data[0], 100, 1e-6, 0, "softplus(100) = 100");
  is_close(sp2->data[1], 0, 0, 1e-30, "softplus(-100) ~ 0");
  is_close(sg->data[1], 0, 0, 1e-30, "sigmoid(-100) ~ 0");
  ok(opl_ctx_status(c) == OPL_OK, "no error on valid input");
  opl_ctx_free(&c);
}

/* GELU over a dense sweep against the erf formula in double, forward and derivative: the float
 * build's vectorized kernels must stay within a few float ulps of the function's scale. */
static void test_gelu_sweep(void) {
  opl_ctx *c = opl_ctx_new(0);
  opl_err err;
  const int n = 20001;
  opl_tensor *x = opl_tensor_alloc(OPL_DIMS(n), OPL_T_REQGRAD, &err);
  for (int i = 0; i < n; i++) x->data[i] = (opl_real)(-10 + 20.0 * i / (n - 1));
  opl_tensor *y = opl_gelu(c, x);
  opl_real *ones = opl_arena_alloc(c, n * sizeof(opl_real));
  for (int i = 0; i < n; i++) ones[i] = 1;
  opl_backward_seed(c, y, ones);
  double ef = 0, ed = 0;
  for (int i = 0; i < n; i++) {
    double v = x->data[i];
    double f = 0.5 * v * (1 + erf(v / sqrt(2.0)));
    double d = 0.5 * (1 + erf(v / sqrt(2.0))) + v * exp(-0.5 * v * v) / sqrt(2 * M_PI);
    ef = fmax(ef, fabs(y->data[i] - f) / fmax(1, fabs(v)));
    ed = fmax(ed, fabs(x->grad[i] - d));
  }
  ok(ef < 8 * OPL_REAL_EPS, "gelu on [-10, 10]: max |error| / max(1, |x|) = %.2e", ef);
  ok(ed < 8 * OPL_REAL_EPS, "gelu' on [-10, 10]: max |error| = %.2e", ed);
  opl_tensor_free(&x);
  opl_ctx_free(&c);
}

/* tanh over a dense sweep, tiny and huge arguments and NaN against libm's tanh in double: the
 * float build's vectorized kernel (core/fastmath.c) must stay within 4 ulps relative, keep
 * tanh(0) = 0 and tanh(+-20) = +-1 exactly, and give NaN for NaN (a divergence is never hidden). */
static void test_tanh_sweep(void) {
  opl_ctx *c = opl_ctx_new(0);
  opl_err err;
  const int n = 24001, m = n + 9;
  opl_tensor *x = opl_tensor_alloc(OPL_DIMS(m), 0, &err);
  for (int i = 0; i < n; i++) x->data[i] = (opl_real)(-12 + 24.0 * i / (n - 1));
  const double extra[8] = {0.0, 1e-30, -1e-10, 1e-3, 0.5499999, 0.55, 20.0, -1e30};
  for (int i = 0; i < 8; i++) x->data[n + i] = (opl_real)extra[i];
  x->data[n + 8] = (opl_real)NAN;
  opl_tensor *y = opl_tanh(c, x);
  double er = 0;
  for (int i = 0; i < n + 8; i++) {
    double v = x->data[i], f = tanh(v);
    double e = f == 0 ? fabs((double)y->data[i]) : fabs(y->data[i] - f) / fabs(f);
    er = fmax(er, e);
  }
  ok(er <= 4 * OPL_REAL_EPS, "tanh on [-12, 12] and at 0, 1e-30, -1e-10, 1e-3, 0.55, 20, -1e30: max relative error %.2e (%.2f ulps)", er, er / OPL_REAL_EPS);
  ok(y->data[n] == 0 && y->data[n + 6] == 1 && y->data[n + 7] == -1, "tanh(0) = 0, tanh(20) = 1, tanh(-1e30) = -1 exactly");
  ok(isnan(y->data[n + 8]), "tanh(NaN) is NaN");
  opl_tensor_free(&x);
  opl_ctx_free(&c);
}

/* a / b with a tiny denominator: the gradient w.r.t. b is -(gy / b)(a / b); computed as
 * gy a / b^2, b^2 underflowed to 0 in float for |b| < ~1e-19 and a zero upstream gradient gave
 * 0 / 0 = NaN (same shapes and broadcast paths). */
static void test_div_tiny(void) {
  opl_ctx *c = opl_ctx_new(0);
  opl_err err;
  opl_tensor *a = opl_tensor_alloc(OPL_DIMS(2), OPL_T_REQGRAD, &err);
  opl_tensor *b = opl_tensor_alloc(OPL_DIMS(2), OPL_T_REQGRAD, &err);
  opl_tensor *b1 = opl_tensor_alloc(OPL_DIMS(1), OPL_T_REQGRAD, &err);
  a->data[0] = (opl_real)1e-25, a->data[1] = (opl_real)2e-25;
  b->data[0] = b->data[1] = b1->data[0] = (opl_real)1e-25;
  opl_tensor *y = opl_div(c, a, b), *yb = opl_div(c, a, b1);
  opl_real seed[2] = {0, 1};
  opl_backward_seed(c, y, seed);
  opl_backward_seed(c, yb, seed);
  double want_b0 = 0, want_b1 = -(1 / 1e-25) * 2.0;   /* -(gy / b)(a / b) */
  ok(opl_ctx_status(c) == OPL_OK && b->grad[0] == 0 && fabs(b->grad[1] - want_b1) <= 1e-5 * fabs(want_b1) &&
         fabs(b1->grad[0] - want_b1) <= 1e-5 * fabs(want_b1) && isfinite(a->grad[0]) && isfinite(a->grad[1]),
     "div by 1e-25: finite gradients, 0 where the upstream gradient is 0 (gb = %g, %g; want %g, %g)",
     (double)b->grad[0], (double)b->grad[1], want_b0, want_b1);
  opl_tensor_free(&a);
  opl_tensor_free(&b);
  opl_tensor_free(&b1);
  opl_ctx_free(&c);
}

static void test_broadcast_values(void) {
  opl_ctx *c = opl_ctx_new(0);
  opl_tensor *a = opl_new(c, OPL_DIMS(2, 3)), *b = opl_new(c, OPL_DIMS(3));
  for (int i = 0; i < 6; i++) a->data[i] = (opl_real)i;
  for (int i = 0; i < 3; i++) b->data[i] = (opl_real)(10 * (i + 1));
  opl_tensor *y = opl_add(c, a, b);
  ok(y && y->rank == 2 && y->shape[0] == 2 && y->shape[1] == 3, "broadcast shape (2,3)+(3) = (2,3)");
  double want[6] = {10, 21, 32, 13, 24, 35}, got[6];
  for (int i = 0; i < 6; i++) got[i] = y->data[i];
  arrays_close(6, got, want, 0, 0, "broadcast values");
  opl_ctx_free(&c);
}

static void test_bad_input(void) {
  opl_ctx *c = opl_ctx_new(0);
  opl_tensor *a = opl_new(c, OPL_DIMS(2, 3)), *b = opl_new(c, OPL_DIMS(4));
  opl_tensor *y = opl_add(c, a, b);
  ok(y == NULL && opl_ctx_status(c) == OPL_ERR_SHAPE, "add (2,3)+(4) is a shape error");
  ok(strstr(opl_ctx_errmsg(c), "(2, 3)") && strstr(opl_ctx_errmsg(c), "(4)"),
     "message names both shapes: %s", opl_ctx_errmsg(c));
  /* The error is sticky: later ops return NULL and keep the first message. */
  opl_tensor *z = opl_exp(c, a);
  ok(z == NULL && strstr(opl_ctx_errmsg(c), "add"), "error is sticky and first wins");
  opl_ctx_clear_error(c);
  ok(opl_exp(c, a) != NULL, "cleared error lets ops run again");
  ok(opl_exp(c, NULL) == NULL && opl_ctx_status(c) == OPL_ERR_ARG, "NULL input is an error");
  opl_ctx_clear_error(c);
  opl_tensor *bb = opl_new(c, OPL_DIMS(5));
  ok(opl_bias(c, a, bb, 1) == NULL && opl_ctx_status(c) == OPL_ERR_SHAPE, "bias length mismatch");
  opl_ctx_clear_error(c);
  ok(opl_bias(c, a, bb, 7) == NULL && opl_ctx_status(c) == OPL_ERR_ARG, "bias axis out of range");
  opl_ctx_clear_error(c);
  opl_tensor *cx = opl_new_flags(c, OPL_DIMS(2, 3), OPL_T_COMPLEX);
  ok(opl_relu(c, cx) == NULL && opl_ctx_status(c) == OPL_ERR_ARG, "relu of a complex tensor");
  opl_ctx_free(&c);
}

int main(void) {
  tap_begin();
  gc_run_table(rows, (int)(sizeof rows / sizeof rows[0]));
  gc_run_adjoint_table(adjoint_rows, (int)(sizeof adjoint_rows / sizeof adjoint_rows[0]));
  test_values();
  test_gelu_sweep();
  test_tanh_sweep();
  test_div_tiny();
  test_broadcast_values();
  test_bad_input();
  return tap_end();
}
