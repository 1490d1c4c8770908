/* opl train — the FNO trainer and evaluator. See trainer.h for the contract and the recipe.
 *
 * Structure: a training step is load batch (into arena tensors) -> opl_task_predict ->
 * opl_task_loss -> backward -> finiteness checks -> Adam; an epoch is the steps of the epoch's
 * shuffled order, StepLR, the test evaluation, the CSV row and a checkpoint when due. All
 * state needed to continue a run bit for bit is written by trainer_save and read back by
 * opl_trainer_resume; everything else (the shuffle order) is a function of (seed, epoch). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/io.h"
#include "train/trainer.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static char *dup_str(const char *s) { return s ? strdup(s) : NULL; }

/* ================================================================ tasks */

static const char *task_names[OPL_TASK_COUNT] = {"static", "rollout", "spacetime"};

const char *opl_task_name(int kind) {
  return (kind >= 0 && kind < OPL_TASK_COUNT) ? task_names[kind] : "unknown";
}

/* OPL_OK if the task's own fields are in range. */
static int task_check(const opl_task *task, opl_err *err) {
  if (!task) return opl_err_set(err, OPL_ERR_ARG, "train: NULL task");
  if (task->kind < 0 || task->kind >= OPL_TASK_COUNT)
    return opl_err_set(err, OPL_ERR_ARG, "train: unknown task kind %d (static, rollout, spacetime)", task->kind);
  if (task->kind == OPL_TASK_STATIC) {
    if (task->target_frame < -1)
      return opl_err_set(err, OPL_ERR_ARG, "train: target frame %lld, expected >= 0 or -1 (the last frame)",
                         (long long)task->target_frame);
  } else if (task->t_in < 1 || task->t_out < 1) {
    return opl_err_set(err, OPL_ERR_ARG, "train: %s task with T_in = %lld and T = %lld frames, both must be >= 1",
                       opl_task_name(task->kind), (long long)task->t_in, (long long)task->t_out);
  }
  return OPL_OK;
}

int opl_task_selections(const opl_task *task, opl_ds_sel *in, opl_ds_sel *out, opl_err *err) {
  int st = task_check(task, err);
  if (st) return st;
  if (task->kind == OPL_TASK_STATIC) {
    *in = (opl_ds_sel){.with_a = 1, .t0 = 0, .nt = 0};
    *out = (opl_ds_sel){.with_a = 0, .t0 = task->target_frame, .nt = 1};
  } else {
    *in = (opl_ds_sel){.with_a = 0, .t0 = 0, .nt = task->t_in};
    *out = (opl_ds_sel){.with_a = 0, .t0 = task->t_in, .nt = task->t_out};
  }
  return OPL_OK;
}

int opl_task_model_config(const opl_task *task, int sdim, opl_fno_config *cfg, opl_err *err) {
  int st = task_check(task, err);
  if (st) return st;
  if (sdim != 1 && sdim != 2) return opl_err_set(err, OPL_ERR_ARG, "train: spatial dimension %d, expected 1 or 2", sdim);
  if (task->kind != OPL_TASK_STATIC && sdim != 2)
    return opl_err_set(err, OPL_ERR_ARG, "train: the %s task needs 2-D data (frames of (X, Y)), the data set is %d-D",
                       opl_task_name(task->kind), sdim);
  cfg->d = task->kind == OPL_TASK_STATIC ? sdim : (task->kind == OPL_TASK_ROLLOUT ? 2 : 3);
  cfg->in_channels = task->kind == OPL_TASK_STATIC ? 1 : task->t_in;
  cfg->out_channels = 1;
  return OPL_OK;
}

opl_tensor *opl_task_predict(opl_ctx *c, const opl_fno *m, const opl_task *task, const opl_normalizer *xn,
                             const opl_normalizer *yn, opl_tensor *x) {
  if (opl_ctx_status(c)) return NULL;
  if (!m || !task || task->kind < 0 || task->kind >= OPL_TASK_COUNT) {
    opl_ctx_error(c, OPL_ERR_ARG, "task_predict: NULL model or bad task");
    return NULL;
  }
  if (!opl_check_input(c, "task_predict", "x", x, -1, 0)) return NULL;
  if (xn) x = opl_normalizer_encode_op(c, xn, x);
  opl_tensor *y = NULL;
  switch (task->kind) {
    case OPL_TASK_STATIC:
      y = opl_fno_forward(c, m, x);
      break;
    case OPL_TASK_ROLLOUT:
      if (task->t_out > 1 << 30) {
        opl_ctx_error(c, OPL_ERR_ARG, "task_predict: %lld rollout steps", (long long)task->t_out);
        return NULL;
      }
      y = opl_fno_rollout(c, m, x, (int)task->t_out);
      break;
    case OPL_TASK_SPACETIME: {
      /* (B, t_in, X, Y) -> (B, t_in, X, Y, T) -> FNO-3d -> (B, 1, X, Y, T) -> (B, T, X, Y) */
      opl_tensor *h = opl_fno_forward(c, m, opl_fno3d_input(c, x, task->t_out));
      if (!h) return NULL;
      h = opl_reshape(c, h, OPL_DIMS(h->shape[0], h->shape[2], h->shape[3], h->shape[4]));
      static const int perm[4] = {0, 3, 1, 2};
      y = opl_permute(c, h, perm);
      break;
    }
  }
  if (yn) y = opl_normalizer_decode_op(c, yn, y);
  return y;
}

/* Copy the context's error into err with a prefix; returns the status. */
static int ctx_take(opl_ctx *c, opl_err *err, const char *what) {
  int st = opl_ctx_status(c);
  return opl_err_set(err, st ? st : OPL_ERR_STATE, "%s: %s", what, st ? opl_ctx_errmsg(c) : "no result");
}

/* Shift every sample's window [B, Cin, P] left by Cout frames and append y [B, Cout, P]. */
static void window_push(opl_real *win, const opl_real *y, int64_t B, int64_t Cin, int64_t Cout, int64_t P) {
  for (int64_t b = 0; b < B; b++) {
    opl_real *w = win + b * Cin * P;
    memmove(w, w + Cout * P, sizeof(opl_real) * (size_t)((Cin - Cout) * P));
    memcpy(w + (Cin - Cout) * P, y + b * Cout * P, sizeof(opl_real) * (size_t)(Cout * P));
  }
}

int opl_task_infer(opl_ctx *c, const opl_fno *m, const opl_task *task, const opl_normalizer *xn,
                   const opl_normalizer *yn, int rank, const int64_t *xshape, const opl_real *x, opl_real *out,
                   opl_real *window, opl_err *err) {
  if (!c || !m || !task || !xshape || !x || !out || rank < 3 || rank > OPL_MAX_RANK)
    return opl_err_set(err, OPL_ERR_ARG, "task_infer: NULL argument or rank %d", rank);
  if (task->kind == OPL_TASK_ROLLOUT && (xn || yn || !window))
    return opl_err_set(err, OPL_ERR_ARG, "task_infer: the rollout task takes no normalizer and needs a window buffer");
  int prev = opl_ctx_set_grad_enabled(c, 0), st = OPL_OK;
  opl_ctx_reset(c);
  opl_ctx_clear_error(c);
  int64_t B = xshape[0], Cin = xshape[1], P = 1;
  for (int i = 2; i < rank; i++) P *= xshape[i];
  if (task->kind != OPL_TASK_ROLLOUT) {
    opl_tensor *xt = opl_new(c, rank, xshape);
    if (xt) memcpy(xt->data, x, sizeof(opl_real) * (size_t)xt->numel);
    opl_tensor *y = xt ? opl_task_predict(c, m, task, xn, yn, xt) : NULL;
    if (!y) st = ctx_take(c, err, "task_infer");
    else memcpy(out, y->data, sizeof(opl_real) * (size_t)y->numel);
  } else {
    int64_t Cout = m->cfg.out_channels, steps = task->t_out;
    if (Cout > Cin) {
      st = opl_err_set(err, OPL_ERR_ARG, "task_infer: the model predicts %lld frames per step, more than its window of %lld",
                       (long long)Cout, (long long)Cin);
    } else {
      memcpy(window, x, sizeof(opl_real) * (size_t)(B * Cin * P));
      for (int64_t s = 0; s < steps && !st; s++) {
        opl_ctx_reset(c);
        opl_tensor *w = opl_new(c, rank, xshape);
        if (w) memcpy(w->data, window, sizeof(opl_real) * (size_t)w->numel);
        opl_tensor *y = w ? opl_fno_forward(c, m, w) : NULL;
        if (!y) {
          st = ctx_take(c, err, "task_infer");
          break;
        }
        /* out [B, steps Cout, P]: frames s Cout .. (s + 1) Cout of every sample */
        for (int64_t b = 0; b < B; b++)
          memcpy(out + (b * steps + s) * Cout * P, y->data + b * Cout * P, sizeof(opl_real) * (size_t)(Cout * P));
        if (s + 1 < steps) window_push(window, y->data, B, Cin, Cout, P);
      }
    }
  }
  opl_ctx_reset(c);
  opl_ctx_set_grad_enabled(c, prev);
  return st;
}

opl_tensor *opl_task_loss(opl_ctx *c, const opl_task *task, opl_tensor *pred, opl_tensor *y) {
  if (opl_ctx_status(c)) return NULL;
  if (!task) {
    opl_ctx_error(c, OPL_ERR_ARG, "task_loss: NULL task");
    return NULL;
  }
  if (!opl_check_input(c, "task_loss", "pred", pred, -1, 0) || !opl_check_input(c, "task_loss", "y", y, -1, 0))
    return NULL;
  if (task->kind == OPL_TASK_ROLLOUT) {
    char b1[96], b2[96];
    if (pred->rank < 3 || !opl_shape_eq(pred->rank, pred->shape, y->rank, y->shape)) {
      opl_ctx_error(c, OPL_ERR_SHAPE, "task_loss: rollout prediction %s and target %s must have one shape (B, T, X, Y)",
                    opl_shape_str(b1, pred->rank, pred->shape), opl_shape_str(b2, y->rank, y->shape));
      return NULL;
    }
    /* (B, T, X, Y) -> (B T, X, Y): one row per (sample, step), so the summed relative L2 is
     * sum_b sum_t ||p_bt - y_bt|| / ||y_bt||, the reference's loss += myloss(im, y_t). */
    int64_t s[OPL_MAX_RANK];
    s[0] = pred->shape[0] * pred->shape[1];
    for (int i = 2; i < pred->rank; i++) s[i - 1] = pred->shape[i];
    pred = opl_reshape(c, pred, pred->rank - 1, s);
    y = opl_reshape(c, y, y->rank - 1, s);
  }
  return opl_rel_lp_loss(c, pred, y, 2, OPL_REDUCE_SUM);
}

/* ================================================================ trainer */

opl_trainer_config opl_trainer_defaults(void) {
  opl_trainer_config c;
  memset(&c, 0, sizeof c);
  c.task = (opl_task){.kind = OPL_TASK_STATIC, .target_frame = -1, .t_in = 10, .t_out = 40};
  c.ntrain = 1000;
  c.ntest = 100;
  c.batch = 20;
  c.sub = 1;
  c.normalize = OPL_NORMALIZE_AUTO;
  c.shuffle = 1;
  c.cache = 1;
  c.epochs = 500;
  c.lr = 1e-3;
  c.weight_decay = 1e-4;
  c.step_size = 100;
  c.gamma = 0.5;
  c.clip_grad = 0;
  c.seed = 0;
  c.checkpoint_every = 0;
  return c;
}

struct opl_trainer {
  opl_trainer_config cfg;     /* string fields point at the copies below */
  char *checkpoint, *csv, *dataset_name;
  int normalize;              /* resolved: NONE or GAUSSIAN */
  opl_fno_config mcfg;
  opl_fno model;
  opl_params params;
  opl_optim *opt;
  opl_sched_steplr sched;
  opl_rng rng;                /* the stream after the model's initialization */
  opl_ds *ds;
  opl_loader *loader;
  const opl_loader_info *li;
  int64_t target_frame;       /* STATIC: resolved target frame */
  opl_normalizer *xn, *yn;
  opl_ctx *ctx;
  int64_t epoch;              /* epochs done */
  double *rel;                /* [batch] per-sample scratch */
  opl_real *tx, *ty, *tp, *tw; /* test batches: x, y, prediction, rollout window (heap) */
  opl_metrics_log *log;
  double last_test, last_loss;
};

void opl_trainer_free(opl_trainer **pt) {
  if (!pt || !*pt) return;
  opl_trainer *t = *pt;
  opl_metrics_log_close(&t->log);
  opl_optim_free(&t->opt);
  opl_params_free(&t->params);
  opl_loader_free(&t->loader);
  opl_normalizer_free(&t->xn);
  opl_normalizer_free(&t->yn);
  opl_ctx_free(&t->ctx);
  free(t->rel);
  free(t->tx);
  free(t->ty);
  free(t->tp);
  free(t->tw);
  free(t->checkpoint);
  free(t->csv);
  free(t->dataset_name);
  free(t);
  *pt = NULL;
}

/* Check the scalar fields of a configuration. */
static int config_check(const opl_trainer_config *c, opl_err *err) {
  struct { const char *name; int64_t v, lo; } ints[] = {
      {"ntrain", c->ntrain, 1}, {"ntest", c->ntest, 0}, {"batch", c->batch, 1}, {"sub", c->sub, 1},
      {"epochs", c->epochs, 1}, {"step_size", c->step_size, 1}, {"checkpoint_every", c->checkpoint_every, 0}};
  for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
    if (ints[i].v < ints[i].lo)
      return opl_err_set(err, OPL_ERR_ARG, "train: %s = %lld, expected >= %lld", ints[i].name, (long long)ints[i].v,
                         (long long)ints[i].lo);
  if (!(isfinite(c->lr) && c->lr >= 0)) return opl_err_set(err, OPL_ERR_ARG, "train: lr = %g, expected a finite value >= 0", c->lr);
  if (!(isfinite(c->weight_decay) && c->weight_decay >= 0))
    return opl_err_set(err, OPL_ERR_ARG, "train: weight_decay = %g, expected a finite value >= 0", c->weight_decay);
  if (!(isfinite(c->gamma) && c->gamma > 0))
    return opl_err_set(err, OPL_ERR_ARG, "train: gamma = %g, expected a finite value > 0", c->gamma);
  if (!(isfinite(c->clip_grad) && c->clip_grad >= 0))
    return opl_err_set(err, OPL_ERR_ARG, "train: clip_grad = %g, expected >= 0 (0: no clipping)", c->clip_grad);
  if (c->normalize < OPL_NORMALIZE_AUTO || c->normalize > OPL_NORMALIZE_GAUSSIAN)
    return opl_err_set(err, OPL_ERR_ARG, "train: normalize = %d, expected -1 (auto), 0 (none) or 1 (gaussian)",
                       c->normalize);
  if (c->shuffle != 0 && c->shuffle != 1) return opl_err_set(err, OPL_ERR_ARG, "train: shuffle = %d, expected 0 or 1", c->shuffle);
  return task_check(&c->task, err);
}

/* Resolve AUTO normalization: the reference scripts' choice per task. */
static int resolve_normalize(const opl_task *task, int sdim, int normalize) {
  if (normalize != OPL_NORMALIZE_AUTO) return normalize;
  if (task->kind == OPL_TASK_ROLLOUT) return OPL_NORMALIZE_NONE;          /* fourier_2d_time.py */
  if (task->kind == OPL_TASK_SPACETIME) return OPL_NORMALIZE_GAUSSIAN;    /* fourier_3d.py */
  return sdim == 2 ? OPL_NORMALIZE_GAUSSIAN : OPL_NORMALIZE_NONE;         /* fourier_2d.py / 1d.py */
}

/* The spatial extents the model sees for a loader: (nx[, ny[, t_out]]). Returns d. */
static int model_extents(const opl_task *task, const opl_loader_info *li, int64_t *S) {
  S[0] = li->nx;
  S[1] = li->ny;
  S[2] = task->t_out;
  return task->kind == OPL_TASK_STATIC ? li->sdim : (task->kind == OPL_TASK_ROLLOUT ? 2 : 3);
}

/* OPL_OK if every axis keeps at most half its (padded) extent of modes. */
static int check_modes(const opl_fno_config *m, const opl_task *task, const opl_loader_info *li, int sub,
                       const char *path, opl_err *err) {
  int64_t S[3];
  int d = model_extents(task, li, S);
  static const char *axis[3] = {"X", "Y", "T"};
  for (int a = 0; a < d; a++) {
    int64_t Sp = S[a] + m->pad[a];
    if (2 * (int64_t)m->modes[a] > Sp) {
      if (a < 2)
        return opl_err_set(err, OPL_ERR_ARG,
                           "train: modes %d exceed half the resolution on axis %s of '%s': %lld points (%lld / sub %d)%s"
                           " keep at most %lld modes",
                           m->modes[a], axis[a], path, (long long)S[a], (long long)(S[a] * sub), sub,
                           m->pad[a] ? " plus padding" : "", (long long)(Sp / 2));
      return opl_err_set(err, OPL_ERR_ARG,
                         "train: modes %d exceed half the %lld time points (T = %lld plus padding %lld) of FNO-3d: at most %lld",
                         m->modes[a], (long long)Sp, (long long)S[a], (long long)m->pad[a], (long long)(Sp / 2));
    }
  }
  return OPL_OK;
}

opl_trainer *opl_trainer_new(const opl_trainer_config *cfg, const opl_fno_config *model, opl_ds *ds,
                             opl_err *err) {
  if (!cfg || !model || !ds) {
    opl_err_set(err, OPL_ERR_ARG, "train: NULL %s", !cfg ? "configuration" : (!model ? "model configuration" : "data set"));
    return NULL;
  }
  if (config_check(cfg, err)) return NULL;
  const opl_ds_info *info = opl_ds_get_info(ds);
  const opl_task *task = &cfg->task;
  int sdim = info->dims.sdim;
  if (task->kind != OPL_TASK_STATIC && task->t_in + task->t_out > info->dims.t) {
    opl_err_set(err, OPL_ERR_ARG,
                "train: the %s task needs T_in + T = %lld + %lld = %lld frames of '%s' in '%s', which has %lld",
                opl_task_name(task->kind), (long long)task->t_in, (long long)task->t_out,
                (long long)(task->t_in + task->t_out), info->u_name, info->path, (long long)info->dims.t);
    return NULL;
  }
  if (task->kind == OPL_TASK_STATIC && task->target_frame >= info->dims.t) {
    opl_err_set(err, OPL_ERR_ARG, "train: target frame %lld outside the %lld frames of '%s' in '%s'",
                (long long)task->target_frame, (long long)info->dims.t, info->u_name, info->path);
    return NULL;
  }
  opl_trainer *t = calloc(1, sizeof *t);
  if (!t) {
    opl_err_set(err, OPL_ERR_NOMEM, "train: out of memory");
    return NULL;
  }
  opl_params_init(&t->params);
  t->cfg = *cfg;
  t->ds = ds;
  t->last_test = t->last_loss = NAN;
  t->checkpoint = dup_str(cfg->checkpoint);
  t->dataset_name = dup_str(cfg->dataset_name ? cfg->dataset_name : info->path);
  if (cfg->csv) {
    t->csv = dup_str(cfg->csv);
  } else if (cfg->checkpoint) {
    char buf[4096];
    if (opl_metrics_csv_path(cfg->checkpoint, buf, sizeof buf, err)) goto fail;
    t->csv = strdup(buf);
  }
  t->cfg.checkpoint = t->checkpoint;
  t->cfg.csv = t->csv;
  t->cfg.dataset_name = t->dataset_name;
  t->normalize = resolve_normalize(task, sdim, cfg->normalize);
  if (t->normalize == OPL_NORMALIZE_GAUSSIAN && task->kind == OPL_TASK_ROLLOUT) {
    opl_err_set(err, OPL_ERR_ARG,
                "train: per-point normalization is not available for the rollout task (predictions are fed back as "
                "inputs; fourier_2d_time.py does not normalize): use normalize none");
    goto fail;
  }
  if (t->normalize == OPL_NORMALIZE_GAUSSIAN && cfg->ntrain < 2) {
    opl_err_set(err, OPL_ERR_ARG, "train: gaussian normalization needs ntrain >= 2 (an unbiased std), got %lld",
                (long long)cfg->ntrain);
    goto fail;
  }
  /* The data. */
  opl_loader_opts lo = {.ntrain = cfg->ntrain, .ntest = cfg->ntest, .batch = cfg->batch, .sub = cfg->sub,
                        .shuffle = cfg->shuffle, .seed = cfg->seed, .cache = cfg->cache};
  if (opl_task_selections(task, &lo.in, &lo.out, err)) goto fail;
  if (!(t->loader = opl_loader_new(ds, &lo, err))) goto fail;
  t->li = opl_loader_get_info(t->loader);
  t->target_frame = task->kind == OPL_TASK_STATIC ? t->li->out_t0 : -1;
  t->cfg.task.target_frame = task->kind == OPL_TASK_STATIC ? t->target_frame : task->target_frame;
  /* The model. */
  t->mcfg = *model;
  if (opl_task_model_config(task, sdim, &t->mcfg, err)) goto fail;
  for (int a = t->mcfg.d; a < 3; a++) t->mcfg.modes[a] = 0, t->mcfg.pad[a] = 0; /* canonical: unused axes 0 */
  if (opl_fno_config_check(&t->mcfg, err) ||
      check_modes(&t->mcfg, task, t->li, cfg->sub, info->path, err))
    goto fail;
  if (t->normalize == OPL_NORMALIZE_GAUSSIAN &&
      (!(t->xn = opl_normalizer_fit_loader(t->loader, 0, OPL_NORM_UNIT_GAUSSIAN, err)) ||
       !(t->yn = opl_normalizer_fit_loader(t->loader, 1, OPL_NORM_UNIT_GAUSSIAN, err))))
    goto fail;
  opl_rng_seed(&t->rng, cfg->seed);
  if (opl_fno_init(&t->model, &t->params, &t->mcfg, &t->rng, err)) goto fail;
  opl_optim_config oc = opl_optim_defaults(OPL_OPTIM_ADAM);
  oc.lr = cfg->lr;
  oc.weight_decay = cfg->weight_decay;
  if (!(t->opt = opl_optim_create(OPL_OPTIM_ADAM, &t->params, &oc, err))) goto fail;
  if (opl_sched_steplr_init(&t->sched, t->opt, cfg->lr, cfg->step_size, cfg->gamma, err)) goto fail;
  t->ctx = opl_ctx_new(0);
  t->rel = malloc(sizeof(double) * (size_t)cfg->batch);
  int64_t P = t->li->nx * t->li->ny, nin = cfg->batch * t->li->cin * P, nout = cfg->batch * t->li->cout * P;
  if (cfg->ntest > 0) {
    t->tx = malloc(sizeof(opl_real) * (size_t)nin);
    t->ty = malloc(sizeof(opl_real) * (size_t)nout);
    t->tp = malloc(sizeof(opl_real) * (size_t)nout);
    t->tw = task->kind == OPL_TASK_ROLLOUT ? malloc(sizeof(opl_real) * (size_t)nin) : NULL;
  }
  if (!t->ctx || !t->rel ||
      (cfg->ntest > 0 && (!t->tx || !t->ty || !t->tp || (task->kind == OPL_TASK_ROLLOUT && !t->tw)))) {
    opl_err_set(err, OPL_ERR_NOMEM, "train: out of memory");
    goto fail;
  }
  return t;
fail:
  opl_trainer_free(&t);
  return NULL;
}

int64_t opl_trainer_epochs_done(const opl_trainer *t) { return t ? t->epoch : 0; }
int64_t opl_trainer_train_batches(const opl_trainer *t) { return t ? t->li->nbatch[0] : 0; }
double opl_trainer_lr(const opl_trainer *t) { return t ? opl_optim_get_lr(t->opt) : NAN; }
const opl_fno *opl_trainer_model(const opl_trainer *t) { return t ? &t->model : NULL; }
opl_params *opl_trainer_params(opl_trainer *t) { return t ? &t->params : NULL; }
opl_params *opl_trainer_optim_state(opl_trainer *t) { return t ? opl_optim_state(t->opt) : NULL; }
const opl_loader_info *opl_trainer_loader_info(const opl_trainer *t) { return t ? t->li : NULL; }
const opl_trainer_config *opl_trainer_get_config(const opl_trainer *t) { return t ? &t->cfg : NULL; }
opl_ctx *opl_trainer_ctx(opl_trainer *t) { return t ? t->ctx : NULL; }

int opl_trainer_set_lr(opl_trainer *t, double lr, opl_err *err) {
  if (!t) return opl_err_set(err, OPL_ERR_ARG, "train: NULL trainer");
  if (!(isfinite(lr) && lr >= 0)) return opl_err_set(err, OPL_ERR_ARG, "train: lr = %g, expected a finite value >= 0", lr);
  t->sched.base_lr = lr;
  if (opl_optim_set_lr(t->opt, opl_sched_steplr_lr(&t->sched)))
    return opl_err_set(err, OPL_ERR_ARG, "train: %s", opl_optim_errmsg(t->opt));
  return OPL_OK;
}

/* Batch tensors of B samples in the loader's layout, from the arena. */
static int batch_tensors(opl_ctx *c, const opl_loader_info *li, int64_t B, opl_tensor **x, opl_tensor **y) {
  int64_t is[4], os[4];
  memcpy(is, li->in_shape, sizeof is);
  memcpy(os, li->out_shape, sizeof os);
  is[0] = os[0] = B;
  *x = opl_new(c, li->rank, is);
  *y = opl_new(c, li->rank, os);
  return *x && *y;
}

int opl_trainer_step(opl_trainer *t, int64_t k, opl_step_stats *s, opl_err *err) {
  if (!t) return opl_err_set(err, OPL_ERR_ARG, "train: NULL trainer");
  const opl_loader_info *li = t->li;
  int64_t nb = li->nbatch[0], e = t->epoch + 1;
  if (k < 0 || k >= nb)
    return opl_err_set(err, OPL_ERR_ARG, "train: batch %lld outside [0, %lld)", (long long)k, (long long)nb);
  opl_ctx *c = t->ctx;
  opl_ctx_reset(c);
  opl_ctx_clear_error(c);
  opl_ctx_set_grad_enabled(c, 1);
  /* The TRUE size of batch k: the last one may be partial. Every tensor of the step has B
   * rows, so the summed loss counts each sample once (the reference's out.view(batch_size, -1)
   * with the nominal batch size would regroup the values of a partial batch into wrong rows). */
  int64_t B = li->n[0] - k * li->batch < li->batch ? li->n[0] - k * li->batch : li->batch, bs = 0;
  opl_tensor *x, *y;
  if (!batch_tensors(c, li, B, &x, &y)) return ctx_take(c, err, "train");
  int st = opl_loader_batch(t->loader, OPL_SPLIT_TRAIN, t->epoch, k, x->data, y->data, &bs, NULL, err);
  if (st) return st;
  OPL_ASSERT(bs == B, "loader batch of %lld samples, expected %lld", (long long)bs, (long long)B);
  opl_params_zero_grad(&t->params);
  opl_tensor *pred = opl_task_predict(c, &t->model, &t->cfg.task, t->xn, t->yn, x);
  opl_tensor *loss = opl_task_loss(c, &t->cfg.task, pred, y);
  if (!loss) return ctx_take(c, err, "train");
  double lv = (double)loss->data[0];
  opl_rel_l2_per_sample(pred->data, y->data, B, pred->numel / B, t->rel, NULL);
  double l2 = 0;
  for (int64_t j = 0; j < B; j++) l2 += t->rel[j];
  if (!isfinite(lv))
    return opl_err_set(err, OPL_ERR_NONFINITE,
                       "train: divergence at epoch %lld, batch %lld of %lld: the loss is %g; stopped before updating "
                       "the parameters (lower the learning rate, or clip gradients)",
                       (long long)e, (long long)(k + 1), (long long)nb, lv);
  if (opl_backward(c, loss)) return ctx_take(c, err, "train: backward");
  opl_err ge;
  if (opl_params_check_finite_grad(&t->params, &ge))
    return opl_err_set(err, OPL_ERR_NONFINITE,
                       "train: divergence at epoch %lld, batch %lld of %lld: %s (loss %g); stopped before updating "
                       "the parameters (lower the learning rate, or clip gradients)",
                       (long long)e, (long long)(k + 1), (long long)nb, ge.msg, lv);
  if (t->cfg.clip_grad > 0) opl_params_clip_grad_norm(&t->params, t->cfg.clip_grad);
  if (opl_optim_step(t->opt)) return opl_err_set(err, OPL_ERR_STATE, "train: %s", opl_optim_errmsg(t->opt));
  if (s) {
    s->bsize = B;
    s->loss = lv;
    s->l2_sum = l2;
  }
  return OPL_OK;
}

int opl_trainer_test(opl_trainer *t, double *test_l2, opl_err *err) {
  if (!t || !test_l2) return opl_err_set(err, OPL_ERR_ARG, "train: NULL trainer or result");
  const opl_loader_info *li = t->li;
  *test_l2 = NAN;
  if (li->n[1] == 0) return OPL_OK;
  double sum = 0;
  int st = OPL_OK;
  for (int64_t k = 0; k < li->nbatch[1] && !st; k++) {
    int64_t B = 0, xs[4];
    if ((st = opl_loader_batch(t->loader, OPL_SPLIT_TEST, 0, k, t->tx, t->ty, &B, NULL, err))) break;
    memcpy(xs, li->in_shape, sizeof xs);
    xs[0] = B;
    if ((st = opl_task_infer(t->ctx, &t->model, &t->cfg.task, t->xn, t->yn, li->rank, xs, t->tx, t->tp, t->tw, err)))
      break;
    opl_rel_l2_per_sample(t->tp, t->ty, B, li->cout * li->nx * li->ny, t->rel, NULL);
    for (int64_t j = 0; j < B; j++) sum += t->rel[j];
  }
  if (!st) *test_l2 = sum / (double)li->n[1];
  return st;
}

int opl_trainer_epoch(opl_trainer *t, opl_epoch_stats *s, opl_err *err) {
  if (!t) return opl_err_set(err, OPL_ERR_ARG, "train: NULL trainer");
  int st;
  if (!t->log && t->csv && *t->csv && !(t->log = opl_metrics_log_open(t->csv, t->epoch, err))) return err ? err->status : OPL_ERR_IO;
  const opl_loader_info *li = t->li;
  double t0 = now_s(), lr = opl_optim_get_lr(t->opt), loss = 0, l2 = 0;
  int64_t seen = 0;
  for (int64_t k = 0; k < li->nbatch[0]; k++) {
    opl_step_stats ss;
    if ((st = opl_trainer_step(t, k, &ss, err))) return st;
    loss += ss.loss;
    l2 += ss.l2_sum;
    seen += ss.bsize;
  }
  OPL_ASSERT(seen == li->n[0], "an epoch saw %lld of %lld training samples", (long long)seen, (long long)li->n[0]);
  double t1 = now_s();
  t->epoch++;
  opl_sched_steplr_step(&t->sched, t->opt);
  double test = NAN;
  if ((st = opl_trainer_test(t, &test, err))) return st;
  double steps = t->cfg.task.kind == OPL_TASK_ROLLOUT ? (double)t->cfg.task.t_out : 1.0;
  opl_epoch_stats es = {
      .epoch = t->epoch,
      .train_loss = loss / (double)li->n[0] / steps,
      .train_l2 = l2 / (double)li->n[0],
      .test_l2 = test,
      .lr = lr,
      .seconds = now_s() - t0,
      .train_seconds = t1 - t0,
      .samples_per_s = (t1 > t0) ? (double)li->n[0] / (t1 - t0) : NAN,
  };
  t->last_test = test;
  t->last_loss = es.train_loss;
  if (s) *s = es;
  if (t->log && (st = opl_metrics_log_write(t->log, &es, err))) return st;
  int due = t->epoch == t->cfg.epochs || (t->cfg.checkpoint_every > 0 && t->epoch % t->cfg.checkpoint_every == 0);
  if (t->checkpoint && due && (st = opl_trainer_save(t, NULL, err))) return st;
  return OPL_OK;
}

int opl_trainer_run(opl_trainer *t, opl_train_progress_fn cb, void *user, opl_err *err) {
  if (!t) return opl_err_set(err, OPL_ERR_ARG, "train: NULL trainer");
  while (t->epoch < t->cfg.epochs) {
    opl_epoch_stats s;
    int st = opl_trainer_epoch(t, &s, err);
    if (st) return st;
    if (cb && cb(&s, user)) {
      int saved = t->epoch == t->cfg.epochs ||
                  (t->cfg.checkpoint_every > 0 && t->epoch % t->cfg.checkpoint_every == 0);
      if (t->checkpoint && !saved) return opl_trainer_save(t, NULL, err);
      return OPL_OK;
    }
  }
  return OPL_OK;
}

/* ================================================================ checkpoints */

/* Training attributes: key names (one table so that writer, reader and resume agree). */
#define K_TASK "train.task"
#define K_TARGET "train.target_frame"
#define K_TIN "train.t_in"
#define K_TOUT "train.t_out"
#define K_NTRAIN "train.ntrain"
#define K_NTEST "train.ntest"
#define K_BATCH "train.batch"
#define K_SUB "train.sub"
#define K_NX "train.nx"
#define K_NY "train.ny"
#define K_NORM "train.normalize"
#define K_SHUFFLE "train.shuffle"
#define K_SEED "train.seed"
#define K_LR "train.lr"
#define K_WD "train.weight_decay"
#define K_STEP "train.step_size"
#define K_GAMMA "train.gamma"
#define K_CLIP "train.clip_grad"
#define K_OPTIM "train.optimizer"
#define K_EPOCHS "train.epochs"
#define K_EPOCH "train.epoch"
#define K_BASELR "train.sched.base_lr"
#define K_LAST "train.sched.last_epoch"
#define K_RNGK "train.rng.key"
#define K_RNGC "train.rng.counter"
#define K_DATASET "train.dataset"
#define K_DSN "train.dataset_n"
#define K_TESTL2 "train.test_l2"
#define K_LOSS "train.train_loss"
#define K_THREADS "train.threads"
#define K_WISDOM "train.fftw_wisdom"
#define TRAIN_META_MAX 40

static const char *norm_name(int n) { return n == OPL_NORMALIZE_GAUSSIAN ? "gaussian" : "none"; }

/* Optimizer state. core/optim.h names its state tensors "adam.m/<param>", but core/io.h
 * accepts no '/' in a dataset name (so opl_checkpoint_save cannot write an optimizer's state
 * set as it is). Each state tensor is therefore written as dataset <param> in the group
 * /optim/<prefix> (h5py sees /optim/adam.m/fc0.weight; "step" is /optim/step), through a
 * shallow copy of the tensor struct that carries the short name and shares the data. */
static void state_split(const char *name, char *group, size_t gcap, char *leaf /* [64] */) {
  const char *sl = strrchr(name, '/');
  if (sl) {
    snprintf(group, gcap, "/optim/%.*s", (int)(sl - name), name);
    snprintf(leaf, 64, "%s", sl + 1);
  } else {
    snprintf(group, gcap, "/optim");
    snprintf(leaf, 64, "%s", name);
  }
}

static void put_optim(opl_h5w *w, const opl_params *st, opl_err *e) {
  opl_h5w_group(w, "/optim", e);
  for (int i = 0; i < st->n; i++) {
    char group[160];
    opl_tensor tmp = *st->t[i];
    state_split(st->t[i]->name, group, sizeof group, tmp.name);
    opl_h5w_put_tensor(w, group, &tmp, OPL_DT_NATIVE, e);
  }
}

/* Free staged state tensors (n of them) and the array. */
static void staged_free(opl_tensor **tmp, int n) {
  for (int i = 0; tmp && i < n; i++) opl_tensor_free(&tmp[i]);
  free(tmp);
}

/* Read every state tensor of st from r into heap temporaries *staged[st->n] and check them all
 * (shape, complex flag, and that each group holds no other dataset); st is not modified. */
static int load_optim(opl_h5r *r, const opl_params *st, const char *path, opl_tensor ***staged, opl_err *err) {
  opl_tensor **tmp = calloc((size_t)(st->n ? st->n : 1), sizeof *tmp);
  *staged = NULL;
  if (!tmp) return opl_err_set(err, OPL_ERR_NOMEM, "train: out of memory");
  int rc = OPL_OK;
  char b1[96], b2[96];
  for (int i = 0; i < st->n && !rc; i++) {
    char group[160], leaf[64], ds[240];
    state_split(st->t[i]->name, group, sizeof group, leaf);
    snprintf(ds, sizeof ds, "%s/%s", group, leaf);
    opl_err e;
    if (opl_h5r_read_tensor(r, ds, &tmp[i], &e)) {
      rc = opl_err_set(err, e.status, "train: cannot resume from '%s': optimizer state: %s", path, e.msg);
      break;
    }
    const opl_tensor *a = st->t[i], *b = tmp[i];
    if (!opl_shape_eq(a->rank, a->shape, b->rank, b->shape) || opl_is_complex(a) != opl_is_complex(b))
      rc = opl_err_set(err, OPL_ERR_SHAPE, "train: cannot resume from '%s': optimizer state '%s' is %s%s there, %s%s here",
                       path, ds, opl_shape_str(b1, b->rank, b->shape), opl_is_complex(b) ? " complex" : "",
                       opl_shape_str(b2, a->rank, a->shape), opl_is_complex(a) ? " complex" : "");
    /* no foreign datasets in the group (checked once per group: at its first tensor) */
    int first = 1;
    for (int j = 0; j < i && first; j++) {
      char g2[160], l2[64];
      state_split(st->t[j]->name, g2, sizeof g2, l2);
      first = strcmp(g2, group) != 0;
    }
    if (!rc && first) {
      int want = 0, have = 0;
      for (int j = 0; j < st->n; j++) {
        char g2[160], l2[64];
        state_split(st->t[j]->name, g2, sizeof g2, l2);
        want += strcmp(g2, group) == 0;
      }
      char **names = NULL;
      if (opl_h5r_list(r, group, &names, &have, &e))
        rc = opl_err_set(err, e.status, "train: cannot resume from '%s': %s", path, e.msg);
      else if (have != want)
        rc = opl_err_set(err, OPL_ERR_SHAPE, "train: cannot resume from '%s': group '%s' holds %d datasets, the optimizer has %d",
                         path, group, have, want);
      opl_h5_names_free(&names, have);
    }
  }
  if (rc) staged_free(tmp, st->n);
  else *staged = tmp;
  return rc;
}

int opl_trainer_save(opl_trainer *t, const char *path, opl_err *err) {
  if (!t) return opl_err_set(err, OPL_ERR_ARG, "train: NULL trainer");
  if (!path) path = t->checkpoint;
  if (!path) return opl_err_set(err, OPL_ERR_ARG, "train: no checkpoint path");
  opl_kv kv[OPL_FNO_META_MAX + TRAIN_META_MAX];
  int n = opl_fno_config_to_meta(&t->mcfg, kv);
  const opl_task *task = &t->cfg.task;
  uint64_t key = (uint64_t)t->rng.key[0] | ((uint64_t)t->rng.key[1] << 32);
  char *wisdom = opl_fft_wisdom_export(NULL); /* NULL (out of memory): stored as "" */
  opl_kv tk[] = {
      OPL_KVS(K_TASK, opl_task_name(task->kind)),
      OPL_KVI(K_TARGET, task->kind == OPL_TASK_STATIC ? t->target_frame : -1),
      OPL_KVI(K_TIN, task->kind == OPL_TASK_STATIC ? 0 : task->t_in),
      OPL_KVI(K_TOUT, task->kind == OPL_TASK_STATIC ? 0 : task->t_out),
      OPL_KVI(K_NTRAIN, t->cfg.ntrain),
      OPL_KVI(K_NTEST, t->cfg.ntest),
      OPL_KVI(K_BATCH, t->cfg.batch),
      OPL_KVI(K_SUB, t->cfg.sub),
      OPL_KVI(K_NX, t->li->nx),
      OPL_KVI(K_NY, t->li->ny),
      OPL_KVS(K_NORM, norm_name(t->normalize)),
      OPL_KVI(K_SHUFFLE, t->cfg.shuffle),
      OPL_KVI(K_SEED, (int64_t)t->cfg.seed),
      OPL_KVS(K_OPTIM, "adam"),
      OPL_KVD(K_LR, t->cfg.lr),
      OPL_KVD(K_WD, t->cfg.weight_decay),
      OPL_KVI(K_STEP, t->cfg.step_size),
      OPL_KVD(K_GAMMA, t->cfg.gamma),
      OPL_KVD(K_CLIP, t->cfg.clip_grad),
      OPL_KVI(K_EPOCHS, t->cfg.epochs),
      OPL_KVI(K_EPOCH, t->epoch),
      OPL_KVD(K_BASELR, t->sched.base_lr),
      OPL_KVI(K_LAST, t->sched.last_epoch),
      OPL_KVI(K_RNGK, (int64_t)key),
      OPL_KVI(K_RNGC, (int64_t)t->rng.counter),
      OPL_KVS(K_DATASET, t->dataset_name ? t->dataset_name : ""),
      OPL_KVI(K_DSN, opl_ds_get_info(t->ds)->dims.n),
      OPL_KVD(K_TESTL2, t->last_test),
      OPL_KVD(K_LOSS, t->last_loss),
      OPL_KVI(K_THREADS, opl_get_num_threads()),
      OPL_KVS(K_WISDOM, wisdom ? wisdom : ""),
  };
  int nt = (int)(sizeof tk / sizeof tk[0]);
  OPL_ASSERT(nt <= TRAIN_META_MAX);
  memcpy(kv + n, tk, sizeof tk);
  n += nt;
  opl_err e = {0};
  opl_h5w *w = opl_h5w_create(path, &e);
  int st;
  if (!w) {
    st = e.status;
  } else {
    /* The attributes of opl_checkpoint_save, so opl_checkpoint_load / opl_fno_load read it. */
    opl_h5w_attr_str(w, "/", "format", OPL_CHECKPOINT_FORMAT, &e);
    opl_h5w_attr_int(w, "/", "format_version", OPL_CHECKPOINT_VERSION, &e);
    opl_h5w_attr_str(w, "/", "opl_version", OPL_VERSION, &e);
    opl_h5w_attr_str(w, "/", "precision", OPL_PRECISION_NAME, &e);
    opl_h5w_attrs(w, "/", kv, n, &e);
    opl_h5w_put_params(w, "/model", &t->params, OPL_DT_NATIVE, &e);
    put_optim(w, opl_optim_state(t->opt), &e);
    if (t->xn) opl_normalizer_put(w, "normalizer_x", t->xn, &e);
    if (t->yn) opl_normalizer_put(w, "normalizer_y", t->yn, &e);
    st = opl_h5w_commit(&w, &e);
  }
  free(wisdom);
  if (st) return opl_err_set(err, st, "train: checkpoint '%s' not written: %s", path, e.msg);
  return OPL_OK;
}

/* Attribute readers over a kv list, with messages naming the file and key. */
static int kv_int(const opl_kv *kv, int n, const char *path, const char *key, int64_t *v, opl_err *err) {
  const opl_kv *e = opl_kv_find(kv, n, key);
  if (!e) return opl_err_set(err, OPL_ERR_NOTFOUND, "train: '%s' has no attribute '%s' (not a training checkpoint?)", path, key);
  if (e->type != OPL_KV_INT) return opl_err_set(err, OPL_ERR_FORMAT, "train: '%s': attribute '%s' must be an integer", path, key);
  *v = e->i;
  return OPL_OK;
}
static int kv_dbl(const opl_kv *kv, int n, const char *path, const char *key, double *v, opl_err *err) {
  const opl_kv *e = opl_kv_find(kv, n, key);
  if (!e) return opl_err_set(err, OPL_ERR_NOTFOUND, "train: '%s' has no attribute '%s' (not a training checkpoint?)", path, key);
  if (e->type == OPL_KV_REAL) *v = e->d;
  else if (e->type == OPL_KV_INT) *v = (double)e->i;
  else return opl_err_set(err, OPL_ERR_FORMAT, "train: '%s': attribute '%s' must be a number", path, key);
  return OPL_OK;
}
static int kv_str(const opl_kv *kv, int n, const char *path, const char *key, const char **v, opl_err *err) {
  const opl_kv *e = opl_kv_find(kv, n, key);
  if (!e) return opl_err_set(err, OPL_ERR_NOTFOUND, "train: '%s' has no attribute '%s' (not a training checkpoint?)", path, key);
  if (e->type != OPL_KV_STR || !e->s) return opl_err_set(err, OPL_ERR_FORMAT, "train: '%s': attribute '%s' must be a string", path, key);
  *v = e->s;
  return OPL_OK;
}

/* The training state recorded in a checkpoint. */
typedef struct ckpt_state {
  opl_trainer_config cfg;    /* strings NULL */
  opl_fno_config model;
  int normalize;             /* resolved */
  int64_t nx, ny, dataset_n, epoch, last_epoch;
  double base_lr;
  uint64_t rng_key, rng_counter;
  const char *dataset;       /* points into kv */
  const char *wisdom;        /* points into kv, may be "" */
} ckpt_state;

static int parse_state(const opl_kv *kv, int n, const char *path, ckpt_state *s, opl_err *err) {
  memset(s, 0, sizeof *s);
  s->cfg = opl_trainer_defaults();
  opl_err e;
  int st = opl_fno_config_from_meta(kv, n, &s->model, &e);
  if (st) return opl_err_set(err, st, "train: '%s': %s", path, e.msg);
  const char *task = NULL, *norm = NULL;
  int64_t kind = -1, seed = 0, shuffle = 0, sub = 0, key = 0, counter = 0;
  if ((st = kv_str(kv, n, path, K_TASK, &task, err))) return st;
  for (int k = 0; k < OPL_TASK_COUNT; k++)
    if (!strcmp(task, task_names[k])) kind = k;
  if (kind < 0) return opl_err_set(err, OPL_ERR_FORMAT, "train: '%s': unknown task '%s'", path, task);
  s->cfg.task.kind = (int)kind;
  if ((st = kv_int(kv, n, path, K_TARGET, &s->cfg.task.target_frame, err)) ||
      (st = kv_int(kv, n, path, K_TIN, &s->cfg.task.t_in, err)) ||
      (st = kv_int(kv, n, path, K_TOUT, &s->cfg.task.t_out, err)) ||
      (st = kv_int(kv, n, path, K_NTRAIN, &s->cfg.ntrain, err)) ||
      (st = kv_int(kv, n, path, K_NTEST, &s->cfg.ntest, err)) ||
      (st = kv_int(kv, n, path, K_BATCH, &s->cfg.batch, err)) || (st = kv_int(kv, n, path, K_SUB, &sub, err)) ||
      (st = kv_int(kv, n, path, K_NX, &s->nx, err)) || (st = kv_int(kv, n, path, K_NY, &s->ny, err)) ||
      (st = kv_str(kv, n, path, K_NORM, &norm, err)) || (st = kv_int(kv, n, path, K_SHUFFLE, &shuffle, err)) ||
      (st = kv_int(kv, n, path, K_SEED, &seed, err)) || (st = kv_dbl(kv, n, path, K_LR, &s->cfg.lr, err)) ||
      (st = kv_dbl(kv, n, path, K_WD, &s->cfg.weight_decay, err)) ||
      (st = kv_int(kv, n, path, K_STEP, &s->cfg.step_size, err)) ||
      (st = kv_dbl(kv, n, path, K_GAMMA, &s->cfg.gamma, err)) ||
      (st = kv_dbl(kv, n, path, K_CLIP, &s->cfg.clip_grad, err)) ||
      (st = kv_int(kv, n, path, K_EPOCHS, &s->cfg.epochs, err)) ||
      (st = kv_int(kv, n, path, K_EPOCH, &s->epoch, err)) || (st = kv_dbl(kv, n, path, K_BASELR, &s->base_lr, err)) ||
      (st = kv_int(kv, n, path, K_LAST, &s->last_epoch, err)) || (st = kv_int(kv, n, path, K_RNGK, &key, err)) ||
      (st = kv_int(kv, n, path, K_RNGC, &counter, err)) || (st = kv_int(kv, n, path, K_DSN, &s->dataset_n, err)) ||
      (st = kv_str(kv, n, path, K_DATASET, &s->dataset, err)))
    return st;
  if (kv_str(kv, n, path, K_WISDOM, &s->wisdom, NULL)) s->wisdom = "";
  if (strcmp(norm, "none") && strcmp(norm, "gaussian"))
    return opl_err_set(err, OPL_ERR_FORMAT, "train: '%s': attribute '%s' = '%s', expected none or gaussian", path, K_NORM, norm);
  s->normalize = !strcmp(norm, "gaussian") ? OPL_NORMALIZE_GAUSSIAN : OPL_NORMALIZE_NONE;
  s->cfg.normalize = s->normalize;
  s->cfg.sub = (int)sub;
  s->cfg.seed = (uint64_t)seed;
  s->cfg.shuffle = (int)shuffle;
  s->rng_key = (uint64_t)key;
  s->rng_counter = (uint64_t)counter;
  if (sub < 1 || sub > 1 << 30 || s->epoch < 0 || s->last_epoch < 0 || s->nx < 1 || s->ny < 1)
    return opl_err_set(err, OPL_ERR_FORMAT, "train: '%s': training attributes out of range (sub %lld, epoch %lld, nx %lld)",
                       path, (long long)sub, (long long)s->epoch, (long long)s->nx);
  return OPL_OK;
}

int opl_trainer_read_config(const char *path, opl_trainer_config *cfg, opl_fno_config *model,
                            int64_t *epochs_done, char *dataset, size_t dsize, opl_err *err) {
  if (!path || !cfg) return opl_err_set(err, OPL_ERR_ARG, "train: NULL path or configuration");
  opl_kv *kv = NULL;
  int n = 0;
  int st = opl_checkpoint_read_meta(path, &kv, &n, err);
  if (st) return st;
  ckpt_state s;
  st = parse_state(kv, n, path, &s, err);
  if (!st) {
    *cfg = s.cfg;
    if (model) *model = s.model;
    if (epochs_done) *epochs_done = s.epoch;
    if (dataset && dsize) snprintf(dataset, dsize, "%s", s.dataset);
  }
  opl_kv_free(&kv, n);
  return st;
}

/* OPL_ERR_ARG naming the first field where the checkpoint's state differs from t. */
static int compare_state(const opl_trainer *t, const ckpt_state *s, const char *path, opl_err *err) {
  const opl_fno_config *a = &t->mcfg, *b = &s->model;
  char m1[160], m2[160];
  snprintf(m1, sizeof m1, "d %d, width %lld, layers %d, proj %lld, in %lld, out %lld, modes %d %d %d, pad %lld %lld %lld",
           a->d, (long long)a->width, a->layers, (long long)a->proj_channels, (long long)a->in_channels,
           (long long)a->out_channels, a->modes[0], a->modes[1], a->modes[2], (long long)a->pad[0], (long long)a->pad[1],
           (long long)a->pad[2]);
  snprintf(m2, sizeof m2, "d %d, width %lld, layers %d, proj %lld, in %lld, out %lld, modes %d %d %d, pad %lld %lld %lld",
           b->d, (long long)b->width, b->layers, (long long)b->proj_channels, (long long)b->in_channels,
           (long long)b->out_channels, b->modes[0], b->modes[1], b->modes[2], (long long)b->pad[0], (long long)b->pad[1],
           (long long)b->pad[2]);
  if (strcmp(m1, m2))
    return opl_err_set(err, OPL_ERR_ARG, "train: cannot resume from '%s': it holds the model (%s), this run builds (%s)",
                       path, m2, m1);
  const opl_task *ta = &t->cfg.task, *tb = &s->cfg.task;
  struct { const char *key; int64_t mine, theirs; } ints[] = {
      {K_TASK, ta->kind, tb->kind},
      {K_TARGET, ta->kind == OPL_TASK_STATIC ? t->target_frame : -1, tb->target_frame},
      {K_TIN, ta->kind == OPL_TASK_STATIC ? 0 : ta->t_in, tb->t_in},
      {K_TOUT, ta->kind == OPL_TASK_STATIC ? 0 : ta->t_out, tb->t_out},
      {K_NTRAIN, t->cfg.ntrain, s->cfg.ntrain}, {K_NTEST, t->cfg.ntest, s->cfg.ntest},
      {K_BATCH, t->cfg.batch, s->cfg.batch}, {K_SUB, t->cfg.sub, s->cfg.sub},
      {K_NX, t->li->nx, s->nx}, {K_NY, t->li->ny, s->ny},
      {K_NORM, t->normalize, s->normalize}, {K_SHUFFLE, t->cfg.shuffle, s->cfg.shuffle},
      {K_SEED, (int64_t)t->cfg.seed, (int64_t)s->cfg.seed}, {K_STEP, t->cfg.step_size, s->cfg.step_size},
      {K_DSN, opl_ds_get_info(t->ds)->dims.n, s->dataset_n}};
  for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
    if (ints[i].mine != ints[i].theirs) {
      if (!strcmp(ints[i].key, K_TASK))
        return opl_err_set(err, OPL_ERR_ARG, "train: cannot resume from '%s': %s = %s there, %s in this run", path,
                           K_TASK, opl_task_name((int)ints[i].theirs), opl_task_name((int)ints[i].mine));
      if (!strcmp(ints[i].key, K_NORM))
        return opl_err_set(err, OPL_ERR_ARG, "train: cannot resume from '%s': %s = %s there, %s in this run", path,
                           K_NORM, norm_name((int)ints[i].theirs), norm_name((int)ints[i].mine));
      return opl_err_set(err, OPL_ERR_ARG, "train: cannot resume from '%s': %s = %lld there, %lld in this run", path,
                         ints[i].key, (long long)ints[i].theirs, (long long)ints[i].mine);
    }
  struct { const char *key; double mine, theirs; } dbls[] = {
      {K_LR, t->cfg.lr, s->cfg.lr}, {K_WD, t->cfg.weight_decay, s->cfg.weight_decay},
      {K_GAMMA, t->cfg.gamma, s->cfg.gamma}, {K_CLIP, t->cfg.clip_grad, s->cfg.clip_grad}};
  for (size_t i = 0; i < sizeof dbls / sizeof dbls[0]; i++)
    if (dbls[i].mine != dbls[i].theirs)
      return opl_err_set(err, OPL_ERR_ARG, "train: cannot resume from '%s': %s = %.17g there, %.17g in this run", path,
                         dbls[i].key, dbls[i].theirs, dbls[i].mine);
  return OPL_OK;
}

int opl_trainer_resume(opl_trainer *t, const char *path, opl_err *err) {
  if (!t || !path) return opl_err_set(err, OPL_ERR_ARG, "train: NULL trainer or path");
  opl_kv *kv = NULL;
  int n = 0;
  int st = opl_checkpoint_read_meta(path, &kv, &n, err);
  if (st) return st;
  ckpt_state s;
  opl_normalizer *xn = NULL, *yn = NULL;
  if ((st = parse_state(kv, n, path, &s, err)) || (st = compare_state(t, &s, path, err))) goto done;
  /* The file's checksum was verified by opl_checkpoint_read_meta. */
  opl_err e;
  opl_h5r *r = opl_h5r_open(path, &e);
  if (!r) {
    st = opl_err_set(err, e.status, "train: %s", e.msg);
    goto done;
  }
  if (s.normalize == OPL_NORMALIZE_GAUSSIAN &&
      (!(xn = opl_normalizer_get(r, "normalizer_x", &e)) || !(yn = opl_normalizer_get(r, "normalizer_y", &e))))
    st = opl_err_set(err, e.status, "train: cannot resume from '%s': %s", path, e.msg);
  /* The optimizer state is checked in full before the model is loaded (all or nothing); the
   * model load is all or nothing too; the optimizer state is copied last. */
  opl_params *ost = opl_optim_state(t->opt);
  opl_tensor **staged = NULL;
  if (!st) st = load_optim(r, ost, path, &staged, err);
  if (!st && (st = opl_h5r_load_params(r, "/model", &t->params, &e)))
    st = opl_err_set(err, st, "train: cannot resume from '%s': %s", path, e.msg);
  opl_h5r_close(&r);
  if (!st)
    for (int i = 0; i < ost->n; i++)
      memcpy(ost->t[i]->data, staged[i]->data, sizeof(opl_real) * (size_t)opl_nreal(ost->t[i]));
  staged_free(staged, ost->n);
  if (st) goto done;
  if (xn) {
    opl_normalizer_free(&t->xn);
    opl_normalizer_free(&t->yn);
    t->xn = xn;
    t->yn = yn;
    xn = yn = NULL;
  }
  t->rng.key[0] = (uint32_t)s.rng_key;
  t->rng.key[1] = (uint32_t)(s.rng_key >> 32);
  t->rng.counter = s.rng_counter;
  t->sched.base_lr = s.base_lr;
  t->sched.last_epoch = s.last_epoch;
  opl_optim_set_lr(t->opt, opl_sched_steplr_lr(&t->sched));
  t->epoch = s.epoch;
  /* The run's FFT algorithms: plans made from now on use the recorded wisdom. It must be
   * imported through opl_fft_wisdom_import (FFTW's thread support initialized first: raw
   * FFTW refuses threaded wisdom before that, and the resumed run then planned afresh). Wisdom
   * of another FFTW build or CPU is refused and ignored: the run continues with new plans. */
  if (s.wisdom && *s.wisdom) opl_fft_wisdom_import(s.wisdom, NULL);
  opl_metrics_log_close(&t->log); /* reopened by the next epoch, keeping rows 1..epoch */
done:
  opl_normalizer_free(&xn);
  opl_normalizer_free(&yn);
  opl_kv_free(&kv, n);
  return st;
}

/* ================================================================ evaluation */

void opl_trained_free(opl_trained *m) {
  if (!m) return;
  opl_params_free(&m->params);
  opl_normalizer_free(&m->xn);
  opl_normalizer_free(&m->yn);
  memset(m, 0, sizeof *m);
}

int opl_trained_load(const char *path, opl_trained *m, opl_err *err) {
  if (!path || !m) return opl_err_set(err, OPL_ERR_ARG, "eval: NULL path or model");
  memset(m, 0, sizeof *m);
  opl_params_init(&m->params);
  int st = opl_fno_load(path, &m->model, &m->params, err);
  if (st) return st;
  opl_kv *kv = NULL;
  int n = 0;
  if ((st = opl_checkpoint_read_meta(path, &kv, &n, err))) goto fail;
  if (!opl_kv_find(kv, n, K_TASK)) {
    /* A bare FNO file (opl_fno_save): a one-shot model a -> u, no normalization. */
    m->task = (opl_task){.kind = OPL_TASK_STATIC, .target_frame = -1};
    m->sub = 1;
    opl_kv_free(&kv, n);
    return OPL_OK;
  }
  ckpt_state s;
  st = parse_state(kv, n, path, &s, err);
  if (!st) {
    m->task = s.cfg.task;
    m->nx = s.nx;
    m->ny = s.ny;
    m->ntest = s.cfg.ntest;
    m->sub = s.cfg.sub;
    m->epochs = s.epoch;
    if (s.normalize == OPL_NORMALIZE_GAUSSIAN) {
      opl_err e;
      opl_h5r *r = opl_h5r_open(path, &e);
      if (!r || !(m->xn = opl_normalizer_get(r, "normalizer_x", &e)) ||
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
  memset(r, 0, sizeof *r);
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
  const opl_task *task = &m->task;
  int want_d = task->kind == OPL_TASK_STATIC ? info->dims.sdim : (task->kind == OPL_TASK_ROLLOUT ? 2 : 3);
  if (task->kind != OPL_TASK_STATIC && info->dims.sdim != 2)
    return opl_err_set(err, OPL_ERR_ARG, "eval: the model solves the %s task on 2-D data; '%s' is %d-D",
                       opl_task_name(task->kind), info->path, info->dims.sdim);
  if (m->model.cfg.d != want_d)
    return opl_err_set(err, OPL_ERR_ARG, "eval: the model is an FNO-%dd, '%s' holds %d-D data", m->model.cfg.d,
                       info->path, info->dims.sdim);
  if (task->kind != OPL_TASK_STATIC && task->t_in + task->t_out > info->dims.t)
    return opl_err_set(err, OPL_ERR_ARG, "eval: the model reads T_in = %lld frames and predicts T = %lld; '%s' has %lld frames",
                       (long long)task->t_in, (long long)task->t_out, info->path, (long long)info->dims.t);
  int64_t batch = o->batch > 0 ? o->batch : 20;
  opl_loader_opts lo = {.ntrain = 0, .ntest = ntest, .batch = batch, .sub = o->sub > 0 ? o->sub : 1};
  int st = opl_task_selections(task, &lo.in, &lo.out, err);
  if (st) return st;
  opl_loader *l = opl_loader_new(ds, &lo, err);
  if (!l) return err ? err->status : OPL_ERR_ARG;
  const opl_loader_info *li = opl_loader_get_info(l);
  opl_normalizer *xn = NULL, *yn = NULL;
  opl_ctx *c = NULL;
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
  if (keep) {
    r->input = malloc(sizeof(opl_real) * (size_t)(keep * li->cin * P));
    r->truth = malloc(sizeof(opl_real) * (size_t)(keep * li->cout * P));
    r->pred = malloc(sizeof(opl_real) * (size_t)(keep * li->cout * P));
  }
  /* Batches live in heap buffers: opl_task_infer resets the arena as it goes. */
  opl_real *bx = malloc(sizeof(opl_real) * (size_t)(batch * li->cin * P));
  opl_real *by = malloc(sizeof(opl_real) * (size_t)(batch * li->cout * P));
  opl_real *bp = malloc(sizeof(opl_real) * (size_t)(batch * li->cout * P));
  opl_real *bw = task->kind == OPL_TASK_ROLLOUT ? malloc(sizeof(opl_real) * (size_t)(batch * li->cin * P)) : NULL;
  c = opl_ctx_new(0);
  if (!c || !r->samples || !r->rel || !r->tnorm || (keep && (!r->input || !r->truth || !r->pred)) || !bx || !by ||
      !bp || (task->kind == OPL_TASK_ROLLOUT && !bw)) {
    st = opl_err_set(err, OPL_ERR_NOMEM, "eval: out of memory for %lld samples", (long long)ntest);
    goto done_buf;
  }
  for (int64_t k = o->warmup ? -1 : 0, off = 0; k < li->nbatch[1]; k++) {
    /* k = -1: the first batch once, untimed (FFT plans, arena) */
    int64_t kb = k < 0 ? 0 : k, B = 0, is[4];
    if ((st = opl_loader_batch(l, OPL_SPLIT_TEST, 0, kb, bx, by, &B, r->samples + off, err))) goto done_buf;
    memcpy(is, li->in_shape, sizeof is);
    is[0] = B;
    double t0 = now_s();
    st = opl_task_infer(c, &m->model, task, uxn, uyn, li->rank, is, bx, bp, bw, err);
    if (k >= 0) r->seconds += now_s() - t0;
    if (st) {
      if (err) {
        /* "task_infer: fno: ..." -> "eval: fno: ..." */
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", strncmp(err->msg, "task_infer: ", 12) ? err->msg : err->msg + 12);
        opl_err_set(err, st, "eval: %s", msg);
      }
      goto done_buf;
    }
    if (k < 0) continue;
    int64_t M = li->cout * P;
    opl_rel_l2_per_sample(bp, by, B, M, r->rel + off, r->tnorm + off);
    for (int64_t j = 0; j < B && off + j < keep; j++) {
      memcpy(r->input + (off + j) * li->cin * P, bx + j * li->cin * P, sizeof(opl_real) * (size_t)(li->cin * P));
      memcpy(r->truth + (off + j) * M, by + j * M, sizeof(opl_real) * (size_t)M);
      memcpy(r->pred + (off + j) * M, bp + j * M, sizeof(opl_real) * (size_t)M);
    }
    off += B;
  }
done_buf:
  free(bx);
  free(by);
  free(bp);
  free(bw);
done:
  opl_ctx_free(&c);
  opl_normalizer_free(&xn);
  opl_normalizer_free(&yn);
  opl_loader_free(&l);
  if (st) opl_eval_result_free(r);
  return st;
}
