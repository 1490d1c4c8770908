/* opl operators — multilayer perceptron (see mlp.h). */
#include <stdio.h>
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
