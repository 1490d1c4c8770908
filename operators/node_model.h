/* opl operators — the neural ODE as a model: du/dt = F(t, u), F a model of the registry (the
 * vector field: an FNO on fields with grid channels, or an MLP on the last axis for ODE-sized
 * states), optionally with the time t as an extra input channel, integrated by the
 * differentiable adaptive Runge-Kutta solver of operators/node.h (Chen, Rubanova, Bettencourt,
 * Duvenaud, "Neural Ordinary Differential Equations", NeurIPS 2018; the solver and its
 * regularizers: Pal, Ma, Shah, Rackauckas, ICML 2021, and Pal, Edelman, Rackauckas, ICML 2023).
 *
 * Kind "node" of the registry (operators/model.h). Its state is the vector-field model (created
 * through the registry from the configuration's vf_kind / vf) and the solver settings. The
 * vector field's parameters are the node's parameters, renamed "vf.<name>" ("vf.fc0.weight"),
 * and its configuration attributes are written under the prefix "vf." ("vf.model" = "fno",
 * "vf.fno.width", ...) beside the node's own ("model" = "node", "node.method", ...).
 *
 * State layout: u (N, C, *S), the layout of the vector field's input without the time channel.
 * With the time channel, the field's input is (N, C + 1, *S) for an FNO (a constant channel t
 * appended) and (N, C, X + 1) for an MLP (t appended to the last axis).
 *
 * forward (the model interface): x = u(t0) (N, C, *S) -> the states at the output times set by
 * opl_node_model_set_times, stacked along axis 1: (N, nt C, *S). The default times are t0 = 0,
 * ts = {1}. The trajectory task (train/task.h) sets them per batch.
 */
#ifndef OPL_OPERATORS_NODE_MODEL_H
#define OPL_OPERATORS_NODE_MODEL_H

#include "operators/model.h"
#include "operators/node.h"

/* The gradient of a solve: operators/node.h's opl_nde_adjoint (same values). The continuous
 * adjoints (backsolve, interp) have no gradient of the global regularizers: a configuration
 * with both is refused (the local ones work with every adjoint). */
typedef enum {
  OPL_NODE_ADJ_DISCRETE = 0,
  OPL_NODE_ADJ_CHECKPOINT = 1,
  OPL_NODE_ADJ_BACKSOLVE = 2,
  OPL_NODE_ADJ_INTERP = 3,
  OPL_NODE_ADJ_COUNT
} opl_node_adjoint;
/* Regularizer terms (bits). */
enum { OPL_NODE_REG_ERROR = 1, OPL_NODE_REG_STIFF = 2 };
typedef enum {
  OPL_NODE_REG_GLOBAL = 0,          /* R_E / R_S over every accepted step of the solve */
  OPL_NODE_REG_LOCAL_UNBIASED = 1,  /* one step from u(t1), t1 uniform on [t0, T) */
  OPL_NODE_REG_LOCAL_BIASED = 2,    /* one step from u(t1), t1 one of the accepted steps' starts */
  OPL_NODE_REG_MODE_COUNT
} opl_node_reg_mode;

#define OPL_NODE_VF_CONFIG_MAX 320

typedef struct opl_node_config {
  char vf_kind[16];             /* the vector field's kind: "fno" or "mlp" */
  union {
    max_align_t align;
    unsigned char bytes[OPL_NODE_VF_CONFIG_MAX];
  } vf;                         /* its configuration struct (set_io fills the shape fields) */
  int sdim;                     /* spatial axes of the state (set_io) */
  int64_t channels;             /* C, state channels (set_io) */
  int64_t state_size;           /* MLP field: extent of the state's last axis (>= 1); FNO: 0 */
  int time_channel;             /* 1: t is an input of the field */
  int method;                   /* opl_rk_method */
  double rtol, atol;            /* > 0 */
  int adjoint;                  /* opl_node_adjoint */
  int reg;                      /* OPL_NODE_REG_* bits, 0: none */
  int reg_mode;                 /* opl_node_reg_mode */
  double lambda0, lambda1;      /* the weight of the regularizer at the first and the last epoch */
  int saveat;                   /* opl_nde_saveat: 0 step onto output times (default), 1 dense
                                 * output; attribute "node.saveat" (absent in older files: step) */
} opl_node_config;

/* A configuration with vector field vf_kind / vf_config (copied; at most OPL_NODE_VF_CONFIG_MAX
 * bytes) and the defaults: Tsit5, rtol 1e-3, atol 1e-6, discrete adjoint, no time channel, no
 * regularizer (lambda 0). OPL_ERR_ARG for a NULL or oversized kind. */
int opl_node_config_init(opl_node_config *cfg, const opl_model_kind *vf_kind, const void *vf_config, opl_err *err);

/* "none", "error", "stiff", "error+stiff" <-> bits; -1 for an unknown name. */
const char *opl_node_reg_name(int reg);
int opl_node_reg_from_name(const char *s);
/* "global", "local-unbiased", "local-biased" <-> opl_node_reg_mode; -1 for an unknown name. */
const char *opl_node_reg_mode_name(int mode);
int opl_node_reg_mode_from_name(const char *s);
/* "discrete", "checkpoint", "backsolve", "interp" <-> opl_node_adjoint; -1 for an unknown name. */
const char *opl_node_adjoint_name(int adj);
int opl_node_adjoint_from_name(const char *s);
/* "step", "dense" <-> opl_nde_saveat; -1 for an unknown name. */
const char *opl_node_saveat_name(int saveat);
int opl_node_saveat_from_name(const char *s);
/* "dp5", "tsit5", "bs3" -> opl_rk_method; -1 for an unknown name. */
int opl_node_method_from_name(const char *s);

extern const opl_model_kind opl_node_kind;
extern const opl_model_ops opl_node_ops;

/* 1 if m is a node model. */
int opl_node_model_is(const opl_model *m);
/* The configuration of a node model, or NULL. */
const opl_node_config *opl_node_model_config(const opl_model *m);

/* The output times of the next forward: start t0 and ts[0..nt), t0 <= ts[0] < ts[1] < ...
 * (copied). OPL_ERR_ARG for a model that is not a node, nt < 1 or times out of order. */
int opl_node_model_set_times(const opl_model *m, double t0, int nt, const double *ts, opl_err *err);
/* Per-sample output times of the next forward, for inputs of exactly B samples: sample b starts
 * at t0[b] and is wanted at ts[b nt .. b nt + nt), increasing after t0[b] (copied; at most 2^20
 * times in all). One solve serves the batch: it runs from relative time 0 through the sorted
 * union of every sample's ts - t0 (du/dt = F(t, u) for the whole batch; a time channel gives
 * row b its absolute time tau + t0[b], so each sample is integrated over ITS times, exactly as
 * alone, with the batch's common adaptive steps), and row b of output frame j is the state at
 * sample b's own j-th time. The forward output is (B, nt C, *S) as with shared times; an input
 * of another batch size is OPL_ERR_SHAPE. opl_node_model_set_times returns to shared times.
 * OPL_ERR_ARG naming the sample for times out of order or non-finite. */
int opl_node_model_set_times_batch(const opl_model *m, int64_t B, const double *t0, int nt, const double *ts,
                                   opl_err *err);

/* Where the outputs of later forwards come from (opl_nde_saveat, node.h); the configuration
 * (and so a checkpoint written later) records it. OPL_ERR_ARG for a model that is no node or a
 * value outside the enum. */
int opl_node_model_set_saveat(opl_model *m, int saveat, opl_err *err);

/* The statistics of the last forward's solve (operators/node.h). OPL_ERR_ARG if m is no node. */
int opl_node_model_stats(const opl_model *m, opl_nde_stats *st, opl_err *err);
/* The model's solver (read only: opl_nde_num_steps, opl_nde_step give the last forward's accepted
 * steps t_j, h_j, EEst_j), or NULL if m is no node. */
const opl_nde *opl_node_model_nde(const opl_model *m);
/* Distribute later forwards and their backward passes over the ranks (opl_nde_set_dist, node.h:
 * each rank's input is its rows of one batch; every rank calls them together); on = 0 returns to
 * single-process solves. Returns the previous setting (0 for a model that is no node). */
int opl_node_model_set_dist(const opl_model *m, int on);

/* The regularizer weight at epoch e of E (1-based): lambda0 when E = 1 or lambda1 = lambda0,
 * else the exponential decay lambda0 (lambda1 / lambda0)^((e - 1) / (E - 1)) (both > 0). */
double opl_node_model_lambda(const opl_node_config *cfg, int64_t e, int64_t E);

/* The configured regularizer of the last forward's solve, on c (a scalar tensor; the sum of the
 * selected terms R_E and R_S; global: opl_nde_reg_error / opl_nde_reg_stiff with the paper's sum
 * and max; local: opl_nde_local_reg_draw with seed). NULL with a sticky error in c when m is no
 * node, the model has no regularizer or the solve is gone. */
opl_tensor *opl_node_model_reg(opl_ctx *c, const opl_model *m, uint64_t seed);

#endif
