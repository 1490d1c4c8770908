/* opl operators — SineNet (see sinenet.h): the authors' sinenet_dual.py layout (Down / Up /
 * ConvBlock with num_blocks = 1, residual and wave residual on, disentangled, average pooling,
 * bicubic upsampling) built from core ops only. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "operators/sinenet.h"
#include "core/init.h"

#define SINENET_META_VERSION 1
#define GN_EPS 1e-5

typedef struct preset {
  const char *name;
  int waves;
  int64_t hidden, cin, cout;
  double mult;
  opl_pad_mode pad;
} preset;

/* The authors' registry (pdearena/models/registry.py: sinenet1-dual ... sinenet8-dual; "ins":
 * the incompressible NS data of PDEArena, 1 scalar + 1 vector field, 4 history frames). */
static const preset presets[] = {
    {"ins-k1", 1, 64, 12, 3, 2.0, OPL_PAD_ZERO},     {"ins-k2", 2, 64, 12, 3, 1.8075, OPL_PAD_ZERO},
    {"ins-k4", 4, 64, 12, 3, 1.611, OPL_PAD_ZERO},   {"ins-k6", 6, 64, 12, 3, 1.5, OPL_PAD_ZERO},
    {"ins-k8", 8, 64, 12, 3, 1.425, OPL_PAD_ZERO},   {"ns-k1", 1, 16, 4, 1, 2.0, OPL_PAD_CIRCULAR},
    {"ns-k4", 4, 16, 4, 1, 1.601, OPL_PAD_CIRCULAR},
};

int opl_sinenet_preset(const char *name, opl_sinenet_config *cfg, opl_err *err) {
  for (size_t i = 0; name && i < sizeof presets / sizeof presets[0]; i++)
    if (!strcmp(name, presets[i].name)) {
      memset(cfg, 0, sizeof *cfg);
      cfg->waves = presets[i].waves;
      cfg->hidden = presets[i].hidden;
      cfg->mult = presets[i].mult;
      cfg->in_channels = presets[i].cin;
      cfg->out_channels = presets[i].cout;
      cfg->pad = presets[i].pad;
      return OPL_OK;
    }
  return opl_err_set(err, OPL_ERR_ARG, "sinenet: unknown preset '%s' (expected %s)", name ? name : "(null)",
                     OPL_SINENET_PRESETS);
}

void opl_sinenet_widths(const opl_sinenet_config *cfg, int64_t *w) {
  /* Python: int(n * mult) for level 1 and int(n * mult ** k) for k >= 2 (float64 pow). */
  w[0] = cfg->hidden;
  for (int k = 1; k <= OPL_SINENET_LEVELS; k++)
    w[k] = (int64_t)((double)cfg->hidden * (k == 1 ? cfg->mult : pow(cfg->mult, (double)k)));
}

int opl_sinenet_check_config(const opl_sinenet_config *cfg, opl_err *err) {
  if (cfg->waves < 1 || cfg->waves > OPL_SINENET_MAX_WAVES)
    return opl_err_set(err, OPL_ERR_ARG, "sinenet: %d waves, expected 1..%d", cfg->waves, OPL_SINENET_MAX_WAVES);
  if (cfg->hidden < 1 || cfg->hidden > 1 << 16 || cfg->in_channels < 1 || cfg->in_channels > 1 << 16 ||
      cfg->out_channels < 1 || cfg->out_channels > 1 << 16)
    return opl_err_set(err, OPL_ERR_ARG, "sinenet: hidden %lld, in %lld, out %lld channels: expected 1..65536",
                       (long long)cfg->hidden, (long long)cfg->in_channels, (long long)cfg->out_channels);
  if (!(cfg->mult >= 1 && cfg->mult <= 4))
    return opl_err_set(err, OPL_ERR_ARG, "sinenet: width multiplier %g, expected 1..4", cfg->mult);
  int64_t w[OPL_SINENET_LEVELS + 1];
  opl_sinenet_widths(cfg, w);
  if (w[OPL_SINENET_LEVELS] > 1 << 16)
    return opl_err_set(err, OPL_ERR_ARG, "sinenet: the coarsest width int(%lld * %g^4) = %lld exceeds 65536",
                       (long long)cfg->hidden, cfg->mult, (long long)w[OPL_SINENET_LEVELS]);
  if (cfg->pad != OPL_PAD_ZERO && cfg->pad != OPL_PAD_CIRCULAR)
    return opl_err_set(err, OPL_ERR_ARG, "sinenet: padding must be zeros or circular");
  return OPL_OK;
}

static int64_t c3(int64_t a, int64_t b) { return 9 * a * b + b; }
static int64_t blk(int64_t a, int64_t b) { return c3(a, b) + c3(b, b) + 4 * b; }
static int64_t lin(int64_t a, int64_t b) { return a * b + b; }

/* Parameters of down level i and up level i of one wave. */
static int64_t down_count(const opl_sinenet_config *g, const int64_t *w, int i) {
  return blk(w[i] + (i ? g->hidden : 0), w[i + 1]) + lin(w[i], w[i + 1]);
}
static int64_t up_count(const int64_t *w, int i) {
  int j = OPL_SINENET_LEVELS - i;
  return blk(w[j] + w[j - 1], w[j - 1]) + lin(w[j], w[j - 1]);
}

int64_t opl_sinenet_param_count(const opl_sinenet_config *cfg) {
  int64_t w[OPL_SINENET_LEVELS + 1], wave = 0;
  opl_sinenet_widths(cfg, w);
  for (int i = 0; i < OPL_SINENET_LEVELS; i++) wave += down_count(cfg, w, i) + up_count(w, i);
  return c3(cfg->in_channels, cfg->hidden) + c3(cfg->hidden, cfg->out_channels) + cfg->waves * wave;
}

/* ------------------------------------------------------------------ forward */

static opl_tensor *conv3(opl_ctx *c, const opl_sinenet *m, opl_tensor *x, opl_tensor *w, opl_tensor *b) {
  opl_conv_opts o = {.stride = {1, 1}, .padding = {1, 1}, .pad_mode = m->cfg.pad};
  return opl_conv(c, x, w, b, &o);
}

/* B(in) + L(s): B is two [conv3 -> GroupNorm(1) -> GELU], L the 1x1 shortcut. Each norm and its
 * activation are one op (opl_group_norm_gelu), which keeps the convolution's output for backward
 * but not the normalized values; the second also adds L(s) as it writes (opl_group_norm_gelu_add),
 * and L(s) is released once added (no backward reads it).
 * in (N, Ci, X, Y), s (N, Cs, X, Y) -> (N, Co, X, Y) */
static opl_tensor *block_res(opl_ctx *c, const opl_sinenet *m, const opl_sinenet_block *b, opl_tensor *in,
                             opl_tensor *s) {
  opl_tensor *h = opl_group_norm_gelu(c, conv3(c, m, in, b->w1, b->b1), 1, b->g1, b->be1, GN_EPS);
  opl_tensor *l = opl_channel_linear(c, s, b->sw, b->sb);
  opl_tensor *y = opl_group_norm_gelu_add(c, conv3(c, m, h, b->w2, b->b2), 1, b->g2, b->be2, GN_EPS, l);
  opl_release(c, l);
  return y;
}

/* 2x2 average pooling: (N, C, X, Y) -> (N, C, X/2, Y/2). */
static opl_tensor *pool(opl_ctx *c, opl_tensor *x) { return opl_avgpool(c, x, (const int[]){2, 2}, NULL); }

/* Bicubic x2: (N, C, X, Y) -> (N, C, 2X, 2Y); circular: pad 2 periodically, interpolate, crop 4
 * (the padded and the uncropped fields are released once used). */
static opl_tensor *upsample(opl_ctx *c, const opl_sinenet *m, opl_tensor *x) {
  if (!x) return NULL;
  if (m->cfg.pad != OPL_PAD_CIRCULAR)
    return opl_interp(c, x, (const int64_t[]){2 * x->shape[2], 2 * x->shape[3]}, OPL_INTERP_CUBIC);
  const int64_t two[2] = {2, 2}, four[2] = {4, 4};
  opl_tensor *p = opl_pad(c, x, 2, two, two, OPL_PAD_CIRCULAR);
  if (!p) return NULL;
  opl_tensor *u = opl_interp(c, p, (const int64_t[]){2 * p->shape[2], 2 * p->shape[3]}, OPL_INTERP_CUBIC);
  opl_release(c, p);
  opl_tensor *y = opl_crop(c, u, 2, four, four);
  opl_release(c, u);
  return y;
}

static opl_tensor *cat2(opl_ctx *c, opl_tensor *a, opl_tensor *b) {
  if (!a || !b) return NULL;
  opl_tensor *xs[2] = {a, b};
  return opl_concat(c, 2, xs, 1);
}

/* One wave: v (N, H, X, Y) -> v + wave(v). Every intermediate is released (opl_release) after its
 * last reader, so that a training step keeps only what some backward reads (the inputs of the
 * convolutions, of the fused norms and of the shortcuts) and inference reuses the memory of
 * each level for the next. */
static opl_tensor *wave(opl_ctx *c, const opl_sinenet *m, int k, opl_tensor *v) {
  opl_tensor *hs[OPL_SINENET_LEVELS + 1];
  opl_tensor *d = v;
  hs[0] = v;
  for (int i = 0; i < OPL_SINENET_LEVELS; i++) {
    opl_tensor *dn = pool(c, d);
    if (i) opl_release(c, d); /* the previous level's pooled wave input: read by its concat and this pool */
    d = dn;
    opl_tensor *p = pool(c, hs[i]);
    opl_tensor *in = i ? cat2(c, p, d) : p;
    hs[i + 1] = block_res(c, m, &m->down[k][i], in, p);
    if (in != p) opl_release(c, in);
    opl_release(c, p);
  }
  opl_release(c, d);
  opl_tensor *x = hs[OPL_SINENET_LEVELS];
  for (int i = 0; i < OPL_SINENET_LEVELS; i++) {
    const int j = OPL_SINENET_LEVELS - 1 - i;
    opl_tensor *u = upsample(c, m, x);
    opl_release(c, x);
    opl_tensor *in = cat2(c, hs[j], u);
    if (j) opl_release(c, hs[j]); /* hs[0] = v: the residual below reads it */
    x = block_res(c, m, &m->up[k][i], in, u);
    opl_release(c, in);
    opl_release(c, u);
  }
  opl_tensor *y = opl_add(c, v, x);
  opl_release(c, x);
  return y;
}

static int ops_check_input(const void *self, int rank, const int64_t *shape, const char *const *axis,
                           opl_err *err) {
  const opl_sinenet *m = self;
  char b[96];
  if (rank != 4 || shape[1] != m->cfg.in_channels)
    return opl_err_set(err, OPL_ERR_SHAPE, "sinenet: input %s must be (N, %lld, X, Y)", opl_shape_str(b, rank, shape),
                       (long long)m->cfg.in_channels);
  for (int a = 0; a < 2; a++)
    if (shape[2 + a] < 16 || shape[2 + a] % 16) {
      char where[160];
      if (axis && axis[a]) snprintf(where, sizeof where, "%s", axis[a]);
      else snprintf(where, sizeof where, "%lld points on spatial axis %d", (long long)shape[2 + a], a);
      return opl_err_set(err, OPL_ERR_SHAPE,
                         "sinenet: %s; SineNet's U-Nets halve the grid 4 times, so each spatial extent must be a "
                         "positive multiple of 16",
                         where);
    }
  return OPL_OK;
}

static opl_tensor *ops_forward(opl_ctx *c, const void *self, opl_tensor *x) {
  const opl_sinenet *m = self;
  if (!opl_check_input(c, "sinenet", "x", x, 4, 0)) return NULL;
  opl_err e = {0};
  if (ops_check_input(self, x->rank, x->shape, NULL, &e)) {
    opl_ctx_error(c, e.status, "%s", e.msg);
    return NULL;
  }
  opl_tensor *h = conv3(c, m, x, m->lift_w, m->lift_b);
  for (int k = 0; k < m->cfg.waves; k++) {
    opl_tensor *hn = wave(c, m, k, h);
    opl_release(c, h); /* read by the wave's pools, concat and residual, saved by none */
    h = hn;
  }
  return conv3(c, m, h, m->final_w, m->final_b);
}

/* ------------------------------------------------------------------ the model interface */

static const char *pad_name(opl_pad_mode p) { return p == OPL_PAD_CIRCULAR ? "circular" : "zeros"; }

static int ops_to_meta(const void *self, opl_kv *kv) {
  const opl_sinenet *m = self;
  int n = 0;
  kv[n++] = (opl_kv)OPL_KVS("model", "sinenet");
  kv[n++] = (opl_kv)OPL_KVI("sinenet.version", SINENET_META_VERSION);
  kv[n++] = (opl_kv)OPL_KVI("sinenet.waves", m->cfg.waves);
  kv[n++] = (opl_kv)OPL_KVI("sinenet.hidden", m->cfg.hidden);
  kv[n++] = (opl_kv)OPL_KVD("sinenet.mult", m->cfg.mult);
  kv[n++] = (opl_kv)OPL_KVI("sinenet.in_channels", m->cfg.in_channels);
  kv[n++] = (opl_kv)OPL_KVI("sinenet.out_channels", m->cfg.out_channels);
  kv[n++] = (opl_kv)OPL_KVS("sinenet.padding", pad_name(m->cfg.pad));
  kv[n++] = (opl_kv)OPL_KVI("sinenet.param_count", opl_sinenet_param_count(&m->cfg));
  return n;
}

static void ops_describe(const void *self, char *buf, size_t cap) {
  const opl_sinenet *m = self;
  const int64_t *w = m->w;
  snprintf(buf, cap,
           "SineNet (%d waves, hidden %lld, multiplier %g: widths %lld-%lld-%lld-%lld-%lld, %lld -> %lld channels, "
           "%s padding)",
           m->cfg.waves, (long long)m->cfg.hidden, m->cfg.mult, (long long)w[0], (long long)w[1], (long long)w[2],
           (long long)w[3], (long long)w[4], (long long)m->cfg.in_channels, (long long)m->cfg.out_channels,
           pad_name(m->cfg.pad));
}

static void row(opl_model_row *rows, int n, int cap, int64_t params, const char *shape, const char *fmt, int k) {
  if (n >= cap) return;
  snprintf(rows[n].name, sizeof rows[n].name, fmt, k);
  snprintf(rows[n].shape, sizeof rows[n].shape, "%s", shape);
  rows[n].params = params;
}

static int ops_summary(const void *self, opl_model_row *rows, int cap) {
  const opl_sinenet *m = self;
  const opl_sinenet_config *g = &m->cfg;
  char hs[64], os[64], bs[64];
  snprintf(hs, sizeof hs, "(N, %lld, X, Y)", (long long)g->hidden);
  snprintf(os, sizeof os, "(N, %lld, X, Y)", (long long)g->out_channels);
  snprintf(bs, sizeof bs, "(N, %lld, X/16, Y/16)", (long long)m->w[OPL_SINENET_LEVELS]);
  int64_t down = 0, up = 0;
  for (int i = 0; i < OPL_SINENET_LEVELS; i++) down += down_count(g, m->w, i), up += up_count(m->w, i);
  int n = 0;
  row(rows, n++, cap, c3(g->in_channels, g->hidden), hs, "lift (3x3)%.0d", 0);
  for (int k = 0; k < g->waves; k++) {
    row(rows, n++, cap, down, bs, "wave %d down (4 levels)", k);
    row(rows, n++, cap, up, hs, "wave %d up (4 levels) + residual", k);
  }
  row(rows, n++, cap, c3(g->hidden, g->out_channels), os, "final (3x3)%.0d", 0);
  return n;
}

static void ops_free(void *self) { free(self); }

const opl_model_ops opl_sinenet_ops = {
    .name = "sinenet",
    .forward = ops_forward,
    .check_input = ops_check_input,
    .to_meta = ops_to_meta,
    .describe = ops_describe,
    .summary = ops_summary,
    .free = ops_free,
    .samplewise = 1,
};

/* Add parameter "sinenet.<prefix>.<what>" of the given shape. */
static opl_tensor *add(opl_params *p, const char *prefix, const char *what, int rank, const int64_t *shape,
                       opl_err *err) {
  char name[64];
  snprintf(name, sizeof name, "sinenet.%s.%s", prefix, what);
  return opl_params_add(p, name, rank, shape, 0, err);
}

/* A 3x3 convolution (Co, Ci, 3, 3) + bias (Co), initialized as PyTorch's Conv2d (Kaiming-uniform
 * a = sqrt 5 and bias U(+-1/sqrt(fan_in)), fan_in = 9 Ci). */
static int add_conv(opl_params *p, opl_rng *rng, const char *prefix, const char *wn, const char *bn, int64_t co,
                    int64_t ci, int64_t k, opl_tensor **w, opl_tensor **b, opl_err *err) {
  *w = k == 1 ? add(p, prefix, wn, OPL_DIMS(co, ci), err) : add(p, prefix, wn, OPL_DIMS(co, ci, k, k), err);
  if (!*w) return err->status;
  if (!(*b = add(p, prefix, bn, OPL_DIMS(co), err))) return err->status;
  int st = opl_init_kaiming_uniform(rng, *w, ci * k * k, OPL_KAIMING_A_DEFAULT, err);
  return st ? st : opl_init_bias_uniform(rng, *b, ci * k * k, err);
}

/* GroupNorm affine parameters (C): gamma 1, beta 0 (PyTorch's reset_parameters). */
static int add_norm(opl_params *p, const char *prefix, const char *gn, const char *bn, int64_t co, opl_tensor **g,
                    opl_tensor **b, opl_err *err) {
  if (!(*g = add(p, prefix, gn, OPL_DIMS(co), err))) return err->status;
  if (!(*b = add(p, prefix, bn, OPL_DIMS(co), err))) return err->status;
  return opl_init_constant(*g, 1.0, err);
}

/* Block B (ci -> co) and its shortcut L (cs -> co): w1 b1 (conv1), g1 be1 (norm1), w2 b2
 * (conv2), g2 be2 (norm2), sw sb (the 1x1 shortcut, stored as (Co, Cs)). */
static int add_block(opl_params *p, opl_rng *rng, const char *prefix, int64_t ci, int64_t co, int64_t cs,
                     opl_sinenet_block *b, opl_err *err) {
  int st;
  if ((st = add_conv(p, rng, prefix, "w1", "b1", co, ci, 3, &b->w1, &b->b1, err))) return st;
  if ((st = add_norm(p, prefix, "g1", "be1", co, &b->g1, &b->be1, err))) return st;
  if ((st = add_conv(p, rng, prefix, "w2", "b2", co, co, 3, &b->w2, &b->b2, err))) return st;
  if ((st = add_norm(p, prefix, "g2", "be2", co, &b->g2, &b->be2, err))) return st;
  return add_conv(p, rng, prefix, "sw", "sb", co, cs, 1, &b->sw, &b->sb, err);
}

static int kind_create(opl_model *mo, const void *config, opl_rng *rng, opl_err *err) {
  const opl_sinenet_config *cfg = config;
  opl_err local_err = {0};
  if (!err) err = &local_err;
  int st = opl_sinenet_check_config(cfg, err);
  if (st) return st;
  opl_rng local;
  if (!rng) {
    opl_rng_seed(&local, 0); /* loading: the file overwrites the values */
    rng = &local;
  }
  opl_sinenet *m = calloc(1, sizeof *m);
  if (!m) return opl_err_set(err, OPL_ERR_NOMEM, "sinenet: out of memory");
  m->cfg = *cfg;
  opl_sinenet_widths(cfg, m->w);
  opl_params *p = &mo->params;
  const int64_t *w = m->w, H = cfg->hidden;
  char prefix[32];
  if ((st = add_conv(p, rng, "lift", "w", "b", H, cfg->in_channels, 3, &m->lift_w, &m->lift_b, err))) goto fail;
  for (int k = 0; k < cfg->waves; k++) {
    for (int i = 0; i < OPL_SINENET_LEVELS; i++) {
      snprintf(prefix, sizeof prefix, "%d.down%d", k, i);
      if ((st = add_block(p, rng, prefix, w[i] + (i ? H : 0), w[i + 1], w[i], &m->down[k][i], err))) goto fail;
    }
    for (int i = 0; i < OPL_SINENET_LEVELS; i++) {
      int j = OPL_SINENET_LEVELS - i;
      snprintf(prefix, sizeof prefix, "%d.up%d", k, i);
      if ((st = add_block(p, rng, prefix, w[j] + w[j - 1], w[j - 1], w[j], &m->up[k][i], err))) goto fail;
    }
  }
  if ((st = add_conv(p, rng, "final", "w", "b", cfg->out_channels, H, 3, &m->final_w, &m->final_b, err))) goto fail;
  mo->ops = &opl_sinenet_ops;
  mo->self = m;
  mo->sdim = 2;
  mo->in_channels = cfg->in_channels;
  mo->out_channels = cfg->out_channels;
  return OPL_OK;
fail:
  free(m);
  return st ? st : OPL_ERR_ARG;
}


static int kind_from_meta(const opl_kv *kv, int n, void *config, opl_err *err) {
  const opl_kv *model = opl_kv_find(kv, n, "model");
  if (!model || model->type != OPL_KV_STR || !model->s || strcmp(model->s, "sinenet"))
    return opl_err_set(err, OPL_ERR_FORMAT, "sinenet: attribute 'model' is not 'sinenet'");
  opl_sinenet_config c;
  memset(&c, 0, sizeof c);
  int64_t v;
  int st;
  if ((st = opl_model_meta_int(kv, n, "sinenet", "sinenet.version", 1, SINENET_META_VERSION, &v, err))) return st;
  if ((st = opl_model_meta_int(kv, n, "sinenet", "sinenet.waves", 1, OPL_SINENET_MAX_WAVES, &v, err))) return st;
  c.waves = (int)v;
  if ((st = opl_model_meta_int(kv, n, "sinenet", "sinenet.hidden", 1, 1 << 16, &c.hidden, err))) return st;
  if ((st = opl_model_meta_int(kv, n, "sinenet", "sinenet.in_channels", 1, 1 << 16, &c.in_channels, err))) return st;
  if ((st = opl_model_meta_int(kv, n, "sinenet", "sinenet.out_channels", 1, 1 << 16, &c.out_channels, err))) return st;
  const opl_kv *mu = opl_kv_find(kv, n, "sinenet.mult");
  if (!mu || mu->type != OPL_KV_REAL)
    return opl_err_set(err, OPL_ERR_FORMAT, "sinenet: attribute 'sinenet.mult' is missing or not a real number");
  c.mult = mu->d;
  const opl_kv *pad = opl_kv_find(kv, n, "sinenet.padding");
  if (!pad || pad->type != OPL_KV_STR || !pad->s || (strcmp(pad->s, "zeros") && strcmp(pad->s, "circular")))
    return opl_err_set(err, OPL_ERR_FORMAT, "sinenet: attribute 'sinenet.padding' must be 'zeros' or 'circular'");
  c.pad = strcmp(pad->s, "zeros") ? OPL_PAD_CIRCULAR : OPL_PAD_ZERO;
  if (opl_sinenet_check_config(&c, err)) return err ? (err->status = OPL_ERR_FORMAT) : OPL_ERR_FORMAT;
  if ((st = opl_model_meta_int(kv, n, "sinenet", "sinenet.param_count", 0, INT64_MAX, &v, err))) return st;
  if (v != opl_sinenet_param_count(&c))
    return opl_err_set(err, OPL_ERR_FORMAT,
                       "sinenet: attribute 'sinenet.param_count' = %lld, the configuration gives %lld", (long long)v,
                       (long long)opl_sinenet_param_count(&c));
  memcpy(config, &c, sizeof c);
  return OPL_OK;
}

static int kind_set_io(void *config, int sdim, int64_t cin, int64_t cout, opl_err *err) {
  opl_sinenet_config *cfg = config;
  return opl_model_set_io_2d("sinenet", sdim, cin, cout, &cfg->in_channels, &cfg->out_channels, err);
}

const opl_model_kind opl_sinenet_kind = {
    .name = "sinenet",
    .config_size = sizeof(opl_sinenet_config),
    .create = kind_create,
    .config_from_meta = kind_from_meta,
    .set_io = kind_set_io,
};
