/* opl train — the training loop. See trainer.h for the contract and the recipe.
 *
 * Structure: a training step is load batch (into arena tensors) -> opl_task_predict ->
 * opl_task_loss -> backward -> finiteness checks -> Adam; an epoch is the steps of the epoch's
 * shuffled order, StepLR, the test evaluation, the CSV row and a checkpoint when due. All
 * state needed to continue a run bit for bit is written by opl_trainer_save and read back by
 * opl_trainer_resume (checkpoint.c); everything else (the shuffle order) is a function of
 * (seed, epoch). The model is reached only through operators/model.h, the task only through
 * train/task.h.
 *
 * On more than one rank (mpirun, core/dist.h) every rank holds the whole model and the same
 * optimizer state and takes the contiguous rows [B r / P, B (r + 1) / P) of each global batch of
 * B samples (the sample order is the single-process one, a function of (seed, epoch)); the
 * objective is a sum over samples, so the sum of the ranks' gradients (bucketed allreduce
 * started during backward) is the single-process gradient up to the order of the additions.
 * The ranks agree on the step's status and loss sums after the forward pass and on the status
 * after the gradient sums, so a failure of one rank stops all with its message; only rank 0
 * evaluates the test split, writes the metrics and the checkpoints. A trajectory task's batch is
 * one solve: its norms and step decisions are summed and agreed over the ranks (node.h,
 * opl_nde_set_dist), so every rank takes the single-process step sequence, and its regularizer,
 * the whole batch's on every rank, is seeded on every rank but counted once in the sums. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "operators/node_model.h"
#include "train/trainer_internal.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static char *dup_str(const char *s) { return s ? strdup(s) : NULL; }

/* Copy the context's error into err with a prefix; returns the status. */
static int ctx_take(opl_ctx *c, opl_err *err, const char *what) {
  int st = opl_ctx_status(c);
  return opl_err_set(err, st ? st : OPL_ERR_STATE, "%s: %s", what, st ? opl_ctx_errmsg(c) : "no result");
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
  c.pct_start = 0.3;
  c.div_factor = 25;          /* torch.optim.lr_scheduler.OneCycleLR's defaults */
  c.final_div_factor = 1e4;
  c.seed = 0;
  c.checkpoint_every = 0;
  return c;
}

void opl_trainer_free(opl_trainer **pt) {
  if (!pt || !*pt) return;
  opl_trainer *t = *pt;
  opl_metrics_log_close(&t->log);
  opl_optim_free(&t->opt);
  opl_model_free(&t->model);
  opl_loader_free(&t->loader);
  opl_normalizer_free(&t->xn);
  opl_normalizer_free(&t->yn);
  opl_pino_free(&t->pino);
  opl_team_free(&t->team);
  opl_ctx_free(&t->ctx);
  opl_dist_grads_free(&t->dg);
  free(t->order);
  free(t->rel);
  free(t->bsamp);
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
  if (c->normalize < OPL_NORMALIZE_AUTO || c->normalize > OPL_NORMALIZE_SCALAR_U)
    return opl_err_set(err, OPL_ERR_ARG,
                       "train: normalize = %d, expected -1 (auto), 0 (none), 1 (gaussian) or 2 (scalar-u)",
                       c->normalize);
  if (!(isfinite(c->warmup_start_lr) && c->warmup_start_lr >= 0))
    return opl_err_set(err, OPL_ERR_ARG, "train: warmup_start_lr = %g, expected a finite value >= 0",
                       c->warmup_start_lr);
  if (!(isfinite(c->eta_min) && c->eta_min >= 0))
    return opl_err_set(err, OPL_ERR_ARG, "train: eta_min = %g, expected a finite value >= 0", c->eta_min);
  if (c->shuffle != 0 && c->shuffle != 1) return opl_err_set(err, OPL_ERR_ARG, "train: shuffle = %d, expected 0 or 1", c->shuffle);
  int st = opl_pino_check_weights(c->pde_weight, c->ic_weight, err);
  return st ? st : opl_task_check(&c->task, err);
}

/* OPL_OK if the model takes the batches of the loader (e.g. the FNO's modes fit the resolution),
 * else OPL_ERR_ARG with the model's reason, the axes described by the data's resolution. */
static int check_model_input(const opl_model *m, const opl_task *task, const opl_loader_info *li, int sub,
                             const char *path, opl_err *err) {
  int64_t S[3], shape[OPL_MAX_RANK];
  int d = opl_task_model_extents(task, li->sdim, li->nx, li->ny, S);
  if (d < 0) return opl_err_set(err, OPL_ERR_ARG, "train: bad task");
  char lab[3][512];
  const char *axis[3] = {lab[0], lab[1], lab[2]};
  static const char *name[2] = {"X", "Y"};
  for (int a = 0; a < d && a < 3; a++) {
    if (a < li->sdim)
      snprintf(lab[a], sizeof lab[a], "axis %s of '%s': %lld points (%lld / sub %d)", name[a], path, (long long)S[a],
               (long long)(S[a] * sub), sub);
    else
      snprintf(lab[a], sizeof lab[a], "the time axis (T = %lld frames predicted at once): %lld points",
               (long long)S[a], (long long)S[a]);
  }
  shape[0] = li->batch;
  shape[1] = m->in_channels;
  for (int a = 0; a < d; a++) shape[2 + a] = S[a];
  opl_err e;
  if (m->ops->check_input(m->self, d + 2, shape, axis, &e)) return opl_err_set(err, OPL_ERR_ARG, "train: %s", e.msg);
  return OPL_OK;
}

/* Data-parallel training on opl_dist_size() > 1 ranks: refuse what cannot be shared (a batch
 * with fewer samples than ranks; a trajectory task with per-sample times, whose solve stops at
 * the union of the batch's times), make the gradient buckets. A trajectory task's batch is
 * integrated with one adaptive step sequence: its solves are distributed (opl_node_model_set_dist
 * during each step), so every rank takes the whole batch's steps. */
static int dist_setup(opl_trainer *t, opl_err *err) {
  const int64_t P = opl_dist_size(), nb = t->li->nbatch[0], last = t->li->n[0] - (nb - 1) * t->li->batch;
  const int64_t least = last < t->li->batch ? last : t->li->batch;
  if (P > least)
    return opl_err_set(err, OPL_ERR_ARG,
                       "train: %lld ranks but %s holds %lld samples: every rank takes a share of every batch, so at most "
                       "%lld ranks (or a larger --batch, or an --ntrain that batch divides)",
                       (long long)P, last < t->li->batch ? "the last batch of an epoch" : "a batch (--batch)",
                       (long long)least, (long long)least);
  if (t->cfg.task.kind == OPL_TASK_TRAJECTORY && t->cfg.task.times_ps)
    return opl_err_set(err, OPL_ERR_ARG,
                       "train: the trajectory task with per-sample times stops its one solve of a batch at the union "
                       "of the batch's times, which %lld ranks holding a share each cannot form; run it on one process",
                       (long long)P);
  t->order = malloc(sizeof(int64_t) * (size_t)t->li->n[0]);
  t->order_epoch = -1;
  if (!t->order) return opl_err_set(err, OPL_ERR_NOMEM, "train: out of memory");
  t->dg = opl_dist_grads_new(&t->model.params, 0, err);
  return t->dg ? OPL_OK : (err ? err->status : OPL_ERR_NOMEM);
}

opl_trainer *opl_trainer_new(const opl_trainer_config *cfg, const opl_model_kind *kind, const void *model_config,
                             opl_ds *ds, opl_err *err) {
  if (!cfg || !kind || !model_config || !ds) {
    opl_err_set(err, OPL_ERR_ARG, "train: NULL %s",
                !cfg ? "configuration" : (!kind || !model_config ? "model kind or configuration" : "data set"));
    return NULL;
  }
  if (config_check(cfg, err)) return NULL;
  const opl_ds_info *info = opl_ds_get_info(ds);
  const opl_task *task = &cfg->task;
  int sdim = info->dims.sdim;
  opl_err de;
  if (opl_task_check_data(task, info, &de)) {
    opl_err_set(err, de.status, "train: %s", de.msg);
    return NULL;
  }
  opl_trainer *t = calloc(1, sizeof *t);
  if (!t) {
    opl_err_set(err, OPL_ERR_NOMEM, "train: out of memory");
    return NULL;
  }
  t->cfg = *cfg;
  t->ds = ds;
  /* A trajectory task reads the data set's snapshot times. */
  if (opl_task_set_data(&t->cfg.task, info, &de)) {
    opl_err_set(err, de.status, "train: %s", de.msg);
    free(t);
    return NULL;
  }
  task = &t->cfg.task;
  if (opl_pino_new(task, cfg->pde_weight, cfg->ic_weight, info, &t->pino, &de)) {
    opl_err_set(err, de.status, "train: %s", de.msg);
    free(t);
    return NULL;
  }
  t->last_test = t->last_loss = t->last_test_nfe = NAN;
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
  t->normalize = opl_task_resolve_normalize(task, sdim, cfg->normalize);
  if (t->normalize == OPL_NORMALIZE_GAUSSIAN && !opl_task_normalizable(task)) {
    opl_err_set(err, OPL_ERR_ARG,
                "train: per-point normalization is not available for the rollout task (predictions are fed back as "
                "inputs; fourier_2d_time.py does not normalize): use normalize none");
    goto fail;
  }
  if (t->normalize == OPL_NORMALIZE_SCALAR_U && task->kind != OPL_TASK_STATIC) {
    opl_err_set(err, OPL_ERR_ARG, "train: normalize scalar-u (the target by one scalar mean and std) takes the "
                "one-shot task (a -> u), not %s", opl_task_name(task->kind));
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
  t->target_frame = opl_task_frames(task) ? -1 : t->li->out_t0;
  t->cfg.task.target_frame = opl_task_frames(task) ? task->target_frame : t->target_frame;
  /* The model: the task sets its shape, the seed its initial values. */
  if (opl_model_spec_set(&t->spec, kind, model_config, err) ||
      opl_task_model_config(task, sdim, kind, t->spec.config.bytes, err))
    goto fail;
  opl_rng_seed(&t->rng, cfg->seed);
  if (opl_model_create_spec(&t->model, &t->spec, &t->rng, err) ||
      check_model_input(&t->model, task, t->li, cfg->sub, info->path, err))
    goto fail;
  if (t->normalize == OPL_NORMALIZE_GAUSSIAN &&
      (!(t->xn = opl_normalizer_fit_loader(t->loader, 0, opl_task_norm_kind(task), err)) ||
       !(t->yn = opl_normalizer_fit_loader(t->loader, 1, opl_task_norm_kind(task), err))))
    goto fail;
  if (t->normalize == OPL_NORMALIZE_SCALAR_U && !(t->yn = opl_normalizer_fit_loader(t->loader, 1, OPL_NORM_GAUSSIAN, err)))
    goto fail;
  if (cfg->loss != OPL_LOSS_L2 && cfg->loss != OPL_LOSS_H1 && cfg->loss != OPL_LOSS_L2_FIELD) {
    opl_err_set(err, OPL_ERR_ARG, "train: loss %d, expected l2, h1 or l2-field", cfg->loss);
    goto fail;
  }
  if (cfg->loss == OPL_LOSS_L2_FIELD && (opl_task_loss_terms(task) != 1 || opl_task_continuous(task))) {
    opl_err_set(err, OPL_ERR_ARG, "train: the l2-field loss takes a task predicting the target at once (static, "
                "space-time or the one-step task), not the %s task", opl_task_name(task->kind));
    goto fail;
  }
  if (opl_schedule_parse(opl_schedule_name(cfg->schedule)) < 0 || !(cfg->pct_start > 0 && cfg->pct_start < 1) ||
      cfg->warmup < 0) {
    opl_err_set(err, OPL_ERR_ARG, "train: schedule %d, pct_start %g, warmup %lld: expected "
                "step|onecycle|cosine|warmup-cosine, 0 < pct_start < 1, warmup >= 0", cfg->schedule, cfg->pct_start,
                (long long)cfg->warmup);
    goto fail;
  }
  if (!(isfinite(cfg->div_factor) && cfg->div_factor > 0 && isfinite(cfg->final_div_factor) &&
        cfg->final_div_factor > 0)) {
    opl_err_set(err, OPL_ERR_ARG, "train: OneCycle div_factor %g, final_div_factor %g: expected finite values > 0",
                cfg->div_factor, cfg->final_div_factor);
    goto fail;
  }
  if (cfg->loss == OPL_LOSS_H1 && (task->kind != OPL_TASK_STATIC || t->li->rank != 4)) {
    opl_err_set(err, OPL_ERR_ARG, "train: the H1 loss takes a one-shot 2-D task (a -> u on a 2-D grid)");
    goto fail;
  }
  if (cfg->sched_epochs < 0) {
    opl_err_set(err, OPL_ERR_ARG, "train: sched_epochs %lld, expected >= 0", (long long)cfg->sched_epochs);
    goto fail;
  }
  if (t->cfg.sched_epochs == 0 && cfg->schedule != OPL_SCHEDULE_STEP) t->cfg.sched_epochs = cfg->epochs;
  opl_optim_kind ok = cfg->adamw ? OPL_OPTIM_ADAMW : OPL_OPTIM_ADAM;
  opl_optim_config oc = opl_optim_defaults(ok);
  oc.lr = cfg->lr;
  oc.weight_decay = cfg->weight_decay;
  if (!(t->opt = opl_optim_create(ok, &t->model.params, &oc, err))) goto fail;
  if (opl_sched_steplr_init(&t->sched, t->opt, cfg->lr, cfg->step_size, cfg->gamma, err)) goto fail;
  opl_trainer_sync_lr(t);
  if (opl_dist_size() > 1 && dist_setup(t, err)) goto fail;
  t->ctx = opl_ctx_new(0);
  t->team = t->ctx ? opl_team_new_from(t->ctx, 0) : NULL;
  t->rel = malloc(sizeof(double) * (size_t)cfg->batch);
  t->bsamp = malloc(sizeof(int64_t) * (size_t)cfg->batch);
  int64_t P = t->li->nx * t->li->ny, nin = cfg->batch * t->li->cin * P, nout = cfg->batch * t->li->cout * P;
  if (cfg->ntest > 0) {
    t->tx = malloc(sizeof(opl_real) * (size_t)nin);
    t->ty = malloc(sizeof(opl_real) * (size_t)nout);
    t->tp = malloc(sizeof(opl_real) * (size_t)nout);
    t->tw = opl_task_stepwise(task) ? malloc(sizeof(opl_real) * (size_t)nin) : NULL;
  }
  if (!t->ctx || !t->team || !t->rel || !t->bsamp ||
      (cfg->ntest > 0 && (!t->tx || !t->ty || !t->tp || (opl_task_stepwise(task) && !t->tw)))) {
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
const opl_model *opl_trainer_model(const opl_trainer *t) { return t ? &t->model : NULL; }
opl_params *opl_trainer_params(opl_trainer *t) { return t ? &t->model.params : NULL; }
opl_params *opl_trainer_optim_state(opl_trainer *t) { return t ? opl_optim_state(t->opt) : NULL; }
const opl_loader_info *opl_trainer_loader_info(const opl_trainer *t) { return t ? t->li : NULL; }
const opl_trainer_config *opl_trainer_get_config(const opl_trainer *t) { return t ? &t->cfg : NULL; }
opl_ctx *opl_trainer_ctx(opl_trainer *t) { return t ? t->ctx : NULL; }
int opl_trainer_dist_stats(const opl_trainer *t, opl_dist_grads_stats *s) {
  if (!t || !t->dg) return 0;
  opl_dist_grads_get_stats(t->dg, s);
  return 1;
}

/* The ONECYCLE / COSINE / WARMUP_COSINE rate at step s of the schedule (base or maximum rate: the
 * StepLR scheduler's base_lr, so opl_trainer_set_lr and checkpoints treat every schedule alike). */
static double sched_lr(const opl_trainer *t, int64_t s) {
  int64_t total = t->cfg.sched_epochs * (t->cfg.sched_per_step ? t->li->nbatch[0] : 1);
  if (t->cfg.schedule == OPL_SCHEDULE_ONECYCLE)
    return opl_onecycle_lr(t->sched.base_lr, total, t->cfg.pct_start, t->cfg.div_factor, t->cfg.final_div_factor, s);
  if (t->cfg.schedule == OPL_SCHEDULE_WARMUP_COSINE)
    return opl_warmup_cosine_lr(t->sched.base_lr, t->cfg.warmup, total, t->cfg.warmup_start_lr, t->cfg.eta_min, s);
  return opl_cosine_warmup_lr(t->sched.base_lr, t->cfg.warmup, total, s);
}

void opl_trainer_sync_lr(opl_trainer *t) {
  if (t->cfg.schedule == OPL_SCHEDULE_STEP) {
    opl_optim_set_lr(t->opt, opl_sched_steplr_lr(&t->sched), NULL);
    return;
  }
  opl_optim_set_lr(t->opt, sched_lr(t, t->cfg.sched_per_step ? t->epoch * t->li->nbatch[0] : t->epoch), NULL);
}

int opl_trainer_set_lr(opl_trainer *t, double lr, opl_err *err) {
  if (!t) return opl_err_set(err, OPL_ERR_ARG, "train: NULL trainer");
  if (!(isfinite(lr) && lr >= 0)) return opl_err_set(err, OPL_ERR_ARG, "train: lr = %g, expected a finite value >= 0", lr);
  t->sched.base_lr = lr;
  opl_trainer_sync_lr(t);
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

/* Batch k (of B samples) of epoch e on the trainer's context, from a reset: the prediction, the
 * target, the data loss and the total with the regularizer (NULL on failure; err filled), the
 * solver's statistics of the prediction in solver[0..3) and the local regularizer's evaluations in
 * solver[3] (-1 for a task without a solver), the regularizer term lambda R in *reg (NULL
 * allowed), the physics losses phys = {PDE residual, initial condition} added to the total (NAN
 * when off). A function of the
 * parameters, the data and (seed, epoch, batch): a second call repeats the same computation. */
static int step_forward(opl_trainer *t, int64_t k, int64_t B, int64_t r0, int64_t e, opl_tensor **pred,
                        opl_tensor **yt, opl_tensor **loss, opl_tensor **total, int64_t solver[4], double *reg,
                        double phys[2], opl_err *err) {
  const opl_loader_info *li = t->li;
  opl_ctx *c = t->ctx;
  opl_ctx_reset(c);
  opl_ctx_clear_error(c);
  opl_ctx_set_grad_enabled(c, 1);
  int64_t bs = 0;
  opl_tensor *x = NULL, *y = NULL;
  int st;
  t->read_agreed = 0;
  if (t->order) { /* a rank's rows [r0, r0 + B) of the global batch k */
    st = batch_tensors(c, li, B, &x, &y) ? OPL_OK : ctx_take(c, err, "train");
    if (!st && t->order_epoch != t->epoch) {
      if (!(st = opl_loader_order(t->loader, OPL_SPLIT_TRAIN, t->epoch, t->order, err))) t->order_epoch = t->epoch;
    }
    if (!st) {
      memcpy(t->bsamp, t->order + k * li->batch + r0, sizeof(int64_t) * (size_t)B);
      st = opl_loader_read(t->loader, t->bsamp, B, x->data, y->data, err);
    }
    if (!st && opl_dist_fault("read"))
      st = opl_err_set(err, OPL_ERR_IO, "train: epoch %lld, batch %lld: read failure injected by OPL_DIST_FAULT",
                       (long long)e, (long long)(k + 1));
    /* A continuous task's forward holds collectives (its distributed solve's norms are sums
     * over ranks, opl_trainer_step): a rank whose read failed must stop the others before it,
     * or they would wait there. */
    if (opl_task_continuous(&t->cfg.task) && (st = opl_dist_agree(st, err, NULL, 0))) {
      t->read_agreed = 1;
      return st;
    }
    bs = B;
  } else {
    if (!batch_tensors(c, li, B, &x, &y)) return ctx_take(c, err, "train");
    st = opl_loader_batch(t->loader, OPL_SPLIT_TRAIN, t->epoch, k, x->data, y->data, &bs, t->bsamp, err);
  }
  if (st) return st;
  opl_task_set_batch(&t->cfg.task, t->bsamp, bs);
  OPL_ASSERT(bs == B, "loader batch of %lld samples, expected %lld", (long long)bs, (long long)B);
  opl_params_zero_grad(&t->model.params);
  /* The trajectory task's window of this batch and the regularizer's draw: functions of (seed,
   * epoch, batch), so a resumed run draws the same. */
  opl_task_window(&t->cfg.task, t->cfg.seed, e, k);
  uint64_t rseed = (t->cfg.seed * 0x9e3779b97f4a7c15ULL) ^ ((uint64_t)e << 32) ^ (uint64_t)k;
  *pred = opl_task_predict(c, &t->model, &t->cfg.task, t->xn, t->yn, x);
  *yt = opl_task_target(c, &t->cfg.task, y);
  if (t->cfg.loss == OPL_LOSS_H1) *loss = opl_h1_rel_loss(c, *pred, *yt, OPL_REDUCE_SUM);
  else if (t->cfg.loss == OPL_LOSS_L2_FIELD) /* on the normalized fields, as SineNet's authors (train/loss.h) */
    *loss = opl_field_rel_l2_loss(c, t->yn ? opl_normalizer_encode_op(c, t->yn, *pred) : *pred,
                                  t->yn ? opl_normalizer_encode_op(c, t->yn, *yt) : *yt, OPL_REDUCE_SUM);
  else *loss = opl_task_loss(c, &t->cfg.task, *pred, *yt);
  solver[0] = solver[1] = solver[2] = solver[3] = -1;
  opl_task_solver_stats(&t->cfg.task, &t->model, &solver[0], &solver[1], &solver[2]);
  *total = opl_task_regularize(c, &t->model, &t->cfg.task, *loss, e, t->cfg.epochs, rseed, reg);
  phys[0] = phys[1] = NAN;
  *total = opl_pino_loss(c, t->pino, *total, *pred, x, &phys[0], &phys[1]);
  if (!*total) return ctx_take(c, err, "train");
  solver[3] = opl_task_local_nfe(&t->cfg.task, &t->model);
  return OPL_OK;
}

/* Why batch k's gradient is not finite: the step is rerun (step_forward repeats it) with the
 * tape's fault finding on (opl_ctx_set_grad_check), which names the op whose backward made the
 * first non-finite value. Writes ": ..." (or "" when the rerun finds nothing) into why[cap] and
 * the advice into hint[hcap]; leaves the parameters' gradients zero. */
static void explain_nonfinite_grad(opl_trainer *t, int64_t k, int64_t B, int64_t r0, int64_t e, char *why, size_t cap,
                                   char *hint, size_t hcap) {
  opl_tensor *pred, *yt, *loss, *total;
  int64_t solver[4];
  double phys[2];
  opl_err e2 = {0};
  opl_grad_fault f = {.kind = OPL_GRAD_FAULT_NONE, .op = "", .node = -1};
  int was = opl_ctx_set_grad_check(t->ctx, 1);
  if (!step_forward(t, k, B, r0, e, &pred, &yt, &loss, &total, solver, NULL, phys, &e2) && !opl_backward(t->ctx, total))
    opl_ctx_grad_fault(t->ctx, &f);
  opl_ctx_set_grad_check(t->ctx, was);
  opl_ctx_clear_error(t->ctx);
  opl_params_zero_grad(&t->model.params);
  snprintf(hint, hcap, "lower the learning rate, or clip gradients");
  why[0] = 0;
  switch (f.kind) {
  case OPL_GRAD_FAULT_INF:
    snprintf(why, cap,
             ": the gradient overflowed %s precision in the backward pass of op '%s' (gradients up to %.3g entered "
             "it, inputs up to %.3g); an Inf times a zero derivative then gives NaN",
             OPL_PRECISION_NAME, f.op, f.grad_out_max, f.value_max);
    snprintf(hint, hcap, "lower the learning rate; clipping cannot help an overflow inside the backward pass");
    break;
  case OPL_GRAD_FAULT_NAN:
    snprintf(why, cap, ": the backward pass of op '%s' (tape node %lld) made a NaN from finite values (gradients up "
             "to %.3g entered it, inputs up to %.3g)", f.op, (long long)f.node, f.grad_out_max, f.value_max);
    break;
  case OPL_GRAD_FAULT_FORWARD:
    snprintf(why, cap, ": op '%s' (tape node %lld) has non-finite forward values", f.op, (long long)f.node);
    break;
  default:
    break;
  }
}

static int trainer_step(opl_trainer *t, int64_t k, opl_step_stats *s, opl_err *err) {
  const opl_loader_info *li = t->li;
  int64_t nb = li->nbatch[0], e = t->epoch + 1;
  if (k < 0 || k >= nb)
    return opl_err_set(err, OPL_ERR_ARG, "train: batch %lld outside [0, %lld)", (long long)k, (long long)nb);
  opl_ctx *c = t->ctx;
  /* The TRUE size of batch k: the last one may be partial. Every tensor of the step has B
   * rows, so the summed loss counts each sample once (the reference's out.view(batch_size, -1)
   * with the nominal batch size would regroup the values of a partial batch into wrong rows). */
  int64_t B = li->n[0] - k * li->batch < li->batch ? li->n[0] - k * li->batch : li->batch;
  /* this rank's rows [r0, r0 + Bl) of the batch (all of it on one rank) */
  const int64_t P = opl_dist_size(), R = opl_dist_rank(), r0 = B * R / P, Bl = B * (R + 1) / P - r0;
  opl_tensor *pred, *yt, *loss, *total;
  int64_t solver[4] = {-1, -1, -1, -1};
  double reg = 0, phys[2];
  int st = step_forward(t, k, Bl, r0, e, &pred, &yt, &loss, &total, solver, &reg, phys, err);
  if (st && (P == 1 || t->read_agreed)) return st; /* (every rank returns: the read failure was agreed) */
  if (!st && opl_dist_fault("train"))
    st = opl_err_set(err, OPL_ERR_IO, "train: epoch %lld, batch %lld: failure injected by OPL_DIST_FAULT", (long long)e,
                     (long long)(k + 1));
  int64_t nfe = solver[0], acc = solver[1], rej = solver[2];
  double pde = st ? 0 : phys[0], ic = st ? 0 : phys[1];
  double lv = st ? 0 : (double)loss->data[0], tv = st ? 0 : (double)total->data[0];
  double l2 = 0;
  if (!st) {
    opl_rel_l2_per_sample(pred->data, yt->data, Bl, pred->numel / Bl, t->rel, NULL);
    for (int64_t j = 0; j < Bl; j++) l2 += t->rel[j];
  }
  if (P > 1) { /* every rank stops when one failed; the batch's sums over ranks */
    /* A continuous task's regularizer is the whole batch's on every rank (its solve is
     * distributed): rank 0 alone counts its value. */
    double sums[6] = {lv, R == 0 || reg == 0 ? tv : tv - reg, l2, R == 0 ? reg : 0, pde, ic};
    if ((st = opl_dist_agree(st, err, sums, 6))) return st;
    lv = sums[0], tv = sums[1], l2 = sums[2], reg = sums[3], pde = sums[4], ic = sums[5];
  }
  if (!isfinite(lv) || !isfinite(tv))
    return opl_err_set(err, OPL_ERR_NONFINITE,
                       "train: divergence at epoch %lld, batch %lld of %lld: the loss is %g%s; stopped before updating "
                       "the parameters (lower the learning rate, or clip gradients)",
                       (long long)e, (long long)(k + 1), (long long)nb, isfinite(lv) ? tv : lv,
                       isfinite(lv) ? (t->pino ? " with the physics losses" : " with the regularizer") : "");
  if (P == 1) {
    if (opl_backward(c, total)) return ctx_take(c, err, "train: backward");
  } else { /* the gradients summed over ranks, in buckets started during backward */
    opl_err be = {0};
    st = opl_dist_grads_begin(t->dg, c, &be);
    if (!st && opl_backward(c, total)) st = ctx_take(c, &be, "train: backward");
    int fst = opl_dist_grads_finish(t->dg, c, st ? NULL : &be);
    if ((st = opl_dist_agree(st ? st : fst, &be, NULL, 0))) return opl_err_set(err, st, "%s", be.msg);
  }
  opl_err ge;
  if (opl_params_check_finite_grad(&t->model.params, &ge)) {
    char why[400], hint[128];
    explain_nonfinite_grad(t, k, Bl, r0, e, why, sizeof why, hint, sizeof hint);
    return opl_err_set(err, OPL_ERR_NONFINITE,
                       "train: divergence at epoch %lld, batch %lld of %lld: %s (loss %g)%s; stopped before updating "
                       "the parameters (%s)",
                       (long long)e, (long long)(k + 1), (long long)nb, ge.msg, lv, why, hint);
  }
  if (t->cfg.clip_grad > 0) opl_params_clip_grad_norm(&t->model.params, t->cfg.clip_grad);
  int ost = opl_optim_step(t->opt, err);
  if (ost) return ost;
  if (t->cfg.schedule != OPL_SCHEDULE_STEP && t->cfg.sched_per_step)
    opl_optim_set_lr(t->opt, sched_lr(t, t->epoch * nb + k + 1), NULL);
  if (s) {
    s->bsize = B;
    s->loss = lv;
    s->l2_sum = l2;
    s->nfe = nfe;
    s->accepted = acc;
    s->rejected = rej;
    s->local_nfe = solver[3];
    s->reg = reg;
    s->pde_sum = pde;
    s->ic_sum = ic;
  }
  return OPL_OK;
}

int opl_trainer_step(opl_trainer *t, int64_t k, opl_step_stats *s, opl_err *err) {
  if (!t) return opl_err_set(err, OPL_ERR_ARG, "train: NULL trainer");
  /* on several ranks a continuous task's solves (forward and backward) are distributed during the
   * step only: the test pass runs on rank 0 alone */
  const int dist = opl_dist_size() > 1 && opl_task_continuous(&t->cfg.task);
  if (dist) opl_node_model_set_dist(&t->model, 1);
  int st = trainer_step(t, k, s, err);
  if (dist) opl_node_model_set_dist(&t->model, 0);
  return st;
}

int opl_trainer_test(opl_trainer *t, double *test_l2, opl_err *err) {
  if (!t || !test_l2) return opl_err_set(err, OPL_ERR_ARG, "train: NULL trainer or result");
  const opl_loader_info *li = t->li;
  *test_l2 = NAN;
  t->last_test_nfe = NAN;
  if (li->n[1] == 0) return OPL_OK;
  double sum = 0, nfe_sum = 0;
  int with_nfe = 0;
  int st = OPL_OK;
  for (int64_t k = 0; k < li->nbatch[1] && !st; k++) {
    int64_t B = 0, xs[4];
    if ((st = opl_loader_batch(t->loader, OPL_SPLIT_TEST, 0, k, t->tx, t->ty, &B, t->bsamp, err))) break;
    opl_task_set_batch(&t->cfg.task, t->bsamp, B);
    memcpy(xs, li->in_shape, sizeof xs);
    xs[0] = B;
    /* a samplewise model's batch cut over the team (one slice per thread; context 0 = ctx) */
    const int64_t P = li->nx * li->ny;
    if ((st = opl_task_infer_team(t->team, &t->model, &t->cfg.task, t->xn, t->yn, li->rank, xs, t->tx, t->tp,
                                  li->cout * P, t->tw, t->tw ? li->cin * P : 0, err)))
      break;
    opl_rel_l2_per_sample(t->tp, t->ty, B, li->cout * P, t->rel, NULL);
    for (int64_t j = 0; j < B; j++) sum += t->rel[j];
    int64_t nfe = 0;
    /* the batch's trajectories are integrated together: each took the solve's evaluations */
    if (opl_task_solver_stats(&t->cfg.task, &t->model, &nfe, NULL, NULL)) with_nfe = 1, nfe_sum += (double)nfe * (double)B;
  }
  if (!st) *test_l2 = sum / (double)li->n[1];
  if (!st && with_nfe) t->last_test_nfe = nfe_sum / (double)li->n[1];
  return st;
}

int opl_trainer_epoch(opl_trainer *t, opl_epoch_stats *s, opl_err *err) {
  if (!t) return opl_err_set(err, OPL_ERR_ARG, "train: NULL trainer");
  int st;
  const int lead = opl_dist_rank() == 0; /* rank 0 alone writes */
  if (lead && !t->log && t->csv && *t->csv &&
      !(t->log = opl_metrics_log_open_cols(t->csv, t->epoch,
                                           (opl_task_continuous(&t->cfg.task) ? OPL_METRICS_COLS_SOLVER : 0) |
                                               (t->pino ? OPL_METRICS_COLS_PINO : 0),
                                           err)))
    return err ? err->status : OPL_ERR_IO;
  const opl_loader_info *li = t->li;
  double t0 = now_s(), lr = opl_optim_get_lr(t->opt), loss = 0, l2 = 0, nfe = 0, acc = 0, rej = 0, lnfe = 0, reg = 0,
         pde = 0, ic = 0;
  int64_t seen = 0, solver = 1;
  for (int64_t k = 0; k < li->nbatch[0]; k++) {
    opl_step_stats ss;
    if ((st = opl_trainer_step(t, k, &ss, err))) return st;
    loss += ss.loss;
    l2 += ss.l2_sum;
    seen += ss.bsize;
    if (ss.nfe < 0) solver = 0;
    nfe += (double)ss.nfe, acc += (double)ss.accepted, rej += (double)ss.rejected;
    lnfe += (double)ss.local_nfe, reg += ss.reg;
    pde += ss.pde_sum, ic += ss.ic_sum;
  }
  OPL_ASSERT(seen == li->n[0], "an epoch saw %lld of %lld training samples", (long long)seen, (long long)li->n[0]);
  double t1 = now_s();
  t->epoch++;
  if (t->cfg.schedule == OPL_SCHEDULE_STEP) opl_sched_steplr_step(&t->sched, t->opt);
  else opl_trainer_sync_lr(t);
  double test = NAN;
  st = lead ? opl_trainer_test(t, &test, err) : OPL_OK;
  if (opl_dist_size() > 1) {
    double v = lead ? test : 0; /* rank 0's value to every rank */
    char after[48];
    snprintf(after, sizeof after, "train: after epoch %lld", (long long)t->epoch);
    if ((st = opl_dist_agree(st, err, &v, 1)) || (st = opl_dist_check_same(&t->model.params, after, err))) return st;
    test = v;
  }
  if (st) return st;
  double steps = (double)opl_task_loss_terms(&t->cfg.task);
  opl_epoch_stats es = {
      .epoch = t->epoch,
      .train_loss = loss / (double)li->n[0] / steps,
      .train_l2 = l2 / (double)li->n[0],
      .test_l2 = test,
      .lr = lr,
      .seconds = now_s() - t0,
      .train_seconds = t1 - t0,
      .samples_per_s = (t1 > t0) ? (double)li->n[0] / (t1 - t0) : NAN,
      .nfe = solver ? nfe / (double)li->nbatch[0] : NAN,
      .accepted = solver ? acc / (double)li->nbatch[0] : NAN,
      .rejected = solver ? rej / (double)li->nbatch[0] : NAN,
      .test_nfe = t->last_test_nfe,
      .local_nfe = solver ? lnfe / (double)li->nbatch[0] : NAN,
      /* the batch losses summed as opl_task_loss made them, as their regularizer terms */
      .reg_ratio = solver ? (loss > 0 ? reg / loss : 0) : NAN,
      .pde_loss = pde / (double)li->n[0],
      .ic_loss = ic / (double)li->n[0],
  };
  t->last_test = test;
  t->last_loss = es.train_loss;
  if (s) *s = es;
  int due = t->epoch == t->cfg.epochs || (t->cfg.checkpoint_every > 0 && t->epoch % t->cfg.checkpoint_every == 0);
  st = t->log ? opl_metrics_log_write(t->log, &es, err) : OPL_OK;
  if (!st && t->checkpoint && due) st = opl_trainer_save(t, NULL, err);
  return opl_dist_agree(st, err, NULL, 0);
}

int opl_trainer_run(opl_trainer *t, opl_train_progress_fn cb, void *user, opl_err *err) {
  if (!t) return opl_err_set(err, OPL_ERR_ARG, "train: NULL trainer");
  while (t->epoch < t->cfg.epochs) {
    opl_epoch_stats s;
    int st = opl_trainer_epoch(t, &s, err);
    if (st) return st;
    double stop = cb && cb(&s, user);
    if (opl_dist_size() > 1 && (st = opl_dist_agree(OPL_OK, err, &stop, 1))) return st; /* one rank's stop stops all */
    if (stop > 0) {
      int saved = t->epoch == t->cfg.epochs ||
                  (t->cfg.checkpoint_every > 0 && t->epoch % t->cfg.checkpoint_every == 0);
      if (t->checkpoint && !saved) return opl_trainer_save(t, NULL, err);
      return OPL_OK;
    }
  }
  return OPL_OK;
}
