/* opl operators — the neural ODE as a model of the registry (see node_model.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "operators/node_model.h"

#define NODE_META_VERSION 1
#define NODE_MAX_TIMES (1 << 20)

typedef struct node_self {
  opl_node_config cfg;
  opl_model vf;                 /* its parameters were moved to the node's set */
  opl_nde *nde;
  double t0;
  int nt;
  double *ts;                   /* [nt] output times of the next forward */
  /* Per-sample times (opl_node_model_set_times_batch; B = 0: the shared times above): the batch
   * is solved from relative time 0 through the union U [nu] of every sample's times minus its
   * start; sample b's frame j is the state at U[map[b nt + j]]; the time channel of row b reads
   * tau + off[b]. */
  int64_t B;
  double *off;                  /* [B] each sample's start time */
  double *U;                    /* [nu] */
  int nu;
  int *map;                     /* [B nt] */
  int solved;                   /* a forward's solve has run */
  char keys[OPL_MODEL_META_MAX][72]; /* "vf.<key>" for to_meta */
} node_self;

/* ---------------------------------------------------------------- names */

static const char *reg_names[4] = {"none", "error", "stiff", "error+stiff"};
static const char *mode_names[OPL_NODE_REG_MODE_COUNT] = {"global", "local-unbiased", "local-biased"};
static const char *adj_names[OPL_NODE_ADJ_COUNT] = {"discrete", "checkpoint", "backsolve", "interp"};
static const char *method_names[OPL_RK_METHOD_COUNT] = {"dp5", "tsit5", "bs3"};
static const char *saveat_names[2] = {"step", "dense"};

static int name_find(const char *const *names, int n, const char *s) {
  for (int i = 0; s && i < n; i++)
    if (!strcmp(names[i], s)) return i;
  return -1;
}

const char *opl_node_reg_name(int reg) { return reg >= 0 && reg < 4 ? reg_names[reg] : "unknown"; }
int opl_node_reg_from_name(const char *s) { return name_find(reg_names, 4, s); }
const char *opl_node_reg_mode_name(int m) { return m >= 0 && m < OPL_NODE_REG_MODE_COUNT ? mode_names[m] : "unknown"; }
int opl_node_reg_mode_from_name(const char *s) { return name_find(mode_names, OPL_NODE_REG_MODE_COUNT, s); }
const char *opl_node_adjoint_name(int a) { return a >= 0 && a < OPL_NODE_ADJ_COUNT ? adj_names[a] : "unknown"; }
int opl_node_adjoint_from_name(const char *s) { return name_find(adj_names, OPL_NODE_ADJ_COUNT, s); }
const char *opl_node_saveat_name(int a) { return a >= 0 && a < 2 ? saveat_names[a] : "unknown"; }
int opl_node_saveat_from_name(const char *s) { return name_find(saveat_names, 2, s); }
int opl_node_method_from_name(const char *s) { return name_find(method_names, OPL_RK_METHOD_COUNT, s); }

int opl_node_config_init(opl_node_config *cfg, const opl_model_kind *vf_kind, const void *vf_config, opl_err *err) {
  if (!cfg || !vf_kind || !vf_config) return opl_err_set(err, OPL_ERR_ARG, "node: NULL configuration or vector field");
  if (vf_kind->config_size > OPL_NODE_VF_CONFIG_MAX || strlen(vf_kind->name) >= sizeof cfg->vf_kind)
    return opl_err_set(err, OPL_ERR_ARG, "node: the configuration of vector field '%s' does not fit", vf_kind->name);
  memset(cfg, 0, sizeof *cfg);
  snprintf(cfg->vf_kind, sizeof cfg->vf_kind, "%s", vf_kind->name);
  memcpy(cfg->vf.bytes, vf_config, vf_kind->config_size);
  cfg->sdim = 1;
  cfg->channels = 1;
  cfg->method = OPL_RK_TSIT5;
  cfg->rtol = 1e-3;
  cfg->atol = 1e-6;
  cfg->adjoint = OPL_NODE_ADJ_DISCRETE;
  cfg->reg_mode = OPL_NODE_REG_GLOBAL;
  return OPL_OK;
}

/* The vector field's kind: a registered kind other than the node itself. */
static const opl_model_kind *vf_kind_of(const opl_node_config *cfg, opl_err *err) {
  const opl_model_kind *k = opl_model_kind_find(cfg->vf_kind);
  if (!k || k == &opl_node_kind) {
    opl_err_set(err, OPL_ERR_ARG, "node: vector field '%.15s' is not a model kind (fno, mlp)", cfg->vf_kind);
    return NULL;
  }
  return k;
}

static int config_check(const opl_node_config *c, opl_err *err) {
  if (!vf_kind_of(c, err)) return OPL_ERR_ARG;
  if (c->method < 0 || c->method >= OPL_RK_METHOD_COUNT)
    return opl_err_set(err, OPL_ERR_ARG, "node: method %d, expected dp5, tsit5 or bs3", c->method);
  if (!(c->rtol > 0 && isfinite(c->rtol)) || !(c->atol > 0 && isfinite(c->atol)))
    return opl_err_set(err, OPL_ERR_ARG, "node: rtol = %g, atol = %g, both must be finite and > 0", c->rtol, c->atol);
  if (c->adjoint < 0 || c->adjoint >= OPL_NODE_ADJ_COUNT)
    return opl_err_set(err, OPL_ERR_ARG, "node: adjoint %d, expected discrete, checkpoint, backsolve or interp",
                       c->adjoint);
  if (c->reg < 0 || c->reg > 3) return opl_err_set(err, OPL_ERR_ARG, "node: regularizer bits %d", c->reg);
  if (c->reg_mode < 0 || c->reg_mode >= OPL_NODE_REG_MODE_COUNT)
    return opl_err_set(err, OPL_ERR_ARG, "node: regularizer mode %d", c->reg_mode);
  if (!(c->lambda0 >= 0 && isfinite(c->lambda0)) || !(c->lambda1 >= 0 && isfinite(c->lambda1)))
    return opl_err_set(err, OPL_ERR_ARG, "node: lambda %g:%g, expected finite values >= 0", c->lambda0, c->lambda1);
  if (c->reg && c->reg_mode == OPL_NODE_REG_GLOBAL && c->adjoint >= OPL_NODE_ADJ_BACKSOLVE)
    return opl_err_set(err, OPL_ERR_ARG,
                       "node: the global regularizer %s has no continuous adjoint (%s): use a local mode "
                       "(local-unbiased, local-biased) or the discrete / checkpoint adjoint",
                       reg_names[c->reg], adj_names[c->adjoint]);
  if (c->lambda1 != c->lambda0 && !(c->lambda0 > 0 && c->lambda1 > 0))
    return opl_err_set(err, OPL_ERR_ARG, "node: lambda %g:%g: an exponential decay needs both weights > 0", c->lambda0,
                       c->lambda1);
  if (c->saveat != OPL_NDE_SAVEAT_STEP && c->saveat != OPL_NDE_SAVEAT_DENSE)
    return opl_err_set(err, OPL_ERR_ARG, "node: saveat %d, expected step or dense", c->saveat);
  if (c->time_channel != 0 && c->time_channel != 1)
    return opl_err_set(err, OPL_ERR_ARG, "node: time_channel = %d, expected 0 or 1", c->time_channel);
  if (c->sdim < 0 || c->sdim > 3 || c->channels < 1)
    return opl_err_set(err, OPL_ERR_ARG, "node: state with %d spatial axes and %lld channels", c->sdim,
                       (long long)c->channels);
  return OPL_OK;
}

/* ---------------------------------------------------------------- the field */

/* du = F(t, u): the vector-field model on u, with t as an extra channel (FNO: axis 1) or an
 * extra entry of the last axis (MLP) when configured. Recorded on c; nothing outlives the call
 * but du (the checkpointed solve's contract). */
static int field(void *user, opl_ctx *c, double t, opl_tensor *u, opl_tensor **du) {
  node_self *s = user;
  opl_tensor *x = u;
  if (s->cfg.time_channel) {
    int64_t shape[OPL_MAX_RANK];
    memcpy(shape, u->shape, sizeof(int64_t) * (size_t)u->rank);
    int axis = s->vf.sdim == 0 ? u->rank - 1 : 1;
    shape[axis] = 1;
    opl_tensor *tt = opl_full(c, u->rank, shape, t);
    if (tt && s->B > 0 && u->shape[0] == s->B) { /* row b at its own time tau + off[b] */
      int64_t per = tt->numel / s->B;
      for (int64_t b = 0; b < s->B; b++)
        for (int64_t q = 0; q < per; q++) tt->data[b * per + q] = (opl_real)(t + s->off[b]);
    }
    opl_tensor *parts[2] = {u, tt};
    x = tt ? opl_concat(c, 2, parts, axis) : NULL;
  }
  opl_tensor *y = x ? opl_model_forward(c, &s->vf, x) : NULL;
  if (!y) return -1;
  *du = y;
  return 0;
}

/* ---------------------------------------------------------------- ops */

static opl_tensor *ops_forward(opl_ctx *c, const void *self, opl_tensor *x) {
  node_self *s = (node_self *)self; /* the solver records its steps and statistics */
  if (!opl_check_input(c, "node", "x", x, -1, 0)) return NULL;
  if (s->B > 0 && x->shape[0] != s->B) {
    opl_ctx_error(c, OPL_ERR_SHAPE, "node: per-sample times of %lld samples were set, the input has %lld",
                  (long long)s->B, (long long)x->shape[0]);
    return NULL;
  }
  const int nsol = s->B > 0 ? s->nu : s->nt;
  opl_tensor **us = opl_arena_alloc(c, sizeof *us * (size_t)nsol);
  if (!us) return NULL;
  opl_err e;
  if (opl_nde_solve(s->nde, c, s->B > 0 ? 0.0 : s->t0, x, nsol, s->B > 0 ? s->U : s->ts, us, &e)) {
    if (!opl_ctx_status(c)) opl_ctx_error(c, e.status, "node: %s", e.msg);
    return NULL;
  }
  s->solved = 1;
  if (s->B > 0) { /* frame j of row b: row b of the state at U[map[b nt + j]] */
    opl_tensor **fr = opl_arena_alloc(c, sizeof *fr * (size_t)s->nt), **rows = opl_arena_alloc(c, sizeof *rows * (size_t)s->B);
    if (!fr || !rows) return NULL;
    for (int j = 0; j < s->nt; j++) {
      for (int64_t b = 0; b < s->B; b++) rows[b] = opl_slice(c, us[s->map[b * s->nt + j]], 0, b, 1);
      fr[j] = s->B == 1 ? rows[0] : opl_concat(c, (int)s->B, rows, 0);
      if (!fr[j]) return NULL;
    }
    return s->nt == 1 ? fr[0] : opl_concat(c, s->nt, fr, 1);
  }
  return s->nt == 1 ? us[0] : opl_concat(c, s->nt, us, 1);
}

static int ops_check_input(const void *self, int rank, const int64_t *shape, const char *const *axis, opl_err *err) {
  const node_self *s = self;
  if (rank < 2 || shape[1] != s->cfg.channels)
    return opl_err_set(err, OPL_ERR_SHAPE, "node: input of rank %d with %lld channels, the state has %lld", rank,
                       rank >= 2 ? (long long)shape[1] : -1LL, (long long)s->cfg.channels);
  if (s->vf.sdim == 0) {
    if (shape[rank - 1] != s->cfg.state_size)
      return opl_err_set(err, OPL_ERR_SHAPE, "node: the MLP vector field takes states of %lld values, %s has %lld",
                         (long long)s->cfg.state_size, axis && axis[0] ? axis[0] : "the last axis",
                         (long long)shape[rank - 1]);
    return OPL_OK;
  }
  /* The field sees the state with the time channel appended. */
  int64_t sh[OPL_MAX_RANK];
  if (rank > OPL_MAX_RANK) return opl_err_set(err, OPL_ERR_SHAPE, "node: rank %d", rank);
  memcpy(sh, shape, sizeof(int64_t) * (size_t)rank);
  sh[1] += s->cfg.time_channel;
  return s->vf.ops->check_input(s->vf.self, rank, sh, axis, err);
}

static int ops_to_meta(const void *self, opl_kv *kv) {
  node_self *s = (node_self *)self; /* the prefixed keys live in self */
  const opl_node_config *c = &s->cfg;
  int n = 0;
  kv[n++] = (opl_kv)OPL_KVS("model", "node");
  kv[n++] = (opl_kv)OPL_KVI("node.version", NODE_META_VERSION);
  kv[n++] = (opl_kv)OPL_KVS("node.vf", s->vf.ops->name);
  kv[n++] = (opl_kv)OPL_KVI("node.sdim", c->sdim);
  kv[n++] = (opl_kv)OPL_KVI("node.channels", c->channels);
  kv[n++] = (opl_kv)OPL_KVI("node.state_size", c->state_size);
  kv[n++] = (opl_kv)OPL_KVI("node.time_channel", c->time_channel);
  kv[n++] = (opl_kv)OPL_KVS("node.method", method_names[c->method]);
  kv[n++] = (opl_kv)OPL_KVD("node.rtol", c->rtol);
  kv[n++] = (opl_kv)OPL_KVD("node.atol", c->atol);
  kv[n++] = (opl_kv)OPL_KVS("node.adjoint", adj_names[c->adjoint]);
  kv[n++] = (opl_kv)OPL_KVS("node.reg", reg_names[c->reg]);
  kv[n++] = (opl_kv)OPL_KVS("node.reg_mode", mode_names[c->reg_mode]);
  kv[n++] = (opl_kv)OPL_KVD("node.lambda0", c->lambda0);
  kv[n++] = (opl_kv)OPL_KVD("node.lambda1", c->lambda1);
  kv[n++] = (opl_kv)OPL_KVS("node.saveat", saveat_names[c->saveat]);
  opl_kv v[OPL_MODEL_META_MAX];
  int nv = s->vf.ops->to_meta(s->vf.self, v);
  for (int i = 0; i < nv && n < OPL_MODEL_META_MAX; i++) {
    snprintf(s->keys[i], sizeof s->keys[i], "vf.%s", v[i].key);
    kv[n] = v[i];
    kv[n++].key = s->keys[i];
  }
  return n;
}

static void ops_describe(const void *self, char *buf, size_t cap) {
  const node_self *s = self;
  char vd[200];
  s->vf.ops->describe(s->vf.self, vd, sizeof vd);
  const opl_node_config *c = &s->cfg;
  snprintf(buf, cap, "neural ODE (%s, rtol %g, atol %g, %s adjoint%s%s%s%s%s) with vector field %s", method_names[c->method],
           c->rtol, c->atol, adj_names[c->adjoint], c->saveat ? ", dense output" : "", c->time_channel ? ", time channel" : "",
           c->reg ? ", regularizer " : "", c->reg ? reg_names[c->reg] : "", c->reg ? (c->reg_mode == 0 ? " global" : c->reg_mode == 1 ? " local-unbiased" : " local-biased") : "",
           vd);
}

static int ops_summary(const void *self, opl_model_row *rows, int cap) {
  const node_self *s = self;
  int n = s->vf.ops->summary(s->vf.self, rows, cap);
  for (int i = 0; i < n && i < cap; i++) {
    char nm[sizeof rows[i].name];
    snprintf(nm, sizeof nm, "vf.%s", rows[i].name);
    memcpy(rows[i].name, nm, sizeof nm);
  }
  return n;
}

static void ops_free(void *self) {
  node_self *s = self;
  opl_nde_free(&s->nde);
  opl_model_free(&s->vf);
  free(s->ts);
  free(s->off);
  free(s->U);
  free(s->map);
  free(s);
}

const opl_model_ops opl_node_ops = {
    .name = "node",
    .forward = ops_forward,
    .check_input = ops_check_input,
    .to_meta = ops_to_meta,
    .describe = ops_describe,
    .summary = ops_summary,
    .free = ops_free,
};

/* ---------------------------------------------------------------- kind */

static int kind_create(opl_model *m, const void *config, opl_rng *rng, opl_err *err) {
  const opl_node_config *cfg = config;
  int st = config_check(cfg, err);
  if (st) return st;
  const opl_model_kind *vk = vf_kind_of(cfg, err);
  node_self *s = calloc(1, sizeof *s);
  if (!s) return opl_err_set(err, OPL_ERR_NOMEM, "node: out of memory");
  s->cfg = *cfg;
  s->nt = 1;
  s->ts = malloc(sizeof(double));
  m->ops = &opl_node_ops;
  m->self = s;
  if (!s->ts) return opl_err_set(err, OPL_ERR_NOMEM, "node: out of memory");
  s->ts[0] = 1;
  opl_err e;
  if ((st = opl_model_create(&s->vf, vk, cfg->vf.bytes, rng, &e)))
    return opl_err_set(err, st, "node: vector field: %s", e.msg);
  if (s->vf.out_channels != (s->vf.sdim == 0 ? cfg->state_size : cfg->channels))
    return opl_err_set(err, OPL_ERR_ARG, "node: the vector field's output (%lld) does not have the state's shape",
                       (long long)s->vf.out_channels);
  /* The field's parameters become the node's, renamed vf.<name>. */
  opl_params_free(&m->params);
  m->params = s->vf.params;
  opl_params_init(&s->vf.params);
  for (int i = 0; i < m->params.n; i++) {
    opl_tensor *p = m->params.t[i];
    char nm[sizeof p->name];
    if (strlen(p->name) + 3 >= sizeof nm)
      return opl_err_set(err, OPL_ERR_ARG, "node: parameter name '%s' too long for the prefix", p->name);
    snprintf(nm, sizeof nm, "vf.%s", p->name);
    memcpy(p->name, nm, sizeof nm);
  }
  if (!(s->nde = opl_nde_create((opl_rk_method)cfg->method, field, s, err))) return err ? err->status : OPL_ERR_NOMEM;
  if ((st = opl_nde_set_tolerances(s->nde, cfg->rtol, cfg->atol, err)) ||
      (st = opl_nde_set_adjoint(s->nde, (opl_nde_adjoint)cfg->adjoint, err)) ||
      (st = opl_nde_set_saveat(s->nde, (opl_nde_saveat)cfg->saveat, err)))
    return st;
  if (m->params.n > 256)
    return opl_err_set(err, OPL_ERR_ARG, "node: %d parameters tensors, the solver takes at most 256", m->params.n);
  if ((st = opl_nde_set_params(s->nde, m->params.n, m->params.t, err))) return st;
  m->sdim = cfg->sdim;
  m->in_channels = cfg->channels;
  m->out_channels = cfg->channels;
  return OPL_OK;
}

static int kind_from_meta(const opl_kv *kv, int n, void *config, opl_err *err) {
  const opl_kv *e = opl_kv_find(kv, n, "model");
  if (!e || e->type != OPL_KV_STR || !e->s || strcmp(e->s, "node"))
    return opl_err_set(err, OPL_ERR_FORMAT, "node: attribute 'model' is not 'node'");
  static const char *const ints[] = {"node.version", "node.sdim", "node.channels", "node.state_size", "node.time_channel"};
  int64_t iv[5];
  for (int i = 0; i < 5; i++) {
    const opl_kv *k = opl_kv_find(kv, n, ints[i]);
    if (!k || k->type != OPL_KV_INT)
      return opl_err_set(err, OPL_ERR_FORMAT, "node: attribute '%s' is missing or not an integer", ints[i]);
    iv[i] = k->i;
  }
  if (iv[0] < 1 || iv[0] > NODE_META_VERSION)
    return opl_err_set(err, OPL_ERR_FORMAT, "node: attribute 'node.version' = %lld, this build reads 1..%d",
                       (long long)iv[0], NODE_META_VERSION);
  static const char *const strs[] = {"node.vf", "node.method", "node.adjoint", "node.reg", "node.reg_mode"};
  const char *sv[5];
  for (int i = 0; i < 5; i++) {
    const opl_kv *k = opl_kv_find(kv, n, strs[i]);
    if (!k || k->type != OPL_KV_STR || !k->s)
      return opl_err_set(err, OPL_ERR_FORMAT, "node: attribute '%s' is missing or not a string", strs[i]);
    sv[i] = k->s;
  }
  static const char *const dbl[] = {"node.rtol", "node.atol", "node.lambda0", "node.lambda1"};
  double dv[4];
  for (int i = 0; i < 4; i++) {
    const opl_kv *k = opl_kv_find(kv, n, dbl[i]);
    if (!k || k->type != OPL_KV_REAL)
      return opl_err_set(err, OPL_ERR_FORMAT, "node: attribute '%s' is missing or not a number", dbl[i]);
    dv[i] = k->d;
  }
  const opl_model_kind *vk = opl_model_kind_find(sv[0]);
  if (!vk || vk == &opl_node_kind)
    return opl_err_set(err, OPL_ERR_FORMAT, "node: attribute 'node.vf' = '%s' names no vector-field kind", sv[0]);
  /* The field's own attributes: the "vf." ones, without the prefix. */
  opl_kv *sub = malloc(sizeof *sub * (size_t)(n ? n : 1));
  if (!sub) return opl_err_set(err, OPL_ERR_NOMEM, "node: out of memory");
  int ns = 0;
  for (int i = 0; i < n; i++)
    if (kv[i].key && !strncmp(kv[i].key, "vf.", 3)) {
      sub[ns] = kv[i];
      sub[ns++].key = kv[i].key + 3;
    }
  opl_node_config c;
  unsigned char vc[OPL_MODEL_CONFIG_MAX];
  opl_err ve;
  int st = vk->config_size > sizeof vc ? OPL_ERR_FORMAT : vk->config_from_meta(sub, ns, vc, &ve);
  free(sub);
  if (st) return opl_err_set(err, st, "node: vector field: %s", vk->config_size > sizeof vc ? "configuration too large" : ve.msg);
  if ((st = opl_node_config_init(&c, vk, vc, err))) return st;
  c.sdim = (int)iv[1];
  c.channels = iv[2];
  c.state_size = iv[3];
  c.time_channel = (int)iv[4];
  c.method = opl_node_method_from_name(sv[1]);
  c.adjoint = opl_node_adjoint_from_name(sv[2]);
  c.reg = opl_node_reg_from_name(sv[3]);
  c.reg_mode = opl_node_reg_mode_from_name(sv[4]);
  c.rtol = dv[0], c.atol = dv[1], c.lambda0 = dv[2], c.lambda1 = dv[3];
  const opl_kv *sa = opl_kv_find(kv, n, "node.saveat"); /* absent in files before dense output */
  if (sa && (sa->type != OPL_KV_STR || !sa->s || opl_node_saveat_from_name(sa->s) < 0))
    return opl_err_set(err, OPL_ERR_FORMAT, "node: attribute 'node.saveat' = '%s', expected step or dense",
                       sa->type == OPL_KV_STR && sa->s ? sa->s : "(not a string)");
  c.saveat = sa ? opl_node_saveat_from_name(sa->s) : OPL_NDE_SAVEAT_STEP;
  if (c.method < 0 || c.adjoint < 0 || c.reg < 0 || c.reg_mode < 0)
    return opl_err_set(err, OPL_ERR_FORMAT, "node: attribute node.method, node.adjoint, node.reg or node.reg_mode holds an "
                                            "unknown name ('%s', '%s', '%s', '%s')", sv[1], sv[2], sv[3], sv[4]);
  opl_err ce;
  if ((st = config_check(&c, &ce))) return opl_err_set(err, OPL_ERR_FORMAT, "%s", ce.msg);
  memcpy(config, &c, sizeof c);
  return OPL_OK;
}

static int kind_set_io(void *config, int sdim, int64_t cin, int64_t cout, opl_err *err) {
  opl_node_config *c = config;
  if (cin != cout)
    return opl_err_set(err, OPL_ERR_ARG, "node: a vector field maps the state to its own shape: %lld channels in, %lld out",
                       (long long)cin, (long long)cout);
  const opl_model_kind *vk = vf_kind_of(c, err);
  if (!vk) return OPL_ERR_ARG;
  c->sdim = sdim;
  c->channels = cin;
  opl_err e;
  int st;
  if (vk->set_io(c->vf.bytes, sdim, cin + c->time_channel, cout, &e)) {
    /* A field on the last axis (the MLP): it maps state_size values to state_size values. */
    if (c->state_size < 1)
      return opl_err_set(err, OPL_ERR_ARG, "node: the vector field '%s' acts on the last axis and needs the state size",
                         vk->name);
    if ((st = vk->set_io(c->vf.bytes, 0, c->state_size + c->time_channel, c->state_size, &e)))
      return opl_err_set(err, st, "node: vector field: %s", e.msg);
  } else {
    c->state_size = 0;
  }
  return OPL_OK;
}

const opl_model_kind opl_node_kind = {
    .name = "node",
    .config_size = sizeof(opl_node_config),
    .create = kind_create,
    .config_from_meta = kind_from_meta,
    .set_io = kind_set_io,
};

/* ---------------------------------------------------------------- access */

int opl_node_model_is(const opl_model *m) { return m && m->ops == &opl_node_ops; }

const opl_node_config *opl_node_model_config(const opl_model *m) {
  return opl_node_model_is(m) ? &((const node_self *)m->self)->cfg : NULL;
}

int opl_node_model_set_saveat(opl_model *m, int saveat, opl_err *err) {
  if (!opl_node_model_is(m)) return opl_err_set(err, OPL_ERR_ARG, "node: set_saveat on a model that is no neural ODE");
  node_self *s = m->self;
  int st = opl_nde_set_saveat(s->nde, (opl_nde_saveat)saveat, err);
  if (!st) s->cfg.saveat = saveat;
  return st;
}

int opl_node_model_set_times(const opl_model *m, double t0, int nt, const double *ts, opl_err *err) {
  if (!opl_node_model_is(m)) return opl_err_set(err, OPL_ERR_ARG, "node: set_times on a model that is no neural ODE");
  if (nt < 1 || nt > NODE_MAX_TIMES || !ts)
    return opl_err_set(err, OPL_ERR_ARG, "node: %d output times, expected 1..%d", nt, NODE_MAX_TIMES);
  if (!isfinite(t0)) return opl_err_set(err, OPL_ERR_ARG, "node: start time %g", t0);
  for (int i = 0; i < nt; i++)
    if (!isfinite(ts[i]) || ts[i] < (i ? ts[i - 1] : t0) || (i && ts[i] == ts[i - 1]))
      return opl_err_set(err, OPL_ERR_ARG, "node: output time %d = %g is not after %g", i, ts[i], i ? ts[i - 1] : t0);
  node_self *s = m->self;
  double *n2 = realloc(s->ts, sizeof(double) * (size_t)nt);
  if (!n2) return opl_err_set(err, OPL_ERR_NOMEM, "node: out of memory");
  s->ts = n2;
  memcpy(s->ts, ts, sizeof(double) * (size_t)nt);
  s->nt = nt;
  s->t0 = t0;
  s->B = 0;
  return OPL_OK;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int opl_node_model_set_times_batch(const opl_model *m, int64_t B, const double *t0, int nt, const double *ts,
                                   opl_err *err) {
  if (!opl_node_model_is(m)) return opl_err_set(err, OPL_ERR_ARG, "node: set_times on a model that is no neural ODE");
  if (B < 1 || !t0 || !ts || nt < 1 || (int64_t)nt * B > NODE_MAX_TIMES)
    return opl_err_set(err, OPL_ERR_ARG, "node: per-sample times of %lld samples x %d times, expected >= 1 x >= 1 and "
                       "at most %d in all", (long long)B, nt, NODE_MAX_TIMES);
  for (int64_t b = 0; b < B; b++) {
    if (!isfinite(t0[b])) return opl_err_set(err, OPL_ERR_ARG, "node: start time of sample %lld is %g", (long long)b, t0[b]);
    for (int i = 0; i < nt; i++) {
      double v = ts[b * nt + i], prev = i ? ts[b * nt + i - 1] : t0[b];
      if (!isfinite(v) || !(v > prev))
        return opl_err_set(err, OPL_ERR_ARG, "node: output time %d of sample %lld = %g is not after %g", i, (long long)b,
                           v, prev);
    }
  }
  node_self *s = m->self;
  const int64_t n = B * nt;
  double *off = malloc(sizeof(double) * (size_t)B), *U = malloc(sizeof(double) * (size_t)n),
         *ts2 = malloc(sizeof(double) * (size_t)nt);
  int *map = malloc(sizeof(int) * (size_t)n);
  if (!off || !U || !map || !ts2) {
    free(off), free(U), free(map), free(ts2);
    return opl_err_set(err, OPL_ERR_NOMEM, "node: out of memory");
  }
  for (int64_t b = 0; b < B; b++) {
    off[b] = t0[b];
    for (int i = 0; i < nt; i++) U[b * nt + i] = ts[b * nt + i] - t0[b];
  }
  qsort(U, (size_t)n, sizeof(double), cmp_double);
  int nu = 0;
  for (int64_t k = 0; k < n; k++)
    if (!nu || U[k] != U[nu - 1]) U[nu++] = U[k];
  for (int64_t b = 0; b < B; b++) /* binary search of each relative time in U */
    for (int i = 0; i < nt; i++) {
      double v = ts[b * nt + i] - t0[b];
      int lo = 0, hi = nu - 1;
      while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (U[mid] < v) lo = mid + 1;
        else hi = mid;
      }
      map[b * nt + i] = lo;
    }
  for (int i = 0; i < nt; i++) ts2[i] = ts[i] - t0[0];
  free(s->off), free(s->U), free(s->map), free(s->ts);
  s->off = off, s->U = U, s->map = map, s->nu = nu, s->B = B;
  s->ts = ts2, s->nt = nt, s->t0 = 0; /* sample 0's relative times (what a shared-times reader sees) */
  return OPL_OK;
}

int opl_node_model_stats(const opl_model *m, opl_nde_stats *st, opl_err *err) {
  if (!opl_node_model_is(m) || !st) return opl_err_set(err, OPL_ERR_ARG, "node: statistics of a model that is no neural ODE");
  opl_nde_get_stats(((const node_self *)m->self)->nde, st);
  return OPL_OK;
}

const opl_nde *opl_node_model_nde(const opl_model *m) {
  return opl_node_model_is(m) ? ((const node_self *)m->self)->nde : NULL;
}

int opl_node_model_set_dist(const opl_model *m, int on) {
  return opl_node_model_is(m) ? opl_nde_set_dist(((const node_self *)m->self)->nde, on) : 0;
}

double opl_node_model_lambda(const opl_node_config *c, int64_t e, int64_t E) {
  if (!c) return 0;
  if (E <= 1 || c->lambda1 == c->lambda0 || !(c->lambda0 > 0)) return c->lambda0;
  double f = (double)(e < 1 ? 0 : e > E ? E - 1 : e - 1) / (double)(E - 1);
  return c->lambda0 * pow(c->lambda1 / c->lambda0, f);
}

opl_tensor *opl_node_model_reg(opl_ctx *c, const opl_model *m, uint64_t seed) {
  if (opl_ctx_status(c)) return NULL;
  if (!opl_node_model_is(m)) {
    opl_ctx_error(c, OPL_ERR_ARG, "node: regularizer of a model that is no neural ODE");
    return NULL;
  }
  node_self *s = m->self;
  if (!s->cfg.reg || !s->solved) {
    opl_ctx_error(c, OPL_ERR_STATE, "node: %s", !s->cfg.reg ? "no regularizer configured" : "no solve to regularize");
    return NULL;
  }
  opl_tensor *re = NULL, *rs = NULL;
  if (s->cfg.reg_mode == OPL_NODE_REG_GLOBAL) {
    if (s->cfg.reg & OPL_NODE_REG_ERROR) re = opl_nde_reg_error(s->nde, c, 0);
    if (s->cfg.reg & OPL_NODE_REG_STIFF) rs = opl_nde_reg_stiff(s->nde, c, 0);
  } else {
    opl_err e;
    double t1;
    if (opl_nde_local_reg_draw(s->nde, c, s->cfg.reg_mode == OPL_NODE_REG_LOCAL_BIASED, seed, &t1,
                               (s->cfg.reg & OPL_NODE_REG_ERROR) ? &re : NULL,
                               (s->cfg.reg & OPL_NODE_REG_STIFF) ? &rs : NULL, &e)) {
      if (!opl_ctx_status(c)) opl_ctx_error(c, e.status, "node: local regularizer: %s", e.msg);
      return NULL;
    }
  }
  if (opl_ctx_status(c)) return NULL;
  return re && rs ? opl_add(c, re, rs) : re ? re : rs;
}
