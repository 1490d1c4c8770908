/* Teams of contexts (core/par.h): the slices cover the items once and in order, each on its own
 * thread with opl's ops on that thread alone; one slice runs on the caller's thread with the usual
 * count; a borrowed first context outlives its team; the first failing slice's status and message come back; a convolution batch cut into
 * slices gives the same bits as the whole batch; bad arguments. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include "core/jet.h"
#include "core/ops.h"
#include "core/par.h"
#include "core/rng.h"
#include "tests/tap.h"

typedef struct cover {
  int64_t n;
  int hits[64], thread[64], inner[64], slices;
  int64_t b0[8], b1[8];
} cover;

static int f_cover(void *arg, opl_ctx *c, int64_t b0, int64_t b1, opl_err *err) {
  cover *cv = arg;
  (void)c, (void)err;
  for (int64_t i = b0; i < b1; i++) {
#pragma omp atomic
    cv->hits[i]++;
    cv->thread[i] = omp_get_thread_num();
    cv->inner[i] = opl_get_num_threads();
  }
  int s;
#pragma omp atomic capture
  s = cv->slices++;
  (void)s;
  return OPL_OK;
}

/* Slice b0 fails when its first item is in the failing set (arg: a bit mask of items). */
static int f_fail(void *arg, opl_ctx *c, int64_t b0, int64_t b1, opl_err *err) {
  (void)c, (void)b1;
  const unsigned mask = *(const unsigned *)arg;
  if (mask >> b0 & 1u) return opl_err_set(err, OPL_ERR_ARG, "slice from item %lld failed", (long long)b0);
  return OPL_OK;
}

/* y = conv(x) over the items [b0, b1) of a batch, in the slice's own context. */
typedef struct conv_job {
  const opl_tensor *x, *w, *b;
  opl_real *y;
  int64_t per_in, per_out;
} conv_job;

static int f_conv(void *arg, opl_ctx *c, int64_t b0, int64_t b1, opl_err *err) {
  const conv_job *j = arg;
  opl_ctx_reset(c);
  opl_tensor *x = opl_new(c, OPL_DIMS(b1 - b0, j->x->shape[1], j->x->shape[2], j->x->shape[3]));
  if (x) memcpy(x->data, j->x->data + b0 * j->per_in, sizeof(opl_real) * (size_t)x->numel);
  const opl_conv_opts o = {.stride = {1, 1}, .padding = {1, 1}};
  opl_tensor *y = x ? opl_conv(c, x, (opl_tensor *)j->w, (opl_tensor *)j->b, &o) : NULL;
  if (!y) return opl_err_set(err, opl_ctx_status(c), "%s", opl_ctx_errmsg(c));
  memcpy(j->y + b0 * j->per_out, y->data, sizeof(opl_real) * (size_t)y->numel);
  return OPL_OK;
}

/* A jet MLP (core/op_jet.c: per-thread scratch in its tiles) forward and backward in each slice,
 * slice i on its own copy i of the weights; arg: the copies and the reference values and
 * gradients computed outside. */
typedef struct jet_job {
  opl_tensor *x, *w[3][2], *b[3][2]; /* copy 2: the reference */
  int same[2];
} jet_job;

static int jet_run(opl_ctx *c, jet_job *j, int i) {
  opl_ctx_reset(c);
  opl_tensor_zero_grad(j->w[i][0]), opl_tensor_zero_grad(j->w[i][1]), opl_tensor_zero_grad(j->b[i][0]);
  opl_tensor *u = opl_jet_mlp(c, j->x, 1, j->w[i], j->b[i], (opl_jet_spec){2, 1});
  return u && !opl_backward(c, opl_sum(c, u)) ? OPL_OK : OPL_ERR_STATE;
}

static int jet_same(const opl_tensor *a, const opl_tensor *b) {
  return !memcmp(a->grad, b->grad, sizeof(opl_real) * (size_t)a->numel);
}

static int f_jet(void *arg, opl_ctx *c, int64_t b0, int64_t b1, opl_err *err) {
  jet_job *j = arg;
  (void)b1;
  const int i = (int)b0;
  if (jet_run(c, j, i)) return opl_err_set(err, opl_ctx_status(c), "%s", opl_ctx_errmsg(c));
  j->same[i] = jet_same(j->w[i][0], j->w[2][0]) && jet_same(j->w[i][1], j->w[2][1]) && jet_same(j->b[i][0], j->b[2][0]);
  return OPL_OK;
}

int main(void) {
  tap_begin();
  opl_set_num_threads(2);

  /* coverage, order and threads, for team sizes 1 to 3 and several item counts */
  const int64_t ns[] = {0, 1, 2, 3, 5, 16};
  for (int size = 1; size <= 3; size++) {
    opl_team *t = opl_team_new(size);
    ok(t && opl_team_size(t) == size, "team of %d: created with %d contexts", size, opl_team_size(t));
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
      cover cv;
      memset(&cv, 0, sizeof cv);
      cv.n = ns[k];
      opl_err e = {0};
      int st = opl_team_run(t, ns[k], f_cover, &cv, &e);
      const int slices = ns[k] < size ? (int)ns[k] : size;
      int once = 1, threads_ok = 1, inner_ok = 1;
      for (int64_t i = 0; i < ns[k]; i++) {
        once &= cv.hits[i] == 1;
        /* item i is in slice s with n s / k <= i < n (s + 1) / k: thread s */
        int s = 0;
        while (!(ns[k] * s / slices <= i && i < ns[k] * (s + 1) / slices)) s++;
        if (slices > 1) threads_ok &= cv.thread[i] == s, inner_ok &= cv.inner[i] == 1;
        else threads_ok &= cv.thread[i] == 0, inner_ok &= cv.inner[i] == 2;
      }
      ok(st == OPL_OK && once && cv.slices == slices, "team of %d, %lld items: %d slices cover every item once",
         size, (long long)ns[k], slices);
      ok(threads_ok && inner_ok, "team of %d, %lld items: slice s on thread s, ops on %s", size, (long long)ns[k],
         slices > 1 ? "one thread each" : "the caller's usual threads");
    }
    opl_team_free(&t);
    ok(t == NULL, "team of %d: freed and the pointer cleared", size);
  }
  ok(opl_get_num_threads() == 2, "the caller's thread count is unchanged after the runs");

  /* a team on a borrowed first context: slice 0 runs in it, the team leaves it to its owner */
  {
    opl_ctx *mine = opl_ctx_new(0);
    opl_team *t = opl_team_new_from(mine, 2);
    ok(t && opl_team_size(t) == 2 && opl_team_ctx(t, 0) == mine && opl_team_ctx(t, 1) != mine,
       "opl_team_new_from: context 0 is the caller's, context 1 the team's");
    opl_team_free(&t);
    opl_tensor *z = opl_zeros(mine, OPL_DIMS(3));
    ok(z && z->numel == 3 && opl_ctx_status(mine) == OPL_OK, "the borrowed context outlives its team");
    opl_ctx_free(&mine);
    t = opl_team_new_from(NULL, 2);
    ok(t && opl_team_size(t) == 2 && opl_team_ctx(t, 0) != NULL, "opl_team_new_from(NULL): a team of its own");
    opl_team_free(&t);
  }

  /* an op whose tiles index per-thread scratch, small enough for its serial branch, on the
   * second thread of a team (thread number 1, the op's own thread count 1): the gradients of the
   * whole computation outside (a tile indexing the scratch by the team's thread number writes
   * its bias sums into the next scratch, the tiles' weight gradients) */
  {
    opl_err e = {0};
    jet_job j;
    memset(&j, 0, sizeof j);
    j.x = opl_tensor_alloc(OPL_DIMS(4, 5, 3), 0, &e);
    opl_rng r;
    opl_rng_seed(&r, 3);
    for (int64_t q = 0; q < j.x->numel; q++) j.x->data[q] = (opl_real)(0.5 * opl_rng_normal(&r));
    for (int i = 0; i < 3; i++) {
      j.w[i][0] = opl_tensor_alloc(OPL_DIMS(6, 3), OPL_T_REQGRAD, &e);
      j.w[i][1] = opl_tensor_alloc(OPL_DIMS(1, 6), OPL_T_REQGRAD, &e);
      j.b[i][0] = opl_tensor_alloc(OPL_DIMS(6), OPL_T_REQGRAD, &e), j.b[i][1] = NULL;
      opl_rng_seed(&r, 4);
      opl_tensor *p[] = {j.w[i][0], j.w[i][1], j.b[i][0]};
      for (int k = 0; k < 3; k++)
        for (int64_t q = 0; q < p[k]->numel; q++) p[k]->data[q] = (opl_real)(0.5 * opl_rng_normal(&r));
    }
    opl_ctx *c = opl_ctx_new(0);
    opl_team *t = opl_team_new(2);
    int st = jet_run(c, &j, 2) ? OPL_ERR_STATE : opl_team_run(t, 2, f_jet, &j, &e);
    ok(st == OPL_OK && j.same[0] && j.same[1],
       "a jet MLP forward and backward in both slices of a team: the weight and bias gradients computed outside (%s)",
       st ? e.msg : "ok");
    opl_team_free(&t);
    opl_ctx_free(&c);
    opl_tensor_free(&j.x);
    for (int i = 0; i < 3; i++) opl_tensor_free(&j.w[i][0]), opl_tensor_free(&j.w[i][1]), opl_tensor_free(&j.b[i][0]);
  }

  /* errors: the first failing slice in slice order */
  {
    opl_team *t = opl_team_new(3);
    opl_err e = {0};
    unsigned mask = 1u << 3; /* 9 items in 3 slices: [0, 3) [3, 6) [6, 9) */
    int st = opl_team_run(t, 9, f_fail, &mask, &e);
    ok(st == OPL_ERR_ARG && strstr(e.msg, "item 3"), "a failing slice's status and message: %d '%s'", st, e.msg);
    mask = 1u << 3 | 1u << 6 | 1u << 0;
    memset(&e, 0, sizeof e);
    st = opl_team_run(t, 9, f_fail, &mask, &e);
    ok(st == OPL_ERR_ARG && strstr(e.msg, "item 0"), "three failing slices: the first one's message '%s'", e.msg);
    mask = 0;
    ok(opl_team_run(t, 9, f_fail, &mask, &e) == OPL_OK, "no failing slice: OPL_OK");
    /* bad arguments */
    ok(opl_team_run(NULL, 4, f_fail, &mask, &e) == OPL_ERR_ARG && strstr(e.msg, "team"), "NULL team: '%s'", e.msg);
    ok(opl_team_run(t, 4, NULL, &mask, &e) == OPL_ERR_ARG, "NULL function: OPL_ERR_ARG");
    ok(opl_team_run(t, -1, f_fail, &mask, &e) == OPL_ERR_ARG && strstr(e.msg, "-1"), "-1 items: '%s'", e.msg);
    ok(opl_team_size(NULL) == 0, "size of no team: 0");
    opl_team_free(&t);
    opl_team_free(&t);
    opl_team_free(NULL);
    ok(1, "freeing twice and freeing NULL are harmless");
  }

  /* a Winograd convolution batch (F(4x4) at 16 x 16, F(2x2) at 6 x 6) and an im2col one (3 x 3
   * stride 1 at 3 x 3 is im2col) cut into slices: the whole batch's values on 2 threads, up to
   * the rounding of other GEMM shapes */
  const int64_t sz[] = {16, 6, 3};
  for (int k = 0; k < 3; k++) {
    opl_err e = {0};
    const int64_t N = 7, C = 5, K = 6, S = sz[k];
    opl_tensor *x = opl_tensor_alloc(OPL_DIMS(N, C, S, S), 0, &e), *w = opl_tensor_alloc(OPL_DIMS(K, C, 3, 3), 0, &e),
               *b = opl_tensor_alloc(OPL_DIMS(K), 0, &e);
    opl_rng r;
    opl_rng_seed(&r, 7 + (uint64_t)k);
    for (int64_t i = 0; i < x->numel; i++) x->data[i] = (opl_real)opl_rng_normal(&r);
    for (int64_t i = 0; i < w->numel; i++) w->data[i] = (opl_real)(0.2 * opl_rng_normal(&r));
    for (int64_t i = 0; i < b->numel; i++) b->data[i] = (opl_real)opl_rng_normal(&r);
    opl_real *yw = malloc(sizeof(opl_real) * (size_t)(N * K * S * S)), *ys = malloc(sizeof *ys * (size_t)(N * K * S * S));
    conv_job j = {x, w, b, yw, C * S * S, K * S * S};
    opl_team *one = opl_team_new(1), *t = opl_team_new(2), *t3 = opl_team_new(3);
    int st = opl_team_run(one, N, f_conv, &j, &e);
    j.y = ys;
    st |= opl_team_run(t, N, f_conv, &j, &e);
    double md = 0, sc = 0;
    for (int64_t i = 0; i < N * K * S * S; i++) md = fmax(md, fabs((double)ys[i] - yw[i])), sc = fmax(sc, fabs((double)yw[i]));
    st |= opl_team_run(t3, N, f_conv, &j, &e);
    for (int64_t i = 0; i < N * K * S * S; i++) md = fmax(md, fabs((double)ys[i] - yw[i]));
    ok(st == OPL_OK && md <= 1e-6 * sc && sc > 0,
       "conv %lldx%lld, batch 7 in slices of teams of 2 and 3: the whole batch's values (max diff %.2g of %.2g)",
       (long long)S, (long long)S, md, sc);
    opl_team_free(&one);
    opl_team_free(&t);
    opl_team_free(&t3);
    free(yw);
    free(ys);
    opl_tensor_free(&x);
    opl_tensor_free(&w);
    opl_tensor_free(&b);
  }
  return tap_end();
}
