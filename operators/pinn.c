/* opl operators — coordinate networks for PINNs (see pinn.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "operators/pinn.h"
#include "core/init.h"

/* ------------------------------------------------------------------ problems */

const opl_pinn_problem *opl_pinn_problem_get(int id) {
  const opl_pinn_problem *p = id >= 0 && id < OPL_PINN_PROBLEM_COUNT ? opl_pinn_problem_at(id) : NULL;
  static const char *const names[OPL_PINN_PROBLEM_COUNT] = {"burgers", "allen-cahn", "kdv"};
  OPL_ASSERT(!p || !strcmp(p->name, names[id]), "pinn: problem %d of pde/pinn_problems.h is '%s', expected '%s'", id,
             p->name, names[id]);
  return p;
}

int opl_pinn_problem_id_of(const char *name) {
  for (int i = 0; name && i < OPL_PINN_PROBLEM_COUNT; i++)
    if (!strcmp(opl_pinn_problem_get(i)->name, name)) return i;
  return -1;
}

const char *opl_pinn_problem_names(void) { return "burgers|allen-cahn|kdv"; }

int opl_pinn_periodic(const opl_pinn_problem *p) { return p->bc == OPL_PINN_PERIODIC; }
int opl_pinn_order(const opl_pinn_problem *p) { return p->disp != 0 ? 3 : 2; }

/* k-th derivative of cos(a x) (s = 0) or sin(a x) (s = 1): a^k trig(a x + k pi / 2). */
static double trig_d(int s, double a, double x, int k) {
  double ph = a * x + k * M_PI / 2;
  return pow(a, k) * (s ? sin(ph) : cos(ph));
}

void opl_pinn_u0(int id, double x, double *d, int nd) {
  for (int k = 0; k <= nd; k++) {
    switch (id) {
      case OPL_PINN_BURGERS: d[k] = -trig_d(1, M_PI, x, k); break;
      case OPL_PINN_KDV: d[k] = trig_d(0, M_PI, x, k); break;
      case OPL_PINN_ALLEN_CAHN: {
        /* (x^2 cos pi x)^(k) by Leibniz: x^2, 2x, 2, 0, ... */
        double f[3] = {x * x, 2 * x, 2}, binom[5][5] = {{1}, {1, 1}, {1, 2, 1}, {1, 3, 3, 1}, {1, 4, 6, 4, 1}};
        double s = 0;
        for (int j = 0; j <= k && j <= 2; j++) s += binom[k][j] * f[j] * trig_d(0, M_PI, x, k - j);
        d[k] = s;
        break;
      }
      default: d[k] = 0;
    }
  }
}

/* ------------------------------------------------------------------ architecture names */

static const char *const arch_names[OPL_PINN_ARCH_COUNT] = {"mlp", "modified-mlp"};
const char *opl_pinn_arch_name(int arch) { return arch >= 0 && arch < OPL_PINN_ARCH_COUNT ? arch_names[arch] : "unknown"; }
int opl_pinn_arch_find(const char *name) {
  for (int i = 0; name && i < OPL_PINN_ARCH_COUNT; i++)
    if (!strcmp(arch_names[i], name)) return i;
  return -1;
}

opl_pinn_config opl_pinn_config_default(int problem) {
  const opl_pinn_problem *p = opl_pinn_problem_get(problem);
  opl_pinn_config c = {.problem = problem, .arch = OPL_PINN_ARCH_MLP, .depth = 4, .width = 64,
                       .periodic = p ? opl_pinn_periodic(p) : 0, .nfreq = 1, .hard = 0, .windows = 1};
  return c;
}

static int config_check(const opl_pinn_config *c, opl_err *err) {
  if (!opl_pinn_problem_get(c->problem))
    return opl_err_set(err, OPL_ERR_ARG, "pinn: problem %d, expected one of %s", c->problem, opl_pinn_problem_names());
  if (c->arch < 0 || c->arch >= OPL_PINN_ARCH_COUNT)
    return opl_err_set(err, OPL_ERR_ARG, "pinn: architecture %d, expected mlp or modified-mlp", c->arch);
  if (c->depth < 1 || c->depth > OPL_PINN_MAX_DEPTH)
    return opl_err_set(err, OPL_ERR_ARG, "pinn: depth %d, expected 1..%d hidden layers", c->depth, OPL_PINN_MAX_DEPTH);
  if (c->width < 1 || c->width > 1 << 16)
    return opl_err_set(err, OPL_ERR_ARG, "pinn: width %d, expected 1..65536 units", c->width);
  if ((c->periodic != 0 && c->periodic != 1) || (c->hard != 0 && c->hard != 1))
    return opl_err_set(err, OPL_ERR_ARG, "pinn: periodic %d / hard %d, expected 0 or 1", c->periodic, c->hard);
  if (c->periodic && (c->nfreq < 1 || c->nfreq > 64))
    return opl_err_set(err, OPL_ERR_ARG, "pinn: %d Fourier modes in the periodic embedding, expected 1..64", c->nfreq);
  if (c->windows < 1 || c->windows > OPL_PINN_MAX_WINDOWS)
    return opl_err_set(err, OPL_ERR_ARG, "pinn: %d time windows, expected 1..%d", c->windows, OPL_PINN_MAX_WINDOWS);
  if (c->windows > 1 && c->hard)
    return opl_err_set(err, OPL_ERR_ARG, "pinn: %d time windows with hard conditions: a later window's initial condition "
                       "is the previous window's network, fitted as a loss; use soft conditions (no --hard) or one window",
                       c->windows);
  return OPL_OK;
}

static int64_t pinn_count(const opl_pinn_config *c) {
  int64_t F = c->periodic ? 1 + 2 * c->nfreq : 2, W = c->width;
  int64_t n = F * W + W + (c->depth - 1) * (W * W + W) + W + 1;
  if (c->arch == OPL_PINN_ARCH_MODIFIED) n += 2 * (F * W + W);
  return n * (c->windows > 1 ? c->windows : 1);
}

/* ------------------------------------------------------------------ time windows */

const opl_pinn *opl_pinn_window(const opl_pinn *net, int k, double *t0, double *t1) {
  int W = net->win ? net->cfg.windows : 1;
  if (k < 0 || k >= W) return NULL;
  const opl_pinn *w = net->win ? &net->win[k] : net;
  double T = net->prob->T;
  if (t0) *t0 = w->t1 > w->t0 ? w->t0 : 0;
  if (t1) *t1 = w->t1 > w->t0 ? w->t1 : T;
  return w;
}

int opl_pinn_window_of(const opl_pinn *net, double t) {
  int W = net->win ? net->cfg.windows : 1;
  double k = floor(t * W / net->prob->T);
  return k < 0 ? 0 : k > W - 1 ? W - 1 : (int)k;
}

void opl_pinn_window_params(const opl_pinn *net, int k, int *first, int *count) {
  int per = 2 * (net->cfg.depth + 1) + (net->cfg.arch == OPL_PINN_ARCH_MODIFIED ? 4 : 0);
  *first = k * per;
  *count = per;
}

/* ------------------------------------------------------------------ forward */

/* The input features of points p [N, 2] (t, x) as a constant jet [K, N, F] (see pinn.h). */
static opl_tensor *input_jet(opl_ctx *c, const opl_pinn *net, const opl_tensor *p, opl_jet_spec s) {
  const opl_pinn_problem *pr = net->prob;
  int64_t N = p->shape[0], F = net->nin, K = opl_jet_k(s);
  opl_tensor *X = opl_zeros(c, OPL_DIMS(K, N, F));
  if (!X) return NULL;
  double L = pr->x1 - pr->x0, w = 2 * M_PI / L;
  opl_real *d = X->data;
  double t0 = net->t1 > net->t0 ? net->t0 : 0, h = net->t1 > net->t0 ? net->t1 - net->t0 : pr->T;
  for (int64_t i = 0; i < N; i++) {
    double t = (double)p->data[2 * i], x = (double)p->data[2 * i + 1];
    d[i * F] = (opl_real)(2 * (t - t0) / h - 1);
    if (s.nt) d[(s.nx + 1) * N * F + i * F] = (opl_real)(2 / h);
    if (!net->cfg.periodic) {
      d[i * F + 1] = (opl_real)(2 * (x - pr->x0) / L - 1);
      if (s.nx >= 1) d[N * F + i * F + 1] = (opl_real)(2 / L);
    } else {
      for (int k = 1; k <= net->cfg.nfreq; k++)
        for (int j = 0; j <= s.nx; j++) {
          d[j * N * F + i * F + k] = (opl_real)trig_d(0, k * w, x - pr->x0, j);
          d[j * N * F + i * F + net->cfg.nfreq + k] = (opl_real)trig_d(1, k * w, x - pr->x0, j);
        }
    }
  }
  return X;
}

/* The constant jets of the hard constraint u = A + B N: A = u0(x) [K, N, 1], B = t g(x). */
static int hard_jets(opl_ctx *c, const opl_pinn *net, const opl_tensor *p, opl_jet_spec s, opl_tensor **A,
                     opl_tensor **B) {
  const opl_pinn_problem *pr = net->prob;
  int64_t N = p->shape[0], K = opl_jet_k(s);
  *A = opl_zeros(c, OPL_DIMS(K, N, 1));
  *B = opl_zeros(c, OPL_DIMS(K, N, 1));
  if (!*A || !*B) return 0;
  double h = (pr->x1 - pr->x0) / 2;
  for (int64_t i = 0; i < N; i++) {
    double t = (double)p->data[2 * i], x = (double)p->data[2 * i + 1], u0[5], g[5] = {1, 0, 0, 0, 0};
    opl_pinn_u0(net->cfg.problem, x, u0, s.nx);
    if (!opl_pinn_periodic(pr)) {
      g[0] = (x - pr->x0) * (pr->x1 - x) / (h * h);
      g[1] = (pr->x0 + pr->x1 - 2 * x) / (h * h);
      g[2] = -2 / (h * h);
    }
    for (int j = 0; j <= s.nx; j++) {
      (*A)->data[j * N + i] = (opl_real)u0[j];
      (*B)->data[j * N + i] = (opl_real)(t * g[j]);
    }
    if (s.nt) (*B)->data[(s.nx + 1) * N + i] = (opl_real)g[0];
  }
  return 1;
}

static opl_tensor *forward_windows(opl_ctx *c, const opl_pinn *net, const opl_tensor *p, opl_jet_spec s);

opl_tensor *opl_pinn_forward_jet(opl_ctx *c, const opl_pinn *net, const opl_tensor *p, opl_jet_spec s) {
  if (opl_ctx_status(c)) return NULL;
  if (!p || p->rank != 2 || p->shape[1] != 2 || opl_is_complex(p)) {
    char b[96];
    opl_ctx_error(c, OPL_ERR_SHAPE, "pinn: points %s must be (N, 2) columns (t, x)",
                  p ? opl_shape_str(b, p->rank, p->shape) : "NULL");
    return NULL;
  }
  if (net->win) return forward_windows(c, net, p, s);
  opl_tensor *X = input_jet(c, net, p, s);
  int D = net->cfg.depth;
  opl_tensor *u;
  if (net->cfg.arch == OPL_PINN_ARCH_MLP) { /* the whole network as one op, tiled over points */
    u = opl_jet_mlp(c, X, D, net->w, net->b, s);
  } else {
    opl_tensor *h = opl_jet_linear_tanh(c, X, net->w[0], net->b[0], s);
    opl_tensor *U = opl_jet_linear_tanh(c, X, net->wu, net->bu, s);
    opl_tensor *V = opl_jet_linear_tanh(c, X, net->wv, net->bv, s);
    opl_tensor *VU = opl_sub(c, V, U);
    for (int i = 1; i < D; i++) {
      opl_tensor *Z = opl_jet_linear_tanh(c, h, net->w[i], net->b[i], s);
      h = opl_add(c, U, opl_jet_mul(c, Z, VU, s)); /* (1 - Z) U + Z V */
    }
    u = opl_jet_linear(c, h, net->w[D], net->b[D]);
  }
  if (net->cfg.hard && u) {
    opl_tensor *A, *B;
    if (!hard_jets(c, net, p, s, &A, &B)) return NULL;
    u = opl_add(c, A, opl_jet_mul(c, B, u, s));
  }
  return u;
}

/* The piecewise network: each point p [N, 2] through its window's network, gathered per window
 * and scattered back into u [K, N, 1] (no tape: see opl_pinn_forward_jet). */
static opl_tensor *forward_windows(opl_ctx *c, const opl_pinn *net, const opl_tensor *p, opl_jet_spec s) {
  int W = net->cfg.windows;
  int64_t N = p->shape[0], K = opl_jet_k(s);
  int kmin = W, kmax = -1;
  for (int64_t i = 0; i < N; i++) {
    int k = opl_pinn_window_of(net, (double)p->data[2 * i]);
    kmin = k < kmin ? k : kmin;
    kmax = k > kmax ? k : kmax;
  }
  if (kmax < 0) kmin = kmax = 0;
  if (kmin == kmax) return opl_pinn_forward_jet(c, &net->win[kmin], p, s);
  if (opl_ctx_grad_enabled(c)) {
    opl_ctx_error(c, OPL_ERR_STATE, "pinn: points in time windows %d..%d of a network of %d windows: the piecewise "
                  "network is evaluated without gradients (train one window's network at a time)", kmin, kmax, W);
    return NULL;
  }
  opl_tensor *u = opl_new(c, OPL_DIMS(K, N, 1));
  int64_t *idx = opl_arena_alloc(c, (size_t)N * sizeof(int64_t));
  if (!u || !idx) return NULL;
  for (int k = kmin; k <= kmax; k++) {
    int64_t m = 0;
    for (int64_t i = 0; i < N; i++)
      if (opl_pinn_window_of(net, (double)p->data[2 * i]) == k) idx[m++] = i;
    if (!m) continue;
    opl_tensor *q = opl_new(c, OPL_DIMS(m, 2));
    if (!q) return NULL;
    for (int64_t j = 0; j < m; j++) {
      q->data[2 * j] = p->data[2 * idx[j]];
      q->data[2 * j + 1] = p->data[2 * idx[j] + 1];
    }
    opl_tensor *uk = opl_pinn_forward_jet(c, &net->win[k], q, s); /* [K, m, 1] */
    if (!uk) return NULL;
    for (int64_t a = 0; a < K; a++)
      for (int64_t j = 0; j < m; j++) u->data[a * N + idx[j]] = uk->data[a * m + j];
  }
  return u;
}

/* ------------------------------------------------------------------ the model interface */

#define PINN_META_VERSION 1

static opl_tensor *ops_forward(opl_ctx *c, const void *self, opl_tensor *x) {
  opl_jet_spec s0 = {0, 0};
  opl_tensor *u = opl_pinn_forward_jet(c, self, x, s0);
  return u ? opl_reshape(c, u, OPL_DIMS(u->shape[1], 1)) : NULL;
}

static int ops_check_input(const void *self, int rank, const int64_t *shape, const char *const *axis, opl_err *err) {
  (void)self, (void)axis;
  char b[96];
  if (rank != 2 || shape[1] != 2)
    return opl_err_set(err, OPL_ERR_SHAPE, "pinn: input %s must be (N, 2) points (t, x)", opl_shape_str(b, rank, shape));
  return OPL_OK;
}

static int ops_to_meta(const void *self, opl_kv *kv) {
  const opl_pinn *m = self;
  int n = 0;
  kv[n++] = (opl_kv)OPL_KVS("model", "pinn");
  kv[n++] = (opl_kv)OPL_KVI("pinn.version", PINN_META_VERSION);
  kv[n++] = (opl_kv)OPL_KVS("pinn.problem", m->prob->name);
  kv[n++] = (opl_kv)OPL_KVS("pinn.arch", opl_pinn_arch_name(m->cfg.arch));
  kv[n++] = (opl_kv)OPL_KVI("pinn.depth", m->cfg.depth);
  kv[n++] = (opl_kv)OPL_KVI("pinn.width", m->cfg.width);
  kv[n++] = (opl_kv)OPL_KVI("pinn.periodic", m->cfg.periodic);
  kv[n++] = (opl_kv)OPL_KVI("pinn.nfreq", m->cfg.nfreq);
  kv[n++] = (opl_kv)OPL_KVI("pinn.hard", m->cfg.hard);
  kv[n++] = (opl_kv)OPL_KVI("pinn.windows", m->cfg.windows);
  kv[n++] = (opl_kv)OPL_KVI("pinn.param_count", pinn_count(&m->cfg));
  return n;
}

static void ops_describe(const void *self, char *buf, size_t cap) {
  const opl_pinn *m = self;
  char wins[48] = "";
  if (m->cfg.windows > 1) snprintf(wins, sizeof wins, ", %d time windows", m->cfg.windows);
  snprintf(buf, cap, "PINN %s %dx%d tanh on %s (%s%s%s)", opl_pinn_arch_name(m->cfg.arch), m->cfg.depth, m->cfg.width,
           m->prob->name, m->cfg.periodic ? "periodic embedding" : "inputs scaled to [-1, 1]",
           m->cfg.hard ? ", hard initial/boundary conditions" : "", wins);
}

static int ops_summary(const void *self, opl_model_row *rows, int cap) {
  const opl_pinn *m = self;
  int n = 0;
  int64_t F = m->nin, W = m->cfg.width;
#define ROW(nm, shp, np)                                                       \
  do {                                                                         \
    if (n < cap) {                                                             \
      snprintf(rows[n].name, sizeof rows[n].name, "%s", nm);                   \
      snprintf(rows[n].shape, sizeof rows[n].shape, "%s", shp);                \
      rows[n].params = np;                                                     \
    }                                                                          \
    n++;                                                                       \
  } while (0)
  char shp[64], nm[48];
  snprintf(shp, sizeof shp, "(N, %lld)", (long long)W);
  if (m->cfg.arch == OPL_PINN_ARCH_MODIFIED) {
    ROW("encoder U, tanh", shp, F * W + W);
    ROW("encoder V, tanh", shp, F * W + W);
  }
  for (int i = 0; i < m->cfg.depth; i++) {
    snprintf(nm, sizeof nm, "linear%d, tanh%s", i, m->cfg.arch == OPL_PINN_ARCH_MODIFIED && i ? ", gate" : "");
    ROW(nm, shp, (i ? W : F) * W + W);
  }
  ROW(m->cfg.hard ? "output, u0 + t g N" : "output", "(N, 1)", W + 1);
  if (m->cfg.windows > 1) {
    opl_pinn_config one = m->cfg;
    one.windows = 1;
    if (m->cfg.windows == 2) snprintf(nm, sizeof nm, "time window 2, the same layers");
    else snprintf(nm, sizeof nm, "time windows 2..%d, the same layers", m->cfg.windows);
    ROW(nm, "(N, 1)", (m->cfg.windows - 1) * pinn_count(&one));
  }
#undef ROW
  return n;
}

static void ops_free(void *self) {
  opl_pinn *m = self;
  if (m) free(m->win);
  free(self);
}

const opl_model_ops opl_pinn_ops = {
    .name = "pinn",
    .forward = ops_forward,
    .check_input = ops_check_input,
    .to_meta = ops_to_meta,
    .describe = ops_describe,
    .summary = ops_summary,
    .free = ops_free,
};

/* A (out, in) weight ~ N(0, 2 / (in + out)) and a zero bias, named prefix.weight / .bias. */
static int add_layer(opl_params *p, const char *prefix, int64_t in, int64_t out, opl_rng *rng, opl_tensor **w,
                     opl_tensor **b, opl_err *err) {
  char name[64];
  snprintf(name, sizeof name, "%s.weight", prefix);
  *w = opl_params_add(p, name, OPL_DIMS(out, in), 0, err);
  if (!*w) return err ? err->status : OPL_ERR_ARG;
  snprintf(name, sizeof name, "%s.bias", prefix);
  *b = opl_params_add(p, name, OPL_DIMS(out), 0, err);
  if (!*b) return err ? err->status : OPL_ERR_ARG;
  return rng ? opl_init_normal(rng, *w, 0, sqrt(2.0 / (double)(in + out)), err) : OPL_OK;
}

/* The layers of one network g (g->cfg, g->nin set) as parameters base.u/.v, base.<i> of m. */
static int create_layers(opl_model *m, opl_pinn *g, const char *base, opl_rng *rng, opl_err *err) {
  int64_t W = g->cfg.width;
  char prefix[48];
  int st;
  if (g->cfg.arch == OPL_PINN_ARCH_MODIFIED) {
    snprintf(prefix, sizeof prefix, "%s.u", base);
    if ((st = add_layer(&m->params, prefix, g->nin, W, rng, &g->wu, &g->bu, err))) return st;
    snprintf(prefix, sizeof prefix, "%s.v", base);
    if ((st = add_layer(&m->params, prefix, g->nin, W, rng, &g->wv, &g->bv, err))) return st;
  }
  for (int i = 0; i <= g->cfg.depth; i++) {
    snprintf(prefix, sizeof prefix, "%s.%d", base, i);
    if ((st = add_layer(&m->params, prefix, i ? W : g->nin, i < g->cfg.depth ? W : 1, rng, &g->w[i], &g->b[i], err)))
      return st;
  }
  return OPL_OK;
}

static int kind_create(opl_model *m, const void *config, opl_rng *rng, opl_err *err) {
  const opl_pinn_config *cfg = config;
  int st = config_check(cfg, err);
  if (st) return st;
  opl_pinn *f = calloc(1, sizeof *f);
  if (!f) return opl_err_set(err, OPL_ERR_NOMEM, "pinn: out of memory");
  f->cfg = *cfg;
  if (!f->cfg.periodic) f->cfg.nfreq = 1;
  f->prob = opl_pinn_problem_get(cfg->problem);
  f->nin = cfg->periodic ? 1 + 2 * cfg->nfreq : 2;
  int NW = cfg->windows;
  if (NW > 1 && !(f->win = calloc((size_t)NW, sizeof *f->win))) {
    free(f);
    return opl_err_set(err, OPL_ERR_NOMEM, "pinn: out of memory");
  }
  /* window after window (one window: f itself), each initialized from rng in turn */
  for (int k = 0; k < NW; k++) {
    opl_pinn *g = NW > 1 ? &f->win[k] : f;
    if (NW > 1) {
      *g = *f;
      g->cfg.windows = 1;
      g->win = NULL;
      g->t0 = f->prob->T * k / NW;
      g->t1 = k == NW - 1 ? f->prob->T : f->prob->T * (k + 1) / NW;
    }
    char base[24] = "pinn";
    if (k > 0) snprintf(base, sizeof base, "pinn.w%d", k);
    if ((st = create_layers(m, g, base, rng, err))) {
      free(f->win);
      free(f);
      return st;
    }
  }
  if (NW > 1) { /* the composite's own layer fields: window 0's */
    opl_pinn *w0 = &f->win[0];
    memcpy(f->w, w0->w, sizeof f->w);
    memcpy(f->b, w0->b, sizeof f->b);
    f->wu = w0->wu, f->bu = w0->bu, f->wv = w0->wv, f->bv = w0->bv;
  }
  m->ops = &opl_pinn_ops;
  m->self = f;
  m->sdim = 0;
  m->in_channels = 2;
  m->out_channels = 1;
  return OPL_OK;
}

/* opl_model_meta_int of "pinn" into an int (lo and hi within the int range). */
static int meta_int(const opl_kv *kv, int n, const char *key, int64_t lo, int64_t hi, int *out, opl_err *err) {
  int64_t v = 0;
  int st = opl_model_meta_int(kv, n, "pinn", key, lo, hi, &v, err);
  if (!st) *out = (int)v;
  return st;
}

static int kind_from_meta(const opl_kv *kv, int n, void *config, opl_err *err) {
  const opl_kv *model = opl_kv_find(kv, n, "model");
  if (!model || model->type != OPL_KV_STR || !model->s || strcmp(model->s, "pinn"))
    return opl_err_set(err, OPL_ERR_FORMAT, "pinn: attribute 'model' is not 'pinn'");
  opl_pinn_config c;
  memset(&c, 0, sizeof c);
  int v, st;
  if ((st = meta_int(kv, n, "pinn.version", 1, PINN_META_VERSION, &v, err))) return st;
  const opl_kv *pr = opl_kv_find(kv, n, "pinn.problem"), *ar = opl_kv_find(kv, n, "pinn.arch");
  c.problem = pr && pr->type == OPL_KV_STR ? opl_pinn_problem_id_of(pr->s) : -1;
  if (c.problem < 0)
    return opl_err_set(err, OPL_ERR_FORMAT, "pinn: attribute 'pinn.problem' is missing or not one of %s",
                       opl_pinn_problem_names());
  c.arch = ar && ar->type == OPL_KV_STR ? opl_pinn_arch_find(ar->s) : -1;
  if (c.arch < 0) return opl_err_set(err, OPL_ERR_FORMAT, "pinn: attribute 'pinn.arch' is missing or not mlp|modified-mlp");
  if ((st = meta_int(kv, n, "pinn.depth", 1, OPL_PINN_MAX_DEPTH, &c.depth, err)) ||
      (st = meta_int(kv, n, "pinn.width", 1, 1 << 16, &c.width, err)) ||
      (st = meta_int(kv, n, "pinn.periodic", 0, 1, &c.periodic, err)) ||
      (st = meta_int(kv, n, "pinn.nfreq", 1, 64, &c.nfreq, err)) || (st = meta_int(kv, n, "pinn.hard", 0, 1, &c.hard, err)))
    return st;
  c.windows = 1; /* files of one window written before windows existed have no attribute */
  if (opl_kv_find(kv, n, "pinn.windows") &&
      (st = meta_int(kv, n, "pinn.windows", 1, OPL_PINN_MAX_WINDOWS, &c.windows, err)))
    return st;
  if (c.windows > 1 && c.hard)
    return opl_err_set(err, OPL_ERR_FORMAT, "pinn: attributes 'pinn.windows' = %d and 'pinn.hard' = 1 do not go together",
                       c.windows);
  const opl_kv *pc = opl_kv_find(kv, n, "pinn.param_count");
  if (!pc || pc->type != OPL_KV_INT || pc->i != pinn_count(&c))
    return opl_err_set(err, OPL_ERR_FORMAT, "pinn: attribute 'pinn.param_count' is missing or differs from the %lld "
                       "parameters of the configuration", (long long)pinn_count(&c));
  memcpy(config, &c, sizeof c);
  return OPL_OK;
}

static int kind_set_io(void *config, int sdim, int64_t cin, int64_t cout, opl_err *err) {
  (void)config;
  if (sdim != 0 || cin != 2 || cout != 1)
    return opl_err_set(err, OPL_ERR_UNSUPPORTED, "pinn: maps points (t, x) to u: %d spatial axes, %lld inputs and %lld "
                       "outputs asked, expected 0, 2 and 1", sdim, (long long)cin, (long long)cout);
  return OPL_OK;
}

const opl_model_kind opl_pinn_kind = {
    .name = "pinn",
    .config_size = sizeof(opl_pinn_config),
    .create = kind_create,
    .config_from_meta = kind_from_meta,
    .set_io = kind_set_io,
};
