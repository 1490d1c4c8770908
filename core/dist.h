/* opl core — processes working together (MPI), the one place that speaks MPI.
 *
 * Built with -Dmpi=enabled (or auto and Open MPI found) the functions below use MPI; built
 * without, they are a single-process implementation with the same contracts (rank 0 of 1), so
 * callers have one code path. A process started by mpirun (its environment names a rank) joins
 * the job in opl_dist_init; any other process is rank 0 of 1 also in an MPI build, and runs
 * exactly the single-process code.
 *
 * Errors: nothing here prints, exits or aborts. MPI's own failures (a lost peer) end the job
 * through MPI's default error handler. A failure of one rank in opl's code reaches the others
 * through opl_dist_agree, which every rank calls at the same point: all ranks then return the
 * same status and message (that of the lowest failing rank), so the job stops everywhere with
 * one message and the command decides what to print (rank 0) and how to exit.
 *
 * Threads: MPI is called only from the thread that called opl_dist_init (MPI_THREAD_FUNNELED);
 * OpenMP threads inside a rank never call it. */
#ifndef OPL_CORE_DIST_H
#define OPL_CORE_DIST_H

#include <stddef.h>
#include <stdint.h>
#include "core/opl.h"

/* 1 when opl was built with MPI. */
int opl_dist_built(void);

/* Join the MPI job when this process was started by mpirun / an MPI launcher (its environment
 * names a rank), else stay a single process. argc/argv may be NULL. Call once, before any
 * other opl_dist_ function and before threads start. OPL_ERR_IO with MPI's reason if MPI
 * cannot start; OPL_ERR_ARG in a build without MPI started as one of several MPI processes. */
int opl_dist_init(int *argc, char ***argv, opl_err *err);
/* Leave the job (MPI_Finalize) when opl_dist_init joined one; a no-op otherwise. */
void opl_dist_finalize(void);

/* This process's rank in [0, size) and the number of ranks (0 and 1 outside a job). */
int opl_dist_rank(void);
int opl_dist_size(void);

/* Collective: every rank calls it at the same point with its own status and sums[0..n) (may be
 * NULL when n = 0). On return sums[] holds the sum over ranks (every rank the same values:
 * reduced in one fixed order) and the result is OPL_OK when every status was OPL_OK; otherwise
 * every rank returns the status of the lowest failing rank with its message in err (prefixed
 * "rank R: " on a job of more than one rank). n >= 0 (a long list costs memory for one copy). */
int opl_dist_agree(int status, opl_err *err, double *sums, int n);

/* Collective: buf[0..bytes) of rank root to every rank. */
int opl_dist_bcast(void *buf, size_t bytes, int root, opl_err *err);

/* Collective: rank r sends send[0..counts[r]) doubles; rank 0 receives them one rank after the
 * other into recv (sum of counts doubles; ignored on other ranks). counts[r] < 2^31. */
int opl_dist_gather_doubles(const double *send, const int64_t *counts, double *recv, opl_err *err);

/* Collective: OPL_OK when every rank holds the same bytes in the parameters p (a 40-bit FNV-1a
 * hash of them compared across ranks), else OPL_ERR_STATE "<what> the ranks hold different
 * parameters" (what e.g. "train: after epoch 3"). Data-parallel training keeps them equal by applying the
 * same update to the same summed gradient; this catches a rank that drifted. */
int opl_dist_check_same(const opl_params *p, const char *what, opl_err *err);

/* Test hook for the failure paths: 1 when the environment variable OPL_DIST_FAULT equals
 * "<where>:<this rank>", 0 otherwise and always on a single process. The callers: "train" fails
 * the rank's training steps (after the forward), "read" its batch reads (before the forward),
 * "generate" the last round of samples the rank solves. */
int opl_dist_fault(const char *where);

/* ---------------------------------------------------------------- gradient sums in buckets
 *
 * Data-parallel training (Li et al., "PyTorch Distributed: Experiences on Accelerating Data
 * Parallel Training", VLDB 2020): the parameters are cut into buckets of about bucket_bytes, in
 * reverse parameter order (the order in which backward tends to finish them). During the
 * reverse pass (opl_ctx_set_backward_hook) a parameter's gradient is final once the walk has
 * passed the first tape node that uses it; when every gradient of a bucket is final the bucket
 * is packed and its sum over ranks started (MPI_Iallreduce), so communication overlaps the rest
 * of backward. Buckets start strictly in bucket order on every rank (the MPI rule for
 * collectives), whatever the tape. opl_dist_grads_finish starts what is left, waits, and
 * writes the sums back into the gradients. With one rank every call is a no-op. */
typedef struct opl_dist_grads opl_dist_grads;

typedef struct opl_dist_grads_stats {
  int buckets;           /* number of buckets */
  int64_t bytes;         /* bytes summed per step (all buckets) */
  int64_t steps;         /* steps synchronized */
  double started_early;  /* buckets started during backward, summed over steps */
  double comm_seconds;   /* time inside MPI calls of the gradient sums (start, progress, wait),
                            summed over steps */
  double wait_seconds;   /* of which waiting in opl_dist_grads_finish */
} opl_dist_grads_stats;

/* Buckets over the parameters p (borrowed; their set must not change while g lives) of about
 * bucket_bytes each (0: the environment's OPL_DIST_BUCKET_KB kibibytes if set, else 1 MiB; at
 * least one parameter per bucket). NULL and err on failure. */
opl_dist_grads *opl_dist_grads_new(const opl_params *p, size_t bucket_bytes, opl_err *err);
void opl_dist_grads_free(opl_dist_grads **g);
/* Before opl_backward on c, with the forward pass recorded on c's tape: find where each
 * parameter's gradient becomes final and install the hook. */
int opl_dist_grads_begin(opl_dist_grads *g, opl_ctx *c, opl_err *err);
/* After opl_backward on c, whatever its status (every rank must call it, so that the buckets'
 * collectives match): start the buckets not started, wait for all, replace each parameter's
 * gradient by its sum over ranks, remove the hook. */
int opl_dist_grads_finish(opl_dist_grads *g, opl_ctx *c, opl_err *err);
void opl_dist_grads_get_stats(const opl_dist_grads *g, opl_dist_grads_stats *s);

#endif
