/* Context, arena, tape and parameter sets: lifetimes, accumulation, statistics, errors. */
#include <float.h>
#include <math.h>
#include <string.h>
#include "tests/gradcheck.h"
#include "tests/tap.h"

static void test_status_table(void) {
  ok(strcmp(opl_status_name(OPL_ERR_SHAPE), "ERR_SHAPE") == 0, "status name from the table");
  ok(strcmp(opl_status_desc(OPL_OK), "ok") == 0, "status description");
  ok(strcmp(opl_status_name(12345), "UNKNOWN") == 0, "unknown status code");
  opl_err e;
  ok(opl_err_set(&e, OPL_ERR_IO, "file %s", "x.h5") == OPL_ERR_IO && strcmp(e.msg, "file x.h5") == 0,
     "opl_err_set formats the message");
  ok(opl_err_set(NULL, OPL_ERR_IO, "dropped") == OPL_ERR_IO, "opl_err_set accepts NULL");
  /* The reason without the module tag, for callers that name the module themselves. */
  static const struct { const char *msg, *text; } tags[] = {
      {"train: fno: modes 17 exceed", "fno: modes 17 exceed"},
      {"opl_etdrk4: non-finite state", "non-finite state"},
      {"ds2: 'd.h5': cannot write", "'d.h5': cannot write"},
      {"'d.h5': cannot write", "'d.h5': cannot write"},
      {"loss became nan at step 3: stop", "loss became nan at step 3: stop"},
      {"Train: capitalized is no tag", "Train: capitalized is no tag"},
      {"train:no space", "train:no space"},
      {"", ""},
  };
  for (size_t i = 0; i < sizeof tags / sizeof tags[0]; i++) {
    opl_err_set(&e, OPL_ERR_ARG, "%s", tags[i].msg);
    ok(strcmp(opl_err_text(&e), tags[i].text) == 0, "opl_err_text(\"%s\") = \"%s\"", tags[i].msg, opl_err_text(&e));
  }
}

static void test_arena(void) {
  opl_ctx *c = opl_ctx_new(1 << 20);
  opl_ctx_stats s0, s1, s2;
  char *p = opl_arena_alloc(c, 100);
  char *q = opl_arena_alloc(c, 3);
  ok(p && q && ((uintptr_t)p % 64) == 0 && ((uintptr_t)q % 64) == 0, "arena blocks are 64-byte aligned");
  ok(q >= p + 100, "arena blocks do not overlap");
  /* Grow past the first chunk, then reset: the same memory comes back, no new system memory. */
  for (int i = 0; i < 8; i++) ok(opl_arena_alloc(c, 300 << 10) != NULL, "grow %d", i);
  opl_ctx_get_stats(c, &s0);
  ok(s0.arena_capacity >= s0.arena_used && s0.arena_used >= 8 * (300 << 10), "stats: used %zu capacity %zu",
     s0.arena_used, s0.arena_capacity);
  for (int step = 0; step < 3; step++) {
    opl_ctx_reset(c);
    char *r = opl_arena_alloc(c, 100);
    ok(r == p, "after reset %d the arena hands out the same memory", step);
    opl_arena_alloc(c, 3);
    for (int i = 0; i < 8; i++) opl_arena_alloc(c, 300 << 10);
  }
  opl_ctx_get_stats(c, &s1);
  ok(s1.sys_allocs == s0.sys_allocs, "steady state: no system allocation (%lld vs %lld)",
     (long long)s1.sys_allocs, (long long)s0.sys_allocs);
  ok(s1.arena_capacity == s0.arena_capacity, "capacity unchanged over repeated steps");
  opl_ctx_reset(c);
  opl_ctx_get_stats(c, &s2);
  ok(s2.arena_used == 0 && s2.arena_high >= s0.arena_used, "reset clears use, keeps high-water mark");
  /* Mark and rewind: memory after the mark is handed out again, across chunk boundaries. */
  opl_ctx_reset(c);
  opl_arena_alloc(c, 1000);
  opl_arena_mark_t mk = opl_arena_mark(c);
  char *m1 = opl_arena_alloc(c, 64);
  for (int i = 0; i < 6; i++) opl_arena_alloc(c, 300 << 10);
  opl_ctx_stats sm;
  opl_ctx_get_stats(c, &sm);
  opl_arena_rewind(c, mk);
  char *m2 = opl_arena_alloc(c, 64);
  opl_ctx_stats sr;
  opl_ctx_get_stats(c, &sr);
  ok(m1 == m2, "after a rewind the arena hands out the memory after the mark again");
  ok(sr.arena_used < sm.arena_used && sr.arena_used == 1024 + 64, "rewind restores the bytes in use (%zu)",
     sr.arena_used);
  /* A huge request fails cleanly with a sticky error. */
  void *big = opl_arena_alloc(c, (size_t)1 << 62);
  ok(big == NULL && opl_ctx_status(c) == OPL_ERR_NOMEM, "impossible allocation: OPL_ERR_NOMEM: %s",
     opl_ctx_errmsg(c));
  opl_ctx_free(&c);
  ok(c == NULL, "free sets the pointer to NULL");
  opl_ctx_free(&c); /* accepted */
}

static void test_tensors(void) {
  opl_ctx *c = opl_ctx_new(0);
  opl_tensor *t = opl_zeros(c, OPL_DIMS(2, 3, 4));
  ok(t && t->rank == 3 && t->numel == 24 && t->data[23] == 0, "zeros (2,3,4)");
  opl_tensor *f = opl_full(c, OPL_DIMS(5), 2.5);
  ok(f && f->data[4] == (opl_real)2.5, "full");
  opl_tensor *z = opl_new_flags(c, OPL_DIMS(4, 3), OPL_T_COMPLEX);
  ok(z && opl_nreal(z) == 24 && opl_is_complex(z), "complex tensor stores 2 reals per element");
  opl_tensor *v = opl_view(c, t, OPL_DIMS(6, 4));
  ok(v && v->data == t->data && v->shape[0] == 6, "view shares data");
  ok(opl_view(c, t, OPL_DIMS(5, 5)) == NULL && opl_ctx_status(c) == OPL_ERR_SHAPE, "view of a different numel");
  ok(strstr(opl_ctx_errmsg(c), "(2, 3, 4)") && strstr(opl_ctx_errmsg(c), "(5, 5)"), "message names both shapes");
  opl_ctx_clear_error(c);
  ok(opl_new(c, OPL_DIMS(3, 0)) == NULL && opl_ctx_status(c) == OPL_ERR_SHAPE, "zero extent rejected");
  opl_ctx_clear_error(c);
  int64_t six[6] = {1, 1, 1, 1, 1, 1};
  ok(opl_new(c, 6, six) == NULL && opl_ctx_status(c) == OPL_ERR_SHAPE, "rank 6 rejected: %s", opl_ctx_errmsg(c));
  opl_ctx_free(&c);

  opl_err err;
  opl_tensor *h = opl_tensor_alloc(OPL_DIMS(3, 3), OPL_T_REQGRAD, &err);
  ok(h && h->grad && h->data[8] == 0 && h->grad[8] == 0, "heap tensor with zeroed grad");
  opl_tensor_free(&h);
  ok(h == NULL, "heap tensor freed");
  ok(opl_tensor_alloc(OPL_DIMS(-1), 0, &err) == NULL && err.status == OPL_ERR_SHAPE, "heap tensor bad shape: %s", err.msg);
}

/* y = sum((a*b + a)^2): da = 2 s (b + 1), db = 2 s a; checks tape walk, fan-out accumulation,
 * grad-disabled mode and accumulation across two backward passes. */
static void test_tape(void) {
  opl_ctx *c = opl_ctx_new(0);
  opl_err err;
  opl_tensor *a = opl_tensor_alloc(OPL_DIMS(4), OPL_T_REQGRAD, &err);
  opl_tensor *b = opl_tensor_alloc(OPL_DIMS(4), 0, &err);
  for (int i = 0; i < 4; i++) a->data[i] = (opl_real)(0.5 * i - 1), b->data[i] = (opl_real)(1 + 0.25 * i);
  for (int pass = 1; pass <= 2; pass++) {
    opl_ctx_reset(c);
    opl_tensor *s = opl_add(c, opl_mul(c, a, b), a);
    opl_tensor *y = opl_mul(c, s, s);
    /* sum via a seed of ones */
    opl_real ones[4] = {1, 1, 1, 1};
    ok(opl_backward_seed(c, y, ones) == OPL_OK, "backward pass %d", pass);
    double got[4], want[4];
    for (int i = 0; i < 4; i++) {
      double sv = a->data[i] * b->data[i] + a->data[i];
      got[i] = a->grad[i];
      want[i] = pass * 2 * sv * (b->data[i] + 1);
    }
    arrays_close(4, got, want, 1e-6, 1e-6, "gradient after %d pass(es) accumulates", pass);
    ok(b->grad == NULL, "no gradient for an input that does not require one");
  }
  opl_tensor_zero_grad(a);
  ok(a->grad[0] == 0 && a->grad[3] == 0, "zero_grad");
  /* No recording when disabled. */
  opl_ctx_reset(c);
  int old = opl_ctx_set_grad_enabled(c, 0);
  opl_tensor *y = opl_mul(c, a, a);
  opl_ctx_stats st;
  opl_ctx_get_stats(c, &st);
  ok(old == 1 && st.tape_nodes == 0 && !opl_requires_grad(y), "no tape nodes with recording disabled");
  opl_ctx_set_grad_enabled(c, 1);
  /* A loss that does not depend on a parameter. */
  opl_tensor *k = opl_full(c, OPL_DIMS(1), 3);
  ok(opl_backward(c, k) == OPL_ERR_STATE, "backward of a constant is an error: %s", opl_ctx_errmsg(c));
  opl_ctx_clear_error(c);
  opl_tensor *nonscalar = opl_mul(c, a, a);
  ok(opl_backward(c, nonscalar) == OPL_ERR_SHAPE, "backward of a non-scalar loss: %s", opl_ctx_errmsg(c));
  opl_tensor_free(&a);
  opl_tensor_free(&b);
  opl_ctx_free(&c);
}

/* opl_release: a tensor no backward reads goes back to the arena at once and is reused by the
 * next tensor (or gradient) of its size; saved values, views, heap tensors stay; the gradients
 * are those of the same graph without releases; a released tensor passed to an op is an error;
 * a rewind drops the released blocks after its mark; opl_tape_memory counts it all. */
static void test_release(void) {
  opl_ctx *c = opl_ctx_new(0);
  opl_err err;
  opl_tensor *a = opl_tensor_alloc(OPL_DIMS(2, 64), OPL_T_REQGRAD, &err);
  opl_tensor *b = opl_tensor_alloc(OPL_DIMS(2, 64), OPL_T_REQGRAD, &err);
  for (int i = 0; i < 128; i++) a->data[i] = (opl_real)(0.01 * i - 0.5), b->data[i] = (opl_real)(0.5 - 0.02 * i);
  double want_a[128], want_b[128];
  opl_real ones[128];
  for (int i = 0; i < 128; i++) ones[i] = 1;
  for (int rel = 0; rel <= 1; rel++) {
    /* y = gelu(a + b) * (a - b): add's output is read by gelu's backward (kept), gelu's output
     * and the difference by mul's (kept); z = (a + b) + (a - b) again, summed: the sums are read
     * by nothing */
    opl_ctx_reset(c);
    opl_tensor_zero_grad(a);
    opl_tensor_zero_grad(b);
    opl_tensor *s = opl_add(c, a, b), *d = opl_sub(c, a, b), *g = opl_gelu(c, s), *y = opl_mul(c, g, d);
    opl_tensor *s2 = opl_add(c, a, b), *z = opl_add(c, s2, d);
    opl_ctx_stats s0, s1;
    opl_ctx_get_stats(c, &s0);
    if (rel) {
      opl_real *s2d = s2->data;
      opl_release(c, s);
      opl_release(c, g);
      opl_release(c, d);
      ok(s->data && g->data && d->data, "values a backward reads are not released");
      opl_release(c, s2);
      ok(s2->data == NULL && !(s2->flags & OPL_T_SAVED), "a sum no backward reads is released");
      opl_tensor *n1 = opl_new(c, OPL_DIMS(128));
      opl_ctx_get_stats(c, &s1);
      const size_t B = 128 * sizeof(opl_real);
      ok(n1 && n1->data == s2d && s1.arena_used - s0.arena_used < B && s1.reused == B,
         "the next tensor of its size takes its memory (arena +%zu bytes for the struct, %zu reused)",
         s1.arena_used - s0.arena_used, s1.reused);
      opl_tensor *n2 = opl_new(c, OPL_DIMS(128));
      ok(n2 && n2->data != s2d, "the block is handed out once");
      opl_release(c, n1);
      opl_release(c, n1);
      opl_tensor *n3 = opl_new(c, OPL_DIMS(64)), *n4 = opl_new(c, OPL_DIMS(128)), *n5 = opl_new(c, OPL_DIMS(128));
      ok(n3->data != s2d && n4->data == s2d && n5->data != s2d,
         "a block is reused for exactly its size, once, even if released twice");
      ok(opl_add(c, s2, d) == NULL && opl_ctx_status(c) == OPL_ERR_STATE && strstr(opl_ctx_errmsg(c), "released"),
         "a released tensor passed to an op: %s", opl_ctx_errmsg(c));
      opl_ctx_clear_error(c);
      opl_tape_mem rows[8];
      int nk = opl_tape_memory(c, rows, 8);
      ok(nk == 4 && !strcmp(rows[0].op, "add") && rows[0].nodes == 3 && rows[0].out_bytes == 3 * B &&
             rows[0].saved_bytes == B && rows[0].released_bytes == B && !strcmp(rows[1].op, "sub") &&
             rows[1].saved_bytes == B && !strcmp(rows[2].op, "gelu") && !strcmp(rows[3].op, "mul") &&
             rows[3].saved_bytes == 0 && rows[3].released_bytes == 0,
         "tape memory by op kind: add 3 nodes, %zu bytes out, %zu read by backward, %zu released", rows[0].out_bytes,
         rows[0].saved_bytes, rows[0].released_bytes);
      ok(opl_tape_memory(c, rows, 1) == 4 && rows[0].nodes == 3, "tape memory counts the kinds beyond cap");
    }
    opl_real *seed = ones;
    opl_tensor *tot = opl_add(c, y, z);
    opl_release(c, y);
    opl_release(c, z);
    ok(opl_backward_seed(c, tot, seed) == OPL_OK, "backward%s", rel ? " after releases" : "");
    if (!rel) {
      for (int i = 0; i < 128; i++) want_a[i] = a->grad[i], want_b[i] = b->grad[i];
    } else {
      int same = 1;
      for (int i = 0; i < 128; i++) same &= a->grad[i] == (opl_real)want_a[i] && b->grad[i] == (opl_real)want_b[i];
      ok(same, "the gradients equal those without releases, bit for bit");
      ok(y->data == NULL && z->data == NULL, "outputs read by no backward released");
    }
  }
  /* Heap tensors, views and parameters are never released. */
  opl_ctx_reset(c);
  opl_release(c, a);
  ok(a->data != NULL, "a heap tensor is not released");
  opl_tensor *t = opl_new(c, OPL_DIMS(4, 8)), *v = opl_view(c, t, OPL_DIMS(32));
  opl_release(c, t);
  opl_release(c, v);
  ok(t->data && v->data == t->data, "a viewed tensor and its view are not released");
  /* Without a tape nothing is saved: every temporary can go back. */
  int old = opl_ctx_set_grad_enabled(c, 0);
  opl_tensor *e = opl_gelu(c, t);
  opl_release(c, e);
  ok(e->data == NULL, "without a tape an op's output is released");
  opl_ctx_set_grad_enabled(c, old);
  /* A rewind drops released blocks after its mark: the bump pointer hands that memory out again. */
  opl_ctx_reset(c);
  opl_tensor *keep = opl_new(c, OPL_DIMS(256));
  opl_real *keep_d = keep->data;
  opl_arena_mark_t mk = opl_arena_mark(c);
  opl_tensor *late = opl_new(c, OPL_DIMS(256));
  opl_real *late_d = late->data;
  opl_release(c, late);
  opl_release(c, keep);
  opl_arena_rewind(c, mk);
  opl_tensor *r1 = opl_new(c, OPL_DIMS(256)), *r2 = opl_new(c, OPL_DIMS(256));
  ok(r1->data == keep_d && r2->data != late_d && r2->data != r1->data,
     "after a rewind a block released before the mark is reused, one released past it is not handed out "
     "twice");
  opl_tensor_free(&a);
  opl_tensor_free(&b);
  opl_ctx_free(&c);
}

static void test_params(void) {
  opl_params p;
  opl_params_init(&p);
  opl_err err;
  opl_tensor *w = opl_params_add(&p, "w", OPL_DIMS(3, 4), 0, &err);
  opl_tensor *z = opl_params_add(&p, "spec", OPL_DIMS(2, 2), OPL_T_COMPLEX, &err);
  ok(w && z && opl_params_count(&p) == 12 + 8, "count: complex counts 2 per element");
  ok(opl_params_add(&p, "w", OPL_DIMS(1), 0, &err) == NULL && err.status == OPL_ERR_ARG, "duplicate name: %s", err.msg);
  ok(opl_params_find(&p, "spec") == z && opl_params_find(&p, "nope") == NULL, "find by name");
  for (int i = 0; i < 12; i++) w->grad[i] = 3;
  for (int i = 0; i < 8; i++) z->grad[i] = 4;
  double n0 = sqrt(12 * 9.0 + 8 * 16.0);
  is_close(opl_params_grad_norm(&p), n0, 1e-12, 0, "global grad norm");
  double before = opl_params_clip_grad_norm(&p, 1.0);
  is_close(before, n0, 1e-12, 0, "clip returns the norm before clipping");
  is_close(opl_params_grad_norm(&p), 1.0, 1e-5, 0, "clipped to max norm 1");
  ok(opl_params_check_finite_grad(&p, &err) == OPL_OK, "finite gradients pass");
  z->grad[5] = (opl_real)NAN;
  ok(opl_params_check_finite_grad(&p, &err) == OPL_ERR_NONFINITE && strstr(err.msg, "spec"),
     "NaN gradient found and named: %s", err.msg);
  w->data[2] = (opl_real)INFINITY;
  ok(opl_params_check_finite(&p, &err) == OPL_ERR_NONFINITE && strstr(err.msg, "'w'"), "Inf value named: %s", err.msg);
  opl_params_zero_grad(&p);
  ok(z->grad[5] == 0, "zero_grad over the set");
  opl_params_free(&p);
  ok(p.n == 0 && p.t == NULL, "set freed");
}

/* A custom op y = x whose backward writes a NaN: what the fault finding must call a NaN made
 * from finite values. */
static void nan_bw(opl_node *nd) {
  opl_real *g = opl_node_grad(nd, 0);
  if (g) g[0] = (opl_real)NAN;
}
static opl_tensor *nan_op(opl_ctx *c, opl_tensor *x) {
  opl_tensor *y = opl_new(c, x->rank, x->shape);
  memcpy(y->data, x->data, (size_t)x->numel * sizeof(opl_real));
  opl_record(c, "nan_op", nan_bw, y, 1, &x);
  return y;
}

/* Fault finding for non-finite gradients (opl_ctx_set_grad_check): the mechanism of a NaN
 * gradient under a finite loss. x = 40 saturates tanh to exactly 1 (derivative 0); v = 1e-36 y;
 * r = sqrt(v) = 1e-18 has derivative 5e17, and loss = sum(big r) is finite with big = the largest
 * real / 1e10, but big * 5e17 overflows: sqrt's backward makes an Inf, and tanh's backward turns
 * Inf * 0 into the NaN the parameter gets. */
static void test_grad_check(void) {
  opl_ctx *c = opl_ctx_new(0);
  opl_err err;
  opl_tensor *x = opl_tensor_alloc(OPL_DIMS(3), OPL_T_REQGRAD, &err);
  const double big = (sizeof(opl_real) == sizeof(float) ? FLT_MAX : DBL_MAX) / 1e10;
  opl_grad_fault f;
  for (int on = 0; on <= 1; on++) {
    opl_ctx_reset(c);
    opl_tensor_zero_grad(x);
    x->data[0] = 40, x->data[1] = 40, x->data[2] = 41;
    ok(opl_ctx_set_grad_check(c, on) == 0, "check %s: was off", on ? "on" : "off");
    opl_tensor *r = opl_sqrt(c, opl_scale(c, opl_tanh(c, x), 1e-36));
    opl_tensor *loss = opl_sum(c, opl_scale(c, r, big));
    ok(isfinite(loss->data[0]) && loss->data[0] > 0, "check %s: the loss is finite (%g)", on ? "on" : "off",
       (double)loss->data[0]);
    int st = opl_backward(c, loss);
    ok(st == OPL_OK && isnan(x->grad[0]) && isnan(x->grad[2]), "check %s: the gradient is NaN (%g)",
       on ? "on" : "off", (double)x->grad[0]);
    opl_ctx_grad_fault(c, &f);
    if (!on) {
      ok(f.kind == OPL_GRAD_FAULT_NONE && f.node == -1 && !strcmp(f.op, ""), "check off: no fault recorded");
    } else {
      ok(f.kind == OPL_GRAD_FAULT_INF && !strcmp(f.op, "sqrt") && f.node == 2,
         "check on: an Inf from finite values in sqrt's backward, tape node 2 (kind %d, op '%s', node %lld)",
         (int)f.kind, f.op, (long long)f.node);
      ok(fabs(f.grad_out_max / big - 1) < 1e-6 && fabs(f.value_max / 1e-36 - 1) < 1e-5,
         "check on: the gradient entering it (%g) and its inputs' size (%g)", f.grad_out_max, f.value_max);
      opl_ctx_set_grad_check(c, 0);
    }
  }
  /* A finite gradient: no fault, and the finding is reset by each checked backward. */
  opl_ctx_set_grad_check(c, 1);
  opl_ctx_reset(c);
  opl_tensor_zero_grad(x);
  x->data[0] = 0.5;
  ok(opl_backward(c, opl_sum(c, opl_tanh(c, x))) == OPL_OK && isfinite(x->grad[0]), "finite gradient");
  opl_ctx_grad_fault(c, &f);
  ok(f.kind == OPL_GRAD_FAULT_NONE, "finite gradient: no fault (kind %d)", (int)f.kind);
  /* A NaN made from finite values: named by the op. */
  opl_ctx_reset(c);
  opl_tensor_zero_grad(x);
  ok(opl_backward(c, opl_sum(c, opl_scale(c, nan_op(c, opl_tanh(c, x)), 2))) == OPL_OK && isnan(x->grad[0]),
     "a NaN-writing backward");
  opl_ctx_grad_fault(c, &f);
  ok(f.kind == OPL_GRAD_FAULT_NAN && !strcmp(f.op, "nan_op") && f.node == 1 && f.grad_out_max == 2,
     "a NaN from finite values is named (kind %d, op '%s', node %lld, gradient in %g)", (int)f.kind, f.op,
     (long long)f.node, f.grad_out_max);
  /* Non-finite forward values: not called an overflow. */
  opl_ctx_reset(c);
  opl_tensor_zero_grad(x);
  x->data[0] = -1;
  ok(opl_backward(c, opl_sum(c, opl_sqrt(c, opl_tanh(c, x)))) == OPL_OK && !isfinite(x->grad[0]),
     "sqrt of a negative value");
  opl_ctx_grad_fault(c, &f);
  ok(f.kind == OPL_GRAD_FAULT_FORWARD && !strcmp(f.op, "sqrt"), "non-finite forward values (kind %d, op '%s')",
     (int)f.kind, f.op);
  /* A non-finite seed. */
  opl_ctx_reset(c);
  opl_tensor_zero_grad(x);
  x->data[0] = 0.5;
  opl_real seed[3] = {1, (opl_real)INFINITY, 1};
  ok(opl_backward_seed(c, opl_tanh(c, x), seed) == OPL_OK, "backward from an Inf seed");
  opl_ctx_grad_fault(c, &f);
  ok(f.kind == OPL_GRAD_FAULT_SEED, "a non-finite seed (kind %d)", (int)f.kind);
  opl_tensor_free(&x);
  opl_ctx_free(&c);
}

int main(void) {
  tap_begin();
  test_status_table();
  test_arena();
  test_tensors();
  test_tape();
  test_release();
  test_params();
  test_grad_check();
  return tap_end();
}
