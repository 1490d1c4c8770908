/* opl — first-order optimizers and learning-rate schedulers with PyTorch semantics.
 *
 * Optimizers (SUNDIALS-style object: create / set / step / get / free):
 *   SGD   torch.optim.SGD   (momentum, dampening, Nesterov, L2 weight decay);
 *   Adam  torch.optim.Adam  (Kingma & Ba, "Adam: a method for stochastic optimization",
 *                            ICLR 2015; weight decay as L2 added to the gradient);
 *   AdamW torch.optim.AdamW (Loshchilov & Hutter, "Decoupled weight decay regularization",
 *                            ICLR 2019: p -= lr wd p before the Adam step).
 * The update formulas are those of the algorithm boxes of the torch.optim documentation
 * (amsgrad, maximize and foreach options left out). One learning rate for all parameters.
 *
 * A complex parameter is updated as independent (re, im) real pairs, as PyTorch does
 * (torch.view_as_real): Adam's second moment is kept per real component, not |z|^2.
 *
 * All optimizer state lives in an opl_params set owned by the optimizer, so a checkpoint
 * writer can save and restore it generically (write back into the same tensors' data):
 *   "step"                    (1)  number of steps taken, stored as a real (exact up to 2^24
 *                                  steps in single builds);
 *   "sgd.b/<param>"                SGD momentum buffer (only when momentum != 0);
 *   "adam.m/<param>", "adam.v/<param>"  Adam/AdamW first and second moments.
 * State tensors have the parameter's shape and complex flag and no gradient (grad NULL).
 * A parameter name longer than 63 characters minus the prefix is an error at create.
 */
#ifndef OPL_OPTIM_H
#define OPL_OPTIM_H

#include "core/opl.h"

typedef enum { OPL_OPTIM_SGD, OPL_OPTIM_ADAM, OPL_OPTIM_ADAMW } opl_optim_kind;

typedef struct opl_optim_config {
  double lr;            /* learning rate, >= 0 */
  double weight_decay;  /* >= 0; SGD/Adam: L2 term wd*p added to the gradient; AdamW: decoupled */
  double momentum;      /* SGD: >= 0 */
  double dampening;     /* SGD: in [0, 1] */
  int nesterov;         /* SGD: needs momentum > 0 and dampening = 0 */
  double beta1, beta2;  /* Adam/AdamW: each in [0, 1) */
  double eps;           /* Adam/AdamW: > 0 */
} opl_optim_config;

typedef struct opl_optim opl_optim;

/* PyTorch's defaults for kind: lr 1e-3; SGD momentum 0, dampening 0, no Nesterov, wd 0;
 * Adam betas (0.9, 0.999), eps 1e-8, wd 0; AdamW the same with wd 1e-2. */
opl_optim_config opl_optim_defaults(opl_optim_kind kind);
/* "sgd", "adam", "adamw" (or "unknown"). */
const char *opl_optim_kind_name(opl_optim_kind kind);

/* Create an optimizer over every parameter currently in params (which must outlive it and
 * keep the same tensors; data and grad are used in place). cfg NULL: the defaults. State
 * buffers are allocated zeroed here, so step() allocates nothing. Returns NULL and fills
 * err on a bad kind or configuration (OPL_ERR_ARG, the message names the offending value),
 * an empty or NULL params set, a too-long state name, or out of memory. */
opl_optim *opl_optim_create(opl_optim_kind kind, opl_params *params, const opl_optim_config *cfg,
                            opl_err *err);
/* One update of every parameter from its .grad (gradients are read, not cleared). Returns
 * OPL_OK, or OPL_ERR_STATE (err filled, nothing updated) if the params set no longer matches the
 * one given at create (parameters added or removed, a tensor replaced). */
int opl_optim_step(opl_optim *o, opl_err *err);
/* Set the learning rate (>= 0, finite); OPL_ERR_ARG with err filled otherwise (lr unchanged). */
int opl_optim_set_lr(opl_optim *o, double lr, opl_err *err);
double opl_optim_get_lr(const opl_optim *o);
/* The configuration in use (lr included). */
opl_optim_config opl_optim_get_config(const opl_optim *o);
opl_optim_kind opl_optim_get_kind(const opl_optim *o);
/* Number of steps taken (read from the "step" state tensor). */
int64_t opl_optim_get_steps(const opl_optim *o);
/* The optimizer's state set (see above); owned by the optimizer. */
opl_params *opl_optim_state(opl_optim *o);
/* Free the optimizer and its state (not the parameters); sets *o to NULL. Accepts NULL. */
void opl_optim_free(opl_optim **o);

/* ---------------------------------------------------------------- schedulers
 * PyTorch lr schedulers, stepped once per epoch after the epoch's optimizer steps. Each is a
 * small struct whose public fields are its whole state (save and restore them as numbers;
 * after restoring, apply opl_sched_*_lr() with opl_optim_set_lr). init reads the
 * optimizer's current lr as base_lr (o may be NULL: then base_lr is given by lr0) and sets
 * last_epoch = 0, like a PyTorch scheduler right after construction. step() advances one
 * epoch, sets the new lr on o (if not NULL) and returns it. init returns OPL_OK or OPL_ERR_ARG
 * with a message naming the bad value. */

/* StepLR: lr = base_lr gamma^floor(last_epoch / step_size). */
typedef struct opl_sched_steplr {
  double base_lr, gamma;
  int64_t step_size;
  int64_t last_epoch;
} opl_sched_steplr;
int opl_sched_steplr_init(opl_sched_steplr *s, opl_optim *o, double lr0, int64_t step_size,
                          double gamma, opl_err *err);
double opl_sched_steplr_step(opl_sched_steplr *s, opl_optim *o);
double opl_sched_steplr_lr(const opl_sched_steplr *s);

/* CosineAnnealingLR, closed form (Loshchilov & Hutter, "SGDR", ICLR 2017):
 * lr = eta_min + (base_lr - eta_min) (1 + cos(pi last_epoch / T_max)) / 2. */
typedef struct opl_sched_cosine {
  double base_lr, eta_min;
  int64_t t_max;
  int64_t last_epoch;
} opl_sched_cosine;
int opl_sched_cosine_init(opl_sched_cosine *s, opl_optim *o, double lr0, int64_t t_max,
                          double eta_min, opl_err *err);
double opl_sched_cosine_step(opl_sched_cosine *s, opl_optim *o);
double opl_sched_cosine_lr(const opl_sched_cosine *s);

/* ReduceLROnPlateau, mode 'min', threshold_mode 'rel': a metric is better when
 * metric < best (1 - threshold). After more than `patience` epochs without improvement,
 * lr = max(lr factor, min_lr) (only if that changes lr by more than eps = 1e-8), then
 * `cooldown` epochs during which bad epochs are not counted. */
typedef struct opl_sched_plateau {
  /* settings */
  double factor;          /* in (0, 1); PyTorch default 0.1 */
  int64_t patience;       /* >= 0; default 10 */
  double threshold;       /* >= 0; default 1e-4 */
  int64_t cooldown;       /* >= 0; default 0 */
  double min_lr;          /* >= 0; default 0 */
  /* state */
  double lr;              /* current learning rate */
  double best;            /* best metric so far (+inf before the first step) */
  int64_t num_bad_epochs;
  int64_t cooldown_counter;
  int64_t last_epoch;
} opl_sched_plateau;
/* Settings are taken from the fields of *s already set by the caller; call
 * opl_sched_plateau_defaults first to get PyTorch's. */
void opl_sched_plateau_defaults(opl_sched_plateau *s);
int opl_sched_plateau_init(opl_sched_plateau *s, opl_optim *o, double lr0, opl_err *err);
/* Advance one epoch with this epoch's metric (a NaN metric counts as not better). */
double opl_sched_plateau_step(opl_sched_plateau *s, opl_optim *o, double metric);
double opl_sched_plateau_lr(const opl_sched_plateau *s);

#endif
