/* Spectral ops (rfft, irfft, spectral_conv, spectral_deriv): gradient checks and adjoint
 * identities (tables), forward values against a direct O(N^2) DFT written here, exact
 * derivatives of trigonometric functions, threads, and bad input. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "tests/gradcheck.h"
#include "tests/tap.h"
#include "core/fft.h"

#ifdef OPL_DOUBLE
#define TOL 1e-12     /* relative to the largest value compared */
#else
#define TOL 3e-6
#endif

/* ------------------------------------------------------------ ops under test */

typedef struct sopt {
  int d;
  int64_t n_last;     /* irfft */
  int modes[3];       /* spectral_conv */
  int order[3];       /* spectral_deriv */
  double length[3];
  int pre;            /* 1: apply the op to scale(x, 1.5), an arena tensor (fresh-gradient path) */
  int act;            /* fourier_layer: opl_unary_kind + 1, 0 = no activation */
} sopt;

static opl_tensor *pre(opl_ctx *c, opl_tensor *x, const sopt *o) {
  return o->pre ? opl_scale(c, x, 1.5) : x;
}
static opl_tensor *f_rfft(opl_ctx *c, opl_tensor **x, const void *p) {
  const sopt *o = p;
  return opl_rfft(c, pre(c, x[0], o), o->d);
}
static opl_tensor *f_irfft(opl_ctx *c, opl_tensor **x, const void *p) {
  const sopt *o = p;
  return opl_irfft(c, pre(c, x[0], o), o->d, o->n_last);
}
static opl_tensor *f_conv(opl_ctx *c, opl_tensor **x, const void *p) {
  const sopt *o = p;
  return opl_spectral_conv(c, pre(c, x[0], o), x[1], o->d, o->modes);
}
/* h = scale(x): y = sconv(h) + 2 h, with the 2 h branch recorded first so that the
 * conv's backward writes h's fresh gradient and the scale's backward adds to it. */
static opl_tensor *f_conv_two(opl_ctx *c, opl_tensor **x, const void *p) {
  const sopt *o = p;
  opl_tensor *h = opl_scale(c, x[0], 1.5);
  opl_tensor *a = opl_scale(c, h, 2.0);
  opl_tensor *s = opl_spectral_conv(c, h, x[1], o->d, o->modes);
  return opl_add(c, s, a);
}
/* fourier_layer on inputs x, wk, w[, b]. */
static opl_tensor *f_layer(opl_ctx *c, opl_tensor **x, const void *p) {
  const sopt *o = p;
  return opl_fourier_layer(c, pre(c, x[0], o), x[1], x[2], x[3], o->d, o->modes, o->act - 1);
}
/* h = scale(x): y = fourier_layer(h) + 2 h, the 2 h branch recorded first (the layer's backward
 * then accumulates into h's gradient). */
static opl_tensor *f_layer_two(opl_ctx *c, opl_tensor **x, const void *p) {
  const sopt *o = p;
  opl_tensor *h = opl_scale(c, x[0], 1.5);
  opl_tensor *a = opl_scale(c, h, 2.0);
  return opl_add(c, opl_fourier_layer(c, h, x[1], x[2], x[3], o->d, o->modes, o->act - 1), a);
}
static opl_tensor *f_deriv(opl_ctx *c, opl_tensor **x, const void *p) {
  const sopt *o = p;
  return opl_spectral_deriv(c, pre(c, x[0], o), o->d, o->order, o->length);
}
/* rfft then irfft: the identity. */
static opl_tensor *f_roundtrip(opl_ctx *c, opl_tensor **x, const void *p) {
  const sopt *o = p;
  return opl_irfft(c, opl_rfft(c, x[0], o->d), o->d, x[0]->shape[x[0]->rank - 1]);
}

#define IN(r, ...) {.rank = r, .shape = {__VA_ARGS__}}
#define CIN(r, ...) {.rank = r, .shape = {__VA_ARGS__}, .cplx = 1}
#define CIN_NG(r, ...) {.rank = r, .shape = {__VA_ARGS__}, .cplx = 1, .no_grad = 1}
#define IN_NG(r, ...) {.rank = r, .shape = {__VA_ARGS__}, .no_grad = 1}

static const sopt R1 = {.d = 1}, R2 = {.d = 2}, R3 = {.d = 3}, R1p = {.d = 1, .pre = 1},
                  R2p = {.d = 2, .pre = 1};
static const sopt I1e = {.d = 1, .n_last = 8}, I1o = {.d = 1, .n_last = 7},
                  I2e = {.d = 2, .n_last = 6}, I2o = {.d = 2, .n_last = 5},
                  I3e = {.d = 3, .n_last = 4}, I3o = {.d = 3, .n_last = 7},
                  I2p = {.d = 2, .n_last = 6, .pre = 1};
static const sopt C1 = {.d = 1, .modes = {5}}, C1max = {.d = 1, .modes = {9}},
                  C1odd = {.d = 1, .modes = {8}}, C1p = {.d = 1, .modes = {4}, .pre = 1},
                  C2 = {.d = 2, .modes = {2, 3}}, C2max = {.d = 2, .modes = {3, 3}},
                  C2p = {.d = 2, .modes = {2, 2}, .pre = 1},
                  C3 = {.d = 3, .modes = {1, 2, 3}}, C3odd = {.d = 3, .modes = {2, 1, 4}},
                  C3max = {.d = 3, .modes = {2, 3, 4}};
static const sopt L1g = {.d = 1, .modes = {5}, .act = OPL_GELU + 1},
                  L1n = {.d = 1, .modes = {4}, .pre = 1},
                  L1t = {.d = 1, .modes = {3}, .pre = 1, .act = OPL_TANH + 1},
                  L2g = {.d = 2, .modes = {2, 3}, .pre = 1, .act = OPL_GELU + 1},
                  L2s = {.d = 2, .modes = {2, 2}, .act = OPL_SIGMOID + 1},
                  L3g = {.d = 3, .modes = {1, 2, 2}, .act = OPL_GELU + 1};
static const sopt D1 = {.d = 1, .order = {1}, .length = {6.283185307179586}},
                  D1o2 = {.d = 1, .order = {2}, .length = {3.0}},
                  D1o3 = {.d = 1, .order = {3}, .length = {2.0}},
                  D1p = {.d = 1, .order = {1}, .length = {1.0}, .pre = 1},
                  D2 = {.d = 2, .order = {1, 1}, .length = {2.0, 3.0}},
                  D2b = {.d = 2, .order = {2, 0}, .length = {1.0, 1.0}},
                  D2c = {.d = 2, .order = {0, 3}, .length = {1.0, 2.0}},
                  D3 = {.d = 3, .order = {1, 0, 2}, .length = {1.0, 2.0, 1.5}},
                  D3b = {.d = 3, .order = {1, 1, 1}, .length = {1.0, 1.0, 1.0}};

static const gc_case rows[] = {
    {"rfft 1-D (2,3,8)", f_rfft, &R1, 1, {IN(3, 2, 3, 8)}},
    {"rfft 1-D odd (2,7)", f_rfft, &R1, 1, {IN(2, 2, 7)}},
    {"rfft 1-D rank = d (9)", f_rfft, &R1, 1, {IN(1, 9)}},
    {"rfft 2-D (2,6,5)", f_rfft, &R2, 1, {IN(3, 2, 6, 5)}},
    {"rfft 2-D (3,5,4)", f_rfft, &R2, 1, {IN(3, 3, 5, 4)}},
    {"rfft 3-D (1,4,3,6)", f_rfft, &R3, 1, {IN(4, 1, 4, 3, 6)}},
    {"rfft 3-D odd (3,5,3)", f_rfft, &R3, 1, {IN(3, 3, 5, 3)}},
    {"rfft 1-D of an arena tensor", f_rfft, &R1p, 1, {IN(2, 3, 10)}},
    {"rfft 2-D of an arena tensor", f_rfft, &R2p, 1, {IN(3, 2, 4, 6)}},
    {"irfft 1-D n=8", f_irfft, &I1e, 1, {CIN(3, 2, 3, 5)}},
    {"irfft 1-D n=7", f_irfft, &I1o, 1, {CIN(2, 2, 4)}},
    {"irfft 2-D n=6", f_irfft, &I2e, 1, {CIN(3, 2, 5, 4)}},
    {"irfft 2-D n=5", f_irfft, &I2o, 1, {CIN(3, 2, 4, 3)}},
    {"irfft 3-D n=4", f_irfft, &I3e, 1, {CIN(4, 1, 4, 3, 3)}},
    {"irfft 3-D n=7", f_irfft, &I3o, 1, {CIN(3, 3, 2, 4)}},
    {"irfft 2-D of an arena tensor", f_irfft, &I2p, 1, {CIN(3, 2, 3, 4)}},
    {"irfft(rfft) 2-D", f_roundtrip, &R2, 1, {IN(3, 2, 5, 6)}},
    {"spectral_conv 1-D (2,3,16) m5", f_conv, &C1, 2, {IN(3, 2, 3, 16), CIN(3, 3, 4, 5)}},
    {"spectral_conv 1-D m = S/2+1", f_conv, &C1max, 2, {IN(3, 2, 2, 16), CIN(3, 2, 3, 9)}},
    {"spectral_conv 1-D odd S=15 m8", f_conv, &C1odd, 2, {IN(3, 2, 2, 15), CIN(3, 2, 2, 8)}},
    {"spectral_conv 1-D arena x", f_conv, &C1p, 2, {IN(3, 2, 3, 12), CIN(3, 3, 2, 4)}},
    {"spectral_conv 1-D x used twice", f_conv_two, &C1p, 2, {IN(3, 2, 3, 12), CIN(3, 3, 3, 4)}},
    {"spectral_conv 2-D (2,2,8,6) m(2,3)", f_conv, &C2, 2, {IN(4, 2, 2, 8, 6), CIN(4, 2, 3, 4, 3)}},
    {"spectral_conv 2-D 2m=S (1,2,6,5)", f_conv, &C2max, 2, {IN(4, 1, 2, 6, 5), CIN(4, 2, 2, 6, 3)}},
    {"spectral_conv 2-D arena x", f_conv, &C2p, 2, {IN(4, 2, 2, 5, 4), CIN(4, 2, 2, 4, 2)}},
    {"spectral_conv 3-D (1,2,4,6,5)", f_conv, &C3, 2, {IN(5, 1, 2, 4, 6, 5), CIN(5, 2, 2, 2, 4, 3)}},
    {"spectral_conv 3-D odd (1,2,5,3,7)", f_conv, &C3odd, 2, {IN(5, 1, 2, 5, 3, 7), CIN(5, 2, 1, 4, 2, 4)}},
    {"spectral_conv 3-D max modes", f_conv, &C3max, 2, {IN(5, 1, 1, 4, 6, 6), CIN(5, 1, 2, 4, 6, 4)}},
    {"fourier_layer 1-D gelu (2,3,16) m5 Co 4", f_layer, &L1g, 4,
     {IN(3, 2, 3, 16), CIN(3, 3, 4, 5), IN(2, 4, 3), IN(1, 4)}},
    {"fourier_layer 1-D no act, arena x, no bias", f_layer, &L1n, 3, {IN(3, 2, 3, 12), CIN(3, 3, 3, 4), IN(2, 3, 3)}},
    {"fourier_layer 1-D tanh, x used twice", f_layer_two, &L1t, 4,
     {IN(3, 2, 2, 10), CIN(3, 2, 2, 3), IN(2, 2, 2), IN(1, 2)}},
    {"fourier_layer 2-D gelu arena x (2,2,8,6)", f_layer, &L2g, 4,
     {IN(4, 2, 2, 8, 6), CIN(4, 2, 3, 4, 3), IN(2, 3, 2), IN(1, 3)}},
    {"fourier_layer 2-D sigmoid (1,3,6,5)", f_layer, &L2s, 4,
     {IN(4, 1, 3, 6, 5), CIN(4, 3, 2, 4, 2), IN(2, 2, 3), IN(1, 2)}},
    {"fourier_layer 3-D gelu (1,2,4,6,5)", f_layer, &L3g, 4,
     {IN(5, 1, 2, 4, 6, 5), CIN(5, 2, 2, 2, 4, 2), IN(2, 2, 2), IN(1, 2)}},
    {"spectral_deriv 1-D d/dx (2,16)", f_deriv, &D1, 1, {IN(2, 2, 16)}},
    {"spectral_deriv 1-D d2 odd (2,15)", f_deriv, &D1o2, 1, {IN(2, 2, 15)}},
    {"spectral_deriv 1-D d3 (3,12)", f_deriv, &D1o3, 1, {IN(2, 3, 12)}},
    {"spectral_deriv 1-D arena x", f_deriv, &D1p, 1, {IN(2, 2, 10)}},
    {"spectral_deriv 2-D dxdy (2,8,6)", f_deriv, &D2, 1, {IN(3, 2, 8, 6)}},
    {"spectral_deriv 2-D dxx (2,5,8)", f_deriv, &D2b, 1, {IN(3, 2, 5, 8)}},
    {"spectral_deriv 2-D dyyy (6,7)", f_deriv, &D2c, 1, {IN(2, 6, 7)}},
    {"spectral_deriv 3-D (1,4,6,5)", f_deriv, &D3, 1, {IN(4, 1, 4, 6, 5)}},
    {"spectral_deriv 3-D dxdydz (4,4,6)", f_deriv, &D3b, 1, {IN(3, 4, 4, 6)}},
};

/* 1-D spectral convolutions again with the truncated DFT forced to be a GEMM (the rows
 * above run with the FFT forced). */
static const gc_case gemm_rows[] = {
    {"GEMM-DFT spectral_conv 1-D (2,3,16) m5", f_conv, &C1, 2, {IN(3, 2, 3, 16), CIN(3, 3, 4, 5)}},
    {"GEMM-DFT spectral_conv 1-D m = S/2+1", f_conv, &C1max, 2, {IN(3, 2, 2, 16), CIN(3, 2, 3, 9)}},
    {"GEMM-DFT spectral_conv 1-D odd S=15 m8", f_conv, &C1odd, 2, {IN(3, 2, 2, 15), CIN(3, 2, 2, 8)}},
    {"GEMM-DFT spectral_conv 1-D arena x", f_conv, &C1p, 2, {IN(3, 2, 3, 12), CIN(3, 3, 2, 4)}},
    {"GEMM-DFT spectral_conv 1-D x used twice", f_conv_two, &C1p, 2, {IN(3, 2, 3, 12), CIN(3, 3, 3, 4)}},
    {"GEMM-DFT fourier_layer 1-D gelu", f_layer, &L1g, 4, {IN(3, 2, 3, 16), CIN(3, 3, 4, 5), IN(2, 4, 3), IN(1, 4)}},
    {"GEMM-DFT fourier_layer 1-D tanh, x used twice", f_layer_two, &L1t, 4,
     {IN(3, 2, 2, 10), CIN(3, 2, 2, 3), IN(2, 2, 2), IN(1, 2)}},
};
static const gc_case gemm_adjoint_rows[] = {
    {"GEMM-DFT spectral_conv 1-D in x", f_conv, &C1, 2, {IN(3, 3, 3, 16), CIN_NG(3, 3, 2, 5)}},
    {"GEMM-DFT spectral_conv 1-D in w", f_conv, &C1, 2, {IN_NG(3, 3, 3, 16), CIN(3, 3, 2, 5)}},
    {"GEMM-DFT spectral_conv 1-D m = S/2+1 in x", f_conv, &C1max, 2, {IN(3, 2, 2, 16), CIN_NG(3, 2, 3, 9)}},
    {"GEMM-DFT spectral_conv 1-D m = S/2+1 in w", f_conv, &C1max, 2, {IN_NG(3, 2, 2, 16), CIN(3, 2, 3, 9)}},
    {"GEMM-DFT spectral_conv 1-D odd in x", f_conv, &C1odd, 2, {IN(3, 2, 2, 15), CIN_NG(3, 2, 2, 8)}},
    {"GEMM-DFT spectral_conv 1-D odd in w", f_conv, &C1odd, 2, {IN_NG(3, 2, 2, 15), CIN(3, 2, 2, 8)}},
};

static const gc_case adjoint_rows[] = {
    {"rfft 1-D even", f_rfft, &R1, 1, {IN(3, 2, 3, 16)}},
    {"rfft 1-D odd", f_rfft, &R1, 1, {IN(2, 3, 15)}},
    {"rfft 2-D even", f_rfft, &R2, 1, {IN(3, 2, 8, 6)}},
    {"rfft 2-D odd", f_rfft, &R2, 1, {IN(3, 2, 7, 5)}},
    {"rfft 3-D even", f_rfft, &R3, 1, {IN(4, 2, 4, 6, 8)}},
    {"rfft 3-D odd", f_rfft, &R3, 1, {IN(3, 5, 3, 7)}},
    {"irfft 1-D even", f_irfft, &I1e, 1, {CIN(3, 2, 3, 5)}},
    {"irfft 1-D odd", f_irfft, &I1o, 1, {CIN(2, 3, 4)}},
    {"irfft 2-D even", f_irfft, &I2e, 1, {CIN(3, 2, 7, 4)}},
    {"irfft 2-D odd", f_irfft, &I2o, 1, {CIN(3, 2, 6, 3)}},
    {"irfft 3-D even", f_irfft, &I3e, 1, {CIN(4, 2, 3, 5, 3)}},
    {"irfft 3-D odd", f_irfft, &I3o, 1, {CIN(3, 4, 3, 4)}},
    {"spectral_conv 1-D in x", f_conv, &C1, 2, {IN(3, 3, 3, 16), CIN_NG(3, 3, 2, 5)}},
    {"spectral_conv 1-D in w", f_conv, &C1, 2, {IN_NG(3, 3, 3, 16), CIN(3, 3, 2, 5)}},
    {"spectral_conv 1-D m = S/2+1 in x", f_conv, &C1max, 2, {IN(3, 2, 2, 16), CIN_NG(3, 2, 3, 9)}},
    {"spectral_conv 1-D m = S/2+1 in w", f_conv, &C1max, 2, {IN_NG(3, 2, 2, 16), CIN(3, 2, 3, 9)}},
    {"spectral_conv 1-D odd in x", f_conv, &C1odd, 2, {IN(3, 2, 2, 15), CIN_NG(3, 2, 2, 8)}},
    {"spectral_conv 1-D odd in w", f_conv, &C1odd, 2, {IN_NG(3, 2, 2, 15), CIN(3, 2, 2, 8)}},
    {"spectral_conv 2-D in x", f_conv, &C2, 2, {IN(4, 2, 2, 8, 6), CIN_NG(4, 2, 3, 4, 3)}},
    {"spectral_conv 2-D in w", f_conv, &C2, 2, {IN_NG(4, 2, 2, 8, 6), CIN(4, 2, 3, 4, 3)}},
    {"spectral_conv 2-D 2m=S in x", f_conv, &C2max, 2, {IN(4, 1, 2, 6, 5), CIN_NG(4, 2, 2, 6, 3)}},
    {"spectral_conv 2-D 2m=S in w", f_conv, &C2max, 2, {IN_NG(4, 1, 2, 6, 5), CIN(4, 2, 2, 6, 3)}},
    {"spectral_conv 3-D in x", f_conv, &C3odd, 2, {IN(5, 1, 2, 5, 3, 7), CIN_NG(5, 2, 1, 4, 2, 4)}},
    {"spectral_conv 3-D in w", f_conv, &C3odd, 2, {IN_NG(5, 1, 2, 5, 3, 7), CIN(5, 2, 1, 4, 2, 4)}},
    {"spectral_conv 3-D max modes in x", f_conv, &C3max, 2, {IN(5, 2, 1, 4, 6, 6), CIN_NG(5, 1, 2, 4, 6, 4)}},
    {"spectral_conv 3-D max modes in w", f_conv, &C3max, 2, {IN_NG(5, 2, 1, 4, 6, 6), CIN(5, 1, 2, 4, 6, 4)}},
    {"spectral_conv 2-D threaded (4,8,64,64) in x", f_conv, &C2, 2, {IN(4, 4, 8, 64, 64), CIN_NG(4, 8, 8, 4, 3)}},
    {"spectral_conv 2-D threaded (4,8,64,64) in w", f_conv, &C2, 2, {IN_NG(4, 4, 8, 64, 64), CIN(4, 8, 8, 4, 3)}},
    {"spectral_deriv 1-D order 1 even", f_deriv, &D1, 1, {IN(2, 2, 16)}},
    {"spectral_deriv 1-D order 2 odd", f_deriv, &D1o2, 1, {IN(2, 2, 15)}},
    {"spectral_deriv 1-D order 3", f_deriv, &D1o3, 1, {IN(2, 3, 12)}},
    {"spectral_deriv 2-D dxdy", f_deriv, &D2, 1, {IN(3, 2, 8, 6)}},
    {"spectral_deriv 2-D dyyy odd", f_deriv, &D2c, 1, {IN(2, 6, 7)}},
    {"spectral_deriv 3-D", f_deriv, &D3, 1, {IN(4, 1, 4, 6, 5)}},
    {"spectral_deriv 3-D dxdydz", f_deriv, &D3b, 1, {IN(3, 4, 4, 6)}},
};

/* ------------------------------------------------------------ direct DFT references */

static uint64_t rng = 42;

static int64_t prod(const int64_t *v, int lo, int hi) {
  int64_t p = 1;
  for (int i = lo; i < hi; i++) p *= v[i];
  return p;
}
static double urand(void) { return 2 * gc_uniform(&rng) - 1; }

/* Pad trailing d dims to 3: D = (1, .., dims) (the last axis stays last). */
static void pad3(int d, const int64_t *dims, int64_t *D) {
  for (int a = 0; a < 3; a++) D[a] = a < 3 - d ? 1 : dims[a - (3 - d)];
}

/* e^{sign 2 pi i (k.j / D)} with the phase reduced exactly in integers. */
static void cis(int sign, const int64_t *k, const int64_t *j, const int64_t *D, double *re, double *im) {
  double ph = 0;
  for (int a = 0; a < 3; a++) ph += (double)((k[a] * j[a]) % D[a]) / (double)D[a];
  ph *= 2 * M_PI * sign;
  *re = cos(ph), *im = sin(ph);
}

/* Unnormalized r2c by the definition: X [batch, D0, D1, h] complex from x [batch, D0, D1, n]. */
static void ref_rfft(int d, const int64_t *dims, int64_t batch, const double *x, double *X) {
  int64_t D[3];
  pad3(d, dims, D);
  int64_t h = D[2] / 2 + 1, nr = D[0] * D[1] * D[2], nc = D[0] * D[1] * h;
  for (int64_t b = 0; b < batch; b++)
    for (int64_t k0 = 0; k0 < D[0]; k0++)
      for (int64_t k1 = 0; k1 < D[1]; k1++)
        for (int64_t k2 = 0; k2 < h; k2++) {
          double sr = 0, si = 0;
          int64_t k[3] = {k0, k1, k2}, j[3];
          for (j[0] = 0; j[0] < D[0]; j[0]++)
            for (j[1] = 0; j[1] < D[1]; j[1]++)
              for (j[2] = 0; j[2] < D[2]; j[2]++) {
                double c, s, v = x[b * nr + (j[0] * D[1] + j[1]) * D[2] + j[2]];
                cis(-1, k, j, D, &c, &s);
                sr += v * c, si += v * s;
              }
          int64_t o = b * nc + (k0 * D[1] + k1) * h + k2;
          X[2 * o] = sr, X[2 * o + 1] = si;
        }
}

/* torch.fft.irfftn semantics: y_j = (1/N) sum_{k in half} c_k Re(X_k e^{+2 pi i k.j/D}),
 * c_k = 1 on last-axis bins 0 and n/2, else 2 (the Hermitian completion of the half). */
static void ref_irfft(int d, const int64_t *dims, int64_t batch, const double *X, double *y) {
  int64_t D[3];
  pad3(d, dims, D);
  int64_t h = D[2] / 2 + 1, nr = D[0] * D[1] * D[2], nc = D[0] * D[1] * h;
  for (int64_t b = 0; b < batch; b++)
    for (int64_t j0 = 0; j0 < D[0]; j0++)
      for (int64_t j1 = 0; j1 < D[1]; j1++)
        for (int64_t j2 = 0; j2 < D[2]; j2++) {
          double s = 0;
          int64_t j[3] = {j0, j1, j2}, k[3];
          for (k[0] = 0; k[0] < D[0]; k[0]++)
            for (k[1] = 0; k[1] < D[1]; k[1]++)
              for (k[2] = 0; k[2] < h; k[2]++) {
                double c, sn, w = (k[2] == 0 || 2 * k[2] == D[2]) ? 1 : 2;
                int64_t o = b * nc + (k[0] * D[1] + k[1]) * h + k[2];
                cis(+1, k, j, D, &c, &sn);
                s += w * (X[2 * o] * c - X[2 * o + 1] * sn);
              }
          y[b * nr + (j0 * D[1] + j1) * D[2] + j2] = s / (double)nr;
        }
}

static double maxabs(int64_t n, const double *v) {
  double m = 0;
  for (int64_t i = 0; i < n; i++) m = fmax(m, fabs(v[i]));
  return m;
}

/* Compare n values of got (opl_real) with want (double): |err| <= TOL * max|want|. */
static int close_ref(int64_t n, const opl_real *got, const double *want, double tol, const char *name) {
  double *g = malloc((size_t)n * sizeof *g);
  for (int64_t i = 0; i < n; i++) g[i] = (double)got[i];
  int r = arrays_close((long)n, g, want, 0, tol * fmax(maxabs(n, want), 1e-300), "%s", name);
  free(g);
  return r;
}

static opl_tensor *rand_tensor(opl_ctx *c, int rank, const int64_t *shape, int flags, double *copy) {
  opl_tensor *t = opl_new_flags(c, rank, shape, flags);
  for (int64_t i = 0; i < opl_nreal(t); i++) {
    double v = urand();
    t->data[i] = (opl_real)v;
    if (copy) copy[i] = (double)t->data[i];
  }
  return t;
}

/* ------------------------------------------------------------ values: rfft / irfft */

typedef struct vshape {
  int d, rank;
  int64_t shape[5];
} vshape;

static const vshape vshapes[] = {
    {1, 2, {3, 8}},       {1, 2, {2, 7}},       {1, 1, {1}},       {1, 1, {2}},
    {2, 3, {2, 6, 5}},    {2, 3, {2, 4, 8}},    {2, 2, {5, 3}},    {3, 4, {2, 3, 4, 5}},
    {3, 3, {4, 2, 6}},    {3, 5, {1, 2, 3, 5, 4}},
};

static void test_rfft_irfft_values(void) {
  opl_ctx *c = opl_ctx_new(0);
  for (size_t t = 0; t < sizeof vshapes / sizeof vshapes[0]; t++) {
    const vshape *v = &vshapes[t];
    char name[160], sb[96];
    opl_shape_str(sb, v->rank, v->shape);
    int64_t nr = prod(v->shape, 0, v->rank);
    int64_t dims[3];
    for (int a = 0; a < v->d; a++) dims[a] = v->shape[v->rank - v->d + a];
    int64_t batch = prod(v->shape, 0, v->rank - v->d), n = dims[v->d - 1];
    int64_t nc = nr / n * (n / 2 + 1);
    double *x = malloc(nr * sizeof *x), *X = malloc(2 * nc * sizeof *X), *y = malloc(nr * sizeof *y);
    opl_tensor *xt = rand_tensor(c, v->rank, v->shape, 0, x);
    /* rfft against the definition */
    opl_tensor *Xt = opl_rfft(c, xt, v->d);
    ref_rfft(v->d, dims, batch, x, X);
    snprintf(name, sizeof name, "rfft %d-D of %s: shape", v->d, sb);
    ok(Xt && opl_is_complex(Xt) && Xt->rank == v->rank && Xt->numel == nc &&
           Xt->shape[v->rank - 1] == n / 2 + 1, "%s", name);
    snprintf(name, sizeof name, "rfft %d-D of %s equals the direct DFT", v->d, sb);
    if (Xt) close_ref(2 * nc, Xt->data, X, TOL, name);
    snprintf(name, sizeof name, "rfft leaves its input unchanged (%s)", sb);
    close_ref(nr, xt->data, x, 0, name);
    /* irfft against the definition, on a random (non-Hermitian) half spectrum */
    double *Xr = malloc(2 * nc * sizeof *Xr);
    int64_t cshape[5];
    memcpy(cshape, v->shape, sizeof cshape);
    cshape[v->rank - 1] = n / 2 + 1;
    opl_tensor *Xrt = rand_tensor(c, v->rank, cshape, OPL_T_COMPLEX, Xr);
    opl_tensor *yt = opl_irfft(c, Xrt, v->d, n);
    ref_irfft(v->d, dims, batch, Xr, y);
    snprintf(name, sizeof name, "irfft %d-D to %s of a random half spectrum equals the definition",
             v->d, sb);
    if (yt) close_ref(nr, yt->data, y, TOL, name); else ok(0, "%s", name);
    /* round trip */
    opl_tensor *back = opl_irfft(c, Xt, v->d, n);
    snprintf(name, sizeof name, "irfft(rfft(x)) = x for %s (d = %d)", sb, v->d);
    if (back) close_ref(nr, back->data, x, TOL, name); else ok(0, "%s", name);
    /* the input spectrum survives irfft (c2r destroys its input: the op must copy) */
    snprintf(name, sizeof name, "irfft leaves its input unchanged (%s)", sb);
    if (Xt) close_ref(2 * nc, Xt->data, X, TOL, name);
    free(x), free(X), free(y), free(Xr);
    opl_ctx_reset(c);
  }
  ok(opl_ctx_status(c) == OPL_OK, "rfft/irfft values: no error (%s)", opl_ctx_errmsg(c));
  opl_ctx_free(&c);
}

/* ------------------------------------------------------------ values: spectral conv */

/* Direct reference: r2c by definition, mixing on the kept modes, definition of irfft.
 * x [N, Ci, *S], w [Ci, Co, *ext] complex, y [N, Co, *S]. */
static void ref_sconv(int d, const int64_t *S, int64_t N, int64_t Ci, int64_t Co, const int *modes,
                      const double *x, const double *w, double *y) {
  int64_t D[3], M[3] = {1, 1, 1}, E[3] = {1, 1, 1};
  pad3(d, S, D);
  for (int a = 0; a < d; a++) {
    M[3 - d + a] = modes[a];
    E[3 - d + a] = a < d - 1 ? 2 * modes[a] : modes[a];
  }
  int64_t h = D[2] / 2 + 1, nc = D[0] * D[1] * h, K = E[0] * E[1] * E[2];
  double *X = calloc(2 * N * Ci * nc, sizeof *X), *Y = calloc(2 * N * Co * nc, sizeof *Y);
  ref_rfft(d, S, N * Ci, x, X);
  for (int64_t b0 = 0; b0 < E[0]; b0++)
    for (int64_t b1 = 0; b1 < E[1]; b1++)
      for (int64_t b2 = 0; b2 < E[2]; b2++) {
        /* signed wavenumber of each block index, then its FFT row */
        int64_t k0 = d == 3 ? (b0 < M[0] ? b0 : b0 - 2 * M[0]) : 0;
        int64_t k1 = d >= 2 ? (b1 < M[1] ? b1 : b1 - 2 * M[1]) : 0;
        int64_t p = (((k0 % D[0]) + D[0]) % D[0] * D[1] + ((k1 % D[1]) + D[1]) % D[1]) * h + b2;
        int64_t kw = (b0 * E[1] + b1) * E[2] + b2;
        for (int64_t n = 0; n < N; n++)
          for (int64_t o = 0; o < Co; o++) {
            double sr = 0, si = 0;
            for (int64_t i = 0; i < Ci; i++) {
              const double *xv = X + 2 * ((n * Ci + i) * nc + p);
              const double *wv = w + 2 * ((i * Co + o) * K + kw);
              sr += xv[0] * wv[0] - xv[1] * wv[1];
              si += xv[0] * wv[1] + xv[1] * wv[0];
            }
            double *yv = Y + 2 * ((n * Co + o) * nc + p);
            yv[0] = sr, yv[1] = si;
          }
      }
  ref_irfft(d, S, N * Co, Y, y);
  free(X), free(Y);
}

typedef struct cshape_t {
  int d;
  int64_t N, Ci, Co, S[3];
  int modes[3];
} cshape_t;

static const cshape_t cshapes[] = {
    {1, 2, 3, 2, {16}, {5}},       {1, 1, 2, 3, {15}, {8}},          {1, 2, 2, 2, {16}, {9}},
    {1, 1, 1, 1, {4}, {1}},        {2, 2, 2, 3, {8, 6}, {2, 3}},     {2, 1, 3, 2, {6, 5}, {3, 3}},
    {2, 2, 2, 2, {7, 9}, {3, 5}},  {3, 1, 2, 2, {4, 6, 5}, {1, 2, 3}}, {3, 2, 1, 2, {5, 3, 7}, {2, 1, 4}},
    {3, 1, 2, 1, {4, 4, 4}, {2, 2, 3}},
};

static void test_sconv_values(const char *label, int only_1d) {
  opl_ctx *c = opl_ctx_new(0);
  for (size_t t = 0; t < sizeof cshapes / sizeof cshapes[0]; t++) {
    const cshape_t *v = &cshapes[t];
    if (only_1d && v->d != 1) continue;
    int64_t xs[5] = {v->N, v->Ci}, ws[5] = {v->Ci, v->Co};
    for (int a = 0; a < v->d; a++) {
      xs[2 + a] = v->S[a];
      ws[2 + a] = a < v->d - 1 ? 2 * v->modes[a] : v->modes[a];
    }
    int64_t nx = prod(xs, 0, v->d + 2), nw = prod(ws, 0, v->d + 2);
    int64_t ny = nx / v->Ci * v->Co;
    double *x = malloc(nx * sizeof *x), *w = malloc(2 * nw * sizeof *w), *y = malloc(ny * sizeof *y);
    opl_tensor *xt = rand_tensor(c, v->d + 2, xs, 0, x);
    opl_tensor *wt = rand_tensor(c, v->d + 2, ws, OPL_T_COMPLEX, w);
    opl_tensor *yt = opl_spectral_conv(c, xt, wt, v->d, v->modes);
    ref_sconv(v->d, v->S, v->N, v->Ci, v->Co, v->modes, x, w, y);
    char name[160], sb[96], mb[96];
    int64_t m64[3] = {v->modes[0], v->modes[1], v->modes[2]};
    snprintf(name, sizeof name, "%sspectral_conv %d-D x %s modes %s equals direct DFT-mix-IDFT", label,
             v->d, opl_shape_str(sb, v->d + 2, xs), opl_shape_str(mb, v->d, m64));
    if (yt && yt->shape[1] == v->Co) close_ref(ny, yt->data, y, TOL, name); else ok(0, "%s", name);
    free(x), free(w), free(y);
    opl_ctx_reset(c);
  }
  /* A single mode k = 1 with w = 1: the output is the k = +-1 part of x, i.e. for
   * x = cos(2 pi j / S) + cos(2 pi 3 j / S) just the first cosine. */
  {
    int64_t S = 16;
    opl_tensor *x = opl_new(c, OPL_DIMS(1, 1, S));
    opl_tensor *wc = opl_new_flags(c, OPL_DIMS(1, 1, 2), OPL_T_COMPLEX);
    memset(wc->data, 0, 4 * sizeof(opl_real));
    wc->data[2] = 1; /* mode 1 */
    double want[16];
    for (int64_t j = 0; j < S; j++) {
      x->data[j] = (opl_real)(cos(2 * M_PI * j / S) + cos(2 * M_PI * 3 * j / S));
      want[j] = cos(2 * M_PI * j / S);
    }
    opl_tensor *y = opl_spectral_conv(c, x, wc, 1, (int[]){2});
    char name[96];
    snprintf(name, sizeof name, "%sspectral_conv keeps mode 1 and drops mode 3", label);
    if (y) close_ref(S, y->data, want, 10 * TOL, name);
    else ok(0, "spectral_conv single mode");
  }
  ok(opl_ctx_status(c) == OPL_OK, "%sspectral_conv values: no error (%s)", label, opl_ctx_errmsg(c));
  opl_ctx_free(&c);
}

/* Threads: the same conv (big enough for threaded FFT plans, threaded BLAS and parallel loops)
 * at 1 and 2 threads, forward and gradients, agree. */
static void threads_case(int d, const int64_t *xs, const int64_t *ws, const int *modes, const char *label) {
  int rank = d + 2;
  opl_ctx *c = opl_ctx_new(0);
  opl_tensor *x = rand_tensor(c, rank, xs, 0, NULL), *w = rand_tensor(c, rank, ws, OPL_T_COMPLEX, NULL);
  int64_t nx = opl_nreal(x), nw = opl_nreal(w), ny = nx / xs[1] * ws[1];
  double *y1 = malloc(ny * sizeof *y1), *gx1 = malloc(nx * sizeof *gx1), *gw1 = malloc(nw * sizeof *gw1);
  int nthr = opl_get_num_threads();
  opl_real *seed = malloc(ny * sizeof *seed);
  for (int64_t i = 0; i < ny; i++) seed[i] = (opl_real)urand();
  for (int pass = 0; pass < 2; pass++) {
    opl_set_num_threads(pass == 0 ? 1 : 2);
    opl_ctx *c2 = opl_ctx_new(0);
    opl_tensor *xx = opl_new(c2, rank, xs), *ww = opl_new_flags(c2, rank, ws, OPL_T_COMPLEX);
    memcpy(xx->data, x->data, nx * sizeof(opl_real));
    memcpy(ww->data, w->data, nw * sizeof(opl_real));
    opl_set_requires_grad(xx), opl_set_requires_grad(ww);
    opl_tensor *y = opl_spectral_conv(c2, xx, ww, d, modes);
    if (y) opl_backward_seed(c2, y, seed);
    ok(y && opl_ctx_status(c2) == OPL_OK, "%s threads %d: conv forward+backward ok (%s)", label,
       pass + 1, opl_ctx_errmsg(c2));
    if (!y) break;
    if (pass == 0) {
      for (int64_t i = 0; i < ny; i++) y1[i] = y->data[i];
      for (int64_t i = 0; i < nx; i++) gx1[i] = xx->grad[i];
      for (int64_t i = 0; i < nw; i++) gw1[i] = ww->grad[i];
    } else {
      char name[128];
      snprintf(name, sizeof name, "%s conv forward: 2 threads = 1 thread", label);
      close_ref(ny, y->data, y1, 10 * TOL, name);
      snprintf(name, sizeof name, "%s conv grad x: 2 threads = 1 thread", label);
      close_ref(nx, xx->grad, gx1, 10 * TOL, name);
      snprintf(name, sizeof name, "%s conv grad w: 2 threads = 1 thread", label);
      close_ref(nw, ww->grad, gw1, 10 * TOL, name);
    }
    opl_ctx_free(&c2);
  }
  opl_set_num_threads(nthr);
  free(y1), free(gx1), free(gw1), free(seed);
  opl_ctx_free(&c);
}

static void test_threads(void) {
  threads_case(2, (int64_t[]){4, 8, 64, 64}, (int64_t[]){8, 6, 8, 5}, (int[]){4, 5}, "2-D (4,8,64,64)");
  opl_fft_set_dft_mode(OPL_DFT_FFT);
  threads_case(1, (int64_t[]){4, 16, 1024}, (int64_t[]){16, 8, 16}, (int[]){16}, "1-D FFT (4,16,1024)");
  opl_fft_set_dft_mode(OPL_DFT_GEMM);
  threads_case(1, (int64_t[]){4, 16, 1024}, (int64_t[]){16, 8, 16}, (int[]){16}, "1-D GEMM (4,16,1024)");
  opl_fft_set_dft_mode(OPL_DFT_AUTO);
}

/* The two 1-D transforms agree with each other on a large grid, and the automatic choice
 * takes the GEMM for few modes of a long signal and the FFT otherwise. */
static void test_dft_choice(void) {
  ok(opl_fft_prefer_gemm(1024, 16) && opl_fft_prefer_gemm(8192, 16) && !opl_fft_prefer_gemm(64, 33) && !opl_fft_prefer_gemm(256, 16) &&
         !opl_fft_prefer_gemm(1024, 64),
     "automatic choice: GEMM for (1024, 16) and (8192, 16), FFT for (64, 33), (256, 16) and (1024, 64)");
  opl_ctx *c = opl_ctx_new(0);
  int64_t xs[3] = {3, 4, 2048}, ws[3] = {4, 5, 20};
  opl_tensor *x = rand_tensor(c, 3, xs, 0, NULL), *w = rand_tensor(c, 3, ws, OPL_T_COMPLEX, NULL);
  opl_fft_set_dft_mode(OPL_DFT_FFT);
  opl_tensor *a = opl_spectral_conv(c, x, w, 1, (int[]){20});
  opl_fft_set_dft_mode(OPL_DFT_GEMM);
  opl_tensor *b = opl_spectral_conv(c, x, w, 1, (int[]){20});
  opl_fft_set_dft_mode(OPL_DFT_AUTO);
  int64_t ny = 3 * 5 * 2048;
  double *ad = malloc(ny * sizeof *ad);
  for (int64_t i = 0; a && i < ny; i++) ad[i] = a->data[i];
  if (a && b) close_ref(ny, b->data, ad, 10 * TOL, "1-D conv on 2048 points: GEMM DFT = FFT");
  else ok(0, "1-D conv on 2048 points: GEMM DFT = FFT");
  free(ad);
  opl_err err;
  const opl_real *F, *G;
  ok(opl_fft_dft_matrices(16, 10, &F, &G, &err) == OPL_ERR_ARG, "DFT matrices: m > n/2+1 is an error: %s",
     err.msg);
  ok(opl_fft_dft_matrices(16, 9, &F, &G, &err) == OPL_OK && F[1] == 0 && G[16] == 0 && F[2 * 9 + 17] == 0,
     "DFT matrices: exact zero sines on bins 0 and n/2");
  opl_ctx_free(&c);
}

/* ------------------------------------------------------------ values: derivative */

static void test_deriv_values(void) {
  opl_ctx *c = opl_ctx_new(0);
#ifdef OPL_DOUBLE
  const double tol = 1e-12;
#else
  const double tol = 2e-5;
#endif
  /* 1-D: d^p/dx^p sin(2 pi k x / L) on S points of [0, L), even and odd S. */
  const int64_t Ss[2] = {32, 27};
  for (int si = 0; si < 2; si++)
    for (int p = 1; p <= 4; p++) {
      int64_t S = Ss[si];
      double L = 3.0, k = 5, w = 2 * M_PI * k / L;
      opl_tensor *x = opl_new(c, OPL_DIMS(2, S));
      double *want = malloc(2 * S * sizeof *want);
      for (int64_t j = 0; j < S; j++)
        for (int b = 0; b < 2; b++) {
          double th = w * (double)j * L / (double)S + b; /* row b is shifted by a phase */
          x->data[b * S + j] = (opl_real)sin(th);
          /* d^p sin = w^p sin(th + p pi / 2) */
          want[b * S + j] = pow(w, p) * sin(th + p * M_PI / 2);
        }
      int order[1] = {p};
      double len[1] = {L};
      opl_tensor *y = opl_spectral_deriv(c, x, 1, order, len);
      char name[128];
      snprintf(name, sizeof name, "d^%d/dx^%d sin(2 pi 5 x / 3) on %lld points is exact", p, p, (long long)S);
      if (y) close_ref(2 * S, y->data, want, tol, name); else ok(0, "%s", name);
      free(want);
      opl_ctx_reset(c);
    }
  /* 2-D: f = sin(2 pi a x / Lx) cos(2 pi b y / Ly); f_xy, f_xx, f_yy, f_xxyy. */
  {
    int64_t S0 = 24, S1 = 20;
    double Lx = 2.0, Ly = 5.0, a = 3, bb = 2, wx = 2 * M_PI * a / Lx, wy = 2 * M_PI * bb / Ly;
    const int orders[4][2] = {{1, 1}, {2, 0}, {0, 2}, {2, 2}};
    for (int t = 0; t < 4; t++) {
      opl_tensor *x = opl_new(c, OPL_DIMS(1, 1, S0, S1));
      double *want = malloc(S0 * S1 * sizeof *want);
      for (int64_t i = 0; i < S0; i++)
        for (int64_t j = 0; j < S1; j++) {
          double tx = wx * i * Lx / S0, ty = wy * j * Ly / S1;
          int px = orders[t][0], py = orders[t][1];
          x->data[i * S1 + j] = (opl_real)(sin(tx) * cos(ty));
          want[i * S1 + j] = pow(wx, px) * sin(tx + px * M_PI / 2) * pow(wy, py) * cos(ty + py * M_PI / 2);
        }
      double len[2] = {Lx, Ly};
      opl_tensor *y = opl_spectral_deriv(c, x, 2, orders[t], len);
      char name[128];
      snprintf(name, sizeof name, "2-D d^(%d,%d) of sin(wx x) cos(wy y) is exact", orders[t][0], orders[t][1]);
      if (y) close_ref(S0 * S1, y->data, want, tol, name); else ok(0, "%s", name);
      free(want);
      opl_ctx_reset(c);
    }
  }
  /* 3-D: f = cos(2 pi x) sin(4 pi y / 2) cos(2 pi 2 z / 3); d/dx d/dz. */
  {
    int64_t S[3] = {8, 6, 10};
    double L[3] = {1.0, 2.0, 3.0}, kk[3] = {1, 2, 2}, wv[3];
    for (int a = 0; a < 3; a++) wv[a] = 2 * M_PI * kk[a] / L[a];
    opl_tensor *x = opl_new(c, OPL_DIMS(S[0], S[1], S[2]));
    double *want = malloc(S[0] * S[1] * S[2] * sizeof *want);
    for (int64_t i = 0; i < S[0]; i++)
      for (int64_t j = 0; j < S[1]; j++)
        for (int64_t k = 0; k < S[2]; k++) {
          double t0 = wv[0] * i * L[0] / S[0], t1 = wv[1] * j * L[1] / S[1], t2 = wv[2] * k * L[2] / S[2];
          int64_t o = (i * S[1] + j) * S[2] + k;
          x->data[o] = (opl_real)(cos(t0) * sin(t1) * cos(t2));
          want[o] = -wv[0] * sin(t0) * sin(t1) * -wv[2] * sin(t2);
        }
    opl_tensor *y = opl_spectral_deriv(c, x, 3, (int[]){1, 0, 1}, L);
    if (y) close_ref(S[0] * S[1] * S[2], y->data, want, tol, "3-D d2/dxdz of a trig product is exact");
    else ok(0, "3-D derivative");
    free(want);
    opl_ctx_reset(c);
  }
  /* Nyquist: x = cos(pi j) on an even grid. Odd orders give 0 (the bin is zeroed); the second
   * derivative is -(pi S / L)^2 cos(pi j). */
  {
    int64_t S = 16;
    double L = 2.0, wn = M_PI * S / L;
    opl_tensor *x = opl_new(c, OPL_DIMS(S));
    double want1[16], want2[16];
    for (int64_t j = 0; j < S; j++) {
      x->data[j] = (opl_real)((j & 1) ? -1 : 1);
      want1[j] = 0;
      want2[j] = -wn * wn * ((j & 1) ? -1 : 1);
    }
    opl_tensor *y1 = opl_spectral_deriv(c, x, 1, (int[]){1}, &L);
    opl_tensor *y2 = opl_spectral_deriv(c, x, 1, (int[]){2}, &L);
    double g1[16];
    for (int64_t j = 0; j < S; j++) g1[j] = y1 ? (double)y1->data[j] : NAN;
    arrays_close(S, g1, want1, 0, tol * 10, "first derivative of the Nyquist mode is 0");
    if (y2) close_ref(S, y2->data, want2, tol, "second derivative of the Nyquist mode is exact");
    /* Nyquist of a non-last axis, odd order: zero too. */
    opl_tensor *x2 = opl_new(c, OPL_DIMS(S, 3));
    for (int64_t j = 0; j < S; j++)
      for (int k = 0; k < 3; k++) x2->data[j * 3 + k] = (opl_real)((j & 1) ? -1 : 1);
    opl_tensor *y3 = opl_spectral_deriv(c, x2, 2, (int[]){1, 0}, (double[]){L, 1.0});
    double g3[48], z3[48] = {0};
    for (int i = 0; i < 48; i++) g3[i] = y3 ? (double)y3->data[i] : NAN;
    arrays_close(48, g3, z3, 0, tol * 10, "d/dx of the Nyquist mode of a non-last axis is 0");
    opl_ctx_reset(c);
  }
  /* Random data against the definition: r2c, multiply by (2 pi i k / L)^p (Nyquist rule),
   * definition of irfft. */
  {
    const int64_t shp[3] = {6, 5, 8};
    const int ord[3] = {1, 2, 1};
    const double L[3] = {1.0, 2.5, 0.5};
    for (int d = 1; d <= 3; d++) {
      int64_t dims[3], nr = 1;
      for (int a = 0; a < d; a++) dims[a] = shp[3 - d + a], nr *= dims[a];
      int64_t h = dims[d - 1] / 2 + 1, nc = nr / dims[d - 1] * h;
      double *x = malloc(2 * nr * sizeof *x), *X = malloc(4 * nc * sizeof *X), *y = malloc(2 * nr * sizeof *y);
      int64_t xshape[4] = {2, dims[0], dims[1], dims[2]};
      opl_tensor *xt = rand_tensor(c, d + 1, xshape, 0, x);
      ref_rfft(d, dims, 2, x, X);
      int64_t D[3];
      pad3(d, dims, D);
      for (int64_t b = 0; b < 2; b++)
        for (int64_t p0 = 0; p0 < D[0]; p0++)
          for (int64_t p1 = 0; p1 < D[1]; p1++)
            for (int64_t p2 = 0; p2 < h; p2++) {
              int64_t p[3] = {p0, p1, p2};
              double mr = 1, mi = 0; /* the symbol, built factor by factor */
              for (int a = 3 - d; a < 3; a++) {
                int o = ord[a]; /* the order table is indexed by the padded axis */
                double Ll = L[a];
                int64_t k = 2 * p[a] <= D[a] ? p[a] : p[a] - D[a];
                if ((o & 1) && 2 * p[a] == D[a]) { mr = mi = 0; continue; }
                for (int e = 0; e < o; e++) { /* multiply by i 2 pi k / L */
                  double f = 2 * M_PI * (double)k / Ll, nr2 = -mi * f, ni = mr * f;
                  mr = nr2, mi = ni;
                }
              }
              double *v = X + 2 * (b * nc + (p0 * D[1] + p1) * h + p2);
              double a0 = v[0], a1 = v[1];
              v[0] = a0 * mr - a1 * mi, v[1] = a0 * mi + a1 * mr;
            }
      ref_irfft(d, dims, 2, X, y);
      int o3[3];
      double L3[3];
      for (int a = 0; a < d; a++) o3[a] = ord[3 - d + a], L3[a] = L[3 - d + a];
      opl_tensor *yt = opl_spectral_deriv(c, xt, d, o3, L3);
      char name[96];
      snprintf(name, sizeof name, "spectral_deriv %d-D of random data equals the definition", d);
      if (yt) close_ref(2 * nr, yt->data, y, 10 * TOL, name); else ok(0, "%s", name);
      free(x), free(X), free(y);
      opl_ctx_reset(c);
    }
  }
  ok(opl_ctx_status(c) == OPL_OK, "derivative values: no error (%s)", opl_ctx_errmsg(c));
  opl_ctx_free(&c);
}

/* ------------------------------------------------------------ bad input */

static int err_is(opl_ctx *c, int status, const char *s1, const char *s2, const char *what) {
  const char *m = opl_ctx_errmsg(c);
  int pass = opl_ctx_status(c) == status && (!s1 || strstr(m, s1)) && (!s2 || strstr(m, s2));
  ok(pass, "%s -> %s: %s", what, opl_status_name(status), m);
  opl_ctx_clear_error(c);
  return pass;
}

static void test_bad_input(void) {
  opl_ctx *c = opl_ctx_new(0);
  opl_tensor *x1 = opl_zeros(c, OPL_DIMS(2, 3, 16));
  opl_tensor *x2 = opl_zeros(c, OPL_DIMS(2, 3, 8, 6));
  opl_tensor *xc = opl_new_flags(c, OPL_DIMS(2, 3, 9), OPL_T_COMPLEX);
  opl_tensor *w1 = opl_new_flags(c, OPL_DIMS(3, 4, 5), OPL_T_COMPLEX);
  opl_tensor *w2 = opl_new_flags(c, OPL_DIMS(3, 4, 4, 3), OPL_T_COMPLEX);
  opl_tensor *wr = opl_zeros(c, OPL_DIMS(3, 4, 5));
  memset(xc->data, 0, opl_nreal(xc) * sizeof(opl_real));
  memset(w1->data, 0, opl_nreal(w1) * sizeof(opl_real));
  memset(w2->data, 0, opl_nreal(w2) * sizeof(opl_real));
  ok(opl_spectral_conv(c, x1, w1, 1, (int[]){5}) != NULL, "valid spectral_conv runs");
  ok(opl_spectral_conv(c, x2, w2, 2, (int[]){2, 3}) != NULL, "valid 2-D spectral_conv runs");
  opl_ctx_clear_error(c);

  /* spectral_conv */
  ok(!opl_spectral_conv(c, x1, opl_new_flags(c, OPL_DIMS(3, 4, 10), OPL_T_COMPLEX), 1, (int[]){10}),
     "conv: 10 modes on 16 points (max 9) fails");
  err_is(c, OPL_ERR_SHAPE, "(2, 3, 16)", "(10)", "modes 10 > S/2+1 = 9 names x and modes");
  ok(!opl_spectral_conv(c, x2, opl_new_flags(c, OPL_DIMS(3, 4, 10, 3), OPL_T_COMPLEX), 2, (int[]){5, 3}),
     "conv: 2*5 modes on an axis of 8 fails");
  err_is(c, OPL_ERR_SHAPE, "(2, 3, 8, 6)", "(5, 3)", "2 m > S on a non-last axis names x and modes");
  ok(!opl_spectral_conv(c, x2, w2, 2, (int[]){2, 5}), "conv: last-axis modes 5 > 6/2+1 fails");
  err_is(c, OPL_ERR_SHAPE, "(2, 3, 8, 6)", NULL, "last-axis modes too large");
  ok(!opl_spectral_conv(c, x1, w1, 1, (int[]){0}), "conv: 0 modes fails");
  err_is(c, OPL_ERR_SHAPE, "(2, 3, 16)", NULL, "zero modes");
  ok(!opl_spectral_conv(c, x1, w1, 1, (int[]){4}), "conv: w (3,4,5) with 4 modes fails");
  err_is(c, OPL_ERR_SHAPE, "(3, 4, 5)", "(3, 4, 4)", "wrong w shape names w and the expected shape");
  ok(!opl_spectral_conv(c, x1, opl_new_flags(c, OPL_DIMS(2, 4, 5), OPL_T_COMPLEX), 1, (int[]){5}),
     "conv: w with Ci = 2 for x with Ci = 3 fails");
  err_is(c, OPL_ERR_SHAPE, "(2, 4, 5)", "(2, 3, 16)", "Ci mismatch names both shapes");
  ok(!opl_spectral_conv(c, x2, w1, 2, (int[]){2, 3}), "conv: 1-D w for a 2-D conv fails");
  err_is(c, OPL_ERR_SHAPE, "(3, 4, 5)", "(2, 3, 8, 6)", "w rank mismatch");
  ok(!opl_spectral_conv(c, x1, wr, 1, (int[]){5}), "conv: real w fails");
  err_is(c, OPL_ERR_ARG, "(3, 4, 5)", "complex", "real w");
  ok(!opl_spectral_conv(c, xc, w1, 1, (int[]){5}), "conv: complex x fails");
  err_is(c, OPL_ERR_ARG, "(2, 3, 9)", "real", "complex x");
  ok(!opl_spectral_conv(c, x1, w1, 2, (int[]){5, 5}), "conv: d = 2 on a rank-3 x fails");
  err_is(c, OPL_ERR_SHAPE, "(2, 3, 16)", "rank", "rank of x does not match d");
  ok(!opl_spectral_conv(c, x1, w1, 0, (int[]){5}), "conv: d = 0 fails");
  err_is(c, OPL_ERR_ARG, "d = 0", NULL, "d = 0");
  ok(!opl_spectral_conv(c, x1, w1, 4, (int[]){5, 5, 5, 5}), "conv: d = 4 fails");
  err_is(c, OPL_ERR_ARG, "d = 4", NULL, "d = 4");
  ok(!opl_spectral_conv(c, x1, w1, 1, NULL), "conv: NULL modes fails");
  err_is(c, OPL_ERR_ARG, "modes", NULL, "NULL modes");
  ok(!opl_spectral_conv(c, NULL, w1, 1, (int[]){5}), "conv: NULL x fails");
  err_is(c, OPL_ERR_ARG, "x", NULL, "NULL x");

  /* fourier_layer: the conv's checks, then w, b and act */
  opl_tensor *lw = opl_zeros(c, OPL_DIMS(4, 3)), *lb = opl_zeros(c, OPL_DIMS(4));
  ok(opl_fourier_layer(c, x1, w1, lw, lb, 1, (int[]){5}, OPL_GELU) != NULL, "valid fourier_layer runs");
  ok(!opl_fourier_layer(c, x1, w1, opl_zeros(c, OPL_DIMS(3, 3)), lb, 1, (int[]){5}, OPL_GELU),
     "fourier_layer: w (3, 3) for Co = 4 fails");
  err_is(c, OPL_ERR_SHAPE, "(3, 3)", "(4, 3)", "fourier_layer w shape names w and (Co, Ci)");
  ok(!opl_fourier_layer(c, x1, w1, lw, opl_zeros(c, OPL_DIMS(3)), 1, (int[]){5}, -1),
     "fourier_layer: b (3) for Co = 4 fails");
  err_is(c, OPL_ERR_SHAPE, "(3)", "Co = 4", "fourier_layer b shape");
  ok(!opl_fourier_layer(c, x1, w1, lw, lb, 1, (int[]){5}, OPL_UNARY_COUNT), "fourier_layer: unknown act fails");
  err_is(c, OPL_ERR_ARG, "act", NULL, "fourier_layer act out of range");
  ok(!opl_fourier_layer(c, x1, w1, lw, lb, 1, (int[]){10}, OPL_GELU), "fourier_layer: too many modes fails");
  err_is(c, OPL_ERR_SHAPE, "fourier_layer", "(2, 3, 16)", "fourier_layer modes checked as the conv's, named");
  ok(!opl_fourier_layer(c, x1, w1, NULL, lb, 1, (int[]){5}, OPL_GELU), "fourier_layer: NULL w fails");
  err_is(c, OPL_ERR_ARG, "w", NULL, "fourier_layer NULL w");

  /* rfft / irfft */
  ok(!opl_rfft(c, opl_zeros(c, OPL_DIMS(8)), 2), "rfft: d = 2 on a rank-1 tensor fails");
  err_is(c, OPL_ERR_SHAPE, "(8)", "d = 2", "rfft rank too small");
  ok(!opl_rfft(c, xc, 1), "rfft of a complex tensor fails");
  err_is(c, OPL_ERR_ARG, "(2, 3, 9)", NULL, "rfft complex input");
  ok(!opl_rfft(c, x1, 4), "rfft d = 4 fails");
  err_is(c, OPL_ERR_ARG, "d = 4", NULL, "rfft d = 4");
  ok(!opl_irfft(c, x1, 1, 30), "irfft of a real tensor fails");
  err_is(c, OPL_ERR_ARG, "(2, 3, 16)", "complex", "irfft real input");
  ok(!opl_irfft(c, xc, 1, 20), "irfft with n_last 20 (11 bins) on 9 bins fails");
  err_is(c, OPL_ERR_SHAPE, "(2, 3, 9)", "20", "irfft last axis mismatch names shape and n_last");
  ok(!opl_irfft(c, xc, 1, 0), "irfft n_last = 0 fails");
  err_is(c, OPL_ERR_SHAPE, "(2, 3, 9)", NULL, "irfft n_last = 0");
  ok(!opl_irfft(c, xc, 0, 16), "irfft d = 0 fails");
  err_is(c, OPL_ERR_ARG, "d = 0", NULL, "irfft d = 0");
  ok(!opl_irfft(c, opl_new_flags(c, OPL_DIMS(9), OPL_T_COMPLEX), 2, 16), "irfft rank too small fails");
  err_is(c, OPL_ERR_SHAPE, "(9)", "d = 2", "irfft rank too small");
  ok(opl_irfft(c, xc, 1, 16) && opl_irfft(c, xc, 1, 17), "irfft: both 16 and 17 fit 9 bins");
  opl_ctx_clear_error(c);

  /* spectral_deriv */
  ok(!opl_spectral_deriv(c, x1, 1, (int[]){-1}, (double[]){1.0}), "deriv: negative order fails");
  err_is(c, OPL_ERR_ARG, "(2, 3, 16)", "order", "negative order");
  ok(!opl_spectral_deriv(c, x1, 1, (int[]){1}, (double[]){0.0}), "deriv: zero length fails");
  err_is(c, OPL_ERR_ARG, "(2, 3, 16)", "length", "zero length");
  ok(!opl_spectral_deriv(c, x1, 1, (int[]){1}, (double[]){NAN}), "deriv: NaN length fails");
  err_is(c, OPL_ERR_ARG, NULL, NULL, "NaN length");
  ok(!opl_spectral_deriv(c, opl_zeros(c, OPL_DIMS(2, 8)), 3, (int[]){1, 1, 1}, (double[]){1, 1, 1}),
     "deriv: d = 3 on a rank-2 tensor fails");
  err_is(c, OPL_ERR_SHAPE, "(2, 8)", "d = 3", "deriv rank too small");
  ok(!opl_spectral_deriv(c, xc, 1, (int[]){1}, (double[]){1}), "deriv of a complex tensor fails");
  err_is(c, OPL_ERR_ARG, "(2, 3, 9)", NULL, "deriv complex input");
  ok(!opl_spectral_deriv(c, x1, 5, (int[]){1}, (double[]){1}), "deriv d = 5 fails");
  err_is(c, OPL_ERR_ARG, "d = 5", NULL, "deriv d = 5");
  ok(!opl_spectral_deriv(c, x1, 1, NULL, (double[]){1}), "deriv: NULL order fails");
  err_is(c, OPL_ERR_ARG, NULL, NULL, "deriv NULL order");

  /* The sticky error: once set, the ops return NULL. */
  opl_ctx_error(c, OPL_ERR_STATE, "earlier error");
  ok(!opl_rfft(c, x1, 1) && !opl_irfft(c, xc, 1, 16) && !opl_spectral_conv(c, x1, w1, 1, (int[]){5}) &&
         !opl_spectral_deriv(c, x1, 1, (int[]){1}, (double[]){1}),
     "every spectral op returns NULL under a sticky error");
  ok(strcmp(opl_ctx_errmsg(c), "earlier error") == 0, "and keeps the first message");
  opl_ctx_free(&c);
}

/* Fill t with U(-1, 1) from *st. */
static void fill_uniform(opl_tensor *t, uint64_t *st) {
  for (int64_t i = 0; i < opl_nreal(t); i++) t->data[i] = (opl_real)(2 * gc_uniform(st) - 1);
}

/* Largest |a - b| over n, relative to the largest |b| (at least 1e-30). */
static double rel_diff(int64_t n, const opl_real *a, const opl_real *b) {
  double d = 0, m = 1e-30;
  for (int64_t i = 0; i < n; i++) {
    d = fmax(d, fabs((double)a[i] - (double)b[i]));
    m = fmax(m, fabs((double)b[i]));
  }
  return d / m;
}

/* fourier_layer equals spectral_conv + channel_linear (+ add, act) in values and in every
 * gradient, and a training step of a stack of L of them keeps fewer activation-sized buffers
 * than the composed ops: the composition keeps 4 per layer (K x, W x + b, the sum, act), the
 * fused op 2 (z, y), so the arena high-water mark must drop by at least 1.5 activations per
 * layer. */
static void layer_case(const char *label, int d, const int64_t *xs, const int *modes, int act) {
  const int L = 3;
  int64_t N = xs[0], W = xs[1], S = prod(xs, 2, d + 2), A = N * W * S;
  int64_t ws[5] = {W, W, 0, 0, 0};
  for (int a = 0; a < d; a++) ws[2 + a] = a < d - 1 ? 2 * (int64_t)modes[a] : modes[a];
  opl_err err;
  uint64_t st = 7;
  opl_tensor *x = opl_tensor_alloc(d + 2, xs, OPL_T_REQGRAD, &err), *wk[3], *w[3], *b[3];
  fill_uniform(x, &st);
  for (int l = 0; l < L; l++) {
    wk[l] = opl_tensor_alloc(d + 2, ws, OPL_T_COMPLEX | OPL_T_REQGRAD, &err);
    w[l] = opl_tensor_alloc(OPL_DIMS(W, W), OPL_T_REQGRAD, &err);
    b[l] = opl_tensor_alloc(OPL_DIMS(W), OPL_T_REQGRAD, &err);
    fill_uniform(wk[l], &st), fill_uniform(w[l], &st), fill_uniform(b[l], &st);
  }
  opl_tensor *all[10] = {x, wk[0], w[0], b[0], wk[1], w[1], b[1], wk[2], w[2], b[2]};
  opl_real *val[2] = {NULL, NULL}, *grad[2][10];
  size_t high[2];
  for (int fused = 0; fused < 2; fused++) {
    opl_ctx *c = opl_ctx_new(0);
    for (int i = 0; i < 10; i++) opl_tensor_zero_grad(all[i]);
    opl_tensor *h = x;
    for (int l = 0; l < L; l++) {
      if (fused) {
        h = opl_fourier_layer(c, h, wk[l], w[l], b[l], d, modes, act);
      } else {
        opl_tensor *v = opl_add(c, opl_spectral_conv(c, h, wk[l], d, modes), opl_channel_linear(c, h, w[l], b[l]));
        h = act >= 0 ? opl_unary(c, v, (opl_unary_kind)act) : v;
      }
    }
    opl_tensor *loss = opl_mean(c, opl_square(c, h));
    opl_backward(c, loss);
    opl_ctx_stats cs;
    opl_ctx_get_stats(c, &cs);
    high[fused] = cs.arena_high;
    val[fused] = malloc(sizeof(opl_real) * (size_t)A);
    if (h && opl_ctx_status(c) == OPL_OK) memcpy(val[fused], h->data, sizeof(opl_real) * (size_t)A);
    else memset(val[fused], 0, sizeof(opl_real) * (size_t)A);
    if (opl_ctx_status(c)) diag("%s: %s", label, opl_ctx_errmsg(c));
    for (int i = 0; i < 10; i++) {
      grad[fused][i] = malloc(sizeof(opl_real) * (size_t)opl_nreal(all[i]));
      memcpy(grad[fused][i], all[i]->grad, sizeof(opl_real) * (size_t)opl_nreal(all[i]));
    }
    opl_ctx_free(&c);
  }
  double tol = sizeof(opl_real) == 8 ? 1e-12 : 2e-5, gd = 0;
  for (int i = 0; i < 10; i++) gd = fmax(gd, rel_diff(opl_nreal(all[i]), grad[1][i], grad[0][i]));
  ok(rel_diff(A, val[1], val[0]) <= tol, "%sfourier_layer x %d equals the composed ops (rel diff %.2g)", label, L,
     rel_diff(A, val[1], val[0]));
  ok(gd <= 10 * tol, "%sand so do all 10 gradients (largest rel diff %.2g)", label, gd);
  double saved = ((double)high[0] - (double)high[1]) / (double)(A * (int64_t)sizeof(opl_real));
  ok(saved >= 1.5 * L, "%sits training step keeps %.1f activations less than the composed ops (need >= %.1f)",
     label, saved, 1.5 * L);
  for (int f = 0; f < 2; f++) {
    free(val[f]);
    for (int i = 0; i < 10; i++) free(grad[f][i]);
  }
  for (int i = 0; i < 10; i++) opl_tensor_free(&all[i]);
}

static void test_fourier_layer(void) {
  layer_case("1-D gelu: ", 1, (int64_t[]){4, 8, 256}, (int[]){8}, OPL_GELU);
  layer_case("2-D gelu: ", 2, (int64_t[]){2, 6, 32, 24}, (int[]){4, 5}, OPL_GELU);
  layer_case("2-D no act: ", 2, (int64_t[]){2, 4, 16, 16}, (int[]){3, 3}, -1);
}

/* Backward scratch does not pile up: each node's backward gives its scratch back, so the
 * arena grows during backward by the live gradients only, whatever the number of nodes. A
 * chain of 2-D spectral convolutions (each backward takes a spectrum-sized scratch) of 2 and
 * of 8 links must grow by the same amount. */
static void test_backward_scratch(void) {
  size_t grow[2];
  const int links[2] = {2, 8};
  opl_err err;
  opl_tensor *x = opl_tensor_alloc(OPL_DIMS(2, 4, 32, 32), OPL_T_REQGRAD, &err);
  opl_tensor *w = opl_tensor_alloc(OPL_DIMS(4, 4, 8, 5), OPL_T_COMPLEX | OPL_T_REQGRAD, &err);
  uint64_t st = 3;
  fill_uniform(x, &st), fill_uniform(w, &st);
  for (int k = 0; k < 2; k++) {
    opl_ctx *c = opl_ctx_new(0);
    opl_tensor *h = x;
    for (int l = 0; l < links[k]; l++) h = opl_spectral_conv(c, h, w, 2, (int[]){4, 5});
    opl_tensor *loss = opl_sum(c, h);
    opl_ctx_stats a, b;
    opl_ctx_get_stats(c, &a);
    opl_backward(c, loss);
    opl_ctx_get_stats(c, &b);
    grow[k] = b.arena_high - a.arena_used;
    ok(opl_ctx_status(c) == OPL_OK, "backward through %d spectral convolutions runs", links[k]);
    opl_ctx_free(&c);
  }
  ok(grow[1] == grow[0], "backward of 8 links grows the arena as much as that of 2 (%zu vs %zu bytes)", grow[1],
     grow[0]);
  opl_tensor_free(&x), opl_tensor_free(&w);
}

/* No malloc in steady state: a second identical forward+backward step after a reset does
 * not grow the arena or allocate. */
static void test_steady_state(void) {
  opl_ctx *c = opl_ctx_new(0);
  opl_err err;
  opl_tensor *x = opl_tensor_alloc(OPL_DIMS(2, 3, 32), OPL_T_REQGRAD, &err);
  opl_tensor *w = opl_tensor_alloc(OPL_DIMS(3, 3, 6), OPL_T_COMPLEX | OPL_T_REQGRAD, &err);
  opl_ctx_stats s1, s2;
  for (int step = 0; step < 3; step++) {
    opl_ctx_reset(c);
    opl_tensor *y = opl_spectral_conv(c, x, w, 1, (int[]){6});
    opl_tensor *z = opl_spectral_deriv(c, y, 1, (int[]){1}, (double[]){1.0});
    opl_tensor *f = opl_irfft(c, opl_rfft(c, z, 1), 1, 32);
    opl_backward_seed(c, f, f->data);
    if (step == 1) opl_ctx_get_stats(c, &s1);
    if (step == 2) opl_ctx_get_stats(c, &s2);
  }
  ok(opl_ctx_status(c) == OPL_OK && s1.sys_allocs == s2.sys_allocs && s1.arena_used == s2.arena_used,
     "steady state: no new allocation in a repeated step (allocs %lld -> %lld)",
     (long long)s1.sys_allocs, (long long)s2.sys_allocs);
  opl_tensor_free(&x), opl_tensor_free(&w);
  opl_ctx_free(&c);
}

int main(void) {
  tap_begin();
  opl_fft_set_planner(1); /* FFTW_ESTIMATE: the tests make many small plans */
  /* 1-D convolutions run through both transforms: the FFT here, the GEMM DFT below. */
  opl_fft_set_dft_mode(OPL_DFT_FFT);
  gc_run_table(rows, (int)(sizeof rows / sizeof rows[0]));
  gc_run_adjoint_table(adjoint_rows, (int)(sizeof adjoint_rows / sizeof adjoint_rows[0]));
  test_sconv_values("", 0);
  opl_fft_set_dft_mode(OPL_DFT_GEMM);
  gc_run_table(gemm_rows, (int)(sizeof gemm_rows / sizeof gemm_rows[0]));
  gc_run_adjoint_table(gemm_adjoint_rows, (int)(sizeof gemm_adjoint_rows / sizeof gemm_adjoint_rows[0]));
  test_sconv_values("GEMM-DFT ", 1);
  opl_fft_set_dft_mode(OPL_DFT_AUTO);
  test_dft_choice();
  test_rfft_irfft_values();
  test_deriv_values();
  test_threads();
  test_bad_input();
  test_fourier_layer();
  test_backward_scratch();
  test_steady_state();
  opl_fft_cache_clear();
  return tap_end();
}
