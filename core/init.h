/* opl — parameter initializers with PyTorch's defaults, so published hyperparameters carry
 * over. Every initializer fills a tensor's data (heap, parameter or arena tensor) from an
 * opl_rng stream (parallel, bit-identical for any thread count; see rng.h) and returns
 * OPL_OK, or a status with a message in err (which may be NULL) and leaves the data as it was.
 * Uniform and normal fills of a complex tensor draw its real and imaginary parts as
 * independent reals (PyTorch's complex rand/randn); kaiming and bias fills require a real
 * tensor; the FNO spectral fill requires a complex one.
 */
#ifndef OPL_INIT_H
#define OPL_INIT_H

#include "core/opl.h"
#include "core/rng.h"

#define OPL_KAIMING_A_DEFAULT 2.23606797749978969641 /* sqrt(5): nn.Linear, nn.ConvNd */

/* PyTorch's fan_in of a weight: shape[1] * prod(shape[2:]) for rank >= 2 (Linear (Out, In),
 * ConvNd (Co, Ci/groups, *K)), numel for rank 1. */
int64_t opl_init_fan_in(const opl_tensor *w);

/* Kaiming (He) uniform, torch.nn.init.kaiming_uniform_(w, a, mode='fan_in',
 * nonlinearity='leaky_relu') (He et al., "Delving deep into rectifiers", ICCV 2015):
 * w ~ U(-b, b), b = gain sqrt(3 / fan_in), gain = sqrt(2 / (1 + a^2)). With
 * a = OPL_KAIMING_A_DEFAULT this is b = 1/sqrt(fan_in), the default of nn.Linear and
 * nn.ConvNd weights. fan_in >= 1, a finite; w real. */
int opl_init_kaiming_uniform(opl_rng *r, opl_tensor *w, int64_t fan_in, double a, opl_err *err);
/* Bias of nn.Linear / nn.ConvNd: b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in of the
 * layer's weight (>= 1); b real. */
int opl_init_bias_uniform(opl_rng *r, opl_tensor *b, int64_t fan_in, opl_err *err);
/* Spectral weights of the FNO reference code (Li et al., "Fourier Neural Operator for
 * Parametric PDEs", ICLR 2021: scale * torch.rand(in, out, ..., dtype=cfloat)):
 * re, im ~ scale U(0, 1) independently, scale = 1 / (in_ch out_ch). w complex with
 * shape (in_ch, out_ch, ...). */
int opl_init_fno_spectral(opl_rng *r, opl_tensor *w, int64_t in_ch, int64_t out_ch,
                          opl_err *err);
/* t ~ U(lo, hi) (lo <= hi, finite). */
int opl_init_uniform(opl_rng *r, opl_tensor *t, double lo, double hi, opl_err *err);
/* t ~ N(mean, std^2) (std >= 0, finite). */
int opl_init_normal(opl_rng *r, opl_tensor *t, double mean, double std, opl_err *err);
/* t = value (a complex tensor gets value + 0i). No random numbers are drawn. */
int opl_init_constant(opl_tensor *t, double value, opl_err *err);

#endif
