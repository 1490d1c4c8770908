/* opl train — the trainer's state, shared by trainer.c (the loop) and checkpoint.c (save and
 * resume); not part of the public interface. */
#ifndef OPL_TRAIN_TRAINER_INTERNAL_H
#define OPL_TRAIN_TRAINER_INTERNAL_H

#include "core/dist.h"
#include "train/pino.h"
#include "train/trainer.h"
#include "train/loss.h"
#include "train/schedule.h"

struct opl_trainer {
  opl_trainer_config cfg;     /* string fields point at the copies below */
  char *checkpoint, *csv, *dataset_name;
  int normalize;              /* resolved: NONE or GAUSSIAN */
  opl_model_spec spec;        /* the model's kind and configuration (task fields set) */
  opl_model model;            /* owns the parameters */
  opl_optim *opt;
  opl_sched_steplr sched;
  opl_rng rng;                /* the stream after the model's initialization */
  opl_ds *ds;
  opl_loader *loader;
  const opl_loader_info *li;
  int64_t target_frame;       /* STATIC: resolved target frame */
  opl_normalizer *xn, *yn;
  opl_pino *pino;             /* physics losses, NULL without */
  opl_ctx *ctx;
  opl_team *team;             /* the test pass's: context 0 is ctx (opl_team_new_from) */
  int64_t epoch;              /* epochs done */
  double *rel;                /* [batch] per-sample scratch */
  int64_t *bsamp;             /* [batch] data set indices of the current batch (per-sample times) */
  opl_real *tx, *ty, *tp, *tw; /* test batches: x, y, prediction, rollout window (heap) */
  opl_metrics_log *log;
  double last_test, last_loss;
  double last_test_nfe;       /* trajectory tasks: mean evaluations per test trajectory, else NaN */
  /* data-parallel training (more than one rank, core/dist.h; NULL / unused on one) */
  opl_dist_grads *dg;         /* the gradient buckets */
  int64_t *order;             /* [ntrain] the sample order of epoch order_epoch */
  int64_t order_epoch;
  int read_agreed;            /* the last step_forward failed in its read, agreed over ranks */
};

/* Set the optimizer's rate for the trainer's position (epoch, and step within the schedule's
 * unit): StepLR's, or the ONECYCLE / COSINE / WARMUP_COSINE formula at the step count (trainer.c). */
void opl_trainer_sync_lr(opl_trainer *t);

/* The training state recorded in a checkpoint (checkpoint.c). */
typedef struct opl_ckpt_state {
  opl_trainer_config cfg;    /* strings NULL */
  opl_model_spec model;
  int normalize;             /* resolved */
  int64_t nx, ny, dataset_n, epoch, last_epoch;
  double base_lr;
  uint64_t rng_key, rng_counter;
  const char *dataset;       /* points into kv */
  const char *wisdom;        /* points into kv, may be "" */
} opl_ckpt_state;

/* Parse the root attributes kv[0..n) of a training checkpoint at path (for messages) into s.
 * OPL_ERR_NOTFOUND naming a missing attribute, OPL_ERR_FORMAT a malformed one. */
int opl_ckpt_parse_state(const opl_kv *kv, int n, const char *path, opl_ckpt_state *s, opl_err *err);
/* 1 if kv[0..n) holds training attributes (a trainer's checkpoint, not a bare model file). */
int opl_ckpt_has_state(const opl_kv *kv, int n);

#endif
