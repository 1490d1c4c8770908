/* Convolutions (opl_conv, opl_conv_transpose): gradient checks (table), adjoint checks
 * (table), the defining identity <conv_transpose(y), x> = <y, conv(x)>, forward values
 * against naive direct loops written here, output sizes, threaded vs sequential paths, the
 * Winograd paths against im2col, the im2col scratch returned to the arena, and bad input. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/internal.h"
#include "tests/gradcheck.h"
#include "tests/tap.h"

#ifdef OPL_DOUBLE
#define VAL_RTOL 1e-12
#define VAL_ATOL 1e-12
#define DOT_TOL 1e-12
#else
#define VAL_RTOL 1e-5
#define VAL_ATOL 1e-5
#define DOT_TOL 1e-5
#endif

/* ------------------------------------------------------------ the op under test */

typedef struct tc {
  opl_conv_opts o;
  int transpose;   /* opl_conv_transpose instead of opl_conv */
  int bias;        /* in[2] is the bias */
  int wino;        /* 0: the default path choice; -2: im2col; 2 or 4: Winograd F(2x2) or F(4x4) */
} tc;

static opl_tensor *f_conv(opl_ctx *c, opl_tensor **x, const void *opt) {
  const tc *t = opt;
  opl_tensor *b = t->bias ? x[2] : NULL;
  /* the path is fixed when the op is recorded: its backward takes the same one */
  const int old = t->wino ? opl_conv_set_winograd(t->wino == -2 ? 0 : t->wino) : 0;
  opl_tensor *y = t->transpose ? opl_conv_transpose(c, x[0], x[1], b, &t->o) : opl_conv(c, x[0], x[1], b, &t->o);
  if (t->wino) opl_conv_set_winograd(old);
  return y;
}

#define IN(r, ...) {.rank = r, .shape = {__VA_ARGS__}}
#define NG(r, ...) {.rank = r, .shape = {__VA_ARGS__}, .no_grad = 1}

/* Options of the table rows. */
static const tc T_plain = {0};
static const tc T_bias = {.bias = 1};
static const tc T_s2p1 = {.o = {.stride = {2, 2, 2}, .padding = {1, 1, 1}}, .bias = 1};
static const tc T_s2p1_nb = {.o = {.stride = {2, 2, 2}, .padding = {1, 1, 1}}};
static const tc T_dil2 = {.o = {.dilation = {2, 2, 2}, .padding = {2, 1, 1}}, .bias = 1};
static const tc T_g2 = {.o = {.groups = 2, .padding = {1, 1, 1}}, .bias = 1};
static const tc T_circ = {.o = {.padding = {1, 2, 1}, .pad_mode = OPL_PAD_CIRCULAR}, .bias = 1};
static const tc T_repl = {.o = {.padding = {2, 1, 1}, .pad_mode = OPL_PAD_REPLICATE}};
static const tc T_refl = {.o = {.padding = {2, 1, 1}, .pad_mode = OPL_PAD_REFLECT}, .bias = 1};
static const tc T_refl_s2 = {.o = {.padding = {1, 1, 1}, .stride = {2, 2, 2}, .pad_mode = OPL_PAD_REFLECT}};
static const tc T_circ_g2_s2 = {.o = {.padding = {1, 1, 1}, .stride = {2, 1, 2}, .groups = 2,
                                      .pad_mode = OPL_PAD_CIRCULAR}};
static const tc T_repl_d2 = {.o = {.padding = {2, 2, 2}, .dilation = {2, 1, 2},
                                   .pad_mode = OPL_PAD_REPLICATE}, .bias = 1};
static const tc T_mixed2d = {.o = {.stride = {2, 1}, .padding = {1, 0}, .dilation = {1, 2}}};
static const tc T3d = {.o = {.stride = {2, 1, 1}, .padding = {1, 0, 1}}, .bias = 1};
static const tc Tt_s2op1 = {.o = {.stride = {2, 2, 2}, .padding = {1, 1, 1},
                                  .output_padding = {1, 1, 1}}, .transpose = 1, .bias = 1};
static const tc Tt_s2op1_nb = {.o = {.stride = {2, 2, 2}, .padding = {1, 1, 1},
                                     .output_padding = {1, 1, 1}}, .transpose = 1};
static const tc Tt_g2 = {.o = {.stride = {2, 1, 2}, .output_padding = {1, 0, 1}, .groups = 2},
                         .transpose = 1, .bias = 1};
static const tc Tt_dil = {.o = {.dilation = {2, 2, 2}, .output_padding = {1, 1, 1},
                                .padding = {1, 1, 1}}, .transpose = 1};
static const tc Tt_plain = {.transpose = 1};
/* Winograd F(2x2, 3x3) and F(4x4, 3x3) forced (2-D, 3x3, stride 1) */
static const tc W2_zero = {.o = {.padding = {1, 1}}, .bias = 1, .wino = 2};
static const tc W4_zero = {.o = {.padding = {1, 1}}, .bias = 1, .wino = 4};
static const tc W2_circ = {.o = {.padding = {1, 1}, .pad_mode = OPL_PAD_CIRCULAR}, .bias = 1, .wino = 2};
static const tc W4_circ = {.o = {.padding = {1, 1}, .pad_mode = OPL_PAD_CIRCULAR}, .bias = 1, .wino = 4};
static const tc W2_repl = {.o = {.padding = {2, 1}, .pad_mode = OPL_PAD_REPLICATE}, .wino = 2};
static const tc W4_refl = {.o = {.padding = {1, 2}, .pad_mode = OPL_PAD_REFLECT}, .wino = 4};
static const tc W4_valid = {.wino = 4};
static const tc W2_t = {.o = {.padding = {1, 1}}, .transpose = 1, .bias = 1, .wino = 2};
static const tc W4_t = {.o = {.padding = {1, 1}}, .transpose = 1, .wino = 4};

static const gc_case rows[] = {
    /* 1-D */
    {"conv1d", f_conv, &T_bias, 3, {IN(3, 2, 3, 9), IN(3, 4, 3, 3), IN(1, 4)}},
    {"conv1d no bias", f_conv, &T_plain, 2, {IN(3, 2, 3, 9), IN(3, 4, 3, 3)}},
    {"conv1d stride 2 padding 1", f_conv, &T_s2p1, 3, {IN(3, 2, 3, 10), IN(3, 2, 3, 3), IN(1, 2)}},
    {"conv1d dilation 2 padding 2", f_conv, &T_dil2, 3, {IN(3, 2, 2, 9), IN(3, 3, 2, 3), IN(1, 3)}},
    {"conv1d groups 2", f_conv, &T_g2, 3, {IN(3, 2, 4, 8), IN(3, 6, 2, 3), IN(1, 6)}},
    {"conv1d circular", f_conv, &T_circ, 3, {IN(3, 2, 2, 7), IN(3, 3, 2, 3), IN(1, 3)}},
    {"conv1d replicate", f_conv, &T_repl, 2, {IN(3, 2, 2, 7), IN(3, 3, 2, 4)}},
    {"conv1d reflect", f_conv, &T_refl, 3, {IN(3, 2, 2, 7), IN(3, 3, 2, 3), IN(1, 3)}},
    /* 2-D */
    {"conv2d", f_conv, &T_bias, 3, {IN(4, 2, 3, 6, 5), IN(4, 4, 3, 3, 2), IN(1, 4)}},
    {"conv2d stride 2 padding 1", f_conv, &T_s2p1_nb, 2, {IN(4, 2, 2, 7, 6), IN(4, 3, 2, 3, 3)}},
    {"conv2d dilation 2", f_conv, &T_dil2, 3, {IN(4, 1, 2, 7, 6), IN(4, 3, 2, 3, 3), IN(1, 3)}},
    {"conv2d stride (2,1) pad (1,0) dil (1,2)", f_conv, &T_mixed2d, 2,
     {IN(4, 2, 2, 6, 7), IN(4, 2, 2, 3, 3)}},
    {"conv2d groups 2", f_conv, &T_g2, 3, {IN(4, 2, 4, 5, 5), IN(4, 4, 2, 3, 3), IN(1, 4)}},
    {"conv2d circular", f_conv, &T_circ, 3, {IN(4, 2, 2, 5, 6), IN(4, 3, 2, 3, 3), IN(1, 3)}},
    {"conv2d replicate", f_conv, &T_repl, 2, {IN(4, 2, 2, 5, 4), IN(4, 3, 2, 3, 2)}},
    {"conv2d reflect", f_conv, &T_refl, 3, {IN(4, 2, 2, 5, 4), IN(4, 3, 2, 3, 3), IN(1, 3)}},
    {"conv2d reflect stride 2 (MgNO's restriction)", f_conv, &T_refl_s2, 2, {IN(4, 2, 3, 8, 6), IN(4, 2, 3, 3, 3)}},
    {"conv2d circular groups 2 stride (2,1)", f_conv, &T_circ_g2_s2, 2,
     {IN(4, 2, 4, 6, 5), IN(4, 2, 2, 3, 3)}},
    {"conv2d replicate dilation (2,1)", f_conv, &T_repl_d2, 3,
     {IN(4, 2, 2, 5, 5), IN(4, 2, 2, 3, 3), IN(1, 2)}},
    {"conv2d 1x1 (pointwise path)", f_conv, &T_bias, 3, {IN(4, 2, 3, 4, 5), IN(4, 4, 3, 1, 1), IN(1, 4)}},
    /* 3-D */
    {"conv3d stride (2,1,1) pad (1,0,1)", f_conv, &T3d, 3,
     {IN(5, 2, 2, 5, 4, 4), IN(5, 3, 2, 3, 2, 2), IN(1, 3)}},
    {"conv3d circular", f_conv, &T_circ, 3, {IN(5, 1, 2, 4, 5, 3), IN(5, 2, 2, 2, 3, 2), IN(1, 2)}},
    {"conv3d replicate", f_conv, &T_repl, 2, {IN(5, 1, 2, 4, 3, 3), IN(5, 2, 2, 3, 2, 2)}},
    {"conv3d reflect", f_conv, &T_refl, 3, {IN(5, 1, 2, 4, 3, 3), IN(5, 2, 2, 3, 3, 2), IN(1, 2)}},
    {"conv3d groups 2", f_conv, &T_g2, 3, {IN(5, 1, 4, 4, 3, 3), IN(5, 2, 2, 3, 3, 2), IN(1, 2)}},
    /* transposed */
    {"conv_transpose1d stride 2 pad 1 output_padding 1", f_conv, &Tt_s2op1, 3,
     {IN(3, 2, 3, 5), IN(3, 3, 2, 3), IN(1, 2)}},
    {"conv_transpose1d", f_conv, &Tt_plain, 2, {IN(3, 2, 3, 5), IN(3, 3, 2, 4)}},
    {"conv_transpose2d stride 2 pad 1 output_padding 1", f_conv, &Tt_s2op1_nb, 2,
     {IN(4, 2, 2, 4, 3), IN(4, 2, 3, 3, 3)}},
    {"conv_transpose2d groups 2 stride (2,1)", f_conv, &Tt_g2, 3,
     {IN(4, 2, 4, 3, 3), IN(4, 4, 1, 3, 2), IN(1, 2)}},
    {"conv_transpose2d dilation 2 output_padding 1", f_conv, &Tt_dil, 2,
     {IN(4, 1, 2, 3, 4), IN(4, 2, 2, 2, 3)}},
    {"conv_transpose3d stride 2 output_padding 1", f_conv, &Tt_s2op1, 3,
     {IN(5, 1, 2, 3, 2, 2), IN(5, 2, 2, 3, 2, 3), IN(1, 2)}},
    /* Winograd paths forced, odd extents (partial tiles at the edges) */
    {"conv2d F(2x2,3x3) zeros 5x7", f_conv, &W2_zero, 3, {IN(4, 2, 3, 5, 7), IN(4, 4, 3, 3, 3), IN(1, 4)}},
    {"conv2d F(4x4,3x3) zeros 7x6", f_conv, &W4_zero, 3, {IN(4, 2, 2, 7, 6), IN(4, 3, 2, 3, 3), IN(1, 3)}},
    {"conv2d F(2x2,3x3) circular 5x6", f_conv, &W2_circ, 3, {IN(4, 2, 2, 5, 6), IN(4, 3, 2, 3, 3), IN(1, 3)}},
    {"conv2d F(4x4,3x3) circular 6x9", f_conv, &W4_circ, 3, {IN(4, 3, 2, 6, 9), IN(4, 2, 2, 3, 3), IN(1, 2)}},
    {"conv2d F(2x2,3x3) replicate pad (2,1)", f_conv, &W2_repl, 2, {IN(4, 2, 2, 5, 4), IN(4, 3, 2, 3, 3)}},
    {"conv2d F(4x4,3x3) reflect pad (1,2)", f_conv, &W4_refl, 2, {IN(4, 2, 2, 5, 6), IN(4, 2, 2, 3, 3)}},
    {"conv2d F(4x4,3x3) no padding", f_conv, &W4_valid, 2, {IN(4, 2, 2, 7, 5), IN(4, 2, 2, 3, 3)}},
    {"conv_transpose2d F(2x2,3x3)", f_conv, &W2_t, 3, {IN(4, 2, 3, 5, 4), IN(4, 3, 2, 3, 3), IN(1, 2)}},
    {"conv_transpose2d F(4x4,3x3)", f_conv, &W4_t, 2, {IN(4, 2, 2, 6, 5), IN(4, 2, 3, 3, 3)}},
    {"conv2d F(4x4,3x3) batch 4 (threaded path)", f_conv, &W4_circ, 3,
     {IN(4, 4, 4, 18, 17), IN(4, 5, 4, 3, 3), IN(1, 5)}},
    /* large enough for the samples-over-threads path (with 2+ threads) */
    {"conv2d batch 4 (threaded path)", f_conv, &T_g2, 3,
     {IN(4, 4, 4, 24, 24), IN(4, 8, 2, 3, 3), IN(1, 8)}},
    {"conv_transpose2d batch 4 (threaded path)", f_conv, &Tt_s2op1, 3,
     {IN(4, 4, 8, 16, 16), IN(4, 8, 4, 3, 3), IN(1, 4)}},
};

static const gc_case adjoint_rows[] = {
    {"conv2d F(2x2,3x3) circular in x", f_conv, &W2_circ, 2, {IN(4, 2, 3, 7, 5), NG(4, 4, 3, 3, 3)}},
    {"conv2d F(2x2,3x3) circular in w", f_conv, &W2_circ, 2, {NG(4, 2, 3, 7, 5), IN(4, 4, 3, 3, 3)}},
    {"conv2d F(4x4,3x3) zeros in x", f_conv, &W4_zero, 2, {IN(4, 3, 2, 9, 6), NG(4, 3, 2, 3, 3)}},
    {"conv2d F(4x4,3x3) zeros in w", f_conv, &W4_zero, 2, {NG(4, 3, 2, 9, 6), IN(4, 3, 2, 3, 3)}},
    {"conv2d F(4x4,3x3) reflect in x", f_conv, &W4_refl, 2, {IN(4, 2, 2, 5, 6), NG(4, 2, 2, 3, 3)}},
    {"conv_transpose2d F(4x4,3x3) in x", f_conv, &W4_t, 2, {IN(4, 2, 2, 6, 5), NG(4, 2, 3, 3, 3)}},
    {"conv_transpose2d F(4x4,3x3) in w", f_conv, &W4_t, 2, {NG(4, 2, 2, 6, 5), IN(4, 2, 3, 3, 3)}},
    {"conv1d in x", f_conv, &T_s2p1_nb, 2, {IN(3, 2, 3, 10), NG(3, 2, 3, 3)}},
    {"conv1d in w", f_conv, &T_s2p1_nb, 2, {NG(3, 2, 3, 10), IN(3, 2, 3, 3)}},
    {"conv2d circular groups 2 in x", f_conv, &T_circ_g2_s2, 2, {IN(4, 2, 4, 6, 5), NG(4, 2, 2, 3, 3)}},
    {"conv2d circular groups 2 in w", f_conv, &T_circ_g2_s2, 2, {NG(4, 2, 4, 6, 5), IN(4, 2, 2, 3, 3)}},
    {"conv2d replicate in x", f_conv, &T_repl, 2, {IN(4, 2, 2, 5, 4), NG(4, 3, 2, 3, 2)}},
    {"conv2d replicate in w", f_conv, &T_repl, 2, {NG(4, 2, 2, 5, 4), IN(4, 3, 2, 3, 2)}},
    {"conv2d reflect stride 2 in x", f_conv, &T_refl_s2, 2, {IN(4, 2, 3, 8, 6), NG(4, 2, 3, 3, 3)}},
    {"conv2d reflect stride 2 in w", f_conv, &T_refl_s2, 2, {NG(4, 2, 3, 8, 6), IN(4, 2, 3, 3, 3)}},
    {"conv3d in x", f_conv, &T_s2p1_nb, 2, {IN(5, 2, 2, 5, 4, 4), NG(5, 3, 2, 3, 2, 2)}},
    {"conv3d in w", f_conv, &T_s2p1_nb, 2, {NG(5, 2, 2, 5, 4, 4), IN(5, 3, 2, 3, 2, 2)}},
    {"conv_transpose1d in x", f_conv, &Tt_s2op1_nb, 2, {IN(3, 2, 3, 5), NG(3, 3, 2, 3)}},
    {"conv_transpose1d in w", f_conv, &Tt_s2op1_nb, 2, {NG(3, 2, 3, 5), IN(3, 3, 2, 3)}},
    {"conv_transpose2d dilation in x", f_conv, &Tt_dil, 2, {IN(4, 1, 2, 3, 4), NG(4, 2, 2, 2, 3)}},
    {"conv_transpose2d dilation in w", f_conv, &Tt_dil, 2, {NG(4, 1, 2, 3, 4), IN(4, 2, 2, 2, 3)}},
    {"conv_transpose3d in x", f_conv, &Tt_s2op1_nb, 2, {IN(5, 1, 2, 3, 2, 2), NG(5, 2, 2, 3, 2, 3)}},
    {"conv_transpose3d in w", f_conv, &Tt_s2op1_nb, 2, {NG(5, 1, 2, 3, 2, 2), IN(5, 2, 2, 3, 2, 3)}},
    {"conv2d batch 6 in x (threaded path)", f_conv, &T_g2, 2, {IN(4, 6, 4, 20, 20), NG(4, 8, 2, 3, 3)}},
    {"conv2d batch 6 in w (threaded path)", f_conv, &T_g2, 2, {NG(4, 6, 4, 20, 20), IN(4, 8, 2, 3, 3)}},
    {"conv_transpose2d batch 6 in x (threaded path)", f_conv, &Tt_s2op1_nb, 2,
     {IN(4, 6, 8, 14, 14), NG(4, 8, 4, 3, 3)}},
    {"conv_transpose2d batch 6 in w (threaded path)", f_conv, &Tt_s2op1_nb, 2,
     {NG(4, 6, 8, 14, 14), IN(4, 8, 4, 3, 3)}},
};

/* ------------------------------------------------------------ naive references */

static void fill_random(opl_tensor *t, uint64_t *s) {
  for (int64_t i = 0; i < t->numel; i++) t->data[i] = (opl_real)(2 * gc_uniform(s) - 1);
}

/* Spatial extents of t padded to 3 axes with 1. */
static void ext3(const opl_tensor *t, int64_t *e) {
  for (int a = 0; a < 3; a++) e[a] = a + 2 < t->rank ? t->shape[a + 2] : 1;
}

static int opt_or(int v, int dflt) { return v > 0 ? v : dflt; }

/* Direct-loop convolution, PyTorch semantics: pad x by mode, then a valid cross-correlation.
 * Returns y as a malloc'd double array [N, Co, O0 O1 O2] and its spatial extents in O. */
static double *naive_conv(const opl_tensor *x, const opl_tensor *w, const opl_tensor *b,
                          const opl_conv_opts *o, int64_t *O) {
  int d = x->rank - 2;
  int64_t N = x->shape[0], Ci = x->shape[1], Co = w->shape[0], G = opt_or(o->groups, 1);
  int64_t S[3], K[3], st[3], p[3], dl[3];
  ext3(x, S), ext3(w, K);
  for (int a = 0; a < 3; a++) {
    st[a] = a < d ? opt_or(o->stride[a], 1) : 1;
    dl[a] = a < d ? opt_or(o->dilation[a], 1) : 1;
    p[a] = a < d ? o->padding[a] : 0;
    O[a] = (S[a] + 2 * p[a] - dl[a] * (K[a] - 1) - 1) / st[a] + 1;
  }
  int64_t Cig = Ci / G, Cog = Co / G;
  double *y = calloc((size_t)(N * Co * O[0] * O[1] * O[2]), sizeof *y);
  for (int64_t n = 0; n < N; n++)
    for (int64_t co = 0; co < Co; co++)
      for (int64_t o0 = 0; o0 < O[0]; o0++)
        for (int64_t o1 = 0; o1 < O[1]; o1++)
          for (int64_t o2 = 0; o2 < O[2]; o2++) {
            double acc = b ? b->data[co] : 0;
            int64_t g = co / Cog;
            for (int64_t q = 0; q < Cig; q++)
              for (int64_t k0 = 0; k0 < K[0]; k0++)
                for (int64_t k1 = 0; k1 < K[1]; k1++)
                  for (int64_t k2 = 0; k2 < K[2]; k2++) {
                    int64_t oo[3] = {o0, o1, o2}, kk[3] = {k0, k1, k2}, ii[3];
                    int inside = 1;
                    for (int a = 0; a < 3; a++) {
                      int64_t i = oo[a] * st[a] - p[a] + kk[a] * dl[a];
                      if (i < 0 || i >= S[a]) {
                        if (o->pad_mode == OPL_PAD_CIRCULAR) i = ((i % S[a]) + S[a]) % S[a];
                        else if (o->pad_mode == OPL_PAD_REPLICATE) i = i < 0 ? 0 : S[a] - 1;
                        else if (o->pad_mode == OPL_PAD_REFLECT) i = i < 0 ? -i : 2 * (S[a] - 1) - i;
                        else inside = 0;
                      }
                      ii[a] = i;
                    }
                    if (!inside) continue;
                    double xv = x->data[(((n * Ci + g * Cig + q) * S[0] + ii[0]) * S[1] + ii[1]) * S[2] + ii[2]];
                    double wv = w->data[(((co * Cig + q) * K[0] + k0) * K[1] + k1) * K[2] + k2];
                    acc += xv * wv;
                  }
            y[(((n * Co + co) * O[0] + o0) * O[1] + o1) * O[2] + o2] = acc;
          }
  return y;
}

/* Direct-loop transposed convolution in scatter form: every input element x[n, ci, s]
 * adds x w[ci, c, k] to y[n, g Cog + c, s stride - pad + k dil]. */
static double *naive_conv_t(const opl_tensor *x, const opl_tensor *w, const opl_tensor *b,
                            const opl_conv_opts *o, int64_t *O) {
  int d = x->rank - 2;
  int64_t N = x->shape[0], Ci = x->shape[1], G = opt_or(o->groups, 1), Cog = w->shape[1];
  int64_t Co = Cog * G, Cig = Ci / G;
  int64_t S[3], K[3], st[3], p[3], dl[3];
  ext3(x, S), ext3(w, K);
  for (int a = 0; a < 3; a++) {
    st[a] = a < d ? opt_or(o->stride[a], 1) : 1;
    dl[a] = a < d ? opt_or(o->dilation[a], 1) : 1;
    p[a] = a < d ? o->padding[a] : 0;
    O[a] = (S[a] - 1) * st[a] - 2 * p[a] + dl[a] * (K[a] - 1) + (a < d ? o->output_padding[a] : 0) + 1;
  }
  int64_t ovol = O[0] * O[1] * O[2];
  double *y = calloc((size_t)(N * Co * ovol), sizeof *y);
  for (int64_t n = 0; n < N; n++)
    for (int64_t co = 0; co < Co; co++)
      for (int64_t i = 0; i < ovol; i++) y[(n * Co + co) * ovol + i] = b ? b->data[co] : 0;
  for (int64_t n = 0; n < N; n++)
    for (int64_t ci = 0; ci < Ci; ci++)
      for (int64_t s0 = 0; s0 < S[0]; s0++)
        for (int64_t s1 = 0; s1 < S[1]; s1++)
          for (int64_t s2 = 0; s2 < S[2]; s2++) {
            double xv = x->data[(((n * Ci + ci) * S[0] + s0) * S[1] + s1) * S[2] + s2];
            int64_t g = ci / Cig;
            for (int64_t cl = 0; cl < Cog; cl++)
              for (int64_t k0 = 0; k0 < K[0]; k0++)
                for (int64_t k1 = 0; k1 < K[1]; k1++)
                  for (int64_t k2 = 0; k2 < K[2]; k2++) {
                    int64_t i0 = s0 * st[0] - p[0] + k0 * dl[0];
                    int64_t i1 = s1 * st[1] - p[1] + k1 * dl[1];
                    int64_t i2 = s2 * st[2] - p[2] + k2 * dl[2];
                    if (i0 < 0 || i0 >= O[0] || i1 < 0 || i1 >= O[1] || i2 < 0 || i2 >= O[2])
                      continue;
                    double wv = w->data[(((ci * Cog + cl) * K[0] + k0) * K[1] + k1) * K[2] + k2];
                    y[(((n * Co + g * Cog + cl) * O[0] + i0) * O[1] + i1) * O[2] + i2] += xv * wv;
                  }
          }
  return y;
}

/* ------------------------------------------------------------ forward values */

typedef struct vcase {
  const char *name;
  int rank;
  int64_t xs[5], ws[5];
  const tc *t;
} vcase;

static const vcase vcases[] = {
    {"conv1d zeros", 3, {2, 3, 11}, {4, 3, 3}, &T_bias},
    {"conv1d stride 2 pad 1", 3, {2, 3, 10}, {2, 3, 3}, &T_s2p1},
    {"conv1d dilation 2", 3, {2, 2, 9}, {3, 2, 3}, &T_dil2},
    {"conv1d circular", 3, {2, 2, 7}, {3, 2, 3}, &T_circ},
    {"conv1d replicate", 3, {2, 2, 7}, {3, 2, 4}, &T_repl},
    {"conv1d reflect", 3, {2, 2, 7}, {3, 2, 3}, &T_refl},
    {"conv1d groups 2", 3, {2, 4, 8}, {6, 2, 3}, &T_g2},
    {"conv2d zeros", 4, {2, 3, 6, 5}, {4, 3, 3, 2}, &T_bias},
    {"conv2d stride (2,1) pad (1,0) dil (1,2)", 4, {2, 2, 6, 7}, {2, 2, 3, 3}, &T_mixed2d},
    {"conv2d circular", 4, {2, 2, 5, 6}, {3, 2, 3, 3}, &T_circ},
    {"conv2d replicate", 4, {2, 2, 5, 4}, {3, 2, 3, 2}, &T_repl},
    {"conv2d reflect", 4, {2, 2, 5, 4}, {3, 2, 3, 3}, &T_refl},
    {"conv2d reflect stride 2", 4, {2, 3, 8, 6}, {2, 3, 3, 3}, &T_refl_s2},
    {"conv2d circular groups 2 stride (2,1)", 4, {2, 4, 6, 5}, {2, 2, 3, 3}, &T_circ_g2_s2},
    {"conv2d replicate dilation (2,1)", 4, {2, 2, 5, 5}, {2, 2, 3, 3}, &T_repl_d2},
    {"conv2d 1x1", 4, {2, 3, 4, 5}, {4, 3, 1, 1}, &T_bias},
    {"conv2d stride 2 pad 1", 4, {2, 3, 8, 9}, {2, 3, 3, 3}, &T_s2p1},
    {"conv2d dilation 2", 4, {2, 2, 7, 8}, {3, 2, 3, 3}, &T_dil2},
    {"conv2d groups 2 batch 5 (threaded path)", 4, {5, 4, 20, 20}, {8, 2, 3, 3}, &T_g2},
    {"conv3d stride (2,1,1) pad (1,0,1)", 5, {2, 2, 5, 4, 4}, {3, 2, 3, 2, 2}, &T3d},
    {"conv3d circular", 5, {1, 2, 4, 5, 3}, {2, 2, 2, 3, 2}, &T_circ},
    {"conv3d replicate", 5, {1, 2, 4, 3, 3}, {2, 2, 3, 2, 2}, &T_repl},
    {"conv3d reflect", 5, {1, 2, 4, 3, 3}, {2, 2, 3, 3, 2}, &T_refl},
    {"conv_transpose1d stride 2 pad 1 op 1", 3, {2, 3, 5}, {3, 2, 3}, &Tt_s2op1},
    {"conv_transpose1d", 3, {2, 3, 5}, {3, 2, 4}, &Tt_plain},
    {"conv_transpose2d groups 2 stride (2,1)", 4, {2, 4, 3, 3}, {4, 1, 3, 2}, &Tt_g2},
    {"conv_transpose2d dilation 2 op 1", 4, {1, 2, 3, 4}, {2, 2, 2, 3}, &Tt_dil},
    {"conv_transpose2d batch 5 (threaded path)", 4, {5, 8, 14, 14}, {8, 4, 3, 3}, &Tt_s2op1},
    {"conv_transpose3d stride 2 op 1", 5, {1, 2, 3, 2, 2}, {2, 2, 3, 2, 3}, &Tt_s2op1},
};

static void test_values(void) {
  uint64_t s = 42;
  for (size_t k = 0; k < sizeof vcases / sizeof vcases[0]; k++) {
    const vcase *v = &vcases[k];
    opl_ctx *c = opl_ctx_new(0);
    opl_tensor *x = opl_new(c, v->rank, v->xs), *w = opl_new(c, v->rank, v->ws), *b = NULL;
    fill_random(x, &s), fill_random(w, &s);
    int64_t co = v->t->transpose ? v->ws[1] * opt_or(v->t->o.groups, 1) : v->ws[0];
    if (v->t->bias) b = opl_new(c, OPL_DIMS(co)), fill_random(b, &s);
    opl_tensor *y = v->t->transpose ? opl_conv_transpose(c, x, w, b, &v->t->o)
                                    : opl_conv(c, x, w, b, &v->t->o);
    int64_t O[3];
    double *want = v->t->transpose ? naive_conv_t(x, w, b, &v->t->o, O)
                                   : naive_conv(x, w, b, &v->t->o, O);
    int shape_ok = y && y->rank == v->rank && y->shape[0] == v->xs[0] && y->shape[1] == co;
    for (int a = 0; shape_ok && a < v->rank - 2; a++) shape_ok = y->shape[2 + a] == O[a];
    if (!ok(shape_ok, "%s: output shape", v->name)) {
      diag("  %s", opl_ctx_errmsg(c));
    } else {
      double *got = malloc((size_t)y->numel * sizeof *got);
      for (int64_t i = 0; i < y->numel; i++) got[i] = y->data[i];
      arrays_close(y->numel, got, want, VAL_RTOL, VAL_ATOL, "%s: values match the direct loop",
                   v->name);
      free(got);
    }
    free(want);
    opl_ctx_free(&c);
  }
}

/* Hand-computed values: x = 1..5, w = (1, 1, 1), padding 1 in each mode; and a stride-2
 * transposed convolution of (1, 2) with (1, 1, 1). */
static void test_closed_form(void) {
  opl_ctx *c = opl_ctx_new(0);
  opl_tensor *x = opl_new(c, OPL_DIMS(1, 1, 5)), *w = opl_full(c, OPL_DIMS(1, 1, 3), 1.0);
  for (int i = 0; i < 5; i++) x->data[i] = (opl_real)(i + 1);
  /* reflect pads (1..5) to (2, 1..5, 4) */
  static const double want[4][5] = {{3, 6, 9, 12, 9}, {8, 6, 9, 12, 10}, {4, 6, 9, 12, 14}, {5, 6, 9, 12, 13}};
  static const char *names[4] = {"zeros", "circular", "replicate", "reflect"};
  for (int m = 0; m < 4; m++) {
    opl_conv_opts o = {.padding = {1}, .pad_mode = (opl_pad_mode)m};
    opl_tensor *y = opl_conv(c, x, w, NULL, &o);
    double got[5] = {0};
    for (int i = 0; y && i < 5; i++) got[i] = y->data[i];
    arrays_close(5, got, want[m], 0, 1e-6, "conv1d (1..5) * (1,1,1) padding 1 %s", names[m]);
  }
  opl_tensor *xt = opl_new(c, OPL_DIMS(1, 1, 2));
  xt->data[0] = 1, xt->data[1] = 2;
  opl_conv_opts ot = {.stride = {2}};
  opl_tensor *yt = opl_conv_transpose(c, xt, w, NULL, &ot);
  ok(yt && yt->shape[2] == 5, "conv_transpose1d (1,2) stride 2 has 5 outputs");
  double gt[5] = {0}, wt[5] = {1, 1, 3, 2, 2};
  for (int i = 0; yt && i < 5; i++) gt[i] = yt->data[i];
  arrays_close(5, gt, wt, 0, 1e-6, "conv_transpose1d (1,2) * (1,1,1) stride 2 = (1,1,3,2,2)");
  ok(opl_ctx_status(c) == OPL_OK, "no error on valid input");
  opl_ctx_free(&c);
}

/* ------------------------------------------------------------ output sizes */

static void test_sizes(void) {
  opl_ctx *c = opl_ctx_new(0);
  struct {
    const char *name;
    int transpose, rank;
    int64_t xs[5], ws[5];
    opl_conv_opts o;
    int64_t want[3];
  } cs[] = {
      /* PyTorch: Conv2d(k=3, s=2, p=1) on 7x7 -> 4x4. */
      {"conv2d k3 s2 p1 on 7x7", 0, 4, {1, 1, 7, 7}, {1, 1, 3, 3}, {.stride = {2, 2}, .padding = {1, 1}}, {4, 4}},
      /* Conv1d(k=3, dilation=2) on 10 -> 6. */
      {"conv1d k3 d2 on 10", 0, 3, {1, 1, 10}, {1, 1, 3}, {.dilation = {2}}, {6}},
      /* Conv1d(k=4, s=3, p=2) on 11: floor((11 + 4 - 3 - 1) / 3) + 1 = 4. */
      {"conv1d k4 s3 p2 on 11", 0, 3, {1, 1, 11}, {1, 1, 4}, {.stride = {3}, .padding = {2}}, {4}},
      /* Conv3d(k=(3,1,2), s=(1,2,3), p=(0,1,1), d=(2,1,1)) on (9,5,8) -> (5, 4, 3). */
      {"conv3d mixed", 0, 5, {1, 1, 9, 5, 8}, {1, 1, 3, 1, 2},
       {.stride = {1, 2, 3}, .padding = {0, 1, 1}, .dilation = {2, 1, 1}}, {5, 4, 3}},
      /* Circular padding also pads: k3 p1 keeps 8. */
      {"conv1d circular k3 p1 on 8", 0, 3, {1, 1, 8}, {1, 1, 3}, {.padding = {1}, .pad_mode = OPL_PAD_CIRCULAR}, {8}},
      /* ConvTranspose2d(k=3, s=2, p=1, op=1) on 4x4 -> 8x8. */
      {"conv_transpose2d k3 s2 p1 op1 on 4x4", 1, 4, {1, 1, 4, 4}, {1, 1, 3, 3},
       {.stride = {2, 2}, .padding = {1, 1}, .output_padding = {1, 1}}, {8, 8}},
      /* ConvTranspose1d(k=2, s=2) on 5 -> 10. */
      {"conv_transpose1d k2 s2 on 5", 1, 3, {1, 1, 5}, {1, 1, 2}, {.stride = {2}}, {10}},
      /* ConvTranspose1d(k=3, d=3, op=2 (< dilation)) on 4: 3 + 6 + 2 + 1 = 12. */
      {"conv_transpose1d k3 d3 op2 on 4", 1, 3, {1, 1, 4}, {1, 1, 3}, {.dilation = {3}, .output_padding = {2}}, {12}},
      /* ConvTranspose3d(k=(2,3,1), s=(2,1,3), p=(0,1,0), op=(1,0,2)) on (3,4,2) -> (7,4,6). */
      {"conv_transpose3d mixed", 1, 5, {1, 1, 3, 4, 2}, {1, 1, 2, 3, 1},
       {.stride = {2, 1, 3}, .padding = {0, 1, 0}, .output_padding = {1, 0, 2}}, {7, 4, 6}},
  };
  for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++) {
    opl_tensor *x = opl_zeros(c, cs[k].rank, cs[k].xs), *w = opl_zeros(c, cs[k].rank, cs[k].ws);
    opl_tensor *y = cs[k].transpose ? opl_conv_transpose(c, x, w, NULL, &cs[k].o)
                                    : opl_conv(c, x, w, NULL, &cs[k].o);
    int good = y != NULL;
    for (int a = 0; good && a < cs[k].rank - 2; a++) good = y->shape[2 + a] == cs[k].want[a];
    char b1[96] = "NULL";
    if (y) opl_shape_str(b1, y->rank, y->shape);
    ok(good, "output size %s: %s", cs[k].name, b1);
    if (!y) diag("  %s", opl_ctx_errmsg(c)), opl_ctx_clear_error(c);
  }
  opl_ctx_free(&c);
}

/* ------------------------------------------------------------ the defining identity */

/* <conv_transpose(y, w), x> == <y, conv(x, w)> for the same w, where the transposed
 * convolution's output_padding is chosen to give back the shape of x. */
static void test_transpose_identity(void) {
  struct {
    const char *name;
    int rank;
    int64_t xs[5], ws[5];
    opl_conv_opts o;
  } cs[] = {
      {"1-D", 3, {2, 3, 9}, {4, 3, 3}, {.groups = 1}},
      {"1-D stride 2 pad 1", 3, {2, 3, 10}, {4, 3, 3}, {.stride = {2}, .padding = {1}}},
      {"1-D stride 3 dilation 2 groups 3", 3, {2, 6, 14}, {3, 2, 3}, {.stride = {3}, .dilation = {2}, .groups = 3}},
      {"2-D stride (2,3) pad (1,2) groups 2", 4, {2, 4, 9, 10}, {6, 2, 3, 4},
       {.stride = {2, 3}, .padding = {1, 2}, .groups = 2}},
      {"2-D dilation (2,1)", 4, {1, 2, 8, 6}, {3, 2, 3, 3}, {.dilation = {2, 1}, .padding = {0, 1}}},
      {"3-D stride 2 pad 1", 5, {1, 2, 6, 5, 7}, {3, 2, 3, 3, 2}, {.stride = {2, 2, 2}, .padding = {1, 1, 1}}},
      {"2-D batch 8 groups 2 (threaded path)", 4, {8, 4, 24, 24}, {8, 2, 3, 3},
       {.stride = {2, 1}, .padding = {1, 1}, .groups = 2}},
  };
  uint64_t s = 7;
  for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++) {
    opl_ctx *c = opl_ctx_new(0);
    opl_tensor *x = opl_new(c, cs[k].rank, cs[k].xs), *w = opl_new(c, cs[k].rank, cs[k].ws);
    fill_random(x, &s), fill_random(w, &s);
    opl_tensor *cx = opl_conv(c, x, w, NULL, &cs[k].o);
    if (!cx) {
      ok(0, "identity %s: conv failed: %s", cs[k].name, opl_ctx_errmsg(c));
      opl_ctx_free(&c);
      continue;
    }
    opl_tensor *y = opl_new_like(c, cx);
    fill_random(y, &s);
    opl_conv_opts ot = cs[k].o;
    for (int a = 0; a < cs[k].rank - 2; a++) {
      int64_t st = opt_or(ot.stride[a], 1), dl = opt_or(ot.dilation[a], 1);
      ot.output_padding[a] = (int)((cs[k].xs[2 + a] + 2 * ot.padding[a] - dl * (cs[k].ws[2 + a] - 1) - 1) % st);
    }
    opl_tensor *ty = opl_conv_transpose(c, y, w, NULL, &ot);
    if (!ok(ty && opl_shape_eq(ty->rank, ty->shape, x->rank, x->shape),
            "identity %s: conv_transpose(y) has the shape of x", cs[k].name)) {
      diag("  %s", opl_ctx_errmsg(c));
      opl_ctx_free(&c);
      continue;
    }
    double lhs = 0, rhs = 0, mag = 0;
    for (int64_t i = 0; i < x->numel; i++) lhs += (double)ty->data[i] * x->data[i], mag += fabs((double)ty->data[i] * x->data[i]);
    for (int64_t i = 0; i < y->numel; i++) rhs += (double)y->data[i] * cx->data[i];
    is_close(lhs, rhs, 0, DOT_TOL * (mag > 1 ? mag : 1),
             "identity %s: <conv_transpose(y), x> = <y, conv(x)>", cs[k].name);
    opl_ctx_free(&c);
  }
}

/* A backward pass through y from a random seed drawn from *s, then y, x.grad, w.grad and b.grad
 * packed into one new array (caller frees); their lengths in len[4]. */
static double *backward_packed(opl_ctx *c, opl_tensor *y, const opl_tensor *x, const opl_tensor *w,
                               const opl_tensor *b, uint64_t *s, int64_t len[4]) {
  opl_real *seed = malloc((size_t)y->numel * sizeof *seed);
  for (int64_t i = 0; i < y->numel; i++) seed[i] = (opl_real)(2 * gc_uniform(s) - 1);
  opl_backward_seed(c, y, seed);
  free(seed);
  len[0] = y->numel, len[1] = x->numel, len[2] = w->numel, len[3] = b->numel;
  double *r = malloc((size_t)(len[0] + len[1] + len[2] + len[3]) * sizeof *r);
  int64_t j = 0;
  for (int64_t i = 0; i < y->numel; i++) r[j++] = y->data[i];
  for (int64_t i = 0; i < x->numel; i++) r[j++] = x->grad[i];
  for (int64_t i = 0; i < w->numel; i++) r[j++] = w->grad[i];
  for (int64_t i = 0; i < b->numel; i++) r[j++] = b->grad[i];
  return r;
}

/* ------------------------------------------------------------ threads */

/* The samples-over-threads path and the sequential path give the same values and gradients. */
static void test_threads_agree(void) {
  int nt = opl_get_num_threads();
  if (nt < 2) {
    skip("only one thread", "threaded and sequential paths agree");
    return;
  }
  /* the third: the default path's Winograd F(4x4) (filters transformed inside the parallel region
   * with 2+ threads, by their own region with 1; the bias added as the rows are stored) */
  static const tc T_wino = {.o = {.padding = {1, 1}}, .bias = 1};
  static const tc *ts[3] = {&T_g2, &Tt_s2op1, &T_wino};
  static const int64_t xs[3][4] = {{6, 4, 20, 20}, {6, 8, 14, 14}, {6, 5, 21, 18}},
                       ws[3][4] = {{8, 2, 3, 3}, {8, 4, 3, 3}, {7, 5, 3, 3}};
  static const int64_t bn[3] = {8, 4, 7};
  static const char *names[3] = {"conv2d", "conv_transpose2d", "conv2d 3x3 (Winograd)"};
  for (int k = 0; k < 3; k++) {
    double *res[2];
    int64_t nres = 0;
    for (int run = 0; run < 2; run++) {
      opl_set_num_threads(run == 0 ? 1 : nt);
      uint64_t s = 99;
      opl_err err;
      opl_tensor *x = opl_tensor_alloc(4, xs[k], OPL_T_REQGRAD, &err);
      opl_tensor *w = opl_tensor_alloc(4, ws[k], OPL_T_REQGRAD, &err);
      opl_tensor *b = opl_tensor_alloc(1, &bn[k], OPL_T_REQGRAD, &err);
      fill_random(x, &s), fill_random(w, &s), fill_random(b, &s);
      opl_ctx *c = opl_ctx_new(0);
      opl_tensor *in[3] = {x, w, b};
      opl_tensor *y = f_conv(c, in, ts[k]);
      OPL_ASSERT(y != NULL, "%s", opl_ctx_errmsg(c));
      int64_t len[4];
      res[run] = backward_packed(c, y, x, w, b, &s, len);
      nres = len[0] + len[1] + len[2] + len[3];
      opl_ctx_free(&c);
      opl_tensor_free(&x), opl_tensor_free(&w), opl_tensor_free(&b);
    }
    opl_set_num_threads(nt);
    arrays_close(nres, res[1], res[0], VAL_RTOL * 10, VAL_ATOL * 10,
                 "%s: %d threads and 1 thread agree (values and gradients)", names[k], nt);
    free(res[0]), free(res[1]);
  }
}

/* ------------------------------------------------------------ Winograd */

/* y, x.grad, w.grad, b.grad of t on x (shape xs), w (ws), b after a backward pass from a random
 * seed, with the Winograd mode wino (opl_conv_set_winograd) and tiles per chunk; the arrays'
 * lengths in len[4]. Caller frees. */
static double *wino_run(const tc *t, const int64_t *xs, const int64_t *ws, int wino, int64_t tiles, int64_t len[4]) {
  const int old = opl_conv_set_winograd(wino);
  const int64_t oldt = opl_conv_set_wino_tiles(tiles);
  uint64_t s = 31;
  opl_err err;
  int64_t co = t->transpose ? ws[1] : ws[0];
  opl_tensor *x = opl_tensor_alloc(4, xs, OPL_T_REQGRAD, &err);
  opl_tensor *w = opl_tensor_alloc(4, ws, OPL_T_REQGRAD, &err);
  opl_tensor *b = opl_tensor_alloc(1, &co, OPL_T_REQGRAD, &err);
  fill_random(x, &s), fill_random(w, &s), fill_random(b, &s);
  opl_ctx *c = opl_ctx_new(0);
  opl_tensor *y = t->transpose ? opl_conv_transpose(c, x, w, b, &t->o) : opl_conv(c, x, w, b, &t->o);
  OPL_ASSERT(y != NULL, "%s", opl_ctx_errmsg(c));
  double *r = backward_packed(c, y, x, w, b, &s, len);
  opl_ctx_free(&c);
  opl_tensor_free(&x), opl_tensor_free(&w), opl_tensor_free(&b);
  opl_conv_set_winograd(old);
  opl_conv_set_wino_tiles(oldt);
  return r;
}

/* max |got - want| / max |want| over n entries */
static double rel_err(int64_t n, const double *got, const double *want) {
  double e = 0, m = 0;
  for (int64_t i = 0; i < n; i++) {
    double d = fabs(got[i] - want[i]), a = fabs(want[i]);
    if (d > e) e = d;
    if (a > m) m = a;
  }
  return m > 0 ? e / m : e;
}

#ifdef OPL_DOUBLE
#define WINO2_TOL 1e-12
#define WINO4_TOL 1e-12
#else
#define WINO2_TOL 2e-6
#define WINO4_TOL 2e-5
#endif

/* The Winograd paths F(2x2, 3x3) and F(4x4, 3x3) against im2col: the forward values, the input
 * gradient and the weight gradient (and the bias gradient), on odd and even extents, zeros /
 * circular / replicate / reflect padding, several channel counts, chunks of one tile (a chunk per
 * tile row), of 7 tiles and of 512 (several samples side by side in one GEMM), and the
 * transposed convolution. Errors are relative to the largest entry of the im2col result: within
 * 1e-12 in double; in float within 2e-6 for F(2x2) and 2e-5 for F(4x4) (measured: printed). */
static void test_winograd_agree(void) {
  static const struct {
    const char *name;
    tc t;
    int64_t xs[4], ws[4];
  } cs[] = {
      {"zeros 1 -> 1 channels 9x9", {.o = {.padding = {1, 1}}}, {3, 1, 9, 9}, {1, 1, 3, 3}},
      {"zeros 3 -> 5 channels 13x11", {.o = {.padding = {1, 1}}}, {2, 3, 13, 11}, {5, 3, 3, 3}},
      {"zeros 16 -> 8 channels 16x16", {.o = {.padding = {1, 1}}}, {4, 16, 16, 16}, {8, 16, 3, 3}},
      {"circular 4 -> 6 channels 7x10", {.o = {.padding = {1, 1}, .pad_mode = OPL_PAD_CIRCULAR}}, {3, 4, 7, 10}, {6, 4, 3, 3}},
      {"circular 8 -> 3 channels 3x5", {.o = {.padding = {1, 1}, .pad_mode = OPL_PAD_CIRCULAR}}, {5, 8, 3, 5}, {3, 8, 3, 3}},
      {"replicate pad (2,0) 2 -> 3 channels 6x9", {.o = {.padding = {2, 0}, .pad_mode = OPL_PAD_REPLICATE}}, {2, 2, 6, 9}, {3, 2, 3, 3}},
      {"reflect 3 -> 2 channels 11x7", {.o = {.padding = {1, 1}, .pad_mode = OPL_PAD_REFLECT}}, {2, 3, 11, 7}, {2, 3, 3, 3}},
      {"no padding 5 -> 4 channels 10x9", {.o = {.padding = {0, 0}}}, {3, 5, 10, 9}, {4, 5, 3, 3}},
      {"transposed 4 -> 3 channels 6x7", {.o = {.padding = {1, 1}}, .transpose = 1}, {3, 4, 6, 7}, {4, 3, 3, 3}},
      {"transposed no padding 2 -> 5 channels 5x5", {.o = {.padding = {0, 0}}, .transpose = 1}, {2, 2, 5, 5}, {2, 5, 3, 3}},
  };
  static const char *part[4] = {"forward", "input grad", "weight grad", "bias grad"};
  static const int64_t tiles[3] = {1, 7, 512};
  double worst[2] = {0, 0};
  for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++) {
    int64_t len[4];
    double *ref = wino_run(&cs[k].t, cs[k].xs, cs[k].ws, 0, 512, len);
    for (int mi = 0; mi < 2; mi++)
      for (int ti = 0; ti < 3; ti++) {
        const int m = mi ? 4 : 2;
        int64_t l2[4];
        double *got = wino_run(&cs[k].t, cs[k].xs, cs[k].ws, m, tiles[ti], l2);
        int64_t off = 0;
        double e[4];
        for (int q = 0; q < 4; q++) {
          e[q] = rel_err(len[q], got + off, ref + off);
          off += len[q];
          if (e[q] > worst[mi]) worst[mi] = e[q];
        }
        const double tol = m == 2 ? WINO2_TOL : WINO4_TOL;
        ok(e[0] <= tol && e[1] <= tol && e[2] <= tol && e[3] <= tol,
           "Winograd F(%dx%d,3x3) = im2col, %s, chunks of %lld tiles: relative errors %s %.2g, %s %.2g, %s %.2g, "
           "%s %.2g (bound %.0e)", m, m, cs[k].name, (long long)tiles[ti], part[0], e[0], part[1], e[1], part[2], e[2],
           part[3], e[3], tol);
        free(got);
      }
    free(ref);
  }
  diag("largest relative error against im2col: F(2x2,3x3) %.3g, F(4x4,3x3) %.3g", worst[0], worst[1]);
}

/* The default choice uses a Winograd path on a layer it applies to and gives im2col's values;
 * a stride-2 or grouped layer keeps im2col (the forward matches a forced im2col run bit for bit). */
static void test_winograd_choice(void) {
  static const tc t1 = {.o = {.padding = {1, 1}}}, t2 = {.o = {.padding = {1, 1}, .stride = {2, 2}}},
                  t3 = {.o = {.padding = {1, 1}, .groups = 2}};
  const int64_t xs[4] = {2, 4, 32, 32}, ws[4] = {4, 4, 3, 3}, ws3[4] = {4, 2, 3, 3};
  int64_t len[4], l2[4];
  double *a = wino_run(&t1, xs, ws, -1, 512, len), *b = wino_run(&t1, xs, ws, 0, 512, l2);
  int64_t n = len[0] + len[1] + len[2] + len[3];
  ok(rel_err(n, a, b) <= WINO4_TOL && memcmp(a, b, (size_t)len[0] * sizeof *a) != 0,
     "default path at 32x32 3x3 stride 1: Winograd (differs from im2col in the last bits, within %.0e)", WINO4_TOL);
  free(a), free(b);
  /* the AVX2 copies of the transforms (where the processor has them) and the baseline ones */
  static const tc t5 = {.o = {.padding = {1, 1}, .pad_mode = OPL_PAD_CIRCULAR}};
  const int64_t xs5[4] = {3, 3, 19, 21}, ws5[4] = {5, 3, 3, 3};
  for (int m = 2; m <= 4; m += 2) {
    const int old = opl_conv_set_wino_avx2(0);
    a = wino_run(&t5, xs5, ws5, m, 512, len);
    opl_conv_set_wino_avx2(1);
    b = wino_run(&t5, xs5, ws5, m, 512, l2);
    opl_conv_set_wino_avx2(old);
    ok(memcmp(a, b, (size_t)(len[0] + len[1] + len[2] + len[3]) * sizeof *a) == 0,
       "F(%dx%d,3x3): the AVX2 and the baseline transforms give the same bits (values and gradients)", m, m);
    free(a), free(b);
  }
  a = wino_run(&t2, xs, ws, -1, 512, len), b = wino_run(&t2, xs, ws, 0, 512, l2);
  ok(memcmp(a, b, (size_t)(len[0] + len[1] + len[2] + len[3]) * sizeof *a) == 0, "default path at stride 2: im2col");
  free(a), free(b);
  a = wino_run(&t3, xs, ws3, -1, 512, len), b = wino_run(&t3, xs, ws3, 0, 512, l2);
  ok(memcmp(a, b, (size_t)(len[0] + len[1] + len[2] + len[3]) * sizeof *a) == 0, "default path with 2 groups: im2col");
  free(a), free(b);
}

/* ------------------------------------------------------------ slabs */

/* Lowering a sample in slabs of one axis-0 plane, of several planes (an uneven last slab), or
 * all at once gives the same values and gradients (x, w, b), for convolutions with stride,
 * dilation, circular / reflect padding and groups in 1-D, 2-D and 3-D, and for the transposed
 * convolution. */
static void test_slabs_agree(void) {
  static const struct {
    const char *name;
    const tc *t;
    int rank;
    int64_t xs[5], ws[5];
  } cs[] = {
      {"conv2d circular", &T_circ, 4, {2, 2, 9, 7}, {3, 2, 3, 3}},
      {"conv2d stride 2 pad 1", &T_s2p1, 4, {2, 3, 11, 8}, {2, 3, 3, 3}},
      {"conv2d reflect stride 2", &T_refl_s2, 4, {2, 3, 8, 6}, {2, 3, 3, 3}},
      {"conv2d groups 2", &T_g2, 4, {3, 4, 7, 5}, {4, 2, 3, 3}},
      {"conv1d dilation 2", &T_dil2, 3, {2, 2, 13}, {3, 2, 3}},
      {"conv3d stride (2,1,1)", &T3d, 5, {2, 2, 7, 4, 3}, {3, 2, 3, 2, 2}},
      {"conv_transpose2d stride 2", &Tt_s2op1, 4, {2, 3, 5, 4}, {3, 2, 3, 3}},
  };
  for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++) {
    double *res[3];
    int64_t nres = 0, plane = 1;
    /* run 0: the whole sample at once; run 1: slabs of one axis-0 plane; run 2: of three */
    for (int run = 0; run < 3; run++) {
      const int64_t old = opl_conv_set_slab_cols(run == 0 ? 0 : run == 1 ? 1 : 3 * plane);
      uint64_t s = 5 + k;
      opl_err err;
      int64_t co = cs[k].t->transpose ? cs[k].ws[1] * opt_or(cs[k].t->o.groups, 1) : cs[k].ws[0];
      opl_tensor *x = opl_tensor_alloc(cs[k].rank, cs[k].xs, OPL_T_REQGRAD, &err);
      opl_tensor *w = opl_tensor_alloc(cs[k].rank, cs[k].ws, OPL_T_REQGRAD, &err);
      opl_tensor *b = opl_tensor_alloc(1, &co, OPL_T_REQGRAD, &err);
      fill_random(x, &s), fill_random(w, &s), fill_random(b, &s);
      opl_ctx *c = opl_ctx_new(0);
      opl_tensor *in[3] = {x, w, b};
      opl_tensor *y = f_conv(c, in, cs[k].t);
      OPL_ASSERT(y != NULL, "%s", opl_ctx_errmsg(c));
      if (run == 0)
        for (int a = 3; a < y->rank; a++) plane *= y->shape[a];
      int64_t len[4];
      res[run] = backward_packed(c, y, x, w, b, &s, len);
      nres = len[0] + len[1] + len[2] + len[3];
      opl_ctx_free(&c);
      opl_tensor_free(&x), opl_tensor_free(&w), opl_tensor_free(&b);
      opl_conv_set_slab_cols(old);
    }
    arrays_close(nres, res[1], res[0], VAL_RTOL, VAL_ATOL, "%s: slabs of one plane = the whole sample at once",
                 cs[k].name);
    arrays_close(nres, res[2], res[0], VAL_RTOL, VAL_ATOL, "%s: slabs of three planes = the whole sample at once",
                 cs[k].name);
    free(res[0]), free(res[1]), free(res[2]);
  }
}

/* ------------------------------------------------------------ scratch memory */

/* The im2col buffers are scratch: a forward conv adds its output (and a small saved geometry)
 * to the arena, not its Cu K x O buffer; the backward pass (gradients of heap tensors live
 * outside the arena) adds nothing that stays; the transposed convolution likewise. */
static void test_scratch_released(void) {
  opl_err err;
  const int64_t xs[4] = {2, 8, 64, 64}, ws[4] = {8, 8, 3, 3};
  opl_tensor *x = opl_tensor_alloc(4, xs, OPL_T_REQGRAD, &err);
  opl_tensor *w = opl_tensor_alloc(4, ws, OPL_T_REQGRAD, &err);
  uint64_t s = 7;
  fill_random(x, &s), fill_random(w, &s);
  opl_ctx *c = opl_ctx_new(0);
  opl_ctx_stats st0, st1, st2;
  opl_ctx_get_stats(c, &st0);
  const opl_conv_opts o = {.padding = {1, 1}};
  opl_tensor *y = opl_conv(c, x, w, NULL, &o);
  OPL_ASSERT(y != NULL, "%s", opl_ctx_errmsg(c));
  opl_ctx_get_stats(c, &st1);
  const size_t ybytes = (size_t)y->numel * sizeof(opl_real), colbytes = 8 * 9 * 64 * 64 * sizeof(opl_real);
  ok(st1.arena_used - st0.arena_used < ybytes + colbytes / 4,
     "conv forward keeps %zu arena bytes: its output (%zu) and the geometry, not the im2col buffer (%zu)",
     st1.arena_used - st0.arena_used, ybytes, colbytes);
  opl_real *seed = malloc((size_t)y->numel * sizeof *seed);
  for (int64_t i = 0; i < y->numel; i++) seed[i] = (opl_real)(2 * gc_uniform(&s) - 1);
  opl_backward_seed(c, y, seed);
  opl_ctx_get_stats(c, &st2);
  ok(opl_ctx_status(c) == OPL_OK && st2.arena_used - st1.arena_used < ybytes + colbytes / 4,
     "conv backward keeps %zu arena bytes (at most the output's gradient), not its two im2col buffers (%zu each)",
     st2.arena_used - st1.arena_used, colbytes);
  opl_ctx_reset(c);
  const opl_conv_opts ot = {.stride = {2, 2}, .padding = {1, 1}};
  const int64_t ws4[4] = {8, 8, 4, 4};
  opl_tensor *w4 = opl_tensor_alloc(4, ws4, OPL_T_REQGRAD, &err);
  fill_random(w4, &s);
  opl_ctx_get_stats(c, &st0);
  opl_tensor *yt = opl_conv_transpose(c, x, w4, NULL, &ot);
  OPL_ASSERT(yt != NULL, "%s", opl_ctx_errmsg(c));
  opl_ctx_get_stats(c, &st1);
  const size_t ytbytes = (size_t)yt->numel * sizeof(opl_real), tcol = 8 * 16 * 64 * 64 * sizeof(opl_real);
  ok(st1.arena_used - st0.arena_used < ytbytes + tcol / 4,
     "conv_transpose forward keeps %zu arena bytes: its output (%zu), not the buffer (%zu)",
     st1.arena_used - st0.arena_used, ytbytes, tcol);
  free(seed);
  opl_ctx_free(&c);
  opl_tensor_free(&x), opl_tensor_free(&w), opl_tensor_free(&w4);
}

/* ------------------------------------------------------------ bad input */

/* The context holds status st and a message containing s1 and s2 (either may be NULL). */
static void expect_error(opl_ctx *c, opl_tensor *y, int st, const char *s1, const char *s2,
                         const char *what) {
  const char *m = opl_ctx_errmsg(c);
  ok(y == NULL && opl_ctx_status(c) == st && (!s1 || strstr(m, s1)) && (!s2 || strstr(m, s2)),
     "%s: %s", what, m);
  opl_ctx_clear_error(c);
}

static void test_bad_input(void) {
  opl_ctx *c = opl_ctx_new(0);
  opl_tensor *x = opl_zeros(c, OPL_DIMS(2, 3, 8));
  opl_tensor *w = opl_zeros(c, OPL_DIMS(4, 2, 3));
  expect_error(c, opl_conv(c, x, w, NULL, NULL), OPL_ERR_SHAPE, "(2, 3, 8)", "(4, 2, 3)",
               "channel mismatch names both shapes");
  opl_tensor *w1 = opl_zeros(c, OPL_DIMS(4, 1, 3));
  opl_conv_opts g2 = {.groups = 2};
  expect_error(c, opl_conv(c, x, w1, NULL, &g2), OPL_ERR_SHAPE, "(2, 3, 8)", "groups 2",
               "Ci = 3 not divisible by groups 2");
  opl_tensor *x4 = opl_zeros(c, OPL_DIMS(2, 4, 8)), *w3 = opl_zeros(c, OPL_DIMS(3, 2, 3));
  expect_error(c, opl_conv(c, x4, w3, NULL, &g2), OPL_ERR_SHAPE, "(3, 2, 3)", "(2, 4, 8)",
               "Co = 3 not divisible by groups 2");
  opl_tensor *xs = opl_zeros(c, OPL_DIMS(1, 1, 4)), *wb = opl_zeros(c, OPL_DIMS(1, 1, 7));
  opl_conv_opts p1 = {.padding = {1}};
  expect_error(c, opl_conv(c, xs, wb, NULL, &p1), OPL_ERR_SHAPE, "(1, 1, 4)", "(1, 1, 7)",
               "kernel 7 larger than padded input 4 + 2");
  opl_conv_opts p1d = {.padding = {1}, .dilation = {3}};
  opl_tensor *wk3 = opl_zeros(c, OPL_DIMS(1, 1, 3));
  expect_error(c, opl_conv(c, xs, wk3, NULL, &p1d), OPL_ERR_SHAPE, "(1, 1, 4)", "(1, 1, 3)",
               "dilated kernel 7 larger than padded input 6");
  opl_tensor *x2d = opl_zeros(c, OPL_DIMS(2, 3, 8, 8));
  opl_tensor *w1d = opl_zeros(c, OPL_DIMS(4, 3, 3));
  expect_error(c, opl_conv(c, x2d, w1d, NULL, NULL), OPL_ERR_SHAPE, "(2, 3, 8, 8)", "(4, 3, 3)",
               "w of rank 3 for x of rank 4");
  expect_error(c, opl_conv_transpose(c, x2d, w1d, NULL, NULL), OPL_ERR_SHAPE, "(2, 3, 8, 8)",
               "(4, 3, 3)", "conv_transpose: w of rank 3 for x of rank 4");
  opl_tensor *xr2 = opl_zeros(c, OPL_DIMS(3, 8)), *wr2 = opl_zeros(c, OPL_DIMS(3, 8));
  expect_error(c, opl_conv(c, xr2, wr2, NULL, NULL), OPL_ERR_SHAPE, "(3, 8)", NULL,
               "x of rank 2 (no spatial axis)");
  opl_tensor *wok = opl_zeros(c, OPL_DIMS(4, 3, 3)), *b5 = opl_zeros(c, OPL_DIMS(5));
  expect_error(c, opl_conv(c, x, wok, b5, NULL), OPL_ERR_SHAPE, "(5)", "(4, 3, 3)",
               "bias of length 5 for 4 output channels");
  opl_tensor *b22 = opl_zeros(c, OPL_DIMS(2, 2));
  expect_error(c, opl_conv(c, x, wok, b22, NULL), OPL_ERR_SHAPE, "(2, 2)", NULL,
               "bias of rank 2");
  /* transposed: w (Ci, Co/G, K) */
  opl_tensor *wt = opl_zeros(c, OPL_DIMS(3, 2, 3));
  opl_conv_opts op2 = {.stride = {2}, .output_padding = {2}};
  expect_error(c, opl_conv_transpose(c, x, wt, NULL, &op2), OPL_ERR_ARG, "output_padding 2",
               "stride 2", "output_padding 2 with stride 2 and dilation 1");
  opl_conv_opts op1d2 = {.stride = {1}, .dilation = {2}, .output_padding = {1}};
  ok(opl_conv_transpose(c, x, wt, NULL, &op1d2) != NULL,
     "output_padding 1 < dilation 2 with stride 1 is accepted (as in PyTorch)");
  opl_tensor *wtbad = opl_zeros(c, OPL_DIMS(4, 2, 3));
  expect_error(c, opl_conv_transpose(c, x, wtbad, NULL, NULL), OPL_ERR_SHAPE, "(2, 3, 8)",
               "(4, 2, 3)", "conv_transpose channel mismatch names both shapes");
  expect_error(c, opl_conv_transpose(c, x, wt, NULL, &g2), OPL_ERR_SHAPE, "(2, 3, 8)", "groups 2",
               "conv_transpose Ci = 3 not divisible by groups 2");
  opl_tensor *b3 = opl_zeros(c, OPL_DIMS(3));
  expect_error(c, opl_conv_transpose(c, x, wt, b3, NULL), OPL_ERR_SHAPE, "(3)", "(3, 2, 3)",
               "conv_transpose bias of length 3 for 2 output channels");
  opl_conv_opts circ = {.pad_mode = OPL_PAD_CIRCULAR};
  expect_error(c, opl_conv_transpose(c, x, wt, NULL, &circ), OPL_ERR_ARG, "zero padding", NULL,
               "conv_transpose with circular padding");
  opl_conv_opts refl = {.pad_mode = OPL_PAD_REFLECT};
  expect_error(c, opl_conv_transpose(c, x, wt, NULL, &refl), OPL_ERR_ARG, "reflect", NULL,
               "conv_transpose with reflect padding");
  opl_conv_opts refl4 = {.padding = {4}, .pad_mode = OPL_PAD_REFLECT};
  expect_error(c, opl_conv(c, xs, wk3, NULL, &refl4), OPL_ERR_SHAPE, "(1, 1, 4)", "reflect padding 4",
               "conv reflect padding 4 not smaller than extent 4");
  opl_conv_opts refl3 = {.padding = {3}, .pad_mode = OPL_PAD_REFLECT};
  opl_tensor *yr3 = opl_conv(c, xs, wk3, NULL, &refl3);
  ok(yr3 && yr3->shape[2] == 8, "conv reflect padding 3 < extent 4 is accepted (8 outputs)");
  opl_conv_opts bigpad = {.padding = {5}};
  expect_error(c, opl_conv_transpose(c, xs, wk3, NULL, &bigpad), OPL_ERR_SHAPE, "(1, 1, 4)",
               "(1, 1, 3)", "conv_transpose padding 5 leaves no output");
  opl_conv_opts neg = {.stride = {-1}};
  expect_error(c, opl_conv(c, x, wok, NULL, &neg), OPL_ERR_ARG, "stride -1", NULL, "negative stride");
  opl_conv_opts negg = {.groups = -2};
  expect_error(c, opl_conv(c, x, wok, NULL, &negg), OPL_ERR_ARG, "groups -2", NULL, "negative groups");
  opl_conv_opts badmode = {.pad_mode = (opl_pad_mode)9};
  expect_error(c, opl_conv(c, x, wok, NULL, &badmode), OPL_ERR_ARG, "mode 9", NULL, "unknown pad mode");
  expect_error(c, opl_conv(c, NULL, wok, NULL, NULL), OPL_ERR_ARG, "x", NULL, "NULL x");
  expect_error(c, opl_conv_transpose(c, x, NULL, NULL, NULL), OPL_ERR_ARG, "w", NULL, "NULL w");
  opl_tensor *cx = opl_new_flags(c, OPL_DIMS(2, 3, 8), OPL_T_COMPLEX);
  expect_error(c, opl_conv(c, cx, wok, NULL, NULL), OPL_ERR_ARG, "complex", NULL, "complex x");
  /* Sticky: the first error wins and later constructors return NULL. */
  opl_tensor *y1 = opl_conv(c, x, w, NULL, NULL);
  opl_tensor *y2 = opl_conv(c, x, wok, NULL, NULL);
  ok(y1 == NULL && y2 == NULL && strstr(opl_ctx_errmsg(c), "channel mismatch"),
     "error is sticky and the first wins: %s", opl_ctx_errmsg(c));
  opl_ctx_clear_error(c);
  ok(opl_conv(c, x, wok, NULL, NULL) != NULL, "cleared error lets conv run again");
  opl_ctx_free(&c);
}

int main(void) {
  tap_begin();
  diag("threads: %d", opl_get_num_threads());
  gc_run_table(rows, (int)(sizeof rows / sizeof rows[0]));
  gc_run_adjoint_table(adjoint_rows, (int)(sizeof adjoint_rows / sizeof adjoint_rows[0]));
  test_values();
  test_closed_form();
  test_sizes();
  test_transpose_identity();
  test_threads_agree();
  test_slabs_agree();
  test_winograd_agree();
  test_winograd_choice();
  test_scratch_released();
  test_bad_input();
  return tap_end();
}
