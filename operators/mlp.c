/* opl operators — multilayer perceptron (see mlp.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "operators/mlp.h"
#include "core/init.h"

int opl_mlp_init(opl_mlp *m, opl_params *p, const char *prefix, int nlayers, const int64_t *widths,
                 opl_unary_kind act, opl_rng *rng, opl_err *err) {
  if (nlayers < 1 || nlayers > OPL_MLP_MAX_LAYERS)
    return opl_err_set(err, OPL_ERR_ARG, "mlp: %d layers, expected 1..%d", nlayers, OPL_MLP_MAX_LAYERS);
  if (act < 0 || act >= OPL_UNARY_COUNT)
    return opl_err_set(err, OPL_ERR_ARG, "mlp: unknown activation %d", (int)act);
  for (int i = 0; i <= nlayers; i++)
    if (widths[i] < 1)
      return opl_err_set(err, OPL_ERR_ARG, "mlp: width %d is %lld, expected >= 1", i, (long long)widths[i]);
  m->nlayers = nlayers;
  m->act = act;
  for (int i = 0; i <= nlayers; i++) m->widths[i] = widths[i];
  for (int i = 0; i < nlayers; i++) {
    char name[64];
    snprintf(name, sizeof name, "%s.%d.weight", prefix, i);
    m->w[i] = opl_params_add(p, name, OPL_DIMS(widths[i + 1], widths[i]), 0, err);
    if (!m->w[i]) return err ? err->status : OPL_ERR_ARG;
    snprintf(name, sizeof name, "%s.%d.bias", prefix, i);
    m->b[i] = opl_params_add(p, name, OPL_DIMS(widths[i + 1]), 0, err);
    if (!m->b[i]) return err ? err->status : OPL_ERR_ARG;
    int rc = opl_init_kaiming_uniform(rng, m->w[i], widths[i], OPL_KAIMING_A_DEFAULT, err);
    if (!rc) rc = opl_init_bias_uniform(rng, m->b[i], widths[i], err);
    if (rc) return rc;
  }
  return OPL_OK;
}

opl_tensor *opl_mlp_forward(opl_ctx *c, const opl_mlp *m, opl_tensor *x) {
  opl_tensor *h = x;
  for (int i = 0; i < m->nlayers; i++) {
    h = opl_linear(c, h, m->w[i], m->b[i]);
    if (i + 1 < m->nlayers) h = opl_unary(c, h, m->act);
  }
  return h;
}

/* ------------------------------------------------------------------ the model interface */

#define MLP_META_VERSION 1
static const char *const k_width[OPL_MLP_MAX_LAYERS + 1] = {
    "mlp.width0", "mlp.width1", "mlp.width2", "mlp.width3", "mlp.width4", "mlp.width5",
    "mlp.width6", "mlp.width7", "mlp.width8", "mlp.width9", "mlp.width10", "mlp.width11",
    "mlp.width12", "mlp.width13", "mlp.width14", "mlp.width15", "mlp.width16"};

static int64_t mlp_count(const opl_mlp *m) {
  int64_t n = 0;
  for (int i = 0; i < m->nlayers; i++) n += m->widths[i + 1] * m->widths[i] + m->widths[i + 1];
  return n;
}

static opl_tensor *ops_forward(opl_ctx *c, const void *self, opl_tensor *x) {
  if (!opl_check_input(c, "mlp", "x", x, -1, 0)) return NULL;
  const opl_mlp *m = self;
  if (x->shape[x->rank - 1] != m->widths[0]) {
    char b[96];
    opl_ctx_error(c, OPL_ERR_SHAPE, "mlp: x %s must have %lld features on its last axis",
                  opl_shape_str(b, x->rank, x->shape), (long long)m->widths[0]);
    return NULL;
  }
  return opl_mlp_forward(c, m, x);
}

static int ops_check_input(const void *self, int rank, const int64_t *shape, const char *const *axis,
                           opl_err *err) {
  (void)axis;
  const opl_mlp *m = self;
  char b[96];
  if (rank < 1 || shape[rank - 1] != m->widths[0])
    return opl_err_set(err, OPL_ERR_SHAPE, "mlp: input %s must have %lld features on its last axis",
                       opl_shape_str(b, rank, shape), (long long)m->widths[0]);
  return OPL_OK;
}

static int ops_to_meta(const void *self, opl_kv *kv) {
  const opl_mlp *m = self;
  int n = 0;
  kv[n++] = (opl_kv)OPL_KVS("model", "mlp");
  kv[n++] = (opl_kv)OPL_KVI("mlp.version", MLP_META_VERSION);
  kv[n++] = (opl_kv)OPL_KVI("mlp.layers", m->nlayers);
  for (int i = 0; i <= m->nlayers; i++) kv[n++] = (opl_kv)OPL_KVI(k_width[i], m->widths[i]);
  kv[n++] = (opl_kv)OPL_KVS("mlp.activation", opl_unary_name(m->act));
  kv[n++] = (opl_kv)OPL_KVI("mlp.param_count", mlp_count(m));
  return n;
}

static void ops_describe(const void *self, char *buf, size_t cap) {
  const opl_mlp *m = self;
  int n = snprintf(buf, cap, "MLP (widths");
  for (int i = 0; i <= m->nlayers && n > 0 && (size_t)n < cap; i++)
    n += snprintf(buf + n, cap - (size_t)n, "%s%lld", i ? " - " : " ", (long long)m->widths[i]);
  if (n > 0 && (size_t)n < cap) snprintf(buf + n, cap - (size_t)n, ", %s)", opl_unary_name(m->act));
}

static int ops_summary(const void *self, opl_model_row *rows, int cap) {
  const opl_mlp *m = self;
  for (int i = 0; i < m->nlayers && i < cap; i++) {
    snprintf(rows[i].name, sizeof rows[i].name, "linear%d%s%s", i, i + 1 < m->nlayers ? ", " : "",
             i + 1 < m->nlayers ? opl_unary_name(m->act) : "");
    snprintf(rows[i].shape, sizeof rows[i].shape, "(..., %lld)", (long long)m->widths[i + 1]);
    rows[i].params = m->widths[i + 1] * m->widths[i] + m->widths[i + 1];
  }
  return m->nlayers;
}

static void ops_free(void *self) { free(self); }

const opl_model_ops opl_mlp_ops = {
    .name = "mlp",
    .forward = ops_forward,
    .check_input = ops_check_input,
    .to_meta = ops_to_meta,
    .describe = ops_describe,
    .summary = ops_summary,
    .free = ops_free,
    .samplewise = 1,
};

static int kind_create(opl_model *m, const void *config, opl_rng *rng, opl_err *err) {
  const opl_mlp_config *cfg = config;
  opl_rng local;
  if (!rng) {
    /* loading: opl_mlp_init always draws; any stream will do, the file overwrites the values */
    opl_rng_seed(&local, 0);
    rng = &local;
  }
  opl_mlp *f = calloc(1, sizeof *f);
  if (!f) return opl_err_set(err, OPL_ERR_NOMEM, "mlp: out of memory");
  int st = opl_mlp_init(f, &m->params, "mlp", cfg->nlayers, cfg->widths, cfg->act, rng, err);
  if (st) {
    free(f);
    return st;
  }
  m->ops = &opl_mlp_ops;
  m->self = f;
  m->sdim = 0;
  m->in_channels = f->widths[0];
  m->out_channels = f->widths[f->nlayers];
  return OPL_OK;
}


static int kind_from_meta(const opl_kv *kv, int n, void *config, opl_err *err) {
  const opl_kv *model = opl_kv_find(kv, n, "model");
  if (!model || model->type != OPL_KV_STR || !model->s || strcmp(model->s, "mlp"))
    return opl_err_set(err, OPL_ERR_FORMAT, "mlp: attribute 'model' is not 'mlp'");
  opl_mlp_config c;
  memset(&c, 0, sizeof c);
  int64_t v;
  int st;
  if ((st = opl_model_meta_int(kv, n, "mlp", "mlp.version", 1, MLP_META_VERSION, &v, err))) return st;
  if ((st = opl_model_meta_int(kv, n, "mlp", "mlp.layers", 1, OPL_MLP_MAX_LAYERS, &v, err))) return st;
  c.nlayers = (int)v;
  for (int i = 0; i <= c.nlayers; i++)
    if ((st = opl_model_meta_int(kv, n, "mlp", k_width[i], 1, 1 << 24, &c.widths[i], err))) return st;
  const opl_kv *act = opl_kv_find(kv, n, "mlp.activation");
  c.act = OPL_UNARY_COUNT;
  for (int k = 0; act && act->type == OPL_KV_STR && act->s && k < OPL_UNARY_COUNT; k++)
    if (!strcmp(act->s, opl_unary_name((opl_unary_kind)k))) c.act = (opl_unary_kind)k;
  if (c.act == OPL_UNARY_COUNT)
    return opl_err_set(err, OPL_ERR_FORMAT, "mlp: attribute 'mlp.activation' is missing or names no activation");
  opl_mlp probe = {.nlayers = c.nlayers};
  memcpy(probe.widths, c.widths, sizeof c.widths);
  if ((st = opl_model_meta_int(kv, n, "mlp", "mlp.param_count", 0, INT64_MAX, &v, err))) return st;
  if (v != mlp_count(&probe))
    return opl_err_set(err, OPL_ERR_FORMAT, "mlp: attribute 'mlp.param_count' = %lld, the widths give %lld",
                       (long long)v, (long long)mlp_count(&probe));
  memcpy(config, &c, sizeof c);
  return OPL_OK;
}

static int kind_set_io(void *config, int sdim, int64_t cin, int64_t cout, opl_err *err) {
  opl_mlp_config *cfg = config;
  if (sdim != 0)
    return opl_err_set(err, OPL_ERR_UNSUPPORTED,
                       "mlp: acts on the last axis; inputs with %d spatial axes after the channels need a "
                       "channels-last view",
                       sdim);
  if (cfg->nlayers < 1 || cfg->nlayers > OPL_MLP_MAX_LAYERS)
    return opl_err_set(err, OPL_ERR_ARG, "mlp: %d layers, expected 1..%d", cfg->nlayers, OPL_MLP_MAX_LAYERS);
  cfg->widths[0] = cin;
  cfg->widths[cfg->nlayers] = cout;
  return OPL_OK;
}

const opl_model_kind opl_mlp_kind = {
    .name = "mlp",
    .config_size = sizeof(opl_mlp_config),
    .create = kind_create,
    .config_from_meta = kind_from_meta,
    .set_io = kind_set_io,
};
