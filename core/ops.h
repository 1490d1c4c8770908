/* opl — differentiable ops.
 *
 * Every constructor: takes the context first; returns NULL if the context already holds an
 * error or an input is NULL; checks shapes and records OPL_ERR_SHAPE / OPL_ERR_ARG with a
 * message naming the op and both shapes; computes the output eagerly into the arena; records
 * one tape node when an input requires grad. Backward kernels accumulate.
 * Shapes are written batch first: N batch, C channels, X/Y/Z space, "..." any leading axes.
 */
#ifndef OPL_OPS_H
#define OPL_OPS_H

#include "core/opl.h"

/* ================================================================ op_elementwise.c */

/* Binary ops with NumPy broadcasting (shapes aligned from the right; an extent of 1
 * broadcasts). Out: the broadcast shape. Real tensors only. */
opl_tensor *opl_add(opl_ctx *c, opl_tensor *a, opl_tensor *b);
opl_tensor *opl_sub(opl_ctx *c, opl_tensor *a, opl_tensor *b);
opl_tensor *opl_mul(opl_ctx *c, opl_tensor *a, opl_tensor *b);
opl_tensor *opl_div(opl_ctx *c, opl_tensor *a, opl_tensor *b);
/* y = alpha * x (real or complex x). */
opl_tensor *opl_scale(opl_ctx *c, opl_tensor *x, double alpha);
/* y = x + s. */
opl_tensor *opl_add_scalar(opl_ctx *c, opl_tensor *x, double s);
/* y = alpha * a + beta * b, same shapes (real or complex, both alike). */
opl_tensor *opl_axpby(opl_ctx *c, double alpha, opl_tensor *a, double beta, opl_tensor *b);
/* Add a per-index bias along one axis: x (..., D on axis, ...), b (D). */
opl_tensor *opl_bias(opl_ctx *c, opl_tensor *x, opl_tensor *b, int axis);

/* Unary ops, same shape out. */
typedef enum {
  OPL_SQUARE, OPL_SQRT, OPL_EXP, OPL_LOG, OPL_SIN, OPL_COS, OPL_TANH, OPL_RELU,
  OPL_GELU,   /* exact, erf form: x/2 (1 + erf(x/sqrt 2)) (PyTorch default) */
  OPL_SILU, OPL_SOFTPLUS, OPL_ABS, OPL_SIGMOID, OPL_UNARY_COUNT
} opl_unary_kind;
opl_tensor *opl_unary(opl_ctx *c, opl_tensor *x, opl_unary_kind kind);
#define opl_square(c, x) opl_unary(c, x, OPL_SQUARE)
#define opl_sqrt(c, x) opl_unary(c, x, OPL_SQRT)
#define opl_exp(c, x) opl_unary(c, x, OPL_EXP)
#define opl_log(c, x) opl_unary(c, x, OPL_LOG)
#define opl_sin(c, x) opl_unary(c, x, OPL_SIN)
#define opl_cos(c, x) opl_unary(c, x, OPL_COS)
#define opl_tanh(c, x) opl_unary(c, x, OPL_TANH)
#define opl_relu(c, x) opl_unary(c, x, OPL_RELU)
#define opl_gelu(c, x) opl_unary(c, x, OPL_GELU)
#define opl_silu(c, x) opl_unary(c, x, OPL_SILU)
#define opl_softplus(c, x) opl_unary(c, x, OPL_SOFTPLUS)
#define opl_abs(c, x) opl_unary(c, x, OPL_ABS)
#define opl_sigmoid(c, x) opl_unary(c, x, OPL_SIGMOID)
/* Name of a unary kind ("gelu"). */
const char *opl_unary_name(opl_unary_kind kind);

/* ================================================================ op_reduce.c */

/* Sum / mean of all elements: a scalar of shape (1). */
opl_tensor *opl_sum(opl_ctx *c, opl_tensor *x);
opl_tensor *opl_mean(opl_ctx *c, opl_tensor *x);
/* Sum / mean over one axis (negative counts from the end); keepdim keeps it as extent 1. */
opl_tensor *opl_sum_axis(opl_ctx *c, opl_tensor *x, int axis, int keepdim);
opl_tensor *opl_mean_axis(opl_ctx *c, opl_tensor *x, int axis, int keepdim);

/* Losses, scalar (1) out. */
typedef enum { OPL_REDUCE_MEAN, OPL_REDUCE_SUM } opl_reduction;
/* Relative Lp error per sample, ||u - v||_p / ||v||_p over all non-batch axes of sample n,
 * reduced over the batch (mean or sum). u, v same shape (N, ...); p = 1 or 2. A sample with
 * ||v|| = 0 is an error (OPL_ERR_ARG naming the sample). */
opl_tensor *opl_rel_lp_loss(opl_ctx *c, opl_tensor *u, opl_tensor *v, int p, opl_reduction red);
/* Mean squared error over all elements. */
opl_tensor *opl_mse_loss(opl_ctx *c, opl_tensor *u, opl_tensor *v);

/* ================================================================ op_linear.c */

/* Last-axis linear layer (PyTorch nn.Linear): x (..., In), w (Out, In), b (Out) or NULL
 * -> (..., Out). */
opl_tensor *opl_linear(opl_ctx *c, opl_tensor *x, opl_tensor *w, opl_tensor *b);
/* Channel-mixing 1x1 convolution (PyTorch Conv1d/2d/3d with kernel 1): x (N, Ci, *S),
 * w (Co, Ci), b (Co) or NULL -> (N, Co, *S). */
opl_tensor *opl_channel_linear(opl_ctx *c, opl_tensor *x, opl_tensor *w, opl_tensor *b);
/* Pointwise two-layer network over channels (the FNO projection fc2(act(fc1 v))), fused:
 * y_n = w2 act(w1 x_n + b1) + b2 per sample n. x [N, Ci, *S], w1 [Ch, Ci], b1 [Ch] or NULL,
 * w2 [Co, Ch], b2 [Co] or NULL, act an opl_unary_kind; y [N, Co, *S]. Equal to channel_linear,
 * unary, channel_linear, but keeps only the hidden pre-activation [N, Ch, *S] for backward (the
 * activation is recomputed a sample at a time), none without a tape. */
opl_tensor *opl_channel_mlp(opl_ctx *c, opl_tensor *x, opl_tensor *w1, opl_tensor *b1,
                            opl_tensor *w2, opl_tensor *b2, int act);
/* Matrix product of rank-2 tensors with optional transposes: op(a) (M, K) op(b) (K, N). */
opl_tensor *opl_matmul(opl_ctx *c, opl_tensor *a, opl_tensor *b, int trans_a, int trans_b);
/* Batched: a (B, M, K), b (B, K, N) -> (B, M, N). */
opl_tensor *opl_bmm(opl_ctx *c, opl_tensor *a, opl_tensor *b);

/* ================================================================ op_shape.c */

/* Concatenate n tensors (same shape except on axis) along axis. */
opl_tensor *opl_concat(opl_ctx *c, int n, opl_tensor *const *xs, int axis);
/* Split x along axis into n pieces of the given sizes (summing to the extent); outs[n]. */
int opl_split(opl_ctx *c, opl_tensor *x, int axis, int n, const int64_t *sizes, opl_tensor **outs);
/* x[..., start:start+len, ...] on one axis. */
opl_tensor *opl_slice(opl_ctx *c, opl_tensor *x, int axis, int64_t start, int64_t len);
typedef enum { OPL_PAD_ZERO, OPL_PAD_CIRCULAR, OPL_PAD_REPLICATE, OPL_PAD_REFLECT } opl_pad_mode;
/* Pad the trailing nd axes: lo[i], hi[i] for trailing axis i (i = 0 is the first of them).
 * Circular padding takes any width (the periodic extension); reflect mirrors about the edge without
 * repeating it (PyTorch 'reflect'): widths < extent. */
opl_tensor *opl_pad(opl_ctx *c, opl_tensor *x, int nd, const int64_t *lo, const int64_t *hi,
                    opl_pad_mode mode);
/* Inverse of zero padding: drop lo[i] and hi[i] entries of trailing axis i. */
opl_tensor *opl_crop(opl_ctx *c, opl_tensor *x, int nd, const int64_t *lo, const int64_t *hi);
/* Same data, another shape of the same numel (gradients flow). */
opl_tensor *opl_reshape(opl_ctx *c, opl_tensor *x, int rank, const int64_t *shape);
/* Complex x (...) seen as real (..., 2), (re, im) on the new last axis, sharing x's data
 * (torch.view_as_real; gradients flow). x complex of rank <= 4. */
opl_tensor *opl_view_as_real(opl_ctx *c, opl_tensor *x);
/* out.shape[i] = x.shape[perm[i]] over all rank axes. */
opl_tensor *opl_permute(opl_ctx *c, opl_tensor *x, const int *perm);

/* ================================================================ op_conv.c */

typedef struct opl_conv_opts {
  int stride[3];           /* 0 means 1 */
  int padding[3];          /* per spatial axis, both sides */
  int dilation[3];         /* 0 means 1 */
  int output_padding[3];   /* transposed conv only */
  int groups;              /* 0 means 1 */
  opl_pad_mode pad_mode;   /* zeros, circular, replicate or reflect (PyTorch padding_mode) */
} opl_conv_opts;
/* Convolution (PyTorch cross-correlation), d = rank(x) - 2 in {1, 2, 3}:
 * x (N, Ci, *S), w (Co, Ci/groups, *K), b (Co) or NULL -> (N, Co, *S'),
 * S' = floor((S + 2 pad - dil (K - 1) - 1) / stride) + 1. opts NULL: defaults. */
opl_tensor *opl_conv(opl_ctx *c, opl_tensor *x, opl_tensor *w, opl_tensor *b,
                     const opl_conv_opts *opts);
/* Transposed convolution (PyTorch ConvTransposeNd, zero padding only):
 * x (N, Ci, *S), w (Ci, Co/groups, *K), b (Co) or NULL -> (N, Co, *S'),
 * S' = (S - 1) stride - 2 pad + dil (K - 1) + output_padding + 1. */
opl_tensor *opl_conv_transpose(opl_ctx *c, opl_tensor *x, opl_tensor *w, opl_tensor *b,
                               const opl_conv_opts *opts);
/* ================================================================ op_resample.c */

/* Average pooling over the trailing d = rank(x) - 2 axes, no padding: kernel[d], stride[d]
 * (0: = kernel). */
opl_tensor *opl_avgpool(opl_ctx *c, opl_tensor *x, const int *kernel, const int *stride);
typedef enum { OPL_INTERP_NEAREST, OPL_INTERP_LINEAR, OPL_INTERP_CUBIC } opl_interp_mode;
/* Resize the trailing d = rank(x) - 2 axes to size[d] (PyTorch F.interpolate, nearest,
 * (bi/tri)linear or bicubic (a = -0.75, applied per axis) with align_corners = False). */
opl_tensor *opl_interp(opl_ctx *c, opl_tensor *x, const int64_t *size, opl_interp_mode mode);

/* ================================================================ op_norm.c */

/* Group norm: x (N, C, *S), G groups dividing C, gamma/beta (C) or NULL. */
opl_tensor *opl_group_norm(opl_ctx *c, opl_tensor *x, int groups, opl_tensor *gamma,
                           opl_tensor *beta, double eps);
/* gelu(group_norm(x)) in one op (SineNet's and U-Nets' GroupNorm -> GELU): the same values as
 * opl_gelu(c, opl_group_norm(...)) up to rounding, but the normalized values are not stored:
 * backward recomputes them from x and the statistics, so a block keeps one activation (x) where
 * the two ops keep two, and saves a pass over memory each way. */
opl_tensor *opl_group_norm_gelu(opl_ctx *c, opl_tensor *x, int groups, opl_tensor *gamma,
                                opl_tensor *beta, double eps);
/* gelu(group_norm(x)) + r in one op (a U-Net block's output with its shortcut added): r has the
 * shape of x and is added as the output is written, saving the separate add's pass over memory;
 * gradients as opl_group_norm_gelu's, and r's is the output's. */
opl_tensor *opl_group_norm_gelu_add(opl_ctx *c, opl_tensor *x, int groups, opl_tensor *gamma, opl_tensor *beta,
                                    double eps, opl_tensor *r);
/* Instance norm (group norm with C groups). */
opl_tensor *opl_instance_norm(opl_ctx *c, opl_tensor *x, opl_tensor *gamma, opl_tensor *beta,
                              double eps);
/* Layer norm over the trailing nd axes; gamma/beta have those trailing shapes, or NULL. */
opl_tensor *opl_layer_norm(opl_ctx *c, opl_tensor *x, int nd, opl_tensor *gamma,
                           opl_tensor *beta, double eps);

/* ================================================================ op_spectral.c */

/* Real-to-complex DFT over the trailing d axes (d = 1, 2, 3), unnormalized (torch.fft.rfftn):
 * x real (..., X[, Y[, Z]]) -> complex (..., X[, Y], Z/2+1). */
opl_tensor *opl_rfft(opl_ctx *c, opl_tensor *x, int d);
/* Complex-to-real inverse over the trailing d axes, normalized by 1/(X Y Z) (torch.fft.irfftn):
 * complex (..., X[, Y], n_last/2+1) -> real (..., X[, Y], n_last). Imaginary parts that a real
 * signal cannot carry (last-axis bins 0 and n_last/2) are ignored, as FFTW and torch do. */
opl_tensor *opl_irfft(opl_ctx *c, opl_tensor *xf, int d, int64_t n_last);
/* Spectral convolution (Li et al., "Fourier Neural Operator for Parametric PDEs", 2021):
 * y = irfft( W . trunc(rfft(x)) ) over the trailing d axes, keeping modes[i] lowest
 * frequencies of each axis, both signs on every non-last axis.
 * x real (N, Ci, *S); w complex, 1-D (Ci, Co, m0), 2-D (Ci, Co, 2 m0, m1),
 * 3-D (Ci, Co, 2 m0, 2 m1, m2): block [0, m) holds k = 0..m-1 and block [m, 2m) holds
 * k = -m..-1 of that axis. Requires 2 m_i <= S_i on non-last axes and m_last <= S_last/2 + 1.
 * out real (N, Co, *S). */
opl_tensor *opl_spectral_conv(opl_ctx *c, opl_tensor *x, opl_tensor *w, int d, const int *modes);
/* One Fourier layer of an FNO (Li et al., ICLR 2021, eq. 2), fused:
 *   y = act(spectral_conv(x, wk, d, modes) + channel_linear(x, w, b))
 * x [N, Ci, *S] (d trailing axes), wk [Ci, Co, *modes'] complex as opl_spectral_conv, w [Co, Ci],
 * b [Co] or NULL, act an opl_unary_kind or -1 for none; y [N, Co, *S]. Equal to the composition
 * of the four ops, but keeps one activation-sized buffer for backward (the pre-activation, only
 * when act >= 0) instead of four, and takes its transform scratch back before returning. */
opl_tensor *opl_fourier_layer(opl_ctx *c, opl_tensor *x, opl_tensor *wk, opl_tensor *w,
                              opl_tensor *b, int d, const int *modes, int act);
/* Spectral derivative on a periodic grid of the trailing d axes with periods length[d]:
 * multiply the DFT by prod_i (2 pi i k_i / L_i)^order[i]. For odd orders the Nyquist bin
 * of an even-sized axis is zeroed (the derivative of a real signal has no real value there). */
opl_tensor *opl_spectral_deriv(opl_ctx *c, opl_tensor *x, int d, const int *order,
                               const double *length);

/* FFT plan cache (core/fft.c): plans are made once per (shape, direction, threads) on scratch
 * buffers and reused; wisdom can be saved and loaded (a file), exported and imported (a string).
 * Errors of load: OPL_ERR_ARG (no path), OPL_ERR_NOTFOUND / OPL_ERR_IO (cannot open),
 * OPL_ERR_FORMAT (not wisdom of this precision and FFTW configuration: nothing merged). */
int opl_fft_wisdom_load(const char *path, opl_err *err);
int opl_fft_wisdom_save(const char *path, opl_err *err);
/* The planner's accumulated wisdom as a string (free() it), or NULL (out of memory, err
 * filled): FFTW's text with its entry lines sorted, so that the same wisdom always gives the
 * same string (FFTW lists entries in the order of its hash table, which depends on history). */
char *opl_fft_wisdom_export(opl_err *err);
/* Merge wisdom from a string (opl_fft_wisdom_export, or a wisdom file's text): plans made
 * from now on for the problems it covers use its recorded algorithms, in either planner mode.
 * Safe as the first FFTW call of a process (FFTW's thread support is initialized first, so
 * wisdom exported by a process that made threaded plans is accepted). OPL_ERR_ARG (NULL),
 * OPL_ERR_FORMAT (not wisdom of this precision and FFTW configuration: nothing merged). */
int opl_fft_wisdom_import(const char *wisdom, opl_err *err);
/* Planner mode of new plans: OPL_FFT_ESTIMATE (the default) chooses each plan by FFTW's
 * cost model alone, a deterministic function of (problem, thread count, CPU features), so
 * two runs of the same computation get the same algorithms and the same bits;
 * OPL_FFT_MEASURE times candidate algorithms (FFTW_MEASURE), which can choose differently
 * from one process to the next (and so change results in the last bits) unless wisdom
 * from an earlier run is imported first. Affects plans made after the call. */
enum { OPL_FFT_MEASURE = 0, OPL_FFT_ESTIMATE = 1 };
void opl_fft_set_planner(int estimate);
/* The current planner mode (OPL_FFT_ESTIMATE or OPL_FFT_MEASURE). */
int opl_fft_get_planner(void);
/* Forget every cached plan (they are rebuilt on demand). */
void opl_fft_cache_clear(void);


/* ================================================================ op_ode.c */

/* Most terms of one opl_lincomb. */
#define OPL_LINCOMB_MAX 8
/* y = sum_{j<m} a[j] x[j], 1 <= m <= OPL_LINCOMB_MAX, real tensors of one shape, one tape node
 * (the stage combinations of a Runge-Kutta step). Per element y = a0 x0, then y += aj xj in
 * order j = 1..m-1, the coefficients rounded to opl_real. A tensor may appear more than once. */
opl_tensor *opl_lincomb(opl_ctx *c, int m, const double *a, opl_tensor *const *x);
/* The forward kernel of opl_lincomb on raw arrays (no tape): y [n] = sum_j a[j] x[j] [n]; y
 * distinct from every x[j]. */
void opl_lincomb_kernel(int64_t n, int m, const double *a, const opl_real *const *x, opl_real *y);
/* Weighted RMS norm of an embedded error estimate (Hairer, Norsett & Wanner, Solving ODEs I,
 * II.4, eq. (4.11)), a scalar (1):
 *   v = sqrt( (1/n) sum_i ( e_i / (atol + rtol max(|ya_i|, |yb_i|)) )^2 ),
 * e, ya, yb real of one shape (n elements), rtol, atol >= 0 finite, not both 0. Differentiable
 * in e and, through the weights, in ya and yb (at a tie |ya_i| = |yb_i| the weight's gradient
 * goes to ya; at v = 0 the gradient is 0). Computed in double in the order of opl_wrms_value. */
opl_tensor *opl_wrms(opl_ctx *c, opl_tensor *e, opl_tensor *ya, opl_tensor *yb, double rtol,
                     double atol);
/* The value of opl_wrms on raw arrays e, ya, yb [n], in double, summed in the order of the
 * double-array vector operations of solvers/rk.c; NaN or Inf in any input gives a non-finite
 * result. */
double opl_wrms_value(int64_t n, const opl_real *e, const opl_real *ya, const opl_real *yb,
                      double rtol, double atol);
/* The two sums behind opl_wrms_value: sc[0] = sum_i (e_i / w_i)^2 and sc[1] = sum_i (ya_i - ya_i) +
 * (yb_i - yb_i) (0 when finite, NaN otherwise), so that opl_wrms_value = sqrt(sc[0] / n) + sc[1].
 * A vector cut into parts (one per process) has the norm sqrt(sum S / sum n) + sum chk. */
void opl_wrms_sums(int64_t n, const opl_real *e, const opl_real *ya, const opl_real *yb, double rtol,
                   double atol, double sc[2]);
/* opl_wrms of a vector of ntot elements of which e, ya, yb hold a part (one process's rows of a
 * batch split among processes), whose value the caller computed over the whole vector (from the
 * parts' opl_wrms_sums): the output is value; the backward is opl_wrms's on the part with that
 * value and n = ntot, so the parts' gradients together are the whole vector's gradient. Errors as
 * opl_wrms, and OPL_ERR_ARG for ntot < e's size. */
opl_tensor *opl_wrms_reduced(opl_ctx *c, opl_tensor *e, opl_tensor *ya, opl_tensor *yb, double rtol, double atol,
                             double value, double ntot);

#endif
