/* opl train — evaluation of a trained model (any kind, through operators/model.h) on the last
 * samples of a data set, at the data set's resolution or a sub-sampled one (normalizers
 * resampled), with the bounded-memory inference path of the task (opl_task_infer). */
#ifndef OPL_TRAIN_EVALUATE_H
#define OPL_TRAIN_EVALUATE_H

#include <stdint.h>
#include "core/opl.h"
#include "datasets/loader.h"
#include "datasets/normalizer.h"
#include "operators/model.h"
#include "train/task.h"


/* A trained model as loaded from a checkpoint, ready for evaluation. */
typedef struct opl_trained {
  opl_model model;          /* owns its parameters */
  opl_task task;
  opl_normalizer *xn, *yn;  /* at the training resolution, or NULL */
  int64_t nx, ny;           /* training resolution (after sub) */
  int64_t ntest;            /* the test split size the model was trained with */
  int sub;                  /* the training sub-sampling */
  int64_t epochs;           /* epochs trained */
} opl_trained;

/* Load a model written by a trainer (or, with task STATIC and no normalization assumed, any
 * model file of opl_model_save / opl_fno_save), of any registered kind. On failure *m is zeroed. */
int opl_trained_load(const char *path, opl_trained *m, opl_err *err);
void opl_trained_free(opl_trained *m);

typedef struct opl_eval_opts {
  int64_t ntest;            /* evaluate the last ntest samples (0: the model's ntest, capped at N) */
  int sub;                  /* sub-sampling of the data set (1: its own resolution) */
  int64_t batch;            /* samples per forward pass (0: 20; continuous tasks: 1) */
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
  /* Continuous tasks (trajectory; integrated one trajectory per solve unless o->batch says
   * otherwise), else NULL: evaluations of the vector field, accepted and rejected steps of the
   * solve that predicted each sample. */
  int64_t *nfe, *accepted, *rejected;
  /* Step-by-step tasks (rollout, onestep, step), else NULL: [n, cout] the relative L2 of each
   * sample's predicted frame after step s + 1 of the rollout (row-major: sample, step; the step
   * task rolls out over the cout = nframes - t_in frames after its first t_in). */
  double *step_rel;
  /* The step task (STEP, windowed), else NAN: the teacher-forced one-step relative L2 averaged
   * over the samples and every start time s < cout (the model fed the true frames s .. s + t_in - 1
   * before frame s + t_in). */
  double onestep;
} opl_eval_result;

/* Evaluate a trained model on the last ntest samples of ds at ds's resolution divided by sub
 * (normalizers resampled to it when it differs from the training resolution). Errors: a data
 * set that does not fit the task (frames, dimension) or ntest > N OPL_ERR_ARG; modes beyond
 * half the resolution OPL_ERR_SHAPE (from the forward). r is zeroed first and owns its arrays
 * (opl_eval_result_free). */
int opl_evaluate(const opl_trained *m, opl_ds *ds, const opl_eval_opts *o, opl_eval_result *r, opl_err *err);
void opl_eval_result_free(opl_eval_result *r);

#endif
