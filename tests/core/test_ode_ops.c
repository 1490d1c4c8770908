/* Ops of Runge-Kutta steps on the tape (core/op_ode.c): gradient checks of opl_lincomb and
 * opl_wrms (table), the adjoint identity of lincomb, forward values against naive double loops,
 * non-finite detection, bad input, tape marks (opl_tape_mark / opl_tape_rewind), and the norm of a
 * vector cut into parts (opl_wrms_sums, opl_wrms_reduced). */
#include <math.h>
#include <string.h>
#include "tests/gradcheck.h"
#include "tests/tap.h"

static const double LC_A[8] = {1.0, -0.5, 0.25, 2.0, -1.5, 0.125, 3.0, -0.75};

static opl_tensor *f_lincomb(opl_ctx *c, opl_tensor **x, const void *o) {
  int m = *(const int *)o;
  return opl_lincomb(c, m, LC_A, x);
}
/* Eight terms drawn from three inputs (repeats must accumulate). */
static opl_tensor *f_lincomb8(opl_ctx *c, opl_tensor **x, const void *o) {
  (void)o;
  opl_tensor *xs[8] = {x[0], x[1], x[2], x[0], x[1], x[2], x[0], x[1]};
  return opl_lincomb(c, 8, LC_A, xs);
}
/* An arena input (tanh of the leaf), whose gradient starts empty. */
static opl_tensor *f_lincomb_arena(opl_ctx *c, opl_tensor **x, const void *o) {
  (void)o;
  opl_tensor *xs[2] = {opl_tanh(c, x[0]), x[1]};
  return opl_lincomb(c, 2, LC_A + 2, xs);
}

typedef struct wopt {
  double rtol, atol;
} wopt;
static opl_tensor *f_wrms(opl_ctx *c, opl_tensor **x, const void *o) {
  const wopt *w = o;
  return opl_wrms(c, x[0], x[1], x[2], w->rtol, w->atol);
}
/* ya in +-[0.1, 1], yb = 2 + x/4 in [1.75, 2.25] (or the two swapped): the max(|ya|, |yb|) of
 * the weights is never near a tie, so a finite difference of any step size stays on one side. */
static opl_tensor *f_wrms_yb_big(opl_ctx *c, opl_tensor **x, const void *o) {
  const wopt *w = o;
  return opl_wrms(c, x[0], x[1], opl_add_scalar(c, opl_scale(c, x[2], 0.25), 2.0), w->rtol, w->atol);
}
static opl_tensor *f_wrms_ya_big(opl_ctx *c, opl_tensor **x, const void *o) {
  const wopt *w = o;
  return opl_wrms(c, x[0], opl_add_scalar(c, opl_scale(c, x[2], -0.25), -2.0), x[1], w->rtol, w->atol);
}
/* ya == yb (the starting-step norms) and e == ya == yb (the norm of the state itself). */
static opl_tensor *f_wrms_same(opl_ctx *c, opl_tensor **x, const void *o) {
  const wopt *w = o;
  return opl_wrms(c, x[0], x[1], x[1], w->rtol, w->atol);
}
static opl_tensor *f_wrms_self(opl_ctx *c, opl_tensor **x, const void *o) {
  const wopt *w = o;
  return opl_wrms(c, x[0], x[0], x[0], w->rtol, w->atol);
}
/* The norm of an error vector made by lincomb, through a scalar product (chained). */
static opl_tensor *f_wrms_chain(opl_ctx *c, opl_tensor **x, const void *o) {
  const wopt *w = o;
  opl_tensor *xs[2] = {x[0], x[1]};
  opl_tensor *e = opl_lincomb(c, 2, (const double[]){0.3, -0.2}, xs);
  return opl_mul(c, opl_wrms(c, e, x[0], x[1], w->rtol, w->atol), x[2]);
}

static const int M1 = 1, M3 = 3, M6 = 6;
static const wopt W1 = {1e-3, 1e-6}, W2 = {0.5, 0.1}, W0 = {0, 1}, WA = {1, 0};

#define IN(r, ...) {.rank = r, .shape = {__VA_ARGS__}}
#define INI(r, init_, ...) {.rank = r, .shape = {__VA_ARGS__}, .init = init_}
#define INNG(r, ...) {.rank = r, .shape = {__VA_ARGS__}, .no_grad = 1}

static const gc_case rows[] = {
    {"lincomb m=1 (2,5)", f_lincomb, &M1, 1, {IN(2, 2, 5)}},
    {"lincomb m=3 (3,4)", f_lincomb, &M3, 3, {IN(2, 3, 4), IN(2, 3, 4), IN(2, 3, 4)}},
    {"lincomb m=6 (7)", f_lincomb, &M6, 6, {IN(1, 7), IN(1, 7), IN(1, 7), IN(1, 7), IN(1, 7), IN(1, 7)}},
    {"lincomb m=3, middle input without grad", f_lincomb, &M3, 3, {IN(1, 9), INNG(1, 9), IN(1, 9)}},
    {"lincomb m=8 from 3 inputs (repeats)", f_lincomb8, NULL, 3, {IN(2, 2, 3), IN(2, 2, 3), IN(2, 2, 3)}},
    {"lincomb of an arena tensor", f_lincomb_arena, NULL, 2, {IN(2, 3, 3), IN(2, 3, 3)}},
    {"lincomb m=6 (1100) three blocks", f_lincomb, &M6, 6,
     {IN(1, 1100), IN(1, 1100), IN(1, 1100), IN(1, 1100), IN(1, 1100), IN(1, 1100)}},
    {"wrms rtol 1e-3 atol 1e-6 (2,6), |yb| > |ya|", f_wrms_yb_big, &W1, 3, {IN(2, 2, 6), INI(2, GC_INIT_AWAY0, 2, 6), IN(2, 2, 6)}},
    {"wrms rtol 1e-3 atol 1e-6 (2,6), |ya| > |yb|", f_wrms_ya_big, &W1, 3, {IN(2, 2, 6), INI(2, GC_INIT_AWAY0, 2, 6), IN(2, 2, 6)}},
    {"wrms rtol 0.5 atol 0.1 (11), |yb| > |ya|", f_wrms_yb_big, &W2, 3, {IN(1, 11), INI(1, GC_INIT_AWAY0, 11), IN(1, 11)}},
    {"wrms rtol 0.5 atol 0.1 (11), |ya| > |yb|", f_wrms_ya_big, &W2, 3, {IN(1, 11), INI(1, GC_INIT_AWAY0, 11), IN(1, 11)}},
    {"wrms plain RMS (rtol 0, atol 1)", f_wrms, &W0, 3, {IN(1, 8), IN(1, 8), IN(1, 8)}},
    {"wrms atol 0 (pure relative)", f_wrms, &WA, 3, {IN(1, 5), INI(1, GC_INIT_POS, 5), INI(1, GC_INIT_POS, 5)}},
    {"wrms ya == yb", f_wrms_same, &W2, 2, {IN(1, 7), INI(1, GC_INIT_AWAY0, 7)}},
    {"wrms e == ya == yb", f_wrms_self, &W2, 1, {INI(2, GC_INIT_AWAY0, 3, 3)}},
    {"wrms of a lincomb, times a scalar", f_wrms_chain, &W2, 3, {INI(1, GC_INIT_AWAY0, 6), INI(1, GC_INIT_AWAY0, 6), IN(1, 1)}},
    {"wrms, yb without grad", f_wrms, &W2, 3, {IN(1, 6), INI(1, GC_INIT_AWAY0, 6), {.rank = 1, .shape = {6}, .init = GC_INIT_AWAY0, .no_grad = 1}}},
};

static const gc_case adj_rows[] = {
    {"lincomb m=3 adjoint", f_lincomb, &M3, 3, {IN(2, 3, 4), IN(2, 3, 4), IN(2, 3, 4)}},
};

/* Forward values against naive loops written here. */
static void test_forward(void) {
  opl_ctx *c = opl_ctx_new(0);
  uint64_t s = 99;
  const int n = 40000; /* above the parallel threshold */
  opl_tensor *x[3], *e, *ya, *yb;
  for (int j = 0; j < 3; j++) {
    x[j] = opl_new(c, OPL_DIMS(n));
    for (int i = 0; i < n; i++) x[j]->data[i] = (opl_real)(2 * gc_uniform(&s) - 1);
  }
  opl_tensor *y = opl_lincomb(c, 3, LC_A, x);
  double maxd = 0;
  for (int i = 0; i < n; i++) {
    opl_real want = (opl_real)LC_A[0] * x[0]->data[i];
    want += (opl_real)LC_A[1] * x[1]->data[i];
    want += (opl_real)LC_A[2] * x[2]->data[i];
    maxd = fmax(maxd, fabs((double)y->data[i] - (double)want));
  }
  ok(y && maxd == 0, "lincomb (40000 elements, threaded) equals y = a0 x0; y += aj xj bit for bit");
  e = x[0], ya = x[1], yb = x[2];
  for (int nn = 7; nn <= n; nn += n - 7) {
    double sum = 0;
    for (int i = 0; i < nn; i++) {
      double w = 1e-4 + 1e-2 * fmax(fabs((double)ya->data[i]), fabs((double)yb->data[i]));
      double r = e->data[i] / w;
      sum += r * r;
    }
    double want = sqrt(sum / nn);
    double got = opl_wrms_value(nn, e->data, ya->data, yb->data, 1e-2, 1e-4);
    is_close(got, want, 1e-12, 0, "wrms_value n = %d equals the naive formula", nn);
  }
  opl_tensor *v = opl_wrms(c, e, ya, yb, 1e-2, 1e-4);
  ok(v && v->numel == 1 &&
         v->data[0] == (opl_real)opl_wrms_value(n, e->data, ya->data, yb->data, 1e-2, 1e-4),
     "opl_wrms's value is opl_wrms_value's");
  /* Non-finite values anywhere give a non-finite norm, even where the weight would hide them. */
  const char *where[3] = {"e", "ya", "yb"};
  opl_tensor *t3[3] = {e, ya, yb};
  for (int k = 0; k < 3; k++) {
    opl_real keep = t3[k]->data[123];
    t3[k]->data[123] = (opl_real)(k == 1 ? INFINITY : NAN);
    double r = opl_wrms_value(n, e->data, ya->data, yb->data, 1e-2, 1e-4);
    ok(!isfinite(r), "wrms_value is non-finite with %s in %s", k == 1 ? "Inf" : "NaN", where[k]);
    t3[k]->data[123] = keep;
  }
  /* Zero vector: value 0, gradient 0 (no NaN). */
  opl_tensor *z = opl_zeros(c, OPL_DIMS(4));
  opl_set_requires_grad(z);
  opl_tensor *vz = opl_wrms(c, z, z, z, 0, 1);
  int st = opl_backward(c, vz);
  ok(st == OPL_OK && vz->data[0] == 0 && z->grad && z->grad[0] == 0 && z->grad[3] == 0,
     "wrms of a zero vector is 0 with gradient 0");
  opl_ctx_free(&c);
}

static void test_bad_input(void) {
  opl_ctx *c = opl_ctx_new(0);
  opl_tensor *a = opl_zeros(c, OPL_DIMS(2, 3)), *b = opl_zeros(c, OPL_DIMS(3, 2));
  opl_tensor *xs[2] = {a, b};
  ok(!opl_lincomb(c, 2, LC_A, xs) && opl_ctx_status(c) == OPL_ERR_SHAPE &&
         strstr(opl_ctx_errmsg(c), "x[1] (3, 2) differs from x[0] (2, 3)"),
     "lincomb of different shapes: %s", opl_ctx_errmsg(c));
  opl_ctx_clear_error(c);
  opl_tensor *x9[9] = {a, a, a, a, a, a, a, a, a};
  ok(!opl_lincomb(c, 9, LC_A, x9) && opl_ctx_status(c) == OPL_ERR_ARG && strstr(opl_ctx_errmsg(c), "m = 9"),
     "lincomb of 9 terms: %s", opl_ctx_errmsg(c));
  opl_ctx_clear_error(c);
  xs[1] = a;
  ok(!opl_lincomb(c, 2, (const double[]){1, NAN}, xs) && opl_ctx_status(c) == OPL_ERR_ARG &&
         strstr(opl_ctx_errmsg(c), "a[1]"),
     "lincomb with a NaN coefficient: %s", opl_ctx_errmsg(c));
  opl_ctx_clear_error(c);
  ok(!opl_wrms(c, a, a, b, 1, 1) && opl_ctx_status(c) == OPL_ERR_SHAPE && strstr(opl_ctx_errmsg(c), "yb (3, 2)"),
     "wrms of different shapes: %s", opl_ctx_errmsg(c));
  opl_ctx_clear_error(c);
  ok(!opl_wrms(c, a, a, a, 0, 0) && opl_ctx_status(c) == OPL_ERR_ARG && strstr(opl_ctx_errmsg(c), "not both 0"),
     "wrms with rtol = atol = 0: %s", opl_ctx_errmsg(c));
  opl_ctx_free(&c);
}

/* Ops recorded after a mark leave nothing once rewound: the tape, the arena and the gradient
 * are those of the graph without them. */
static void test_tape_mark(void) {
  opl_ctx *c = opl_ctx_new(0);
  opl_tensor *x = opl_full(c, OPL_DIMS(3), 2.0);
  opl_set_requires_grad(x);
  opl_tensor *y = opl_square(c, x);
  opl_ctx_stats s0, s1, s2;
  opl_ctx_get_stats(c, &s0);
  opl_tape_mark_t m = opl_tape_mark(c);
  opl_tensor *junk = opl_exp(c, opl_scale(c, y, 3));
  opl_ctx_get_stats(c, &s1);
  opl_tape_rewind(c, m);
  opl_ctx_get_stats(c, &s2);
  ok(junk && s1.tape_nodes == s0.tape_nodes + 2 && s2.tape_nodes == s0.tape_nodes &&
         s2.arena_used == s0.arena_used,
     "tape rewind drops %lld nodes and %zu arena bytes", (long long)(s1.tape_nodes - s0.tape_nodes),
     s1.arena_used - s0.arena_used);
  opl_tensor *l = opl_sum(c, y);
  ok(opl_backward(c, l) == OPL_OK && x->grad[0] == 4 && x->grad[2] == 4,
     "backward after a rewind sees only the kept graph (d sum x^2 = 2x = 4)");
  opl_ctx_free(&c);
}

/* A vector cut into parts (one per process): the norm from the parts' opl_wrms_sums is the
 * whole's, and the parts' opl_wrms_reduced gradients, side by side, are the whole's opl_wrms
 * gradient (a sum over ranks gives the whole vector's gradient). */
static void test_reduced(void) {
  opl_ctx *c = opl_ctx_new(0);
  uint64_t s = 7;
  const int n = 23, cut = 9;
  opl_tensor *e = opl_new(c, OPL_DIMS(n)), *ya = opl_new(c, OPL_DIMS(n)), *yb = opl_new(c, OPL_DIMS(n));
  for (int i = 0; i < n; i++) {
    e->data[i] = (opl_real)(2 * gc_uniform(&s) - 1);
    ya->data[i] = (opl_real)(4 * gc_uniform(&s) - 2);
    yb->data[i] = (opl_real)(4 * gc_uniform(&s) - 2);
  }
  opl_set_requires_grad(e), opl_set_requires_grad(ya), opl_set_requires_grad(yb);
  opl_tensor *v = opl_wrms(c, e, ya, yb, 0.3, 0.1);
  double sa[2], sb[2];
  opl_wrms_sums(cut, e->data, ya->data, yb->data, 0.3, 0.1, sa);
  opl_wrms_sums(n - cut, e->data + cut, ya->data + cut, yb->data + cut, 0.3, 0.1, sb);
  const double whole = sqrt((sa[0] + sb[0]) / n) + sa[1] + sb[1];
  is_close(whole, opl_wrms_value(n, e->data, ya->data, yb->data, 0.3, 0.1), 1e-14, 0,
           "wrms_sums of two parts give the whole vector's norm");
  ok(opl_backward(c, v) == OPL_OK, "backward of the whole");
  double want[3][23];
  opl_tensor *in[3] = {e, ya, yb};
  for (int k = 0; k < 3; k++)
    for (int i = 0; i < n; i++) want[k][i] = in[k]->grad[i];
  opl_tensor *part[2][3];
  opl_ctx *cp[2] = {opl_ctx_new(0), opl_ctx_new(0)};
  for (int p = 0; p < 2; p++)
    for (int k = 0; k < 3; k++) {
      part[p][k] = opl_new(cp[p], OPL_DIMS(p ? n - cut : cut));
      memcpy(part[p][k]->data, in[k]->data + (p ? cut : 0), sizeof(opl_real) * (size_t)part[p][k]->numel);
    }
  double maxd = 0, vals[2];
  for (int p = 0; p < 2; p++) {
    for (int k = 0; k < 3; k++) opl_set_requires_grad(part[p][k]);
    opl_tensor *vp = opl_wrms_reduced(cp[p], part[p][0], part[p][1], part[p][2], 0.3, 0.1, whole, n);
    vals[p] = vp ? vp->data[0] : NAN;
    if (!vp || opl_backward(cp[p], vp)) maxd = INFINITY;
    for (int k = 0; k < 3 && isfinite(maxd); k++)
      for (int i = 0; i < part[p][k]->numel; i++)
        maxd = fmax(maxd, fabs((double)part[p][k]->grad[i] - want[k][p ? cut + i : i]));
  }
  ok(vals[0] == (opl_real)whole && vals[1] == (opl_real)whole, "wrms_reduced's value is the whole's on each part");
  ok(maxd <= 1e-6 * (1 + fabs(want[0][0])), "the parts' wrms_reduced gradients are the whole's (max difference %.3g)",
     maxd);
  ok(!opl_wrms_reduced(cp[0], part[0][0], part[0][1], part[0][2], 0.3, 0.1, whole, cut - 1) &&
         opl_ctx_status(cp[0]) == OPL_ERR_ARG && strstr(opl_ctx_errmsg(cp[0]), "fewer than the part's 9"),
     "wrms_reduced of a whole smaller than the part: %s", opl_ctx_errmsg(cp[0]));
  opl_ctx_free(&cp[0]);
  opl_ctx_free(&cp[1]);
  opl_ctx_free(&c);
}

int main(void) {
  tap_begin();
  test_reduced();
  gc_run_table(rows, (int)(sizeof rows / sizeof rows[0]));
  gc_run_adjoint_table(adj_rows, 1);
  test_forward();
  test_bad_input();
  test_tape_mark();
  return tap_end();
}
