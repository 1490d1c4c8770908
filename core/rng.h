/* opl — counter-based random numbers (Philox4x32-10).
 *
 * Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as easy as 1, 2, 3", SC'11.
 * Philox4x32-10 maps a 128-bit counter and a 64-bit key to 128 random bits through ten
 * rounds of multiply/xor/key-bump. Because every output is a pure function of
 * (key, counter), a stream can be split into independent children and bulk fills can be
 * computed in parallel with results that do not depend on the number of threads.
 *
 * A stream (opl_rng) is {key, counter}. The counter counts 32-bit words drawn: word w of
 * the stream is lane (w mod 4) of philox(block = w / 4, key), where the 128-bit Philox
 * counter of block b is (lo32(b), hi32(b), 0, 0). The whole state is these three numbers:
 * copy the struct to checkpoint a stream; assign it back to restore it.
 *
 * Bulk fills (opl_rng_fill_*) start at the next whole block and give element i the two
 * 53-bit uniforms of lanes (0,1) / (2,3) of block b0 + i/2; the stream then continues after
 * the last block used. The same values (up to rounding to opl_real) come out of single and
 * double builds.
 */
#ifndef OPL_RNG_H
#define OPL_RNG_H

#include <stdint.h>
#include "core/opl.h"

typedef struct opl_rng {
  uint32_t key[2];     /* Philox key: (lo32(seed), hi32(seed)), or derived by opl_rng_split */
  uint64_t counter;    /* number of 32-bit words drawn so far */
} opl_rng;

/* The Philox4x32-10 bijection: out[4] = philox(ctr[4], key[2]). out may alias ctr. */
void opl_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* Start the stream of a 64-bit seed at counter 0. */
void opl_rng_seed(opl_rng *r, uint64_t seed);
/* An independent child stream number `index` of parent (counter 0). Its key is the first
 * two words of philox((lo32(index), hi32(index), 0x5EED5EED, 1), parent key): a function of
 * the parent's key and index only (not of how much the parent has drawn), and never equal
 * to a block of the parent's own stream (whose counter words 2 and 3 are 0). */
opl_rng opl_rng_split(const opl_rng *parent, uint64_t index);

/* Next 32 / 64 random bits (u64 = two consecutive words, first one high). */
uint32_t opl_rng_u32(opl_rng *r);
uint64_t opl_rng_u64(opl_rng *r);
/* Uniform double in [0, 1) with 53 random bits: (u64 >> 11) 2^-53. */
double opl_rng_uniform(opl_rng *r);
/* Standard normal N(0, 1) by Box-Muller from two uniforms (the sine partner is dropped). */
double opl_rng_normal(opl_rng *r);

/* x[i] ~ U[lo, hi), i < n (lo <= hi, both finite; lo == hi fills lo). Parallel with OpenMP,
 * bit-identical for any thread count. In single builds a value that rounds up to hi is
 * moved to the largest float below hi. */
void opl_rng_fill_uniform(opl_rng *r, opl_real *x, int64_t n, double lo, double hi);
/* x[i] ~ N(mean, std^2) (std >= 0), Box-Muller pairs: elements 2j and 2j+1 are the cosine
 * and sine partners of block b0 + j. Parallel, bit-identical for any thread count. */
void opl_rng_fill_normal(opl_rng *r, opl_real *x, int64_t n, double mean, double std);

#endif
