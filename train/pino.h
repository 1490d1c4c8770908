/* opl train — the physics losses of the physics-informed neural operator (PINO: Li, Zheng,
 * Kovachki, Jin, Chen, Liu, Azizzadenesheli, Anandkumar, "Physics-Informed Neural Operator for
 * Learning Partial Differential Equations", 2021, arXiv:2111.03794), added to the data loss of
 * the space-time task (train/task.h):
 *
 *     loss = data + W sum_b mean_{t,x} R_b^2 + V sum_b mean_x (u_b(x, 0) - a_b(x))^2
 *
 * R = opl_resid_op (pde/residual.h) of the DECODED prediction (physical units: the model's
 * output after the target normalizer), u_b(., 0) its first frame and a_b the raw input (the
 * initial state). Each term is a per-sample mean square summed over the batch, as the data loss
 * (the batch-summed relative L2 of the FNO recipe) is, so W and V weigh per sample whatever the
 * batch size. The residual needs the data set's equation and parameters (its provenance,
 * pde/residual.h) and uniformly spaced frames; the initial-condition term needs the output to
 * hold t = 0 (the space-time task with T_in = 0).
 */
#ifndef OPL_TRAIN_PINO_H
#define OPL_TRAIN_PINO_H

#include "core/opl.h"
#include "datasets/h5layout.h"
#include "pde/residual.h"
#include "train/task.h"

typedef struct opl_pino opl_pino;

/* OPL_OK if W (pde_weight) and V (ic_weight) are finite and >= 0, else OPL_ERR_ARG naming
 * the weight. */
int opl_pino_check_weights(double pde_weight, double ic_weight, opl_err *err);

/* The physics terms of a run of task on the data set of info (sub-sampling does not matter:
 * the residual takes the resolution of each batch). *out = NULL when both weights are 0.
 * Errors (OPL_ERR_ARG, with a message without module tag naming the reason and the file): a
 * weight < 0 or not finite; a task other than the space-time one; V > 0 without T_in = 0; fewer
 * than 3 predicted frames; a data set with per-sample domain lengths or times
 * (opl_ds_per_sample_coords), without times, with non-uniform frame times, or whose
 * provenance lacks what the residual needs (opl_resid_from_provenance). */
int opl_pino_new(const opl_task *task, double pde_weight, double ic_weight, const opl_ds_info *info, opl_pino **out,
                 opl_err *err);
void opl_pino_free(opl_pino **p);
/* The residual evaluator (NULL when W = 0). */
const opl_resid *opl_pino_resid(const opl_pino *p);

/* loss + W * pde + V * ic (above) for the decoded prediction pred (B, T, *S) of the raw input x
 * (B, 1, *S) (V > 0 only: its a); *pde_sum and *ic_sum (either may be NULL) receive the
 * unweighted batch sums (NaN for a term whose weight is 0). p NULL returns loss. Sticky errors. */
opl_tensor *opl_pino_loss(opl_ctx *c, opl_pino *p, opl_tensor *loss, opl_tensor *pred, opl_tensor *x, double *pde_sum,
                          double *ic_sum);

#endif
