/* opl — the FFT plan cache (internal API of core/fft.c, used by core/op_spectral.c and by the
 * spectral PDE code).
 *
 * A plan is a batch of `howmany` real <-> complex transforms of rank d (1..3) over contiguous
 * arrays: transform b of the real side starts at b * nreal reals, where nreal = prod(dims),
 * and transform b of the complex side starts at b * ncplx complex values, where
 * ncplx = prod(dims[0..d-1)) * (dims[d-1]/2 + 1) (FFTW's r2c layout, interleaved re/im).
 * The r2c transform is unnormalized with the sign -1 exponent; c2r is its unnormalized
 * inverse (sign +1), so c2r(r2c(x)) = prod(dims) x.
 *
 * Plans are keyed by (kind, d, dims, howmany, threads, alignment), made once with
 * FFTW_ESTIMATE (deterministic: the default) or FFTW_MEASURE (after
 * opl_fft_set_planner(OPL_FFT_MEASURE); see core/ops.h) on scratch buffers, kept until
 * opl_fft_cache_clear(), and executed with FFTW's new-array functions on the caller's
 * arrays. Batches with enough work run on FFTW's OpenMP threads (opl_get_num_threads()).
 *
 * Thread safety: getting a plan may be called from any thread (planning is serialized by a
 * mutex: FFTW's planner is not thread-safe); executing a plan is thread-safe.
 * opl_fft_cache_clear() must not run while another thread holds or executes a plan. */
#ifndef OPL_FFT_H
#define OPL_FFT_H

#include "core/opl.h"

typedef enum { OPL_FFT_R2C = 0, OPL_FFT_C2R = 1 } opl_fft_kind;

typedef struct opl_fft_plan opl_fft_plan;

/* Flags of opl_fft_plan_get. */
enum {
  OPL_FFT_UNALIGNED = 1 << 0, /* arrays may lack SIMD alignment (FFTW_UNALIGNED) */
  OPL_FFT_SERIAL = 1 << 1,    /* single-threaded plan (e.g. for use inside a parallel loop) */
};

/* The cached plan for howmany transforms of kind over dims[0..d) (real-space extents, the
 * last one the full real length). Creates it on first use. Returns NULL and fills err
 * (OPL_ERR_ARG for bad dims, OPL_ERR_UNSUPPORTED if FFTW cannot plan, OPL_ERR_NOMEM) on
 * failure. The pointer stays valid until opl_fft_cache_clear(). */
const opl_fft_plan *opl_fft_plan_get(opl_fft_kind kind, int d, const int64_t *dims,
                                     int64_t howmany, int flags, opl_err *err);

/* Execute an r2c plan: in [howmany * nreal] reals (not modified) -> out [howmany * ncplx]
 * complex (2 * howmany * ncplx reals). Arrays must not overlap and, unless the plan was made
 * with OPL_FFT_UNALIGNED, must be aligned like FFTW's own buffers (opl_fft_aligned). */
void opl_fft_exec_r2c(const opl_fft_plan *p, const opl_real *in, opl_real *out);
/* Execute a c2r plan: in [howmany * ncplx] complex -> out [howmany * nreal] reals.
 * DESTROYS in (FFTW's c2r overwrites its input); copy a spectrum that must survive. */
void opl_fft_exec_c2r(const opl_fft_plan *p, opl_real *in, opl_real *out);

/* Look up (or make) the right plan for these arrays and run it: r2c reads in and writes out,
 * c2r destroys in. Chooses an unaligned plan when either pointer lacks alignment. Returns
 * OPL_OK or a status with err filled. */
int opl_fft_run(opl_fft_kind kind, int d, const int64_t *dims, int64_t howmany, opl_real *in,
                opl_real *out, opl_err *err);

/* 1 if p has the alignment FFTW's SIMD code expects of new-array execution (as fftw_malloc). */
int opl_fft_aligned(const void *p);

/* ---- Truncated DFT as GEMM (for spectral convolutions that keep few modes).
 * Keeping only the bins k = 0..m-1 of a length-n real transform costs 4 n m flops per
 * transform as a GEMM against precomputed matrices, which beats a full FFT plus a zeroed
 * spectrum when m is small against log2(n) (see PERF-NOTES.md beside DESIGN.md):
 *   F [n, 2m]: F[j, 2k] = cos(2 pi j k / n), F[j, 2k+1] = -sin(2 pi j k / n)
 *              so x [B, n] . F = the first m bins of r2c(x), interleaved (re, im) [B, m];
 *   G [2m, n]: G[2k, j] = c_k cos(2 pi j k / n), G[2k+1, j] = -c_k sin(2 pi j k / n)
 *              (c_k = 1 for k = 0 and 2k = n, else 2), so H [B, m] . G = c2r of a half
 *              spectrum that is H on bins 0..m-1 and zero above (unnormalized).
 * Entries are computed in double and rounded once; the sines of bins 0 and n/2 are exact 0. */

/* The cached (F, G) pair for length n and m kept bins (1 <= m <= n/2 + 1); made on first
 * use, valid until opl_fft_cache_clear(). Returns OPL_OK, or a status with err filled. */
int opl_fft_dft_matrices(int64_t n, int64_t m, const opl_real **F, const opl_real **G, opl_err *err);

/* How spectral convolutions transform 1-D signals: automatic choice (default), always the
 * FFT, or always the truncated DFT as GEMM (the last two for tests and benchmarks). */
typedef enum { OPL_DFT_AUTO = 0, OPL_DFT_FFT = 1, OPL_DFT_GEMM = 2 } opl_dft_mode;
void opl_fft_set_dft_mode(opl_dft_mode mode);
/* 1 if a truncated transform of length n keeping m bins should be a GEMM: by the mode, and
 * in automatic mode when m < 2 log2(n). Measured (spectral conv forward+backward, 1 thread,
 * float, 32 channels): the GEMM took 0.3-0.7x the time of the FFT path below that line
 * (n = 1024, m = 16: 0.69x; n = 4096, m = 16: 0.51x), and break-even lies above it (n = 256,
 * m = 16: 1.24x; n = 1024, m = 32: 1.0x; n = 4096, m = 32: 0.6x), so the rule is safe. */
int opl_fft_prefer_gemm(int64_t n, int64_t m);

/* Number of FFTW plans created since the program started (cache misses); never decreases. */
int64_t opl_fft_plans_created(void);
/* Number of plans currently in the cache. */
int64_t opl_fft_cache_size(void);
/* Threads a plan made now for this much work (howmany * nreal reals) would use. */
int opl_fft_threads_for(int64_t work);

#endif
