/* opl demo — the engine end to end: an MLP fits sin(x) on [0, 2 pi] with Adam. */
#include <math.h>
#include <stdio.h>
#include <time.h>
#include "cli/cli.h"
#include "core/optim.h"
#include "operators/mlp.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

int cli_demo(int argc, char **argv) {
  int64_t steps = 3000, width = 64, points = 256, seed = 0, every = 250;
  double lr = 3e-3;
  const cli_opt opts[] = {
      {"steps", CLI_INT, &steps, "Adam steps (full batch)"},
      {"width", CLI_INT, &width, "hidden width of the 1-W-W-1 tanh MLP"},
      {"points", CLI_INT, &points, "training points on [0, 2 pi]"},
      {"lr", CLI_DOUBLE, &lr, "Adam learning rate (cosine-annealed to 0)"},
      {"seed", CLI_INT, &seed, "random seed of the initialization"},
      {"every", CLI_INT, &every, "print the loss every this many steps"},
  };
  char *pos[1];
  int npos;
  int rc = cli_parse("demo", "[options]", argc, argv, opts, sizeof opts / sizeof opts[0], pos, 0, &npos);
  if (rc) return rc == 1 ? 0 : 2;
  if (steps < 1 || width < 1 || points < 2 || every < 1 || !(lr > 0)) {
    fprintf(stderr, "opl demo: --steps, --width, --every must be >= 1, --points >= 2 and --lr > 0\n");
    return 2;
  }

  opl_err err = {0};
  opl_params params;
  opl_params_init(&params);
  opl_rng rng;
  opl_rng_seed(&rng, (uint64_t)seed);
  opl_mlp mlp;
  int64_t widths[4] = {1, width, width, 1};
  opl_ctx *c = opl_ctx_new(0);
  opl_tensor *x = opl_tensor_alloc(OPL_DIMS(points, 1), 0, &err);
  opl_tensor *y = opl_tensor_alloc(OPL_DIMS(points, 1), 0, &err);
  opl_optim *adam = NULL;
  if (!c || !x || !y || opl_mlp_init(&mlp, &params, "mlp", 3, widths, OPL_TANH, &rng, &err)) goto fail;
  for (int64_t i = 0; i < points; i++) {
    double xi = 2 * M_PI * i / (points - 1);
    x->data[i] = (opl_real)xi;
    y->data[i] = (opl_real)sin(xi);
  }
  opl_optim_config cfg = opl_optim_defaults(OPL_OPTIM_ADAM);
  cfg.lr = lr;
  adam = opl_optim_create(OPL_OPTIM_ADAM, &params, &cfg, &err);
  if (!adam) goto fail;
  opl_sched_cosine sched;
  if (opl_sched_cosine_init(&sched, adam, lr, steps, 0.0, &err)) goto fail;

  printf("opl demo: MLP 1-%lld-%lld-1 (tanh, %lld parameters, %s precision) fits sin(x) on [0, 2 pi] "
         "at %lld points, Adam lr %g with cosine decay, %lld steps\n",
         (long long)width, (long long)width, (long long)opl_params_count(&params), OPL_PRECISION_NAME,
         (long long)points, lr, (long long)steps);
  printf("%8s %14s %10s\n", "step", "mse", "seconds");
  double t0 = now(), mse = NAN;
  for (int64_t s = 1; s <= steps; s++) {
    opl_ctx_reset(c);
    opl_params_zero_grad(&params);
    opl_tensor *loss = opl_mse_loss(c, opl_mlp_forward(c, &mlp, x), y);
    if (opl_backward(c, loss)) break;
    mse = loss->data[0];
    if (!isfinite(mse)) {
      opl_err_set(&err, OPL_ERR_NONFINITE, "loss became %g at step %lld", mse, (long long)s);
      goto fail;
    }
    if (opl_optim_step(adam, &err)) goto fail;
    opl_sched_cosine_step(&sched, adam);
    if (s == 1 || s % every == 0 || s == steps)
      printf("%8lld %14.6e %10.2f\n", (long long)s, mse, now() - t0);
  }
  if (opl_ctx_status(c)) {
    opl_ctx_take_error(c, &err);
    goto fail;
  }
  /* Final check on points between the training points. */
  opl_ctx_reset(c);
  opl_ctx_set_grad_enabled(c, 0);
  opl_tensor *xt = opl_new(c, OPL_DIMS(points - 1, 1));
  double maxerr = 0;
  for (int64_t i = 0; i + 1 < points; i++) xt->data[i] = (opl_real)(2 * M_PI * (i + 0.5) / (points - 1));
  opl_tensor *yt = opl_mlp_forward(c, &mlp, xt);
  if (!yt) {
    opl_ctx_take_error(c, &err);
    goto fail;
  }
  for (int64_t i = 0; i + 1 < points; i++) maxerr = fmax(maxerr, fabs(yt->data[i] - sin(xt->data[i])));
  printf("final training mse %.3e; max |error| between training points %.3e; %s\n", mse, maxerr,
         mse < 1e-4 ? "fit reached mse < 1e-4" : "fit did NOT reach mse < 1e-4");
  opl_optim_free(&adam);
  opl_params_free(&params);
  opl_tensor_free(&x);
  opl_tensor_free(&y);
  opl_ctx_free(&c);
  return mse < 1e-4 ? 0 : 1;
fail:
  fprintf(stderr, "opl demo: %s\n", err.msg[0] ? err.msg : (c ? opl_ctx_errmsg(c) : "out of memory"));
  opl_optim_free(&adam);
  opl_params_free(&params);
  opl_tensor_free(&x);
  opl_tensor_free(&y);
  opl_ctx_free(&c);
  return 1;
}
