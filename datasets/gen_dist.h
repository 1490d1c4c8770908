/* opl datasets — a generation run on several ranks (mpirun, core/dist.h), shared by the
 * time-dependent runs (datasets/generate.c) and the Darcy runs (datasets/darcy_gen.c). Internal
 * to datasets/: the public contracts are those of opl_gen_run and opl_darcy_gen_run.
 *
 * Rank 0 alone touches files: it makes or resumes the partial file as a single process does,
 * then calls opl_gen_dist_lead with the samples still to do, idx[0..ntodo); every other rank
 * calls opl_gen_dist_follow instead of the whole run. The samples are solved in rounds: in round
 * j rank r solves positions [j P m + r m, j P m + (r + 1) m) of idx (m = 2 x its threads, which
 * share them as the single-process loop does), the ranks agree on the round's status (a failure
 * anywhere stops every rank, with the failing sample's message), and rank 0 gathers the frames
 * and writes them through its writer. Each sample is a pure function of (settings, seed, index),
 * so the finished file is the single-process file byte for byte; a stopped or failed run leaves
 * the partial file, which any number of ranks (or one process) resumes. Rank 0 ends with
 * opl_gen_dist_end, which tells the others how the run ended (its own status and message).
 * Nothing here prints. */
#ifndef OPL_DATASETS_GEN_DIST_H
#define OPL_DATASETS_GEN_DIST_H

#include <stdint.h>
#include "core/opl.h"
#include "datasets/generate.h"
#include "datasets/h5layout.h"
#include "pde/solve.h"

/* What the rounds need of a run: the sample's size and three callbacks on the run's settings. */
typedef struct opl_gen_dist_job {
  const void *gen;         /* the run's settings, passed back to the callbacks */
  int64_t a_size;          /* doubles of a sample's a (the first frame) */
  int64_t size;            /* doubles of a whole sample: a, then u */
  int threads;             /* threads of this rank (>= 1) */
  /* a thread's workspace into *ws (freed by ws_free; NULL accepted by it); status, err named */
  int (*ws_new)(const void *gen, void **ws, opl_err *err);
  void (*ws_free)(void *ws);
  /* sample idx into out[size] (a then u, as opl_ds_writer_put takes them) and its statistics */
  int (*solve)(const void *gen, void *ws, int64_t idx, double *out, opl_solve_stats *st, opl_err *err);
  /* rank 0: sample idx has been written (progress); non-zero asks to stop the run. May be NULL. */
  int (*written)(void *user, int64_t idx, const opl_solve_stats *st);
  void *user;
} opl_gen_dist_job;

/* Rank 0, after the partial file is open: the todo list idx[0..ntodo) to every rank (stop != 0:
 * the caller has already been asked to stop; the others are told and nothing is solved), then
 * the rounds, each sample written through w. res->failed_index (and failed_t) name a failed
 * sample, res->stopped a stop. Every rank returns the same status; after a failure the caller
 * must not call opl_gen_dist_end (the others already know). */
int opl_gen_dist_lead(const opl_gen_dist_job *job, opl_ds_writer *w, const int64_t *idx, int64_t ntodo, int stop,
                      opl_gen_result *res, opl_err *err);

/* Rank 0 at the end of its run: rc its status (OPL_OK: finished; otherwise its error in err).
 * told: opl_gen_dist_lead has run (and returned OPL_OK); 0 when rank 0 failed before it. Returns
 * the status every rank returns. */
int opl_gen_dist_end(int told, int rc, opl_err *err);

/* Every rank other than 0: the whole run (todo list, rounds, rank 0's end). res gets the failed
 * sample and the stop; solved, steps and the rest stay rank 0's. */
int opl_gen_dist_follow(const opl_gen_dist_job *job, opl_gen_result *res, opl_err *err);

#endif
