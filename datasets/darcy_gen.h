/* opl datasets — Darcy flow data sets (floor 3): N coefficient fields a = psi(g) of the Neumann
 * Gaussian random field and their solutions u of -div(a grad u) = 1, u = 0 on the boundary
 * (pde/darcy.h), written into a native data set (datasets/h5layout.h) in parallel, resumably and
 * checksummed, like the time-dependent runs of datasets/generate.h (same run options, progress
 * callback and result).
 *
 * A run is (preset, tau, alpha, N, solve resolution S, store resolution s, seed, dtype). Sample i
 * is a pure function of (settings, seed, i): g from the stream opl_rng_split(seed stream, i)
 * (opl_darcy_grf_sample), a = psi(g) on the S^2 nodes, u from one CHOLMOD solve (one symbolic
 * analysis per run, copied to each thread; a numeric factorization per sample). Storage keeps
 * every k-th node, k = (S - 1) / (s - 1) (the FNO convention: 421 -> 85 with k = 5), so s - 1
 * must divide S - 1.
 *
 * Stored (native layout): a [N, s, s] the coefficient, u [N, s, s] the solution (no time axis:
 * the layout's steady form, read as one frame; files written before it store u [N, 1, s, s] and
 * read the same), x = y = i / (s - 1) [s], t = [1] (a placeholder: the problem is steady; the
 * attribute "steady" = 1 says so), float32 (default) or float64. Root attributes:
 * generator, equation = "darcy", preset, tau, alpha, psi_pos, psi_neg, ic (= "grf-neumann"),
 * forcing = "1", boundary, discretization (the stencil in words), solver = "cholmod", solve_res,
 * store_res, stride, seed, rng, steady.
 *
 * Running and resuming are those of opl_gen_run: "<path>.partial" while running, resumed when
 * its provenance equals this run's, renamed to <path> when complete; a callback returning
 * non-zero stops the run (OPL_ERR_STATE, the partial file stays). Under mpirun the samples are
 * divided among the ranks and rank 0 writes them (datasets/gen_dist.h): the same file, byte for
 * byte. Errors are statuses with messages starting "generate: "; nothing is printed.
 */
#ifndef OPL_DATASETS_DARCY_GEN_H
#define OPL_DATASETS_DARCY_GEN_H

#include <stdint.h>
#include "core/io.h"
#include "core/opl.h"
#include "datasets/generate.h"
#include "datasets/h5layout.h"

typedef struct opl_darcy_gen_config {
  const char *preset;   /* "fno" (default) or "rough" (pde/darcy.h) */
  int64_t n;            /* samples, >= 1 */
  uint64_t seed;
  opl_dtype dtype;      /* OPL_DT_F32 (default) or OPL_DT_F64 */
  int res;              /* solve resolution S >= 3 (0: the preset's) */
  int store_res;        /* store resolution s >= 3, (s - 1) | (S - 1) (0: the preset's, or S
                           when res is given and the preset's does not fit it) */
  double tau, alpha;    /* NAN: the preset's */
} opl_darcy_gen_config;

/* Defaults: preset NULL (fno), n 0, seed 0, float32, resolutions and tau, alpha from the preset. */
void opl_darcy_gen_config_default(opl_darcy_gen_config *c);

typedef struct opl_darcy_gen opl_darcy_gen;

/* Resolve and check the settings (OPL_ERR_ARG naming the setting: unknown preset, n < 1,
 * resolution < 3, tau <= 0, alpha <= 0; OPL_ERR_SHAPE: s - 1 does not divide S - 1, naming
 * both), make the random-field sampler and run the symbolic analysis. No file is touched. */
opl_darcy_gen *opl_darcy_gen_new(const opl_darcy_gen_config *c, opl_err *err);
void opl_darcy_gen_free(opl_darcy_gen **g);

/* Extents of the data set (n, t = 1, sdim 2, x = y = store resolution). */
void opl_darcy_gen_dims(const opl_darcy_gen *g, opl_ds_dims *d);
/* The provenance attributes; *n gets their count. */
const opl_kv *opl_darcy_gen_provenance(const opl_darcy_gen *g, int *n);
/* The resolved preset name, solve and store resolutions. */
const char *opl_darcy_gen_preset(const opl_darcy_gen *g);
void opl_darcy_gen_res(const opl_darcy_gen *g, int *res, int *store_res);

/* Sample `index` alone: a and u [s, s] at the store resolution, exactly what a run stores (in
 * double). Thread-safe on one g (makes its own solver copy). */
int opl_darcy_gen_sample(const opl_darcy_gen *g, int64_t index, double *a, double *u, opl_err *err);

/* Run into <path> (see the header comment). ro, res may be NULL. Returns OPL_OK, OPL_ERR_STATE
 * (stopped by the callback), a solver status naming the sample, OPL_ERR_IO, or a resume
 * mismatch naming the first difference. */
int opl_darcy_gen_run(opl_darcy_gen *g, const char *path, const opl_gen_run_opts *ro, opl_gen_result *res,
                      opl_err *err);

#endif
