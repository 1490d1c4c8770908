/* The neural ODE as a model (operators/node_model.h) and the trajectory task (train/task.h):
 * the registry row, parameters renamed under "vf.", forward through the output times against
 * exact solutions (du/dt = -k u with a linear MLP field; du/dt = t through the time channel),
 * configuration attributes round trip and save / load, the lambda schedule, bad configurations,
 * the task's windows (deterministic, in range), target slices and regularized objective. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "operators/mlp.h"
#include "operators/model.h"
#include "operators/node_model.h"
#include "train/task.h"
#include "tests/tap.h"
#include "tests/tmpdir.h"

static char dir[64];
#define X 8

/* A node with a one-layer (linear) MLP field on states (N, 1, X). */
static int make_linear(opl_model *m, int time_channel, double rtol, opl_err *e) {
  opl_mlp_config mc = {.nlayers = 1, .act = OPL_TANH};
  opl_node_config nc;
  if (opl_node_config_init(&nc, &opl_mlp_kind, &mc, e)) return 1;
  nc.state_size = X;
  nc.time_channel = time_channel;
  nc.rtol = rtol;
  nc.atol = rtol * 1e-3;
  if (opl_node_kind.set_io(&nc, 1, 1, 1, e)) return 1;
  opl_rng r;
  opl_rng_seed(&r, 1);
  return opl_model_create(m, &opl_node_kind, &nc, &r, e) != OPL_OK;
}

static void test_registry_and_params(void) {
  ok(opl_model_kind_find("node") == &opl_node_kind, "registry: 'node' is a kind");
  opl_model m;
  opl_err e = {0};
  int st = make_linear(&m, 0, 1e-6, &e);
  ok(!st && m.params.n == 2 && !strcmp(m.params.t[0]->name, "vf.mlp.0.weight") &&
         !strcmp(m.params.t[1]->name, "vf.mlp.0.bias") && opl_model_param_count(&m) == X * X + X &&
         m.sdim == 1 && m.in_channels == 1 && m.out_channels == 1,
     "the field's parameters are the node's, named vf.<name> (%s)", st ? e.msg : "");
  if (!st) opl_model_free(&m);
}

/* du/dt = -k u: W = -k I, b = 0 -> u(t) = u0 exp(-k (t - t0)). */
static void test_forward_exact(void) {
  opl_model m;
  opl_err e = {0};
  double rtol = sizeof(opl_real) == 8 ? 1e-9 : 1e-6;
  if (make_linear(&m, 0, rtol, &e)) {
    ok(0, "linear node: %s", e.msg);
    return;
  }
  const double k = 1.5, t0 = 0.25, ts[3] = {0.5, 1.0, 2.0};
  opl_tensor *w = m.params.t[0], *b = m.params.t[1];
  memset(w->data, 0, sizeof(opl_real) * (size_t)w->numel);
  memset(b->data, 0, sizeof(opl_real) * (size_t)b->numel);
  for (int i = 0; i < X; i++) w->data[i * X + i] = (opl_real)-k;
  ok(opl_node_model_set_times(&m, t0, 3, ts, &e) == OPL_OK, "set_times t0 0.25, ts 0.5, 1, 2");
  opl_ctx *c = opl_ctx_new(0);
  opl_tensor *x = opl_new(c, OPL_DIMS(2, 1, X));
  for (int i = 0; i < 2 * X; i++) x->data[i] = (opl_real)(0.1 * (i + 1));
  opl_tensor *y = opl_model_forward(c, &m, x);
  double worst = 0;
  int shape_ok = y && y->rank == 3 && y->shape[0] == 2 && y->shape[1] == 3 && y->shape[2] == X;
  for (int n = 0; shape_ok && n < 2; n++)
    for (int f = 0; f < 3; f++)
      for (int i = 0; i < X; i++) {
        double u0 = 0.1 * (n * X + i + 1), want = u0 * exp(-k * (ts[f] - t0));
        double got = y->data[(n * 3 + f) * X + i], d = fabs(got - want) / fabs(want);
        if (d > worst) worst = d;
      }
  ok(shape_ok && worst < 200 * rtol, "forward (2, 1, 8) -> (2, 3, 8) = u0 exp(-k (t - t0)): worst relative error %.2e",
     worst);
  opl_nde_stats s;
  memset(&s, 0, sizeof s);
  int sst = opl_node_model_stats(&m, &s, &e);
  ok(!sst && s.nfev > 0 && s.accepted >= 3, "solver statistics: %lld evaluations, %lld steps",
     (long long)s.nfev, (long long)s.accepted);
  ok(opl_node_model_set_times(&m, 1.0, 1, (const double[]){0.5}, &e) == OPL_ERR_ARG &&
         opl_node_model_set_times(&m, 0.0, 2, (const double[]){0.5, 0.5}, &e) == OPL_ERR_ARG,
     "set_times refuses an output before t0 and a repeated time");
  opl_ctx_free(&c);
  opl_model_free(&m);
}

/* The time channel: W = [0 | 1] (the last input column is t), b = 0 -> du/dt = t. */
static void test_time_channel(void) {
  opl_model m;
  opl_err e = {0};
  if (make_linear(&m, 1, 1e-6, &e)) {
    ok(0, "node with time channel: %s", e.msg);
    return;
  }
  opl_tensor *w = m.params.t[0], *b = m.params.t[1];
  ok(w->shape[0] == X && w->shape[1] == X + 1, "the MLP field takes X + 1 inputs with the time channel");
  memset(w->data, 0, sizeof(opl_real) * (size_t)w->numel);
  memset(b->data, 0, sizeof(opl_real) * (size_t)b->numel);
  for (int i = 0; i < X; i++) w->data[i * (X + 1) + X] = 1;
  const double t0 = 1.0, ts[2] = {2.0, 3.0};
  opl_node_model_set_times(&m, t0, 2, ts, &e);
  opl_ctx *c = opl_ctx_new(0);
  opl_tensor *x = opl_zeros(c, OPL_DIMS(1, 1, X));
  opl_tensor *y = opl_model_forward(c, &m, x);
  double worst = 0;
  for (int f = 0; y && f < 2; f++)
    for (int i = 0; i < X; i++) {
      double want = (ts[f] * ts[f] - t0 * t0) / 2, d = fabs(y->data[f * X + i] - want);
      if (d > worst) worst = d;
    }
  ok(y && worst < 1e-4, "du/dt = t from u(1) = 0: u(2) = 1.5, u(3) = 4 (worst error %.2e)", worst);
  opl_ctx_free(&c);
  opl_model_free(&m);
}

static void test_meta_and_files(void) {
  opl_model m, m2;
  opl_err e = {0};
  if (make_linear(&m, 1, 1e-4, &e)) {
    ok(0, "node: %s", e.msg);
    return;
  }
  opl_kv kv[OPL_MODEL_META_MAX];
  int n = m.ops->to_meta(m.self, kv);
  opl_model_spec s;
  int st = opl_model_spec_from_meta(kv, n, &s, &e);
  const opl_node_config *a = opl_node_model_config(&m), *b = (const opl_node_config *)s.config.bytes;
  ok(!st && s.kind == &opl_node_kind && !strcmp(b->vf_kind, "mlp") && b->time_channel == 1 && b->rtol == a->rtol &&
         b->state_size == X && opl_kv_find(kv, n, "vf.mlp.layers") && opl_kv_find(kv, n, "node.method"),
     "to_meta -> spec_from_meta: the node's settings and the field's attributes under 'vf.' (%s)", st ? e.msg : "");
  char path[160];
  snprintf(path, sizeof path, "%s/node.h5", dir);
  for (int i = 0; i < m.params.t[0]->numel; i++) m.params.t[0]->data[i] = (opl_real)(0.01 * (i % 7) - 0.03);
  st = opl_model_save(path, &m, NULL, 0, &e) || opl_model_load(path, &m2, &e);
  int same = !st && m2.params.n == m.params.n;
  for (int i = 0; same && i < m.params.n; i++)
    same = !strcmp(m.params.t[i]->name, m2.params.t[i]->name) &&
           !memcmp(m.params.t[i]->data, m2.params.t[i]->data, sizeof(opl_real) * (size_t)m.params.t[i]->numel);
  opl_ctx *c = opl_ctx_new(0);
  opl_tensor *x = opl_full(c, OPL_DIMS(1, 1, X), 0.5);
  opl_tensor *y1 = same ? opl_model_forward(c, &m, x) : NULL, *y2 = same ? opl_model_forward(c, &m2, x) : NULL;
  ok(same && y1 && y2 && !memcmp(y1->data, y2->data, sizeof(opl_real) * (size_t)y1->numel),
     "save / load through the registry: same parameters, same forward bits (%s)", st ? e.msg : "");
  opl_ctx_free(&c);
  if (!st) opl_model_free(&m2);
  opl_model_free(&m);
}

static void test_bad_and_lambda(void) {
  opl_mlp_config mc = {.nlayers = 1, .act = OPL_TANH};
  opl_node_config nc;
  opl_err e = {0};
  opl_node_config_init(&nc, &opl_mlp_kind, &mc, &e);
  nc.state_size = X;
  opl_node_kind.set_io(&nc, 1, 1, 1, &e);
  opl_model m;
  opl_node_config bad = nc;
  bad.rtol = 0;
  ok(opl_model_create(&m, &opl_node_kind, &bad, NULL, &e) == OPL_ERR_ARG && strstr(e.msg, "rtol"), "rtol 0 refused: %s", e.msg);
  bad = nc;
  bad.lambda0 = 0, bad.lambda1 = 1;
  ok(opl_model_create(&m, &opl_node_kind, &bad, NULL, &e) == OPL_ERR_ARG && strstr(e.msg, "lambda"),
     "lambda 0 -> 1 refused (no exponential decay from 0): %s", e.msg);
  bad = nc;
  snprintf(bad.vf_kind, sizeof bad.vf_kind, "node");
  ok(opl_model_create(&m, &opl_node_kind, &bad, NULL, &e) == OPL_ERR_ARG, "a node as its own vector field refused: %s", e.msg);
  bad = nc;
  bad.reg = OPL_NODE_REG_ERROR, bad.lambda0 = bad.lambda1 = 1, bad.adjoint = OPL_NODE_ADJ_INTERP;
  ok(opl_model_create(&m, &opl_node_kind, &bad, NULL, &e) == OPL_ERR_ARG && strstr(e.msg, "continuous adjoint"),
     "a global regularizer with a continuous adjoint refused: %s", e.msg);
  bad.reg_mode = OPL_NODE_REG_LOCAL_BIASED;
  int cst = opl_model_create(&m, &opl_node_kind, &bad, NULL, &e);
  ok(cst == OPL_OK, "a local regularizer with the interpolating adjoint accepted");
  if (!cst) opl_model_free(&m);
  ok(opl_node_kind.set_io(&nc, 1, 1, 2, &e) == OPL_ERR_ARG, "set_io with Cin != Cout refused: %s", e.msg);
  nc.lambda0 = 0.1, nc.lambda1 = 0.001;
  ok(fabs(opl_node_model_lambda(&nc, 1, 5) - 0.1) < 1e-15 && fabs(opl_node_model_lambda(&nc, 5, 5) - 0.001) < 1e-15 &&
         fabs(opl_node_model_lambda(&nc, 3, 5) - 0.01) < 1e-15,
     "lambda schedule 0.1 -> 0.001 over 5 epochs: 0.1, 0.01 at epoch 3, 0.001");
  nc.lambda1 = nc.lambda0;
  ok(opl_node_model_lambda(&nc, 4, 5) == 0.1, "constant lambda");
}

static void test_task(void) {
  double times[6] = {0.1, 0.2, 0.3, 0.5, 0.8, 1.0};
  opl_ds_info info;
  memset(&info, 0, sizeof info);
  info.dims.t = 6;
  info.t = times;
  info.path = "mem";
  opl_task task = {.kind = OPL_TASK_TRAJECTORY, .t_in = 1, .t_out = 2};
  opl_err e = {0};
  ok(opl_task_set_data(&task, &info, &e) == OPL_OK && task.nframes == 6 && task.times == times &&
         opl_task_continuous(&task) && !opl_task_normalizable(&task),
     "trajectory task: the data set's times; no normalization");
  opl_ds_sel in, out;
  ok(!opl_task_selections(&task, &in, &out, &e) && in.t0 == 0 && in.nt == 6 && out.t0 == 1 && out.nt == 5,
     "loader selections: every frame in, frames 1.. as target");
  int seen[4] = {0}, inrange = 1, same = 1;
  for (int k = 0; k < 64; k++) {
    opl_task_window(&task, 7, 3, k);
    int64_t s1 = task.start;
    opl_task_window(&task, 7, 3, k);
    same &= task.start == s1;
    if (s1 < 0 || s1 > 3) inrange = 0;
    else seen[s1] = 1;
  }
  ok(same && inrange && seen[0] && seen[1] && seen[2] && seen[3],
     "windows of 3 of 6 snapshots: starts in 0..3, all drawn, a function of (seed, epoch, batch)");
  opl_ctx *c = opl_ctx_new(0);
  opl_tensor *y = opl_new(c, OPL_DIMS(2, 5, 3));
  for (int i = 0; i < 30; i++) y->data[i] = (opl_real)i;
  task.start = 2;
  opl_tensor *yt = opl_task_target(c, &task, y);
  ok(yt && yt->shape[1] == 2 && yt->data[0] == 6 && yt->data[3] == 9 && yt->data[6] == 21,
     "target of the window starting at snapshot 2: frames 3, 4 of u = rows 2, 3 of y");
  opl_task bad = task;
  info.t = (double[]){0.1, 0.1, 0.3, 0.5, 0.8, 1.0};
  ok(opl_task_set_data(&bad, &info, &e) == OPL_ERR_ARG, "times that do not increase refused: %s", e.msg);
  opl_ctx_free(&c);

  /* The regularized objective: loss + lambda R_E of the solve just made. */
  opl_mlp_config mc = {.nlayers = 2, .widths = {0, 16, 0}, .act = OPL_TANH};
  opl_node_config nc;
  opl_node_config_init(&nc, &opl_mlp_kind, &mc, &e);
  nc.state_size = X;
  nc.reg = OPL_NODE_REG_ERROR;
  nc.lambda0 = nc.lambda1 = 0.5;
  opl_node_kind.set_io(&nc, 1, 1, 1, &e);
  opl_model m;
  opl_rng r;
  opl_rng_seed(&r, 3);
  if (opl_model_create(&m, &opl_node_kind, &nc, &r, &e)) {
    ok(0, "regularized node: %s", e.msg);
    return;
  }
  info.t = times;
  opl_task_set_data(&task, &info, &e);
  task.start = 1;
  c = opl_ctx_new(0);
  opl_tensor *x = opl_new(c, OPL_DIMS(2, 6, X));
  for (int i = 0; i < x->numel; i++) x->data[i] = (opl_real)sin(0.3 * i);
  opl_tensor *p = opl_task_predict(c, &m, &task, NULL, NULL, x);
  opl_tensor *loss = opl_full(c, OPL_DIMS(1), 1.0);
  opl_tensor *tot = opl_task_regularize(c, &m, &task, loss, 1, 10, 5, NULL);
  ok(p && p->shape[1] == 2 && tot && tot->data[0] > 1 && isfinite(tot->data[0]),
     "predict a window of 3 -> (2, 2, 8); loss + 0.5 R_E = 1 + %.3g > loss", tot ? (double)tot->data[0] - 1 : NAN);
  opl_ctx_free(&c);
  opl_model_free(&m);
}

/* Per-sample times (opl_node_model_set_times_batch): du/dt = -k u with two samples starting at
 * different times and wanted at different times, against u0 exp(-k (t - t0_b)) per row; the
 * gradient of sum(u) w.r.t. u0 against d/du0 = sum_j exp(-k (t_bj - t0_b)); and du/dt = t through
 * the time channel, which needs each row's ABSOLUTE time: u_b(t) = (t^2 - t0_b^2) / 2. */
static void test_per_sample_times(void) {
  opl_model m;
  opl_err e = {0};
  double rtol = sizeof(opl_real) == 8 ? 1e-9 : 1e-6;
  if (make_linear(&m, 0, rtol, &e)) {
    ok(0, "linear node: %s", e.msg);
    return;
  }
  const double k = 1.5, t0[2] = {0.25, 3.0}, ts[2][3] = {{0.5, 1.0, 2.0}, {3.1, 3.7, 4.0}};
  opl_tensor *w = m.params.t[0], *b = m.params.t[1];
  memset(w->data, 0, sizeof(opl_real) * (size_t)w->numel);
  memset(b->data, 0, sizeof(opl_real) * (size_t)b->numel);
  for (int i = 0; i < X; i++) w->data[i * X + i] = (opl_real)-k;
  ok(opl_node_model_set_times_batch(&m, 2, t0, 3, &ts[0][0], &e) == OPL_OK, "per-sample times set (%s)", e.msg);
  opl_ctx *c = opl_ctx_new(0);
  opl_tensor *x = opl_new(c, OPL_DIMS(2, 1, X));
  for (int i = 0; i < 2 * X; i++) x->data[i] = (opl_real)(0.1 * (i + 1));
  opl_set_requires_grad(x);
  opl_tensor *y = opl_model_forward(c, &m, x);
  double worst = 0;
  int shape_ok = y && y->rank == 3 && y->shape[0] == 2 && y->shape[1] == 3 && y->shape[2] == X;
  for (int n = 0; shape_ok && n < 2; n++)
    for (int f = 0; f < 3; f++)
      for (int i = 0; i < X; i++) {
        double u0 = 0.1 * (n * X + i + 1), want = u0 * exp(-k * (ts[n][f] - t0[n]));
        worst = fmax(worst, fabs(y->data[(n * 3 + f) * X + i] - want) / want);
      }
  ok(shape_ok && worst < 200 * rtol, "each row integrated over its own times: worst relative error %.2e", worst);
  opl_tensor *l = y ? opl_sum(c, y) : NULL;
  int bst = l ? opl_backward(c, l) : -1;
  double gw = 0;
  for (int n = 0; !bst && x->grad && n < 2; n++) {
    double want = 0;
    for (int f = 0; f < 3; f++) want += exp(-k * (ts[n][f] - t0[n]));
    for (int i = 0; i < X; i++) gw = fmax(gw, fabs(x->grad[n * X + i] - want) / want);
  }
  ok(!bst && x->grad && gw < 200 * rtol, "gradient w.r.t. u0 per row: worst relative error %.2e", gw);
  opl_tensor *x3 = opl_new(c, OPL_DIMS(3, 1, X));
  opl_ctx_clear_error(c);
  ok(!opl_model_forward(c, &m, x3) && opl_ctx_status(c) == OPL_ERR_SHAPE, "an input of another batch size refused (%s)",
     opl_ctx_errmsg(c));
  ok(opl_node_model_set_times_batch(&m, 2, t0, 3, (const double[]){0.5, 1.0, 2.0, 3.1, 3.0, 4.0}, &e) == OPL_ERR_ARG &&
         strstr(e.msg, "sample 1"),
     "times out of order refused, naming the sample (%s)", e.msg);
  opl_ctx_free(&c);
  opl_model_free(&m);

  if (make_linear(&m, 1, 1e-6, &e)) {
    ok(0, "node with time channel: %s", e.msg);
    return;
  }
  w = m.params.t[0], b = m.params.t[1];
  memset(w->data, 0, sizeof(opl_real) * (size_t)w->numel);
  memset(b->data, 0, sizeof(opl_real) * (size_t)b->numel);
  for (int i = 0; i < X; i++) w->data[i * (X + 1) + X] = 1;
  const double s0[2] = {1.0, 2.0}, st[2][2] = {{2.0, 3.0}, {2.5, 3.5}};
  opl_node_model_set_times_batch(&m, 2, s0, 2, &st[0][0], &e);
  c = opl_ctx_new(0);
  y = opl_model_forward(c, &m, opl_zeros(c, OPL_DIMS(2, 1, X)));
  worst = y ? 0 : INFINITY;
  for (int n = 0; y && n < 2; n++)
    for (int f = 0; f < 2; f++)
      for (int i = 0; i < X; i++)
        worst = fmax(worst, fabs(y->data[(n * 2 + f) * X + i] - (st[n][f] * st[n][f] - s0[n] * s0[n]) / 2));
  ok(worst < 1e-4, "time channel with per-sample times: du/dt = t from each row's own start (worst error %.2e)", worst);
  opl_ctx_free(&c);
  opl_model_free(&m);
}

/* The trajectory task on per-sample times (a data set with t [N, T]): the batch's rows are
 * integrated over their own windows, looked up by the batch's sample indices. */
static void test_task_per_sample(void) {
  /* 3 samples x 4 frames; sample 2's times are twice sample 0's */
  double tps[12] = {0.1, 0.2, 0.4, 0.8, 0.3, 0.5, 0.6, 0.9, 0.2, 0.4, 0.8, 1.6};
  opl_ds_info info;
  memset(&info, 0, sizeof info);
  info.dims.n = 3;
  info.dims.t = 4;
  info.t_ps = tps;
  info.path = "mem";
  opl_task task = {.kind = OPL_TASK_TRAJECTORY, .t_in = 1, .t_out = 2};
  opl_err e = {0};
  ok(opl_task_set_data(&task, &info, &e) == OPL_OK && task.times_ps == tps && !task.times && task.nframes == 4,
     "trajectory task on per-sample times (%s)", e.msg);
  opl_model m;
  double rtol = sizeof(opl_real) == 8 ? 1e-9 : 1e-6;
  if (make_linear(&m, 0, rtol, &e)) {
    ok(0, "linear node: %s", e.msg);
    return;
  }
  const double k = 0.7;
  opl_tensor *w = m.params.t[0], *b = m.params.t[1];
  memset(w->data, 0, sizeof(opl_real) * (size_t)w->numel);
  memset(b->data, 0, sizeof(opl_real) * (size_t)b->numel);
  for (int i = 0; i < X; i++) w->data[i * X + i] = (opl_real)-k;
  opl_ctx *c = opl_ctx_new(0);
  opl_tensor *x = opl_new(c, OPL_DIMS(2, 4, X));
  for (int i = 0; i < x->numel; i++) x->data[i] = (opl_real)(1 + 0.01 * i);
  task.start = 1;
  opl_tensor *p = opl_task_predict(c, &m, &task, NULL, NULL, x);
  ok(!p && opl_ctx_status(c) == OPL_ERR_ARG && strstr(opl_ctx_errmsg(c), "sample indices"),
     "without the batch's sample indices: refused (%s)", opl_ctx_errmsg(c));
  opl_ctx_clear_error(c);
  const int64_t samples[2] = {2, 0};
  opl_task_set_batch(&task, samples, 2);
  p = opl_task_predict(c, &m, &task, NULL, NULL, x);
  double worst = p ? 0 : INFINITY;
  for (int r = 0; p && r < 2; r++)
    for (int f = 0; f < 2; f++)
      for (int i = 0; i < X; i++) {
        const double *row = tps + samples[r] * 4;
        double u0 = x->data[(r * 4 + 1) * X + i], want = u0 * exp(-k * (row[2 + f] - row[1]));
        worst = fmax(worst, fabs(p->data[(r * 2 + f) * X + i] - want) / want);
      }
  ok(p && p->shape[0] == 2 && p->shape[1] == 2 && worst < 200 * rtol,
     "window 1..3 of samples 2 and 0, each over its own times: worst relative error %.2e", worst);
  /* opl_task_infer integrates the whole trajectory from frame 0 of each sample */
  opl_real out[2 * 3 * X];
  int ist = opl_task_infer(c, &m, &task, NULL, NULL, 3, (const int64_t[]){2, 4, X}, x->data, out, NULL, &e);
  worst = ist ? INFINITY : 0;
  for (int r = 0; !ist && r < 2; r++)
    for (int f = 0; f < 3; f++)
      for (int i = 0; i < X; i++) {
        const double *row = tps + samples[r] * 4;
        double u0 = 1 + 0.01 * ((r * 4) * X + i), want = u0 * exp(-k * (row[1 + f] - row[0]));
        worst = fmax(worst, fabs(out[(r * 3 + f) * X + i] - want) / want);
      }
  ok(!ist && worst < 200 * rtol, "task_infer over each sample's whole stored time: worst relative error %.2e (%s)", worst,
     ist ? e.msg : "");
  opl_ctx_free(&c);
  opl_model_free(&m);
}

int main(void) {
  tap_begin();
  if (!test_tmpdir_make(dir, "node_model")) return tap_end();
  test_registry_and_params();
  test_forward_exact();
  test_time_channel();
  test_meta_and_files();
  test_bad_and_lambda();
  test_task();
  test_per_sample_times();
  test_task_per_sample();
  test_tmpdir_remove(dir);
  return tap_end();
}
