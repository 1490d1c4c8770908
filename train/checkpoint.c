/* opl train — checkpoints of a trainer and resuming from them (see trainer.h).
 *
 * A checkpoint is the model file itself (opl_model_load reads it): the model's attributes
 * (its kind and configuration, to_meta) and /model, plus the training state below. The
 * model is reached only through operators/model.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/io.h"
#include "train/trainer_internal.h"

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
/* Written only by runs with physics losses (train/pino.h); absent means 0. */
#define K_PDEW "train.pde_weight"
#define K_ICW "train.ic_weight"
#define K_LOSSFN "train.loss_fn"
#define K_SCHED "train.schedule"
#define K_SUNIT "train.sched.per_step"
#define K_PCT "train.sched.pct_start"
/* Absent in checkpoints written before they were options: PyTorch's 25 and 1e4 then. */
#define K_DIV "train.sched.div_factor"
#define K_FDIV "train.sched.final_div_factor"
#define K_WARM "train.sched.warmup"
#define K_SEPOCHS "train.sched.epochs"
/* Absent in checkpoints written before the warmup-cosine schedule: 0 then (its defaults). */
#define K_WSTART "train.sched.warmup_start_lr"
#define K_ETAMIN "train.sched.eta_min"
#define TRAIN_META_MAX 56

static const char *norm_name(int n) {
  return n == OPL_NORMALIZE_GAUSSIAN ? "gaussian" : n == OPL_NORMALIZE_SCALAR_U ? "scalar-u" : "none";
}

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
    /* Adam's moments and step count must be finite (a NaN there would poison every later step) */
    for (int64_t k = 0; !rc && k < opl_nreal(b); k++)
      if (!isfinite((double)b->data[k]))
        rc = opl_err_set(err, OPL_ERR_NONFINITE, "train: cannot resume from '%s': optimizer state '%s' holds %g at index %lld",
                         path, ds, (double)b->data[k], (long long)k);
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
  if (opl_dist_rank() != 0) return OPL_OK; /* data-parallel training: rank 0 alone writes */
  opl_kv kv[OPL_MODEL_META_MAX + TRAIN_META_MAX];
  int n = t->model.ops->to_meta(t->model.self, kv);
  const opl_task *task = &t->cfg.task;
  uint64_t key = (uint64_t)t->rng.key[0] | ((uint64_t)t->rng.key[1] << 32);
  char *wisdom = opl_fft_wisdom_export(NULL); /* NULL (out of memory): stored as "" */
  opl_kv tk[] = {
      OPL_KVS(K_TASK, opl_task_name(task->kind)),
      OPL_KVI(K_TARGET, opl_task_frames(task) ? -1 : t->target_frame),
      OPL_KVI(K_TIN, opl_task_frames(task) ? task->t_in : 0),
      OPL_KVI(K_TOUT, opl_task_frames(task) ? task->t_out : 0),
      OPL_KVI(K_NTRAIN, t->cfg.ntrain),
      OPL_KVI(K_NTEST, t->cfg.ntest),
      OPL_KVI(K_BATCH, t->cfg.batch),
      OPL_KVI(K_SUB, t->cfg.sub),
      OPL_KVI(K_NX, t->li->nx),
      OPL_KVI(K_NY, t->li->ny),
      OPL_KVS(K_NORM, norm_name(t->normalize)),
      OPL_KVI(K_SHUFFLE, t->cfg.shuffle),
      OPL_KVI(K_SEED, (int64_t)t->cfg.seed),
      OPL_KVS(K_OPTIM, t->cfg.adamw ? "adamw" : "adam"),
      OPL_KVS(K_LOSSFN, opl_loss_name((opl_loss_kind)t->cfg.loss)),
      OPL_KVS(K_SCHED, opl_schedule_name(t->cfg.schedule)),
      OPL_KVI(K_SUNIT, t->cfg.sched_per_step),
      OPL_KVD(K_PCT, t->cfg.pct_start),
      OPL_KVD(K_DIV, t->cfg.div_factor),
      OPL_KVD(K_FDIV, t->cfg.final_div_factor),
      OPL_KVI(K_WARM, t->cfg.warmup),
      OPL_KVD(K_WSTART, t->cfg.warmup_start_lr),
      OPL_KVD(K_ETAMIN, t->cfg.eta_min),
      OPL_KVI(K_SEPOCHS, t->cfg.sched_epochs),
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
  OPL_ASSERT(nt + 2 <= TRAIN_META_MAX);
  memcpy(kv + n, tk, sizeof tk);
  n += nt;
  if (t->cfg.pde_weight != 0 || t->cfg.ic_weight != 0) {
    kv[n++] = (opl_kv)OPL_KVD(K_PDEW, t->cfg.pde_weight);
    kv[n++] = (opl_kv)OPL_KVD(K_ICW, t->cfg.ic_weight);
  }
  opl_err e = {0};
  opl_h5w *w = opl_h5w_create(path, &e);
  int st;
  if (!w) {
    st = e.status;
  } else {
    /* The attributes of opl_checkpoint_save, so opl_checkpoint_load / opl_model_load read it. */
    opl_h5w_attr_str(w, "/", "format", OPL_CHECKPOINT_FORMAT, &e);
    opl_h5w_attr_int(w, "/", "format_version", OPL_CHECKPOINT_VERSION, &e);
    opl_h5w_attr_str(w, "/", "opl_version", OPL_VERSION, &e);
    opl_h5w_attr_str(w, "/", "precision", OPL_PRECISION_NAME, &e);
    opl_h5w_attrs(w, "/", kv, n, &e);
    opl_h5w_put_params(w, "/model", &t->model.params, OPL_DT_NATIVE, &e);
    put_optim(w, opl_optim_state(t->opt), &e);
    if (t->xn) opl_normalizer_put(w, "normalizer_x", t->xn, &e);
    if (t->yn) opl_normalizer_put(w, "normalizer_y", t->yn, &e);
    /* A fresh run's metrics log takes its place beside the checkpoint it describes only now,
     * just BEFORE the checkpoint's rename: a process killed between the two renames leaves a
     * log whose rows a resume from the older checkpoint trims, never a checkpoint whose log is
     * still under the dead process's temporary name (a resume would then start a new log and
     * lose the rows of the epochs before). */
    opl_err le;
    if (t->log && path == t->checkpoint && (st = opl_metrics_log_commit(t->log, &le))) {
      opl_h5w_abort(&w);
      free(wisdom);
      return opl_err_set(err, st, "train: %s", le.msg);
    }
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

int opl_ckpt_parse_state(const opl_kv *kv, int n, const char *path, opl_ckpt_state *s, opl_err *err) {
  memset(s, 0, sizeof *s);
  s->cfg = opl_trainer_defaults();
  opl_err e;
  int st = opl_model_spec_from_meta(kv, n, &s->model, &e);
  if (st) return opl_err_set(err, st, "train: '%s': %s", path, e.msg);
  const char *task = NULL, *norm = NULL;
  int64_t kind = -1, seed = 0, shuffle = 0, sub = 0, key = 0, counter = 0;
  if ((st = kv_str(kv, n, path, K_TASK, &task, err))) return st;
  kind = opl_task_kind_from_name(task);
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
  if (opl_kv_find(kv, n, K_PDEW) && ((st = kv_dbl(kv, n, path, K_PDEW, &s->cfg.pde_weight, err)) ||
                                     (st = kv_dbl(kv, n, path, K_ICW, &s->cfg.ic_weight, err))))
    return st;
  if (!(isfinite(s->cfg.pde_weight) && s->cfg.pde_weight >= 0 && isfinite(s->cfg.ic_weight) && s->cfg.ic_weight >= 0))
    return opl_err_set(err, OPL_ERR_FORMAT, "train: '%s': attributes %s = %g, %s = %g, expected finite values >= 0", path,
                       K_PDEW, s->cfg.pde_weight, K_ICW, s->cfg.ic_weight);
  /* optimizer, loss and schedule: absent in checkpoints written before they were options */
  const char *optn = NULL, *lossn = NULL, *schedn = NULL;
  if (!kv_str(kv, n, path, K_OPTIM, &optn, NULL)) {
    if (strcmp(optn, "adam") && strcmp(optn, "adamw"))
      return opl_err_set(err, OPL_ERR_FORMAT, "train: '%s': attribute '%s' = '%s', expected adam or adamw", path, K_OPTIM, optn);
    s->cfg.adamw = !strcmp(optn, "adamw");
  }
  if (!kv_str(kv, n, path, K_LOSSFN, &lossn, NULL)) {
    if (opl_loss_parse(lossn) < 0)
      return opl_err_set(err, OPL_ERR_FORMAT, "train: '%s': attribute '%s' = '%s', expected l2, h1 or l2-field", path, K_LOSSFN, lossn);
    s->cfg.loss = opl_loss_parse(lossn);
  }
  if (!kv_str(kv, n, path, K_SCHED, &schedn, NULL)) {
    int64_t pu = 0;
    if (opl_schedule_parse(schedn) < 0)
      return opl_err_set(err, OPL_ERR_FORMAT,
                         "train: '%s': attribute '%s' = '%s', expected step, onecycle, cosine or warmup-cosine", path,
                         K_SCHED, schedn);
    s->cfg.schedule = opl_schedule_parse(schedn);
    if ((st = kv_int(kv, n, path, K_SUNIT, &pu, err)) || (st = kv_dbl(kv, n, path, K_PCT, &s->cfg.pct_start, err)) ||
        (st = kv_int(kv, n, path, K_WARM, &s->cfg.warmup, err)) ||
        (st = kv_int(kv, n, path, K_SEPOCHS, &s->cfg.sched_epochs, err)))
      return st;
    if ((opl_kv_find(kv, n, K_DIV) && (st = kv_dbl(kv, n, path, K_DIV, &s->cfg.div_factor, err))) ||
        (opl_kv_find(kv, n, K_FDIV) && (st = kv_dbl(kv, n, path, K_FDIV, &s->cfg.final_div_factor, err))))
      return st;
    if (!(isfinite(s->cfg.div_factor) && s->cfg.div_factor > 0 && isfinite(s->cfg.final_div_factor) &&
          s->cfg.final_div_factor > 0))
      return opl_err_set(err, OPL_ERR_FORMAT, "train: '%s': attributes %s = %g, %s = %g, expected finite values > 0",
                         path, K_DIV, s->cfg.div_factor, K_FDIV, s->cfg.final_div_factor);
    if ((opl_kv_find(kv, n, K_WSTART) && (st = kv_dbl(kv, n, path, K_WSTART, &s->cfg.warmup_start_lr, err))) ||
        (opl_kv_find(kv, n, K_ETAMIN) && (st = kv_dbl(kv, n, path, K_ETAMIN, &s->cfg.eta_min, err))))
      return st;
    if (!(isfinite(s->cfg.warmup_start_lr) && s->cfg.warmup_start_lr >= 0 && isfinite(s->cfg.eta_min) &&
          s->cfg.eta_min >= 0))
      return opl_err_set(err, OPL_ERR_FORMAT, "train: '%s': attributes %s = %g, %s = %g, expected finite values >= 0",
                         path, K_WSTART, s->cfg.warmup_start_lr, K_ETAMIN, s->cfg.eta_min);
    s->cfg.sched_per_step = pu != 0;
  }
  if (strcmp(norm, "none") && strcmp(norm, "gaussian") && strcmp(norm, "scalar-u"))
    return opl_err_set(err, OPL_ERR_FORMAT, "train: '%s': attribute '%s' = '%s', expected none or gaussian", path, K_NORM, norm);
  s->normalize = !strcmp(norm, "gaussian")   ? OPL_NORMALIZE_GAUSSIAN
                 : !strcmp(norm, "scalar-u") ? OPL_NORMALIZE_SCALAR_U
                                             : OPL_NORMALIZE_NONE;
  s->cfg.normalize = s->normalize;
  s->cfg.sub = (int)sub;
  s->cfg.seed = (uint64_t)seed;
  s->cfg.shuffle = (int)shuffle;
  s->rng_key = (uint64_t)key;
  s->rng_counter = (uint64_t)counter;
  if (sub < 1 || sub > 1 << 30 || s->epoch < 0 || s->last_epoch < 0 || s->nx < 1 || s->ny < 1)
    return opl_err_set(err, OPL_ERR_FORMAT, "train: '%s': training attributes out of range (sub %lld, epoch %lld, nx %lld)",
                       path, (long long)sub, (long long)s->epoch, (long long)s->nx);
  if (!(isfinite(s->base_lr) && s->base_lr >= 0))
    return opl_err_set(err, OPL_ERR_FORMAT, "train: '%s': attribute %s = %g, expected a finite value >= 0", path,
                       K_BASELR, s->base_lr);
  return OPL_OK;
}

int opl_ckpt_has_state(const opl_kv *kv, int n) { return opl_kv_find(kv, n, K_TASK) != NULL; }

int opl_trainer_read_config(const char *path, opl_trainer_config *cfg, opl_model_spec *model,
                            int64_t *epochs_done, char *dataset, size_t dsize, opl_err *err) {
  if (!path || !cfg) return opl_err_set(err, OPL_ERR_ARG, "train: NULL path or configuration");
  opl_kv *kv = NULL;
  int n = 0;
  int st = opl_checkpoint_read_meta(path, &kv, &n, err);
  if (st) return st;
  opl_ckpt_state s;
  st = opl_ckpt_parse_state(kv, n, path, &s, err);
  if (!st) {
    *cfg = s.cfg;
    if (model) *model = s.model;
    if (epochs_done) *epochs_done = s.epoch;
    if (dataset && dsize) snprintf(dataset, dsize, "%s", s.dataset);
  }
  opl_kv_free(&kv, n);
  return st;
}

/* OPL_OK if kv[0..n) and m's to_meta hold the same attributes (the same model configuration),
 * else the key of the first difference into *key. */
static int same_model(const opl_model *m, const opl_kv *kv, int n, const char **key) {
  opl_kv mine[OPL_MODEL_META_MAX];
  int nm = m->ops->to_meta(m->self, mine);
  for (int i = 0; i < nm; i++) {
    const opl_kv *o = opl_kv_find(kv, n, mine[i].key);
    int eq = o && o->type == mine[i].type &&
             (o->type == OPL_KV_INT   ? o->i == mine[i].i
              : o->type == OPL_KV_REAL ? o->d == mine[i].d
                                       : o->s && mine[i].s && !strcmp(o->s, mine[i].s));
    if (!eq) {
      *key = mine[i].key;
      return 0;
    }
  }
  return 1;
}

/* OPL_ERR_ARG naming the first field where the checkpoint's state s (attributes kv[0..n))
 * differs from t. */
static int compare_state(const opl_trainer *t, const opl_ckpt_state *s, const opl_kv *kv, int n, const char *path,
                         opl_err *err) {
  const char *key = NULL;
  if (!same_model(&t->model, kv, n, &key)) {
    /* Both described: the stored model is rebuilt (without values) for its description. */
    char m1[256], m2[256] = "";
    t->model.ops->describe(t->model.self, m1, sizeof m1);
    opl_model other;
    opl_err e;
    if (!opl_model_create_spec(&other, &s->model, NULL, &e)) {
      other.ops->describe(other.self, m2, sizeof m2);
      opl_model_free(&other);
    } else {
      snprintf(m2, sizeof m2, "%s: %.200s", s->model.kind->name, e.msg);
    }
    return opl_err_set(err, OPL_ERR_ARG,
                       "train: cannot resume from '%s': it holds the model %s, this run builds %s (attribute '%s')",
                       path, m2, m1, key);
  }
  const opl_task *ta = &t->cfg.task, *tb = &s->cfg.task;
  struct { const char *key; int64_t mine, theirs; } ints[] = {
      {K_TASK, ta->kind, tb->kind},
      {K_TARGET, opl_task_frames(ta) ? -1 : t->target_frame, tb->target_frame},
      {K_TIN, opl_task_frames(ta) ? ta->t_in : 0, tb->t_in},
      {K_TOUT, opl_task_frames(ta) ? ta->t_out : 0, tb->t_out},
      {K_NTRAIN, t->cfg.ntrain, s->cfg.ntrain}, {K_NTEST, t->cfg.ntest, s->cfg.ntest},
      {K_BATCH, t->cfg.batch, s->cfg.batch}, {K_SUB, t->cfg.sub, s->cfg.sub},
      {K_NX, t->li->nx, s->nx}, {K_NY, t->li->ny, s->ny},
      {K_NORM, t->normalize, s->normalize}, {K_SHUFFLE, t->cfg.shuffle, s->cfg.shuffle},
      {K_SEED, (int64_t)t->cfg.seed, (int64_t)s->cfg.seed}, {K_STEP, t->cfg.step_size, s->cfg.step_size},
      {K_OPTIM, t->cfg.adamw, s->cfg.adamw}, {K_LOSSFN, t->cfg.loss, s->cfg.loss},
      {K_SCHED, t->cfg.schedule, s->cfg.schedule}, {K_SUNIT, t->cfg.sched_per_step, s->cfg.sched_per_step},
      {K_WARM, t->cfg.warmup, s->cfg.warmup},
      {K_SEPOCHS, t->cfg.schedule == OPL_SCHEDULE_STEP ? 0 : t->cfg.sched_epochs,
       s->cfg.schedule == OPL_SCHEDULE_STEP ? 0 : s->cfg.sched_epochs},
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
      {K_GAMMA, t->cfg.gamma, s->cfg.gamma}, {K_CLIP, t->cfg.clip_grad, s->cfg.clip_grad},
      {K_PDEW, t->cfg.pde_weight, s->cfg.pde_weight}, {K_ICW, t->cfg.ic_weight, s->cfg.ic_weight},
      {K_PCT, t->cfg.pct_start, s->cfg.pct_start}, {K_DIV, t->cfg.div_factor, s->cfg.div_factor},
      {K_FDIV, t->cfg.final_div_factor, s->cfg.final_div_factor},
      {K_WSTART, t->cfg.warmup_start_lr, s->cfg.warmup_start_lr}, {K_ETAMIN, t->cfg.eta_min, s->cfg.eta_min}};
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
  opl_ckpt_state s;
  opl_normalizer *xn = NULL, *yn = NULL;
  if ((st = opl_ckpt_parse_state(kv, n, path, &s, err)) || (st = compare_state(t, &s, kv, n, path, err))) goto done;
  /* The file's checksum was verified by opl_checkpoint_read_meta. */
  opl_err e;
  opl_h5r *r = opl_h5r_open(path, &e);
  if (!r) {
    st = opl_err_set(err, e.status, "train: %s", e.msg);
    goto done;
  }
  if ((s.normalize == OPL_NORMALIZE_GAUSSIAN && !(xn = opl_normalizer_get(r, "normalizer_x", &e))) ||
      (s.normalize != OPL_NORMALIZE_NONE && !(yn = opl_normalizer_get(r, "normalizer_y", &e))))
    st = opl_err_set(err, e.status, "train: cannot resume from '%s': %s", path, e.msg);
  /* The optimizer state is checked in full before the model is loaded (all or nothing); the
   * model load is all or nothing too; the optimizer state is copied last. */
  opl_params *ost = opl_optim_state(t->opt);
  opl_tensor **staged = NULL;
  if (!st) st = load_optim(r, ost, path, &staged, err);
  if (!st && (st = opl_h5r_load_params(r, "/model", &t->model.params, &e)))
    st = opl_err_set(err, st, "train: cannot resume from '%s': %s", path, e.msg);
  opl_h5r_close(&r);
  if (!st)
    for (int i = 0; i < ost->n; i++)
      memcpy(ost->t[i]->data, staged[i]->data, sizeof(opl_real) * (size_t)opl_nreal(ost->t[i]));
  staged_free(staged, ost->n);
  if (st) goto done;
  if (xn || yn) {
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
  t->epoch = s.epoch;
  opl_trainer_sync_lr(t); /* base_lr checked when read */
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
