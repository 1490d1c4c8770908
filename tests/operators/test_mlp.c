/* End to end on the engine: an MLP fits sin(x) on [0, 2 pi] to MSE < 1e-4 (both precisions),
 * deterministically for a seed. */
#include <math.h>
#include "tests/tap.h"
#include "core/optim.h"
#include "operators/mlp.h"

/* Train a 1-32-32-1 tanh MLP with Adam; returns the final MSE and fills the first weights. */
static double fit(uint64_t seed, int steps, double *w0) {
  opl_err err = {0};
  opl_params p;
  opl_params_init(&p);
  opl_rng rng;
  opl_rng_seed(&rng, seed);
  opl_mlp m;
  int64_t widths[4] = {1, 32, 32, 1};
  const int n = 128;
  opl_ctx *c = opl_ctx_new(0);
  opl_tensor *x = opl_tensor_alloc(OPL_DIMS(n, 1), 0, &err), *y = opl_tensor_alloc(OPL_DIMS(n, 1), 0, &err);
  double mse = NAN;
  if (opl_mlp_init(&m, &p, "mlp", 3, widths, OPL_TANH, &rng, &err)) {
    diag("mlp init: %s", err.msg);
    goto out;
  }
  for (int i = 0; i < n; i++) {
    x->data[i] = (opl_real)(2 * M_PI * i / (n - 1));
    y->data[i] = (opl_real)sin(2 * M_PI * i / (n - 1));
  }
  opl_optim_config cfg = opl_optim_defaults(OPL_OPTIM_ADAM);
  cfg.lr = 3e-3;
  opl_optim *o = opl_optim_create(OPL_OPTIM_ADAM, &p, &cfg, &err);
  opl_sched_cosine sc;
  opl_sched_cosine_init(&sc, o, cfg.lr, steps, 0, &err);
  for (int s = 0; s < steps; s++) {
    opl_ctx_reset(c);
    opl_params_zero_grad(&p);
    opl_tensor *loss = opl_mse_loss(c, opl_mlp_forward(c, &m, x), y);
    if (opl_backward(c, loss)) break;
    mse = loss->data[0];
    opl_optim_step(o, NULL);
    opl_sched_cosine_step(&sc, o);
  }
  if (opl_ctx_status(c)) diag("ctx: %s", opl_ctx_errmsg(c));
  for (int i = 0; i < 4; i++) w0[i] = m.w[0]->data[i];
  opl_optim_free(&o);
out:
  opl_params_free(&p);
  opl_tensor_free(&x);
  opl_tensor_free(&y);
  opl_ctx_free(&c);
  return mse;
}

int main(void) {
  tap_begin();
  double wa[4], wb[4], wc[4];
  double mse = fit(7, 2500, wa);
  ok(mse < 1e-4, "MLP fits sin(x): final MSE %.3e < 1e-4 (%s precision)", mse, OPL_PRECISION_NAME);
  double mse2 = fit(7, 2500, wb);
  ok(mse2 == mse && wa[0] == wb[0] && wa[3] == wb[3], "same seed, same result bit for bit");
  fit(8, 1, wc);
  ok(wc[0] != wa[0], "another seed gives another initialization");
  opl_err err;
  opl_params p;
  opl_params_init(&p);
  opl_rng r;
  opl_rng_seed(&r, 1);
  opl_mlp m;
  int64_t bad[3] = {1, 0, 1};
  ok(opl_mlp_init(&m, &p, "m", 2, bad, OPL_TANH, &r, &err) == OPL_ERR_ARG, "zero width rejected: %s", err.msg);
  opl_params_free(&p);
  return tap_end();
}
