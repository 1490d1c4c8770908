/* opl — optimizers (SGD, Adam, AdamW) and lr schedulers with PyTorch semantics. See optim.h.
 *
 * Update rules, from the algorithm boxes of the torch.optim documentation (g_t the gradient,
 * p the parameter, t the step count starting at 1):
 *   SGD:   g += wd p; if mu != 0: b = (t > 1) ? mu b + (1 - dampening) g : g;
 *          g = nesterov ? g + mu b : b; p -= lr g.
 *   Adam:  g += wd p; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
 *          p -= (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps).
 *   AdamW: p *= 1 - lr wd; then Adam without the L2 term.
 * The Adam forms (m updated by lerp, eps added after dividing sqrt(v) by sqrt(1 - b2^t)) are
 * those of torch's single-tensor implementation, so single-precision results round alike. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/internal.h"
#include "core/optim.h"
#include <tgmath.h> /* float builds compute the update in float */

struct opl_optim {
  opl_optim_kind kind;
  opl_optim_config cfg;
  opl_params *params;      /* not owned */
  int n;                   /* number of parameters at create */
  opl_tensor **p;          /* [n] the parameters at create (to detect a changed set) */
  opl_params state;        /* owned: "step", then per-parameter buffers */
  opl_tensor *step;        /* (1) in state */
  opl_tensor **buf1;       /* [n] SGD momentum buffer or Adam m (NULL for SGD without momentum) */
  opl_tensor **buf2;       /* [n] Adam v, or NULL */
};

/* ---------------------------------------------------------------- configuration */

opl_optim_config opl_optim_defaults(opl_optim_kind kind) {
  opl_optim_config c = {0};
  c.lr = 1e-3;
  c.beta1 = 0.9;
  c.beta2 = 0.999;
  c.eps = 1e-8;
  c.weight_decay = kind == OPL_OPTIM_ADAMW ? 1e-2 : 0.0;
  return c;
}

const char *opl_optim_kind_name(opl_optim_kind kind) {
  switch (kind) {
    case OPL_OPTIM_SGD: return "sgd";
    case OPL_OPTIM_ADAM: return "adam";
    case OPL_OPTIM_ADAMW: return "adamw";
  }
  return "unknown";
}

/* Validate cfg for kind (the checks of torch.optim's constructors, with eps > 0).
 * Returns OPL_OK or OPL_ERR_ARG with a message naming the value. */
static int check_config(opl_optim_kind kind, const opl_optim_config *c, opl_err *err) {
  const char *k = opl_optim_kind_name(kind);
  if (!(isfinite(c->lr) && c->lr >= 0))
    return opl_err_set(err, OPL_ERR_ARG, "%s: invalid learning rate lr = %g (must be >= 0)", k, c->lr);
  if (!(isfinite(c->weight_decay) && c->weight_decay >= 0))
    return opl_err_set(err, OPL_ERR_ARG, "%s: invalid weight_decay = %g (must be >= 0)", k,
                       c->weight_decay);
  if (kind == OPL_OPTIM_SGD) {
    if (!(isfinite(c->momentum) && c->momentum >= 0))
      return opl_err_set(err, OPL_ERR_ARG, "sgd: invalid momentum = %g (must be >= 0)", c->momentum);
    if (!(c->dampening >= 0 && c->dampening <= 1))
      return opl_err_set(err, OPL_ERR_ARG, "sgd: invalid dampening = %g (must be in [0, 1])",
                         c->dampening);
    if (c->nesterov && (c->momentum <= 0 || c->dampening != 0))
      return opl_err_set(err, OPL_ERR_ARG,
                         "sgd: Nesterov momentum requires momentum > 0 and dampening = 0 "
                         "(got momentum = %g, dampening = %g)", c->momentum, c->dampening);
  } else {
    if (!(c->beta1 >= 0 && c->beta1 < 1))
      return opl_err_set(err, OPL_ERR_ARG, "%s: invalid beta1 = %g (must be in [0, 1))", k, c->beta1);
    if (!(c->beta2 >= 0 && c->beta2 < 1))
      return opl_err_set(err, OPL_ERR_ARG, "%s: invalid beta2 = %g (must be in [0, 1))", k, c->beta2);
    if (!(isfinite(c->eps) && c->eps > 0))
      return opl_err_set(err, OPL_ERR_ARG, "%s: invalid eps = %g (must be > 0)", k, c->eps);
  }
  return OPL_OK;
}

/* ---------------------------------------------------------------- state */

/* Add a zeroed state buffer "<prefix><name of p>" shaped like p, without a gradient. */
static opl_tensor *add_state(opl_params *state, const char *prefix, const opl_tensor *p,
                             opl_err *err) {
  char name[sizeof p->name];
  int len = snprintf(name, sizeof name, "%s%s", prefix, p->name);
  if (len < 0 || (size_t)len >= sizeof name) {
    opl_err_set(err, OPL_ERR_ARG, "optim: state name '%s%s' is longer than %d characters",
                prefix, p->name, (int)sizeof name - 1);
    return NULL;
  }
  opl_tensor *t = opl_params_add(state, name, p->rank, p->shape, p->flags & OPL_T_COMPLEX, err);
  if (!t) return NULL;
  free(t->grad); /* state is not differentiated: drop the gradient buffer */
  t->grad = NULL;
  t->flags &= ~OPL_T_REQGRAD;
  return t;
}

opl_optim *opl_optim_create(opl_optim_kind kind, opl_params *params, const opl_optim_config *cfg,
                            opl_err *err) {
  if (kind != OPL_OPTIM_SGD && kind != OPL_OPTIM_ADAM && kind != OPL_OPTIM_ADAMW) {
    opl_err_set(err, OPL_ERR_ARG, "optim: unknown optimizer kind %d", (int)kind);
    return NULL;
  }
  const char *k = opl_optim_kind_name(kind);
  if (!params || params->n == 0) {
    opl_err_set(err, OPL_ERR_ARG, "%s: no parameters to optimize", k);
    return NULL;
  }
  opl_optim_config c = cfg ? *cfg : opl_optim_defaults(kind);
  if (check_config(kind, &c, err)) return NULL;
  for (int i = 0; i < params->n; i++)
    if (!params->t[i] || !params->t[i]->data || !params->t[i]->grad) {
      opl_err_set(err, OPL_ERR_ARG, "%s: parameter %d ('%s') has no gradient buffer", k, i,
                  params->t[i] ? params->t[i]->name : "NULL");
      return NULL;
    }

  opl_optim *o = calloc(1, sizeof *o);
  if (!o) goto oom;
  o->kind = kind;
  o->cfg = c;
  o->params = params;
  o->n = params->n;
  opl_params_init(&o->state);
  o->p = calloc((size_t)o->n, sizeof *o->p);
  o->buf1 = calloc((size_t)o->n, sizeof *o->buf1);
  o->buf2 = calloc((size_t)o->n, sizeof *o->buf2);
  if (!o->p || !o->buf1 || !o->buf2) goto oom;
  memcpy(o->p, params->t, (size_t)o->n * sizeof *o->p);

  opl_tensor one = {.rank = 1, .shape = {1}, .numel = 1, .name = ""};
  o->step = add_state(&o->state, "step", &one, err);
  if (!o->step) goto fail;
  for (int i = 0; i < o->n; i++) {
    const opl_tensor *p = o->p[i];
    if (kind == OPL_OPTIM_SGD) {
      if (c.momentum != 0 && !(o->buf1[i] = add_state(&o->state, "sgd.b/", p, err))) goto fail;
    } else {
      if (!(o->buf1[i] = add_state(&o->state, "adam.m/", p, err))) goto fail;
      if (!(o->buf2[i] = add_state(&o->state, "adam.v/", p, err))) goto fail;
    }
  }
  return o;
oom:
  opl_err_set(err, OPL_ERR_NOMEM, "%s: out of memory", k);
fail:
  opl_optim_free(&o);
  return NULL;
}

void opl_optim_free(opl_optim **po) {
  if (!po || !*po) return;
  opl_optim *o = *po;
  opl_params_free(&o->state);
  free(o->p);
  free(o->buf1);
  free(o->buf2);
  free(o);
  *po = NULL;
}

/* ---------------------------------------------------------------- kernels */

/* SGD on n reals (PyTorch torch.optim.SGD):
 *   p[n] parameter (updated), g[n] gradient (read), b[n] momentum buffer or NULL when
 *   mu = 0 (updated); first: 1 on the first step (the buffer is set to the gradient). */
static void sgd_kernel(opl_real *restrict p, const opl_real *restrict g, opl_real *restrict b,
                       int64_t n, opl_real lr, opl_real wd, opl_real mu, opl_real damp,
                       int nesterov, int first) {
  opl_real keep = 1 - damp;
#pragma omp parallel for schedule(static) if (n > OPL_PAR_MIN)
  for (int64_t i = 0; i < n; i++) {
    opl_real d = g[i];
    if (wd != 0) d += wd * p[i];
    if (b) {
      opl_real bi = first ? d : mu * b[i] + keep * d;
      b[i] = bi;
      d = nesterov ? d + mu * bi : bi;
    }
    p[i] -= lr * d;
  }
}

/* Adam / AdamW on n reals (PyTorch torch.optim.Adam / AdamW, single-tensor form):
 *   p[n] parameter (updated), g[n] gradient (read), m[n], v[n] moments (updated);
 *   decay: p *= decay first (AdamW: 1 - lr wd; Adam: 1); l2: wd added to the gradient
 *   (Adam; 0 for AdamW); step_size = lr / (1 - b1^t); bc2s = sqrt(1 - b2^t). */
static void adam_kernel(opl_real *restrict p, const opl_real *restrict g, opl_real *restrict m,
                        opl_real *restrict v, int64_t n, opl_real decay, opl_real l2,
                        opl_real b1, opl_real b2, opl_real eps, opl_real step_size,
                        opl_real bc2s) {
  opl_real a1 = 1 - b1, a2 = 1 - b2;
#pragma omp parallel for schedule(static) if (n > OPL_PAR_MIN)
  for (int64_t i = 0; i < n; i++) {
    opl_real pi = p[i];
    if (decay != 1) pi *= decay;
    opl_real gi = g[i];
    if (l2 != 0) gi += l2 * pi;
    opl_real mi = m[i] + a1 * (gi - m[i]);          /* lerp(m, g, 1 - b1) */
    opl_real vi = v[i] * b2 + a2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    opl_real denom = sqrt(vi) / bc2s + eps;
    p[i] = pi - step_size * (mi / denom);
  }
}

/* ---------------------------------------------------------------- step */

int opl_optim_step(opl_optim *o, opl_err *err) {
  OPL_ASSERT(o != NULL);
  const char *k = opl_optim_kind_name(o->kind);
  if (o->params->n != o->n) {
    return opl_err_set(err, OPL_ERR_STATE, "%s: the parameter set has %d parameters, %d at create", k,
                       o->params->n, o->n);
  }
  for (int i = 0; i < o->n; i++)
    if (o->params->t[i] != o->p[i] || !o->p[i]->grad) {
      return opl_err_set(err, OPL_ERR_STATE, "%s: parameter %d ('%s') was replaced since create", k, i,
                         o->params->t[i] ? o->params->t[i]->name : "NULL");
    }
  double tprev = (double)o->step->data[0];
  if (!(tprev >= 0 && isfinite(tprev))) {
    return opl_err_set(err, OPL_ERR_STATE, "%s: state 'step' = %g is not a valid step count", k, tprev);
  }
  double t = floor(tprev + 0.5) + 1; /* this step's number, from 1 */
  const opl_optim_config *c = &o->cfg;
  if (o->kind == OPL_OPTIM_SGD) {
    for (int i = 0; i < o->n; i++) {
      opl_tensor *p = o->p[i];
      sgd_kernel(p->data, p->grad, o->buf1[i] ? o->buf1[i]->data : NULL, opl_nreal(p),
                 (opl_real)c->lr, (opl_real)c->weight_decay, (opl_real)c->momentum,
                 (opl_real)c->dampening, c->nesterov, t == 1);
    }
  } else {
    int adamw = o->kind == OPL_OPTIM_ADAMW;
    double step_size = c->lr / (1 - pow(c->beta1, t));
    double bc2s = sqrt(1 - pow(c->beta2, t));
    opl_real decay = adamw ? (opl_real)(1 - c->lr * c->weight_decay) : 1;
    opl_real l2 = adamw ? 0 : (opl_real)c->weight_decay;
    for (int i = 0; i < o->n; i++) {
      opl_tensor *p = o->p[i];
      adam_kernel(p->data, p->grad, o->buf1[i]->data, o->buf2[i]->data, opl_nreal(p), decay, l2,
                  (opl_real)c->beta1, (opl_real)c->beta2, (opl_real)c->eps, (opl_real)step_size,
                  (opl_real)bc2s);
    }
  }
  o->step->data[0] = (opl_real)t;
  return OPL_OK;
}

/* ---------------------------------------------------------------- accessors */

int opl_optim_set_lr(opl_optim *o, double lr, opl_err *err) {
  OPL_ASSERT(o != NULL);
  if (!(isfinite(lr) && lr >= 0))
    return opl_err_set(err, OPL_ERR_ARG, "%s: invalid learning rate lr = %g (must be >= 0)",
                       opl_optim_kind_name(o->kind), lr);
  o->cfg.lr = lr;
  return OPL_OK;
}

double opl_optim_get_lr(const opl_optim *o) { return o->cfg.lr; }
opl_optim_config opl_optim_get_config(const opl_optim *o) { return o->cfg; }
opl_optim_kind opl_optim_get_kind(const opl_optim *o) { return o->kind; }
int64_t opl_optim_get_steps(const opl_optim *o) { return (int64_t)llround(o->step->data[0]); }
opl_params *opl_optim_state(opl_optim *o) { return &o->state; }

/* ---------------------------------------------------------------- schedulers */

/* The optimizer's lr if o is given, else lr0; checks it. */
static int base_lr(opl_optim *o, double lr0, const char *name, double *out, opl_err *err) {
  double lr = o ? opl_optim_get_lr(o) : lr0;
  if (!(isfinite(lr) && lr >= 0))
    return opl_err_set(err, OPL_ERR_ARG, "%s: invalid initial lr = %g (must be >= 0)", name, lr);
  *out = lr;
  return OPL_OK;
}

/* Apply lr to o (if any) and return it. */
static double apply(opl_optim *o, double lr) {
  if (o) opl_optim_set_lr(o, lr, NULL); /* finite and >= 0: a schedule of a checked base lr */
  return lr;
}

int opl_sched_steplr_init(opl_sched_steplr *s, opl_optim *o, double lr0, int64_t step_size,
                          double gamma, opl_err *err) {
  OPL_ASSERT(s != NULL);
  memset(s, 0, sizeof *s);
  if (step_size < 1)
    return opl_err_set(err, OPL_ERR_ARG, "steplr: step_size = %lld must be >= 1", (long long)step_size);
  if (!(isfinite(gamma) && gamma > 0))
    return opl_err_set(err, OPL_ERR_ARG, "steplr: gamma = %g must be > 0", gamma);
  int st = base_lr(o, lr0, "steplr", &s->base_lr, err);
  if (st) return st;
  s->gamma = gamma;
  s->step_size = step_size;
  s->last_epoch = 0;
  return OPL_OK;
}

double opl_sched_steplr_lr(const opl_sched_steplr *s) {
  return s->base_lr * pow(s->gamma, (double)(s->last_epoch / s->step_size));
}

double opl_sched_steplr_step(opl_sched_steplr *s, opl_optim *o) {
  s->last_epoch++;
  return apply(o, opl_sched_steplr_lr(s));
}

int opl_sched_cosine_init(opl_sched_cosine *s, opl_optim *o, double lr0, int64_t t_max,
                          double eta_min, opl_err *err) {
  OPL_ASSERT(s != NULL);
  memset(s, 0, sizeof *s);
  if (t_max < 1)
    return opl_err_set(err, OPL_ERR_ARG, "cosine: T_max = %lld must be >= 1", (long long)t_max);
  if (!(isfinite(eta_min) && eta_min >= 0))
    return opl_err_set(err, OPL_ERR_ARG, "cosine: eta_min = %g must be >= 0", eta_min);
  int st = base_lr(o, lr0, "cosine", &s->base_lr, err);
  if (st) return st;
  s->eta_min = eta_min;
  s->t_max = t_max;
  s->last_epoch = 0;
  return OPL_OK;
}

double opl_sched_cosine_lr(const opl_sched_cosine *s) {
  const double pi = 3.14159265358979323846;
  return s->eta_min + (s->base_lr - s->eta_min) *
                          (1 + cos(pi * (double)s->last_epoch / (double)s->t_max)) / 2;
}

double opl_sched_cosine_step(opl_sched_cosine *s, opl_optim *o) {
  s->last_epoch++;
  return apply(o, opl_sched_cosine_lr(s));
}

void opl_sched_plateau_defaults(opl_sched_plateau *s) {
  OPL_ASSERT(s != NULL);
  memset(s, 0, sizeof *s);
  s->factor = 0.1;
  s->patience = 10;
  s->threshold = 1e-4;
  s->cooldown = 0;
  s->min_lr = 0;
  s->best = INFINITY;
}

int opl_sched_plateau_init(opl_sched_plateau *s, opl_optim *o, double lr0, opl_err *err) {
  OPL_ASSERT(s != NULL);
  if (!(s->factor > 0 && s->factor < 1))
    return opl_err_set(err, OPL_ERR_ARG, "plateau: factor = %g must be in (0, 1)", s->factor);
  if (s->patience < 0)
    return opl_err_set(err, OPL_ERR_ARG, "plateau: patience = %lld must be >= 0", (long long)s->patience);
  if (!(isfinite(s->threshold) && s->threshold >= 0))
    return opl_err_set(err, OPL_ERR_ARG, "plateau: threshold = %g must be >= 0", s->threshold);
  if (s->cooldown < 0)
    return opl_err_set(err, OPL_ERR_ARG, "plateau: cooldown = %lld must be >= 0", (long long)s->cooldown);
  if (!(isfinite(s->min_lr) && s->min_lr >= 0))
    return opl_err_set(err, OPL_ERR_ARG, "plateau: min_lr = %g must be >= 0", s->min_lr);
  int st = base_lr(o, lr0, "plateau", &s->lr, err);
  if (st) return st;
  s->best = INFINITY;
  s->num_bad_epochs = 0;
  s->cooldown_counter = 0;
  s->last_epoch = 0;
  return OPL_OK;
}

double opl_sched_plateau_lr(const opl_sched_plateau *s) { return s->lr; }

double opl_sched_plateau_step(opl_sched_plateau *s, opl_optim *o, double metric) {
  const double eps = 1e-8; /* PyTorch: reductions smaller than eps are ignored */
  s->last_epoch++;
  if (metric < s->best * (1 - s->threshold)) { /* false for NaN */
    s->best = metric;
    s->num_bad_epochs = 0;
  } else {
    s->num_bad_epochs++;
  }
  if (s->cooldown_counter > 0) {
    s->cooldown_counter--;
    s->num_bad_epochs = 0;
  }
  if (s->num_bad_epochs > s->patience) {
    double old = o ? opl_optim_get_lr(o) : s->lr;
    double nlr = fmax(old * s->factor, s->min_lr);
    s->lr = (old - nlr > eps) ? nlr : old;
    s->cooldown_counter = s->cooldown;
    s->num_bad_epochs = 0;
  } else if (o) {
    s->lr = opl_optim_get_lr(o);
  }
  return apply(o, s->lr);
}
