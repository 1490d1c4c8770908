/* MgNO's Navier-Stokes variant (operators/mgno.h, variant OPL_MGNO_NS) and reflect padding: the
 * parameter count of the authors' MgNO_NS default configuration, the LayerNorms' grid check,
 * the global skip, the scale invariance the top-level LayerNorm gives, a training step that
 * reduces the loss, checkpoint round trips of an NS model and of a reflect-padded model. */
#include <math.h>
#include <string.h>
#include "tests/tap.h"
#include "tests/tmpdir.h"
#include "tests/operators/fit.h"
#include "core/optim.h"
#include "operators/mgno.h"

/* x[i] deterministic in [-1, 1]. */
static void fill(opl_tensor *x, int seed) {
  for (int64_t i = 0; i < x->numel; i++) x->data[i] = (opl_real)(((i * 37 + seed * 11) % 101) / 50.0 - 1);
}

/* Save m to dir/name, load it back: 1 if the parameters are equal bit for bit and the loaded
 * configuration equals cfg. */
static int round_trip(const char *dir, const char *name, const opl_model *m, const opl_mgno_config *cfg) {
  char path[300];
  opl_err e = {0};
  snprintf(path, sizeof path, "%s/%s", dir, name);
  opl_model m2;
  if (opl_model_save(path, m, NULL, 0, &e) || opl_model_load(path, &m2, &e)) {
    diag("save / load: %s", e.msg);
    return 0;
  }
  const opl_mgno *g = m2.self;
  int same = m2.ops == &opl_mgno_ops && test_same_params(m, &m2) && g->cfg.variant == cfg->variant &&
             g->cfg.pad == cfg->pad &&
             (cfg->variant != OPL_MGNO_NS || (g->cfg.ln_res[0] == cfg->ln_res[0] && g->cfg.ln_res[1] == cfg->ln_res[1]));
  opl_model_free(&m2);
  return same;
}

int main(void) {
  tap_begin();
  opl_err e = {0};
  opl_mgno_config cfg;
  ok(opl_mgno_preset("ns", &cfg, &e) == OPL_OK && cfg.variant == OPL_MGNO_NS && cfg.pad == OPL_PAD_CIRCULAR,
     "preset ns: the NS variant, circular padding");
  /* Per layer (Cu = 32, L = 5, 7 smoothing steps: 1 init S + 6 A,S pairs), f-channels cf:
   *   RT 4*16*1024 = 65536; Pi, R 4*9*(1024 + cf^2); S0 9*32 cf; pairs 6*2*9*32 cf;
   *   LayerNorms 2*32*(64^2 + 32^2 + 16^2 + 8^2) = 348160; no 1x1 convolution.
   *   cf = 1:  65536 + 36900 + 288 + 3456 + 348160 = 454340
   *   cf = 32: 65536 + 73728 + 9216 + 110592 + 348160 = 607232
   * 454340 + 4 * 607232 + 32 (projection) = 2883300, the authors' count_params(MgNO_NS(...)) with
   * navier.py's defaults. */
  ok(opl_mgno_param_count(&cfg) == 2883300, "ns formula: 2883300 (got %lld)", (long long)opl_mgno_param_count(&cfg));
  opl_model m;
  ok(opl_model_create(&m, &opl_mgno_kind, &cfg, NULL, &e) == OPL_OK, "create ns: %s", e.msg);
  int64_t total = 0, sum = 0;
  opl_model_row rows[32];
  int nr = opl_model_summary(&m, rows, 32, &total);
  for (int i = 0; i < nr && i < 32; i++) sum += rows[i].params;
  ok(opl_model_param_count(&m) == 2883300 && total == 2883300 && sum == 2883300,
     "ns parameter set: %lld, summary %lld, rows %lld", (long long)opl_model_param_count(&m), (long long)total,
     (long long)sum);
  int64_t s32[4] = {2, 1, 32, 32}, s64[4] = {2, 1, 64, 64};
  int st = m.ops->check_input(m.self, 4, s32, NULL, &e);
  ok(st == OPL_ERR_SHAPE && strstr(e.msg, "64 x 64"), "32 x 32 refused by the 64 x 64 LayerNorms: %s", e.msg);
  ok(m.ops->check_input(m.self, 4, s64, NULL, &e) == OPL_OK, "64 x 64 accepted");
  opl_model_free(&m);

  opl_mgno_config bad = cfg;
  bad.ln_res[1] = 40; /* not a multiple of 2^4 */
  ok(opl_mgno_check_config(&bad, &e) == OPL_ERR_ARG && strstr(e.msg, "LayerNorm grid"), "LayerNorm grid 64 x 40: %s",
     e.msg);
  bad = cfg;
  bad.in_channels = 1, bad.out_channels = 2;
  ok(opl_mgno_check_config(&bad, &e) == OPL_ERR_ARG && strstr(e.msg, "skip"), "skip needs Cin >= Cout: %s", e.msg);
  bad = cfg;
  bad.pad = (opl_pad_mode)9;
  ok(opl_mgno_check_config(&bad, &e) == OPL_ERR_ARG && strstr(e.msg, "reflect"), "unknown padding: %s", e.msg);

  /* A small NS model: 2 layers, Cu 4, 3 levels, 2 input frames, LayerNorms on 16 x 8. */
  opl_mgno_config c2 = cfg;
  c2.layers = 2;
  c2.channels_u = 4;
  c2.in_channels = 2;
  c2.out_channels = 1;
  ok(opl_mgno_parse_iters("1,0;1,0;2,0", &c2, &e) == OPL_OK, "num_iteration 1,0;1,0;2,0");
  c2.ln_res[0] = 16, c2.ln_res[1] = 8;
  opl_rng rng;
  opl_rng_seed(&rng, 7);
  ok(opl_model_create(&m, &opl_mgno_kind, &c2, &rng, &e) == OPL_OK, "small NS model: %s", e.msg);
  ok(opl_model_param_count(&m) == opl_mgno_param_count(&c2), "small NS model count = formula (%lld)",
     (long long)opl_mgno_param_count(&c2));
  opl_ctx *c = opl_ctx_new(0);
  opl_tensor *x = opl_tensor_alloc(OPL_DIMS(3, 2, 16, 8), 0, &e), *y = opl_tensor_alloc(OPL_DIMS(3, 1, 16, 8), 0, &e);
  fill(x, 1);
  fill(y, 2);
  /* The skip: with the projection zeroed the output is the last input frame, exactly. */
  opl_mgno *mg = m.self;
  opl_tensor *proj = mg->proj;
  opl_real keep[4];
  memcpy(keep, proj->data, sizeof keep);
  memset(proj->data, 0, sizeof keep);
  opl_ctx_set_grad_enabled(c, 0);
  opl_tensor *p0 = opl_model_forward(c, &m, x);
  int skip_ok = p0 && p0->shape[1] == 1;
  for (int64_t b = 0; skip_ok && b < 3; b++)
    skip_ok = !memcmp(p0->data + b * 128, x->data + (b * 2 + 1) * 128, sizeof(opl_real) * 128);
  ok(skip_ok, "projection zeroed: the output is the input's last frame (the global skip)");
  memcpy(proj->data, keep, sizeof keep);
  /* Scale invariance of a 2-level model: no biases, linear smoothing, and the last operation of
   * the V-cycle (no post-smoothing) is LayerNorm(u_0 + RT u_1) with both terms linear in the
   * input, so model(a x) - a x_last = model(x) - x_last for a > 0, up to the LayerNorm's eps.
   * A LayerNorm elsewhere (or the Darcy variant's 1x1 convolution) would break it. */
  opl_mgno_config c4 = c2;
  ok(opl_mgno_parse_iters("1,1;2,0", &c4, &e) == OPL_OK, "num_iteration 1,1;2,0");
  c4.iters[0][1] = 0;
  opl_model m4;
  opl_rng_seed(&rng, 5);
  ok(opl_model_create(&m4, &opl_mgno_kind, &c4, &rng, &e) == OPL_OK, "2-level NS model: %s", e.msg);
  opl_ctx_reset(c);
  opl_tensor *xs = opl_tensor_alloc(OPL_DIMS(3, 2, 16, 8), 0, &e);
  for (int64_t i = 0; i < x->numel; i++) xs->data[i] = 3 * x->data[i];
  opl_tensor *pa = opl_model_forward(c, &m4, x), *pb = opl_model_forward(c, &m4, xs);
  double dmax = 0, pmax = 0;
  for (int64_t b = 0; pa && pb && b < 3; b++)
    for (int64_t i = 0; i < 128; i++) {
      double last = x->data[(b * 2 + 1) * 128 + i];
      double da = pa->data[b * 128 + i] - last, db = pb->data[b * 128 + i] - 3 * last;
      dmax = fmax(dmax, fabs(da - db));
      pmax = fmax(pmax, fabs(da));
    }
  ok(pa && pb && pmax > 1e-3 && dmax < 1e-3 * pmax, "model(3x) - 3x_last = model(x) - x_last: %.3g of %.3g", dmax,
     pmax);
  opl_model_free(&m4);
  opl_ctx_set_grad_enabled(c, 1);
  opl_optim_config oc = opl_optim_defaults(OPL_OPTIM_ADAM);
  oc.lr = 1e-2;
  opl_optim *o = opl_optim_create(OPL_OPTIM_ADAM, &m.params, &oc, &e);
  double first = 0, last = 0;
  int shape_ok = 0, ln_grad = 0;
  for (int s = 0; s < 20; s++) {
    opl_ctx_reset(c);
    opl_params_zero_grad(&m.params);
    opl_tensor *p = opl_model_forward(c, &m, x);
    if (!p) break;
    shape_ok = p->rank == 4 && p->shape[0] == 3 && p->shape[1] == 1 && p->shape[2] == 16 && p->shape[3] == 8;
    opl_tensor *loss = opl_mse_loss(c, p, y);
    if (opl_backward(c, loss)) break;
    if (s == 0) {
      first = loss->data[0];
      const opl_tensor *w = mg->layer[1].ln_w[0];
      for (int64_t i = 0; w->grad && i < w->numel; i++) ln_grad |= w->grad[i] != 0;
    }
    last = loss->data[0];
    opl_optim_step(o, NULL);
  }
  ok(shape_ok, "forward (3, 2, 16, 8) -> (3, 1, 16, 8)");
  ok(ln_grad, "the LayerNorm weights get gradients");
  ok(last < 0.8 * first, "20 Adam steps lower the loss: %.4g -> %.4g", first, last);
  char dir[256];
  test_tmpdir_make(dir, "mgno_ns");
  ok(round_trip(dir, "ns.h5", &m, &c2), "NS checkpoint: configuration and parameters round-trip");
  opl_optim_free(&o);
  opl_model_free(&m);

  /* Reflect padding on the Darcy variant: runs, differs from circular, round-trips. */
  opl_mgno_config c3 = c2;
  c3.variant = OPL_MGNO_DC;
  c3.pad = OPL_PAD_REFLECT;
  opl_model mr, mc;
  opl_rng_seed(&rng, 9);
  ok(opl_model_create(&mr, &opl_mgno_kind, &c3, &rng, &e) == OPL_OK, "reflect-padded model: %s", e.msg);
  c3.pad = OPL_PAD_CIRCULAR;
  opl_rng_seed(&rng, 9);
  ok(opl_model_create(&mc, &opl_mgno_kind, &c3, &rng, &e) == OPL_OK, "the same weights, circular padding");
  opl_ctx_reset(c);
  opl_tensor *yr = opl_model_forward(c, &mr, x), *yc = opl_model_forward(c, &mc, x);
  double diff = 0;
  for (int64_t i = 0; yr && yc && i < yr->numel; i++) diff = fmax(diff, fabs((double)yr->data[i] - yc->data[i]));
  ok(yr && yc && diff > 1e-4, "reflect and circular padding give different outputs (max diff %.3g)", diff);
  c3.pad = OPL_PAD_REFLECT;
  ok(round_trip(dir, "reflect.h5", &mr, &c3), "reflect checkpoint: 'mgno.padding' = reflect round-trips");
  opl_model_free(&mr);
  opl_model_free(&mc);
  opl_tensor_free(&x);
  opl_tensor_free(&xs);
  opl_tensor_free(&y);
  opl_ctx_free(&c);
  test_tmpdir_remove(dir);
  return tap_end();
}
