/* opl operators — the model interface: registry, dispatch, rollout, checkpoints (see model.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "operators/model.h"
#include "operators/fno.h"
#include "operators/mlp.h"
#include "operators/mgno.h"
#include "operators/node_model.h"
#include "operators/pinn.h"
#include "operators/sinenet.h"

/* ------------------------------------------------------------------ registry */

const opl_model_kind *const opl_model_kinds[] = {&opl_fno_kind, &opl_mlp_kind, &opl_node_kind, &opl_pinn_kind,
                                                    &opl_mgno_kind, &opl_sinenet_kind, NULL};

const opl_model_kind *opl_model_kind_find(const char *name) {
  for (int i = 0; name && opl_model_kinds[i]; i++)
    if (!strcmp(opl_model_kinds[i]->name, name)) return opl_model_kinds[i];
  return NULL;
}

const char *opl_model_kind_names(char *buf, size_t cap) {
  size_t n = 0;
  if (cap) buf[0] = 0;
  for (int i = 0; opl_model_kinds[i] && n < cap; i++) {
    int w = snprintf(buf + n, cap - n, "%s%s", i ? ", " : "", opl_model_kinds[i]->name);
    if (w < 0) break;
    n += (size_t)w;
  }
  return buf;
}

/* ------------------------------------------------------------------ life */

int opl_model_create(opl_model *m, const opl_model_kind *k, const void *config, opl_rng *rng, opl_err *err) {
  if (!m || !k || !config) return opl_err_set(err, OPL_ERR_ARG, "model: NULL model, kind or configuration");
  memset(m, 0, sizeof *m);
  opl_params_init(&m->params);
  int st = k->create(m, config, rng, err);
  if (st) {
    opl_model_free(m);
    return st;
  }
  OPL_ASSERT(m->ops && !strcmp(m->ops->name, k->name), "model kind '%s' created a model without its ops", k->name);
  return OPL_OK;
}

void opl_model_free(opl_model *m) {
  if (!m) return;
  if (m->ops && m->self) m->ops->free(m->self);
  opl_params_free(&m->params);
  memset(m, 0, sizeof *m);
}

opl_tensor *opl_model_forward(opl_ctx *c, const opl_model *m, opl_tensor *x) {
  if (opl_ctx_status(c)) return NULL;
  if (!m || !m->ops) {
    opl_ctx_error(c, OPL_ERR_ARG, "model: forward of a NULL or empty model");
    return NULL;
  }
  return m->ops->forward(c, m->self, x);
}

opl_tensor *opl_model_rollout(opl_ctx *c, const opl_model *m, opl_tensor *x, int steps) {
  if (opl_ctx_status(c)) return NULL;
  if (!m || !m->ops) {
    opl_ctx_error(c, OPL_ERR_ARG, "rollout: NULL or empty model");
    return NULL;
  }
  const char *name = m->ops->name;
  int64_t Cin = m->in_channels, Cout = m->out_channels;
  if (steps < 1) {
    opl_ctx_error(c, OPL_ERR_ARG, "%s_rollout: steps = %d, expected >= 1", name, steps);
    return NULL;
  }
  if (Cout > Cin) {
    opl_ctx_error(c, OPL_ERR_ARG,
                  "%s_rollout: the model predicts Cout = %lld frames per step, more than its "
                  "window of Cin = %lld frames",
                  name, (long long)Cout, (long long)Cin);
    return NULL;
  }
  opl_tensor **pred = opl_arena_alloc(c, (size_t)steps * sizeof *pred);
  if (!pred) return NULL;
  opl_tensor *win = x;
  for (int s = 0; s < steps; s++) {
    opl_tensor *y = m->ops->forward(c, m->self, win);
    if (!y) return NULL;
    pred[s] = y;
    if (s + 1 == steps) break;
    if (Cout == Cin) {
      win = y;
    } else {
      /* Slide the window: drop the oldest Cout frames, append the prediction. */
      opl_tensor *w2[2] = {opl_slice(c, win, 1, Cout, Cin - Cout), y};
      win = opl_concat(c, 2, w2, 1);
    }
  }
  return steps == 1 ? pred[0] : opl_concat(c, steps, pred, 1);
}

int64_t opl_model_param_count(const opl_model *m) { return m ? opl_params_count(&m->params) : 0; }

int opl_model_summary(const opl_model *m, opl_model_row *rows, int cap, int64_t *total) {
  if (total) *total = opl_model_param_count(m);
  if (!m || !m->ops) return 0;
  return m->ops->summary(m->self, rows, cap);
}

/* ------------------------------------------------------------------ specs */

int opl_model_spec_set(opl_model_spec *s, const opl_model_kind *k, const void *config, opl_err *err) {
  if (!s || !k || !config) return opl_err_set(err, OPL_ERR_ARG, "model: NULL spec, kind or configuration");
  if (k->config_size > OPL_MODEL_CONFIG_MAX)
    return opl_err_set(err, OPL_ERR_ARG, "model: the configuration of '%s' (%zu bytes) exceeds %d bytes", k->name,
                       k->config_size, OPL_MODEL_CONFIG_MAX);
  memset(s, 0, sizeof *s);
  s->kind = k;
  memcpy(s->config.bytes, config, k->config_size);
  return OPL_OK;
}

int opl_model_kind_of_meta(const opl_kv *kv, int n, const opl_model_kind **k, opl_err *err) {
  const opl_kv *e = opl_kv_find(kv, n, "model");
  if (!e) {
    *k = &opl_fno_kind; /* files from before the attribute named the kind: FNO */
    return OPL_OK;
  }
  char names[128];
  if (e->type != OPL_KV_STR || !e->s)
    return opl_err_set(err, OPL_ERR_FORMAT, "model: attribute 'model' must be a string naming the kind (%s)",
                       opl_model_kind_names(names, sizeof names));
  if (!(*k = opl_model_kind_find(e->s)))
    return opl_err_set(err, OPL_ERR_UNSUPPORTED, "model: attribute 'model' = '%s' is no model kind of this build (%s)",
                       e->s, opl_model_kind_names(names, sizeof names));
  return OPL_OK;
}

int opl_model_spec_from_meta(const opl_kv *kv, int n, opl_model_spec *s, opl_err *err) {
  if (!s) return opl_err_set(err, OPL_ERR_ARG, "model: NULL spec");
  const opl_model_kind *k = NULL;
  int st = opl_model_kind_of_meta(kv, n, &k, err);
  if (st) return st;
  memset(s, 0, sizeof *s);
  if (!opl_kv_find(kv, n, "model")) {
    /* The kind's reader checks the "model" attribute: give it the implied one. */
    opl_kv *k2 = malloc(sizeof *k2 * (size_t)(n + 1));
    if (!k2) return opl_err_set(err, OPL_ERR_NOMEM, "model: out of memory");
    if (n) memcpy(k2, kv, sizeof *k2 * (size_t)n);
    k2[n] = (opl_kv)OPL_KVS("model", k->name);
    st = k->config_from_meta(k2, n + 1, s->config.bytes, err);
    free(k2);
  } else {
    st = k->config_from_meta(kv, n, s->config.bytes, err);
  }
  if (!st) s->kind = k;
  return st;
}

int opl_model_create_spec(opl_model *m, const opl_model_spec *s, opl_rng *rng, opl_err *err) {
  if (!s || !s->kind) return opl_err_set(err, OPL_ERR_ARG, "model: NULL or empty spec");
  return opl_model_create(m, s->kind, s->config.bytes, rng, err);
}

/* ------------------------------------------------------------------ files */

int opl_model_save(const char *path, const opl_model *m, const opl_kv *extra, int nextra, opl_err *err) {
  if (!path || !m || !m->ops || nextra < 0 || (nextra > 0 && !extra))
    return opl_err_set(err, OPL_ERR_ARG, "model_save: NULL path or model, or bad extra attributes");
  opl_kv meta_model[OPL_MODEL_META_MAX];
  int nm = m->ops->to_meta(m->self, meta_model);
  for (int i = 0; i < nextra; i++)
    if (!extra[i].key || opl_kv_find(meta_model, nm, extra[i].key))
      return opl_err_set(err, OPL_ERR_ARG, "model_save: '%s': extra attribute '%s' is reserved for the model", path,
                         extra[i].key ? extra[i].key : "(null)");
  opl_kv *meta = malloc((size_t)(nm + nextra) * sizeof *meta);
  if (!meta) return opl_err_set(err, OPL_ERR_NOMEM, "model_save: '%s': out of memory", path);
  memcpy(meta, meta_model, (size_t)nm * sizeof *meta);
  if (nextra) memcpy(meta + nm, extra, (size_t)nextra * sizeof *meta);
  int st = opl_checkpoint_save(path, &m->params, NULL, meta, nm + nextra, err);
  free(meta);
  return st;
}

int opl_model_load(const char *path, opl_model *m, opl_err *err) {
  if (!path || !m) return opl_err_set(err, OPL_ERR_ARG, "model_load: NULL path or model");
  memset(m, 0, sizeof *m);
  opl_kv *kv = NULL;
  int nkv = 0;
  opl_err e = {0};
  int st = opl_checkpoint_read_meta(path, &kv, &nkv, &e);
  if (st) return opl_err_set(err, st, "%s", e.msg);
  opl_model_spec s;
  st = opl_model_spec_from_meta(kv, nkv, &s, &e);
  opl_kv_free(&kv, nkv);
  if (st) return opl_err_set(err, st, "model_load: '%s': %s", path, e.msg);
  if (!(st = opl_model_create_spec(m, &s, NULL, &e)) && (st = opl_checkpoint_load(path, &m->params, NULL, &e)))
    opl_model_free(m);
  if (st) return opl_err_set(err, st, "model_load: '%s': %s", path, e.msg);
  return OPL_OK;
}

int opl_model_meta_int(const opl_kv *kv, int n, const char *who, const char *key, int64_t lo, int64_t hi,
                       int64_t *out, opl_err *err) {
  const opl_kv *e = opl_kv_find(kv, n, key);
  if (!e) return opl_err_set(err, OPL_ERR_NOTFOUND, "%s: attribute '%s' is missing", who, key);
  if (e->type != OPL_KV_INT || e->i < lo || e->i > hi)
    return opl_err_set(err, OPL_ERR_FORMAT, "%s: attribute '%s' must be an integer in %lld..%lld", who, key,
                       (long long)lo, (long long)hi);
  *out = e->i;
  return OPL_OK;
}

int opl_model_set_io_2d(const char *who, int sdim, int64_t cin, int64_t cout, int64_t *in, int64_t *out, opl_err *err) {
  if (sdim != 2)
    return opl_err_set(err, OPL_ERR_UNSUPPORTED, "%s: a 2-D operator; the task has %d spatial axes", who, sdim);
  *in = cin;
  *out = cout;
  return OPL_OK;
}
