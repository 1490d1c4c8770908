/* opl train — tasks: what a model is asked to predict from a data set.
 *
 * A task names the input and the target a data set gives (the loader's selections), the shape
 * of the model that fits them (spatial axes, input and output channels), how the prediction
 * is built from the model (one forward, a rollout, a space-time forward) with and without a
 * tape, its objective and its default normalization. The kinds are one table in task.c (one
 * row per kind, no switch elsewhere), and every function below reads that table; the model is
 * reached only through operators/model.h.
 *
 *   STATIC     a -> u(t*) in one shot (fourier_1d.py Burgers, fourier_2d.py Darcy): input the
 *              data set's a, target one frame of u (default the last stored snapshot);
 *   ROLLOUT    2-D time stepping (fourier_2d_time.py): the first T_in frames of u are the
 *              input, the model predicts the next frame from the last T_in ones and is rolled
 *              out autoregressively for T steps (predictions fed back without detaching); the
 *              loss is the SUM over steps of each step's batch-summed relative L2;
 *   SPACETIME  one space-time model, a time axis after the spatial ones (FNO-3d on 2-D data,
 *              fourier_3d.py; FNO-2d over (x, t) on 1-D data): the first T_in frames, repeated
 *              along the new time axis of length T (opl_fno3d_input in 2-D), are mapped to the
 *              next T frames at once; with T_in = 0 the input is the initial state a and the
 *              target the T + 1 frames t = 0 (a itself), t_1 .. t_T (the physics-informed
 *              neural operator's output grid, which includes t = 0: Li et al., "Physics-Informed
 *              Neural Operator for Learning Partial Differential Equations", 2021);
 *   ONESTEP    2-D time stepping trained on one-step pairs (MgNO's navier.py, getNavierDataSet3
 *              with train_full_2): the loader's input is frames [0, T_in + T - 1) and its target
 *              frames [T_in, T_in + T); a training batch of B trajectories is the B T pairs
 *              (frames [k, k + T_in) -> frame T_in + k, k = 0 .. T - 1: every starting k, each
 *              pair once per epoch), one forward of the model on all of them, no prediction fed
 *              back; the loss the SUM over pairs of each pair's relative L2 (as ROLLOUT's).
 *              Evaluation is ROLLOUT's: from frames [0, T_in), T steps autoregressively;
 *   TRAJECTORY a time-continuous model (the neural ODE, operators/node_model.h) integrates from
 *              one stored snapshot through the stored times: training on windows of K = t_out + 1
 *              snapshots from a start drawn per batch (opl_task_window, deterministic by seed,
 *              epoch and batch; all samples of a batch share the window, so one adaptive solve
 *              serves the batch), the loss the relative L2 over the window's K - 1 predicted
 *              snapshots per sample, summed over the batch, plus the model's regularizer
 *              weighted by its lambda schedule (opl_task_regularize); evaluation integrates from
 *              the first stored snapshot over the whole stored time. The loader's input is
 *              every stored frame and its target the frames after the first.
 *   STEP       one-step teacher forcing from a random start (SineNet: Zhang et al., "SineNet: Learning
 *              Temporal Dynamics in Time-Dependent Partial Differential Equations", ICLR 2024, and
 *              the PDEArena training it builds on): the loader's input is every stored frame and
 *              its target the frames t_in .. nframes - 1; batch k of epoch e draws a start s
 *              (opl_task_window, deterministic by seed, epoch and batch, shared by the batch) and
 *              the model maps frames s .. s + t_in - 1 to frame s + t_in (t_out = 1); the loss is
 *              the batch-summed relative L2 of that frame. Per-field normalization: one mean and
 *              one std over every training value of the field (opl_task_norm_kind: the GAUSSIAN
 *              normalizer), applied to each window and undone on the output inside the
 *              prediction, so predictions feed back in physical units. Evaluation rolls out from
 *              the first t_in frames over the whole stored trajectory (nframes - t_in steps).
 * (References: Li et al., "Fourier Neural Operator for Parametric Partial Differential
 * Equations", ICLR 2021, and the scripts of github.com/zongyi-li/fourier_neural_operator at
 * commit fd1fb7a3.) */
#ifndef OPL_TRAIN_TASK_H
#define OPL_TRAIN_TASK_H

#include <stdint.h>
#include "core/opl.h"
#include "core/par.h"
#include "datasets/loader.h"
#include "datasets/normalizer.h"
#include "operators/model.h"

typedef enum {
  OPL_TASK_STATIC = 0,     /* a -> one frame of u (1-D or 2-D) */
  OPL_TASK_ROLLOUT = 1,    /* 2-D: T_in frames -> next frame, rolled out T steps */
  OPL_TASK_SPACETIME = 2,  /* FNO-3d: T_in frames -> the next T frames at once */
  OPL_TASK_TRAJECTORY = 3, /* u(t_s) -> u(t_s+1 .. t_s+K-1) by integration in time */
  OPL_TASK_ONESTEP = 4,    /* 2-D: trained on pairs frames [k, k+T_in) -> frame T_in+k; rolled out T steps */
  OPL_TASK_STEP = 5,       /* 2-D: frames s .. s+T_in-1 -> frame s+T_in, s random; rolled out in evaluation */
  OPL_TASK_COUNT
} opl_task_kind;

typedef struct opl_task {
  int kind;               /* opl_task_kind */
  int64_t target_frame;   /* STATIC: frame of u used as target, >= 0, or -1: the last one */
  int64_t t_in;           /* ROLLOUT / SPACETIME: input frames u[0 .. t_in), >= 1; SPACETIME 0: a */
  int64_t t_out;          /* ROLLOUT / SPACETIME: target frames u[t_in .. t_in + t_out), >= 1;
                             TRAJECTORY: t_in = 1 and t_out = K - 1, the window of K snapshots */
  /* TRAJECTORY, set from the data set (opl_task_set_data) and per batch (opl_task_window): */
  int64_t nframes;        /* stored snapshots of the data set */
  const double *times;    /* their times [nframes] (borrowed from the data set's info), or NULL
                             when the data set's times are per sample: */
  const double *times_ps; /* [N, nframes] each sample's times (borrowed), or NULL */
  /* The data set indices of the current batch (borrowed; opl_task_set_batch): per-sample times
   * are looked up by them. */
  const int64_t *samples;
  int64_t nsamples;
  int64_t start;          /* first snapshot of the current window */
} opl_task;

/* GAUSSIAN: per-point Gaussian of the input and of the target (UnitGaussianNormalizer, or per
 * field for the windowed tasks); SCALAR_U: the input raw, the target by one scalar mean and
 * unbiased std over every training target value (GaussianNormalizer, datasets/normalizer.h),
 * the one-shot task only: MgNO's normalization of its rough Darcy set (He, Liu & Xu, ICLR 2024). */
typedef enum {
  OPL_NORMALIZE_AUTO = -1,
  OPL_NORMALIZE_NONE = 0,
  OPL_NORMALIZE_GAUSSIAN = 1,
  OPL_NORMALIZE_SCALAR_U = 2
} opl_normalize;

/* "static", "rollout", "spacetime", "trajectory", "onestep", "step" (or "unknown"). Checkpoints
 * store the task by this name, not by its number. */
const char *opl_task_name(int kind);
/* The kind named name, or -1. */
int opl_task_kind_from_name(const char *name);

/* OPL_OK if the task's own fields are in range (kind known; STATIC target_frame >= -1; time
 * tasks t_in, t_out >= 1), else OPL_ERR_ARG naming the field. */
int opl_task_check(const opl_task *task, opl_err *err);

/* 1 if the task's input and target are frame ranges of u (t_in, t_out: ROLLOUT, SPACETIME),
 * 0 if they are a and one frame (target_frame: STATIC) or the task is bad. */
int opl_task_frames(const opl_task *task);

/* OPL_OK if a data set of info has the frames the task reads: t_in + t_out frames for the
 * frame tasks, frame target_frame for STATIC; else OPL_ERR_ARG with a message (no prefix)
 * naming the frames needed, the dataset of u and the file. */
int opl_task_check_data(const opl_task *task, const opl_ds_info *info, opl_err *err);

/* The loader selections of a task (datasets/loader.h): STATIC in {a}, out {frame target_frame};
 * ROLLOUT / SPACETIME in {frames 0..t_in), out {frames t_in..t_in + t_out)}; SPACETIME with
 * t_in = 0 in {a}, out {a, frames 0..t_out}; ONESTEP in {frames 0..t_in + t_out - 1), out
 * {frames t_in..t_in + t_out}. OPL_ERR_ARG for a bad task. */
int opl_task_selections(const opl_task *task, opl_ds_sel *in, opl_ds_sel *out, opl_err *err);

/* The shape of the model a task needs on data of spatial dimension sdim (1 or 2): *msdim
 * spatial axes of the model's input (STATIC: sdim; ROLLOUT: 2; SPACETIME: sdim + 1), *cin input
 * channels (STATIC and SPACETIME with t_in = 0: 1; else t_in) and *cout output channels (1). A
 * task that does not fit sdim (ROLLOUT needs 2-D data) or a bad task is OPL_ERR_ARG. */
int opl_task_model_io(const opl_task *task, int sdim, int *msdim, int64_t *cin, int64_t *cout, opl_err *err);

/* opl_task_model_io written into a configuration of kind k (its set_io): the caller's values of
 * those fields are replaced (the task determines them). */
int opl_task_model_config(const opl_task *task, int sdim, const opl_model_kind *k, void *config, opl_err *err);

/* The spatial extents the model sees for a loader of resolution (nx, ny): (nx[, ny]) and for
 * SPACETIME the frames predicted (t_out, + 1 when t_in = 0) into S[0..3); returns the model's spatial axes (opl_task_model_io), or -1 for a bad task. */
int opl_task_model_extents(const opl_task *task, int sdim, int64_t nx, int64_t ny, int64_t *S);

/* The normalization the reference script of the task uses on data of spatial dimension sdim
 * (OPL_NORMALIZE_NONE or _GAUSSIAN): none for STATIC 1-D and ROLLOUT, per-point Gaussian for
 * STATIC 2-D and SPACETIME. normalize other than AUTO is returned as it is. */
int opl_task_resolve_normalize(const opl_task *task, int sdim, int normalize);
/* 1 if the task can normalize its input and output (ROLLOUT cannot: predictions are fed back;
 * STEP normalizes per field, inside its prediction). */
int opl_task_normalizable(const opl_task *task);
/* 1 if the task predicts step by step (ROLLOUT, ONESTEP; STEP in evaluation): opl_task_infer
 * then needs a window buffer [B, Cin, *S]. */
int opl_task_stepwise(const opl_task *task);
/* The kind of normalizer the task fits on the training data (datasets/normalizer.h): per-point
 * OPL_NORM_UNIT_GAUSSIAN, or for STEP one mean and std per field, OPL_NORM_GAUSSIAN. */
int opl_task_norm_kind(const opl_task *task);
/* 1 for STEP: training windows start at a random frame (opl_task_window), evaluation rolls out
 * over the whole stored trajectory. */
int opl_task_windowed(const opl_task *task);
/* The number of terms per sample of the objective (ROLLOUT, ONESTEP: t_out steps; else 1). */
int64_t opl_task_loss_terms(const opl_task *task);

/* The prediction of a task as a differentiable graph: x the raw input batch in the loader's
 * layout, STATIC (B, 1, *S), ROLLOUT / SPACETIME (B, t_in, *S) -> the decoded prediction in
 * the target's layout, STATIC (B, 1, *S), ROLLOUT / SPACETIME (B, t_out, *S) (SPACETIME with
 * t_in = 0: (B, 1, *S) -> (B, t_out + 1, *S)); ONESTEP (B, t_in + t_out - 1, *S) -> the
 * t_out one-step predictions (B, t_out, *S), prediction k from input frames [k, k + t_in).
 * xn / yn: per-point normalizers of input and target at the resolution of x (either NULL: no
 * normalization of that side); x is encoded by xn, the model output decoded by yn.
 * Errors are sticky in c (NULL returned). */
opl_tensor *opl_task_predict(opl_ctx *c, const opl_model *m, const opl_task *task, const opl_normalizer *xn,
                             const opl_normalizer *yn, opl_tensor *x);

/* The same prediction WITHOUT recording and at bounded memory (evaluation, benchmarks): x is a
 * caller array [B, Cin, *S] of shape xshape[0..rank) (the loader's layout; not in c's arena),
 * out a caller array receiving the decoded prediction in the target's layout [B, Cout, *S]
 * (ROLLOUT, ONESTEP: Cout = t_out frames). The arena of c is reset as it goes — for ROLLOUT and
 * ONESTEP after every step, the window of the last t_in frames being kept in the caller's
 * scratch window [B, t_in, *S] (NULL for the other tasks) — so the memory is that of one forward
 * pass, where opl_task_predict keeps every step's activations until the arena is reset. Every
 * arena tensor of c dies. The values are those of opl_task_predict (the same ops on the same
 * values), except ONESTEP's: its inference is the autoregressive rollout of T steps from the
 * first t_in frames of x (ROLLOUT's), its training prediction one step from true frames. Gradient
 * recording of c is switched off and restored. ROLLOUT with a normalizer is OPL_ERR_ARG. */
int opl_task_infer(opl_ctx *c, const opl_model *m, const opl_task *task, const opl_normalizer *xn,
                   const opl_normalizer *yn, int rank, const int64_t *xshape, const opl_real *x, opl_real *out,
                   opl_real *window, opl_err *err);

/* opl_task_infer over a team of contexts (core/par.h): when the model is samplewise (its ops)
 * and the task is not TRAJECTORY, the batch is cut into the team's slices, slice [b0, b1)
 * inferred in its own context on its own thread from x + b0 xs, into out + b0 out_per, with the
 * window + b0 window_per (xs: the elements of one sample of x); otherwise the whole batch in the
 * team's first context, as opl_task_infer. The values are those of opl_task_infer on the whole
 * batch up to rounding: every sample's prediction is computed from that sample alone, but a
 * slice's samples can meet other GEMM shapes (Winograd chunks of several small samples), whose
 * OpenBLAS kernels may round differently (tests: within 1e-5 of the largest value).
 * out_per, window_per: elements per sample of out and of window (window NULL: 0). A failing
 * slice's message is returned (the first one in slice order). */
int opl_task_infer_team(opl_team *t, const opl_model *m, const opl_task *task, const opl_normalizer *xn,
                        const opl_normalizer *yn, int rank, const int64_t *xshape, const opl_real *x, opl_real *out,
                        int64_t out_per, opl_real *window, int64_t window_per, opl_err *err);

/* The training objective of a task for a batch: pred, y (B, C, *S) -> a scalar, the sum over
 * the batch of the per-sample relative L2 errors; ROLLOUT: the sum over samples AND steps of
 * each predicted frame's relative L2 (C = steps). Differentiable in pred. Errors are sticky. */
opl_tensor *opl_task_loss(opl_ctx *c, const opl_task *task, opl_tensor *pred, opl_tensor *y);

/* ---------------------------------------------------------------- trajectory tasks */

/* 1 if the task integrates in time through the stored times (TRAJECTORY). */
int opl_task_continuous(const opl_task *task);

/* Record the data set's snapshots in a TRAJECTORY task (nframes, times; info must outlive the
 * task's use); a no-op for the other kinds. OPL_ERR_ARG when the data set stores no times, or
 * times that do not increase strictly, naming the file. A data set with per-sample times
 * (h5layout.h: t [N, T], KdV's per-sample draws) sets times_ps instead of times: each sample of
 * a batch is then integrated over ITS OWN window of times (operators/node_model.h,
 * opl_node_model_set_times_batch: one solve for the batch through the union of the samples'
 * relative times), which needs the batch's sample indices (opl_task_set_batch). */
int opl_task_set_data(opl_task *task, const opl_ds_info *info, opl_err *err);

/* The data set indices samples[0..B) of the batch the next opl_task_predict / opl_task_infer
 * sees (borrowed until then). Every task accepts it; only a TRAJECTORY task on per-sample times
 * uses it (a prediction without it, or for another batch size, is OPL_ERR_ARG). */
void opl_task_set_batch(opl_task *task, const int64_t *samples, int64_t B);

/* Draw the window of batch k of epoch e (1-based) for a TRAJECTORY task: task->start uniform in
 * [0, nframes - K], a function of (seed, e, k) only; a no-op for the other kinds. */
void opl_task_window(opl_task *task, uint64_t seed, int64_t e, int64_t k);

/* The part of the loader's target y that a prediction of opl_task_predict is compared with:
 * TRAJECTORY the window's frames (B, K - 1, *S) of y (B, nframes - 1, *S); y itself otherwise. */
opl_tensor *opl_task_target(opl_ctx *c, const opl_task *task, opl_tensor *y);

/* The objective plus the model's regularizer after opl_task_predict of the same batch: for a
 * TRAJECTORY task whose model has one (operators/node_model.h), loss + lambda(e, E) R with R
 * drawn from seed (local modes); loss itself otherwise or when lambda is 0. *reg (NULL allowed)
 * receives the value of lambda(e, E) R, computed apart from the loss (0 without a term). Sticky
 * errors. */
opl_tensor *opl_task_regularize(opl_ctx *c, const opl_model *m, const opl_task *task, opl_tensor *loss, int64_t e,
                                int64_t E, uint64_t seed, double *reg);

/* The solver statistics of the model's last prediction: 1 and *nfe, *accepted, *rejected for a
 * TRAJECTORY task on a model that integrates in time; 0 otherwise. */
int opl_task_solver_stats(const opl_task *task, const opl_model *m, int64_t *nfe, int64_t *accepted,
                          int64_t *rejected);

/* Evaluations of the local regularizer's extra step (opl_nde_local_reg) since the model's last
 * solve: 0 when none was taken (a global or no regularizer), -1 when the task is not TRAJECTORY
 * or the model does not integrate in time. Not counted in opl_task_solver_stats's nfe. */
int64_t opl_task_local_nfe(const opl_task *task, const opl_model *m);

#endif
