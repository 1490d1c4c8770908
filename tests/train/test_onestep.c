/* The one-step task (train/task.h, OPL_TASK_ONESTEP): its selections and model shape, the
 * training prediction against one forward per pair, its loss (the sum over pairs), a
 * finite-difference gradient check of the prediction, and its inference: the autoregressive
 * rollout of the ROLLOUT task from the first T_in frames. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "operators/fno.h"
#include "train/task.h"
#include "tests/gradcheck.h"
#include "tests/tap.h"

#ifdef OPL_DOUBLE
#define GC_RTOL_MODEL 0 /* the default, 1e-6 */
#else
#define GC_RTOL_MODEL 5e-2 /* finite differences in float through a whole model */
#endif

static opl_tensor *f_predict(opl_ctx *c, opl_tensor **x, const void *o) {
  const opl_model *m = ((const void *const *)o)[0];
  const opl_task *t = ((const void *const *)o)[1];
  return opl_task_predict(c, m, t, NULL, NULL, x[0]);
}

static double coef(uint64_t *s) {
  *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
  return (double)(*s >> 11) / 9007199254740992.0 * 2 - 1;
}

int main(void) {
  tap_begin();
  opl_err e = {0};
  /* T_in 2, T 3: input frames 0..3 (the windows [0,2), [1,3), [2,4)), targets 2..4. */
  opl_task one = {.kind = OPL_TASK_ONESTEP, .t_in = 2, .t_out = 3};
  opl_task roll = {.kind = OPL_TASK_ROLLOUT, .t_in = 2, .t_out = 3};
  ok(!strcmp(opl_task_name(OPL_TASK_ONESTEP), "onestep") && opl_task_kind_from_name("onestep") == OPL_TASK_ONESTEP,
     "the kind is named onestep");
  opl_ds_sel in, out;
  ok(opl_task_selections(&one, &in, &out, &e) == OPL_OK && !in.with_a && in.t0 == 0 && in.nt == 4 && !out.with_a &&
         out.t0 == 2 && out.nt == 3,
     "selections: input frames [0, 4), target frames [2, 5)");
  int msdim = 0;
  int64_t cin = 0, cout = 0;
  ok(opl_task_model_io(&one, 2, &msdim, &cin, &cout, &e) == OPL_OK && msdim == 2 && cin == 2 && cout == 1,
     "model: 2 spatial axes, 2 input frames, 1 output frame");
  ok(opl_task_model_io(&one, 1, &msdim, &cin, &cout, &e) == OPL_ERR_ARG && strstr(e.msg, "2-D"),
     "1-D data refused: %s", e.msg);
  ok(opl_task_stepwise(&one) && !opl_task_normalizable(&one) && opl_task_loss_terms(&one) == 3 &&
         opl_task_frames(&one),
     "stepwise, not normalizable, 3 loss terms per sample");
  opl_task zero = one;
  zero.t_in = 0;
  ok(opl_task_check(&zero, &e) == OPL_ERR_ARG, "T_in 0 refused: %s", e.msg);

  e = (opl_err){0};
  opl_fno_config fc = opl_fno_config_default(2);
  fc.width = 4, fc.layers = 2, fc.proj_channels = 8, fc.modes[0] = fc.modes[1] = 2;
  opl_model m = {0};
  opl_rng rng;
  opl_rng_seed(&rng, 3);
  if (!ok(!opl_task_model_config(&one, 2, &opl_fno_kind, &fc, &e) && !opl_model_create(&m, &opl_fno_kind, &fc, &rng, &e),
          "a tiny FNO-2d for the task: %s", e.msg))
    return tap_end();
  for (int i = 0; i < m.params.n; i++)
    for (int64_t j = 0; j < opl_nreal(m.params.t[i]); j++)
      m.params.t[i]->data[j] *= (opl_real)(opl_is_complex(m.params.t[i]) ? 20 : 1.5);

  /* The prediction: pair k of sample b is the model on frames [k, k + 2) of sample b. */
  opl_ctx *c = opl_ctx_new(0);
  uint64_t sd = 7;
  opl_tensor *x = opl_new(c, OPL_DIMS(2, 4, 6, 6)), *y = opl_new(c, OPL_DIMS(2, 3, 6, 6));
  for (int64_t i = 0; i < x->numel; i++) x->data[i] = (opl_real)coef(&sd);
  for (int64_t i = 0; i < y->numel; i++) y->data[i] = (opl_real)coef(&sd);
  opl_tensor *p = opl_task_predict(c, &m, &one, NULL, NULL, x);
  ok(p && p->rank == 4 && p->shape[0] == 2 && p->shape[1] == 3 && p->shape[2] == 6 && p->shape[3] == 6,
     "prediction (2, 4, 6, 6) -> (2, 3, 6, 6): %s", opl_ctx_errmsg(c));
  double dmax = 0, lsum = 0;
  for (int64_t k = 0; p && k < 3; k++) {
    opl_tensor *pk = opl_model_forward(c, &m, opl_slice(c, x, 1, k, 2));
    for (int64_t b = 0; pk && b < 2; b++) {
      double num = 0, den = 0;
      for (int64_t i = 0; i < 36; i++) {
        double a = p->data[(b * 3 + k) * 36 + i], r = pk->data[b * 36 + i], t = y->data[(b * 3 + k) * 36 + i];
        dmax = fmax(dmax, fabs(a - r));
        num += (a - t) * (a - t), den += t * t;
      }
      lsum += sqrt(num / den);
    }
  }
  ok(p && dmax < 1e-5, "each pair's prediction = the model on its window (max diff %.3g)", dmax);
  opl_tensor *loss = p ? opl_task_loss(c, &one, p, y) : NULL;
  ok(loss && fabs(loss->data[0] - lsum) < 1e-4 * lsum, "loss = the sum over the 6 pairs of their relative L2: %.6g vs %.6g",
     loss ? (double)loss->data[0] : NAN, lsum);
  opl_tensor *bad = opl_new(c, OPL_DIMS(2, 3, 6, 6));
  opl_tensor *pb = opl_task_predict(c, &m, &one, NULL, NULL, bad);
  ok(!pb && opl_ctx_status(c) == OPL_ERR_SHAPE && strstr(opl_ctx_errmsg(c), "T_in + T - 1 = 4"),
     "an input of 3 frames refused: %s", opl_ctx_errmsg(c));
  opl_ctx_clear_error(c);

  const void *gco[2] = {&m, &one};
  gc_case rows[] = {
      {"task_predict onestep FNO-2d (2,4,6,6) -> (2,3,6,6)", f_predict, gco, 1, {{.rank = 4, .shape = {2, 4, 6, 6}}},
       GC_RTOL_MODEL, 30},
  };
  gc_run_table(rows, 1);

  /* Inference: the rollout from the first 2 frames, as ROLLOUT's from those frames alone. */
  int64_t xs[4] = {2, 4, 6, 6}, xr[4] = {2, 2, 6, 6};
  opl_real *xin = malloc(sizeof(opl_real) * 288), *xin2 = malloc(sizeof(opl_real) * 144),
           *o1 = malloc(sizeof(opl_real) * 216), *o2 = malloc(sizeof(opl_real) * 216),
           *w1 = malloc(sizeof(opl_real) * 288), *w2 = malloc(sizeof(opl_real) * 144);
  memcpy(xin, x->data, sizeof(opl_real) * 288);
  for (int b = 0; b < 2; b++) memcpy(xin2 + b * 72, xin + b * 144, sizeof(opl_real) * 72);
  int s1 = opl_task_infer(c, &m, &one, NULL, NULL, 4, xs, xin, o1, w1, &e);
  int s2 = s1 ? s1 : opl_task_infer(c, &m, &roll, NULL, NULL, 4, xr, xin2, o2, w2, &e);
  ok(!s1 && !s2 && !memcmp(o1, o2, sizeof(opl_real) * 216),
     "task_infer onestep = the rollout task's 3 steps from frames [0, 2), exactly%s%s", s1 || s2 ? ": " : "",
     s1 || s2 ? e.msg : "");
  /* and its first step is the training prediction of pair 0 */
  double d0 = 0;
  for (int64_t b = 0; p && b < 2; b++)
    for (int64_t i = 0; i < 36; i++) d0 = fmax(d0, fabs((double)o1[b * 108 + i] - p->data[b * 108 + i]));
  ok(!s1 && d0 < 1e-5, "rollout step 1 = pair 0 of the training prediction (max diff %.3g)", d0);
  free(xin), free(xin2), free(o1), free(o2), free(w1), free(w2);
  opl_ctx_free(&c);
  opl_model_free(&m);
  return tap_end();
}
