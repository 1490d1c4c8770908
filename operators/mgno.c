/* opl operators — MgNO (see mgno.h). The layer layout follows the authors' MgConv_DC / MgNO_DC
 * (models.py of the paper's code): the first smoothing step of the finest level is u = S f (no
 * A), restriction is Pi u and R f (the residual restriction is off, use_res = False, so the A
 * the authors construct for it is never registered and carries no parameters), prolongation is
 * one transposed convolution per level added to the level's u.
 *
 * Parameters of layer i, in this order (all names "mgno.<i>.<what>"):
 *   Sinit; for each smoothing pair k in forward order (level 0 pre steps after the first, then
 *   levels 1..L-1 pre steps, then levels L-2..0 post steps): A<k>, S<k>; Pi<l>, R<l> for
 *   l = 1..L-1; RT<l> for l = 0..L-2; W, b. Last "mgno.proj". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "operators/mgno.h"
#include "core/init.h"

#define MGNO_META_VERSION 1
#define MGNO_META_VERSION_NS 2 /* adds mgno.variant, mgno.ln_x, mgno.ln_y */
#define MGNO_LN_EPS 1e-5       /* nn.LayerNorm's default */

/* The NS preset (navier.py's defaults for MgNO_NS). */
static void preset_ns(opl_mgno_config *cfg) {
  cfg->layers = 5;
  cfg->levels = 5;
  cfg->channels_u = 32;
  for (int l = 0; l < 5; l++) cfg->iters[l][0] = l >= 3 ? 2 : 1;
  cfg->pad = OPL_PAD_CIRCULAR;
  cfg->variant = OPL_MGNO_NS;
  cfg->ln_res[0] = cfg->ln_res[1] = 64;
}

int opl_mgno_preset(const char *name, opl_mgno_config *cfg, opl_err *err) {
  memset(cfg, 0, sizeof *cfg);
  cfg->channels_u = 24;
  cfg->in_channels = 1;
  cfg->out_channels = 1;
  cfg->pad = OPL_PAD_ZERO;
  if (name && !strcmp(name, "darcy-rough")) {
    cfg->layers = 4;
    cfg->levels = 6;
    for (int l = 0; l < 6; l++) cfg->iters[l][0] = l == 5 ? 2 : 1;
    return OPL_OK;
  }
  if (name && !strcmp(name, "darcy-smooth")) {
    cfg->layers = 5;
    cfg->levels = 5;
    for (int l = 0; l < 5; l++) cfg->iters[l][0] = l >= 3 ? 2 : 1;
    return OPL_OK;
  }
  if (name && !strcmp(name, "ns")) {
    preset_ns(cfg);
    return OPL_OK;
  }
  return opl_err_set(err, OPL_ERR_ARG, "mgno: unknown preset '%s' (expected %s)", name ? name : "(null)",
                     OPL_MGNO_PRESETS);
}

int opl_mgno_parse_iters(const char *s, opl_mgno_config *cfg, opl_err *err) {
  int levels = 0, it[OPL_MGNO_MAX_LEVELS][2];
  const char *p = s;
  if (!s || !*s) return opl_err_set(err, OPL_ERR_ARG, "mgno: empty num_iteration list (expected e.g. \"1,0;1,0;2,0\")");
  for (;;) {
    if (levels == OPL_MGNO_MAX_LEVELS)
      return opl_err_set(err, OPL_ERR_ARG, "mgno: num_iteration list '%s' has more than %d levels", s,
                         OPL_MGNO_MAX_LEVELS);
    int pre, post, used = 0;
    if (sscanf(p, "%d,%d%n", &pre, &post, &used) != 2 || used == 0 || p[0] == ' ')
      return opl_err_set(err, OPL_ERR_ARG,
                         "mgno: num_iteration list '%s': level %d is not 'pre,post' (expected levels "
                         "separated by ';', e.g. \"1,0;1,0;2,0\")",
                         s, levels);
    if (pre < 0 || post < 0 || pre > 16 || post > 16)
      return opl_err_set(err, OPL_ERR_ARG, "mgno: num_iteration list '%s': level %d has [%d, %d], expected counts 0..16",
                         s, levels, pre, post);
    it[levels][0] = pre;
    it[levels][1] = post;
    levels++;
    p += used;
    if (*p == 0) break;
    if (*p != ';')
      return opl_err_set(err, OPL_ERR_ARG, "mgno: num_iteration list '%s': unexpected '%c' after level %d", s, *p,
                         levels - 1);
    p++;
  }
  cfg->levels = levels;
  memcpy(cfg->iters, it, sizeof it[0] * (size_t)levels);
  return OPL_OK;
}

static int count_pairs(const opl_mgno_config *cfg) {
  int n = 0;
  for (int l = 0; l < cfg->levels; l++) n += cfg->iters[l][0] + cfg->iters[l][1];
  return n - 1;
}

int opl_mgno_check_config(const opl_mgno_config *cfg, opl_err *err) {
  if (cfg->layers < 1 || cfg->layers > OPL_MGNO_MAX_LAYERS)
    return opl_err_set(err, OPL_ERR_ARG, "mgno: %d layers, expected 1..%d", cfg->layers, OPL_MGNO_MAX_LAYERS);
  if (cfg->levels < 1 || cfg->levels > OPL_MGNO_MAX_LEVELS)
    return opl_err_set(err, OPL_ERR_ARG, "mgno: %d levels, expected 1..%d", cfg->levels, OPL_MGNO_MAX_LEVELS);
  if (cfg->channels_u < 1 || cfg->in_channels < 1 || cfg->out_channels < 1 || cfg->channels_u > 1 << 16 ||
      cfg->in_channels > 1 << 16 || cfg->out_channels > 1 << 16)
    return opl_err_set(err, OPL_ERR_ARG, "mgno: channels u %lld, in %lld, out %lld: expected 1..65536",
                       (long long)cfg->channels_u, (long long)cfg->in_channels, (long long)cfg->out_channels);
  for (int l = 0; l < cfg->levels; l++)
    if (cfg->iters[l][0] < 0 || cfg->iters[l][1] < 0 || cfg->iters[l][0] > 16 || cfg->iters[l][1] > 16)
      return opl_err_set(err, OPL_ERR_ARG, "mgno: num_iteration level %d is [%d, %d], expected counts 0..16", l,
                         cfg->iters[l][0], cfg->iters[l][1]);
  if (cfg->iters[0][0] < 1)
    return opl_err_set(err, OPL_ERR_ARG,
                       "mgno: num_iteration level 0 has %d pre-smoothing steps; MgNO needs >= 1 (its first step "
                       "u = S f starts the cycle)",
                       cfg->iters[0][0]);
  if (cfg->iters[cfg->levels - 1][1] != 0)
    return opl_err_set(err, OPL_ERR_ARG,
                       "mgno: num_iteration: the coarsest level (%d) has %d post-smoothing steps; MgNO's V-cycle "
                       "has no upward pass there, expected 0",
                       cfg->levels - 1, cfg->iters[cfg->levels - 1][1]);
  if (count_pairs(cfg) > OPL_MGNO_MAX_PAIRS)
    return opl_err_set(err, OPL_ERR_ARG, "mgno: %d smoothing steps per layer, at most %d", count_pairs(cfg) + 1,
                       OPL_MGNO_MAX_PAIRS + 1);
  if (cfg->pad != OPL_PAD_ZERO && cfg->pad != OPL_PAD_CIRCULAR && cfg->pad != OPL_PAD_REFLECT)
    return opl_err_set(err, OPL_ERR_ARG, "mgno: padding must be zeros, circular or reflect");
  if (cfg->variant != OPL_MGNO_DC && cfg->variant != OPL_MGNO_NS)
    return opl_err_set(err, OPL_ERR_ARG, "mgno: variant %d, expected dc (0) or ns (1)", cfg->variant);
  if (cfg->variant == OPL_MGNO_NS) {
    int64_t q = (int64_t)1 << (cfg->levels - 1);
    for (int a = 0; a < 2; a++)
      if (cfg->ln_res[a] < q || cfg->ln_res[a] % q || cfg->ln_res[a] > 1 << 16)
        return opl_err_set(err, OPL_ERR_ARG,
                           "mgno: the NS variant's LayerNorm grid %lld x %lld: each extent must be a multiple of "
                           "2^(levels-1) = %lld, at most 65536",
                           (long long)cfg->ln_res[0], (long long)cfg->ln_res[1], (long long)q);
    if (cfg->in_channels < cfg->out_channels)
      return opl_err_set(err, OPL_ERR_ARG,
                         "mgno: the NS variant's global skip adds the input's last %lld channels to the output; the "
                         "input has %lld",
                         (long long)cfg->out_channels, (long long)cfg->in_channels);
  }
  return OPL_OK;
}

/* NS: the LayerNorm parameters of one layer, 2 Cu (X/2^l)(Y/2^l) per level l < L-1. */
static int64_t ns_norm_count(const opl_mgno_config *cfg) {
  int64_t n = 0;
  for (int l = 0; l + 1 < cfg->levels; l++) n += 2 * cfg->channels_u * (cfg->ln_res[0] >> l) * (cfg->ln_res[1] >> l);
  return n;
}

/* Parameters of layer i (f-channels cf), by the formula of mgno.h. */
static int64_t layer_count(const opl_mgno_config *cfg, int64_t cf) {
  int64_t cu = cfg->channels_u, L = cfg->levels;
  int64_t conv = (L - 1) * 16 * cu * cu + (L - 1) * 9 * (cu * cu + cf * cf) + 9 * cf * cu +
                 (int64_t)count_pairs(cfg) * 2 * 9 * cf * cu;
  return cfg->variant == OPL_MGNO_NS ? conv + ns_norm_count(cfg) : conv + cf * cu + cu;
}

int64_t opl_mgno_param_count(const opl_mgno_config *cfg) {
  int64_t n = cfg->channels_u * cfg->out_channels;
  for (int i = 0; i < cfg->layers; i++) n += layer_count(cfg, i ? cfg->channels_u : cfg->in_channels);
  return n;
}

/* ------------------------------------------------------------------ forward */

static opl_tensor *conv3(opl_ctx *c, const opl_mgno *m, opl_tensor *x, opl_tensor *w, int stride) {
  opl_conv_opts o = {.stride = {stride, stride}, .padding = {1, 1}, .pad_mode = m->cfg.pad};
  return opl_conv(c, x, w, NULL, &o);
}

/* u + S (f - A u): u (N, Cu, X, Y), f (N, Cf, X, Y). The temporaries are released (opl_release)
 * once used: A u and S r go back to the arena at once (no backward reads them), r stays as the
 * input S's backward reads. */
static opl_tensor *smooth(opl_ctx *c, const opl_mgno *m, opl_tensor *u, opl_tensor *f, opl_tensor *A,
                          opl_tensor *S) {
  opl_tensor *Au = conv3(c, m, u, A, 1), *r = opl_sub(c, f, Au);
  opl_release(c, Au);
  opl_tensor *Sr = conv3(c, m, r, S, 1), *un = opl_add(c, u, Sr);
  opl_release(c, r);
  opl_release(c, Sr);
  return un;
}

/* One MgNO layer: v (N, Cf, X, Y) -> gelu(V(v) + W v + b) (N, Cu, X, Y). */
static opl_tensor *layer_forward(opl_ctx *c, const opl_mgno *m, const opl_mgno_layer *ly, opl_tensor *v) {
  const opl_mgno_config *g = &m->cfg;
  opl_tensor *u[OPL_MGNO_MAX_LEVELS], *f[OPL_MGNO_MAX_LEVELS];
  int k = 0;
  f[0] = v;
  u[0] = conv3(c, m, v, ly->S0, 1);
  for (int i = 1; i < g->iters[0][0]; i++, k++) u[0] = smooth(c, m, u[0], f[0], ly->A[k], ly->S[k]);
  for (int l = 1; l < g->levels; l++) {
    u[l] = conv3(c, m, u[l - 1], ly->Pi[l], 2);
    f[l] = conv3(c, m, f[l - 1], ly->R[l], 2);
    for (int i = 0; i < g->iters[l][0]; i++, k++) u[l] = smooth(c, m, u[l], f[l], ly->A[k], ly->S[k]);
  }
  opl_conv_opts up = {.stride = {2, 2}, .padding = {1, 1}};
  for (int l = g->levels - 2; l >= 0; l--) {
    opl_tensor *p = opl_conv_transpose(c, u[l + 1], ly->RT[l], NULL, &up);
    /* an odd extent 2m - 1 restricts to m points and prolongs back to 2m: drop the last row /
     * column (then taps 0..2 of RT are the node-centred 3x3 stencil of the authors'
     * MgConv_DC_smooth on odd grids) */
    if (p && u[l] && (p->shape[2] != u[l]->shape[2] || p->shape[3] != u[l]->shape[3])) {
      int64_t lo[2] = {0, 0}, hi[2] = {p->shape[2] - u[l]->shape[2], p->shape[3] - u[l]->shape[3]};
      opl_tensor *q = opl_crop(c, p, 2, lo, hi);
      opl_release(c, p);
      p = q;
    }
    u[l] = opl_add(c, u[l], p);
    opl_release(c, p);
    for (int i = 0; i < g->iters[l][1]; i++, k++) u[l] = smooth(c, m, u[l], f[l], ly->A[k], ly->S[k]);
  }
  /* Every temporary no backward reads is released once used (opl_release), so that the step
   * keeps what PyTorch keeps: per full-resolution layer output S u0, the input and output of
   * GELU; the transposed convolution's output, u0 + RT u1 and W v + b go back to the arena. */
  opl_tensor *h = opl_channel_linear(c, v, ly->W, ly->b), *z = opl_add(c, u[0], h);
  opl_release(c, u[0]);
  opl_release(c, h);
  return opl_gelu(c, z);
}

/* One layer of the NS variant (the authors' MgConv, then the activation): v (N, Cf, X, Y) ->
 * gelu(V(v)) (N, Cu, X, Y), V with u_l = LayerNorm_l(u_l + RT_l u_{l+1}) on the way up. */
static opl_tensor *layer_forward_ns(opl_ctx *c, const opl_mgno *m, const opl_mgno_layer *ly, opl_tensor *v) {
  const opl_mgno_config *g = &m->cfg;
  opl_tensor *u[OPL_MGNO_MAX_LEVELS], *f[OPL_MGNO_MAX_LEVELS];
  int k = 0;
  f[0] = v;
  u[0] = conv3(c, m, v, ly->S0, 1);
  for (int i = 1; i < g->iters[0][0]; i++, k++) u[0] = smooth(c, m, u[0], f[0], ly->A[k], ly->S[k]);
  for (int l = 1; l < g->levels; l++) {
    u[l] = conv3(c, m, u[l - 1], ly->Pi[l], 2);
    f[l] = conv3(c, m, f[l - 1], ly->R[l], 2);
    for (int i = 0; i < g->iters[l][0]; i++, k++) u[l] = smooth(c, m, u[l], f[l], ly->A[k], ly->S[k]);
  }
  opl_conv_opts up = {.stride = {2, 2}, .padding = {1, 1}};
  for (int l = g->levels - 2; l >= 0; l--) {
    u[l] = opl_layer_norm(c, opl_add(c, u[l], opl_conv_transpose(c, u[l + 1], ly->RT[l], NULL, &up)), 3, ly->ln_w[l],
                          ly->ln_b[l], MGNO_LN_EPS);
    for (int i = 0; i < g->iters[l][1]; i++, k++) u[l] = smooth(c, m, u[l], f[l], ly->A[k], ly->S[k]);
  }
  return opl_gelu(c, u[0]);
}

/* The NS variant's model: x (N, Cin, X, Y) -> proj(layers(x)) + x[:, Cin - Cout:] (N, Cout, X, Y). */
static opl_tensor *forward_ns(opl_ctx *c, const opl_mgno *m, opl_tensor *x) {
  opl_tensor *h = x;
  for (int i = 0; i < m->cfg.layers; i++) h = layer_forward_ns(c, m, &m->layer[i], h);
  int64_t ci = m->cfg.in_channels, co = m->cfg.out_channels;
  opl_tensor *skip = ci == co ? x : opl_slice(c, x, 1, ci - co, co);
  return opl_add(c, opl_channel_linear(c, h, m->proj, NULL), skip);
}

/* The smallest extent of each spatial axis: every restriction (3x3, stride 2, padding 1, n points
 * to ceil(n / 2)) must start from at least 2 points, so 2^(levels-2) + 1 (1 for one level). */
static int64_t min_extent(const opl_mgno_config *g) { return g->levels < 2 ? 1 : ((int64_t)1 << (g->levels - 2)) + 1; }

static int ops_check_input(const void *self, int rank, const int64_t *shape, const char *const *axis,
                           opl_err *err) {
  const opl_mgno *m = self;
  char b[96];
  if (rank != 4 || shape[1] != m->cfg.in_channels)
    return opl_err_set(err, OPL_ERR_SHAPE, "mgno: input %s must be (N, %lld, X, Y)", opl_shape_str(b, rank, shape),
                       (long long)m->cfg.in_channels);
  int64_t q = min_extent(&m->cfg);
  for (int a = 0; a < 2; a++)
    if (shape[2 + a] < q)
    {
      char where[160];
      if (axis && axis[a]) snprintf(where, sizeof where, "%s", axis[a]);
      else snprintf(where, sizeof where, "%lld points on spatial axis %d", (long long)shape[2 + a], a);
      return opl_err_set(err, OPL_ERR_SHAPE,
                         "mgno: %s; MgNO with %d levels halves the grid %d times (n -> ceil(n/2)), each from at "
                         "least 2 points, so each spatial extent must be at least %lld",
                         where, m->cfg.levels, m->cfg.levels - 1, (long long)q);
    }
  if (m->cfg.variant == OPL_MGNO_NS && (shape[2] != m->cfg.ln_res[0] || shape[3] != m->cfg.ln_res[1]))
    return opl_err_set(err, OPL_ERR_SHAPE,
                       "mgno: input %s; the NS variant's LayerNorms are sized for a %lld x %lld grid (its "
                       "elementwise weights), it takes no other",
                       opl_shape_str(b, rank, shape), (long long)m->cfg.ln_res[0], (long long)m->cfg.ln_res[1]);
  return OPL_OK;
}

static opl_tensor *ops_forward(opl_ctx *c, const void *self, opl_tensor *x) {
  const opl_mgno *m = self;
  if (!opl_check_input(c, "mgno", "x", x, 4, 0)) return NULL;
  opl_err e = {0};
  if (ops_check_input(self, x->rank, x->shape, NULL, &e)) {
    opl_ctx_error(c, e.status, "%s", e.msg);
    return NULL;
  }
  if (m->cfg.variant == OPL_MGNO_NS) return forward_ns(c, m, x);
  opl_tensor *h = x;
  for (int i = 0; i < m->cfg.layers; i++) h = layer_forward(c, m, &m->layer[i], h);
  return opl_channel_linear(c, h, m->proj, NULL);
}

/* ------------------------------------------------------------------ the model interface */

static const char *pad_name(opl_pad_mode p) {
  return p == OPL_PAD_CIRCULAR ? "circular" : p == OPL_PAD_REFLECT ? "reflect" : "zeros";
}

static void iters_string(const opl_mgno_config *g, char *buf, size_t cap) {
  size_t n = 0;
  buf[0] = 0;
  for (int l = 0; l < g->levels && n < cap; l++) {
    int w = snprintf(buf + n, cap - n, "%s%d,%d", l ? ";" : "", g->iters[l][0], g->iters[l][1]);
    if (w < 0) break;
    n += (size_t)w;
  }
}

static int ops_to_meta(const void *self, opl_kv *kv) {
  const opl_mgno *m = self;
  int n = 0;
  kv[n++] = (opl_kv)OPL_KVS("model", "mgno");
  int ns = m->cfg.variant == OPL_MGNO_NS;
  kv[n++] = (opl_kv)OPL_KVI("mgno.version", ns ? MGNO_META_VERSION_NS : MGNO_META_VERSION);
  kv[n++] = (opl_kv)OPL_KVI("mgno.layers", m->cfg.layers);
  kv[n++] = (opl_kv)OPL_KVI("mgno.levels", m->cfg.levels);
  kv[n++] = (opl_kv)OPL_KVS("mgno.iters", m->iters_str);
  kv[n++] = (opl_kv)OPL_KVI("mgno.channels_u", m->cfg.channels_u);
  kv[n++] = (opl_kv)OPL_KVI("mgno.in_channels", m->cfg.in_channels);
  kv[n++] = (opl_kv)OPL_KVI("mgno.out_channels", m->cfg.out_channels);
  kv[n++] = (opl_kv)OPL_KVS("mgno.padding", pad_name(m->cfg.pad));
  kv[n++] = (opl_kv)OPL_KVI("mgno.param_count", opl_mgno_param_count(&m->cfg));
  if (ns) {
    kv[n++] = (opl_kv)OPL_KVS("mgno.variant", "ns");
    kv[n++] = (opl_kv)OPL_KVI("mgno.ln_x", m->cfg.ln_res[0]);
    kv[n++] = (opl_kv)OPL_KVI("mgno.ln_y", m->cfg.ln_res[1]);
  }
  return n;
}

static void ops_describe(const void *self, char *buf, size_t cap) {
  const opl_mgno *m = self;
  char ns[96] = "";
  if (m->cfg.variant == OPL_MGNO_NS)
    snprintf(ns, sizeof ns, ", Navier-Stokes variant: LayerNorms on %lld x %lld, global skip",
             (long long)m->cfg.ln_res[0], (long long)m->cfg.ln_res[1]);
  snprintf(buf, cap, "MgNO (%d layers, %lld u-channels, %lld f-channels, %d levels, num_iteration %s, %s padding%s)",
           m->cfg.layers, (long long)m->cfg.channels_u, (long long)m->cfg.in_channels, m->cfg.levels, m->iters_str,
           pad_name(m->cfg.pad), ns);
}

/* The NS variant's rows: per layer the V-cycle's convolutions, its LayerNorms + gelu; the
 * projection with the skip. */
static int summary_ns(const opl_mgno *m, opl_model_row *rows, int cap) {
  const opl_mgno_config *g = &m->cfg;
  int n = 0;
  for (int i = 0; i < g->layers; i++) {
    int64_t cf = i ? g->channels_u : g->in_channels;
    if (n < cap) {
      snprintf(rows[n].name, sizeof rows[n].name, "mgconv%d (V-cycle, %d levels)", i, g->levels);
      snprintf(rows[n].shape, sizeof rows[n].shape, "(N, %lld, X, Y)", (long long)g->channels_u);
      rows[n].params = layer_count(g, cf) - ns_norm_count(g);
    }
    n++;
    if (n < cap) {
      snprintf(rows[n].name, sizeof rows[n].name, "norm%d (%d LayerNorms) + gelu", i, g->levels - 1);
      snprintf(rows[n].shape, sizeof rows[n].shape, "(N, %lld, %lld, %lld)", (long long)g->channels_u,
               (long long)g->ln_res[0], (long long)g->ln_res[1]);
      rows[n].params = ns_norm_count(g);
    }
    n++;
  }
  if (n < cap) {
    snprintf(rows[n].name, sizeof rows[n].name, "proj (1x1, no bias) + input skip");
    snprintf(rows[n].shape, sizeof rows[n].shape, "(N, %lld, X, Y)", (long long)g->out_channels);
    rows[n].params = g->out_channels * g->channels_u;
  }
  return n + 1;
}

static int ops_summary(const void *self, opl_model_row *rows, int cap) {
  const opl_mgno *m = self;
  const opl_mgno_config *g = &m->cfg;
  if (g->variant == OPL_MGNO_NS) return summary_ns(m, rows, cap);
  int n = 0;
  for (int i = 0; i < g->layers; i++) {
    int64_t cf = i ? g->channels_u : g->in_channels;
    if (n < cap) {
      snprintf(rows[n].name, sizeof rows[n].name, "mgconv%d (V-cycle, %d levels)", i, g->levels);
      snprintf(rows[n].shape, sizeof rows[n].shape, "(N, %lld, X, Y)", (long long)g->channels_u);
      rows[n].params = layer_count(g, cf) - cf * g->channels_u - g->channels_u;
    }
    n++;
    if (n < cap) {
      snprintf(rows[n].name, sizeof rows[n].name, "linear%d (1x1) + gelu", i);
      snprintf(rows[n].shape, sizeof rows[n].shape, "(N, %lld, X, Y)", (long long)g->channels_u);
      rows[n].params = cf * g->channels_u + g->channels_u;
    }
    n++;
  }
  if (n < cap) {
    snprintf(rows[n].name, sizeof rows[n].name, "proj (1x1, no bias)");
    snprintf(rows[n].shape, sizeof rows[n].shape, "(N, %lld, X, Y)", (long long)g->out_channels);
    rows[n].params = g->out_channels * g->channels_u;
  }
  return n + 1;
}

static void ops_free(void *self) { free(self); }

const opl_model_ops opl_mgno_ops = {
    .name = "mgno",
    .forward = ops_forward,
    .check_input = ops_check_input,
    .to_meta = ops_to_meta,
    .describe = ops_describe,
    .summary = ops_summary,
    .free = ops_free,
    .samplewise = 1,
};

/* Add a convolution weight (Co, Ci, K, K) named "mgno.<i>.<what>", Kaiming-uniform as PyTorch's
 * Conv2d (fan_in Ci K K) or, transposed (Ci, Co, K, K), as ConvTranspose2d (fan_in Co K K). */
static opl_tensor *add_w(opl_params *p, opl_rng *rng, int i, const char *what, int64_t d0, int64_t d1, int64_t k,
                         opl_err *err) {
  char name[64];
  snprintf(name, sizeof name, "mgno.%d.%s", i, what);
  opl_tensor *w = opl_params_add(p, name, OPL_DIMS(d0, d1, k, k), 0, err);
  if (w && opl_init_kaiming_uniform(rng, w, d1 * k * k, OPL_KAIMING_A_DEFAULT, err)) return NULL;
  return w;
}

/* NS: layer i's LayerNorm weights "mgno.<i>.ln<l>.w" (ones) and biases "mgno.<i>.ln<l>.b" (zeros),
 * (Cu, X/2^l, Y/2^l) for l = 0..L-2, as nn.LayerNorm's initialization. */
static int add_norms(opl_params *p, const opl_mgno_config *cfg, int i, opl_mgno_layer *ly, opl_err *err) {
  char name[64];
  for (int l = 0; l + 1 < cfg->levels; l++) {
    int64_t cu = cfg->channels_u, x = cfg->ln_res[0] >> l, y = cfg->ln_res[1] >> l;
    snprintf(name, sizeof name, "mgno.%d.ln%d.w", i, l);
    if (!(ly->ln_w[l] = opl_params_add(p, name, OPL_DIMS(cu, x, y), 0, err))) return err ? err->status : OPL_ERR_NOMEM;
    if (opl_init_constant(ly->ln_w[l], 1.0, err)) return err ? err->status : OPL_ERR_ARG;
    snprintf(name, sizeof name, "mgno.%d.ln%d.b", i, l);
    if (!(ly->ln_b[l] = opl_params_add(p, name, OPL_DIMS(cu, x, y), 0, err))) return err ? err->status : OPL_ERR_NOMEM;
    if (opl_init_constant(ly->ln_b[l], 0.0, err)) return err ? err->status : OPL_ERR_ARG;
  }
  return OPL_OK;
}

static int kind_create(opl_model *mo, const void *config, opl_rng *rng, opl_err *err) {
  const opl_mgno_config *cfg = config;
  int st = opl_mgno_check_config(cfg, err);
  if (st) return st;
  opl_rng local;
  if (!rng) {
    opl_rng_seed(&local, 0); /* loading: the file overwrites the values */
    rng = &local;
  }
  opl_mgno *m = calloc(1, sizeof *m);
  if (!m) return opl_err_set(err, OPL_ERR_NOMEM, "mgno: out of memory");
  m->cfg = *cfg;
  m->npairs = count_pairs(cfg);
  iters_string(cfg, m->iters_str, sizeof m->iters_str);
  opl_params *p = &mo->params;
  int64_t cu = cfg->channels_u;
  char what[32];
  for (int i = 0; i < cfg->layers; i++) {
    opl_mgno_layer *ly = &m->layer[i];
    int64_t cf = i ? cu : cfg->in_channels;
    ly->cf = cf;
    if (!(ly->S0 = add_w(p, rng, i, "Sinit", cu, cf, 3, err))) goto fail;
    for (int k = 0; k < m->npairs; k++) {
      snprintf(what, sizeof what, "A%d", k);
      if (!(ly->A[k] = add_w(p, rng, i, what, cf, cu, 3, err))) goto fail;
      snprintf(what, sizeof what, "S%d", k);
      if (!(ly->S[k] = add_w(p, rng, i, what, cu, cf, 3, err))) goto fail;
    }
    for (int l = 1; l < cfg->levels; l++) {
      snprintf(what, sizeof what, "Pi%d", l);
      if (!(ly->Pi[l] = add_w(p, rng, i, what, cu, cu, 3, err))) goto fail;
      snprintf(what, sizeof what, "R%d", l);
      if (!(ly->R[l] = add_w(p, rng, i, what, cf, cf, 3, err))) goto fail;
    }
    for (int l = 0; l + 1 < cfg->levels; l++) {
      snprintf(what, sizeof what, "RT%d", l);
      if (!(ly->RT[l] = add_w(p, rng, i, what, cu, cu, 4, err))) goto fail;
    }
    if (cfg->variant == OPL_MGNO_NS) {
      if (add_norms(p, cfg, i, ly, err)) goto fail;
      continue;
    }
    char name[64];
    snprintf(name, sizeof name, "mgno.%d.W", i);
    if (!(ly->W = opl_params_add(p, name, OPL_DIMS(cu, cf), 0, err))) goto fail;
    snprintf(name, sizeof name, "mgno.%d.b", i);
    if (!(ly->b = opl_params_add(p, name, OPL_DIMS(cu), 0, err))) goto fail;
    if (opl_init_kaiming_uniform(rng, ly->W, cf, OPL_KAIMING_A_DEFAULT, err) ||
        opl_init_bias_uniform(rng, ly->b, cf, err))
      goto fail;
  }
  if (!(m->proj = opl_params_add(p, "mgno.proj", OPL_DIMS(cfg->out_channels, cu), 0, err))) goto fail;
  if (opl_init_kaiming_uniform(rng, m->proj, cu, OPL_KAIMING_A_DEFAULT, err)) goto fail;
  mo->ops = &opl_mgno_ops;
  mo->self = m;
  mo->sdim = 2;
  mo->in_channels = cfg->in_channels;
  mo->out_channels = cfg->out_channels;
  return OPL_OK;
fail:
  free(m);
  return err && err->status ? err->status : OPL_ERR_ARG;
}


/* Version 2's NS attributes into c: "mgno.variant" = "ns", "mgno.ln_x", "mgno.ln_y". */
static int ns_from_meta(const opl_kv *kv, int n, opl_mgno_config *c, opl_err *err) {
  const opl_kv *va = opl_kv_find(kv, n, "mgno.variant");
  if (!va || va->type != OPL_KV_STR || !va->s || strcmp(va->s, "ns"))
    return opl_err_set(err, OPL_ERR_FORMAT, "mgno: version 2 needs attribute 'mgno.variant' = 'ns'");
  c->variant = OPL_MGNO_NS;
  int st = opl_model_meta_int(kv, n, "mgno", "mgno.ln_x", 1, 1 << 16, &c->ln_res[0], err);
  return st ? st : opl_model_meta_int(kv, n, "mgno", "mgno.ln_y", 1, 1 << 16, &c->ln_res[1], err);
}

static int kind_from_meta(const opl_kv *kv, int n, void *config, opl_err *err) {
  const opl_kv *model = opl_kv_find(kv, n, "model");
  if (!model || model->type != OPL_KV_STR || !model->s || strcmp(model->s, "mgno"))
    return opl_err_set(err, OPL_ERR_FORMAT, "mgno: attribute 'model' is not 'mgno'");
  opl_mgno_config c;
  memset(&c, 0, sizeof c);
  int64_t v = 0;
  int st;
  if ((st = opl_model_meta_int(kv, n, "mgno", "mgno.version", 1, MGNO_META_VERSION_NS, &v, err))) return st;
  if (v == MGNO_META_VERSION_NS && (st = ns_from_meta(kv, n, &c, err))) return st;
  if ((st = opl_model_meta_int(kv, n, "mgno", "mgno.layers", 1, OPL_MGNO_MAX_LAYERS, &v, err))) return st;
  c.layers = (int)v;
  if ((st = opl_model_meta_int(kv, n, "mgno", "mgno.channels_u", 1, 1 << 16, &c.channels_u, err))) return st;
  if ((st = opl_model_meta_int(kv, n, "mgno", "mgno.in_channels", 1, 1 << 16, &c.in_channels, err))) return st;
  if ((st = opl_model_meta_int(kv, n, "mgno", "mgno.out_channels", 1, 1 << 16, &c.out_channels, err))) return st;
  const opl_kv *it = opl_kv_find(kv, n, "mgno.iters");
  if (!it || it->type != OPL_KV_STR || !it->s)
    return opl_err_set(err, OPL_ERR_FORMAT, "mgno: attribute 'mgno.iters' is missing or not a string");
  if ((st = opl_mgno_parse_iters(it->s, &c, err))) return err ? (err->status = OPL_ERR_FORMAT) : OPL_ERR_FORMAT;
  if ((st = opl_model_meta_int(kv, n, "mgno", "mgno.levels", c.levels, c.levels, &v, err))) return st;
  const opl_kv *pad = opl_kv_find(kv, n, "mgno.padding");
  if (!pad || pad->type != OPL_KV_STR || !pad->s ||
      (strcmp(pad->s, "zeros") && strcmp(pad->s, "circular") && strcmp(pad->s, "reflect")))
    return opl_err_set(err, OPL_ERR_FORMAT, "mgno: attribute 'mgno.padding' must be 'zeros', 'circular' or 'reflect'");
  c.pad = !strcmp(pad->s, "zeros") ? OPL_PAD_ZERO : !strcmp(pad->s, "circular") ? OPL_PAD_CIRCULAR : OPL_PAD_REFLECT;
  if (opl_mgno_check_config(&c, err)) return err ? (err->status = OPL_ERR_FORMAT) : OPL_ERR_FORMAT;
  if ((st = opl_model_meta_int(kv, n, "mgno", "mgno.param_count", 0, INT64_MAX, &v, err))) return st;
  if (v != opl_mgno_param_count(&c))
    return opl_err_set(err, OPL_ERR_FORMAT, "mgno: attribute 'mgno.param_count' = %lld, the configuration gives %lld",
                       (long long)v, (long long)opl_mgno_param_count(&c));
  memcpy(config, &c, sizeof c);
  return OPL_OK;
}

static int kind_set_io(void *config, int sdim, int64_t cin, int64_t cout, opl_err *err) {
  opl_mgno_config *cfg = config;
  return opl_model_set_io_2d("mgno", sdim, cin, cout, &cfg->in_channels, &cfg->out_channels, err);
}

const opl_model_kind opl_mgno_kind = {
    .name = "mgno",
    .config_size = sizeof(opl_mgno_config),
    .create = kind_create,
    .config_from_meta = kind_from_meta,
    .set_io = kind_set_io,
};
