/* The physics losses of train/pino.h: values on fields whose residual and initial error are
 * known in closed form (the per-sample means summed over the batch, the weights), the gradient
 * reaching the prediction, and the refusals (weights, tasks, times, provenance). */
#include <math.h>
#include <string.h>
#include "tests/tap.h"
#include "core/ops.h"
#include "train/pino.h"

static const opl_kv burgers_attrs[] = {OPL_KVS("equation", "burgers"), OPL_KVD("L", 1), OPL_KVD("nu", 0.01)};

/* A description of a 1-D data set of nt frames at t = (j + 1) dt. */
static opl_ds_info info_of(double *t, int64_t nt, double dt, const opl_kv *attrs, int nattrs) {
  for (int64_t j = 0; j < nt; j++) t[j] = (double)(j + 1) * dt;
  opl_ds_info in;
  memset(&in, 0, sizeof in);
  in.path = "set.h5";
  in.dims = (opl_ds_dims){.n = 4, .t = nt, .sdim = 1, .x = 16, .y = 1};
  in.t = t;
  in.attrs = attrs;
  in.nattrs = nattrs;
  return in;
}

static void test_values(void) {
  double times[8];
  opl_ds_info in = info_of(times, 8, 0.1, burgers_attrs, 3);
  opl_task task = {.kind = OPL_TASK_SPACETIME, .t_in = 0, .t_out = 4};
  opl_pino *p = NULL;
  opl_err e = {0};
  const double W = 3, V = 5;
  ok(!opl_pino_new(&task, W, V, &in, &p, &e) && p, "space-time task from a: physics losses made (%s)", e.msg);
  ok(opl_pino_resid(p) && opl_resid_params_of(opl_pino_resid(p))->dt == 0.1, "dt from the frame times: 0.1");
  /* pred (B = 2, T = 5, X = 16): sample b is c_b (1 + s_b t) at every point, constant in x, so
   * f(u) = 0 and R = c_b s_b exactly (the time rule is exact on linear functions); a_b = c_b + d_b. */
  const int B = 2, T = 5, X = 16;
  const double c[2] = {0.5, -1.2}, sl[2] = {2.0, -0.7}, d[2] = {0.1, 0.3};
  opl_ctx *cx = opl_ctx_new(0);
  opl_tensor *pred = opl_tensor_alloc(OPL_DIMS(B, T, X), OPL_T_REQGRAD, NULL);
  opl_tensor *x = opl_tensor_alloc(OPL_DIMS(B, 1, X), 0, NULL);
  opl_tensor *base = opl_tensor_alloc(OPL_DIMS(1), OPL_T_REQGRAD, NULL);
  for (int b = 0; b < B; b++) {
    for (int j = 0; j < T; j++)
      for (int i = 0; i < X; i++) pred->data[(b * T + j) * X + i] = (opl_real)(c[b] * (1 + sl[b] * 0.1 * j));
    for (int i = 0; i < X; i++) x->data[b * X + i] = (opl_real)(c[b] + d[b]);
  }
  base->data[0] = (opl_real)0.25;
  double pde = 0, ic = 0;
  opl_tensor *tot = opl_pino_loss(cx, p, base, pred, x, &pde, &ic);
  double want_pde = 0, want_ic = 0;
  for (int b = 0; b < B; b++) want_pde += (c[b] * sl[b]) * (c[b] * sl[b]), want_ic += d[b] * d[b];
  ok(tot && !opl_ctx_status(cx), "loss built (%s)", opl_ctx_errmsg(cx));
  is_close(pde, want_pde, 1e-5, 0, "PDE term: the per-sample mean square residual summed over the batch");
  is_close(ic, want_ic, 1e-5, 0, "IC term: the per-sample mean square of u(t = 0) - a summed over the batch");
  is_close(tot ? (double)tot->data[0] : NAN, 0.25 + W * want_pde + V * want_ic, 1e-5, 0, "total = data + W pde + V ic");
  /* d total / d pred: the IC part at frame 0 is 2 V (u - a) / X per point; the PDE part is the
   * residual's transpose; check the sum over points of frame 0 of sample 0 against the closed form
   * 2 W / (T X) sum_j R (D_t)_{j0} + 2 V (-d_0) with R = c s, (D_t)_{j0} = -3/(2dt) (j = 0), -1/(2dt)
   * (j = 1), 0 otherwise (the rows j = 2 .. T - 2 do not use frame 0; row T - 1 uses T - 3 = 2). */
  int good = tot && !opl_backward(cx, tot);
  double g0 = 0;
  for (int i = 0; good && i < X; i++) g0 += (double)pred->grad[i];
  double R0 = c[0] * sl[0], want_g0 = 2 * W / (T * X) * R0 * (-3.0 - 1.0) / (2 * 0.1) * X + 2 * V * (-d[0]);
  is_close(g0, want_g0, 1e-4, 0, "gradient of the total at frame 0 of sample 0 (summed over x)");
  ok(base->grad && base->grad[0] == 1, "the data loss passes through with weight 1");
  opl_tensor_free(&pred);
  opl_tensor_free(&x);
  opl_tensor_free(&base);
  opl_ctx_free(&cx);
  opl_pino_free(&p);
  /* Both weights 0: nothing to add. */
  ok(!opl_pino_new(&task, 0, 0, &in, &p, &e) && !p, "W = V = 0: no physics losses");
  opl_ctx *c2 = opl_ctx_new(0);
  opl_tensor *l = opl_full(c2, OPL_DIMS(1), 1.5);
  double pv = 0;
  ok(opl_pino_loss(c2, NULL, l, l, l, &pv, NULL) == l && isnan(pv), "opl_pino_loss without terms returns the loss");
  opl_ctx_free(&c2);
}

static void test_refusals(void) {
  double times[8];
  opl_ds_info in = info_of(times, 8, 0.1, burgers_attrs, 3);
  opl_task st = {.kind = OPL_TASK_SPACETIME, .t_in = 0, .t_out = 4};
  opl_pino *p = NULL;
  opl_err e = {0};
  ok(opl_pino_new(&st, -1, 0, &in, &p, &e) == OPL_ERR_ARG && strstr(e.msg, "pde_weight = -1"), "W < 0 refused (%s)",
     e.msg);
  ok(opl_pino_new(&st, NAN, 0, &in, &p, &e) == OPL_ERR_ARG && strstr(e.msg, "pde_weight = nan"), "W = NaN refused (%s)",
     e.msg);
  ok(opl_pino_new(&st, 1, INFINITY, &in, &p, &e) == OPL_ERR_ARG && strstr(e.msg, "ic_weight"), "V = inf refused (%s)",
     e.msg);
  opl_task stat = {.kind = OPL_TASK_STATIC, .target_frame = -1};
  ok(opl_pino_new(&stat, 1, 0, &in, &p, &e) == OPL_ERR_ARG && strstr(e.msg, "space-time") && strstr(e.msg, "static"),
     "the static task refused (%s)", e.msg);
  opl_task from1 = {.kind = OPL_TASK_SPACETIME, .t_in = 1, .t_out = 4};
  ok(opl_pino_new(&from1, 0, 1, &in, &p, &e) == OPL_ERR_ARG && strstr(e.msg, "t = 0"),
     "the IC loss without the frame t = 0 refused (%s)", e.msg);
  e.msg[0] = 0;
  ok(!opl_pino_new(&from1, 1, 0, &in, &p, &e) && p && fabs(opl_resid_params_of(opl_pino_resid(p))->dt - 0.1) < 1e-12,
     "the PDE loss on frames after T_in = 1 (%s)", e.msg);
  opl_pino_free(&p);
  opl_task two = {.kind = OPL_TASK_SPACETIME, .t_in = 1, .t_out = 2};
  ok(opl_pino_new(&two, 1, 0, &in, &p, &e) == OPL_ERR_ARG && strstr(e.msg, ">= 3"), "2 predicted frames refused (%s)",
     e.msg);
  times[3] += 0.01; /* t[3] is the last frame of st */
  ok(opl_pino_new(&st, 1, 0, &in, &p, &e) == OPL_ERR_ARG && strstr(e.msg, "uniformly"), "non-uniform times refused (%s)",
     e.msg);
  opl_task early = {.kind = OPL_TASK_SPACETIME, .t_in = 0, .t_out = 3}; /* t = 0, t[0 .. 2] */
  ok(!opl_pino_new(&early, 1, 0, &in, &p, &e) && p, "frames before the irregular one are accepted");
  opl_pino_free(&p);
  in.t = NULL;
  ok(opl_pino_new(&st, 1, 0, &in, &p, &e) == OPL_ERR_ARG && strstr(e.msg, "set.h5"), "no frame times refused (%s)",
     e.msg);
  double Ls[4] = {1, 1.1, 0.9, 1};
  opl_ds_info ps = info_of(times, 8, 0.1, burgers_attrs, 3);
  ps.L = Ls;
  ok(opl_pino_new(&st, 1, 0, &ps, &p, &e) == OPL_ERR_ARG && strstr(e.msg, "per-sample"),
     "per-sample domain lengths refused (%s)", e.msg);
  opl_ds_info bare = info_of(times, 8, 0.1, NULL, 0);
  ok(opl_pino_new(&st, 1, 0, &bare, &p, &e) == OPL_ERR_ARG && strstr(e.msg, "'equation'") && strstr(e.msg, "set.h5"),
     "a data set without provenance refused (%s)", e.msg);
  ok(!opl_pino_new(&st, 0, 1, &bare, &p, &e) && p, "the IC loss alone needs no provenance");
  opl_pino_free(&p);
}

int main(void) {
  tap_begin();
  test_values();
  test_refusals();
  return tap_end();
}
