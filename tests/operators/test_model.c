/* The model interface (operators/model.h): the registry, the FNO and the MLP through their ops
 * (the same parameters and the same forward values as their own functions), the layer summary
 * (rows add up to the parameter count; the reference configurations' counts), input checks,
 * and checkpoints (save / load of any kind, a file without the "model" attribute read as an
 * FNO, an unknown kind refused); the samplewise kinds' forwards over a batch cut into a team's
 * slices against the whole batch. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/io.h"
#include "operators/fno.h"
#include "operators/mgno.h"
#include "operators/mlp.h"
#include "core/par.h"
#include "operators/model.h"
#include "operators/node_model.h"
#include "operators/sinenet.h"
#include "tests/tap.h"
#include "tests/tmpdir.h"

static char dir[64];

static int same_params(const opl_params *a, const opl_params *b) {
  if (a->n != b->n) return 0;
  for (int i = 0; i < a->n; i++)
    if (strcmp(a->t[i]->name, b->t[i]->name) || opl_nreal(a->t[i]) != opl_nreal(b->t[i]) ||
        memcmp(a->t[i]->data, b->t[i]->data, sizeof(opl_real) * (size_t)opl_nreal(a->t[i])))
      return 0;
  return 1;
}

static void fill(opl_tensor *x, uint64_t seed) {
  opl_rng r;
  opl_rng_seed(&r, seed);
  for (int64_t i = 0; i < x->numel; i++) x->data[i] = (opl_real)(2 * opl_rng_uniform(&r) - 1);
}

static void test_registry(void) {
  ok(opl_model_kind_find("fno") == &opl_fno_kind && opl_model_kind_find("mlp") == &opl_mlp_kind &&
         !opl_model_kind_find("unet") && !opl_model_kind_find(NULL),
     "registry: fno and mlp found by name, unknown names not");
  char b[64];
  ok(strstr(opl_model_kind_names(b, sizeof b), "fno") && strstr(b, "mlp"), "kind names listed: %s", b);
}

/* The reference configurations: the summary's rows add up to the model's count, which is
 * opl_fno_param_count; the reference scripts' own counts. */
static void test_fno_counts(void) {
  static const struct { opl_fno_ref ref; const char *name; int64_t ours, reference; } cases[] = {
      {OPL_FNO_REF_1D, "FNO-1d modes 16 width 64", 549569, 549569},
      {OPL_FNO_REF_2D, "FNO-2d (Darcy) modes 12 width 32 pad 9", 2368001, 2368001},
      {OPL_FNO_REF_2D_TIME, "FNO-2d time modes 12 width 20, 10 frames", 926357, 926517},
      {OPL_FNO_REF_3D, "FNO-3d modes 8 width 20, 10 frames", 6558377, 6558537},
  };
  for (int i = 0; i < 4; i++) {
    opl_fno_config cfg = opl_fno_config_reference(cases[i].ref);
    opl_model m;
    opl_err e = {0};
    int st = opl_model_create(&m, &opl_fno_kind, &cfg, NULL, &e);
    opl_model_row rows[32];
    int64_t total = -1, sum = 0;
    int n = st ? 0 : opl_model_summary(&m, rows, 32, &total);
    for (int r = 0; r < n && r < 32; r++) sum += rows[r].params;
    ok(!st && total == cases[i].ours && sum == total && opl_fno_param_count(&cfg) == total &&
           opl_fno_reference_param_count(&cfg, cases[i].ref) == cases[i].reference,
       "%s: %lld parameters (rows add up to %lld), reference count_params %lld", cases[i].name, (long long)total,
       (long long)sum, (long long)opl_fno_reference_param_count(&cfg, cases[i].ref));
    if (i == 1)
      ok(n == 1 + 1 + 4 + 1 + 2 && !strcmp(rows[1].name, "pad") && !strcmp(rows[1].shape, "(N, 32, X+9, Y+9)") &&
             !strcmp(rows[n - 1].shape, "(N, 1, X, Y)"),
         "padded FNO-2d: rows fc0, pad, 4 layers, crop, fc1, fc2 with symbolic shapes (%s, %s)", rows[1].shape,
         rows[n - 1].shape);
    opl_model_free(&m);
  }
}

/* The FNO through the interface: the parameters of opl_fno_init, the forward of
 * opl_fno_forward, the input check, the description. */
static void test_fno_ops(void) {
  opl_fno_config cfg = opl_fno_config_default(1);
  cfg.width = 6, cfg.layers = 2, cfg.proj_channels = 8, cfg.modes[0] = 4;
  opl_rng r1, r2;
  opl_rng_seed(&r1, 3);
  opl_rng_seed(&r2, 3);
  opl_err e = {0};
  opl_model m;
  opl_fno f;
  opl_params p;
  opl_params_init(&p);
  int st = opl_model_create(&m, &opl_fno_kind, &cfg, &r1, &e);
  OPL_ASSERT(!opl_fno_init(&f, &p, &cfg, &r2, &e));
  ok(!st && same_params(&m.params, &p) && m.sdim == 1 && m.in_channels == 1 && m.out_channels == 1 &&
         opl_model_fno(&m) && !strcmp(m.ops->name, "fno"),
     "fno model: the parameters of opl_fno_init, bit for bit; sdim 1, 1 -> 1 channels");
  opl_ctx *c = opl_ctx_new(0);
  opl_tensor *x = opl_new(c, OPL_DIMS(3, 1, 16));
  fill(x, 9);
  opl_tensor *y1 = opl_model_forward(c, &m, x), *y2 = opl_fno_forward(c, &f, x);
  ok(y1 && y2 && y1->numel == y2->numel && !memcmp(y1->data, y2->data, sizeof(opl_real) * (size_t)y1->numel),
     "opl_model_forward = opl_fno_forward, exactly");
  /* The rollout over the interface is the FNO's rollout. */
  opl_tensor *r = opl_model_rollout(c, &m, x, 3), *rf = opl_fno_rollout(c, &f, x, 3);
  ok(r && rf && r->shape[1] == 3 && !memcmp(r->data, rf->data, sizeof(opl_real) * (size_t)r->numel),
     "opl_model_rollout = opl_fno_rollout (3 steps)");
  ok(!opl_model_rollout(c, &m, x, 0) && opl_ctx_status(c) == OPL_ERR_ARG && strstr(opl_ctx_errmsg(c), "steps = 0"),
     "rollout of 0 steps refused: %s", opl_ctx_errmsg(c));
  opl_ctx_free(&c);
  const char *axis[1] = {"axis X of 'd.h5': 6 points (12 / sub 2)"};
  st = m.ops->check_input(m.self, 3, (const int64_t[]){2, 1, 6}, axis, &e);
  ok(st == OPL_ERR_SHAPE && strstr(e.msg, "modes 4") && strstr(e.msg, "6 points (12 / sub 2)") &&
         strstr(e.msg, "at most 3"),
     "check_input: modes beyond half the resolution, naming the axis: %s", e.msg);
  st = m.ops->check_input(m.self, 4, (const int64_t[]){2, 1, 8, 8}, NULL, &e);
  ok(st == OPL_ERR_SHAPE && strstr(e.msg, "(2, 1, 8, 8)"), "check_input: wrong rank: %s", e.msg);
  ok(m.ops->check_input(m.self, 3, (const int64_t[]){2, 1, 8}, NULL, &e) == OPL_OK, "check_input: a fitting input");
  char d[256];
  m.ops->describe(m.self, d, sizeof d);
  ok(!strcmp(d, "FNO-1d (modes 4, width 6, 2 layers, projection 8)"), "describe: %s", d);
  /* set_io: the task's shape, unused axes canonical. */
  opl_fno_config io = opl_fno_config_default(3);
  ok(!opl_fno_kind.set_io(&io, 2, 10, 1, &e) && io.d == 2 && io.in_channels == 10 && io.modes[2] == 0 &&
         io.pad[2] == 0,
     "set_io: d 2, 10 input channels, the third axis cleared");
  ok(opl_fno_kind.set_io(&io, 4, 1, 1, &e) == OPL_ERR_ARG, "set_io: 4 spatial axes refused: %s", e.msg);
  opl_params_free(&p);
  opl_model_free(&m);
  ok(m.ops == NULL && m.self == NULL && m.params.n == 0, "opl_model_free empties the model");
  opl_model_free(&m); /* twice: a zeroed model */
  cfg.width = 0;
  st = opl_model_create(&m, &opl_fno_kind, &cfg, NULL, &e);
  ok(st == OPL_ERR_ARG && strstr(e.msg, "width") && m.ops == NULL && m.params.n == 0,
     "a bad configuration: OPL_ERR_ARG naming the field, nothing left: %s", e.msg);
}

/* The MLP through the interface. */
static void test_mlp_ops(void) {
  opl_mlp_config cfg = {.nlayers = 3, .widths = {2, 16, 16, 1}, .act = OPL_TANH};
  opl_rng r1, r2;
  opl_rng_seed(&r1, 5);
  opl_rng_seed(&r2, 5);
  opl_err e = {0};
  opl_model m;
  opl_mlp f;
  opl_params p;
  opl_params_init(&p);
  int st = opl_model_create(&m, &opl_mlp_kind, &cfg, &r1, &e);
  OPL_ASSERT(!opl_mlp_init(&f, &p, "mlp", 3, cfg.widths, OPL_TANH, &r2, &e));
  ok(!st && same_params(&m.params, &p) && m.sdim == 0 && m.in_channels == 2 && m.out_channels == 1,
     "mlp model: the parameters of opl_mlp_init, bit for bit; 2 -> 1 features on the last axis");
  opl_ctx *c = opl_ctx_new(0);
  opl_tensor *x = opl_new(c, OPL_DIMS(5, 2));
  fill(x, 4);
  opl_tensor *y1 = opl_model_forward(c, &m, x), *y2 = opl_mlp_forward(c, &f, x);
  ok(y1 && y2 && y1->numel == 5 && !memcmp(y1->data, y2->data, sizeof(opl_real) * 5),
     "opl_model_forward = opl_mlp_forward, exactly");
  opl_tensor *bad = opl_new(c, OPL_DIMS(5, 3));
  ok(!opl_model_forward(c, &m, bad) && opl_ctx_status(c) == OPL_ERR_SHAPE && strstr(opl_ctx_errmsg(c), "(5, 3)"),
     "mlp forward of 3 features: shape error naming it: %s", opl_ctx_errmsg(c));
  opl_ctx_free(&c);
  opl_model_row rows[8];
  int64_t total = 0, sum = 0;
  int n = opl_model_summary(&m, rows, 8, &total);
  for (int i = 0; i < n; i++) sum += rows[i].params;
  ok(n == 3 && total == 2 * 16 + 16 + 16 * 16 + 16 + 16 + 1 && sum == total && !strcmp(rows[2].shape, "(..., 1)"),
     "mlp summary: 3 rows adding up to %lld parameters", (long long)total);
  ok(opl_mlp_kind.set_io(&cfg, 1, 1, 1, &e) == OPL_ERR_UNSUPPORTED && strstr(e.msg, "last axis"),
     "mlp set_io: channels-first fields refused: %s", e.msg);
  ok(!opl_mlp_kind.set_io(&cfg, 0, 3, 2, &e) && cfg.widths[0] == 3 && cfg.widths[3] == 2,
     "mlp set_io: features in and out set");
  /* Save and load through the interface. */
  char path[128];
  snprintf(path, sizeof path, "%s/mlp.h5", dir);
  opl_kv extra[1] = {OPL_KVS("note", "pinn")};
  st = opl_model_save(path, &m, extra, 1, &e);
  opl_model l;
  int st2 = st ? st : opl_model_load(path, &l, &e);
  char d1[128], d2[128] = "";
  m.ops->describe(m.self, d1, sizeof d1);
  if (!st2) l.ops->describe(l.self, d2, sizeof d2);
  ok(!st && !st2 && l.ops == &opl_mlp_ops && same_params(&l.params, &m.params) && !strcmp(d1, d2),
     "mlp saved and loaded through the interface: %s", st || st2 ? e.msg : d2);
  if (!st2) opl_model_free(&l);
  opl_kv reserved[1] = {OPL_KVI("mlp.layers", 2)};
  ok(opl_model_save(path, &m, reserved, 1, &e) == OPL_ERR_ARG && strstr(e.msg, "mlp.layers"),
     "an extra attribute with a model key is refused: %s", e.msg);
  opl_params_free(&p);
  opl_model_free(&m);
}

/* Checkpoints: any kind by its "model" attribute; none means FNO; an unknown kind is refused. */
/* set_io of a 2-D kind (opl_model_set_io_2d) on its zeroed configuration cfg, whose channel
 * counts are *in and *out: set on 2 axes; another rank refused naming the kind, cfg unchanged. */
static void set_io_2d_case(const opl_model_kind *k, void *cfg, const int64_t *in, const int64_t *out) {
  opl_err e;
  ok(!k->set_io(cfg, 2, 3, 2, &e) && *in == 3 && *out == 2, "%s set_io: 2 axes, 3 -> 2 channels", k->name);
  char want[96];
  snprintf(want, sizeof want, "%s: a 2-D operator; the task has 1 spatial axes", k->name);
  ok(k->set_io(cfg, 1, 5, 5, &e) == OPL_ERR_UNSUPPORTED && !strcmp(e.msg, want) && *in == 3 && *out == 2,
     "%s set_io: 1 axis refused: %s", k->name, e.msg);
}

static void test_set_io_2d(void) {
  opl_mgno_config mg;
  memset(&mg, 0, sizeof mg);
  set_io_2d_case(&opl_mgno_kind, &mg, &mg.in_channels, &mg.out_channels);
  opl_sinenet_config sn;
  memset(&sn, 0, sizeof sn);
  set_io_2d_case(&opl_sinenet_kind, &sn, &sn.in_channels, &sn.out_channels);
}

static void test_files(void) {
  opl_fno_config cfg = opl_fno_config_default(2);
  cfg.width = 4, cfg.layers = 1, cfg.proj_channels = 4, cfg.modes[0] = cfg.modes[1] = 2;
  opl_rng rng;
  opl_rng_seed(&rng, 8);
  opl_err e = {0};
  opl_model m;
  OPL_ASSERT(!opl_model_create(&m, &opl_fno_kind, &cfg, &rng, &e));
  char path[128];
  snprintf(path, sizeof path, "%s/fno.h5", dir);
  int st = opl_model_save(path, &m, NULL, 0, &e);
  opl_model l;
  int st2 = st ? st : opl_model_load(path, &l, &e);
  ok(!st && !st2 && opl_model_fno(&l) && same_params(&l.params, &m.params) && l.sdim == 2,
     "fno saved and loaded through the interface: %s", st || st2 ? e.msg : "");
  if (!st2) opl_model_free(&l);
  /* opl_fno_load reads the interface's file: the same format. */
  opl_fno f;
  opl_params p;
  opl_params_init(&p);
  st = opl_fno_load(path, &f, &p, &e);
  ok(!st && same_params(&p, &m.params), "opl_fno_load reads a file of opl_model_save: %s", st ? e.msg : "");
  opl_params_free(&p);
  /* The FNO attributes without "model": an FNO. */
  opl_kv meta[OPL_MODEL_META_MAX];
  int nm = m.ops->to_meta(m.self, meta);
  ok(nm >= 1 && !strcmp(meta[0].key, "model") && !strcmp(meta[0].s, "fno"), "to_meta writes 'model' first");
  OPL_ASSERT(opl_checkpoint_save(path, &m.params, NULL, meta + 1, nm - 1, NULL) == OPL_OK);
  st = opl_model_load(path, &l, &e);
  ok(!st && opl_model_fno(&l) && same_params(&l.params, &m.params),
     "a checkpoint without the 'model' attribute loads as an FNO: %s", st ? e.msg : "");
  if (!st) opl_model_free(&l);
  meta[0] = (opl_kv)OPL_KVS("model", "unet");
  OPL_ASSERT(opl_checkpoint_save(path, &m.params, NULL, meta, nm, NULL) == OPL_OK);
  st = opl_model_load(path, &l, &e);
  ok(st == OPL_ERR_UNSUPPORTED && strstr(e.msg, "unet") && strstr(e.msg, "fno") && l.ops == NULL,
     "an unknown model kind is refused, naming it and the known ones: %s", e.msg);
  meta[0] = (opl_kv)OPL_KVS("model", "mlp");
  OPL_ASSERT(opl_checkpoint_save(path, &m.params, NULL, meta, nm, NULL) == OPL_OK);
  st = opl_model_load(path, &l, &e);
  ok(st == OPL_ERR_NOTFOUND && strstr(e.msg, "mlp.version"),
     "an FNO file claiming to be an MLP: the MLP's missing attribute named: %s", e.msg);
  remove(path);
  st = opl_model_load(path, &l, &e);
  ok(st == OPL_ERR_NOTFOUND, "missing file: %s", e.msg);
  opl_model_free(&m);
}

/* y[b0 .. b1) = forward(x[b0 .. b1)) of a model in the slice's context, tape off. */
typedef struct fwd_job {
  const opl_model *m;
  const opl_tensor *x;
  opl_real *y;
  int64_t xs, ys; /* elements per sample */
} fwd_job;

static int f_forward(void *arg, opl_ctx *c, int64_t b0, int64_t b1, opl_err *err) {
  const fwd_job *j = arg;
  int64_t shape[OPL_MAX_RANK];
  memcpy(shape, j->x->shape, sizeof(int64_t) * (size_t)j->x->rank);
  shape[0] = b1 - b0;
  opl_ctx_reset(c);
  opl_ctx_set_grad_enabled(c, 0);
  opl_tensor *x = opl_new(c, j->x->rank, shape);
  if (x) memcpy(x->data, j->x->data + b0 * j->xs, sizeof(opl_real) * (size_t)x->numel);
  opl_tensor *y = x ? opl_model_forward(c, j->m, x) : NULL;
  if (!y) return opl_err_set(err, opl_ctx_status(c), "%s", opl_ctx_errmsg(c));
  OPL_ASSERT(y->numel == (b1 - b0) * j->ys, "forward: %lld values for %lld samples", (long long)y->numel,
             (long long)(b1 - b0));
  memcpy(j->y + b0 * j->ys, y->data, sizeof(opl_real) * (size_t)y->numel);
  return OPL_OK;
}

/* Every kind marked samplewise gives, over teams of 2 and 3 (a batch of 5 in slices), the whole
 * batch's values up to the rounding of other GEMM shapes; the neural ODE (step control shared by
 * the batch) is not marked. FFT plans of the slices' sizes are made by two threads at once. */
static void test_samplewise(void) {
  opl_err e = {0};
  opl_rng rng;
  opl_rng_seed(&rng, 21);
  opl_fno_config fc = opl_fno_config_default(2);
  fc.width = 6, fc.layers = 2, fc.proj_channels = 8, fc.modes[0] = fc.modes[1] = 3;
  opl_mgno_config gc = {.layers = 1, .levels = 2, .iters = {{1, 0}, {1, 0}}, .channels_u = 4, .in_channels = 1,
                        .out_channels = 1, .pad = OPL_PAD_ZERO, .variant = OPL_MGNO_DC};
  opl_sinenet_config sc = {.waves = 2, .hidden = 3, .mult = 1.5, .in_channels = 2, .out_channels = 1,
                           .pad = OPL_PAD_CIRCULAR};
  opl_mlp_config mc = {.nlayers = 2, .widths = {3, 16, 2}, .act = OPL_GELU};
  const struct {
    const opl_model_kind *k;
    const void *cfg;
    int rank;
    int64_t shape[4];
  } cases[] = {{&opl_fno_kind, &fc, 4, {5, 1, 16, 12}},
               {&opl_mgno_kind, &gc, 4, {5, 1, 16, 16}},
               {&opl_sinenet_kind, &sc, 4, {5, 2, 32, 32}},
               {&opl_mlp_kind, &mc, 2, {5, 3}}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    opl_model m;
    int st = opl_model_create(&m, cases[i].k, cases[i].cfg, &rng, &e);
    if (st) {
      ok(0, "%s: %s", cases[i].k->name, e.msg);
      continue;
    }
    opl_tensor *x = opl_tensor_alloc(cases[i].rank, cases[i].shape, 0, &e);
    for (int64_t q = 0; q < x->numel; q++) x->data[q] = (opl_real)opl_rng_normal(&rng);
    const int64_t N = x->shape[0], xs = x->numel / N;
    opl_ctx *c = opl_ctx_new(0);
    opl_ctx_set_grad_enabled(c, 0);
    opl_tensor *yw = opl_model_forward(c, &m, x);
    const int64_t ys = yw ? yw->numel / N : 0;
    opl_real *y = malloc(sizeof(opl_real) * (size_t)(N * ys > 0 ? N * ys : 1));
    double md = 0, mx = 0;
    st = yw ? OPL_OK : OPL_ERR_STATE;
    for (int size = 2; size <= 3 && !st; size++) {
      opl_team *t = opl_team_new(size);
      fwd_job j = {&m, x, y, xs, ys};
      st = opl_team_run(t, N, f_forward, &j, &e);
      for (int64_t q = 0; !st && q < N * ys; q++)
        md = fmax(md, fabs((double)y[q] - yw->data[q])), mx = fmax(mx, fabs((double)yw->data[q]));
      opl_team_free(&t);
    }
    ok(m.ops->samplewise == 1 && !st && mx > 0 && md <= 1e-5 * mx,
       "%s is samplewise: a batch of 5 over teams of 2 and 3, the whole batch's values (max diff %.2g of %.2g)",
       cases[i].k->name, md, mx);
    free(y);
    opl_ctx_free(&c);
    opl_tensor_free(&x);
    opl_model_free(&m);
  }
  ok(opl_node_ops.samplewise == 0, "the neural ODE is not samplewise (its step control is shared by the batch)");
}

int main(void) {
  tap_begin();
  if (!test_tmpdir_make(dir, "model")) return tap_end();
  test_registry();
  test_fno_counts();
  test_fno_ops();
  test_mlp_ops();
  test_set_io_2d();
  test_files();
  test_samplewise();
  test_tmpdir_remove(dir);
  return tap_end();
}
