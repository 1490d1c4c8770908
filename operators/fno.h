/* opl operators — the Fourier Neural Operator.
 *
 * Li, Kovachki, Azizzadenesheli, Liu, Bhattacharya, Stuart, Anandkumar, "Fourier Neural
 * Operator for Parametric Partial Differential Equations", ICLR 2021 (arXiv:2010.08895).
 * The architecture and its defaults follow the paper and its reference code (fourier_1d.py,
 * fourier_2d.py, fourier_2d_time.py, fourier_3d.py of github.com/zongyi-li/
 * fourier_neural_operator at commit fd1fb7a3); it is built only from core ops (core/ops.h).
 *
 * Layout is channels first: x (N, Cin, *S) -> y (N, Cout, *S), S = (X), (X, Y) or (X, Y, Z)
 * for d = 1, 2, 3 (d = 3 is "FNO-3d": two space axes and time as the third axis).
 *
 *   1. grid:    append d channels of coordinates, channel a = linspace(0, 1, S_a) along axis a
 *               (endpoint 1 included, numpy's linspace as in the reference's get_grid),
 *               regenerated for whatever resolution x has (resolution-agnostic).
 *   2. lifting: fc0 = nn.Linear(Cin + d, width) pointwise:  v = fc0([x, grid]).
 *   3. padding: v is zero padded on the right by pad[a] on spatial axis a (F.pad; the
 *               reference pads 9 in x and y for Darcy flow, 6 on the time axis for FNO-3d,
 *               nothing for Burgers and FNO-2d time stepping).
 *   4. L Fourier layers: v = K_l(v) + W_l v, followed by GELU except after the last layer
 *               (the reference applies GELU after layers 0..2 of 4); K_l = opl_spectral_conv with
 *               modes[a] kept frequencies per axis, W_l = nn.ConvNd(width, width, 1) (with bias).
 *   5. crop:    the padding is dropped.
 *   6. projection: fc1 = nn.Linear(width, proj_channels), GELU, fc2 = nn.Linear(proj_channels, Cout).
 * GELU is the exact erf form (PyTorch's default).
 *
 * Parameters (opl_params, in the reference's state-dict order and with its names):
 *   "fc0.weight" (width, Cin + d)   "fc0.bias" (width)
 *   "conv<l>.weights"  complex, d = 1: (width, width, m0); d = 2: (width, width, 2 m0, m1),
 *                      blocks [0, m0) / [m0, 2 m0) of axis 2 = the reference's weights1 /
 *                      weights2; d = 3: (width, width, 2 m0, 2 m1, m2) holding weights1..4
 *                      (see opl_spectral_conv), l = 0..L-1
 *   "w<l>.weight" (width, width, 1[, 1[, 1]]) (nn.ConvNd's kernel-1 shape, d ones)
 *   "w<l>.bias" (width), l = 0..L-1
 *   "fc1.weight" (proj, width)      "fc1.bias" (proj)
 *   "fc2.weight" (Cout, proj)       "fc2.bias" (Cout)
 * Difference from the reference's state dict: its conv<l>.weights1 (.. weights4) are one
 * tensor "conv<l>.weights" here (the layout of opl_spectral_conv).
 * Values are initialized with PyTorch's defaults: Kaiming-uniform weights (a = sqrt 5, fan_in)
 * and U(+-1/sqrt(fan_in)) biases for the linear and 1x1 layers, and the reference's
 * scale U(0, 1) real and imaginary parts, scale = 1 / width^2, for the spectral weights.
 *
 * Parameter counts (complex = 2 reals, as the reference's count_params) equal the reference's
 * for the same configuration, with one documented exception: fourier_2d_time.py and
 * fourier_3d.py define four BatchNorm layers (bn0..bn3, nn.BatchNorm2d/3d(width): weight and
 * bias, 2 width parameters each) that their forward never uses. opl carries no dead
 * parameters, so its count is 8 width smaller (160 for width 20: FNO-2d time 926,357 here vs
 * 926,517 printed by the reference; FNO-3d 6,558,377 vs 6,558,537).
 * opl_fno_reference_param_count() reports the reference's number including those layers.
 *
 * Resolution: every Fourier layer keeps modes[a] frequencies on axis a; forward requires
 * modes[a] <= S_a' / 2 with S_a' = S_a + pad[a] the padded extent (on the last axis this is
 * stricter than the reference's floor(S/2) + 1: the Nyquist bin of a real signal has no
 * imaginary part, so a weight on it would act differently at other resolutions).
 */
#ifndef OPL_FNO_H
#define OPL_FNO_H

#include "core/ops.h"
#include "core/rng.h"
#include "core/io.h"
#include "operators/model.h"

#define OPL_FNO_MAX_LAYERS 16
/* Maximum number of attributes opl_fno_config_to_meta writes. */
#define OPL_FNO_META_MAX 16
/* Version of the attribute set written by opl_fno_config_to_meta ("fno.version"). */
#define OPL_FNO_META_VERSION 1

typedef struct opl_fno_config {
  int d;                   /* spatial dimensions: 1, 2 or 3 */
  int64_t in_channels;     /* Cin, input channels without the d grid channels (>= 1) */
  int64_t out_channels;    /* Cout (>= 1) */
  int64_t width;           /* channels of the Fourier layers (>= 1) */
  int modes[3];            /* frequencies kept per spatial axis, modes[0..d) (>= 1) */
  int layers;              /* L Fourier layers, 1..OPL_FNO_MAX_LAYERS */
  int64_t proj_channels;   /* hidden width of the projection (fc1 out), >= 1 */
  int64_t pad[3];          /* right zero padding per spatial axis, pad[0..d) (>= 0) */
} opl_fno_config;

/* The paper's defaults for d spatial dimensions: 1-D modes 16, width 64; 2-D modes 12 (both
 * axes), width 20; 3-D modes 8 (all axes), width 20; L = 4 layers, projection 128 channels,
 * Cin = Cout = 1, no padding. For d outside 1..3 the result carries that d (and the 1-D
 * values), so opl_fno_init reports it. */
opl_fno_config opl_fno_config_default(int d);

/* The reference scripts at commit fd1fb7a3, as configurations. */
typedef enum {
  OPL_FNO_REF_1D = 0,     /* fourier_1d.py (Burgers): d 1, Cin 1, modes 16, width 64, no pad */
  OPL_FNO_REF_2D,         /* fourier_2d.py (Darcy): d 2, Cin 1, modes 12, width 32, pad 9, 9 */
  OPL_FNO_REF_2D_TIME,    /* fourier_2d_time.py (NS): d 2, Cin 10, modes 12, width 20, no pad */
  OPL_FNO_REF_3D,         /* fourier_3d.py (NS): d 3, Cin 10, modes 8, width 20, pad 0, 0, 6 */
  OPL_FNO_REF_COUNT
} opl_fno_ref;
/* The configuration of a reference script's model as the script instantiates it (all have
 * L = 4, projection 128, Cout 1). An unknown script gives opl_fno_config_default(0). */
opl_fno_config opl_fno_config_reference(opl_fno_ref script);

/* OPL_OK if cfg describes a model (the ranges in opl_fno_config), else OPL_ERR_ARG with a
 * message naming the field and its value. Resolution-dependent checks happen at forward. */
int opl_fno_config_check(const opl_fno_config *cfg, opl_err *err);
/* Number of real parameters of the model cfg describes (complex counted as 2), without
 * building it; -1 if cfg is invalid. */
int64_t opl_fno_param_count(const opl_fno_config *cfg);
/* The number the reference script's count_params prints for a model of configuration cfg:
 * opl_fno_param_count(cfg) plus the parameters of the layers the script defines but never
 * uses (4 BatchNorm(width) layers, 8 width reals, in fourier_2d_time.py and fourier_3d.py;
 * none in fourier_1d.py and fourier_2d.py). -1 if the script cannot build cfg: its d, L = 4,
 * projection 128, Cout 1 and its fixed input channel count (1, 1, 10, 10) are hard-coded. */
int64_t opl_fno_reference_param_count(const opl_fno_config *cfg, opl_fno_ref script);

typedef struct opl_fno {
  opl_fno_config cfg;
  /* Parameters, owned by the opl_params set given to opl_fno_init. */
  opl_tensor *fc0_w, *fc0_b;
  opl_tensor *conv[OPL_FNO_MAX_LAYERS];        /* spectral weights, complex */
  opl_tensor *w_w[OPL_FNO_MAX_LAYERS], *w_b[OPL_FNO_MAX_LAYERS];
  opl_tensor *fc1_w, *fc1_b, *fc2_w, *fc2_b;
} opl_fno;

/* Check cfg, add the model's parameters to p (names and order above; p may already hold
 * other parameters, but none of these names) and initialize them from rng with PyTorch's
 * defaults, in the order of the reference's module definition. rng NULL leaves them zero
 * (for loading). Returns OPL_OK, or a status with a message in err; on failure *m is zeroed
 * and the parameters already added stay in p (free the set). */
int opl_fno_init(opl_fno *m, opl_params *p, const opl_fno_config *cfg, opl_rng *rng,
                 opl_err *err);

/* The grid channels for a batch of N samples at resolution S[0..d): a new arena tensor
 * (N, d, *S) without gradient, channel a = linspace(0, 1, S_a) along spatial axis a (computed
 * as numpy does: i * (1 / (S_a - 1)) in double, the last point exactly 1; 0 when S_a = 1).
 * NULL (sticky error) on a bad d, N or S. */
opl_tensor *opl_fno_grid(opl_ctx *c, int d, int64_t N, const int64_t *S);

/* Forward pass: x (N, Cin, *S) real -> (N, Cout, *S). Errors (sticky in c, NULL returned):
 * OPL_ERR_SHAPE if x is not of rank d + 2 or has another channel count than Cin (the message
 * names x's shape and the expected one), or if some modes[a] exceeds half the padded
 * resolution (the message names the modes and the resolution). */
opl_tensor *opl_fno_forward(opl_ctx *c, const opl_fno *m, opl_tensor *x);

/* Autoregressive rollout (the time stepping of fourier_2d_time.py; one step, the last Cin frames
 * (N, Cin, X, Y) -> the next frame (N, 1, X, Y), is opl_fno_forward): x (N, Cin, *S) holds the
 * last Cin frames as channels, oldest first; each step predicts the next Cout frames with
 * opl_fno_forward, appends them to the window and drops the oldest Cout frames (needs
 * Cout <= Cin). Returns every prediction concatenated along axis 1: (N, steps Cout, *S).
 * Gradients flow through the whole rollout (the predictions are fed back without detaching,
 * as in the reference). steps >= 1 (OPL_ERR_ARG otherwise). */
opl_tensor *opl_fno_rollout(opl_ctx *c, const opl_fno *m, opl_tensor *x, int steps);

/* The input of FNO-3d (fourier_3d.py): frames x (N, T_in, X, Y), each repeated along a new
 * trailing time axis of length T -> (N, T_in, X, Y, T) (differentiable in x). The model adds
 * the three grid channels itself. T >= 1 (OPL_ERR_ARG), x rank 4 (OPL_ERR_SHAPE). */
opl_tensor *opl_fno3d_input(opl_ctx *c, opl_tensor *x, int64_t T);

/* ------------------------------------------------------------------ files */

/* Write cfg as attributes into kv[0..OPL_FNO_META_MAX): "model" = "fno", "fno.version",
 * "fno.d", "fno.in_channels", "fno.out_channels", "fno.width", "fno.layers",
 * "fno.proj_channels", "fno.modes0".."fno.modes<d-1>", "fno.pad0".."fno.pad<d-1>" and
 * "fno.param_count". Keys are static strings. Returns the number of entries written. */
int opl_fno_config_to_meta(const opl_fno_config *cfg, opl_kv *kv);
/* Read a configuration from attributes (as written by opl_fno_config_to_meta): "model" must be
 * "fno" (OPL_ERR_FORMAT otherwise), every field present (OPL_ERR_NOTFOUND naming the key),
 * integer and in range (OPL_ERR_FORMAT naming the key and value), fno.version not newer than
 * OPL_FNO_META_VERSION (OPL_ERR_UNSUPPORTED), the result valid (opl_fno_config_check, else
 * OPL_ERR_FORMAT) and its parameter count equal to fno.param_count (OPL_ERR_FORMAT).
 * *cfg is written only on success. */
int opl_fno_config_from_meta(const opl_kv *kv, int n, opl_fno_config *cfg, opl_err *err);

/* Save a model as an opl checkpoint (core/io.h: /model holds p, written atomically in the
 * build's precision) whose root attributes describe the model (opl_fno_config_to_meta)
 * followed by extra[0..nextra) (provenance: dataset, epochs, ...; extra may be NULL when
 * nextra is 0). p must hold exactly the model's parameters (OPL_ERR_ARG naming the first
 * missing or foreign one); an extra key equal to a model or checkpoint key is OPL_ERR_ARG. */
int opl_fno_save(const char *path, const opl_fno *m, const opl_params *p, const opl_kv *extra,
                 int nextra, opl_err *err);
/* Rebuild a model from a file written by opl_fno_save (or any opl checkpoint carrying the
 * same attributes): p must be an initialized, EMPTY set (OPL_ERR_ARG). Verifies the file
 * (checksum, checkpoint format), reads and checks the configuration (opl_fno_config_from_meta),
 * creates the parameters and loads them strictly (every name and shape must match, no extra
 * dataset). On failure p is left empty and *m zeroed. A checkpoint of the other precision
 * loads (converted). */
int opl_fno_load(const char *path, opl_fno *m, opl_params *p, opl_err *err);

/* ------------------------------------------------------------------ the model interface */

/* The FNO as an opl_model (operators/model.h): kind "fno", configuration opl_fno_config.
 * create = opl_fno_init into the model's parameter set (same names, order and values);
 * forward = opl_fno_forward; check_input = the shape and resolution checks of the forward
 * (rank d + 2, Cin channels, modes[a] <= padded extent / 2); to_meta = opl_fno_config_to_meta;
 * config_from_meta = opl_fno_config_from_meta; set_io sets d, in_channels, out_channels and
 * zeroes modes and pad of the unused axes; summary rows: fc0 (lifting, with the grid
 * channels), pad, fourier0..L-1 (spectral weights + 1x1 convolution), crop, fc1, fc2. */
extern const opl_model_kind opl_fno_kind;
extern const opl_model_ops opl_fno_ops;
/* The FNO state of a model of kind fno, or NULL for another kind. */
const opl_fno *opl_model_fno(const opl_model *m);

#endif
