/* opl operators — SineNet (Zhang, Helwig, Lin, Xie, Fu, Wojtowytsch, Ji, "SineNet: Learning
 * Temporal Dynamics in Time-Dependent Partial Differential Equations", ICLR 2024), the layout of
 * the authors' dual ("disentangled") model, sinenet_dual.py of OpenPDE/SineNet in
 * github.com/divelab/AIRS, as opl layers.
 *
 * Input x (N, Cin, X, Y): the last T_hist frames of every field stacked as channels. Then
 *   x = lift(x)                              3x3 convolution Cin -> H (= w_0)
 *   K times ("waves"):  x = x + wave_k(x)    (the wave residual)
 *   y = final(x)                             3x3 convolution H -> Cout
 * with widths w_k = int(H m^k), k = 0..4 (m the multiplier; the paper keeps ~35 M parameters by
 * m = 2 for K = 1, 1.8075 for K = 2, 1.611 for K = 4, 1.5 for K = 6, 1.425 for K = 8).
 * One wave is a U-Net of 4 levels. With v the wave input, d_0 = v, h_0 = v:
 *   down i = 0..3:  d = pool(d); p = pool(h_i); h_{i+1} = B(i ? [p, d] : p) + L(p)
 *                   (B: 2 x [3x3 conv -> GroupNorm(1 group) -> GELU], in channels w_i (+ H for
 *                   the disentangled input d, pooled i + 1 times, at levels 1..3), out w_{i+1};
 *                   L a 1x1 convolution w_i -> w_{i+1}, the shortcut; pool a 2x2 average)
 *   up i = 0..3:    u = up(x) (x = h_4 first); x = B([h_{3-i}, u]) + L(u), B with in channels
 *                   w_{4-i} + w_{3-i}, out w_{3-i}; L: w_{4-i} -> w_{3-i}
 * up is bicubic x2 interpolation (align_corners = False, a = -0.75, as F.interpolate's
 * 'bicubic'); with circular padding it pads 2 periodically, interpolates, and crops 4 from each
 * side (the authors' circular_interpolate). Every 3x3 convolution pads by 1 with zeros or
 * circularly (PyTorch padding_mode); all convolutions have biases; GroupNorm eps 1e-5, affine.
 * The parameter count of the whole model is therefore, with c3(a, b) = 9ab + b,
 * B(a, b) = c3(a, b) + c3(b, b) + 4b and L(a, b) = ab + b:
 *   c3(Cin, H) + c3(H, Cout) + K sum_i [ B(w_i + [i > 0] H, w_{i+1}) + L(w_i, w_{i+1})
 *                                        + B(w_{i+1} + w_i, w_i) + L(w_{i+1}, w_i) ].
 * The spatial extents must be multiples of 16 (four poolings by 2). */
#ifndef OPL_SINENET_H
#define OPL_SINENET_H

#include "core/ops.h"
#include "operators/model.h"

#define OPL_SINENET_LEVELS 4
#define OPL_SINENET_MAX_WAVES 16

typedef struct opl_sinenet_config {
  int waves;              /* K, 1..OPL_SINENET_MAX_WAVES */
  int64_t hidden;         /* H = w_0, 1..65536 */
  double mult;            /* m in [1, 4]: w_k = int(H m^k) (Python's int(H * m ** k)) */
  int64_t in_channels;    /* Cin = T_hist x fields */
  int64_t out_channels;   /* Cout = fields of the next frame */
  opl_pad_mode pad;       /* OPL_PAD_ZERO or OPL_PAD_CIRCULAR */
} opl_sinenet_config;

/* One conv block B: two 3x3 convolutions, each followed by GroupNorm(1) and GELU. */
typedef struct opl_sinenet_block {
  opl_tensor *w1, *b1, *g1, *be1;   /* (Co, Ci, 3, 3), (Co), (Co), (Co) */
  opl_tensor *w2, *b2, *g2, *be2;   /* (Co, Co, 3, 3), (Co), (Co), (Co) */
  opl_tensor *sw, *sb;              /* shortcut L: (Co, Cs), (Co) */
} opl_sinenet_block;

typedef struct opl_sinenet {
  opl_sinenet_config cfg;
  int64_t w[OPL_SINENET_LEVELS + 1];                                   /* widths w_0..w_4 */
  opl_tensor *lift_w, *lift_b;                                         /* (H, Cin, 3, 3), (H) */
  opl_sinenet_block down[OPL_SINENET_MAX_WAVES][OPL_SINENET_LEVELS];
  opl_sinenet_block up[OPL_SINENET_MAX_WAVES][OPL_SINENET_LEVELS];
  opl_tensor *final_w, *final_b;                                       /* (Cout, H, 3, 3), (Cout) */
} opl_sinenet;

/* Presets: "ins-k1", "ins-k2", "ins-k4", "ins-k6", "ins-k8" (the paper's incompressible NS
 * models: 4 history frames x 3 fields in, 3 out, hidden 64, zero padding, m 2 / 1.8075 / 1.611 /
 * 1.5 / 1.425; ins-k8 has 35,490,219 parameters, ins-k4 35,493,699, ins-k1 33,788,099, as the
 * authors' class counts them in torch), and "ns-k1", "ns-k4" (small models for opl's
 * vorticity data: 4 frames x 1 field in, 1 out, hidden 16, circular padding, m 2 and 1.601:
 * 2,115,729 and 2,126,877 parameters, equal within 0.6 %). OPL_ERR_ARG naming the presets
 * otherwise. */
int opl_sinenet_preset(const char *name, opl_sinenet_config *cfg, opl_err *err);
#define OPL_SINENET_PRESETS "ins-k1, ins-k2, ins-k4, ins-k6, ins-k8, ns-k1, ns-k4"

/* Check a configuration: OPL_OK or OPL_ERR_ARG with a message. */
int opl_sinenet_check_config(const opl_sinenet_config *cfg, opl_err *err);
/* The widths w[0..4] of a configuration (int(H m^k), as Python truncates). */
void opl_sinenet_widths(const opl_sinenet_config *cfg, int64_t *w);
/* The parameter count of a configuration, by the formula in the header comment. */
int64_t opl_sinenet_param_count(const opl_sinenet_config *cfg);

/* SineNet as an opl_model, kind "sinenet": sdim 2, input (N, in_channels, X, Y) with X and Y
 * multiples of 16 (else OPL_ERR_SHAPE saying so), output (N, out_channels, X, Y); parameters
 * "sinenet.lift.{w,b}", then per wave k and level i "sinenet.<k>.down<i>.{w1,b1,g1,be1,w2,b2,
 * g2,be2,sw,sb}" and "sinenet.<k>.up<i>.{...}", last "sinenet.final.{w,b}"; attributes "model" =
 * "sinenet", "sinenet.version", "sinenet.waves", "sinenet.hidden", "sinenet.mult",
 * "sinenet.in_channels", "sinenet.out_channels", "sinenet.padding" ("zeros", "circular"),
 * "sinenet.param_count". */
extern const opl_model_kind opl_sinenet_kind;
extern const opl_model_ops opl_sinenet_ops;

#endif
