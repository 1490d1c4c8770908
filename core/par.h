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

#endif
