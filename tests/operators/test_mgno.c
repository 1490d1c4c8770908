/* MgNO (operators/mgno.h): the parameter count of the authors' Darcy-rough configuration,
 * shapes, the V-cycle's minimum extent, odd extents (the prolongation's crop), bad num_iteration
 * lists, a training step that reduces the loss, the temporaries released in the forward pass, and a
 * checkpoint round trip. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "tests/tap.h"
#include "tests/tmpdir.h"
#include "tests/operators/fit.h"
#include "operators/mgno.h"

int main(void) {
  tap_begin();
  opl_err e = {0};
  opl_mgno_config cfg;
  ok(opl_mgno_preset("darcy-rough", &cfg, &e) == OPL_OK, "preset darcy-rough");
  /* Per layer (Cu = 24, L = 6, 7 smoothing steps: 1 init S + 6 A,S pairs), f-channels cf:
   *   RT 5*16*576 = 46080; Pi, R 5*9*(576 + cf^2); S0 9*24 cf; pairs 6*2*9*24 cf; 1x1 24 cf + 24.
   *   cf = 1:  46080 + 25965 + 216 + 2592 + 48 = 74901
   *   cf = 24: 46080 + 51840 + 5184 + 62208 + 600 = 165912
   * 74901 + 3 * 165912 + 24 (projection) = 572661, as the authors' count_params(MgNO_DC). */
  ok(opl_mgno_param_count(&cfg) == 572661, "darcy-rough formula: 572661 (got %lld)",
     (long long)opl_mgno_param_count(&cfg));
  opl_model m;
  ok(opl_model_create(&m, &opl_mgno_kind, &cfg, NULL, &e) == OPL_OK, "create darcy-rough: %s", e.msg);
  int64_t total = 0;
  opl_model_row rows[32];
  int nr = opl_model_summary(&m, rows, 32, &total);
  int64_t sum = 0;
  for (int i = 0; i < nr && i < 32; i++) sum += rows[i].params;
  ok(opl_model_param_count(&m) == 572661 && total == 572661 && sum == 572661,
     "darcy-rough parameter set: %lld, summary %lld, rows %lld", (long long)opl_model_param_count(&m),
     (long long)total, (long long)sum);
  int64_t bad[4] = {2, 1, 64, 16}; /* 16 -> 8 -> 4 -> 2 -> 1 -> 1: the fifth halving starts from 1 point */
  int st = m.ops->check_input(m.self, 4, bad, NULL, &e);
  ok(st == OPL_ERR_SHAPE && strstr(e.msg, "at least 17") && strstr(e.msg, "axis 1"), "16 points refused: %s", e.msg);
  int64_t good[4] = {2, 1, 64, 32}, odd[4] = {2, 1, 85, 17}, other[4] = {2, 1, 48, 100};
  ok(m.ops->check_input(m.self, 4, good, NULL, &e) == OPL_OK, "64 x 32 accepted");
  ok(m.ops->check_input(m.self, 4, odd, NULL, &e) == OPL_OK, "85 x 17 accepted (odd extents)");
  ok(m.ops->check_input(m.self, 4, other, NULL, &e) == OPL_OK, "48 x 100 accepted (not multiples of 32)");
  opl_model_free(&m);

  ok(opl_mgno_preset("darcy", &cfg, &e) == OPL_ERR_ARG && strstr(e.msg, "darcy-rough"), "unknown preset: %s", e.msg);
  opl_mgno_config c2 = cfg;
  opl_mgno_preset("darcy-smooth", &c2, &e);
  ok(opl_mgno_parse_iters("1,0;2", &c2, &e) == OPL_ERR_ARG, "'1,0;2' refused: %s", e.msg);
  ok(opl_mgno_parse_iters("1,0;;2,0", &c2, &e) == OPL_ERR_ARG, "'1,0;;2,0' refused: %s", e.msg);
  ok(opl_mgno_parse_iters("1,0;2,0x", &c2, &e) == OPL_ERR_ARG, "'1,0;2,0x' refused: %s", e.msg);
  ok(opl_mgno_parse_iters("1,-1", &c2, &e) == OPL_ERR_ARG, "'1,-1' refused: %s", e.msg);
  ok(opl_mgno_parse_iters("0,0;1,0", &c2, &e) == OPL_OK && opl_mgno_check_config(&c2, &e) == OPL_ERR_ARG &&
         strstr(e.msg, "level 0"),
     "no first smoothing step refused: %s", e.msg);
  ok(opl_mgno_parse_iters("1,1;1,1", &c2, &e) == OPL_OK && opl_mgno_check_config(&c2, &e) == OPL_ERR_ARG &&
         strstr(e.msg, "coarsest"),
     "post-smoothing on the coarsest level refused: %s", e.msg);
  ok(opl_mgno_parse_iters("1,1;2,1;1,0", &c2, &e) == OPL_OK && c2.levels == 3 && c2.iters[1][0] == 2 &&
         c2.iters[1][1] == 1,
     "'1,1;2,1;1,0' parsed");

  /* Odd extents: a restriction maps 2m - 1 points to m, the prolongation's 2m rows are cropped to
   * the first 2m - 1, so coarse point j lies on fine point 2j. A two-level model wired as
   * injection (R picks f[2j]) and, through RT's taps 0..2, bilinear prolongation reproduces a
   * linear f exactly on every fine point of a 9 x 7 grid, the last row and column included:
   * out = proj gelu(u0 + W f + b) with u0 = RT^T (S (R f)), Sinit = A = W = b = 0, proj = 1. */
  {
    opl_mgno_config c1;
    memset(&c1, 0, sizeof c1);
    c1.layers = 1, c1.levels = 2, c1.iters[0][0] = 1, c1.iters[1][0] = 1;
    c1.channels_u = 1, c1.in_channels = 1, c1.out_channels = 1, c1.pad = OPL_PAD_ZERO;
    opl_model m1;
    e = (opl_err){0};
    ok(opl_model_create(&m1, &opl_mgno_kind, &c1, NULL, &e) == OPL_OK, "two-level model: %s", e.msg);
    for (int i = 0; i < m1.params.n; i++) memset(m1.params.t[i]->data, 0, sizeof(opl_real) * (size_t)opl_nreal(m1.params.t[i]));
    opl_tensor *R1 = opl_params_find(&m1.params, "mgno.0.R1"), *S0 = opl_params_find(&m1.params, "mgno.0.S0"),
               *RT = opl_params_find(&m1.params, "mgno.0.RT0"), *pj = opl_params_find(&m1.params, "mgno.proj");
    ok(R1 && S0 && RT && pj, "parameters R1, S0, RT0, proj found");
    if (R1 && S0 && RT && pj) {
      R1->data[4] = 1, S0->data[4] = 1, pj->data[0] = 1; /* 3x3 centres; 1x1 projection */
      const double hat[3] = {0.5, 1, 0.5};
      for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++) RT->data[a * 4 + b] = (opl_real)(hat[a] * hat[b]);
      opl_ctx *c1x = opl_ctx_new(0);
      opl_tensor *f = opl_tensor_alloc(OPL_DIMS(1, 1, 9, 7), 0, &e);
      for (int i = 0; i < 9; i++)
        for (int j = 0; j < 7; j++) f->data[i * 7 + j] = (opl_real)(0.5 + 0.1 * i - 0.05 * j);
      opl_tensor *out = opl_model_forward(c1x, &m1, f);
      double worst = out ? 0 : INFINITY;
      for (int i = 0; out && i < 9; i++)
        for (int j = 0; j < 7; j++) {
          double v = 0.5 + 0.1 * i - 0.05 * j, g = 0.5 * v * (1 + erf(v / sqrt(2.0)));
          worst = fmax(worst, fabs(out->data[i * 7 + j] - g));
        }
      ok(out && out->shape[2] == 9 && out->shape[3] == 7 && worst < 1e-5,
         "odd 9 x 7 grid: injection + bilinear prolongation reproduce gelu(f) on every point (max error %.2g)", worst);
      opl_tensor_free(&f);
      opl_ctx_free(&c1x);
    }
    opl_model_free(&m1);
  }

  /* a small model with post-smoothing, circular padding: shapes, a step lowers the loss, save/load */
  c2.layers = 2;
  c2.channels_u = 4;
  c2.in_channels = 2;
  c2.out_channels = 1;
  c2.pad = OPL_PAD_CIRCULAR;
  opl_rng rng;
  opl_rng_seed(&rng, 7);
  e = (opl_err){0};
  ok(opl_model_create(&m, &opl_mgno_kind, &c2, &rng, &e) == OPL_OK, "small model: %s", e.msg);
  ok(opl_model_param_count(&m) == opl_mgno_param_count(&c2), "small model count = formula (%lld)",
     (long long)opl_mgno_param_count(&c2));
  opl_ctx *c = opl_ctx_new(0);
  opl_tensor *x = opl_tensor_alloc(OPL_DIMS(3, 2, 16, 8), 0, &e), *y = opl_tensor_alloc(OPL_DIMS(3, 1, 16, 8), 0, &e);
  for (int64_t i = 0; i < 3 * 2 * 16 * 8; i++) x->data[i] = (opl_real)((i * 37 % 101) / 50.0 - 1);
  for (int64_t i = 0; i < 3 * 16 * 8; i++) y->data[i] = (opl_real)((i * 13 % 29) / 14.0 - 1);
  double first, last;
  ok(test_adam_fit(c, &m, x, y, 20, 1e-2, &first, &last), "forward (3, 2, 16, 8) -> (3, 1, 16, 8)");
  ok(last < 0.8 * first, "20 Adam steps lower the loss: %.4g -> %.4g", first, last);
  /* The temporaries the forward releases: the same loss and gradients as with opl_release off,
   * bit for bit, a smaller arena, and every activation either read by a backward or released
   * (the prediction aside). */
  {
    double loss_of[2] = {0, 0};
    size_t fwd[2] = {0, 0};
    opl_real *g[2] = {NULL, NULL};
    const int64_t np = opl_model_param_count(&m);
    int kinds = 0;
    size_t stray = 0, pred_bytes = 0, released = 0;
    for (int rel = 0; rel <= 1; rel++) {
      opl_ctx_set_release(c, rel);
      opl_ctx_reset(c);
      opl_params_zero_grad(&m.params);
      opl_tensor *p = opl_model_forward(c, &m, x), *loss = p ? opl_mse_loss(c, p, y) : NULL;
      opl_ctx_stats st;
      opl_ctx_get_stats(c, &st);
      fwd[rel] = st.arena_used;
      if (rel) {
        opl_tape_mem rows[16];
        kinds = opl_tape_memory(c, rows, 16);
        for (int k = 0; k < kinds && k < 16; k++) {
          stray += rows[k].out_bytes - rows[k].saved_bytes - rows[k].released_bytes;
          released += rows[k].released_bytes;
        }
        pred_bytes = p ? (size_t)p->numel * sizeof(opl_real) : 0;
      }
      if (!loss || opl_backward(c, loss)) break;
      loss_of[rel] = loss->data[0];
      g[rel] = malloc(sizeof(opl_real) * (size_t)np);
      for (int i = 0, off = 0; i < m.params.n; off += (int)opl_nreal(m.params.t[i]), i++)
        memcpy(g[rel] + off, m.params.t[i]->grad, sizeof(opl_real) * (size_t)opl_nreal(m.params.t[i]));
    }
    ok(g[0] && g[1] && loss_of[0] == loss_of[1] && !memcmp(g[0], g[1], sizeof(opl_real) * (size_t)np),
       "released temporaries: the same loss and parameter gradients, bit for bit");
    ok(fwd[1] < fwd[0] * 3 / 4, "released temporaries: forward arena %zu bytes, %zu without releases", fwd[1], fwd[0]);
    ok(kinds > 0 && released > 0 && stray <= pred_bytes + 64,
       "every activation is read by a backward or released: %zu bytes neither, the prediction %zu", stray, pred_bytes);
    free(g[0]);
    free(g[1]);
    opl_ctx_set_release(c, 1);
  }
  char dir[256], path[300];
  test_tmpdir_make(dir, "mgno");
  snprintf(path, sizeof path, "%s/mgno.h5", dir);
  ok(opl_model_save(path, &m, NULL, 0, &e) == OPL_OK, "save: %s", e.msg);
  opl_model m2;
  ok(opl_model_load(path, &m2, &e) == OPL_OK, "load: %s", e.msg);
  ok(m2.ops == &opl_mgno_ops && test_same_params(&m, &m2), "loaded parameters equal, bit for bit");
  opl_model_free(&m2);
  opl_tensor_free(&x);
  opl_tensor_free(&y);
  opl_ctx_free(&c);
  opl_model_free(&m);
  test_tmpdir_remove(dir);
  return tap_end();
}
