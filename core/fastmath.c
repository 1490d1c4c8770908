/* opl — float kernels compiled with relaxed IEEE rules so they vectorize.
 *
 * This file alone is compiled with -fno-math-errno -ffinite-math-only -fno-signed-zeros
 * -fno-trapping-math (see meson.build): without them GCC does not vectorize fminf/fmaxf or
 * selects on floats. Every kernel here still propagates NaN inputs to its output through a
 * multiplication by the input, so a divergence is never hidden. */
#include <math.h>
#include <stdint.h>
#include "core/internal.h"

/* Float GELU without libm: glibc's scalar erff costs ~30 ns an element and dominated FNO
 * training. These kernels are branch-free so the compiler vectorizes them, and are cloned for
 * AVX2 (chosen at load time; the default clone runs anywhere).
 *
 * exp: Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, degree-7 Taylor polynomial of e^r
 * (truncation < 6e-9 relative), 2^n by building the float's exponent bits.
 * erf: x P(x^2) / Q(x^2) on |x| <= 3.92 (erf(3.92) = 1 - 3e-8 rounds to 1 in float), a
 * degree-(5, 5) rational least-squares fit of erf(x)/x made for opl (relative error 2e-8 in
 * exact arithmetic, 4e-7 when evaluated in float). */
static inline float fast_expf(float x) {
  x = fminf(fmaxf(x, -87.0f), 88.0f);
  union { float f; int32_t i; } t, scale;
  t.f = x * 1.44269504088896341f + 12582912.0f; /* 1.5 * 2^23: rounds x log2(e) to n */
  float n = t.f - 12582912.0f;
  float r = x - n * 0.693145751953125f - n * 1.42860682030941723212e-6f;
  float p = 1.0f / 5040;
  p = p * r + 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  scale.i = (t.i - 0x4B400000 + 127) << 23; /* 2^n from n's bits in t */
  return p * scale.f;
}

static inline float fast_erff(float x) {
  float a = fminf(fabsf(x), 3.92f);
  float s = a * a;
  float P = 2.0678047533140287e-06f;
  P = P * s + 0.00028367917445156279f;
  P = P * s + 0.0036949900187288579f;
  P = P * s + 0.052530071155810799f;
  P = P * s + 0.1887083833563018f;
  P = P * s + 1.1283791611421532f;
  float Q = 3.8213189764491062e-05f;
  Q = Q * s + 0.0011461724509192932f;
  Q = Q * s + 0.014826740515928827f;
  Q = Q * s + 0.11341273065328668f;
  Q = Q * s + 0.50057145566138161f;
  Q = Q * s + 1.0f;
  return copysignf(fminf(a * P / Q, 1.0f), x);
}

/* tanh. For |x| < 0.55: x P(x^2), P the Taylor series of tanh(x)/x through x^16 (coefficients
 * 2^{2k+2} (2^{2k+2} - 1) B_{2k+2} / (2k+2)!; the first omitted term is 5e-9 relative at |x| =
 * 0.55). Above: sign(x) (1 - 2 / (e^{2|x|} + 1)) with fast_expf, |x| clamped at 10 (tanh(10) =
 * 1 - 4e-9 rounds to 1), so |tanh| <= 1 always. Both branches are computed and one selected,
 * so the loop vectorizes; a NaN input is found from its bits (an integer test, which this
 * file's finite-math flags cannot remove) and returned. Within 4 float ulps relative
 * (tests/core/test_elementwise). */
static inline float fast_tanhf(float x) {
  union { float f; uint32_t u; } b = {x};
  float a = fabsf(x);
  float s = x * x;
  float p = 6404582.0f / 10854718875.0f;
  p = p * s - 929569.0f / 638512875.0f;
  p = p * s + 21844.0f / 6081075.0f;
  p = p * s - 1382.0f / 155925.0f;
  p = p * s + 62.0f / 2835.0f;
  p = p * s - 17.0f / 315.0f;
  p = p * s + 2.0f / 15.0f;
  p = p * s - 1.0f / 3.0f;
  p = p * s + 1.0f;
  float e = fast_expf(2.0f * fminf(a, 10.0f));
  float r = a < 0.55f ? x * p : copysignf(1.0f - 2.0f / (e + 1.0f), x);
  return (b.u & 0x7fffffffu) > 0x7f800000u ? x : r;
}

/* y = tanh(x): x, y [n]. */
__attribute__((target_clones("avx2", "default")))
void opl_tanh_forward_f32(int64_t n, const float *restrict x, float *restrict y) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) y[i] = fast_tanhf(x[i]);
}

/* y = tanh(x) and d = 1 - tanh(x)^2 = sech(x)^2: x, y, d [n]. 1 - y^2 loses d's accuracy where
 * |y| nears 1 (at |x| = 5, d = 1.8e-4 and a 4-ulp error of y makes a 3e-3 relative error of
 * 1 - y^2); here, for |x| >= 0.55, with m = e^{-2|x|}: |y| = (1 - m) / (1 + m) and
 * d = 4 m / (1 + m)^2, both within a few ulps relative, down to d's underflow; below 0.55,
 * y = x P(x^2) as fast_tanhf and d = 1 - y^2 (y^2 <= 0.25: no cancellation). NaN propagates to
 * y and d. Also cloned for AVX-512F (16 floats a vector; the same arithmetic, so the same bits):
 * it is a tenth of a PINN's iteration (core/op_jet.c, opl_jet_mlp). */
__attribute__((target_clones("avx512f", "avx2", "default")))
void opl_tanh_sech2_f32(int64_t n, const float *restrict x, float *restrict y, float *restrict d) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) {
    float v = x[i];
    union { float f; uint32_t u; } b = {v};
    float a = fabsf(v), s = v * v;
    float p = 6404582.0f / 10854718875.0f;
    p = p * s - 929569.0f / 638512875.0f;
    p = p * s + 21844.0f / 6081075.0f;
    p = p * s - 1382.0f / 155925.0f;
    p = p * s + 62.0f / 2835.0f;
    p = p * s - 17.0f / 315.0f;
    p = p * s + 2.0f / 15.0f;
    p = p * s - 1.0f / 3.0f;
    p = p * s + 1.0f;
    float ys = v * p;
    float m = fast_expf(-2.0f * a), q = 1.0f / (1.0f + m);
    int small = a < 0.55f;
    float yv = small ? ys : copysignf((1.0f - m) * q, v);
    float dv = small ? 1.0f - ys * ys : 4.0f * m * q * q;
    int nan = (b.u & 0x7fffffffu) > 0x7f800000u;
    y[i] = nan ? v : yv;
    d[i] = nan ? v : dv;
  }
}

/* y = gelu(x): x, y [n]. */
__attribute__((target_clones("avx2", "default")))
void opl_gelu_forward_f32(int64_t n, const float *restrict x, float *restrict y) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) y[i] = 0.5f * x[i] * (1.0f + fast_erff(x[i] * 0.70710678118654752f));
}

/* gx += gy * gelu'(x): x, gy, gx [n]. */
__attribute__((target_clones("avx2", "default")))
void opl_gelu_backward_f32(int64_t n, const float *restrict x, const float *restrict gy,
                            float *restrict gx) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) {
    float v = x[i];
    float d = 0.5f * (1.0f + fast_erff(v * 0.70710678118654752f)) +
              v * 0.39894228040143267794f * fast_expf(-0.5f * v * v);
    gx[i] += gy[i] * d;
  }
}
