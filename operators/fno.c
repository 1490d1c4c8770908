/* opl operators — the Fourier Neural Operator (see fno.h).
 *
 * Li, Kovachki, Azizzadenesheli, Liu, Bhattacharya, Stuart, Anandkumar, "Fourier Neural
 * Operator for Parametric Partial Differential Equations", ICLR 2021: eq. (2) (the iterative
 * update v_{t+1} = sigma(W v_t + K v_t)), eq. (4)-(5) (the kernel integral operator as a
 * multiplication by R on the lowest Fourier modes) and Section 4 (lifting P, projection Q).
 * Every step below is one core op; this file owns no kernels. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "operators/fno.h"
#include "core/init.h"

/* Upper bounds that keep every size computation far from int64 overflow and every BLAS
 * dimension inside an int. */
#define FNO_MAX_CHANNELS (1 << 24)
#define FNO_MAX_MODES (1 << 20)
#define FNO_MAX_PAD (1 << 30)

/* ------------------------------------------------------------------ configuration */

opl_fno_config opl_fno_config_default(int d) {
  opl_fno_config c;
  memset(&c, 0, sizeof c);
  c.d = d;
  c.in_channels = 1;
  c.out_channels = 1;
  c.layers = 4;
  c.proj_channels = 128;
  int modes = 16;
  c.width = 64;
  if (d == 2) modes = 12, c.width = 20;
  if (d == 3) modes = 8, c.width = 20;
  for (int a = 0; a < 3; a++) c.modes[a] = (d >= 1 && d <= 3 && a >= d) ? 0 : modes;
  return c;
}

opl_fno_config opl_fno_config_reference(opl_fno_ref script) {
  opl_fno_config c;
  switch (script) {
    case OPL_FNO_REF_1D:
      return opl_fno_config_default(1);
    case OPL_FNO_REF_2D:
      c = opl_fno_config_default(2);
      c.width = 32;
      c.pad[0] = c.pad[1] = 9;
      return c;
    case OPL_FNO_REF_2D_TIME:
      c = opl_fno_config_default(2);
      c.in_channels = 10;
      return c;
    case OPL_FNO_REF_3D:
      c = opl_fno_config_default(3);
      c.in_channels = 10;
      c.pad[2] = 6;
      return c;
    default:
      return opl_fno_config_default(0);
  }
}

int opl_fno_config_check(const opl_fno_config *cfg, opl_err *err) {
  if (!cfg) return opl_err_set(err, OPL_ERR_ARG, "fno: NULL configuration");
  if (cfg->d < 1 || cfg->d > 3)
    return opl_err_set(err, OPL_ERR_ARG, "fno: d = %d spatial dimensions, expected 1, 2 or 3",
                       cfg->d);
  struct { const char *name; int64_t v; } ch[4] = {
      {"in_channels", cfg->in_channels}, {"out_channels", cfg->out_channels},
      {"width", cfg->width}, {"proj_channels", cfg->proj_channels}};
  for (int i = 0; i < 4; i++)
    if (ch[i].v < 1 || ch[i].v > FNO_MAX_CHANNELS)
      return opl_err_set(err, OPL_ERR_ARG, "fno: %s = %lld, expected 1..%d", ch[i].name,
                         (long long)ch[i].v, FNO_MAX_CHANNELS);
  if (cfg->layers < 1 || cfg->layers > OPL_FNO_MAX_LAYERS)
    return opl_err_set(err, OPL_ERR_ARG, "fno: layers = %d, expected 1..%d", cfg->layers,
                       OPL_FNO_MAX_LAYERS);
  for (int a = 0; a < cfg->d; a++) {
    if (cfg->modes[a] < 1 || cfg->modes[a] > FNO_MAX_MODES)
      return opl_err_set(err, OPL_ERR_ARG, "fno: modes[%d] = %d, expected 1..%d", a,
                         cfg->modes[a], FNO_MAX_MODES);
    if (cfg->pad[a] < 0 || cfg->pad[a] > FNO_MAX_PAD)
      return opl_err_set(err, OPL_ERR_ARG, "fno: pad[%d] = %lld, expected 0..%d", a,
                         (long long)cfg->pad[a], FNO_MAX_PAD);
  }
  /* The spectral weights of one layer must stay addressable. */
  double k = 2.0 * (double)cfg->width * (double)cfg->width;
  for (int a = 0; a < cfg->d; a++) k *= (a < cfg->d - 1 ? 2.0 : 1.0) * cfg->modes[a];
  if (k * cfg->layers > 1e15)
    return opl_err_set(err, OPL_ERR_ARG,
                       "fno: width = %lld with these modes gives %.3g spectral weights, too many",
                       (long long)cfg->width, k * cfg->layers);
  return OPL_OK;
}

/* Complex spectral weights per (input, output) channel pair: prod of the weight's mode axes. */
static int64_t spectral_modes(const opl_fno_config *cfg) {
  int64_t k = 1;
  for (int a = 0; a < cfg->d; a++) k *= (a < cfg->d - 1 ? 2 : 1) * (int64_t)cfg->modes[a];
  return k;
}

int64_t opl_fno_param_count(const opl_fno_config *cfg) {
  if (opl_fno_config_check(cfg, NULL) != OPL_OK) return -1;
  int64_t W = cfg->width, P = cfg->proj_channels, L = cfg->layers;
  int64_t n = W * (cfg->in_channels + cfg->d) + W;   /* fc0 */
  n += L * 2 * W * W * spectral_modes(cfg);          /* conv<l>, complex = 2 reals */
  n += L * (W * W + W);                              /* w<l> */
  n += P * W + P;                                    /* fc1 */
  n += cfg->out_channels * P + cfg->out_channels;    /* fc2 */
  return n;
}

int64_t opl_fno_reference_param_count(const opl_fno_config *cfg, opl_fno_ref script) {
  if (script < 0 || script >= OPL_FNO_REF_COUNT) return -1;
  int64_t n = opl_fno_param_count(cfg);
  if (n < 0) return -1;
  opl_fno_config r = opl_fno_config_reference(script);
  if (cfg->d != r.d || cfg->layers != 4 || cfg->proj_channels != 128 || cfg->out_channels != 1 ||
      cfg->in_channels != r.in_channels)
    return -1;
  /* fourier_2d_time.py and fourier_3d.py: bn0..bn3 = nn.BatchNorm2d/3d(width), each with a
   * weight and a bias of width reals, defined in __init__ and never called in forward. */
  if (script == OPL_FNO_REF_2D_TIME || script == OPL_FNO_REF_3D) n += 4 * 2 * cfg->width;
  return n;
}

/* ------------------------------------------------------------------ parameters */

/* The model's parameter tensors in state-dict order into t[] (at least 6 + 3 L entries);
 * returns their number. */
static int fno_tensors(const opl_fno *m, opl_tensor **t) {
  int n = 0;
  t[n++] = m->fc0_w, t[n++] = m->fc0_b;
  for (int l = 0; l < m->cfg.layers; l++) t[n++] = m->conv[l];
  for (int l = 0; l < m->cfg.layers; l++) t[n++] = m->w_w[l], t[n++] = m->w_b[l];
  t[n++] = m->fc1_w, t[n++] = m->fc1_b, t[n++] = m->fc2_w, t[n++] = m->fc2_b;
  return n;
}

/* Add parameter `name` of shape[0..rank) (complex when cplx) to p; NULL with err filled. */
static opl_tensor *add_param(opl_params *p, const char *name, int rank, const int64_t *shape,
                             int cplx, opl_err *err) {
  return opl_params_add(p, name, rank, shape, cplx ? OPL_T_COMPLEX : 0, err);
}

/* nn.Linear / nn.ConvNd(kernel 1) defaults: Kaiming-uniform weight and uniform bias, both
 * from fan_in; no-op without rng. */
static int init_affine(opl_rng *rng, opl_tensor *w, opl_tensor *b, int64_t fan_in, opl_err *err) {
  if (!rng) return OPL_OK;
  int st = opl_init_kaiming_uniform(rng, w, fan_in, OPL_KAIMING_A_DEFAULT, err);
  return st ? st : opl_init_bias_uniform(rng, b, fan_in, err);
}

int opl_fno_init(opl_fno *m, opl_params *p, const opl_fno_config *cfg, opl_rng *rng,
                 opl_err *err) {
  if (!m || !p) return opl_err_set(err, OPL_ERR_ARG, "fno: NULL model or parameter set");
  memset(m, 0, sizeof *m);
  int st = opl_fno_config_check(cfg, err);
  if (st) return st;
  opl_fno f;
  memset(&f, 0, sizeof f);
  f.cfg = *cfg;
  int d = cfg->d, L = cfg->layers;
  int64_t W = cfg->width, P = cfg->proj_channels, Cin = cfg->in_channels + d;
  char name[64];
  /* Creation and initialization in the order of the reference's __init__: fc0, conv0..,
   * w0.., fc1, fc2. */
  if (!(f.fc0_w = add_param(p, "fc0.weight", OPL_DIMS(W, Cin), 0, err)) ||
      !(f.fc0_b = add_param(p, "fc0.bias", OPL_DIMS(W), 0, err)))
    goto fail;
  if ((st = init_affine(rng, f.fc0_w, f.fc0_b, Cin, err))) return st;
  int64_t cshape[OPL_MAX_RANK] = {W, W};
  for (int a = 0; a < d; a++) cshape[2 + a] = (a < d - 1 ? 2 : 1) * (int64_t)cfg->modes[a];
  for (int l = 0; l < L; l++) {
    snprintf(name, sizeof name, "conv%d.weights", l);
    if (!(f.conv[l] = add_param(p, name, d + 2, cshape, 1, err))) goto fail;
    if (rng && (st = opl_init_fno_spectral(rng, f.conv[l], W, W, err))) return st;
  }
  int64_t wshape[OPL_MAX_RANK] = {W, W, 1, 1, 1};
  for (int l = 0; l < L; l++) {
    snprintf(name, sizeof name, "w%d.weight", l);
    if (!(f.w_w[l] = add_param(p, name, d + 2, wshape, 0, err))) goto fail;
    snprintf(name, sizeof name, "w%d.bias", l);
    if (!(f.w_b[l] = add_param(p, name, OPL_DIMS(W), 0, err))) goto fail;
    if ((st = init_affine(rng, f.w_w[l], f.w_b[l], W, err))) return st;
  }
  if (!(f.fc1_w = add_param(p, "fc1.weight", OPL_DIMS(P, W), 0, err)) ||
      !(f.fc1_b = add_param(p, "fc1.bias", OPL_DIMS(P), 0, err)))
    goto fail;
  if ((st = init_affine(rng, f.fc1_w, f.fc1_b, W, err))) return st;
  if (!(f.fc2_w = add_param(p, "fc2.weight", OPL_DIMS(cfg->out_channels, P), 0, err)) ||
      !(f.fc2_b = add_param(p, "fc2.bias", OPL_DIMS(cfg->out_channels), 0, err)))
    goto fail;
  if ((st = init_affine(rng, f.fc2_w, f.fc2_b, P, err))) return st;
  *m = f;
  return OPL_OK;
fail:
  return err ? err->status : OPL_ERR_ARG;
}

/* ------------------------------------------------------------------ forward */

/* numpy.linspace(0, 1, n)[i] as the reference computes it (step 1 / (n - 1) in double, the
 * endpoint set exactly), rounded to opl_real by the caller. */
static double linspace01(int64_t i, int64_t n) {
  if (n <= 1) return 0;
  if (i == n - 1) return 1;
  return (double)i * (1.0 / (double)(n - 1));
}

opl_tensor *opl_fno_grid(opl_ctx *c, int d, int64_t N, const int64_t *S) {
  if (opl_ctx_status(c)) return NULL;
  if (d < 1 || d > 3 || N < 1 || !S) {
    opl_ctx_error(c, OPL_ERR_ARG, "fno_grid: d = %d (expected 1..3), N = %lld (expected >= 1)%s",
                  d, (long long)N, S ? "" : ", NULL resolution");
    return NULL;
  }
  int64_t shape[OPL_MAX_RANK] = {N, d};
  for (int a = 0; a < d; a++) shape[2 + a] = S[a];
  opl_tensor *g = opl_new(c, d + 2, shape); /* checks every extent >= 1 */
  if (!g) return NULL;
  int64_t P = opl_nreal(g) / (N * d);
  /* sample 0: channel a at flat point q holds linspace(S_a)[index of q on axis a] */
  int64_t stride = P;
  for (int a = 0; a < d; a++) {
    int64_t n = S[a];
    stride /= n;
    opl_real *ga = g->data + a * P;
    for (int64_t q = 0; q < P; q++) ga[q] = (opl_real)linspace01((q / stride) % n, n);
  }
  for (int64_t b = 1; b < N; b++) memcpy(g->data + b * d * P, g->data, (size_t)(d * P) * sizeof(opl_real));
  return g;
}

/* "(N, Cin, X, Y)"-style description of the input a model expects, into buf[96]. */
static const char *want_str(const opl_fno_config *cfg, char *buf) {
  static const char *space[4] = {"", "X", "X, Y", "X, Y, Z"};
  snprintf(buf, 96, "(N, %lld, %s)", (long long)cfg->in_channels, space[cfg->d]);
  return buf;
}

opl_tensor *opl_fno_forward(opl_ctx *c, const opl_fno *m, opl_tensor *x) {
  if (opl_ctx_status(c)) return NULL;
  OPL_ASSERT(m && m->fc0_w && m->fc2_b, "opl_fno_forward on a model that was not initialized");
  const opl_fno_config *cfg = &m->cfg;
  if (!opl_check_input(c, "fno", "x", x, -1, 0)) return NULL;
  int d = cfg->d;
  char b1[96], b2[96], b3[96];
  if (x->rank != d + 2 || x->shape[1] != cfg->in_channels) {
    opl_ctx_error(c, OPL_ERR_SHAPE, "fno: x %s does not fit the model (d = %d, Cin = %lld): expected %s",
                  opl_shape_str(b1, x->rank, x->shape), d, (long long)cfg->in_channels,
                  want_str(cfg, b2));
    return NULL;
  }
  int64_t N = x->shape[0], S[3], Sp[3], modes[3], lo[3] = {0, 0, 0};
  int padded = 0;
  for (int a = 0; a < d; a++) {
    S[a] = x->shape[2 + a];
    Sp[a] = S[a] + cfg->pad[a];
    modes[a] = cfg->modes[a];
    padded |= cfg->pad[a] > 0;
  }
  for (int a = 0; a < d; a++)
    if (2 * modes[a] > Sp[a]) {
      opl_ctx_error(c, OPL_ERR_SHAPE,
                    "fno: modes %s exceed half the resolution of x %s (padded resolution %s): "
                    "axis %d of resolution %lld keeps at most %lld modes",
                    opl_shape_str(b1, d, modes), opl_shape_str(b2, x->rank, x->shape),
                    opl_shape_str(b3, d, Sp), a, (long long)Sp[a], (long long)(Sp[a] / 2));
      return NULL;
    }
  int64_t W = cfg->width;
  /* Lifting: fc0 on [x, grid] pointwise. */
  opl_tensor *xg[2] = {x, opl_fno_grid(c, d, N, S)};
  opl_tensor *h = opl_channel_linear(c, opl_concat(c, 2, xg, 1), m->fc0_w, m->fc0_b);
  if (padded) h = opl_pad(c, h, d, lo, cfg->pad, OPL_PAD_ZERO);
  /* Fourier layers: v <- gelu(K v + W v), no gelu after the last, each one fused op
   * (opl_fourier_layer: without a tape it keeps only its output). */
  const int L = cfg->layers;
  for (int l = 0; l < L; l++) {
    opl_tensor *w2 = opl_reshape(c, m->w_w[l], OPL_DIMS(W, W));
    h = opl_fourier_layer(c, h, m->conv[l], w2, m->w_b[l], d, cfg->modes, l + 1 < L ? OPL_GELU : -1);
  }
  if (padded) h = opl_crop(c, h, d, lo, cfg->pad);
  /* Projection: fc2(gelu(fc1 v)) pointwise, one fused op (opl_channel_mlp). */
  return opl_channel_mlp(c, h, m->fc1_w, m->fc1_b, m->fc2_w, m->fc2_b, OPL_GELU);
}

opl_tensor *opl_fno_rollout(opl_ctx *c, const opl_fno *m, opl_tensor *x, int steps) {
  if (opl_ctx_status(c)) return NULL;
  OPL_ASSERT(m && m->fc0_w, "opl_fno_rollout on a model that was not initialized");
  /* The generic rollout over a view of m (no parameters of its own). */
  opl_model view = {.ops = &opl_fno_ops, .self = (void *)m, .sdim = m->cfg.d,
                    .in_channels = m->cfg.in_channels, .out_channels = m->cfg.out_channels};
  return opl_model_rollout(c, &view, x, steps);
}

opl_tensor *opl_fno3d_input(opl_ctx *c, opl_tensor *x, int64_t T) {
  if (!opl_check_input(c, "fno3d_input", "x", x, -1, 0)) return NULL;
  char b[96];
  if (x->rank != 4) {
    opl_ctx_error(c, OPL_ERR_SHAPE, "fno3d_input: x %s must be frames (N, T_in, X, Y)",
                  opl_shape_str(b, x->rank, x->shape));
    return NULL;
  }
  if (T < 1) {
    opl_ctx_error(c, OPL_ERR_ARG, "fno3d_input: T = %lld time points for x %s, expected >= 1",
                  (long long)T, opl_shape_str(b, x->rank, x->shape));
    return NULL;
  }
  /* x (N, T_in, X, Y, 1) + zeros (T) broadcasts to the repetition along the new last axis;
   * the backward of the broadcast sums over it (the adjoint of repeating). */
  opl_tensor *x5 = opl_reshape(c, x, OPL_DIMS(x->shape[0], x->shape[1], x->shape[2], x->shape[3], 1));
  return opl_add(c, x5, opl_zeros(c, OPL_DIMS(T)));
}

/* ------------------------------------------------------------------ files */

static const char *const k_modes[3] = {"fno.modes0", "fno.modes1", "fno.modes2"};
static const char *const k_pad[3] = {"fno.pad0", "fno.pad1", "fno.pad2"};

int opl_fno_config_to_meta(const opl_fno_config *cfg, opl_kv *kv) {
  int n = 0, d = cfg->d < 0 ? 0 : (cfg->d > 3 ? 3 : cfg->d);
  kv[n++] = (opl_kv)OPL_KVS("model", "fno");
  kv[n++] = (opl_kv)OPL_KVI("fno.version", OPL_FNO_META_VERSION);
  kv[n++] = (opl_kv)OPL_KVI("fno.d", cfg->d);
  kv[n++] = (opl_kv)OPL_KVI("fno.in_channels", cfg->in_channels);
  kv[n++] = (opl_kv)OPL_KVI("fno.out_channels", cfg->out_channels);
  kv[n++] = (opl_kv)OPL_KVI("fno.width", cfg->width);
  kv[n++] = (opl_kv)OPL_KVI("fno.layers", cfg->layers);
  kv[n++] = (opl_kv)OPL_KVI("fno.proj_channels", cfg->proj_channels);
  for (int a = 0; a < d; a++) kv[n++] = (opl_kv)OPL_KVI(k_modes[a], cfg->modes[a]);
  for (int a = 0; a < d; a++) kv[n++] = (opl_kv)OPL_KVI(k_pad[a], cfg->pad[a]);
  kv[n++] = (opl_kv)OPL_KVI("fno.param_count", opl_fno_param_count(cfg));
  return n;
}

/* Integer attribute key of kv into *out within [lo, hi]. */
static int meta_int(const opl_kv *kv, int n, const char *key, int64_t lo, int64_t hi,
                    int64_t *out, opl_err *err) {
  const opl_kv *e = opl_kv_find(kv, n, key);
  if (!e) return opl_err_set(err, OPL_ERR_NOTFOUND, "fno: attribute '%s' is missing", key);
  if (e->type != OPL_KV_INT)
    return opl_err_set(err, OPL_ERR_FORMAT, "fno: attribute '%s' must be an integer", key);
  if (e->i < lo || e->i > hi)
    return opl_err_set(err, OPL_ERR_FORMAT, "fno: attribute '%s' = %lld, expected %lld..%lld", key,
                       (long long)e->i, (long long)lo, (long long)hi);
  *out = e->i;
  return OPL_OK;
}

int opl_fno_config_from_meta(const opl_kv *kv, int n, opl_fno_config *cfg, opl_err *err) {
  if (!cfg) return opl_err_set(err, OPL_ERR_ARG, "fno: NULL configuration");
  const opl_kv *model = opl_kv_find(kv, n, "model");
  if (!model || model->type != OPL_KV_STR || !model->s || strcmp(model->s, "fno") != 0)
    return opl_err_set(err, OPL_ERR_FORMAT, "fno: attribute 'model' is %s%s%s, expected 'fno'",
                       !model ? "missing" : "'",
                       model && model->type == OPL_KV_STR && model->s ? model->s : (model ? "(not a string)" : ""),
                       model ? "'" : "");
  opl_fno_config c;
  memset(&c, 0, sizeof c);
  int64_t v = 0;
  int st;
  if ((st = meta_int(kv, n, "fno.version", 1, INT64_MAX, &v, err))) return st;
  if (v > OPL_FNO_META_VERSION)
    return opl_err_set(err, OPL_ERR_UNSUPPORTED, "fno: attribute 'fno.version' = %lld is newer than %d",
                       (long long)v, OPL_FNO_META_VERSION);
  if ((st = meta_int(kv, n, "fno.d", 1, 3, &v, err))) return st;
  c.d = (int)v;
  if ((st = meta_int(kv, n, "fno.in_channels", 1, FNO_MAX_CHANNELS, &c.in_channels, err)) ||
      (st = meta_int(kv, n, "fno.out_channels", 1, FNO_MAX_CHANNELS, &c.out_channels, err)) ||
      (st = meta_int(kv, n, "fno.width", 1, FNO_MAX_CHANNELS, &c.width, err)) ||
      (st = meta_int(kv, n, "fno.proj_channels", 1, FNO_MAX_CHANNELS, &c.proj_channels, err)))
    return st;
  if ((st = meta_int(kv, n, "fno.layers", 1, OPL_FNO_MAX_LAYERS, &v, err))) return st;
  c.layers = (int)v;
  for (int a = 0; a < c.d; a++) {
    if ((st = meta_int(kv, n, k_modes[a], 1, FNO_MAX_MODES, &v, err))) return st;
    c.modes[a] = (int)v;
    if ((st = meta_int(kv, n, k_pad[a], 0, FNO_MAX_PAD, &c.pad[a], err))) return st;
  }
  opl_err e;
  if (opl_fno_config_check(&c, &e))
    return opl_err_set(err, OPL_ERR_FORMAT, "fno: the attributes describe no valid model: %s", e.msg);
  if ((st = meta_int(kv, n, "fno.param_count", 0, INT64_MAX, &v, err))) return st;
  if (v != opl_fno_param_count(&c))
    return opl_err_set(err, OPL_ERR_FORMAT,
                       "fno: attribute 'fno.param_count' = %lld, but the configuration has %lld parameters",
                       (long long)v, (long long)opl_fno_param_count(&c));
  *cfg = c;
  return OPL_OK;
}

int opl_fno_save(const char *path, const opl_fno *m, const opl_params *p, const opl_kv *extra,
                 int nextra, opl_err *err) {
  if (!path || !m || !p || nextra < 0 || (nextra > 0 && !extra))
    return opl_err_set(err, OPL_ERR_ARG, "fno_save: NULL path, model or parameters, or bad extra attributes");
  if (!m->fc0_w) return opl_err_set(err, OPL_ERR_ARG, "fno_save: '%s': the model is not initialized", path);
  opl_tensor *t[6 + 3 * OPL_FNO_MAX_LAYERS];
  int nt = fno_tensors(m, t);
  for (int i = 0; i < nt; i++)
    if (opl_params_find(p, t[i]->name) != t[i])
      return opl_err_set(err, OPL_ERR_ARG, "fno_save: '%s': the model's parameter '%s' is not in the set",
                         path, t[i]->name);
  for (int i = 0; i < p->n; i++) {
    int found = 0;
    for (int j = 0; j < nt && !found; j++) found = p->t[i] == t[j];
    if (!found)
      return opl_err_set(err, OPL_ERR_ARG, "fno_save: '%s': parameter '%s' of the set is not part of the model",
                         path, p->t[i]->name);
  }
  opl_kv meta_model[OPL_FNO_META_MAX];
  int nm = opl_fno_config_to_meta(&m->cfg, meta_model);
  for (int i = 0; i < nextra; i++)
    if (!extra[i].key || opl_kv_find(meta_model, nm, extra[i].key))
      return opl_err_set(err, OPL_ERR_ARG, "fno_save: '%s': extra attribute '%s' is reserved for the model",
                         path, extra[i].key ? extra[i].key : "(null)");
  opl_kv *meta = malloc((size_t)(nm + nextra) * sizeof *meta);
  if (!meta) return opl_err_set(err, OPL_ERR_NOMEM, "fno_save: '%s': out of memory", path);
  memcpy(meta, meta_model, (size_t)nm * sizeof *meta);
  if (nextra) memcpy(meta + nm, extra, (size_t)nextra * sizeof *meta);
  int st = opl_checkpoint_save(path, p, NULL, meta, nm + nextra, err);
  free(meta);
  return st;
}

int opl_fno_load(const char *path, opl_fno *m, opl_params *p, opl_err *err) {
  if (!path || !m || !p) return opl_err_set(err, OPL_ERR_ARG, "fno_load: NULL path, model or parameters");
  memset(m, 0, sizeof *m);
  if (p->n != 0)
    return opl_err_set(err, OPL_ERR_ARG, "fno_load: '%s': the parameter set must be empty, it holds %d",
                       path, p->n);
  opl_kv *kv = NULL;
  int nkv = 0;
  opl_err e = {0};
  int st = opl_checkpoint_read_meta(path, &kv, &nkv, &e);
  if (st) return opl_err_set(err, st, "%s", e.msg);
  opl_fno_config cfg;
  st = opl_fno_config_from_meta(kv, nkv, &cfg, &e);
  opl_kv_free(&kv, nkv);
  if (st) return opl_err_set(err, st, "fno_load: '%s': %s", path, e.msg);
  opl_fno f;
  st = opl_fno_init(&f, p, &cfg, NULL, &e);
  if (!st) st = opl_checkpoint_load(path, p, NULL, &e);
  if (st) {
    opl_params_free(p);
    opl_params_init(p);
    return opl_err_set(err, st, "fno_load: '%s': %s", path, e.msg);
  }
  *m = f;
  return OPL_OK;
}

/* ------------------------------------------------------------------ the model interface */

static opl_tensor *ops_forward(opl_ctx *c, const void *self, opl_tensor *x) {
  return opl_fno_forward(c, self, x);
}

static int ops_check_input(const void *self, int rank, const int64_t *shape, const char *const *axis,
                           opl_err *err) {
  const opl_fno_config *cfg = &((const opl_fno *)self)->cfg;
  int d = cfg->d;
  char b1[96], b2[96];
  if (rank != d + 2 || shape[1] != cfg->in_channels)
    return opl_err_set(err, OPL_ERR_SHAPE, "fno: input %s does not fit the model (d = %d, Cin = %lld): expected %s",
                       opl_shape_str(b1, rank, shape), d, (long long)cfg->in_channels, want_str(cfg, b2));
  for (int a = 0; a < d; a++) {
    int64_t Sp = shape[2 + a] + cfg->pad[a];
    if (2 * (int64_t)cfg->modes[a] <= Sp) continue;
    char lab[64];
    if (!axis || !axis[a]) snprintf(lab, sizeof lab, "axis %d: %lld points", a, (long long)shape[2 + a]);
    return opl_err_set(err, OPL_ERR_SHAPE, "fno: modes %d exceed half the resolution on %s%s keep at most %lld modes",
                       cfg->modes[a], axis && axis[a] ? axis[a] : lab, cfg->pad[a] ? " plus padding" : "",
                       (long long)(Sp / 2));
  }
  return OPL_OK;
}

static int ops_to_meta(const void *self, opl_kv *kv) {
  return opl_fno_config_to_meta(&((const opl_fno *)self)->cfg, kv);
}

/* "16", "12 x 12", "8 x 8 x 8" for the modes (or pads) of d axes, into buf[64]. */
static const char *axes_str(int d, const int64_t *v, char *buf) {
  int n = 0;
  buf[0] = 0;
  for (int a = 0; a < d; a++) n += snprintf(buf + n, (size_t)(64 - n), "%s%lld", a ? " x " : "", (long long)v[a]);
  return buf;
}

static void ops_describe(const void *self, char *buf, size_t cap) {
  const opl_fno_config *cfg = &((const opl_fno *)self)->cfg;
  int64_t modes[3] = {cfg->modes[0], cfg->modes[1], cfg->modes[2]};
  int padded = 0;
  for (int a = 0; a < cfg->d; a++) padded |= cfg->pad[a] > 0;
  char b1[64], b2[64];
  snprintf(buf, cap, "FNO-%dd (modes %s, width %lld, %d layers, projection %lld%s%s)", cfg->d,
           axes_str(cfg->d, modes, b1), (long long)cfg->width, cfg->layers, (long long)cfg->proj_channels,
           padded ? ", pad " : "", padded ? axes_str(cfg->d, cfg->pad, b2) : "");
}

/* "(N, C, X, Y)" with each spatial extent plus pad[a] when pad is given. */
static void sym_shape(char *buf, size_t cap, int d, int64_t C, const int64_t *pad) {
  static const char *sym[3] = {"X", "Y", "Z"};
  int n = snprintf(buf, cap, "(N, %lld", (long long)C);
  for (int a = 0; a < d && n > 0 && (size_t)n < cap; a++) {
    if (pad && pad[a]) n += snprintf(buf + n, cap - (size_t)n, ", %s+%lld", sym[a], (long long)pad[a]);
    else n += snprintf(buf + n, cap - (size_t)n, ", %s", sym[a]);
  }
  if (n > 0 && (size_t)n < cap) snprintf(buf + n, cap - (size_t)n, ")");
}

static int ops_summary(const void *self, opl_model_row *rows, int cap) {
  const opl_fno_config *cfg = &((const opl_fno *)self)->cfg;
  int d = cfg->d, padded = 0, n = 0;
  for (int a = 0; a < d; a++) padded |= cfg->pad[a] > 0;
  int64_t W = cfg->width, P = cfg->proj_channels, Co = cfg->out_channels;
  opl_model_row r;
#define ROW(NAME, C, PAD, NP)                                   \
  do {                                                          \
    snprintf(r.name, sizeof r.name, "%.47s", NAME);                \
    sym_shape(r.shape, sizeof r.shape, d, C, PAD);              \
    r.params = (NP);                                            \
    if (n < cap) rows[n] = r;                                   \
    n++;                                                        \
  } while (0)
  char name[96];
  snprintf(name, sizeof name, "fc0 (lifting, %lld + %d grid)", (long long)cfg->in_channels, d);
  ROW(name, W, NULL, W * (cfg->in_channels + d) + W);
  if (padded) ROW("pad", W, cfg->pad, 0);
  for (int l = 0; l < cfg->layers; l++) {
    snprintf(name, sizeof name, "fourier%d (conv%d + w%d%s)", l, l, l, l + 1 < cfg->layers ? ", gelu" : "");
    ROW(name, W, padded ? cfg->pad : NULL, 2 * W * W * spectral_modes(cfg) + W * W + W);
  }
  if (padded) ROW("crop", W, NULL, 0);
  ROW("fc1 (projection, gelu)", P, NULL, P * W + P);
  ROW("fc2 (projection)", Co, NULL, Co * P + Co);
#undef ROW
  return n;
}

static void ops_free(void *self) { free(self); }

const opl_model_ops opl_fno_ops = {
    .name = "fno",
    .forward = ops_forward,
    .check_input = ops_check_input,
    .to_meta = ops_to_meta,
    .describe = ops_describe,
    .summary = ops_summary,
    .free = ops_free,
    .samplewise = 1,
};

static int kind_create(opl_model *m, const void *config, opl_rng *rng, opl_err *err) {
  opl_fno *f = calloc(1, sizeof *f);
  if (!f) return opl_err_set(err, OPL_ERR_NOMEM, "fno: out of memory");
  int st = opl_fno_init(f, &m->params, config, rng, err);
  if (st) {
    free(f);
    return st;
  }
  m->ops = &opl_fno_ops;
  m->self = f;
  m->sdim = f->cfg.d;
  m->in_channels = f->cfg.in_channels;
  m->out_channels = f->cfg.out_channels;
  return OPL_OK;
}

static int kind_from_meta(const opl_kv *kv, int n, void *config, opl_err *err) {
  return opl_fno_config_from_meta(kv, n, config, err);
}

static int kind_set_io(void *config, int sdim, int64_t cin, int64_t cout, opl_err *err) {
  opl_fno_config *cfg = config;
  if (sdim < 1 || sdim > 3)
    return opl_err_set(err, OPL_ERR_ARG, "fno: inputs with %d spatial axes, expected 1, 2 or 3", sdim);
  cfg->d = sdim;
  cfg->in_channels = cin;
  cfg->out_channels = cout;
  for (int a = sdim; a < 3; a++) cfg->modes[a] = 0, cfg->pad[a] = 0; /* canonical: unused axes 0 */
  return OPL_OK;
}

const opl_model_kind opl_fno_kind = {
    .name = "fno",
    .config_size = sizeof(opl_fno_config),
    .create = kind_create,
    .config_from_meta = kind_from_meta,
    .set_io = kind_set_io,
};

const opl_fno *opl_model_fno(const opl_model *m) {
  return m && m->ops == &opl_fno_ops ? m->self : NULL;
}
