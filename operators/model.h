/* opl operators — one interface for every trainable operator.
 *
 * A model is a table of functions (opl_model_ops) beside the model's own state (self), in the
 * manner of SUNDIALS' N_Vector ops (Hindmarsh et al., "SUNDIALS: Suite of nonlinear and
 * differential/algebraic equation solvers", ACM TOMS 31(3), 2005, the generic N_Vector
 * module) or of an FFTW plan: the trainer, the evaluator, checkpoints and `opl summary` know a
 * model only through this table, never through its fields. A new model kind provides
 *   1. its ops (the table below) and a state struct it owns (self);
 *   2. a kind (opl_model_kind): its name, the size of its configuration struct, and
 *      functions that create a model from a configuration, read a configuration back from
 *      checkpoint attributes, and set the input and output channels a task asks for;
 *   3. a row in the registry (model.c: opl_model_kinds).
 * The FNO (operators/fno.h) and the MLP (operators/mlp.h) implement it.
 *
 * Contract of the ops (every function pointer is required unless marked optional):
 *
 *   name       the kind's name as written in checkpoints ("fno"); equal to its kind's name.
 *   forward    the prediction on the tape of c: x -> y, both arena tensors in the layout the
 *              model documents (operators: (N, Cin, *S) -> (N, Cout, *S)). Errors are sticky
 *              in c and NULL is returned; a shape that does not fit names both shapes. With
 *              gradient recording off (opl_ctx_set_grad_enabled) it is the tape-free
 *              inference path of the model (the fused FNO layers then keep one activation
 *              each); the dispatch is one indirect call per forward, never per op.
 *   check_input  OPL_OK if an input of shape[0..rank) (batch first) can be fed to forward,
 *              else a status with a message; axis[a] (may be NULL, or an entry NULL) describes
 *              spatial axis a for the message ("axis X of 'data.h5': 16 points (32 / sub 2)").
 *   to_meta    write the configuration as checkpoint attributes into kv[0..OPL_MODEL_META_MAX),
 *              the first one "model" = name; keys and string values are static or live as
 *              long as self. Returns the number written. The kind's config_from_meta reads them.
 *   describe   a one-line description into buf[0..cap) ("FNO-1d (modes 16, width 64, 4 layers)").
 *   summary    the layer table: up to cap rows (name, output shape, parameters); returns the
 *              number of rows (which may exceed cap: then only cap were written). The
 *              parameters of the rows add up to the model's parameter count.
 *   free       release self (not the parameters: they belong to the opl_model's set).
 *   samplewise (a flag, 0 unless set) 1 when each sample's output is a function of that sample
 *              alone, whatever the batch (no statistics over the batch, no step control shared by
 *              it): inference may then cut a batch over a team of threads (core/par.h,
 *              opl_task_infer_team), one context and one thread per slice.
 *
 * The parameters live in the opl_model's set (params), in the order and under the names the
 * model documents; optimizers and checkpoints see only that set. */
#ifndef OPL_MODEL_H
#define OPL_MODEL_H

#include <stddef.h>
#include "core/ops.h"
#include "core/rng.h"
#include "core/io.h"

/* Attributes a model's to_meta writes at most. */
#define OPL_MODEL_META_MAX 40

/* One row of a layer summary. */
typedef struct opl_model_row {
  char name[48];      /* "fc0 (lifting)", "fourier2", ... */
  char shape[64];     /* output shape, symbolic: "(N, 64, X)" */
  int64_t params;     /* real parameters of the layer (complex counted as 2) */
} opl_model_row;

typedef struct opl_model_ops {
  const char *name;
  opl_tensor *(*forward)(opl_ctx *c, const void *self, opl_tensor *x);
  int (*check_input)(const void *self, int rank, const int64_t *shape, const char *const *axis, opl_err *err);
  int (*to_meta)(const void *self, opl_kv *kv);
  void (*describe)(const void *self, char *buf, size_t cap);
  int (*summary)(const void *self, opl_model_row *rows, int cap);
  void (*free)(void *self);
  int samplewise;
} opl_model_ops;

/* A model: its ops, its state, its parameters and the shape of what it maps. */
typedef struct opl_model {
  const opl_model_ops *ops;
  void *self;
  opl_params params;      /* owned */
  int sdim;               /* spatial axes of the input after batch and channels (0: none) */
  int64_t in_channels;    /* Cin: extent of axis 1 of the input (of the last axis when sdim = 0) */
  int64_t out_channels;   /* Cout, likewise */
} opl_model;

/* A kind of model: how to make one. `config` points at the kind's own configuration struct
 * (opl_fno_config, opl_mlp_config) of config_size bytes. */
typedef struct opl_model_kind {
  const char *name;
  size_t config_size;
  /* Check config and build the model into m (zeroed by the caller, m->params initialized):
   * ops, self, parameters (initialized from rng; rng NULL leaves them zero, for loading),
   * sdim and channels. On failure the caller frees m (opl_model_free). */
  int (*create)(opl_model *m, const void *config, opl_rng *rng, opl_err *err);
  /* Read a configuration from checkpoint attributes (as the model's to_meta writes them). */
  int (*config_from_meta)(const opl_kv *kv, int n, void *config, opl_err *err);
  /* Set in config what a task determines: sdim spatial axes, cin input and cout output
   * channels. OPL_ERR_ARG (or OPL_ERR_UNSUPPORTED) if the kind cannot take that shape. */
  int (*set_io)(void *config, int sdim, int64_t cin, int64_t cout, opl_err *err);
} opl_model_kind;

/* The registry: every kind, NULL-terminated ("fno", "mlp"). */
extern const opl_model_kind *const opl_model_kinds[];
/* The kind named name, or NULL. */
const opl_model_kind *opl_model_kind_find(const char *name);
/* The names of the registered kinds, comma separated, into buf (for messages). */
const char *opl_model_kind_names(char *buf, size_t cap);

/* Build a model of kind k from config (see opl_model_kind.create); *m is zeroed first. On
 * failure *m is left empty (nothing to free). */
int opl_model_create(opl_model *m, const opl_model_kind *k, const void *config, opl_rng *rng, opl_err *err);
/* Free the state and the parameters; *m is zeroed. Accepts a zeroed model. */
void opl_model_free(opl_model *m);

/* m->ops->forward(c, m->self, x): NULL (sticky error in c) on error or when c already holds one. */
opl_tensor *opl_model_forward(opl_ctx *c, const opl_model *m, opl_tensor *x);

/* Autoregressive rollout of any model mapping (N, Cin, *S) -> (N, Cout, *S) with Cout <= Cin:
 * x holds the last Cin frames as channels, oldest first; each step predicts the next Cout
 * frames, appends them to the window and drops the oldest Cout. Returns every prediction
 * concatenated along axis 1: (N, steps Cout, *S), differentiable through the whole rollout
 * (predictions are fed back without detaching). steps >= 1 and Cout <= Cin, else OPL_ERR_ARG. */
opl_tensor *opl_model_rollout(opl_ctx *c, const opl_model *m, opl_tensor *x, int steps);

/* Number of real parameters (complex counted as 2). */
int64_t opl_model_param_count(const opl_model *m);

/* The layer table (rows[0..cap), see the ops) and its total in *total (may be NULL). Returns
 * the number of rows. */
int opl_model_summary(const opl_model *m, opl_model_row *rows, int cap, int64_t *total);

/* Save a model as an opl checkpoint (core/io.h: /model holds its parameters, written atomically
 * in the build's precision), its root attributes the model's (to_meta) followed by
 * extra[0..nextra) (provenance; extra may be NULL when nextra is 0). An extra key equal to a
 * model key is OPL_ERR_ARG. */
int opl_model_save(const char *path, const opl_model *m, const opl_kv *extra, int nextra, opl_err *err);

/* The integer attribute key of kv[0..n) into *out, within [lo, hi]; a missing key is
 * OPL_ERR_NOTFOUND, a non-integer or out-of-range one OPL_ERR_FORMAT, each message starting with
 * "who: " (the model kind reading its configuration). */
int opl_model_meta_int(const opl_kv *kv, int n, const char *who, const char *key, int64_t lo, int64_t hi,
                       int64_t *out, opl_err *err);

/* set_io (opl_model_kind) of a 2-D operator kind: sdim must be 2, else OPL_ERR_UNSUPPORTED
 * "who: a 2-D operator; the task has <sdim> spatial axes" and nothing is set; then *in = cin and
 * *out = cout (the kind's configuration's channel counts). */
int opl_model_set_io_2d(const char *who, int sdim, int64_t cin, int64_t cout, int64_t *in, int64_t *out, opl_err *err);

/* The kind a checkpoint's attributes name: attribute "model" (a string naming a registered
 * kind; OPL_ERR_UNSUPPORTED naming it otherwise), or the FNO when there is no such attribute
 * (files written before the attribute existed). */
int opl_model_kind_of_meta(const opl_kv *kv, int n, const opl_model_kind **k, opl_err *err);

/* Rebuild a model from a checkpoint written by opl_model_save or by the trainer: verifies the
 * file (checksum, format), finds the kind (opl_model_kind_of_meta), reads its configuration,
 * creates the model and loads the parameters strictly (every name and shape must match, no
 * extra dataset). *m is zeroed first and left empty on failure. A checkpoint of the other
 * precision loads (converted). */
int opl_model_load(const char *path, opl_model *m, opl_err *err);

/* A kind and one configuration of it, by value (trainer configurations, checkpoints). */
#define OPL_MODEL_CONFIG_MAX 512
typedef struct opl_model_spec {
  const opl_model_kind *kind;
  union {
    max_align_t align;
    unsigned char bytes[OPL_MODEL_CONFIG_MAX];
  } config;                     /* the kind's configuration struct (kind->config_size bytes) */
} opl_model_spec;

/* s = (k, copy of config). OPL_ERR_ARG for NULL arguments or a configuration larger than
 * OPL_MODEL_CONFIG_MAX. */
int opl_model_spec_set(opl_model_spec *s, const opl_model_kind *k, const void *config, opl_err *err);
/* The kind (opl_model_kind_of_meta) and configuration (its config_from_meta) of checkpoint
 * attributes kv[0..n). */
int opl_model_spec_from_meta(const opl_kv *kv, int n, opl_model_spec *s, opl_err *err);
/* opl_model_create from a spec. */
int opl_model_create_spec(opl_model *m, const opl_model_spec *s, opl_rng *rng, opl_err *err);

#endif
