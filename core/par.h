/* opl — what floors above core may use of core's internals: aligned heap memory and the
 * threshold and macro that decide when a loop runs on the OpenMP threads. Public and stable;
 * everything else in core/internal.h is private to core/. */
#ifndef OPL_PAR_H
#define OPL_PAR_H

#include <stddef.h>
#include <stdint.h>
#include "core/opl.h"

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

/* A team: one context per OpenMP thread, for work over n independent items (the samples of a
 * batch whose outputs each depend on their own sample alone). opl_team_run gives each thread a
 * contiguous share of the items, run in its own context with opl's ops on that one thread
 * (opl_get_num_threads() is 1 inside), so no op starts or waits on other threads: a parallel
 * region costs ~25 us to start on this kind of shared machine when idle threads sleep
 * (OMP_WAIT_POLICY=passive), and a SineNet forward starts ~270 of them. The contexts keep their
 * arenas between runs (no fresh pages after the first) and are freed with the team.
 *
 *   opl_team_new(threads)   threads <= 0: opl_get_num_threads(); NULL when out of memory
 *   opl_team_new_from(first, threads)
 *                           the same with context 0 = first, borrowed: its owner keeps it (and
 *                           frees it after the team), so a trainer's test pass reuses the
 *                           training context's arena; first NULL is opl_team_new
 *   opl_team_size(t)        the number of contexts
 *   opl_team_ctx(t, i)      context i < size (to set gradient recording, release, ...)
 *   opl_team_run(t, n, f, arg, err)
 *       k = min(size, n) slices [n i / k, n (i + 1) / k), i < k; slice i calls
 *       f(arg, ctx i, b0, b1, e_i) on thread i. With k = 1 (one thread, or one item) f runs on
 *       the caller's thread with the usual thread count, so its ops keep their own parallel
 *       loops; called inside a parallel region, the slices run one after the other there.
 *       f returns OPL_OK or a status with its message in e_i. Returns OPL_OK, or the status and
 *       message (into err) of the first failing slice in slice order. n >= 0; n = 0 calls
 *       nothing.
 *   opl_team_free(&t)       frees the contexts it made; *t = NULL; accepts NULL
 *
 * What f computes must not depend on how the items are cut (no statistics over the batch) for
 * the results not to depend on the thread count; f must not write memory another slice reads. */
typedef struct opl_team opl_team;
typedef int (*opl_team_fn)(void *arg, opl_ctx *c, int64_t b0, int64_t b1, opl_err *err);
opl_team *opl_team_new(int threads);
opl_team *opl_team_new_from(opl_ctx *first, int threads);
int opl_team_size(const opl_team *t);
opl_ctx *opl_team_ctx(opl_team *t, int i);
int opl_team_run(opl_team *t, int64_t n, opl_team_fn f, void *arg, opl_err *err);
void opl_team_free(opl_team **t);

#endif
