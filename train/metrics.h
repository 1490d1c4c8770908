/* opl train — metrics of operator learning: per-sample relative L2 errors, their summary, and
 * the per-epoch metrics log (CSV) written beside a model checkpoint.
 *
 * The relative L2 error of a prediction p of a target v (one sample, all channels and points)
 * is ||p - v||_2 / ||v||_2, the quantity of the FNO paper's tables and of its reference code's
 * LpLoss.rel (Li et al., "Fourier Neural Operator for Parametric Partial Differential
 * Equations", ICLR 2021; utilities3.py of github.com/zongyi-li/fourier_neural_operator).
 * Sums are accumulated in double, whatever the build's precision.
 *
 * A mean of relative errors is dominated by samples whose target is nearly zero (the ratio
 * blows up); the summary therefore also gives the median and the worst sample, and flags
 * samples whose target norm is below OPL_METRICS_TINY times the median target norm.
 *
 * Nothing here prints; the CSV writer writes the file it is given and nothing else.
 */
#ifndef OPL_TRAIN_METRICS_H
#define OPL_TRAIN_METRICS_H

#include <stdint.h>
#include "core/opl.h"

/* A target whose norm is below this fraction of the median target norm is "tiny". */
#define OPL_METRICS_TINY 1e-3

/* Per-sample relative L2 errors: pred, truth [n, m] (n samples of m values each) ->
 * rel[j] = ||pred_j - truth_j|| / ||truth_j|| and, when tnorm is not NULL, tnorm[j] =
 * ||truth_j||. A zero target gives rel = +inf when the prediction differs from it, 0 when it
 * is zero too. Parallel over samples (OpenMP); does not allocate. */
void opl_rel_l2_per_sample(const opl_real *pred, const opl_real *truth, int64_t n, int64_t m,
                           double *rel, double *tnorm);

/* Summary of n >= 1 per-sample errors. */
typedef struct opl_err_summary {
  int64_t n;            /* samples */
  double mean;          /* mean relative error */
  double median;        /* median (mean of the two middle values for even n) */
  double worst;         /* largest relative error (a NaN counts as the largest) */
  int64_t worst_index;  /* its position in rel[] */
  double median_tnorm;  /* median target norm (NaN when tnorm was not given) */
  int64_t ntiny;        /* samples with tnorm < OPL_METRICS_TINY * median_tnorm */
} opl_err_summary;

/* Summarize rel[0..n) (and tnorm[0..n) when not NULL). When tiny is not NULL, the positions
 * of the tiny-target samples are written to tiny[0..ntiny) (capacity n). Returns OPL_OK, or
 * OPL_ERR_ARG for n < 1 / NULL rel, OPL_ERR_NOMEM. */
int opl_err_summarize(const double *rel, const double *tnorm, int64_t n, opl_err_summary *s,
                      int64_t *tiny, opl_err *err);

/* ---------------------------------------------------------------- epochs */

/* What one training epoch measured (train/trainer.h fills it). */
typedef struct opl_epoch_stats {
  int64_t epoch;          /* epochs completed, 1-based */
  double train_loss;      /* the training objective per sample: sum over the epoch of the
                             batch-summed relative L2 errors / ntrain (time stepping: per
                             step as well, i.e. / (ntrain T)) */
  double train_l2;        /* mean relative L2 of the training predictions (time stepping: of
                             the full trajectory); equals train_loss for one-shot problems */
  double test_l2;         /* mean relative L2 on the test split (full trajectory); NaN if none */
  double lr;              /* learning rate used during the epoch */
  double seconds;         /* wall time of the epoch, training and test evaluation */
  double train_seconds;   /* wall time of the training steps alone */
  double samples_per_s;   /* training samples per second of train_seconds */
  /* Tasks that integrate with an adaptive solver (trajectory), NaN otherwise: */
  double nfe;             /* mean evaluations of the vector field per training batch (forward
                             solve, starting-step trial included) */
  double accepted;        /* mean accepted steps per training batch */
  double rejected;        /* mean rejected steps per training batch */
  double test_nfe;        /* mean evaluations per test trajectory over the whole stored time
                             span; the test batch is solved together, so each trajectory is
                             charged its batch's evaluations (opl eval solves one at a time) */
  double local_nfe;       /* mean evaluations per training batch of the local regularizer's extra
                             step (opl_nde_local_reg: 8 for DP5 / Tsit5; 0 without it), not in nfe */
  double reg_ratio;       /* sum over the epoch's batches of lambda R (the regularizer term of
                             the objective) over the sum of their data losses; 0 without one */
  /* Runs with physics losses (train/pino.h), NaN otherwise or for a term of weight 0: */
  double pde_loss;        /* mean over the training samples of the mean square PDE residual */
  double ic_loss;         /* mean over the training samples of the mean square of u(t = 0) - a */
} opl_epoch_stats;

/* The metrics log path of a model path: "MODEL.h5" -> "MODEL.csv" (a trailing ".h5", ".hdf5"
 * or ".hdf" is replaced; otherwise ".csv" is appended) into buf[size]. Returns OPL_OK or
 * OPL_ERR_ARG when it does not fit. */
int opl_metrics_csv_path(const char *model_path, char *buf, size_t size, opl_err *err);

typedef struct opl_metrics_log opl_metrics_log;

/* Header line of the CSV file (without newline). */
#define OPL_METRICS_CSV_HEADER \
  "epoch,train_loss,train_l2,test_l2,lr,seconds,train_seconds,samples_per_s"

/* Columns appended to the header by logs of solver tasks (opl_metrics_log_open_cols). */
#define OPL_METRICS_CSV_SOLVER \
  ",nfe_per_batch,accepted_per_batch,rejected_per_batch,test_nfe_per_trajectory,local_reg_nfe_per_batch,reg_to_loss"
/* Columns appended (after those) by logs of runs with physics losses. */
#define OPL_METRICS_CSV_PINO ",pde_loss,ic_loss"
/* The column sets of opl_metrics_log_open_cols. */
enum { OPL_METRICS_COLS_SOLVER = 1, OPL_METRICS_COLS_PINO = 2 };

/* Open the metrics log at path. keep_epochs <= 0: start a new log (header only) under the
 * temporary name "<path>.tmp.<pid>", which replaces any old file at path only at
 * opl_metrics_log_commit (called when the run's first checkpoint is written), so a run that
 * fails before its first checkpoint leaves the old log of the old model in place and no log of
 * its own. keep_epochs > 0 (resuming after that many epochs): keep the header and the rows of
 * epochs 1..keep_epochs of an existing log and drop later rows (epochs run after the checkpoint
 * that is resumed were lost with it); a missing file starts a new one, a file whose first line
 * is not the header is OPL_ERR_FORMAT. The file is rewritten atomically (temporary + rename).
 * Returns NULL and fills err on failure (OPL_ERR_IO naming the path). */
opl_metrics_log *opl_metrics_log_open(const char *path, int64_t keep_epochs, opl_err *err);
/* The same with the solver columns (OPL_METRICS_CSV_SOLVER) after the others when solver has
 * OPL_METRICS_COLS_SOLVER (1): each row then also holds nfe, accepted, rejected, test_nfe,
 * local_nfe and reg_ratio (opl_epoch_stats); and then the physics columns (OPL_METRICS_CSV_PINO:
 * pde_loss, ic_loss) when it has OPL_METRICS_COLS_PINO. */
opl_metrics_log *opl_metrics_log_open_cols(const char *path, int64_t keep_epochs, int solver, opl_err *err);
/* Append one row and flush it. OPL_OK or OPL_ERR_IO. */
int opl_metrics_log_write(opl_metrics_log *l, const opl_epoch_stats *s, opl_err *err);
/* Move a new log from its temporary name to its path (fsync, rename); later rows append
 * there. A no-op for a log already in place. OPL_OK or OPL_ERR_IO naming the path. */
int opl_metrics_log_commit(opl_metrics_log *l, opl_err *err);
/* Close; sets *l to NULL. A new log never committed is removed. Accepts NULL. */
void opl_metrics_log_close(opl_metrics_log **l);

#endif
