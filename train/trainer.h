/* opl train — the trainer: any model (operators/model.h) on any task (train/task.h).
 *
 * The trainer knows a model only through the model interface (forward, parameters,
 * configuration attributes) and a task only through the task table; the FNO is one model
 * among others. Checkpoints and resuming are in checkpoint.c, evaluation of a trained model
 * in train/evaluate.h.
 *
 * The recipe (the defaults of opl_trainer_defaults and of opl train fno) is the one of the FNO paper
 * and its reference scripts (Li, Kovachki,
 * Azizzadenesheli, Liu, Bhattacharya, Stuart, Anandkumar, "Fourier Neural Operator for
 * Parametric Partial Differential Equations", ICLR 2021; fourier_1d.py, fourier_2d.py,
 * fourier_2d_time.py and fourier_3d.py of github.com/zongyi-li/fourier_neural_operator at
 * commit fd1fb7a3), every value overridable:
 *   - data: the FIRST ntrain samples train, the LAST ntest samples test (datasets/loader.h),
 *     spatial sub-sampling x[::sub], the training set reshuffled every epoch (by seed, epoch);
 *   - optimizer: Adam, lr 1e-3, weight decay 1e-4 in torch.optim.Adam's L2 form (the decay is
 *     added to the gradient, as the reference's Adam does), StepLR step 100, gamma 0.5, stepped
 *     once per epoch; batch 20;
 *   - objective: the relative L2 error ||p - v|| / ||v|| of each sample, SUMMED over the batch
 *     (LpLoss(size_average=False)); the reported epoch loss is that sum over all batches divided
 *     by ntrain (train_l2 / ntrain). The reference reshapes every batch by the NOMINAL batch size
 *     (out.view(batch_size, -1)), which mixes samples (or fails) on a partial last batch; here
 *     every batch is reshaped by its true size, so a partial last batch counts each of its
 *     samples exactly once and the epoch loss is the exact mean over the training samples;
 *   - tasks (opl_task, train/task.h; the FNO per task: d = 1 / 2 for STATIC, 2 for ROLLOUT,
 *     3 for SPACETIME, the reference script's modes, width and padding in cli/train.c):
 *       STATIC     a -> u(t*) in one shot (fourier_1d.py Burgers, fourier_2d.py Darcy): input
 *                  the data set's a, target one frame of u (default the last stored snapshot);
 *       ROLLOUT    2-D time stepping (fourier_2d_time.py): the first T_in = 10 frames of u are
 *                  the input, the model predicts the next frame from the last T_in ones and is
 *                  rolled out autoregressively for T = 40 steps (predictions fed back without
 *                  detaching); the loss is the SUM over steps of each step's batch-summed
 *                  relative L2 (loss += myloss(im, y_t)); the reported training loss is that sum
 *                  / ntrain / T (the reference's train_l2_step / ntrain / (T / step)) and the
 *                  test metric is the relative L2 of the FULL predicted trajectory per sample
 *                  (test_l2_full / ntest);
 *       SPACETIME  FNO-3d (fourier_3d.py): the first T_in frames, repeated along a new time
 *                  axis of length T (opl_fno3d_input), are mapped to the next T frames at once;
 *                  on 1-D data an FNO-2d over (x, t); with T_in = 0 from the initial state a to
 *                  the frames t = 0 .. T (train/task.h);
 *       TRAJECTORY a neural ODE (operators/node_model.h) integrated through windows of stored
 *                  snapshots (train/task.h); the objective adds the model's regularizer with its
 *                  lambda schedule, and the CSV adds the solver's evaluations and steps;
 *   - physics losses (pde_weight W, ic_weight V; the space-time task only): the objective adds W
 *     times the mean square PDE residual and V times the mean square initial-condition error of
 *     each sample's decoded prediction, summed over the batch (train/pino.h, pde/residual.h);
 *     the CSV then adds their per-sample means (pde_loss, ic_loss);
 *   - normalization (OPL_NORMALIZE_AUTO picks the reference's choice): none for STATIC 1-D
 *     and for ROLLOUT (fourier_1d.py, fourier_2d_time.py); per-point Gaussian
 *     (UnitGaussianNormalizer, datasets/normalizer.h) of the input and of the target for STATIC
 *     2-D and SPACETIME (fourier_2d.py, fourier_3d.py): the input is encoded, the model output
 *     is decoded before the loss, which compares it with the raw target (the same as the
 *     reference, which decodes both). SCALAR_U (STATIC only): the input raw, the target by
 *     one scalar mean and std (MgNO's rough Darcy set). Normalizers are fit on the training
 *     split and saved in the checkpoint; at another resolution they are resampled
 *     (opl_normalizer_resample).
 *
 * Checkpoints (checkpoint.c; one HDF5 file, the model file itself: opl_model_load reads it):
 * /model (the model's parameters), /optim (the optimizer's whole state), normalizer_x /
 * normalizer_y when normalizing, and root attributes: the model's kind ("model") and
 * configuration (its to_meta; for the FNO opl_fno_config_to_meta), the
 * task and the data split, every hyperparameter, the epoch, the scheduler state, the RNG state
 * and the FFTW wisdom of the run (so that a resumed run in a new process gets the same FFT
 * algorithms, hence the same rounding, also when the run used timed FFTW_MEASURE plans; the
 * default planner, FFTW_ESTIMATE, chooses the same algorithms in every process anyway). Written atomically (core/io.h) every
 * checkpoint_every epochs and at the end. Resuming continues bit for bit as if never stopped
 * (same data, seed and thread count): parameters, Adam moments and step count, the scheduler's
 * epoch, and the per-(seed, epoch) shuffle are all restored or recomputed exactly.
 *
 * Divergence guard: a NaN or Inf loss or gradient stops training with OPL_ERR_NONFINITE and
 * a message naming the epoch, batch and (for a gradient) the parameter; the parameters are
 * not updated by that step and no checkpoint is written after it, so the last good checkpoint
 * on disk is kept.
 *
 * Metrics: every epoch is passed to a progress callback (opl_epoch_stats) and appended to a
 * CSV log beside the checkpoint (MODEL.h5 -> MODEL.csv, train/metrics.h).
 *
 * Memory: a training step allocates only from the trainer's arena (reset per step) once the
 * first steps have sized it, with the data set cached in memory (cache = 1, the default):
 * a steady-state step does no malloc (OpenBLAS's threaded GEMM driver aside).
 *
 * Nothing here prints; errors come back as a status and a message (opl_err).
 */
#ifndef OPL_TRAIN_TRAINER_H
#define OPL_TRAIN_TRAINER_H

#include <stdint.h>
#include "core/dist.h"
#include "core/opl.h"
#include "core/optim.h"
#include "datasets/loader.h"
#include "datasets/normalizer.h"
#include "operators/model.h"
#include "train/task.h"
#include "train/metrics.h"

/* ---------------------------------------------------------------- trainer */

typedef struct opl_trainer_config {
  opl_task task;
  /* data */
  int64_t ntrain, ntest;    /* first ntrain / last ntest samples (ntest 0: no test metric) */
  int64_t batch;            /* >= 1 */
  int sub;                  /* spatial sub-sampling, >= 1 */
  int normalize;            /* opl_normalize */
  int shuffle;              /* reshuffle the training set every epoch (1) */
  int cache;                /* 1: read the selected data once (no I/O, no malloc per step) */
  /* optimization */
  int64_t epochs;           /* total epochs to reach, >= 1 */
  double lr;                /* Adam learning rate, > 0 (>= 0 accepted) */
  double weight_decay;      /* L2 decay added to the gradient (torch.optim.Adam), >= 0 */
  int64_t step_size;        /* StepLR step, >= 1 */
  double gamma;             /* StepLR factor, > 0 */
  double clip_grad;         /* > 0: clip the global gradient norm to this; 0: never */
  int loss;                 /* opl_loss_kind (train/loss.h): L2 (default) or H1 (STATIC 2-D tasks) */
  int adamw;                /* 1: AdamW (decoupled weight decay); 0: Adam, decay added to the gradient */
  int schedule;             /* opl_schedule_kind (train/schedule.h): STEP (StepLR, default), ONECYCLE
                             * (max rate lr), COSINE (base rate lr, warmup), WARMUP_COSINE (base rate
                             * lr, warmup from warmup_start_lr, cosine to eta_min) */
  int sched_per_step;       /* ONECYCLE / COSINE / WARMUP_COSINE: advance per optimizer step (1) or
                             * per epoch (0) */
  double pct_start;         /* ONECYCLE: fraction of the steps spent rising, in (0, 1) (0.3) */
  double div_factor;        /* ONECYCLE: the first rate is lr / div_factor, finite > 0 (25) */
  double final_div_factor;  /* ONECYCLE: the last is lr / div_factor / final_div_factor, finite > 0 (1e4) */
  int64_t warmup;           /* COSINE / WARMUP_COSINE: warmup length in the schedule's unit, >= 0 */
  double warmup_start_lr;   /* WARMUP_COSINE: the rate of the first step, finite >= 0 (0) */
  double eta_min;           /* WARMUP_COSINE: the rate at the end of the cosine, finite >= 0 (0) */
  int64_t sched_epochs;     /* every schedule but STEP: the epochs the schedule spans (0: epochs); a run
                             * resumed to more epochs keeps its span, so it equals a straight run
                             * given the same span */
  uint64_t seed;            /* model initialization and shuffling */
  /* physics losses (train/pino.h; space-time task only), 0: none */
  double pde_weight;        /* W: weight of the mean square PDE residual per sample, >= 0 */
  double ic_weight;         /* V: weight of the mean square initial-condition error, >= 0 */
  /* output */
  const char *checkpoint;   /* checkpoint / model path, or NULL: none */
  int64_t checkpoint_every; /* also save every this many epochs (0: only at the end) */
  const char *csv;          /* metrics log; NULL: beside the checkpoint; "": none */
  const char *dataset_name; /* provenance stored in the checkpoint; NULL: the data set's path */
} opl_trainer_config;

/* The published recipe: STATIC task on the last frame, T_in 10 / T 40 for time tasks, ntrain
 * 1000, ntest 100, batch 20, sub 1, AUTO normalization, shuffling, cache, 500 epochs, Adam
 * lr 1e-3, weight decay 1e-4, StepLR 100 / 0.5, no clipping, seed 0, no checkpoint. */
opl_trainer_config opl_trainer_defaults(void);

typedef struct opl_trainer opl_trainer;

/* Build a trainer over an open data set ds (borrowed: keep it open while the trainer lives):
 * checks the configuration (OPL_ERR_ARG naming the field and value), the task against the data
 * (frames, dimension), the model configuration model_config of kind kind (opl_task_model_config
 * sets the task's spatial axes and channels; an input the model cannot take, e.g. FNO modes
 * exceeding half the sub-sampled resolution, is OPL_ERR_ARG naming the model's reason, the
 * resolution and sub), creates the loader, fits the normalizers, creates the model from the
 * seed and creates Adam and StepLR. No epoch is run. NULL and err filled on failure. */
opl_trainer *opl_trainer_new(const opl_trainer_config *cfg, const opl_model_kind *kind, const void *model_config,
                             opl_ds *ds, opl_err *err);
/* Free; sets *t to NULL. Accepts NULL. */
void opl_trainer_free(opl_trainer **t);

/* Continue from a checkpoint written by a trainer of the same configuration: the model, the
 * task, the data split and sub-sampling, the batch size, normalization, seed and every
 * optimization hyperparameter must equal this trainer's (OPL_ERR_ARG naming the first attribute
 * that differs, with both values); cfg.epochs, checkpoint_every and the output paths may
 * differ. Restores the parameters, the optimizer state, the scheduler, the epoch counter, the
 * normalizers and the RNG state, and merges the run's FFTW wisdom. Errors of opl_checkpoint_load
 * (missing file OPL_ERR_NOTFOUND, corrupt OPL_ERR_FORMAT, ...); on failure the trainer is
 * unchanged unless the failure happened while reading the parameters (then discard it). */
int opl_trainer_resume(opl_trainer *t, const char *path, opl_err *err);

/* Per-epoch callback: return non-zero to stop after this epoch (a checkpoint is then written
 * when the trainer has a checkpoint path). */
typedef int (*opl_train_progress_fn)(const opl_epoch_stats *s, void *user);

/* Train until cfg.epochs epochs are done (nothing to do when they already are): per epoch,
 * opl_trainer_epoch, then the callback (may be NULL). Returns OPL_OK (also when stopped by the
 * callback) or the first error (divergence: OPL_ERR_NONFINITE, the last good checkpoint kept). */
int opl_trainer_run(opl_trainer *t, opl_train_progress_fn cb, void *user, opl_err *err);

/* One epoch: every training batch (opl_trainer_step), the scheduler step, the test evaluation,
 * the CSV row, and a checkpoint when due (every checkpoint_every epochs or at cfg.epochs).
 * s (may be NULL) receives the epoch's statistics. */
int opl_trainer_epoch(opl_trainer *t, opl_epoch_stats *s, opl_err *err);

/* What one training step measured. */
typedef struct opl_step_stats {
  int64_t bsize;          /* samples in the batch (the last batch may be partial) */
  double loss;            /* the objective of the batch (opl_task_loss) */
  double l2_sum;          /* sum over the batch of the per-sample relative L2 (full trajectory) */
  int64_t nfe, accepted, rejected; /* trajectory tasks: the solve's evaluations and steps; else -1 */
  int64_t local_nfe;      /* trajectory tasks: the local regularizer's evaluations (0 without it); else -1 */
  double reg;             /* the regularizer term lambda R of the objective (0 without one) */
  double pde_sum, ic_sum; /* physics losses (train/pino.h): the batch sums of the per-sample mean
                             squares, unweighted; NaN without */
} opl_step_stats;

/* One optimizer step on batch k (0 <= k < number of training batches) of the current epoch
 * (opl_trainer_epochs_done): load, predict, loss, backward, finiteness checks, optional
 * clipping, Adam. Does not step the scheduler. Divergence: OPL_ERR_NONFINITE, no update. */
int opl_trainer_step(opl_trainer *t, int64_t k, opl_step_stats *s, opl_err *err);

/* Mean relative L2 error on the test split at the current parameters (time tasks: of the full
 * trajectory); NaN when ntest = 0. Gradients are not recorded. */
int opl_trainer_test(opl_trainer *t, double *test_l2, opl_err *err);

/* Write a checkpoint now (see above) to path (NULL: cfg.checkpoint). On a data-parallel run
 * (core/dist.h) only rank 0 writes; the other ranks return OPL_OK. */
int opl_trainer_save(opl_trainer *t, const char *path, opl_err *err);

/* Set the learning rate from now on: the scheduler's base rate becomes lr and the current rate
 * is recomputed from it (StepLR: lr gamma^floor(epochs / step)). lr >= 0 and finite (OPL_ERR_ARG). */
int opl_trainer_set_lr(opl_trainer *t, double lr, opl_err *err);

/* Data-parallel training (more than one rank, core/dist.h): the gradient sums' statistics into
 * *s and 1; 0 (s untouched) on a single process. */
int opl_trainer_dist_stats(const opl_trainer *t, opl_dist_grads_stats *s);

/* Accessors. */
int64_t opl_trainer_epochs_done(const opl_trainer *t);
int64_t opl_trainer_train_batches(const opl_trainer *t);
double opl_trainer_lr(const opl_trainer *t);
/* The model (its parameters are opl_trainer_params). */
const opl_model *opl_trainer_model(const opl_trainer *t);
opl_params *opl_trainer_params(opl_trainer *t);
/* The optimizer's state set (core/optim.h). */
opl_params *opl_trainer_optim_state(opl_trainer *t);
const opl_loader_info *opl_trainer_loader_info(const opl_trainer *t);
const opl_trainer_config *opl_trainer_get_config(const opl_trainer *t);
/* The arena context of the training steps (for statistics). */
opl_ctx *opl_trainer_ctx(opl_trainer *t);

/* Read the configuration a checkpoint was trained with: cfg (the task, data split, batch, sub,
 * normalization, seed and hyperparameters; string fields NULL) and model (its kind and
 * configuration; may be NULL), and the number of epochs done (may be NULL). dataset (may be
 * NULL) receives the dataset name recorded in the checkpoint (truncated to dsize).
 * OPL_ERR_NOTFOUND naming a missing attribute when the file is a model file without training
 * attributes. */
int opl_trainer_read_config(const char *path, opl_trainer_config *cfg, opl_model_spec *model,
                            int64_t *epochs_done, char *dataset, size_t dsize, opl_err *err);

#endif
