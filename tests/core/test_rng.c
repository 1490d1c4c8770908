/* RNG (Philox4x32-10) and initializers: known answers, stream layout, moments, thread
 * invariance, splitting, PyTorch initializer bounds and moments, bad input. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include "core/init.h"
#include "core/rng.h"
#include "tests/tap.h"

/* Known-answer vectors of Philox4x32-10 from the Random123 distribution (kat_vectors:
 * "philox4x32 10 <ctr0..3> <key0..1> <out0..3>"), also used by TensorFlow's and JAX's tests. */
static void test_kat(void) {
  static const struct {
    uint32_t ctr[4], key[2], out[4];
  } kat[] = {
      {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}},
      {{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
       {0xffffffffu, 0xffffffffu},
       {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}},
      {{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u},
       {0xa4093822u, 0x299f31d0u},
       {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}},
  };
  for (int k = 0; k < 3; k++) {
    uint32_t out[4];
    opl_philox4x32_10(kat[k].ctr, kat[k].key, out);
    ok(memcmp(out, kat[k].out, sizeof out) == 0,
       "philox4x32-10 KAT %d: got %08x %08x %08x %08x", k, out[0], out[1], out[2], out[3]);
  }
  /* In place (out aliases ctr). */
  uint32_t x[4] = {0, 0, 0, 0}, key[2] = {0, 0};
  opl_philox4x32_10(x, key, x);
  ok(x[0] == 0x6627e8d5u && x[3] == 0x9b00dbd8u, "philox in place");
}

/* The stream is philox(block, key) lane by lane; u64 is two words, first one high. */
static void test_stream_layout(void) {
  const uint64_t seed = 0x0123456789abcdefull;
  opl_rng r;
  opl_rng_seed(&r, seed);
  ok(r.key[0] == 0x89abcdefu && r.key[1] == 0x01234567u && r.counter == 0, "seed sets key and counter");
  uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
  int good = 1;
  for (uint32_t b = 0; b < 5; b++) {
    uint32_t ctr[4] = {b, 0, 0, 0}, w[4];
    opl_philox4x32_10(ctr, key, w);
    for (int l = 0; l < 4; l++) good &= opl_rng_u32(&r) == w[l];
  }
  ok(good && r.counter == 20, "u32 stream = philox blocks 0..4 lane by lane");
  opl_rng a, b;
  opl_rng_seed(&a, 7);
  opl_rng_seed(&b, 7);
  uint64_t hi = opl_rng_u32(&b), lo = opl_rng_u32(&b);
  ok(opl_rng_u64(&a) == ((hi << 32) | lo), "u64 = (first word << 32) | second word");
  opl_rng_seed(&a, 7);
  opl_rng_seed(&b, 7);
  ok(opl_rng_uniform(&a) == (double)(opl_rng_u64(&b) >> 11) / 9007199254740992.0,
     "uniform = (u64 >> 11) 2^-53");
  /* A block past 2^32 uses the high counter word. */
  opl_rng_seed(&a, 7);
  a.counter = ((uint64_t)5 << 32 | 9) << 2;
  uint32_t ctr[4] = {9, 5, 0, 0}, w[4], k7[2] = {7, 0};
  opl_philox4x32_10(ctr, k7, w);
  ok(opl_rng_u32(&a) == w[0], "block >= 2^32 maps to counter words (lo, hi)");
}

/* Bulk fills: element i from block b0 + i/2 (b0 the next whole block), layout checked
 * against philox directly; the stream continues after the last block. */
static void test_fill_layout(void) {
  opl_rng r;
  opl_rng_seed(&r, 99);
  (void)opl_rng_u32(&r); /* counter 1: the fill starts at block 1 */
  enum { N = 7 };
  opl_real x[N], y[N];
  opl_rng_fill_uniform(&r, x, N, -2.0, 3.0);
  ok(r.counter == 4 * (1 + 4), "fill of 7 from counter 1 uses blocks 1..4 (counter %llu)",
     (unsigned long long)r.counter);
  uint32_t key[2] = {99, 0};
  double want[N], got[N];
  for (int i = 0; i < N; i++) {
    uint32_t ctr[4] = {(uint32_t)(1 + i / 2), 0, 0, 0}, w[4];
    opl_philox4x32_10(ctr, key, w);
    int l = 2 * (i % 2);
    double u = (double)((((uint64_t)w[l] << 32) | w[l + 1]) >> 11) / 9007199254740992.0;
    want[i] = (double)(opl_real)(-2.0 + 5.0 * u);
    got[i] = x[i];
  }
  arrays_close(N, got, want, 0, 0, "uniform fill element i = lo + (hi - lo) u(block b0 + i/2)");
  /* Normal fill: Box-Muller pairs (cos, sin) from each block. */
  opl_rng_seed(&r, 99);
  opl_rng_fill_normal(&r, y, N, 1.0, 2.0);
  for (int i = 0; i < N; i++) {
    uint32_t ctr[4] = {(uint32_t)(i / 2), 0, 0, 0}, w[4];
    opl_philox4x32_10(ctr, key, w);
    double u1 = 1.0 - (double)((((uint64_t)w[0] << 32) | w[1]) >> 11) / 9007199254740992.0;
    double u2 = (double)((((uint64_t)w[2] << 32) | w[3]) >> 11) / 9007199254740992.0;
    double rr = sqrt(-2 * log(u1)), th = 2 * M_PI * u2;
    want[i] = 1.0 + 2.0 * rr * (i % 2 ? sin(th) : cos(th));
    got[i] = y[i];
  }
  arrays_close(N, got, want, 1e-14 + (sizeof(opl_real) == 4 ? 1e-6 : 0), 1e-14,
               "normal fill element 2j/2j+1 = Box-Muller cos/sin of block j");
  /* opl_rng_normal draws u1, u2 from one aligned block: the same as fill element 0. */
  opl_rng_seed(&r, 99);
  is_close(opl_rng_normal(&r), (y[0] - 1.0) / 2.0, sizeof(opl_real) == 4 ? 1e-6 : 1e-14, 1e-7,
           "opl_rng_normal = cosine partner of the block");
  /* lo == hi fills lo; n = 0 draws nothing. */
  opl_rng_fill_uniform(&r, x, N, 0.25, 0.25);
  int all = 1;
  for (int i = 0; i < N; i++) all &= x[i] == (opl_real)0.25;
  ok(all, "U[a, a] fills a");
  uint64_t before = r.counter;
  opl_rng_fill_normal(&r, x, 0, 0, 1);
  ok(r.counter == before, "empty fill draws nothing");
}

static void moments(const opl_real *x, int64_t n, double *mean, double *var) {
  double s = 0, s2 = 0;
  for (int64_t i = 0; i < n; i++) s += x[i];
  *mean = s / (double)n;
  for (int64_t i = 0; i < n; i++) s2 += (x[i] - *mean) * (x[i] - *mean);
  *var = s2 / (double)(n - 1);
}

/* Moments of 1e6 samples within 5 standard errors. */
static void test_moments(void) {
  const int64_t n = 1000000;
  opl_real *x = malloc((size_t)n * sizeof *x);
  opl_rng r;
  opl_rng_seed(&r, 20240501);
  double lo = -1.5, hi = 2.5, w = hi - lo, mean, var;
  opl_rng_fill_uniform(&r, x, n, lo, hi);
  int inside = 1;
  for (int64_t i = 0; i < n; i++) inside &= x[i] >= lo && x[i] < hi;
  ok(inside, "uniform samples lie in [lo, hi)");
  moments(x, n, &mean, &var);
  /* sd(mean) = w/sqrt(12 n); sd(var) = w^2 sqrt((1/80 - 1/144)/n) */
  is_close(mean, (lo + hi) / 2, 0, 5 * w / sqrt(12.0 * n), "U(%g, %g) mean", lo, hi);
  is_close(var, w * w / 12, 0, 5 * w * w * sqrt((1.0 / 80 - 1.0 / 144) / n), "U(%g, %g) variance", lo, hi);

  /* Chi-square of the top byte of 2^20 u32 words over 256 bins: 255 dof, sd 22.6. */
  static long bins[256];
  memset(bins, 0, sizeof bins);
  for (int i = 0; i < (1 << 20); i++) bins[opl_rng_u32(&r) >> 24]++;
  double chi = 0, e = (double)(1 << 20) / 256;
  for (int i = 0; i < 256; i++) chi += (bins[i] - e) * (bins[i] - e) / e;
  ok(chi > 255 - 6 * 22.6 && chi < 255 + 6 * 22.6, "chi-square of u32 top byte = %.1f (255 +- 136)", chi);

  double mu = 0.5, sd = 1.5;
  opl_rng_fill_normal(&r, x, n, mu, sd);
  moments(x, n, &mean, &var);
  is_close(mean, mu, 0, 5 * sd / sqrt((double)n), "N(%g, %g^2) mean", mu, sd);
  is_close(var, sd * sd, 0, 5 * sqrt(2.0) * sd * sd / sqrt((double)n), "N(%g, %g^2) variance", mu, sd);
  double s3 = 0, s4 = 0;
  long in1 = 0;
  for (int64_t i = 0; i < n; i++) {
    double z = (x[i] - mu) / sd;
    s3 += z * z * z;
    s4 += z * z * z * z;
    in1 += fabs(z) < 1;
  }
  is_close(s3 / n, 0, 0, 5 * sqrt(15.0 / n), "normal skewness ~ 0");
  is_close(s4 / n, 3, 0, 5 * sqrt(96.0 / n), "normal kurtosis ~ 3");
  is_close((double)in1 / n, erf(1 / sqrt(2.0)), 0, 5 * sqrt(0.6827 * 0.3173 / n),
           "P(|z| < 1) = erf(1/sqrt 2)");

  /* Single-draw normal: 2e5 samples. */
  const int m = 200000;
  double s = 0, ss = 0;
  for (int i = 0; i < m; i++) {
    double z = opl_rng_normal(&r);
    s += z;
    ss += z * z;
  }
  is_close(s / m, 0, 0, 5 / sqrt((double)m), "opl_rng_normal mean");
  is_close(ss / m, 1, 0, 5 * sqrt(2.0 / m), "opl_rng_normal second moment");
  double su = 0;
  for (int i = 0; i < m; i++) su += opl_rng_uniform(&r);
  is_close(su / m, 0.5, 0, 5 * sqrt(1.0 / 12 / m), "opl_rng_uniform mean");
  free(x);
}

/* The same bits for 1 and 2 threads (n above the parallel threshold). */
static void test_threads(void) {
  const int64_t n = 300001;
  opl_real *a = malloc((size_t)n * sizeof *a), *b = malloc((size_t)n * sizeof *b);
  int saved = omp_get_max_threads();
  opl_rng r1, r2;
  for (int kind = 0; kind < 2; kind++) {
    opl_rng_seed(&r1, 5);
    opl_rng_seed(&r2, 5);
    (void)opl_rng_u32(&r1);
    (void)opl_rng_u32(&r2);
    omp_set_num_threads(1);
    if (kind == 0) opl_rng_fill_uniform(&r1, a, n, -1, 1);
    else opl_rng_fill_normal(&r1, a, n, 0, 1);
    omp_set_num_threads(2);
    if (kind == 0) opl_rng_fill_uniform(&r2, b, n, -1, 1);
    else opl_rng_fill_normal(&r2, b, n, 0, 1);
    ok(memcmp(a, b, (size_t)n * sizeof *a) == 0 && r1.counter == r2.counter,
       "%s fill: identical bits and stream position with 1 and 2 threads",
       kind ? "normal" : "uniform");
  }
  /* A fill equals the concatenation of two fills (block aligned). */
  opl_rng_seed(&r1, 11);
  opl_rng_fill_uniform(&r1, a, 1000, 0, 1);
  opl_rng_seed(&r2, 11);
  opl_rng_fill_uniform(&r2, b, 400, 0, 1);
  opl_rng_fill_uniform(&r2, b + 400, 600, 0, 1);
  ok(memcmp(a, b, 1000 * sizeof *a) == 0, "fill(1000) = fill(400) ++ fill(600)");
  omp_set_num_threads(saved);
  free(a);
  free(b);
}

static void test_split(void) {
  opl_rng p, q;
  opl_rng_seed(&p, 42);
  opl_rng c0 = opl_rng_split(&p, 0), c1 = opl_rng_split(&p, 1);
  (void)opl_rng_u64(&p); /* drawing from the parent does not change its children */
  opl_rng c0b = opl_rng_split(&p, 0);
  ok(c0.key[0] == c0b.key[0] && c0.key[1] == c0b.key[1] && c0b.counter == 0,
     "split is reproducible and independent of the parent's position");
  ok(memcmp(c0.key, c1.key, sizeof c0.key) != 0 && memcmp(c0.key, p.key, sizeof p.key) != 0,
     "children 0 and 1 have keys distinct from each other and from the parent");
  opl_rng_seed(&q, 43);
  opl_rng d0 = opl_rng_split(&q, 0);
  ok(memcmp(d0.key, c0.key, sizeof c0.key) != 0, "child 0 of another seed differs");
  /* Streams: no equal words among the first 1000 of 4 related streams (a 32-bit collision
   * between specific positions has probability 2^-32). */
  opl_rng s[4] = {c0, c1, d0, opl_rng_split(&c0, 0)};
  opl_rng_seed(&p, 42);
  int same = 0;
  for (int i = 0; i < 1000; i++) {
    uint32_t w[5] = {opl_rng_u32(&s[0]), opl_rng_u32(&s[1]), opl_rng_u32(&s[2]), opl_rng_u32(&s[3]),
                     opl_rng_u32(&p)};
    for (int a = 0; a < 5; a++)
      for (int b = a + 1; b < 5; b++) same += w[a] == w[b];
  }
  ok(same == 0, "split streams differ position by position (%d equal words)", same);
  /* Correlation between two children's uniforms ~ 0. */
  double sxy = 0;
  const int m = 100000;
  opl_rng e0 = opl_rng_split(&p, 7), e1 = opl_rng_split(&p, 8);
  for (int i = 0; i < m; i++) sxy += (opl_rng_uniform(&e0) - 0.5) * (opl_rng_uniform(&e1) - 0.5);
  is_close(sxy / m * 12, 0, 0, 5 / sqrt((double)m), "children 7 and 8 are uncorrelated");
  /* Children 2^32 apart differ (both index words are used). */
  opl_rng f0 = opl_rng_split(&p, 3), f1 = opl_rng_split(&p, 3 + (1ull << 32));
  ok(memcmp(f0.key, f1.key, sizeof f0.key) != 0, "index uses all 64 bits");
}

/* ------------------------------------------------------------ initializers */

static opl_tensor *heap(int rank, const int64_t *shape, int flags) {
  opl_err err;
  opl_tensor *t = opl_tensor_alloc(rank, shape, flags, &err);
  if (!t) diag("alloc failed: %s", err.msg);
  return t;
}

static void tensor_moments(const opl_tensor *t, double *mn, double *mx, double *mean, double *var) {
  int64_t n = opl_nreal(t);
  *mn = INFINITY;
  *mx = -INFINITY;
  for (int64_t i = 0; i < n; i++) {
    *mn = fmin(*mn, t->data[i]);
    *mx = fmax(*mx, t->data[i]);
  }
  moments(t->data, n, mean, var);
}

static void test_init(void) {
  opl_rng r;
  opl_rng_seed(&r, 1234);
  opl_err err;
  double mn, mx, mean, var;

  /* nn.Linear(In = 256, Out = 512): weight bound 1/sqrt(256) = 1/16; n = 131072. */
  opl_tensor *w = heap(OPL_DIMS(512, 256), 0);
  ok(opl_init_fan_in(w) == 256, "fan_in of (Out, In) = In");
  ok(opl_init_kaiming_uniform(&r, w, opl_init_fan_in(w), OPL_KAIMING_A_DEFAULT, &err) == OPL_OK,
     "kaiming_uniform ok");
  tensor_moments(w, &mn, &mx, &mean, &var);
  double b = 1.0 / 16, n = (double)w->numel;
  ok(mn >= -b && mx < b && mn < -0.99 * b && mx > 0.99 * b,
     "kaiming a=sqrt(5) fills U(-1/sqrt(fan_in), 1/sqrt(fan_in)): [%g, %g], b = %g", mn, mx, b);
  is_close(mean, 0, 0, 5 * 2 * b / sqrt(12 * n), "kaiming mean");
  is_close(var, b * b / 3, 0, 5 * 4 * b * b * sqrt((1.0 / 80 - 1.0 / 144) / n), "kaiming variance b^2/3");
  /* a = 0 (ReLU gain sqrt 2): b = sqrt(6 / fan_in). */
  ok(opl_init_kaiming_uniform(&r, w, 256, 0.0, &err) == OPL_OK, "kaiming a = 0");
  tensor_moments(w, &mn, &mx, &mean, &var);
  b = sqrt(6.0 / 256);
  ok(mn >= -b && mx < b && mx > 0.99 * b, "kaiming a=0 bound sqrt(6/fan_in) = %g: [%g, %g]", b, mn, mx);
  /* Conv2d(Ci=8, Co=16, 3x3): fan_in = 72. */
  opl_tensor *cw = heap(OPL_DIMS(16, 8, 3, 3), 0);
  ok(opl_init_fan_in(cw) == 72, "fan_in of conv weight (Co, Ci, 3, 3) = 72");

  opl_tensor *bias = heap(OPL_DIMS(100000), 0);
  ok(opl_init_bias_uniform(&r, bias, 256, &err) == OPL_OK, "bias_uniform ok");
  tensor_moments(bias, &mn, &mx, &mean, &var);
  b = 1.0 / 16;
  ok(mn >= -b && mx < b && mx > 0.99 * b, "bias in U(-1/16, 1/16): [%g, %g]", mn, mx);
  is_close(var, b * b / 3, 0, 5 * 4 * b * b * sqrt((1.0 / 80 - 1.0 / 144) / 1e5), "bias variance");

  /* FNO spectral weight (Ci=8, Co=16, 2*12, 12) complex: re, im ~ U(0, 1/128). */
  opl_tensor *sw = heap(OPL_DIMS(8, 16, 24, 12), OPL_T_COMPLEX);
  ok(opl_init_fno_spectral(&r, sw, 8, 16, &err) == OPL_OK, "fno_spectral ok");
  double s = 1.0 / 128, mre = 0, mim = 0, mxre = 0, mxim = 0, mnall = 1;
  for (int64_t i = 0; i < sw->numel; i++) {
    mre += sw->data[2 * i];
    mim += sw->data[2 * i + 1];
    mxre = fmax(mxre, sw->data[2 * i]);
    mxim = fmax(mxim, sw->data[2 * i + 1]);
    mnall = fmin(mnall, fmin(sw->data[2 * i], sw->data[2 * i + 1]));
  }
  mre /= (double)sw->numel;
  mim /= (double)sw->numel;
  ok(mnall >= 0 && mxre < s && mxim < s && mxre > 0.99 * s && mxim > 0.99 * s,
     "fno spectral re and im in [0, 1/(in out)) = [0, %g)", s);
  is_close(mre, s / 2, 0, 5 * s / sqrt(12.0 * (double)sw->numel), "fno real part mean scale/2");
  is_close(mim, s / 2, 0, 5 * s / sqrt(12.0 * (double)sw->numel), "fno imag part mean scale/2");

  opl_tensor *u = heap(OPL_DIMS(200000), 0);
  ok(opl_init_normal(&r, u, -3, 0.5, &err) == OPL_OK, "init_normal ok");
  tensor_moments(u, &mn, &mx, &mean, &var);
  is_close(mean, -3, 0, 5 * 0.5 / sqrt(2e5), "init_normal mean");
  is_close(var, 0.25, 0, 5 * sqrt(2.0) * 0.25 / sqrt(2e5), "init_normal variance");
  ok(opl_init_uniform(&r, u, 2, 4, &err) == OPL_OK, "init_uniform ok");
  tensor_moments(u, &mn, &mx, &mean, &var);
  ok(mn >= 2 && mx < 4, "init_uniform in [2, 4)");
  is_close(mean, 3, 0, 5 * 2 / sqrt(12 * 2e5), "init_uniform mean");
  opl_tensor *cz = heap(OPL_DIMS(3), OPL_T_COMPLEX);
  ok(opl_init_constant(cz, 2.5, &err) == OPL_OK && cz->data[0] == 2.5 && cz->data[1] == 0 &&
         cz->data[4] == 2.5 && cz->data[5] == 0,
     "init_constant of a complex tensor: value + 0i");
  ok(opl_init_constant(u, -1, &err) == OPL_OK && u->data[0] == -1 && u->data[199999] == -1,
     "init_constant real");

  /* Same seed, same weights; different split, different weights. */
  opl_rng r1, r2;
  opl_rng_seed(&r1, 77);
  opl_rng_seed(&r2, 77);
  opl_tensor *w2 = heap(OPL_DIMS(512, 256), 0);
  opl_init_kaiming_uniform(&r1, w, 256, OPL_KAIMING_A_DEFAULT, NULL);
  opl_init_kaiming_uniform(&r2, w2, 256, OPL_KAIMING_A_DEFAULT, NULL);
  ok(memcmp(w->data, w2->data, (size_t)w->numel * sizeof(opl_real)) == 0, "same seed, same weights");

  /* Bad input: message names the value or shape; data untouched. */
  opl_real keep = w->data[0];
  ok(opl_init_kaiming_uniform(&r, w, 0, 1.0, &err) == OPL_ERR_ARG && strstr(err.msg, "fan_in = 0"),
     "kaiming fan_in 0: %s", err.msg);
  ok(w->data[0] == keep, "data untouched on error");
  ok(opl_init_bias_uniform(&r, bias, -3, &err) == OPL_ERR_ARG && strstr(err.msg, "-3"),
     "bias fan_in -3: %s", err.msg);
  ok(opl_init_kaiming_uniform(&r, sw, 8, 1.0, &err) == OPL_ERR_ARG && strstr(err.msg, "complex"),
     "kaiming on a complex tensor: %s", err.msg);
  ok(opl_init_fno_spectral(&r, w, 512, 256, &err) == OPL_ERR_ARG && strstr(err.msg, "complex"),
     "fno_spectral on a real tensor: %s", err.msg);
  ok(opl_init_fno_spectral(&r, sw, 16, 8, &err) == OPL_ERR_SHAPE && strstr(err.msg, "(8, 16, 24, 12)") &&
         strstr(err.msg, "(16, 8"),
     "fno_spectral channel mismatch names both shapes: %s", err.msg);
  ok(opl_init_uniform(&r, u, 1, 0, &err) == OPL_ERR_ARG && strstr(err.msg, "lo = 1"),
     "uniform lo > hi: %s", err.msg);
  ok(opl_init_normal(&r, u, 0, -1, &err) == OPL_ERR_ARG && strstr(err.msg, "std = -1"),
     "normal std < 0: %s", err.msg);
  ok(opl_init_normal(NULL, u, 0, 1, &err) == OPL_ERR_ARG, "NULL rng: %s", err.msg);
  ok(opl_init_constant(NULL, 0, &err) == OPL_ERR_ARG, "NULL tensor: %s", err.msg);
  ok(opl_init_constant(u, NAN, &err) == OPL_ERR_ARG, "constant NaN: %s", err.msg);

  opl_tensor_free(&w);
  opl_tensor_free(&w2);
  opl_tensor_free(&cw);
  opl_tensor_free(&bias);
  opl_tensor_free(&sw);
  opl_tensor_free(&u);
  opl_tensor_free(&cz);
}

int main(void) {
  tap_begin();
  test_kat();
  test_stream_layout();
  test_fill_layout();
  test_moments();
  test_threads();
  test_split();
  test_init();
  return tap_end();
}
