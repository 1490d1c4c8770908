/* opl train — tasks (see task.h): one table of kinds, read by every function below. */
#include <math.h>
#include <string.h>

#include "operators/fno.h"
#include "operators/node_model.h"
#include "train/task.h"

/* ================================================================ the kinds */

typedef struct task_row {
  const char *name;
  int frames;               /* 0: input a and one target frame; 1: input and target are frame ranges */
  int data_sdim;            /* the data set's spatial dimension it needs (0: 1 or 2) */
  int model_sdim;           /* the model's spatial axes (0: the data's; -1: the data's and time) */
  int stepwise;             /* predicts step by step, feeding predictions back */
  int normalize_1d, normalize_2d; /* the reference script's normalization on 1-D / 2-D data */
  int continuous;           /* integrates through the stored times (no normalization) */
  /* The model part of the prediction: x (encoded) -> y (before decoding). */
  opl_tensor *(*predict)(opl_ctx *c, const opl_model *m, const opl_task *task, opl_tensor *x);
  int windowed;             /* STEP: random-start one-step windows; rolled out in evaluation */
} task_row;

static opl_tensor *predict_static(opl_ctx *c, const opl_model *m, const opl_task *task, opl_tensor *x) {
  (void)task;
  return opl_model_forward(c, m, x);
}

static opl_tensor *predict_rollout(opl_ctx *c, const opl_model *m, const opl_task *task, opl_tensor *x) {
  if (task->t_out > 1 << 30) {
    opl_ctx_error(c, OPL_ERR_ARG, "task_predict: %lld rollout steps", (long long)task->t_out);
    return NULL;
  }
  return opl_model_rollout(c, m, x, (int)task->t_out);
}

/* The frames of the space-time task's output: t_out, and the frame t = 0 too when the input is
 * the initial state a (t_in = 0). */
static int64_t spacetime_frames(const opl_task *task) { return task->t_out + (task->t_in == 0); }

static opl_tensor *predict_spacetime(opl_ctx *c, const opl_model *m, const opl_task *task, opl_tensor *x) {
  /* (B, C, *S) -> (B, C, *S, T) (each channel repeated along a new time axis: fourier_3d.py's
   * input in 2-D) -> model -> (B, 1, *S, T) -> (B, T, *S) */
  int r = x->rank;
  int64_t T = spacetime_frames(task), s[OPL_MAX_RANK];
  if (r != 3 && r != 4) {
    char b[96];
    opl_ctx_error(c, OPL_ERR_SHAPE, "task_predict: the space-time task takes (B, C, X) or (B, C, X, Y), got %s",
                  opl_shape_str(b, x->rank, x->shape));
    return NULL;
  }
  opl_tensor *xt = r == 4 ? opl_fno3d_input(c, x, T) : NULL;
  if (r == 3) /* x (B, C, X, 1) + zeros (T): the repetition; its backward sums over the new axis */
    xt = opl_add(c, opl_reshape(c, x, OPL_DIMS(x->shape[0], x->shape[1], x->shape[2], 1)), opl_zeros(c, OPL_DIMS(T)));
  opl_tensor *h = xt ? opl_model_forward(c, m, xt) : NULL;
  if (!h) return NULL;
  if (h->rank != r + 1 || h->shape[1] != 1 || h->shape[r] != T) {
    char b[96];
    opl_ctx_error(c, OPL_ERR_SHAPE, "task_predict: the space-time task needs a model output (B, 1, %s, %lld), got %s",
                  r == 4 ? "X, Y" : "X", (long long)T, opl_shape_str(b, h->rank, h->shape));
    return NULL;
  }
  s[0] = h->shape[0];
  for (int i = 2; i <= r; i++) s[i - 1] = h->shape[i];
  h = opl_reshape(c, h, r, s);
  static const int perm3[3] = {0, 2, 1}, perm4[4] = {0, 3, 1, 2};
  return opl_permute(c, h, r == 4 ? perm4 : perm3);
}

/* TRAJECTORY: x (B, nframes, *S) -> the state at the window's first snapshot (B, 1, *S),
 * integrated by the model through the window's other K - 1 times -> (B, K - 1, *S). */
static opl_tensor *predict_trajectory(opl_ctx *c, const opl_model *m, const opl_task *task, opl_tensor *x) {
  int64_t K = task->t_out + 1, s = task->start;
  if ((!task->times && !task->times_ps) || s < 0 || s + K > task->nframes || x->rank < 3 ||
      x->shape[1] != task->nframes) {
    opl_ctx_error(c, OPL_ERR_ARG,
                  "task_predict: trajectory window [%lld, %lld) outside the %lld stored snapshots (or no times)",
                  (long long)s, (long long)(s + K), (long long)task->nframes);
    return NULL;
  }
  if (K - 1 > 1 << 30) {
    opl_ctx_error(c, OPL_ERR_ARG, "task_predict: a window of %lld snapshots", (long long)K);
    return NULL;
  }
  opl_err e;
  if (task->times_ps) {
    /* Each sample's own window: start times t0 [B], output times [B, K - 1]. */
    int64_t B = x->shape[0];
    if (!task->samples || task->nsamples != B) {
      opl_ctx_error(c, OPL_ERR_ARG,
                    "task_predict: per-sample times need the batch's sample indices (%lld given for %lld samples)",
                    (long long)(task->samples ? task->nsamples : 0), (long long)B);
      return NULL;
    }
    double *t0 = opl_arena_alloc(c, sizeof(double) * (size_t)B),
           *ts = opl_arena_alloc(c, sizeof(double) * (size_t)(B * (K - 1)));
    if (!t0 || !ts) return NULL;
    for (int64_t b = 0; b < B; b++) {
      const double *row = task->times_ps + task->samples[b] * task->nframes;
      t0[b] = row[s];
      memcpy(ts + b * (K - 1), row + s + 1, sizeof(double) * (size_t)(K - 1));
    }
    if (opl_node_model_set_times_batch(m, B, t0, (int)(K - 1), ts, &e)) {
      opl_ctx_error(c, e.status, "task_predict: %s", e.msg);
      return NULL;
    }
    return opl_model_forward(c, m, opl_slice(c, x, 1, s, 1));
  }
  if (opl_node_model_set_times(m, task->times[s], (int)(K - 1), task->times + s + 1, &e)) {
    opl_ctx_error(c, e.status, "task_predict: %s", e.msg);
    return NULL;
  }
  return opl_model_forward(c, m, opl_slice(c, x, 1, s, 1));
}

/* STEP: x (B, nframes, X, Y) (every stored frame, encoded) -> the model's prediction of frame
 * start + t_in from frames start .. start + t_in - 1: (B, 1, X, Y). */
static opl_tensor *predict_step(opl_ctx *c, const opl_model *m, const opl_task *task, opl_tensor *x) {
  if (task->start < 0 || task->start + task->t_in >= x->shape[1] || x->rank != 4) {
    char b[96];
    opl_ctx_error(c, OPL_ERR_ARG, "task_predict: step window [%lld, %lld] outside the frames of x %s",
                  (long long)task->start, (long long)(task->start + task->t_in), opl_shape_str(b, x->rank, x->shape));
    return NULL;
  }
  return opl_model_forward(c, m, opl_slice(c, x, 1, task->start, task->t_in));
}

/* ONESTEP: x (B, t_in + T - 1, *S) holds every input frame of the T pairs; the pairs' windows
 * [k, k + t_in) are stacked into one batch (B T, t_in, *S), row b T + k (for t_in = 1 that is x
 * itself reshaped), one forward, and the predictions reshaped to (B, T, *S) to face the target
 * frames (B, T, *S). */
static opl_tensor *predict_onestep(opl_ctx *c, const opl_model *m, const opl_task *task, opl_tensor *x) {
  int64_t T = task->t_out, tin = task->t_in, s[OPL_MAX_RANK];
  if (x->rank != 4 || x->shape[1] != tin + T - 1 || T > 1 << 20) {
    char b[96];
    opl_ctx_error(c, OPL_ERR_SHAPE, "task_predict: the one-step task takes (B, T_in + T - 1 = %lld, X, Y), got %s",
                  (long long)(tin + T - 1), opl_shape_str(b, x->rank, x->shape));
    return NULL;
  }
  opl_tensor *in = x;
  if (tin > 1) {
    opl_tensor **w = opl_arena_alloc(c, sizeof *w * (size_t)T);
    if (!w) return NULL;
    for (int64_t k = 0; k < T; k++) w[k] = opl_slice(c, x, 1, k, tin);
    in = opl_concat(c, (int)T, w, 1); /* (B, T t_in, X, Y): sample b's windows in order */
  }
  s[0] = x->shape[0] * T, s[1] = tin, s[2] = x->shape[2], s[3] = x->shape[3];
  opl_tensor *y = opl_model_forward(c, m, opl_reshape(c, in, 4, s));
  if (!y) return NULL;
  if (y->shape[1] != 1) {
    char b[96];
    opl_ctx_error(c, OPL_ERR_SHAPE, "task_predict: the one-step task needs a model output of one frame, got %s",
                  opl_shape_str(b, y->rank, y->shape));
    return NULL;
  }
  s[0] = x->shape[0], s[1] = T;
  return opl_reshape(c, y, 4, s);
}

static const task_row task_rows[OPL_TASK_COUNT] = {
    [OPL_TASK_STATIC] = {"static", 0, 0, 0, 0, OPL_NORMALIZE_NONE, OPL_NORMALIZE_GAUSSIAN, 0, predict_static},
    [OPL_TASK_ROLLOUT] = {"rollout", 1, 2, 2, 1, OPL_NORMALIZE_NONE, OPL_NORMALIZE_NONE, 0, predict_rollout},
    [OPL_TASK_SPACETIME] = {"spacetime", 1, 0, -1, 0, OPL_NORMALIZE_GAUSSIAN, OPL_NORMALIZE_GAUSSIAN, 0, predict_spacetime},
    [OPL_TASK_TRAJECTORY] = {"trajectory", 1, 0, 0, 0, OPL_NORMALIZE_NONE, OPL_NORMALIZE_NONE, 1, predict_trajectory},
    [OPL_TASK_ONESTEP] = {"onestep", 1, 2, 2, 1, OPL_NORMALIZE_NONE, OPL_NORMALIZE_NONE, 0, predict_onestep, 0},
    [OPL_TASK_STEP] = {"step", 1, 2, 2, 0, OPL_NORMALIZE_NONE, OPL_NORMALIZE_GAUSSIAN, 0, predict_step, 1},
};

static const task_row *row_of(const opl_task *task) {
  return task && task->kind >= 0 && task->kind < OPL_TASK_COUNT ? &task_rows[task->kind] : NULL;
}

const char *opl_task_name(int kind) {
  return (kind >= 0 && kind < OPL_TASK_COUNT) ? task_rows[kind].name : "unknown";
}

int opl_task_kind_from_name(const char *name) {
  for (int k = 0; name && k < OPL_TASK_COUNT; k++)
    if (!strcmp(name, task_rows[k].name)) return k;
  return -1;
}

int opl_task_check(const opl_task *task, opl_err *err) {
  if (!task) return opl_err_set(err, OPL_ERR_ARG, "train: NULL task");
  const task_row *r = row_of(task);
  if (!r)
    return opl_err_set(err, OPL_ERR_ARG,
                       "train: unknown task kind %d (static, rollout, spacetime, trajectory, onestep, step)", task->kind);
  if (r->windowed && (task->t_in < 1 || task->t_out != 1))
    return opl_err_set(err, OPL_ERR_ARG, "train: step task with %lld history frames and %lld predicted: expected >= 1 and 1",
                       (long long)task->t_in, (long long)task->t_out);
  if (!r->frames) {
    if (task->target_frame < -1)
      return opl_err_set(err, OPL_ERR_ARG, "train: target frame %lld, expected >= 0 or -1 (the last frame)",
                         (long long)task->target_frame);
  } else if (r->continuous && (task->t_in != 1 || task->t_out < 1)) {
    return opl_err_set(err, OPL_ERR_ARG, "train: trajectory window of %lld snapshots, expected >= 2",
                       (long long)(task->t_out + 1));
  } else if (task->kind == OPL_TASK_SPACETIME && (task->t_in < 0 || task->t_out < 1)) {
    return opl_err_set(err, OPL_ERR_ARG,
                       "train: spacetime task with T_in = %lld and T = %lld frames: T_in must be >= 0 (0: from the "
                       "initial state a) and T >= 1", (long long)task->t_in, (long long)task->t_out);
  } else if (task->kind != OPL_TASK_SPACETIME && (task->t_in < 1 || task->t_out < 1)) {
    return opl_err_set(err, OPL_ERR_ARG, "train: %s task with T_in = %lld and T = %lld frames, both must be >= 1",
                       r->name, (long long)task->t_in, (long long)task->t_out);
  }
  return OPL_OK;
}

int opl_task_frames(const opl_task *task) { return row_of(task) && row_of(task)->frames; }

int opl_task_check_data(const opl_task *task, const opl_ds_info *info, opl_err *err) {
  int st = opl_task_check(task, err);
  if (st) return st;
  if (row_of(task)->continuous && task->t_out + 1 > info->dims.t)
    return opl_err_set(err, OPL_ERR_ARG, "the trajectory window of %lld snapshots is longer than the %lld stored in '%s' of '%s'",
                       (long long)(task->t_out + 1), (long long)info->dims.t, info->u_name, info->path);
  if (opl_task_frames(task) && task->t_in + task->t_out > info->dims.t)
    return opl_err_set(err, OPL_ERR_ARG, "the %s task needs T_in + T = %lld + %lld = %lld frames of '%s' in '%s', which has %lld",
                       opl_task_name(task->kind), (long long)task->t_in, (long long)task->t_out,
                       (long long)(task->t_in + task->t_out), info->u_name, info->path, (long long)info->dims.t);
  if (!opl_task_frames(task) && task->target_frame >= info->dims.t)
    return opl_err_set(err, OPL_ERR_ARG, "target frame %lld outside the %lld frames of '%s' in '%s'",
                       (long long)task->target_frame, (long long)info->dims.t, info->u_name, info->path);
  return OPL_OK;
}

int opl_task_selections(const opl_task *task, opl_ds_sel *in, opl_ds_sel *out, opl_err *err) {
  int st = opl_task_check(task, err);
  if (st) return st;
  if (row_of(task)->windowed) {
    if (task->nframes <= task->t_in)
      return opl_err_set(err, OPL_ERR_ARG, "train: step task without its data set's frames (opl_task_set_data)");
    *in = (opl_ds_sel){.with_a = 0, .t0 = 0, .nt = task->nframes};
    *out = (opl_ds_sel){.with_a = 0, .t0 = task->t_in, .nt = task->nframes - task->t_in};
  } else if (row_of(task)->continuous) {
    if (task->nframes < 2) return opl_err_set(err, OPL_ERR_ARG, "train: trajectory task without its data set's snapshots");
    *in = (opl_ds_sel){.with_a = 0, .t0 = 0, .nt = task->nframes};
    *out = (opl_ds_sel){.with_a = 0, .t0 = 1, .nt = task->nframes - 1};
  } else if (!row_of(task)->frames) {
    *in = (opl_ds_sel){.with_a = 1, .t0 = 0, .nt = 0};
    *out = (opl_ds_sel){.with_a = 0, .t0 = task->target_frame, .nt = 1};
  } else if (task->t_in == 0) { /* spacetime from the initial state: a in, (a, frames 0 .. t_out) out */
    *in = (opl_ds_sel){.with_a = 1, .t0 = 0, .nt = 0};
    *out = (opl_ds_sel){.with_a = 1, .t0 = 0, .nt = task->t_out};
  } else {
    /* ONESTEP: every input frame of the t_out pairs */
    *in = (opl_ds_sel){.with_a = 0, .t0 = 0, .nt = task->t_in + (task->kind == OPL_TASK_ONESTEP ? task->t_out - 1 : 0)};
    *out = (opl_ds_sel){.with_a = 0, .t0 = task->t_in, .nt = task->t_out};
  }
  return OPL_OK;
}

int opl_task_model_io(const opl_task *task, int sdim, int *msdim, int64_t *cin, int64_t *cout, opl_err *err) {
  int st = opl_task_check(task, err);
  if (st) return st;
  const task_row *r = row_of(task);
  if (sdim != 1 && sdim != 2) return opl_err_set(err, OPL_ERR_ARG, "train: spatial dimension %d, expected 1 or 2", sdim);
  if (r->data_sdim && sdim != r->data_sdim)
    return opl_err_set(err, OPL_ERR_ARG, "train: the %s task needs 2-D data (frames of (X, Y)), the data set is %d-D",
                       r->name, sdim);
  *msdim = r->model_sdim > 0 ? r->model_sdim : r->model_sdim < 0 ? sdim + 1 : sdim;
  *cin = r->frames && !r->continuous && task->t_in > 0 ? task->t_in : 1;
  *cout = 1;
  return OPL_OK;
}

int opl_task_model_config(const opl_task *task, int sdim, const opl_model_kind *k, void *config, opl_err *err) {
  if (!k || !config) return opl_err_set(err, OPL_ERR_ARG, "train: NULL model kind or configuration");
  int msdim;
  int64_t cin, cout;
  int st = opl_task_model_io(task, sdim, &msdim, &cin, &cout, err);
  return st ? st : k->set_io(config, msdim, cin, cout, err);
}

int opl_task_model_extents(const opl_task *task, int sdim, int64_t nx, int64_t ny, int64_t *S) {
  int msdim;
  int64_t cin, cout;
  if (opl_task_model_io(task, sdim, &msdim, &cin, &cout, NULL)) return -1;
  /* the time axis of a space-time model follows the spatial ones */
  S[0] = nx;
  S[1] = sdim == 2 ? ny : spacetime_frames(task);
  S[2] = spacetime_frames(task);
  return msdim;
}

int opl_task_resolve_normalize(const opl_task *task, int sdim, int normalize) {
  if (normalize != OPL_NORMALIZE_AUTO || !row_of(task)) return normalize;
  return sdim == 2 ? row_of(task)->normalize_2d : row_of(task)->normalize_1d;
}

int opl_task_normalizable(const opl_task *task) {
  return row_of(task) && !row_of(task)->stepwise && !row_of(task)->continuous;
}
int opl_task_stepwise(const opl_task *task) {
  return row_of(task) && (row_of(task)->stepwise || row_of(task)->windowed);
}
int opl_task_windowed(const opl_task *task) { return row_of(task) && row_of(task)->windowed; }
int opl_task_norm_kind(const opl_task *task) {
  return opl_task_windowed(task) ? OPL_NORM_GAUSSIAN : OPL_NORM_UNIT_GAUSSIAN;
}
int64_t opl_task_loss_terms(const opl_task *task) {
  return row_of(task) && row_of(task)->stepwise && !row_of(task)->windowed ? task->t_out : 1;
}

/* ================================================================ predictions */

opl_tensor *opl_task_predict(opl_ctx *c, const opl_model *m, const opl_task *task, const opl_normalizer *xn,
                             const opl_normalizer *yn, opl_tensor *x) {
  if (opl_ctx_status(c)) return NULL;
  const task_row *r = row_of(task);
  if (!m || !r) {
    opl_ctx_error(c, OPL_ERR_ARG, "task_predict: NULL model or bad task");
    return NULL;
  }
  if (!opl_check_input(c, "task_predict", "x", x, -1, 0)) return NULL;
  if (xn) x = opl_normalizer_encode_op(c, xn, x);
  opl_tensor *y = r->predict(c, m, task, x);
  if (!y) return NULL;
  if (yn) y = opl_normalizer_decode_op(c, yn, y);
  return y;
}

/* Copy the context's error into err with a prefix; returns the status. */
static int ctx_take(opl_ctx *c, opl_err *err, const char *what) {
  int st = opl_ctx_status(c);
  return opl_err_set(err, st ? st : OPL_ERR_STATE, "%s: %s", what, st ? opl_ctx_errmsg(c) : "no result");
}

/* Shift every sample's window [B, Cin, P] left by Cout frames and append y [B, Cout, P]. */
static void window_push(opl_real *win, const opl_real *y, int64_t B, int64_t Cin, int64_t Cout, int64_t P) {
  for (int64_t b = 0; b < B; b++) {
    opl_real *w = win + b * Cin * P;
    memmove(w, w + Cout * P, sizeof(opl_real) * (size_t)((Cin - Cout) * P));
    memcpy(w + (Cin - Cout) * P, y + b * Cout * P, sizeof(opl_real) * (size_t)(Cout * P));
  }
}

int opl_task_infer(opl_ctx *c, const opl_model *m, const opl_task *task, const opl_normalizer *xn,
                   const opl_normalizer *yn, int rank, const int64_t *xshape, const opl_real *x, opl_real *out,
                   opl_real *window, opl_err *err) {
  if (!c || !m || !task || !xshape || !x || !out || rank < 3 || rank > OPL_MAX_RANK)
    return opl_err_set(err, OPL_ERR_ARG, "task_infer: NULL argument or rank %d", rank);
  int stepwise = opl_task_stepwise(task), windowed = opl_task_windowed(task);
  if (stepwise && ((!windowed && (xn || yn)) || !window))
    return opl_err_set(err, OPL_ERR_ARG, "task_infer: the rollout task takes no normalizer and needs a window buffer");
  int prev = opl_ctx_set_grad_enabled(c, 0), st = OPL_OK;
  opl_ctx_reset(c);
  opl_ctx_clear_error(c);
  int64_t B = xshape[0], Cin = xshape[1], P = 1;
  for (int i = 2; i < rank; i++) P *= xshape[i];
  if (!stepwise) {
    /* A trajectory is integrated from its first snapshot over the whole stored time. */
    opl_task whole = *task;
    if (opl_task_continuous(task)) whole.start = 0, whole.t_out = task->nframes - 1;
    opl_tensor *xt = opl_new(c, rank, xshape);
    if (xt) memcpy(xt->data, x, sizeof(opl_real) * (size_t)xt->numel);
    opl_tensor *y = xt ? opl_task_predict(c, m, &whole, xn, yn, xt) : NULL;
    if (!y) st = ctx_take(c, err, "task_infer");
    else memcpy(out, y->data, sizeof(opl_real) * (size_t)y->numel);
  } else if (windowed) {
    /* STEP: roll out from each sample's first t_in frames over the other stored frames; every
     * step encodes the window and decodes the prediction (per-field statistics), so the window
     * holds physical values. x [B, Cin = nframes, P] -> out [B, nframes - t_in, P]. */
    int64_t Tin = task->t_in, Cout = m->out_channels, steps = Cin - Tin, ws[OPL_MAX_RANK];
    if (Cout != 1 || steps < 1) {
      st = opl_err_set(err, OPL_ERR_ARG, "task_infer: the step task needs a one-frame model and more than %lld frames "
                       "(model output %lld frames, %lld stored)", (long long)Tin, (long long)Cout, (long long)Cin);
    } else {
      memcpy(ws, xshape, sizeof(int64_t) * (size_t)rank);
      ws[1] = Tin;
      for (int64_t b = 0; b < B; b++)
        memcpy(window + b * Tin * P, x + b * Cin * P, sizeof(opl_real) * (size_t)(Tin * P));
      for (int64_t s = 0; s < steps && !st; s++) {
        opl_ctx_reset(c);
        opl_tensor *w = opl_new(c, rank, ws);
        if (w) memcpy(w->data, window, sizeof(opl_real) * (size_t)w->numel);
        if (w && xn) w = opl_normalizer_encode_op(c, xn, w);
        opl_tensor *y = w ? opl_model_forward(c, m, w) : NULL;
        if (y && yn) y = opl_normalizer_decode_op(c, yn, y);
        if (!y) {
          st = ctx_take(c, err, "task_infer");
          break;
        }
        for (int64_t b = 0; b < B; b++) memcpy(out + (b * steps + s) * P, y->data + b * P, sizeof(opl_real) * (size_t)P);
        if (s + 1 < steps) window_push(window, y->data, B, Tin, 1, P);
      }
    }
  } else {
    /* The window is the model's input frames: the first Cw of x's Cin (ONESTEP's x holds more). */
    int64_t Cout = m->out_channels, steps = task->t_out, Cw = m->in_channels, ws[OPL_MAX_RANK];
    memcpy(ws, xshape, sizeof(int64_t) * (size_t)rank);
    ws[1] = Cw;
    if (Cout > Cw || Cw > Cin) {
      st = opl_err_set(err, OPL_ERR_ARG,
                       "task_infer: the model predicts %lld frames per step from %lld, the input has %lld frames",
                       (long long)Cout, (long long)Cw, (long long)Cin);
    } else {
      for (int64_t b = 0; b < B; b++)
        memcpy(window + b * Cw * P, x + b * Cin * P, sizeof(opl_real) * (size_t)(Cw * P));
      for (int64_t s = 0; s < steps && !st; s++) {
        opl_ctx_reset(c);
        opl_tensor *w = opl_new(c, rank, ws);
        if (w) memcpy(w->data, window, sizeof(opl_real) * (size_t)w->numel);
        opl_tensor *y = w ? opl_model_forward(c, m, w) : NULL;
        if (!y) {
          st = ctx_take(c, err, "task_infer");
          break;
        }
        /* out [B, steps Cout, P]: frames s Cout .. (s + 1) Cout of every sample */
        for (int64_t b = 0; b < B; b++)
          memcpy(out + (b * steps + s) * Cout * P, y->data + b * Cout * P, sizeof(opl_real) * (size_t)(Cout * P));
        if (s + 1 < steps) window_push(window, y->data, B, Cw, Cout, P);
      }
    }
  }
  opl_ctx_reset(c);
  opl_ctx_set_grad_enabled(c, prev);
  return st;
}

typedef struct infer_job {
  const opl_model *m;
  const opl_task *task;
  const opl_normalizer *xn, *yn;
  int rank;
  const int64_t *xshape;
  const opl_real *x;
  opl_real *out, *window;
  int64_t xs, out_per, window_per;
} infer_job;

static int infer_slice(void *arg, opl_ctx *c, int64_t b0, int64_t b1, opl_err *err) {
  const infer_job *j = arg;
  int64_t s[OPL_MAX_RANK];
  memcpy(s, j->xshape, sizeof(int64_t) * (size_t)j->rank);
  s[0] = b1 - b0;
  return opl_task_infer(c, j->m, j->task, j->xn, j->yn, j->rank, s, j->x + b0 * j->xs, j->out + b0 * j->out_per,
                        j->window ? j->window + b0 * j->window_per : NULL, err);
}

int opl_task_infer_team(opl_team *t, const opl_model *m, const opl_task *task, const opl_normalizer *xn,
                        const opl_normalizer *yn, int rank, const int64_t *xshape, const opl_real *x, opl_real *out,
                        int64_t out_per, opl_real *window, int64_t window_per, opl_err *err) {
  if (!t || !m || !m->ops || !task || !xshape || rank < 3 || rank > OPL_MAX_RANK || out_per < 1 || window_per < 0)
    return opl_err_set(err, OPL_ERR_ARG, "task_infer: NULL argument, rank %d or %lld values per sample", rank,
                       (long long)out_per);
  infer_job j = {m, task, xn, yn, rank, xshape, x, out, window, 1, out_per, window_per};
  for (int i = 1; i < rank; i++) j.xs *= xshape[i];
  if (!m->ops->samplewise || opl_task_continuous(task) || opl_team_size(t) < 2)
    return opl_task_infer(opl_team_ctx(t, 0), m, task, xn, yn, rank, xshape, x, out, window, err);
  return opl_team_run(t, xshape[0], infer_slice, &j, err);
}

opl_tensor *opl_task_loss(opl_ctx *c, const opl_task *task, opl_tensor *pred, opl_tensor *y) {
  if (opl_ctx_status(c)) return NULL;
  if (!task) {
    opl_ctx_error(c, OPL_ERR_ARG, "task_loss: NULL task");
    return NULL;
  }
  if (!opl_check_input(c, "task_loss", "pred", pred, -1, 0) || !opl_check_input(c, "task_loss", "y", y, -1, 0))
    return NULL;
  if (opl_task_stepwise(task)) {
    char b1[96], b2[96];
    if (pred->rank < 3 || !opl_shape_eq(pred->rank, pred->shape, y->rank, y->shape)) {
      opl_ctx_error(c, OPL_ERR_SHAPE, "task_loss: rollout prediction %s and target %s must have one shape (B, T, X, Y)",
                    opl_shape_str(b1, pred->rank, pred->shape), opl_shape_str(b2, y->rank, y->shape));
      return NULL;
    }
    /* (B, T, X, Y) -> (B T, X, Y): one row per (sample, step), so the summed relative L2 is
     * sum_b sum_t ||p_bt - y_bt|| / ||y_bt||, the reference's loss += myloss(im, y_t). */
    int64_t s[OPL_MAX_RANK];
    s[0] = pred->shape[0] * pred->shape[1];
    for (int i = 2; i < pred->rank; i++) s[i - 1] = pred->shape[i];
    pred = opl_reshape(c, pred, pred->rank - 1, s);
    y = opl_reshape(c, y, y->rank - 1, s);
  }
  return opl_rel_lp_loss(c, pred, y, 2, OPL_REDUCE_SUM);
}

/* ================================================================ trajectory tasks */

int opl_task_continuous(const opl_task *task) { return row_of(task) && row_of(task)->continuous; }

int opl_task_set_data(opl_task *task, const opl_ds_info *info, opl_err *err) {
  if (opl_task_windowed(task)) {
    if (info->dims.t <= task->t_in)
      return opl_err_set(err, OPL_ERR_ARG, "the step task reads %lld history frames and the next one; '%s' stores %lld",
                         (long long)task->t_in, info->path, (long long)info->dims.t);
    task->nframes = info->dims.t;
    return OPL_OK;
  }
  if (!opl_task_continuous(task)) return OPL_OK;
  if (info->t_ps && info->dims.t >= 2) { /* checked increasing by the reader */
    task->nframes = info->dims.t;
    task->times = NULL;
    task->times_ps = info->t_ps;
    return OPL_OK;
  }
  task->times_ps = NULL;
  if (!info->t || info->dims.t < 2)
    return opl_err_set(err, OPL_ERR_ARG, "the trajectory task needs the snapshot times (dataset t) and >= 2 snapshots; '%s' has %s",
                       info->path, info->t ? "one snapshot" : "no times");
  for (int64_t j = 1; j < info->dims.t; j++)
    if (!(info->t[j] > info->t[j - 1]) || !isfinite(info->t[j]))
      return opl_err_set(err, OPL_ERR_ARG, "the snapshot times of '%s' do not increase: t[%lld] = %g after %g", info->path,
                         (long long)j, info->t[j], info->t[j - 1]);
  task->nframes = info->dims.t;
  task->times = info->t;
  return OPL_OK;
}

void opl_task_set_batch(opl_task *task, const int64_t *samples, int64_t B) {
  if (!task) return;
  task->samples = samples;
  task->nsamples = samples ? B : 0;
}

/* SplitMix64's finalizer (Steele, Lea, Flood, "Fast splittable pseudorandom number generators",
 * OOPSLA 2014): a counter-based draw, the same on every thread count. */
static uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void opl_task_window(opl_task *task, uint64_t seed, int64_t e, int64_t k) {
  if (!opl_task_continuous(task) && !opl_task_windowed(task)) return;
  /* trajectory: windows of t_out + 1 snapshots; step: t_in frames and the next one */
  int64_t span = task->nframes - (opl_task_windowed(task) ? task->t_in + 1 : task->t_out + 1) + 1;
  if (span <= 1) {
    task->start = 0;
    return;
  }
  uint64_t h = mix64(mix64(mix64(seed ^ 0x6e6f6465ULL) + (uint64_t)e) + (uint64_t)k);
  task->start = (int64_t)(h % (uint64_t)span);
}

opl_tensor *opl_task_target(opl_ctx *c, const opl_task *task, opl_tensor *y) {
  if (opl_ctx_status(c) || !y) return NULL;
  if (opl_task_windowed(task)) return opl_slice(c, y, 1, task->start, 1); /* y holds frames t_in .. */
  if (!opl_task_continuous(task)) return y;
  return opl_slice(c, y, 1, task->start, task->t_out);
}

opl_tensor *opl_task_regularize(opl_ctx *c, const opl_model *m, const opl_task *task, opl_tensor *loss, int64_t e,
                                int64_t E, uint64_t seed, double *reg) {
  if (reg) *reg = 0;
  if (opl_ctx_status(c) || !loss) return NULL;
  const opl_node_config *nc = opl_task_continuous(task) ? opl_node_model_config(m) : NULL;
  if (!nc || !nc->reg) return loss;
  double lambda = opl_node_model_lambda(nc, e, E);
  if (lambda == 0) return loss;
  opl_tensor *r = opl_node_model_reg(c, m, seed);
  if (r && reg) *reg = lambda * (double)r->data[0];
  return r ? opl_add(c, loss, opl_scale(c, r, lambda)) : NULL;
}

int opl_task_solver_stats(const opl_task *task, const opl_model *m, int64_t *nfe, int64_t *accepted,
                          int64_t *rejected) {
  opl_nde_stats st;
  if (!opl_task_continuous(task) || opl_node_model_stats(m, &st, NULL)) return 0;
  if (nfe) *nfe = st.nfev;
  if (accepted) *accepted = st.accepted;
  if (rejected) *rejected = st.rejected;
  return 1;
}

int64_t opl_task_local_nfe(const opl_task *task, const opl_model *m) {
  opl_nde_stats st;
  if (!opl_task_continuous(task) || opl_node_model_stats(m, &st, NULL)) return -1;
  return st.local_nfev; /* reset by every solve (opl_nde_solve), set by opl_nde_local_reg */
}
