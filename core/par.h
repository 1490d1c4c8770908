/* opl — what floors above core may use of core's internals: aligned heap memory and the
 * threshold and macro that decide when a loop runs on the OpenMP threads. Public and stable;
 * everything else in core/internal.h is private to core/. */
#ifndef OPL_PAR_H
#define OPL_PAR_H

#include <stddef.h>
#include <stdint.h>

/* Heap memory, 64-byte aligned and zeroed (free with free()). */
void *opl_aligned_calloc(size_t bytes);

/* Parallelize a loop only when it has enough work (elements) to pay for waking threads. */
#define OPL_PAR_MIN 32768


/* for (int64_t i = 0; i < n; i++) { body }, in parallel only when work > OPL_PAR_MIN.
 * Unlike `omp parallel for if (...)`, the serial branch never enters the OpenMP runtime
 * (which costs ~1 us per call even when the condition is false). */
#define OPL_PFOR(i, n, work, ...)                                \
  do {                                                           \
    const int64_t opl_pfor_n_ = (n);                             \
    if ((work) > OPL_PAR_MIN) {                                  \
      _Pragma("omp parallel for schedule(static)")               \
      for (int64_t i = 0; i < opl_pfor_n_; i++) { __VA_ARGS__ }  \
    } else {                                                     \
      for (int64_t i = 0; i < opl_pfor_n_; i++) { __VA_ARGS__ }  \
    }                                                            \
  } while (0)

/* Deterministic parallel sums. An OpenMP reduction(+) adds the threads' partial sums in the
 * order the threads finish, which with 3 or more threads changes the rounding from run to run.
 * opl_par_sums cuts nblk blocks into at most OPL_PSUM_GROUPS contiguous groups fixed by nblk
 * alone; f(ctx, b0, b1, acc) adds the contributions of blocks [b0, b1) into acc[0..nsum) (acc
 * starts at 0 for each group); groups run on the OpenMP threads when parallel != 0; the group
 * sums are added in group order into out[0..nsum) (overwritten). The same bits on every run and
 * every thread count. 1 <= nsum <= 4, nblk >= 0. */
#define OPL_PSUM_GROUPS 64
void opl_par_sums(int64_t nblk, int nsum, int parallel,
                  void (*f)(void *ctx, int64_t b0, int64_t b1, double *acc), void *ctx, double *out);

#endif
