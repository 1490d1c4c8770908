/* SineNet (operators/sinenet.h): parameter counts equal to the authors' class counted in torch,
 * widths, the input check, a forward against the authors' model in torch with the same
 * weights, a finite-difference gradient check of the whole model (double build), a training
 * step that lowers the loss, and a checkpoint round trip. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "tests/tap.h"
#include "tests/tmpdir.h"
#include "tests/operators/fit.h"
#include "operators/sinenet.h"

/* Fill every parameter by a rule of its own shape only (so the authors' torch model, filled by
 * the same rule per named parameter, holds the same weights): element j of a tensor of n
 * elements is 0.2 sin(1.3 j + 0.7 n) / sqrt(fan), fan = n / (first extent); GroupNorm gammas
 * are 1 + that (names "...g1", "...g2"). */
static void fill_rule(opl_model *m) {
  for (int t = 0; t < m->params.n; t++) {
    opl_tensor *p = m->params.t[t];
    int64_t n = opl_nreal(p);
    double fan = p->rank > 1 ? (double)n / (double)p->shape[0] : 1.0;
    const char *name = m->params.t[t]->name;
    size_t L = strlen(name);
    int gamma = L > 3 && name[L - 3] == '.' && name[L - 2] == 'g';
    for (int64_t j = 0; j < n; j++)
      p->data[j] = (opl_real)((gamma ? 1.0 : 0.0) + 0.2 * sin(1.3 * (double)j + 0.7 * (double)n) / sqrt(fan));
  }
}

/* The input rule: x[i] = sin(0.37 i) + 0.01 i over the flat (N, C, X, Y) array. */
static void fill_input(opl_tensor *x) {
  for (int64_t i = 0; i < opl_nreal(x); i++) x->data[i] = (opl_real)(sin(0.37 * (double)i) + 0.01 * (double)i);
}

static void test_counts(void) {
  opl_err e = {0};
  opl_sinenet_config cfg;
  /* Counted in torch 1.13 by sum(p.numel()) of the authors' sinenet (sinenet_dual.py) with
   * n_input_scalar_components = n_input_vector_components = 1 (3 fields), time_history 4,
   * time_future 1, hidden 64 and each registry multiplier. */
  static const struct { const char *name; int64_t count; } want[] = {
      {"ins-k1", 33788099}, {"ins-k2", 35499989}, {"ins-k4", 35493699}, {"ins-k6", 35475499}, {"ins-k8", 35490219},
      {"ns-k1", 2115729},   {"ns-k4", 2126877},
  };
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    ok(opl_sinenet_preset(want[i].name, &cfg, &e) == OPL_OK, "preset %s", want[i].name);
    ok(opl_sinenet_param_count(&cfg) == want[i].count, "%s formula: %lld (got %lld)", want[i].name,
       (long long)want[i].count, (long long)opl_sinenet_param_count(&cfg));
  }
  opl_sinenet_preset("ins-k8", &cfg, &e);
  int64_t w[5];
  opl_sinenet_widths(&cfg, w);
  /* The authors' print: "Channels: 64->91->129->185->263" for m = 1.425. */
  ok(w[0] == 64 && w[1] == 91 && w[2] == 129 && w[3] == 185 && w[4] == 263, "ins-k8 widths 64-91-129-185-263 (got "
     "%lld-%lld-%lld-%lld-%lld)", (long long)w[0], (long long)w[1], (long long)w[2], (long long)w[3], (long long)w[4]);
  opl_model m;
  ok(opl_model_create(&m, &opl_sinenet_kind, &cfg, NULL, &e) == OPL_OK, "create ins-k8: %s", e.msg);
  opl_model_row rows[64];
  int64_t total = 0, sum = 0;
  int nr = opl_model_summary(&m, rows, 64, &total);
  for (int i = 0; i < nr && i < 64; i++) sum += rows[i].params;
  ok(nr == 18 && opl_model_param_count(&m) == 35490219 && total == 35490219 && sum == 35490219,
     "ins-k8 parameter set %lld, summary %lld, %d rows adding to %lld", (long long)opl_model_param_count(&m),
     (long long)total, nr, (long long)sum);
  int64_t bad[4] = {2, 12, 40, 64}, badc[4] = {2, 11, 64, 64}, good[4] = {2, 12, 64, 32};
  int st = m.ops->check_input(m.self, 4, bad, NULL, &e);
  ok(st == OPL_ERR_SHAPE && strstr(e.msg, "multiple of 16"), "40 points refused: %s", e.msg);
  st = m.ops->check_input(m.self, 4, badc, NULL, &e);
  ok(st == OPL_ERR_SHAPE && strstr(e.msg, "(N, 12, X, Y)"), "11 channels refused: %s", e.msg);
  ok(m.ops->check_input(m.self, 4, good, NULL, &e) == OPL_OK, "64 x 32 accepted");
  opl_model_free(&m);

  ok(opl_sinenet_preset("ins-k3", &cfg, &e) == OPL_ERR_ARG && strstr(e.msg, "ins-k8"), "unknown preset: %s", e.msg);
  opl_sinenet_preset("ns-k1", &cfg, &e);
  opl_sinenet_config b = cfg;
  b.waves = 0;
  ok(opl_sinenet_check_config(&b, &e) == OPL_ERR_ARG && strstr(e.msg, "waves"), "0 waves refused: %s", e.msg);
  b = cfg, b.mult = 0.5;
  ok(opl_sinenet_check_config(&b, &e) == OPL_ERR_ARG && strstr(e.msg, "multiplier"), "multiplier 0.5 refused: %s",
     e.msg);
  b = cfg, b.hidden = 0;
  ok(opl_sinenet_check_config(&b, &e) == OPL_ERR_ARG && strstr(e.msg, "hidden"), "hidden 0 refused: %s", e.msg);
  b = cfg, b.pad = OPL_PAD_REPLICATE;
  ok(opl_sinenet_check_config(&b, &e) == OPL_ERR_ARG && strstr(e.msg, "padding"), "replicate padding refused: %s",
     e.msg);
}

/* A tiny model: hidden 3, multiplier 1.5 (widths 3-4-6-10-15), K waves, 2 channels in, 2 out. */
static opl_sinenet_config tiny(int waves, opl_pad_mode pad) {
  opl_sinenet_config c = {.waves = waves, .hidden = 3, .mult = 1.5, .in_channels = 2, .out_channels = 2, .pad = pad};
  return c;
}

/* Outputs of the authors' model in torch 1.13 (float64) with the weights of fill_rule and the
 * input of fill_input, N = 1, 32 x 32, K = 2 (printed by experiments/sinenet/torch_tiny.py;
 * torch's circular padding cannot wrap a 1 x 1 coarsest grid, so 32 x 32, not 16 x 16):
 * out[0, 0, 0, 0..3], out[0, 1, 7, 4..7], and the sum of all outputs. */
static const double torch_zero[9] = {-0.0091785299770985596, 0.021279593543983538, 0.0063430702688788976,
                                     0.0028722019534208609, 0.086207059541943576,  0.085229817613194495,
                                     0.084329908504736192,  0.083734723032577965,  353.36980492833351};
static const double torch_circ[9] = {0.22806969933622673,  0.23027545135867564,  0.23268235698858178,
                                     0.23585629148859655,  0.083793706563459136, 0.083287074365550148,
                                     0.082545561775958468, 0.081705842144305221, 361.57446152414053};

static void test_torch_forward(void) {
#ifdef OPL_DOUBLE
  const double tol = 1e-10;
#else
  const double tol = 1e-5;
#endif
  for (int pc = 0; pc < 2; pc++) {
    opl_err e = {0};
    opl_sinenet_config cfg = tiny(2, pc ? OPL_PAD_CIRCULAR : OPL_PAD_ZERO);
    opl_model m;
    ok(opl_model_create(&m, &opl_sinenet_kind, &cfg, NULL, &e) == OPL_OK, "tiny model: %s", e.msg);
    fill_rule(&m);
    opl_ctx *c = opl_ctx_new(0);
    opl_tensor *x = opl_new(c, OPL_DIMS(1, 2, 32, 32));
    fill_input(x);
    opl_tensor *y = opl_model_forward(c, &m, x);
    const double *want = pc ? torch_circ : torch_zero;
    int good = y && y->shape[1] == 2 && y->shape[2] == 32 && y->shape[3] == 32;
    double got[9] = {0}, worst = 0;
    if (good) {
      for (int j = 0; j < 4; j++) got[j] = y->data[j];
      for (int j = 0; j < 4; j++) got[4 + j] = y->data[1024 + 7 * 32 + 4 + j];
      for (int64_t i = 0; i < y->numel; i++) got[8] += y->data[i];
      for (int j = 0; j < 9; j++) {
        double d = fabs(got[j] - want[j]) / (1 + fabs(want[j]));
        if (d > worst) worst = d;
      }
    }
    ok(good && worst < tol, "K = 2, %s padding: outputs = the authors' torch model (worst %.3g, tol %.0e)",
       pc ? "circular" : "zero", worst, tol);
    opl_ctx_free(&c);
    opl_model_free(&m);
  }
}

/* Finite differences of L = sum(r * model(x)) in parameters and input against backward. */
static void test_gradcheck(void) {
#ifndef OPL_DOUBLE
  skip("the whole-model gradient check runs in the double build", "sinenet gradient check");
#else
  for (int pc = 0; pc < 2; pc++) {
    opl_err e = {0};
    opl_sinenet_config cfg = tiny(2, pc ? OPL_PAD_CIRCULAR : OPL_PAD_ZERO);
    opl_model m;
    opl_rng rng;
    opl_rng_seed(&rng, 3);
    opl_model_create(&m, &opl_sinenet_kind, &cfg, &rng, &e);
    /* non-trivial norms: gamma away from 1, beta away from 0 */
    for (int t = 0; t < m.params.n; t++) {
      const char *nm = m.params.t[t]->name;
      if (strstr(nm, ".g1") || strstr(nm, ".g2") || strstr(nm, ".be"))
        for (int64_t j = 0; j < opl_nreal(m.params.t[t]); j++) m.params.t[t]->data[j] += 0.3 * sin(1.7 * j + t);
    }
    opl_ctx *c = opl_ctx_new(0);
    opl_tensor *x = opl_tensor_alloc(OPL_DIMS(2, 2, 16, 16), OPL_T_REQGRAD, &e);
    fill_input(x);
    double *r = malloc(2 * 2 * 256 * sizeof *r);
    for (int i = 0; i < 2 * 2 * 256; i++) r[i] = cos(0.91 * i);
#define LOSS(out)                                                     \
  do {                                                                \
    opl_ctx_reset(c);                                                 \
    opl_tensor *yy = opl_model_forward(c, &m, x);                     \
    out = 0;                                                          \
    for (int64_t i = 0; yy && i < yy->numel; i++) out += r[i] * yy->data[i]; \
  } while (0)
    opl_ctx_reset(c);
    opl_params_zero_grad(&m.params);
    memset(x->grad, 0, sizeof(opl_real) * (size_t)x->numel);
    opl_tensor *y = opl_model_forward(c, &m, x);
    opl_tensor *rt = opl_new(c, 4, y->shape);
    for (int64_t i = 0; i < y->numel; i++) rt->data[i] = r[i];
    opl_backward(c, opl_sum(c, opl_mul(c, y, rt)));
    /* Central differences with h = 1e-5: the truncation error h^2 f'''/6 stays below ~1e-7 of
     * the largest gradients (the lifting weights, ~30) and the rounding of L (~1e-13) adds
     * ~1e-8 absolute; each probe's error is measured against |fd| + |an| floored at 1e-3 of the
     * largest gradient probed, so gradients near zero are judged on that absolute scale. */
    enum { MAXP = 600 };
    double fds[MAXP], ans[MAXP], gmax = 0, worst = 0;
    const char *names[MAXP];
    int probes = 0;
    const double h = 1e-5;
    for (int t = -1; t < m.params.n; t++) {
      opl_tensor *p = t < 0 ? x : m.params.t[t];
      int64_t n = opl_nreal(p);
      for (int k = 0; k < 3 && probes < MAXP; k++) {
        int64_t j = (k * 7919 + t * 31) % n;
        if (j < 0) j += n;
        double save = p->data[j], lp, lm;
        p->data[j] = save + h;
        LOSS(lp);
        p->data[j] = save - h;
        LOSS(lm);
        p->data[j] = save;
        fds[probes] = (lp - lm) / (2 * h);
        ans[probes] = p->grad[j];
        names[probes] = t < 0 ? "x" : p->name;
        if (fabs(ans[probes]) > gmax) gmax = fabs(ans[probes]);
        probes++;
      }
    }
    for (int i = 0; i < probes; i++) {
      double den = fabs(fds[i]) + fabs(ans[i]);
      double err = fabs(fds[i] - ans[i]) / (den > 1e-3 * gmax ? den : 1e-3 * gmax);
      if (getenv("SINENET_GC_VERBOSE") && err > 1e-6)
        diag("probe %s: fd %.10g, backward %.10g", names[i], fds[i], ans[i]);
      if (err > worst) worst = err;
    }
#undef LOSS
    ok(worst < 1e-5, "K = 2, %s padding, 16 x 16: %d probes over the input and all %d parameter tensors, worst "
       "relative error %.3g", pc ? "circular" : "zero", probes, m.params.n, worst);
    free(r);
    opl_tensor_free(&x);
    opl_ctx_free(&c);
    opl_model_free(&m);
  }
#endif
}

static void test_train_and_save(void) {
  opl_err e = {0};
  opl_sinenet_config cfg = tiny(1, OPL_PAD_CIRCULAR);
  opl_model m;
  opl_rng rng;
  opl_rng_seed(&rng, 7);
  ok(opl_model_create(&m, &opl_sinenet_kind, &cfg, &rng, &e) == OPL_OK, "tiny K = 1: %s", e.msg);
  ok(opl_model_param_count(&m) == opl_sinenet_param_count(&cfg), "count = formula (%lld)",
     (long long)opl_sinenet_param_count(&cfg));
  opl_ctx *c = opl_ctx_new(0);
  opl_tensor *x = opl_tensor_alloc(OPL_DIMS(3, 2, 16, 32), 0, &e), *y = opl_tensor_alloc(OPL_DIMS(3, 2, 16, 32), 0, &e);
  fill_input(x);
  for (int64_t i = 0; i < y->numel; i++) y->data[i] = (opl_real)((i * 13 % 29) / 14.0 - 1);
  double first, last;
  ok(test_adam_fit(c, &m, x, y, 15, 1e-2, &first, &last), "forward (3, 2, 16, 32) -> (3, 2, 16, 32)");
  ok(last < 0.8 * first, "15 Adam steps lower the loss: %.4g -> %.4g", first, last);
  char dir[256], path[300];
  test_tmpdir_make(dir, "sinenet");
  snprintf(path, sizeof path, "%s/sinenet.h5", dir);
  ok(opl_model_save(path, &m, NULL, 0, &e) == OPL_OK, "save: %s", e.msg);
  opl_model m2;
  ok(opl_model_load(path, &m2, &e) == OPL_OK, "load: %s", e.msg);
  const opl_sinenet *s2 = m2.self;
  ok(m2.ops == &opl_sinenet_ops && test_same_params(&m, &m2) && s2->cfg.mult == 1.5 && s2->cfg.pad == OPL_PAD_CIRCULAR && s2->cfg.waves == 1,
     "loaded configuration and parameters equal, bit for bit");
  /* the same forward after loading */
  opl_ctx_reset(c);
  opl_tensor *p1 = opl_model_forward(c, &m, x), *p2 = opl_model_forward(c, &m2, x);
  ok(p1 && p2 && !memcmp(p1->data, p2->data, sizeof(opl_real) * (size_t)p1->numel), "loaded model: same outputs");
  opl_model_free(&m2);
  opl_tensor_free(&x);
  opl_tensor_free(&y);
  opl_ctx_free(&c);
  opl_model_free(&m);
  test_tmpdir_remove(dir);
}

int main(void) {
  tap_begin();
  test_counts();
  test_torch_forward();
  test_gradcheck();
  test_train_and_save();
  return tap_end();
}
