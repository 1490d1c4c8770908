/* opl train — training and evaluation of the Fourier Neural Operator end to end.
 *
 * The recipe is the one of the FNO paper and its reference scripts (Li, Kovachki,
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
 *   - tasks (opl_task):
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
 *   - normalization (OPL_NORMALIZE_AUTO picks the reference's choice): none for STATIC 1-D
 *     and for ROLLOUT (fourier_1d.py, fourier_2d_time.py); per-point Gaussian
 *     (UnitGaussianNormalizer, datasets/normalizer.h) of the input and of the target for STATIC
 *     2-D and SPACETIME (fourier_2d.py, fourier_3d.py): the input is encoded, the model output
 *     is decoded before the loss, which compares it with the raw target (the same as the
 *     reference, which decodes both). Normalizers are fit on the training split and saved in
 *     the checkpoint; at another resolution they are resampled (opl_normalizer_resample).
 *
 * Checkpoints (one HDF5 file, the model file itself: opl_fno_load reads it): /model (the FNO's
 * parameters), /optim (the optimizer's whole state), normalizer_x / normalizer_y when
 * normalizing, and root attributes: the FNO configuration (opl_fno_config_to_meta), the
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
#include "core/opl.h"
#include "core/optim.h"
#include "datasets/loader.h"
#include "datasets/normalizer.h"
#include "operators/fno.h"
#include "train/metrics.h"

/* ---------------------------------------------------------------- tasks */

typedef enum {
  OPL_TASK_STATIC = 0,     /* a -> one frame of u (1-D or 2-D) */
  OPL_TASK_ROLLOUT = 1,    /* 2-D: T_in frames -> next frame, rolled out T steps */
  OPL_TASK_SPACETIME = 2,  /* FNO-3d: T_in frames -> the next T frames at once */
  OPL_TASK_COUNT
} opl_task_kind;

typedef struct opl_task {
  int kind;               /* opl_task_kind */
  int64_t target_frame;   /* STATIC: frame of u used as target, >= 0, or -1: the last one */
  int64_t t_in;           /* ROLLOUT / SPACETIME: input frames u[0 .. t_in), >= 1 */
  int64_t t_out;          /* ROLLOUT / SPACETIME: target frames u[t_in .. t_in + t_out), >= 1 */
} opl_task;

/* "static", "rollout", "spacetime" (or "unknown"). */
const char *opl_task_name(int kind);

/* The loader selections of a task (datasets/loader.h): STATIC in {a}, out {frame target_frame};
 * ROLLOUT / SPACETIME in {frames 0..t_in), out {frames t_in..t_in + t_out)}. OPL_ERR_ARG for
 * a bad task. */
int opl_task_selections(const opl_task *task, opl_ds_sel *in, opl_ds_sel *out, opl_err *err);

/* Set the task-dependent fields of an FNO configuration for a data set of spatial dimension
 * sdim (1 or 2): d (STATIC: sdim; ROLLOUT: 2; SPACETIME: 3), in_channels (STATIC: 1; else
 * t_in) and out_channels (1); the caller's values of these three fields are replaced (the task
 * determines them). A task that does not fit sdim (ROLLOUT / SPACETIME need 2-D data) or a bad
 * task is OPL_ERR_ARG. */
int opl_task_model_config(const opl_task *task, int sdim, opl_fno_config *cfg, opl_err *err);

/* The prediction of a task as a differentiable graph: x the raw input batch in the loader's
 * layout, STATIC (B, 1, *S), ROLLOUT / SPACETIME (B, t_in, X, Y) -> the decoded prediction in
 * the target's layout, STATIC (B, 1, *S), ROLLOUT / SPACETIME (B, t_out, X, Y).
 * xn / yn: per-point normalizers of input and target at the resolution of x (either NULL: no
 * normalization of that side); x is encoded by xn, the model output decoded by yn.
 * Errors are sticky in c (NULL returned). */
opl_tensor *opl_task_predict(opl_ctx *c, const opl_fno *m, const opl_task *task, const opl_normalizer *xn,
                             const opl_normalizer *yn, opl_tensor *x);

/* The same prediction WITHOUT recording and at bounded memory (evaluation, benchmarks): x is a
 * caller array [B, Cin, *S] of shape xshape[0..rank) (the loader's layout; not in c's arena),
 * out a caller array receiving the decoded prediction in the target's layout [B, Cout, *S]
 * (ROLLOUT: Cout = t_out frames). The arena of c is reset as it goes — for ROLLOUT after every
 * step, the window of the last t_in frames being kept in the caller's scratch window
 * [B, t_in, *S] (NULL for the other tasks) — so the memory is that of one forward pass, where
 * opl_task_predict keeps every step's activations until the arena is reset. Every arena tensor
 * of c dies. The values are those of opl_task_predict (the same ops on the same values). Gradient
 * recording of c is switched off and restored. ROLLOUT with a normalizer is OPL_ERR_ARG. */
int opl_task_infer(opl_ctx *c, const opl_fno *m, const opl_task *task, const opl_normalizer *xn,
                   const opl_normalizer *yn, int rank, const int64_t *xshape, const opl_real *x, opl_real *out,
                   opl_real *window, opl_err *err);

/* The training objective of a task for a batch: pred, y (B, C, *S) -> a scalar, the sum over
 * the batch of the per-sample relative L2 errors; ROLLOUT: the sum over samples AND steps of
 * each predicted frame's relative L2 (C = steps). Differentiable in pred. Errors are sticky. */
opl_tensor *opl_task_loss(opl_ctx *c, const opl_task *task, opl_tensor *pred, opl_tensor *y);

/* ---------------------------------------------------------------- trainer */

typedef enum { OPL_NORMALIZE_AUTO = -1, OPL_NORMALIZE_NONE = 0, OPL_NORMALIZE_GAUSSIAN = 1 } opl_normalize;

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
  uint64_t seed;            /* model initialization and shuffling */
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
 * (frames, dimension), the model configuration model (opl_task_model_config fills d and the
 * channels; modes exceeding half the sub-sampled resolution are OPL_ERR_ARG naming the modes,
 * the resolution and sub), creates the loader, fits the normalizers, initializes the FNO from
 * the seed and creates Adam and StepLR. No epoch is run. NULL and err filled on failure. */
opl_trainer *opl_trainer_new(const opl_trainer_config *cfg, const opl_fno_config *model, opl_ds *ds,
                             opl_err *err);
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
} opl_step_stats;

/* One optimizer step on batch k (0 <= k < number of training batches) of the current epoch
 * (opl_trainer_epochs_done): load, predict, loss, backward, finiteness checks, optional
 * clipping, Adam. Does not step the scheduler. Divergence: OPL_ERR_NONFINITE, no update. */
int opl_trainer_step(opl_trainer *t, int64_t k, opl_step_stats *s, opl_err *err);

/* Mean relative L2 error on the test split at the current parameters (time tasks: of the full
 * trajectory); NaN when ntest = 0. Gradients are not recorded. */
int opl_trainer_test(opl_trainer *t, double *test_l2, opl_err *err);

/* Write a checkpoint now (see above) to path (NULL: cfg.checkpoint). */
int opl_trainer_save(opl_trainer *t, const char *path, opl_err *err);

/* Set the learning rate from now on: the scheduler's base rate becomes lr and the current rate
 * is recomputed from it (StepLR: lr gamma^floor(epochs / step)). lr >= 0 and finite (OPL_ERR_ARG). */
int opl_trainer_set_lr(opl_trainer *t, double lr, opl_err *err);

/* Accessors. */
int64_t opl_trainer_epochs_done(const opl_trainer *t);
int64_t opl_trainer_train_batches(const opl_trainer *t);
double opl_trainer_lr(const opl_trainer *t);
const opl_fno *opl_trainer_model(const opl_trainer *t);
opl_params *opl_trainer_params(opl_trainer *t);
/* The optimizer's state set (core/optim.h). */
opl_params *opl_trainer_optim_state(opl_trainer *t);
const opl_loader_info *opl_trainer_loader_info(const opl_trainer *t);
const opl_trainer_config *opl_trainer_get_config(const opl_trainer *t);
/* The arena context of the training steps (for statistics). */
opl_ctx *opl_trainer_ctx(opl_trainer *t);

/* Read the configuration a checkpoint was trained with: cfg (the task, data split, batch, sub,
 * normalization, seed and hyperparameters; string fields NULL) and model (may be NULL), and
 * the number of epochs done (may be NULL). dataset (may be NULL) receives the dataset name
 * recorded in the checkpoint (truncated to dsize). OPL_ERR_NOTFOUND naming a missing attribute
 * when the file is an FNO checkpoint without training attributes. */
int opl_trainer_read_config(const char *path, opl_trainer_config *cfg, opl_fno_config *model,
                            int64_t *epochs_done, char *dataset, size_t dsize, opl_err *err);

/* ---------------------------------------------------------------- evaluation */

/* A trained model as loaded from a checkpoint, ready for evaluation. */
typedef struct opl_trained {
  opl_fno model;
  opl_params params;
  opl_task task;
  opl_normalizer *xn, *yn;  /* at the training resolution, or NULL */
  int64_t nx, ny;           /* training resolution (after sub) */
  int64_t ntest;            /* the test split size the model was trained with */
  int sub;                  /* the training sub-sampling */
  int64_t epochs;           /* epochs trained */
} opl_trained;

/* Load a model written by a trainer (or, with task STATIC and no normalization assumed, any FNO
 * file of opl_fno_save). On failure *m is zeroed. */
int opl_trained_load(const char *path, opl_trained *m, opl_err *err);
void opl_trained_free(opl_trained *m);

typedef struct opl_eval_opts {
  int64_t ntest;            /* evaluate the last ntest samples (0: the model's ntest, capped at N) */
  int sub;                  /* sub-sampling of the data set (1: its own resolution) */
  int64_t batch;            /* samples per forward pass (0: 20) */
  int64_t keep;             /* keep input, truth and prediction of the first `keep` samples */
  int warmup;               /* 1: run the first batch once untimed first (FFT plans, arena), so
                               that `seconds` measures steady-state forward passes */
} opl_eval_opts;

typedef struct opl_eval_result {
  int64_t n;                /* samples evaluated */
  int sdim;                 /* 1 or 2 */
  int64_t nx, ny;           /* resolution evaluated (ny = 1 in 1-D) */
  int64_t cin, cout;        /* channels of input and target (time tasks: frames) */
  int64_t *samples;         /* [n] data set indices */
  double *rel;              /* [n] relative L2 per sample (time tasks: full trajectory) */
  double *tnorm;            /* [n] target norms */
  int64_t kept;             /* samples whose arrays are kept */
  opl_real *input;          /* [kept, cin, nx, ny] raw inputs */
  opl_real *truth;          /* [kept, cout, nx, ny] */
  opl_real *pred;           /* [kept, cout, nx, ny] */
  double seconds;           /* wall time of the forward passes only */
} opl_eval_result;

/* Evaluate a trained model on the last ntest samples of ds at ds's resolution divided by sub
 * (normalizers resampled to it when it differs from the training resolution). Errors: a data
 * set that does not fit the task (frames, dimension) or ntest > N OPL_ERR_ARG; modes beyond
 * half the resolution OPL_ERR_SHAPE (from the forward). r is zeroed first and owns its arrays
 * (opl_eval_result_free). */
int opl_evaluate(const opl_trained *m, opl_ds *ds, const opl_eval_opts *o, opl_eval_result *r, opl_err *err);
void opl_eval_result_free(opl_eval_result *r);

#endif
