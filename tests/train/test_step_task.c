/* The step task (train/task.h, STEP: one-step teacher forcing from a random start, evaluated by
 * a rollout over the whole stored trajectory): its checks, selections and start-time draws, the
 * target it slices, and the inference rollout against the training prediction (the first
 * rolled-out frame is the one-step prediction from start 0; the second is the one-step
 * prediction from a window holding the first prediction), with per-field normalization. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tests/tap.h"
#include "tests/tmpdir.h"
#include "datasets/h5layout.h"
#include "datasets/loader.h"
#include "operators/sinenet.h"
#include "train/task.h"

/* N trajectories of T frames at X x X: frame t of sample n = sin(2 pi (x + 0.1 t n')) cos(2 pi y)
 * + 0.05 t, n' = n + 1. */
static int write_frames(const char *path, int64_t N, int64_t X, int64_t T) {
  opl_ds_dims d = {.n = N, .t = T, .sdim = 2, .x = X, .y = X};
  double *xc = malloc(sizeof(double) * (size_t)X), *tc = malloc(sizeof(double) * (size_t)T);
  double *a = malloc(sizeof(double) * (size_t)(X * X)), *u = malloc(sizeof(double) * (size_t)(T * X * X));
  for (int64_t i = 0; i < X; i++) xc[i] = (double)i / (double)X;
  for (int64_t t = 0; t < T; t++) tc[t] = (double)(t + 1);
  opl_err e;
  opl_ds_writer *w = opl_ds_writer_create(path, &d, OPL_DT_F32, xc, xc, tc, NULL, 0, &e);
  int good = w != NULL;
  for (int64_t n = 0; w && n < N; n++) {
    for (int64_t i = 0; i < X * X; i++) a[i] = sin(2 * M_PI * xc[i / X]) * cos(2 * M_PI * xc[i % X]);
    for (int64_t t = 0; t < T; t++)
      for (int64_t i = 0; i < X * X; i++)
        u[t * X * X + i] =
            sin(2 * M_PI * (xc[i / X] + 0.1 * (double)t * (double)(n + 1))) * cos(2 * M_PI * xc[i % X]) + 0.05 * (double)t;
    if (opl_ds_writer_put(w, n, a, u, OPL_DT_F64, &e)) good = 0;
  }
  if (w && opl_ds_writer_finish(&w, &e)) good = 0;
  if (!good) diag("writer: %s", e.msg);
  free(xc), free(tc), free(a), free(u);
  return good;
}

int main(void) {
  tap_begin();
  char dir[256], path[300];
  test_tmpdir_make(dir, "step_task");
  snprintf(path, sizeof path, "%s/frames.h5", dir);
  const int64_t N = 3, X = 16, T = 6, Tin = 2;
  ok(write_frames(path, N, X, T), "a data set of %lld trajectories, %lld frames of %lld x %lld", (long long)N,
     (long long)T, (long long)X, (long long)X);
  opl_err e = {0};
  opl_ds *ds = opl_ds_open(path, NULL, &e);
  const opl_ds_info *info = ds ? opl_ds_get_info(ds) : NULL;

  /* checks */
  opl_task bad = {.kind = OPL_TASK_STEP, .t_in = 2, .t_out = 2};
  ok(opl_task_check(&bad, &e) == OPL_ERR_ARG && strstr(e.msg, "step task"), "t_out 2 refused: %s", e.msg);
  opl_task deep = {.kind = OPL_TASK_STEP, .t_in = T, .t_out = 1};
  ok(info && opl_task_set_data(&deep, info, &e) == OPL_ERR_ARG && strstr(e.msg, "stores 6"),
     "t_in = the 6 stored frames refused: %s", e.msg);
  ok(!strcmp(opl_task_name(OPL_TASK_STEP), "step") && opl_task_kind_from_name("step") == OPL_TASK_STEP,
     "the kind's name is 'step'");
  /* beside the one-step pairs task: ONESTEP keeps its number, both names list in the refusal */
  opl_task unknown = {.kind = OPL_TASK_COUNT, .t_in = 1, .t_out = 1};
  ok(OPL_TASK_ONESTEP == 4 && OPL_TASK_STEP == 5 && opl_task_kind_from_name("onestep") == OPL_TASK_ONESTEP &&
         opl_task_check(&unknown, &e) == OPL_ERR_ARG && strstr(e.msg, "onestep, step"),
     "onestep = 4 and step = 5 by name and number; unknown kind: %s", e.msg);

  opl_task task = {.kind = OPL_TASK_STEP, .t_in = Tin, .t_out = 1};
  int sd = info ? opl_task_set_data(&task, info, &e) : OPL_ERR_ARG;
  ok(sd == OPL_OK && task.nframes == T, "set_data: %lld frames", (long long)task.nframes);
  opl_ds_sel in, out;
  ok(opl_task_selections(&task, &in, &out, &e) == OPL_OK && in.t0 == 0 && in.nt == T && out.t0 == Tin &&
         out.nt == T - Tin,
     "selections: every frame in, frames %lld.. out", (long long)Tin);
  ok(opl_task_stepwise(&task) && opl_task_windowed(&task) && opl_task_normalizable(&task) &&
         opl_task_norm_kind(&task) == OPL_NORM_GAUSSIAN && opl_task_loss_terms(&task) == 1,
     "stepwise in evaluation, per-field normalization, one loss term");
  int msdim = 0;
  int64_t cin = 0, cout = 0;
  ok(opl_task_model_io(&task, 2, &msdim, &cin, &cout, &e) == OPL_OK && msdim == 2 && cin == Tin && cout == 1,
     "model: %lld frames in, 1 out", (long long)Tin);
  ok(opl_task_model_io(&task, 1, &msdim, &cin, &cout, &e) == OPL_ERR_ARG, "1-D data refused: %s", e.msg);

  /* start times: in [0, T - Tin - 1], every one drawn, a function of (seed, epoch, batch) */
  int seen[16] = {0}, in_range = 1, same = 1;
  for (int64_t ep = 1; ep <= 20; ep++)
    for (int64_t k = 0; k < 5; k++) {
      opl_task_window(&task, 9, ep, k);
      int64_t s = task.start;
      if (s < 0 || s > T - Tin - 1) in_range = 0;
      else seen[s] = 1;
      opl_task_window(&task, 9, ep, k);
      if (task.start != s) same = 0;
    }
  int all = 1;
  for (int64_t s = 0; s < T - Tin; s++) all = all && seen[s];
  ok(in_range && all && same, "100 draws: starts in [0, %lld], each drawn, the same draw twice", (long long)(T - Tin - 1));

  /* the loader's batch, a tiny SineNet, the per-field normalizer of the data */
  opl_loader_opts lo = {.ntrain = N, .ntest = 0, .batch = N, .sub = 1, .in = in, .out = out};
  opl_loader *l = ds ? opl_loader_new(ds, &lo, &e) : NULL;
  const opl_loader_info *li = l ? opl_loader_get_info(l) : NULL;
  int64_t P = X * X;
  opl_real *bx = malloc(sizeof(opl_real) * (size_t)(N * T * P)), *by = malloc(sizeof(opl_real) * (size_t)(N * (T - Tin) * P));
  opl_real *bp = malloc(sizeof(opl_real) * (size_t)(N * (T - Tin) * P)), *bw = malloc(sizeof(opl_real) * (size_t)(N * T * P));
  int64_t bs = 0;
  ok(l && opl_loader_batch(l, OPL_SPLIT_TRAIN, 0, 0, bx, by, &bs, NULL, &e) == OPL_OK && bs == N && li->cin == T &&
         li->cout == T - Tin,
     "loader: x (%lld, %lld, X, Y), y (%lld, %lld, X, Y)", (long long)N, (long long)T, (long long)N, (long long)(T - Tin));
  opl_normalizer *xn = l ? opl_normalizer_fit_loader(l, 0, OPL_NORM_GAUSSIAN, &e) : NULL;
  opl_normalizer *yn = l ? opl_normalizer_fit_loader(l, 1, OPL_NORM_GAUSSIAN, &e) : NULL;
  ok(xn && yn, "per-field normalizers fitted");
  opl_sinenet_config sc = {.waves = 1, .hidden = 2, .mult = 1.5, .in_channels = Tin, .out_channels = 1,
                           .pad = OPL_PAD_CIRCULAR};
  opl_rng rng;
  opl_rng_seed(&rng, 4);
  opl_model m;
  int mc = opl_model_create(&m, &opl_sinenet_kind, &sc, &rng, &e);
  ok(mc == OPL_OK, "tiny SineNet: %s", mc ? e.msg : "created");
  opl_ctx *c = opl_ctx_new(0);

  /* target: frame start + Tin of the trajectory */
  opl_tensor *y = opl_new(c, OPL_DIMS(N, T - Tin, X, X));
  memcpy(y->data, by, sizeof(opl_real) * (size_t)y->numel);
  task.start = 3;
  opl_tensor *yt = opl_task_target(c, &task, y);
  int tgt = yt && yt->shape[1] == 1;
  for (int64_t b = 0; tgt && b < N; b++)
    tgt = !memcmp(yt->data + b * P, bx + (b * T + 3 + Tin) * P, sizeof(opl_real) * (size_t)P);
  ok(tgt, "target of start 3 = stored frame 5 of every sample");

  /* inference rollout vs the training prediction */
  int64_t xs[4] = {N, T, X, X};
  int st = opl_task_infer(c, &m, &task, xn, yn, 4, xs, bx, bp, bw, &e);
  ok(st == OPL_OK, "infer: rollout of %lld steps: %s", (long long)(T - Tin), st ? e.msg : "ok");
  /* the same rollout over teams of 2 and 3 threads (slices of 1 + 2 and 1 + 1 + 1 trajectories):
   * the same values up to rounding (F(2x2) Winograd layers put a slice's samples in other GEMM
   * shapes than the whole batch's, and OpenBLAS's edge kernels round differently); with the model
   * not marked samplewise, the whole batch in the first context: the same bits */
  {
    const int64_t nout = N * (T - Tin) * P;
    opl_real *bt = malloc(sizeof(opl_real) * (size_t)nout), *bwt = malloc(sizeof(opl_real) * (size_t)(N * T * P));
    for (int size = 2; size <= 3; size++) {
      opl_team *team = opl_team_new(size);
      memset(bt, 0, sizeof(opl_real) * (size_t)nout);
      int ts = opl_task_infer_team(team, &m, &task, xn, yn, 4, xs, bx, bt, (T - Tin) * P, bwt, T * P, &e);
      opl_ctx_stats cs;
      opl_ctx_get_stats(opl_team_ctx(team, 1), &cs);
      double md = 0, sc = 0;
      for (int64_t i = 0; i < nout; i++) md = fmax(md, fabs((double)bt[i] - bp[i])), sc = fmax(sc, fabs((double)bp[i]));
      ok(ts == OPL_OK && md <= 1e-5 * sc && sc > 0 && cs.arena_high > 0,
         "infer over a team of %d: the rollout's values (max diff %.2g of %.2g), the second slice in the second "
         "context (%s)", size, md, sc, ts ? e.msg : "ok");
      opl_team_free(&team);
    }
    opl_model_ops whole = *m.ops;
    whole.samplewise = 0;
    const opl_model_ops *own = m.ops;
    m.ops = &whole;
    opl_team *team = opl_team_new(2);
    memset(bt, 0, sizeof(opl_real) * (size_t)nout);
    int ts = opl_task_infer_team(team, &m, &task, xn, yn, 4, xs, bx, bt, (T - Tin) * P, bwt, T * P, &e);
    opl_ctx_stats cs;
    opl_ctx_get_stats(opl_team_ctx(team, 1), &cs);
    ok(ts == OPL_OK && !memcmp(bt, bp, sizeof(opl_real) * (size_t)nout) && cs.arena_high == 0,
       "a model not samplewise: the whole batch in the first context, the same bits");
    ok(opl_task_infer_team(NULL, &m, &task, xn, yn, 4, xs, bx, bt, (T - Tin) * P, bwt, T * P, &e) == OPL_ERR_ARG &&
           opl_task_infer_team(team, &m, &task, xn, yn, 4, xs, bx, bt, 0, bwt, T * P, &e) == OPL_ERR_ARG &&
           strstr(e.msg, "per sample"),
       "team inference: no team or no values per sample refused: %s", e.msg);
    m.ops = own;
    opl_team_free(&team);
    free(bt);
    free(bwt);
  }
  opl_ctx_reset(c);
  opl_ctx_set_grad_enabled(c, 0);
  opl_tensor *x = opl_new(c, OPL_DIMS(N, T, X, X));
  memcpy(x->data, bx, sizeof(opl_real) * (size_t)x->numel);
  task.start = 0;
  opl_tensor *p0 = opl_task_predict(c, &m, &task, xn, yn, x);
  double d0 = 0, d1 = 0, scale = 0;
  for (int64_t b = 0; p0 && b < N; b++)
    for (int64_t i = 0; i < P; i++) {
      d0 = fmax(d0, fabs((double)p0->data[b * P + i] - (double)bp[(b * (T - Tin)) * P + i]));
      scale = fmax(scale, fabs((double)p0->data[b * P + i]));
    }
  /* step 2 by hand: the window (frame 1, prediction 0) */
  opl_tensor *x2 = opl_new(c, OPL_DIMS(N, T, X, X));
  memcpy(x2->data, bx, sizeof(opl_real) * (size_t)x2->numel);
  for (int64_t b = 0; p0 && b < N; b++) memcpy(x2->data + (b * T + 2) * P, p0->data + b * P, sizeof(opl_real) * (size_t)P);
  task.start = 1;
  opl_tensor *p1 = opl_task_predict(c, &m, &task, xn, yn, x2);
  for (int64_t b = 0; p1 && b < N; b++)
    for (int64_t i = 0; i < P; i++) d1 = fmax(d1, fabs((double)p1->data[b * P + i] - (double)bp[(b * (T - Tin) + 1) * P + i]));
  ok(p0 && p1 && d0 <= 1e-6 * scale && d1 <= 1e-6 * scale && scale > 0,
     "rollout step 1 = the one-step prediction from start 0 (max diff %.3g), step 2 = the prediction from (frame 1, "
     "step 1) (%.3g)", d0, d1);
  task.start = T - Tin; /* one past the last start */
  opl_ctx_reset(c);
  x = opl_new(c, OPL_DIMS(N, T, X, X));
  ok(opl_task_predict(c, &m, &task, NULL, NULL, x) == NULL && opl_ctx_status(c) == OPL_ERR_ARG &&
         strstr(opl_ctx_errmsg(c), "step window"),
     "a start past the last window refused: %s", opl_ctx_errmsg(c));
  opl_ctx_free(&c);
  opl_model_free(&m);
  opl_normalizer_free(&xn);
  opl_normalizer_free(&yn);
  opl_loader_free(&l);
  opl_ds_close(&ds);
  free(bx), free(by), free(bp), free(bw);
  test_tmpdir_remove(dir);
  return tap_end();
}
