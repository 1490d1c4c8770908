/* opl tests — finite-difference gradient checker and adjoint checker (see gradcheck.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tests/gradcheck.h"
#include "tests/tap.h"

double gc_uniform(uint64_t *s) {
  /* splitmix64 */
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

static void fill(opl_tensor *t, int init, uint64_t *s) {
  int64_t n = opl_nreal(t);
  for (int64_t i = 0; i < n; i++) {
    double u = gc_uniform(s);
    double v;
    switch (init) {
      case GC_INIT_POS: v = 0.5 + 1.5 * u; break;
      case GC_INIT_AWAY0: v = (0.1 + 0.9 * u) * (gc_uniform(s) < 0.5 ? -1 : 1); break;
      default: v = 2 * u - 1;
    }
    t->data[i] = (opl_real)v;
  }
}

typedef struct gc_state {
  opl_tensor *in[OPL_MAX_INPUTS];
  opl_ctx *c;
  int ok;
} gc_state;

static int setup(const gc_case *gc, gc_state *st, uint64_t *s) {
  memset(st, 0, sizeof *st);
  st->c = opl_ctx_new((size_t)4 << 20);
  for (int i = 0; i < gc->nin; i++) {
    opl_err err;
    int flags = (gc->in[i].cplx ? OPL_T_COMPLEX : 0) | (gc->in[i].no_grad ? 0 : OPL_T_REQGRAD);
    st->in[i] = opl_tensor_alloc(gc->in[i].rank, gc->in[i].shape, flags, &err);
    if (!st->in[i]) {
      ok(0, "%s: cannot allocate input %d: %s", gc->name, i, err.msg);
      return 0;
    }
    fill(st->in[i], gc->in[i].init, s);
  }
  return 1;
}

static void teardown(const gc_case *gc, gc_state *st) {
  for (int i = 0; i < gc->nin; i++) opl_tensor_free(&st->in[i]);
  opl_ctx_free(&st->c);
}

/* sum(r * f(x)) in double with recording disabled; NAN on error. */
static double eval_dot(const gc_case *gc, gc_state *st, const double *r, int64_t nr) {
  opl_ctx_reset(st->c);
  int old = opl_ctx_set_grad_enabled(st->c, 0);
  opl_tensor *y = gc->fn(st->c, st->in, gc->opt);
  opl_ctx_set_grad_enabled(st->c, old);
  if (!y || opl_nreal(y) != nr) return NAN;
  double s = 0;
  for (int64_t i = 0; i < nr; i++) s += r[i] * (double)y->data[i];
  return s;
}

/* The release check of one row, run after its gradient check: the op again, on arena copies of
 * its inputs (scale by 1), then every copy and the output released (opl_release gives back those
 * no recorded backward reads, as the op declared with opl_record_saves), then backward with the
 * same seed. A backward reading a value its op declared unread finds NULL (a crash) instead of
 * the value; the input gradients must equal g1 [nin][nreal], the gradient check's (both start
 * from the constant pre). Returns 1 if they do. */
static int release_check(const gc_case *gc, gc_state *st, const opl_real *seedv, int64_t nr,
                         opl_real *const *g1, double pre) {
  opl_ctx_reset(st->c);
  for (int i = 0; i < gc->nin; i++)
    if (st->in[i]->grad)
      for (int64_t j = 0; j < opl_nreal(st->in[i]); j++) st->in[i]->grad[j] = (opl_real)pre;
  opl_tensor *cp[OPL_MAX_INPUTS] = {0};
  for (int i = 0; i < gc->nin; i++) cp[i] = opl_scale(st->c, st->in[i], 1.0);
  opl_tensor *y = gc->fn(st->c, cp, gc->opt);
  if (!y || opl_nreal(y) != nr) {
    ok(0, "release %s: op failed: %s", gc->name, opl_ctx_errmsg(st->c));
    return 0;
  }
  int released = 0;
  for (int i = 0; i < gc->nin; i++) {
    opl_release(st->c, cp[i]);
    released += cp[i]->data == NULL;
  }
  opl_release(st->c, y);
  released += y->data == NULL;
  if (opl_backward_seed(st->c, y, seedv) != OPL_OK) {
    ok(0, "release %s: backward failed: %s", gc->name, opl_ctx_errmsg(st->c));
    return 0;
  }
#ifdef OPL_DOUBLE
  const double tol = 1e-12;
#else
  const double tol = 1e-5;
#endif
  double worst = 0;
  for (int i = 0; i < gc->nin; i++) {
    const opl_tensor *x = st->in[i];
    if (!x->grad) continue;
    double scale = 1;
    for (int64_t j = 0; j < opl_nreal(x); j++) scale = fmax(scale, fabs((double)g1[i][j]));
    for (int64_t j = 0; j < opl_nreal(x); j++) {
      double e = fabs((double)x->grad[j] - (double)g1[i][j]) / scale;
      if (!(e <= worst)) worst = e;
    }
  }
  int pass = worst <= tol;
  ok(pass, "release %s (%d of %d tensors released, max rel diff %.1e)", gc->name, released, gc->nin + 1,
     worst);
  return pass;
}

int gc_check(const gc_case *gc, unsigned seed) {
  uint64_t s = 0x1234567ull + 7919ull * seed;
  gc_state st;
  if (!setup(gc, &st, &s)) { teardown(gc, &st); return 0; }
  const double pre = 0.25;
  for (int i = 0; i < gc->nin; i++)
    if (st.in[i]->grad)
      for (int64_t j = 0; j < opl_nreal(st.in[i]); j++) st.in[i]->grad[j] = (opl_real)pre;
  opl_tensor *y = gc->fn(st.c, st.in, gc->opt);
  if (!y) {
    ok(0, "grad %s: op failed: %s", gc->name, opl_ctx_errmsg(st.c));
    teardown(gc, &st);
    return 0;
  }
  int64_t nr = opl_nreal(y);
  double *r = malloc((size_t)nr * sizeof *r);
  opl_real *seedv = malloc((size_t)nr * sizeof *seedv);
  for (int64_t i = 0; i < nr; i++) r[i] = 2 * gc_uniform(&s) - 1, seedv[i] = (opl_real)r[i];
  if (opl_backward_seed(st.c, y, seedv) != OPL_OK) {
    ok(0, "grad %s: backward failed: %s", gc->name, opl_ctx_errmsg(st.c));
    free(r), free(seedv), teardown(gc, &st);
    return 0;
  }
#ifdef OPL_DOUBLE
  const double h0 = 1e-6, rtol_default = 1e-6;
#else
  const double h0 = 1e-2, rtol_default = 2e-2;
#endif
  double rtol = gc->rtol > 0 ? gc->rtol : rtol_default;
  int max_probe = gc->max_probe > 0 ? gc->max_probe : 40;
  double worst = 0, scale = 0;
  int nprobe = 0, bad_in = -1;
  int64_t bad_j = -1;
  double bad_num = 0, bad_ana = 0;
  int nfd = 0;
  double *num = NULL, *ana = NULL;
  int64_t *idx = NULL;
  int *which = NULL;
  int cap = gc->nin * max_probe;
  num = malloc(cap * sizeof *num), ana = malloc(cap * sizeof *ana);
  idx = malloc(cap * sizeof *idx), which = malloc(cap * sizeof *which);
  for (int i = 0; i < gc->nin; i++) {
    opl_tensor *x = st.in[i];
    if (!x->grad) continue;
    int64_t n = opl_nreal(x);
    int np = n < max_probe ? (int)n : max_probe;
    for (int p = 0; p < np; p++) {
      int64_t j = n <= max_probe ? p : (int64_t)(gc_uniform(&s) * n) % n;
      opl_real x0 = x->data[j];
      double h = h0 * (fabs((double)x0) > 1 ? fabs((double)x0) : 1);
      x->data[j] = (opl_real)(x0 + h);
      double hp = (double)x->data[j] - x0;
      double fp = eval_dot(gc, &st, r, nr);
      x->data[j] = (opl_real)(x0 - h);
      double hm = x0 - (double)x->data[j];
      double fm = eval_dot(gc, &st, r, nr);
      x->data[j] = x0;
      num[nfd] = (fp - fm) / (hp + hm);
      ana[nfd] = (double)x->grad[j] - pre;
      idx[nfd] = j, which[nfd] = i;
      if (fabs(num[nfd]) > scale) scale = fabs(num[nfd]);
      nfd++;
      nprobe++;
    }
  }
  for (int k = 0; k < nfd; k++) {
    double den = fmax(fmax(fabs(num[k]), fabs(ana[k])), 1e-2 * scale);
    if (den == 0) den = 1;
    double e = fabs(num[k] - ana[k]) / den;
    if (!isfinite(num[k]) || !isfinite(ana[k])) e = INFINITY;
    if (e > worst || (bad_in < 0 && !(e <= rtol))) {
      worst = e;
      bad_in = which[k], bad_j = idx[k], bad_num = num[k], bad_ana = ana[k];
    }
  }
  int pass = nprobe > 0 && worst <= rtol;
  ok(pass, "grad %s (%d probes, max rel err %.2e)", gc->name, nprobe, worst);
  if (!pass && nprobe > 0)
    diag("  worst: input %d index %lld: numeric %.10g analytic %.10g", bad_in, (long long)bad_j,
         bad_num, bad_ana);
  if (nprobe == 0) diag("  no input requires a gradient");
  /* the release check against these gradients (the probes restored every input value) */
  opl_real *g1[OPL_MAX_INPUTS] = {0};
  for (int i = 0; i < gc->nin; i++)
    if (st.in[i]->grad) {
      size_t bytes = (size_t)opl_nreal(st.in[i]) * sizeof(opl_real);
      g1[i] = malloc(bytes);
      memcpy(g1[i], st.in[i]->grad, bytes);
    }
  pass &= release_check(gc, &st, seedv, nr, g1, pre);
  for (int i = 0; i < gc->nin; i++) free(g1[i]);
  free(num), free(ana), free(idx), free(which), free(r), free(seedv);
  teardown(gc, &st);
  return pass;
}

int gc_check_adjoint(const gc_case *gc, unsigned seed) {
  uint64_t s = 0xABCDEFull + 104729ull * seed;
  gc_state st;
  if (!setup(gc, &st, &s)) { teardown(gc, &st); return 0; }
  opl_tensor *y = gc->fn(st.c, st.in, gc->opt);
  if (!y) {
    ok(0, "adjoint %s: op failed: %s", gc->name, opl_ctx_errmsg(st.c));
    teardown(gc, &st);
    return 0;
  }
  int64_t nr = opl_nreal(y);
  opl_real *r = malloc((size_t)nr * sizeof *r);
  double lhs = 0, rhs = 0, mag = 0;
  for (int64_t i = 0; i < nr; i++) {
    r[i] = (opl_real)(2 * gc_uniform(&s) - 1);
    lhs += (double)r[i] * y->data[i];
    mag += fabs((double)r[i] * y->data[i]);
  }
  int rc = opl_backward_seed(st.c, y, r);
  for (int i = 0; i < gc->nin && rc == OPL_OK; i++) {
    opl_tensor *x = st.in[i];
    if (!x->grad) continue;
    for (int64_t j = 0; j < opl_nreal(x); j++) rhs += (double)x->grad[j] * x->data[j];
  }
#ifdef OPL_DOUBLE
  double tol = 1e-12;
#else
  double tol = 1e-5;
#endif
  int pass = rc == OPL_OK && fabs(lhs - rhs) <= tol * (mag > 1 ? mag : 1);
  ok(pass, "adjoint %s: <r, Ax> = %.12g, <A^T r, x> = %.12g", gc->name, lhs, rhs);
  if (rc != OPL_OK) diag("  backward failed: %s", opl_ctx_errmsg(st.c));
  free(r);
  teardown(gc, &st);
  return pass;
}

int gc_run_table(const gc_case *rows, int n) {
  int failed = 0;
  for (int i = 0; i < n; i++) failed += !gc_check(&rows[i], (unsigned)i);
  return failed;
}

int gc_run_adjoint_table(const gc_case *rows, int n) {
  int failed = 0;
  for (int i = 0; i < n; i++) failed += !gc_check_adjoint(&rows[i], (unsigned)i);
  return failed;
}
