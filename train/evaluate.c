/* opl train — evaluation of a trained model (see evaluate.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/io.h"
#include "train/evaluate.h"
#include "train/trainer_internal.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void opl_trained_free(opl_trained *m) {
  if (!m) return;
  opl_model_free(&m->model);
  opl_normalizer_free(&m->xn);
  opl_normalizer_free(&m->yn);
  memset(m, 0, sizeof *m);
}

int opl_trained_load(const char *path, opl_trained *m, opl_err *err) {
  if (!path || !m) return opl_err_set(err, OPL_ERR_ARG, "eval: NULL path or model");
  memset(m, 0, sizeof *m);
  int st = opl_model_load(path, &m->model, err);
  if (st) return st;
  opl_kv *kv = NULL;
  int n = 0;
  if ((st = opl_checkpoint_read_meta(path, &kv, &n, err))) goto fail;
  if (!opl_ckpt_has_state(kv, n)) {
    /* A bare model file (opl_model_save, opl_fno_save): a one-shot model a -> u, no normalization. */
    m->task = (opl_task){.kind = OPL_TASK_STATIC, .target_frame = -1};
    m->sub = 1;
    opl_kv_free(&kv, n);
    return OPL_OK;
  }
  opl_ckpt_state s;
  st = opl_ckpt_parse_state(kv, n, path, &s, err);
  if (!st) {
    m->task = s.cfg.task;
    m->nx = s.nx;
    m->ny = s.ny;
    m->ntest = s.cfg.ntest;
    m->sub = s.cfg.sub;
    m->epochs = s.epoch;
    if (s.normalize != OPL_NORMALIZE_NONE) { /* SCALAR_U: the target's alone */
      opl_err e;
      opl_h5r *r = opl_h5r_open(path, &e);
      if (!r || (s.normalize == OPL_NORMALIZE_GAUSSIAN && !(m->xn = opl_normalizer_get(r, "normalizer_x", &e))) ||
          !(m->yn = opl_normalizer_get(r, "normalizer_y", &e)))
        st = opl_err_set(err, e.status, "eval: '%s': %s", path, e.msg);
      opl_h5r_close(&r);
    }
  }
  opl_kv_free(&kv, n);
  if (!st) return OPL_OK;
fail:
  opl_trained_free(m);
  return st;
}

void opl_eval_result_free(opl_eval_result *r) {
  if (!r) return;
  free(r->samples);
  free(r->rel);
  free(r->tnorm);
  free(r->input);
  free(r->truth);
  free(r->pred);
  free(r->nfe);
  free(r->accepted);
  free(r->rejected);
  free(r->step_rel);
  memset(r, 0, sizeof *r);
}

/* The step task's one-step errors of one batch: for every start s < T = cout the prediction
 * from the true frames s .. s + t_in - 1 of bx [B, nframes, P] (the training map, tape off),
 * whose relative L2 against frame s + t_in of by [B, T, P] is added to *onestep_sum (per start,
 * then per sample: the order of a single pass). A samplewise model's batch is cut over the team
 * (one slice per thread, as opl_task_infer_team). */
typedef struct onestep_job {
  const opl_trained *m;
  const opl_task *task;
  const opl_normalizer *xn, *yn;
  const opl_loader_info *li;
  const int64_t *xshape;
  const opl_real *bx, *by;
  double *rel; /* [B, T] */
} onestep_job;

static int onestep_slice(void *arg, opl_ctx *c, int64_t b0, int64_t b1, opl_err *err) {
  const onestep_job *j = arg;
  const opl_loader_info *li = j->li;
  const int64_t T = li->cout, P = li->nx * li->ny, Cin = j->xshape[1];
  int64_t xs[OPL_MAX_RANK];
  memcpy(xs, j->xshape, sizeof(int64_t) * (size_t)li->rank);
  xs[0] = b1 - b0;
  opl_task one = *j->task;
  int prev = opl_ctx_set_grad_enabled(c, 0), st = OPL_OK;
  for (int64_t s = 0; s < T && !st; s++) {
    opl_ctx_reset(c);
    opl_ctx_clear_error(c);
    one.start = s;
    opl_tensor *x = opl_new(c, li->rank, xs);
    if (x) memcpy(x->data, j->bx + b0 * Cin * P, sizeof(opl_real) * (size_t)x->numel);
    opl_tensor *y = x ? opl_task_predict(c, &j->m->model, &one, j->xn, j->yn, x) : NULL;
    if (!y) {
      st = opl_err_set(err, opl_ctx_status(c) ? opl_ctx_status(c) : OPL_ERR_STATE, "eval: one-step prediction: %s",
                       opl_ctx_errmsg(c));
      break;
    }
    for (int64_t b = b0; b < b1; b++)
      opl_rel_l2_per_sample(y->data + (b - b0) * P, j->by + (b * T + s) * P, 1, P, j->rel + b * T + s, NULL);
  }
  opl_ctx_reset(c);
  opl_ctx_set_grad_enabled(c, prev);
  return st;
}

static int onestep_errors(opl_team *team, const opl_trained *m, const opl_task *task, const opl_normalizer *xn,
                          const opl_normalizer *yn, const opl_loader_info *li, const int64_t *xshape,
                          const opl_real *bx, const opl_real *by, int64_t B, double *onestep_sum, opl_err *err) {
  const int64_t T = li->cout;
  double *rel = malloc(sizeof(double) * (size_t)(B * T));
  if (!rel) return opl_err_set(err, OPL_ERR_NOMEM, "eval: out of memory");
  onestep_job j = {m, task, xn, yn, li, xshape, bx, by, rel};
  int st = m->model.ops->samplewise ? opl_team_run(team, B, onestep_slice, &j, err)
                                    : onestep_slice(&j, opl_team_ctx(team, 0), 0, B, err);
  if (!st)
    for (int64_t s = 0; s < T; s++)
      for (int64_t b = 0; b < B; b++) *onestep_sum += rel[b * T + s];
  free(rel);
  return st;
}

int opl_evaluate(const opl_trained *m, opl_ds *ds, const opl_eval_opts *o, opl_eval_result *r, opl_err *err) {
  if (!m || !ds || !o || !r) return opl_err_set(err, OPL_ERR_ARG, "eval: NULL argument");
  memset(r, 0, sizeof *r);
  const opl_ds_info *info = opl_ds_get_info(ds);
  int64_t N = info->dims.n;
  int64_t ntest = o->ntest > 0 ? o->ntest : (m->ntest > 0 ? (m->ntest < N ? m->ntest : N) : 0);
  if (ntest < 1 || ntest > N)
    return opl_err_set(err, OPL_ERR_ARG, "eval: '%s' has %lld samples; cannot evaluate the last %lld%s", info->path,
                       (long long)N, (long long)ntest, ntest < 1 ? " (give the number of test samples)" : "");
  /* A trajectory task integrates through this data set's snapshot times. */
  opl_task tk = m->task;
  opl_err te;
  if (opl_task_set_data(&tk, info, &te)) return opl_err_set(err, te.status, "eval: %s", te.msg);
  opl_task *task = &tk;
  int want_d = 0;
  int64_t cin = 0, cout = 0;
  if (opl_task_model_io(task, info->dims.sdim, &want_d, &cin, &cout, NULL))
    return opl_err_set(err, OPL_ERR_ARG, "eval: the model solves the %s task on 2-D data; '%s' is %d-D",
                       opl_task_name(task->kind), info->path, info->dims.sdim);
  if (m->model.sdim != want_d) {
    char desc[256];
    m->model.ops->describe(m->model.self, desc, sizeof desc);
    return opl_err_set(err, OPL_ERR_ARG, "eval: the model is an %s on %d spatial axes, '%s' holds %d-D data", desc,
                       m->model.sdim, info->path, info->dims.sdim);
  }
  opl_err de;
  if (opl_task_check_data(task, info, &de)) return opl_err_set(err, de.status, "eval: %s", de.msg);
  /* A continuous task's trajectories are integrated one at a time: each gets its own steps. */
  int64_t batch = o->batch > 0 ? o->batch : opl_task_continuous(task) ? 1 : 20;
  opl_loader_opts lo = {.ntrain = 0, .ntest = ntest, .batch = batch, .sub = o->sub > 0 ? o->sub : 1};
  int st = opl_task_selections(task, &lo.in, &lo.out, err);
  if (st) return st;
  opl_loader *l = opl_loader_new(ds, &lo, err);
  if (!l) return err ? err->status : OPL_ERR_ARG;
  const opl_loader_info *li = opl_loader_get_info(l);
  opl_normalizer *xn = NULL, *yn = NULL;
  opl_team *team = NULL;
  opl_err e;
  if (m->xn && (li->nx != m->nx || li->ny != m->ny)) {
    /* Resolution-aware: the statistics are resampled to the evaluation grid. */
    if (!(xn = opl_normalizer_resample(m->xn, li->nx, li->ny, OPL_NORM_RESAMPLE_LINEAR, &e)) ||
        !(yn = opl_normalizer_resample(m->yn, li->nx, li->ny, OPL_NORM_RESAMPLE_LINEAR, &e))) {
      st = opl_err_set(err, e.status, "eval: %s", e.msg);
      goto done;
    }
  }
  const opl_normalizer *uxn = xn ? xn : m->xn, *uyn = yn ? yn : m->yn;
  int64_t P = li->nx * li->ny, keep = o->keep < 0 ? 0 : (o->keep < ntest ? o->keep : ntest);
  r->n = ntest;
  r->sdim = li->sdim;
  r->nx = li->nx;
  r->ny = li->ny;
  r->cin = li->cin;
  r->cout = li->cout;
  r->kept = keep;
  r->samples = malloc(sizeof(int64_t) * (size_t)ntest);
  r->rel = malloc(sizeof(double) * (size_t)ntest);
  r->tnorm = malloc(sizeof(double) * (size_t)ntest);
  r->onestep = NAN;
  int windowed = opl_task_windowed(task);
  double onestep_sum = 0;
  if (opl_task_continuous(task)) {
    r->nfe = calloc((size_t)ntest, sizeof(int64_t));
    r->accepted = calloc((size_t)ntest, sizeof(int64_t));
    r->rejected = calloc((size_t)ntest, sizeof(int64_t));
    if (!r->nfe || !r->accepted || !r->rejected) {
      st = opl_err_set(err, OPL_ERR_NOMEM, "eval: out of memory for %lld samples", (long long)ntest);
      goto done;
    }
  }
  if (opl_task_stepwise(task) && !(r->step_rel = malloc(sizeof(double) * (size_t)(ntest * li->cout)))) {
    st = opl_err_set(err, OPL_ERR_NOMEM, "eval: out of memory for %lld samples", (long long)ntest);
    goto done;
  }
  if (keep) {
    r->input = malloc(sizeof(opl_real) * (size_t)(keep * li->cin * P));
    r->truth = malloc(sizeof(opl_real) * (size_t)(keep * li->cout * P));
    r->pred = malloc(sizeof(opl_real) * (size_t)(keep * li->cout * P));
  }
  /* Batches live in heap buffers: opl_task_infer resets the arena as it goes. */
  opl_real *bx = malloc(sizeof(opl_real) * (size_t)(batch * li->cin * P));
  opl_real *by = malloc(sizeof(opl_real) * (size_t)(batch * li->cout * P));
  opl_real *bp = malloc(sizeof(opl_real) * (size_t)(batch * li->cout * P));
  int stepwise = opl_task_stepwise(task);
  opl_real *bw = stepwise ? malloc(sizeof(opl_real) * (size_t)(batch * li->cin * P)) : NULL;
  team = opl_team_new(0);
  if (!team || !r->samples || !r->rel || !r->tnorm || (keep && (!r->input || !r->truth || !r->pred)) || !bx || !by ||
      !bp || (stepwise && !bw)) {
    st = opl_err_set(err, OPL_ERR_NOMEM, "eval: out of memory for %lld samples", (long long)ntest);
    goto done_buf;
  }
  for (int64_t k = o->warmup ? -1 : 0, off = 0; k < li->nbatch[1]; k++) {
    /* k = -1: the first batch once, untimed (FFT plans, arena) */
    int64_t kb = k < 0 ? 0 : k, B = 0, is[4];
    if ((st = opl_loader_batch(l, OPL_SPLIT_TEST, 0, kb, bx, by, &B, r->samples + off, err))) goto done_buf;
    opl_task_set_batch(task, r->samples + off, B);
    memcpy(is, li->in_shape, sizeof is);
    is[0] = B;
    double t0 = now_s();
    st = opl_task_infer_team(team, &m->model, task, uxn, uyn, li->rank, is, bx, bp, li->cout * P, bw,
                             stepwise ? li->cin * P : 0, err);
    if (k >= 0) r->seconds += now_s() - t0;
    if (st) {
      if (err) {
        /* "task_infer: fno: ..." -> "eval: fno: ..." */
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", opl_err_text(err));
        opl_err_set(err, st, "eval: %s", msg);
      }
      goto done_buf;
    }
    if (k < 0) continue;
    int64_t M = li->cout * P, nfe = 0, acc = 0, rej = 0;
    opl_rel_l2_per_sample(bp, by, B, M, r->rel + off, r->tnorm + off);
    /* each predicted frame [B, cout, P] on its own: B cout rows of P */
    if (r->step_rel) opl_rel_l2_per_sample(bp, by, B * li->cout, P, r->step_rel + off * li->cout, NULL);
    if (windowed && (st = onestep_errors(team, m, task, uxn, uyn, li, is, bx, by, B, &onestep_sum, err))) goto done_buf;
    if (r->nfe && opl_task_solver_stats(task, &m->model, &nfe, &acc, &rej))
      for (int64_t j = 0; j < B; j++) r->nfe[off + j] = nfe, r->accepted[off + j] = acc, r->rejected[off + j] = rej;
    for (int64_t j = 0; j < B && off + j < keep; j++) {
      memcpy(r->input + (off + j) * li->cin * P, bx + j * li->cin * P, sizeof(opl_real) * (size_t)(li->cin * P));
      memcpy(r->truth + (off + j) * M, by + j * M, sizeof(opl_real) * (size_t)M);
      memcpy(r->pred + (off + j) * M, bp + j * M, sizeof(opl_real) * (size_t)M);
    }
    off += B;
  }
  if (windowed) r->onestep = onestep_sum / (double)(ntest * li->cout);
done_buf:
  free(bx);
  free(by);
  free(bp);
  free(bw);
done:
  opl_team_free(&team);
  opl_normalizer_free(&xn);
  opl_normalizer_free(&yn);
  opl_loader_free(&l);
  if (st) opl_eval_result_free(r);
  return st;
}
