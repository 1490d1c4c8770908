/* opl — counter-based random numbers: Philox4x32-10 (Salmon et al., SC'11). See rng.h. */
#include <math.h>
#include "core/internal.h"
#include "core/rng.h"

/* Multipliers and Weyl key increments of Philox4x32 (Salmon et al. 2011, Sec. 5). */
#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

#define TWO_PI 6.283185307179586476925286766559
#define TWO_M53 (1.0 / 9007199254740992.0) /* 2^-53 */

/* One Philox round on x[4] with round key k[2]:
 *   (hi0, lo0) = M0 * x0, (hi1, lo1) = M1 * x2 (full 64-bit products),
 *   x' = (hi1 ^ x1 ^ k0, lo1, hi0 ^ x3 ^ k1, lo0). */
static inline void philox_round(uint32_t x[4], uint32_t k0, uint32_t k1) {
  uint64_t p0 = (uint64_t)PHILOX_M0 * x[0];
  uint64_t p1 = (uint64_t)PHILOX_M1 * x[2];
  uint32_t y0 = (uint32_t)(p1 >> 32) ^ x[1] ^ k0;
  uint32_t y1 = (uint32_t)p1;
  uint32_t y2 = (uint32_t)(p0 >> 32) ^ x[3] ^ k1;
  uint32_t y3 = (uint32_t)p0;
  x[0] = y0;
  x[1] = y1;
  x[2] = y2;
  x[3] = y3;
}

void opl_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
  uint32_t x[4] = {ctr[0], ctr[1], ctr[2], ctr[3]};
  uint32_t k0 = key[0], k1 = key[1];
  for (int r = 0; r < 10; r++) {
    philox_round(x, k0, k1);
    k0 += PHILOX_W0; /* the key of round r is key + r W (mod 2^32) */
    k1 += PHILOX_W1;
  }
  out[0] = x[0];
  out[1] = x[1];
  out[2] = x[2];
  out[3] = x[3];
}

/* The four words of block b of a stream with key key: out[4]. */
static inline void block_words(const uint32_t key[2], uint64_t b, uint32_t out[4]) {
  uint32_t ctr[4] = {(uint32_t)b, (uint32_t)(b >> 32), 0, 0};
  opl_philox4x32_10(ctr, key, out);
}

/* 53-bit uniform in [0, 1) from two words, the first one high. */
static inline double u53(uint32_t hi, uint32_t lo) {
  uint64_t v = ((uint64_t)hi << 32) | lo;
  return (double)(v >> 11) * TWO_M53;
}

void opl_rng_seed(opl_rng *r, uint64_t seed) {
  OPL_ASSERT(r != NULL);
  r->key[0] = (uint32_t)seed;
  r->key[1] = (uint32_t)(seed >> 32);
  r->counter = 0;
}

opl_rng opl_rng_split(const opl_rng *parent, uint64_t index) {
  OPL_ASSERT(parent != NULL);
  uint32_t ctr[4] = {(uint32_t)index, (uint32_t)(index >> 32), 0x5EED5EEDu, 1u}, out[4];
  opl_philox4x32_10(ctr, parent->key, out);
  opl_rng child = {{out[0], out[1]}, 0};
  return child;
}

uint32_t opl_rng_u32(opl_rng *r) {
  uint32_t w[4];
  block_words(r->key, r->counter >> 2, w);
  return w[r->counter++ & 3];
}

uint64_t opl_rng_u64(opl_rng *r) {
  uint64_t hi = opl_rng_u32(r);
  return (hi << 32) | opl_rng_u32(r);
}

double opl_rng_uniform(opl_rng *r) { return (double)(opl_rng_u64(r) >> 11) * TWO_M53; }

/* Box-Muller (Box & Muller, Ann. Math. Stat. 29, 1958): u1 in (0, 1], u2 in [0, 1). */
double opl_rng_normal(opl_rng *r) {
  double u1 = 1.0 - opl_rng_uniform(r);
  double u2 = opl_rng_uniform(r);
  return sqrt(-2.0 * log(u1)) * cos(TWO_PI * u2);
}

/* First whole block at or after the stream position; the stream is moved past the
 * nblocks blocks a bulk fill uses. Returns that first block. */
static uint64_t take_blocks(opl_rng *r, uint64_t nblocks) {
  uint64_t b0 = (r->counter + 3) >> 2;
  r->counter = (b0 + nblocks) << 2;
  return b0;
}

/* Largest opl_real strictly below hi if v rounded up to hi (possible in single builds). */
static inline opl_real below(opl_real v, double lo, double hi) {
#ifdef OPL_DOUBLE
  if (hi > lo && v >= hi) return nextafter(hi, lo);
#else
  if (hi > lo && (double)v >= hi) return nextafterf((float)hi, (float)lo);
#endif
  return v;
}

/* Uniform fill kernel:
 *   key[2]: stream key; b0: first block; x[n]: out, x[i] = lo + (hi - lo) u_i with u_i the
 *   53-bit uniform of lanes (2 (i mod 2), 2 (i mod 2) + 1) of block b0 + i/2. */
static void fill_uniform_kernel(const uint32_t key[2], uint64_t b0, opl_real *x, int64_t n,
                                double lo, double hi) {
  int64_t nb = (n + 1) / 2;
  double w = hi - lo;
#pragma omp parallel for schedule(static) if (n > OPL_PAR_MIN)
  for (int64_t j = 0; j < nb; j++) {
    uint32_t q[4];
    block_words(key, b0 + (uint64_t)j, q);
    int64_t i = 2 * j;
    x[i] = below((opl_real)(lo + w * u53(q[0], q[1])), lo, hi);
    if (i + 1 < n) x[i + 1] = below((opl_real)(lo + w * u53(q[2], q[3])), lo, hi);
  }
}

/* Normal fill kernel (Box-Muller on the two uniforms of each block):
 *   key[2]: stream key; b0: first block; x[n]: out, x[2j] = mean + std r cos(2 pi u2),
 *   x[2j+1] = mean + std r sin(2 pi u2), r = sqrt(-2 ln(1 - u1)), (u1, u2) of block b0 + j. */
static void fill_normal_kernel(const uint32_t key[2], uint64_t b0, opl_real *x, int64_t n,
                               double mean, double std) {
  int64_t nb = (n + 1) / 2;
#pragma omp parallel for schedule(static) if (n > OPL_PAR_MIN / 4)
  for (int64_t j = 0; j < nb; j++) {
    uint32_t q[4];
    block_words(key, b0 + (uint64_t)j, q);
    double u1 = 1.0 - u53(q[0], q[1]), u2 = u53(q[2], q[3]);
    double rad = std * sqrt(-2.0 * log(u1)), th = TWO_PI * u2;
    int64_t i = 2 * j;
    x[i] = (opl_real)(mean + rad * cos(th));
    if (i + 1 < n) x[i + 1] = (opl_real)(mean + rad * sin(th));
  }
}

void opl_rng_fill_uniform(opl_rng *r, opl_real *x, int64_t n, double lo, double hi) {
  OPL_ASSERT(r != NULL && n >= 0 && (x != NULL || n == 0));
  OPL_ASSERT(isfinite(lo) && isfinite(hi) && lo <= hi, "lo = %g, hi = %g", lo, hi);
  if (n == 0) return;
  uint64_t b0 = take_blocks(r, (uint64_t)(n + 1) / 2);
  fill_uniform_kernel(r->key, b0, x, n, lo, hi);
}

void opl_rng_fill_normal(opl_rng *r, opl_real *x, int64_t n, double mean, double std) {
  OPL_ASSERT(r != NULL && n >= 0 && (x != NULL || n == 0));
  OPL_ASSERT(isfinite(mean) && isfinite(std) && std >= 0, "mean = %g, std = %g", mean, std);
  if (n == 0) return;
  uint64_t b0 = take_blocks(r, (uint64_t)(n + 1) / 2);
  fill_normal_kernel(r->key, b0, x, n, mean, std);
}
