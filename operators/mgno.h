/* opl operators — MgNO, the multigrid neural operator (He, Liu, Xu, "MgNO: Efficient
 * Parameterization of Linear Operators via Multigrid", ICLR 2024), the authors' Darcy model
 * (MgNO_DC in their models.py) as opl layers.
 *
 * Each of `layers` layers maps v (N, Ci, X, Y) to gelu(V(v) + W v + b), where W, b is a 1x1
 * convolution Ci -> Cu with bias and V is one V-cycle read as a linear operator on (u, f) channel
 * pairs (f = v, Cf = Ci channels; u has Cu channels), no biases:
 *   level 0:      u = S f, then (iters[0][0] - 1) times u += S (f - A u)
 *   level l >= 1: u = Pi u, f = R f (3x3 stride-2 convolutions), then iters[l][0] times
 *                 u += S (f - A u)
 *   upward, l = levels-2 .. 0: u_l += RT_l u_{l+1} (4x4 stride-2 transposed convolution,
 *                 padding 1), then iters[l][1] times u_l += S (f_l - A u_l)
 * A (Cu -> Cf) and S (Cf -> Cu) are 3x3 convolutions, each smoothing step its own pair. The
 * first layer has Ci = the input channels, the others Ci = Cu; a last 1x1 convolution Cu -> Cout
 * without bias projects. The convolutions pad by `pad` (zeros: Dirichlet; circular: periodic);
 * the transposed ones by zeros, as PyTorch's ConvTranspose2d.
 * A restriction maps n points to ceil(n / 2); where a level's extent is odd (2m - 1) the
 * prolongation's 2m rows (columns) are cropped to the first 2m - 1, so coarse point j sits on
 * fine point 2j as the restriction centres it (taps 0..2 of RT then form the 3x3 stride-2
 * transposed convolution of the authors' MgConv_DC_smooth for odd grids such as 211^2; opl
 * keeps one 4x4 RT on every level, so the parameters do not depend on the resolution).
 * The parameter count is therefore, per layer with f-channels Ci (L = levels):
 *   RT: (L-1) 16 Cu^2;  Pi, R: (L-1) 9 (Cu^2 + Ci^2);  init S: 9 Ci Cu;
 *   A, S pairs: (sum of all iters - 1) 2 * 9 Ci Cu;  1x1: Ci Cu + Cu,
 * plus Cu Cout for the projection.
 *
 * The Navier-Stokes variant (the authors' MgNO_NS / MgConv in models.py; variant OPL_MGNO_NS)
 * differs in three places: on the way up each level's sum is layer-normalized,
 *   u_l = LayerNorm_l(u_l + RT_l u_{l+1})   over (Cu, X / 2^l, Y / 2^l) per sample, with an
 *                                           elementwise affine weight and bias of that shape,
 * the layers have no 1x1 convolution (v -> gelu(V(v))), and the output has a global skip: the
 * projection plus the input's last Cout channels (the latest frames). Per layer that removes
 * Ci Cu + Cu and adds sum_{l < L-1} 2 Cu (X / 2^l)(Y / 2^l) parameters: the LayerNorms tie the
 * model to its grid (ln_res), as the authors' nn.LayerNorm([Cu, 64 // 2**j, 64 // 2**j]). */
#ifndef OPL_MGNO_H
#define OPL_MGNO_H

#include "core/ops.h"
#include "operators/model.h"

#define OPL_MGNO_MAX_LAYERS 16
#define OPL_MGNO_MAX_LEVELS 10
#define OPL_MGNO_MAX_PAIRS 64                /* A, S smoothing pairs per layer */

typedef struct opl_mgno_config {
  int layers;                            /* 1..OPL_MGNO_MAX_LAYERS */
  int levels;                            /* 1..OPL_MGNO_MAX_LEVELS */
  int iters[OPL_MGNO_MAX_LEVELS][2];     /* [pre, post] smoothing steps per level (the authors'
                                          * num_iteration); iters[0][0] >= 1, the coarsest level's
                                          * post count 0 (it has no upward pass) */
  int64_t channels_u;                    /* Cu */
  int64_t in_channels;                   /* Cf of the first layer (the authors' num_channel_f) */
  int64_t out_channels;
  opl_pad_mode pad;                      /* OPL_PAD_ZERO, OPL_PAD_CIRCULAR or OPL_PAD_REFLECT */
  int variant;                           /* OPL_MGNO_DC (0) or OPL_MGNO_NS */
  int64_t ln_res[2];                     /* NS: the grid (X, Y) the LayerNorms are sized for; each a
                                          * multiple of 2^(levels-1); unused by DC */
} opl_mgno_config;

enum { OPL_MGNO_DC = 0, OPL_MGNO_NS = 1 };

/* A model's state; the tensors belong to the model's parameter set. */
typedef struct opl_mgno_layer {
  int64_t cf;
  opl_tensor *S0;                                        /* (Cu, Cf, 3, 3) */
  opl_tensor *A[OPL_MGNO_MAX_PAIRS];                     /* (Cf, Cu, 3, 3) per smoothing pair */
  opl_tensor *S[OPL_MGNO_MAX_PAIRS];                     /* (Cu, Cf, 3, 3) */
  opl_tensor *Pi[OPL_MGNO_MAX_LEVELS], *R[OPL_MGNO_MAX_LEVELS]; /* (Cu, Cu, 3, 3), (Cf, Cf, 3, 3); [1..L) */
  opl_tensor *RT[OPL_MGNO_MAX_LEVELS];                   /* (Cu, Cu, 4, 4); [0..L-1) */
  opl_tensor *W, *b;                                     /* (Cu, Cf), (Cu); DC only */
  opl_tensor *ln_w[OPL_MGNO_MAX_LEVELS], *ln_b[OPL_MGNO_MAX_LEVELS]; /* NS: (Cu, X/2^l, Y/2^l); [0..L-1) */
} opl_mgno_layer;

typedef struct opl_mgno {
  opl_mgno_config cfg;
  int npairs;                                            /* A, S pairs per layer */
  opl_mgno_layer layer[OPL_MGNO_MAX_LAYERS];
  opl_tensor *proj;                                      /* (Cout, Cu) */
  char iters_str[OPL_MGNO_MAX_LEVELS * 24];              /* "1,0;1,0;2,0" (checkpoint attribute) */
} opl_mgno;

/* Presets: "darcy-rough" (the paper's Darcy rough-coefficient model: 4 layers, Cu 24, Cf 1,
 * 6 levels, num_iteration [[1,0]x5, [2,0]], zero padding: 572,661 parameters),
 * "darcy-smooth" (the authors' darcy.py defaults: 5 layers, Cu 24, Cf 1, 5 levels,
 * [[1,0],[1,0],[1,0],[2,0],[2,0]], zero padding) and "ns" (the authors' navier.py defaults,
 * MgNO_NS: 5 layers, Cu 32, Cf 1, 5 levels, [[1,0],[1,0],[1,0],[2,0],[2,0]], circular padding,
 * LayerNorms on a 64 x 64 grid, global skip: 2,883,300 parameters). OPL_ERR_ARG naming the
 * presets otherwise. */
int opl_mgno_preset(const char *name, opl_mgno_config *cfg, opl_err *err);
/* The preset names, for messages. */
#define OPL_MGNO_PRESETS "darcy-rough, darcy-smooth, ns"

/* Parse a num_iteration list "1,0;1,0;2,0" (levels separated by ';', each "pre,post") into cfg
 * (levels and iters). OPL_ERR_ARG with a message saying what is wrong. */
int opl_mgno_parse_iters(const char *s, opl_mgno_config *cfg, opl_err *err);

/* Check a configuration: OPL_OK or OPL_ERR_ARG with a message. */
int opl_mgno_check_config(const opl_mgno_config *cfg, opl_err *err);

/* The parameter count of a configuration, by the formula in the header comment. */
int64_t opl_mgno_param_count(const opl_mgno_config *cfg);

/* The MgNO as an opl_model, kind "mgno": sdim 2, input (N, in_channels, X, Y) with X and Y
 * of any extent at least 2^(levels-2) + 1 (each of the levels-1 halvings n -> ceil(n/2) starts
 * from 2 points or more; else OPL_ERR_SHAPE saying so), output (N, out_channels, X, Y);
 * parameters "mgno.<i>.<level>...." in the order documented in mgno.c; attributes "model" =
 * "mgno", "mgno.version", "mgno.layers", "mgno.levels", "mgno.iters" ("1,0;1,0"),
 * "mgno.channels_u", "mgno.in_channels", "mgno.out_channels", "mgno.padding" ("zeros",
 * "circular", "reflect"), "mgno.param_count"; the NS variant also "mgno.variant" = "ns",
 * "mgno.ln_x" and "mgno.ln_y" (its ln_res), with version 2 (DC files keep version 1). */
extern const opl_model_kind opl_mgno_kind;
extern const opl_model_ops opl_mgno_ops;

#endif
