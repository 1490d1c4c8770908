#include "tests/operators/fit.h"
#include <string.h>
#include "core/optim.h"

int test_adam_fit(opl_ctx *c, opl_model *m, opl_tensor *x, opl_tensor *y, int steps, double lr, double *first,
                  double *last) {
  opl_err e = {0};
  opl_optim_config oc = opl_optim_defaults(OPL_OPTIM_ADAM);
  oc.lr = lr;
  opl_optim *o = opl_optim_create(OPL_OPTIM_ADAM, &m->params, &oc, &e);
  *first = *last = 0;
  int shape_ok = 0, s = 0;
  for (; o && s < steps; s++) {
    opl_ctx_reset(c);
    opl_params_zero_grad(&m->params);
    opl_tensor *p = opl_model_forward(c, m, x);
    if (!p) break;
    shape_ok = p->rank == y->rank && !memcmp(p->shape, y->shape, sizeof(int64_t) * (size_t)y->rank);
    opl_tensor *loss = opl_mse_loss(c, p, y);
    if (opl_backward(c, loss)) break;
    if (s == 0) *first = loss->data[0];
    *last = loss->data[0];
    opl_optim_step(o, NULL);
  }
  opl_optim_free(&o);
  return shape_ok && s == steps;
}

int test_same_params(const opl_model *a, const opl_model *b) {
  int same = a->ops == b->ops && a->params.n == b->params.n;
  for (int i = 0; same && i < a->params.n; i++) {
    const opl_tensor *p = a->params.t[i], *q = b->params.t[i];
    same = !strcmp(p->name, q->name) && opl_nreal(p) == opl_nreal(q) &&
           !memcmp(p->data, q->data, sizeof(opl_real) * (size_t)opl_nreal(p));
  }
  return same;
}
