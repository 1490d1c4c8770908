/* opl datasets — generation runs (floor 3, DESIGN.md): many trajectories of one reference PDE
 * solved from random initial conditions and written, as they finish, into a native data set
 * (datasets/h5layout.h), resumably and reproducibly. What `opl generate` and `opl solve` run.
 *
 * ---------------------------------------------------------------- what a run is
 * A run is (equation, preset, overrides, N samples, solve resolution, store resolution, nt,
 * seed, dtype, output path). The preset (pde/solve.h: burgers "fno" | "chebfun", kdv "mppde",
 * ns "fno" | "fno-1e-3" | "fno-1e-4" | "fno-1e-5") gives every setting; any of them may be
 * overridden (opl_gen_config: a NAN double, a 0 int or a NULL string keeps the preset's value).
 * opl_gen_new resolves and checks the settings once, before any file is touched, and makes the
 * shared solve grid (FFTW planning happens there, serialized, never inside the parallel loop).
 *
 * Sample i of the run of `seed` is a pure function of (settings, seed, i): its random stream is
 * opl_rng_split(seed stream, i) (pde/grf.h opl_grf_sample_seeded for Burgers and Navier-Stokes,
 * pde/kdv.h opl_kdv_ic_mppde_seeded for KdV), and its trajectory is one double-precision solve
 * (pde/solve.h) that runs on one thread. So any sample can be regenerated alone
 * (opl_gen_sample) and gives the same bits as in the full run, whatever the thread count,
 * provided the FFTW plans are the same: with plan = OPL_GEN_PLAN_ESTIMATE (the default) they are
 * in every process; with OPL_GEN_PLAN_MEASURE (faster plans chosen by timing) only within one
 * process (FFTW's in-process wisdom), and across processes up to rounding.
 *
 * What is stored (native layout, h5layout.h): a [N, X(, Y)] = the initial condition at the store
 * resolution (frame t = 0 of the stored trajectory), u [N, nt, X(, Y)] = the nt snapshots after
 * t = 0 at t_j = j T / nt, x = i L / X, t = t_j; float32 (default) or float64 on disk. Storage
 * keeps every (res / store_res)-th point (stride; the FNO data convention) or resamples
 * spectrally (store_mode "spectral").
 *
 * KdV (preset "mppde", Brandstetter et al. 2022): each draw also scales the domain length and
 * the final time by U(0.9, 1.1) (pde/kdv.h). Such a data set stores each sample's domain length
 * and frame times (h5layout.h: datasets L [N] and t [N, nt], float64; the attribute "domain" =
 * "per-sample ..."), x the nominal i L / X and the attributes L and T the nominal 128 and 100;
 * the values equal opl_kdv_ic_mppde_seeded(seed, i)'s, so sample i is re-solved exactly by an
 * explicit initial condition a[i] with L = L[i] and T = t[i, nt - 1] (opl solve --ic does
 * this). Overriding L or T fixes the domain for every sample ("fixed"; shared t [nt]).
 *
 * ---------------------------------------------------------------- provenance
 * Root attributes of the file (all scalars): generator, equation, preset, every physical
 * parameter (nu, L, a, b, forcing), the initial-condition law (ic and its parameters: grf
 * convention, sigma, tau, alpha, kmax; or the mppde draw; or the source of an explicit initial
 * condition), the solver (scheme, dt, and for rk: method, rtol, atol, max_steps; cfl), T, nt,
 * solve_res, store_res, store_mode, seed, rng, plan, solve_precision, and (opl_version is written
 * by the layout). Burgers runs with refine > 0 (default for the chebfun preset: 3) also store the
 * refinement check: refine_samples = k and refine_maxdiff = the largest difference, over samples
 * 0..k-1, all stored frames and points, between the data and a solve at twice the resolution with
 * half the step (pde/solve.h opl_solve_burgers_refinement), computed before the file is created.
 *
 * ---------------------------------------------------------------- running, resuming, stopping
 * opl_gen_run writes to "<path>.partial" and renames it to <path> only when every sample is in
 * (h5layout.h: nothing half-written ever appears at <path>). Samples are solved in parallel
 * with OpenMP (dynamic schedule, one sample per iteration; each thread owns its workspaces) and
 * written with opl_ds_writer_put as they finish. If "<path>.partial" exists, the run resumes it
 * when its provenance and shapes equal this run's (only the missing samples are solved; the
 * result is bit for bit the uninterrupted run's), and fails naming the first difference
 * otherwise (restart = 1 discards it instead). A progress callback after every sample gets the
 * counts, the rate and an ETA; returning non-zero asks the run to stop: samples in flight are
 * finished and written, then the run returns OPL_ERR_STATE and the partial file stays for a
 * later resume. A sample whose solve blows up (pde/solve.h: non-finite state or CFL violation)
 * stops the run the same way and returns the solver's status with the sample index and the
 * time of the last good state in the message ("generate: sample 7: solve_burgers: blow-up at
 * t = 0.25: ...") and in opl_gen_result; the partial file stays as "<path>.partial".
 *
 * ---------------------------------------------------------------- errors, printing, threads
 * Functions return an opl_status and fill an opl_err (may be NULL) with a message naming the
 * setting and the expected value ("generate: store resolution 100 does not divide the solve
 * resolution 1024"). Nothing is printed. opl_gen_sample may be called from many threads at once
 * on one opl_gen; opl_gen_run must not be called concurrently on one opl_gen.
 */
#ifndef OPL_DATASETS_GENERATE_H
#define OPL_DATASETS_GENERATE_H

#include <stdint.h>
#include "core/io.h"
#include "core/opl.h"
#include "datasets/h5layout.h"
#include "pde/solve.h"

typedef enum { OPL_GEN_BURGERS = 0, OPL_GEN_KDV = 1, OPL_GEN_NS = 2 } opl_gen_equation;
typedef enum { OPL_GEN_PLAN_ESTIMATE = 0, OPL_GEN_PLAN_MEASURE = 1 } opl_gen_plan;

/* The settings of a run. Start from opl_gen_config_default and set what you need. Overrides:
 * a double left NAN, an int left 0 (refine: -1) or a string left NULL keeps the preset's value. */
typedef struct opl_gen_config {
  const char *equation;   /* "burgers", "kdv", "ns" (aliases "ns2d", "navier-stokes") */
  const char *preset;     /* NULL: burgers "fno", kdv "mppde", ns "fno" */
  int64_t n;              /* samples N >= 1 */
  uint64_t seed;          /* seed of the run's random stream */
  opl_dtype dtype;        /* on disk: OPL_DT_F32 (default) or OPL_DT_F64 */
  /* overrides of the preset */
  int res;                /* solve resolution (points per axis, even, >= 4) */
  int store_res;          /* store resolution (stride: divides res; spectral: even, >= 4) */
  int nt;                 /* snapshots stored after t = 0 (>= 1) */
  double T;               /* final time (> 0) */
  double dt;              /* time step (fixed-step schemes: > 0; rk: 0 adaptive, > 0 fixed) */
  double nu;              /* viscosity (burgers, ns; > 0) */
  double L;               /* domain length (> 0; kdv: fixes the domain of every sample) */
  double a, b;            /* kdv coefficients of u u_x and u_xxx */
  double rtol, atol;      /* rk tolerances */
  double cfl;             /* Courant-number limit per step (0: no check) */
  double sigma, tau, alpha; /* Gaussian random field of the initial condition (burgers, ns) */
  int kmax;               /* GRF: keep shells <= kmax (< 0: all; 0: preset) */
  const char *scheme;     /* opl_solve_scheme_parse names: etdrk4, rk, dp5, tsit5, bs3, cn-heun,
                             cn-euler, fno */
  const char *store_mode; /* "stride" or "spectral" */
  const char *forcing;    /* ns: "fno" or "none" */
  int refine;             /* burgers: samples of the refinement check (-1: preset default, 3
                             for chebfun and 0 otherwise; 0: none); other equations: -1 or 0 */
  int plan;               /* opl_gen_plan */
  /* an explicit initial condition (opl solve --ic): requires n == 1 */
  const double *ic;       /* [ic_n] (1-D) or [ic_n ic_n] (2-D) physical values, or NULL */
  int ic_n;               /* its points per axis (even, >= 4): resampled spectrally to res */
  const char *ic_source;  /* provenance text of ic (e.g. "file.h5 sample 3"), NULL: "explicit" */
} opl_gen_config;

/* Defaults: no equation, no preset, n = 0, seed 0, float32, every override unset, refine -1,
 * plan estimate, no explicit initial condition. */
void opl_gen_config_default(opl_gen_config *c);

/* Parse "float32" / "float64" (also "f32", "f64", "single", "double") into *dtype; OPL_ERR_ARG
 * naming the value otherwise. */
int opl_gen_parse_dtype(const char *name, opl_dtype *dtype, opl_err *err);
/* Parse "estimate" / "measure" into *plan; OPL_ERR_ARG otherwise. */
int opl_gen_parse_plan(const char *name, int *plan, opl_err *err);

typedef struct opl_gen opl_gen;

/* Resolve the preset and the overrides and check every setting (OPL_ERR_ARG naming the setting
 * and the expected value: unknown equation, preset, scheme, store mode, forcing, dtype; n <= 0;
 * non-positive or non-finite T, dt, nu, L; a scheme the equation does not support; an explicit
 * initial condition with n != 1; OPL_ERR_SHAPE: a store resolution that does not divide the
 * solve resolution, naming both). Then makes the shared solve grid and the initial-condition
 * sampler. No file is touched. Returns NULL and fills err on failure. */
opl_gen *opl_gen_new(const opl_gen_config *cfg, opl_err *err);
/* Free; sets *g to NULL. Accepts NULL. */
void opl_gen_free(opl_gen **g);

/* The resolved settings. */
int opl_gen_equation_of(const opl_gen *g);                 /* opl_gen_equation */
const char *opl_gen_equation_name(const opl_gen *g);       /* "burgers", "kdv", "ns" */
const char *opl_gen_preset_name(const opl_gen *g);
/* Extents of the data set: N, nt, spatial dimension, store resolution. */
void opl_gen_dims(const opl_gen *g, opl_ds_dims *d);
/* The resolved solver options (the grid pointer is the shared grid). */
const opl_solve_opts *opl_gen_solve_opts(const opl_gen *g);
/* The provenance attributes of the data set (valid until the next opl_gen_run or
 * opl_gen_free); *n gets their count. The refinement attributes appear after opl_gen_run has
 * computed (or, resuming, read) them. */
const opl_kv *opl_gen_provenance(const opl_gen *g, int *n);
/* Coordinates of the data set: x [X], y [Y] (2-D; NULL in 1-D), t [nt]. */
const double *opl_gen_x(const opl_gen *g);
const double *opl_gen_t(const opl_gen *g);

/* The per-sample coordinates of the data set into *ps (may be NULL): L [N] and t [N, nt] for KdV
 * with a per-sample domain (returns 1), NULL pointers otherwise (returns 0). */
int opl_gen_per_sample(const opl_gen *g, opl_ds_per_sample *ps);

/* Samples of the refinement check a run of g does first (0: none). */
int opl_gen_refine_samples(const opl_gen *g);

/* Doubles of a (X(, Y)) and of u (nt X(, Y)) of one sample. */
int64_t opl_gen_a_size(const opl_gen *g);
int64_t opl_gen_u_size(const opl_gen *g);

/* Solve sample `index` (0 <= index < N) alone: a [opl_gen_a_size], u [opl_gen_u_size] get
 * exactly the values opl_gen_run stores (in double; the file holds them in its dtype). stats
 * may be NULL. Thread-safe on one g. Returns the solver's status with "generate: sample i: "
 * before its message (blow-up: OPL_ERR_NONFINITE or OPL_ERR_CONVERGENCE, t in stats->t_reached).
 * Allocates its own workspaces (opl_gen_run reuses one per thread instead). */
int opl_gen_sample(const opl_gen *g, int64_t index, double *a, double *u, opl_solve_stats *stats,
                   opl_err *err);

/* Progress of a run, passed to the callback after every sample written (and once before the
 * first solve, with solved = 0). */
typedef struct opl_gen_progress {
  int64_t total;      /* N */
  int64_t done;       /* samples in the file, earlier runs included */
  int64_t todo;       /* samples this run had to solve when it started */
  int64_t solved;     /* samples this run has solved and written */
  int64_t index;      /* the sample just written (-1 in the first call) */
  double elapsed;     /* seconds since this run started solving */
  double rate;        /* samples per second in this run (0 before the first) */
  double eta;         /* estimated seconds left (NAN before the first sample) */
} opl_gen_progress;

/* Called with the run's progress; returns 0 to go on, non-zero to ask the run to stop. Called
 * from the thread that wrote the sample, one call at a time (serialized). */
typedef int (*opl_gen_progress_fn)(void *user, const opl_gen_progress *p);

typedef struct opl_gen_run_opts {
  int threads;                  /* threads solving samples (0: opl_get_num_threads()) */
  int restart;                  /* 1: discard an existing "<path>.partial" instead of resuming */
  opl_gen_progress_fn progress; /* may be NULL */
  void *user;
} opl_gen_run_opts;

typedef struct opl_gen_result {
  int64_t total;         /* N */
  int64_t resumed;       /* samples already in "<path>.partial" when the run started */
  int64_t solved;        /* samples solved and written by this run */
  int stopped;           /* 1: the progress callback asked to stop */
  int resumed_file;      /* 1: an existing partial file was resumed */
  double wall;           /* seconds of the whole call */
  int64_t steps, nfev;   /* summed over the solves of this run */
  double cfl_max;        /* largest Courant number checked (0 when cfl = 0) */
  int refine_samples;    /* the refinement check (burgers), 0 if none */
  double refine_maxdiff;
  int64_t failed_index;  /* the sample that failed (-1: none) */
  double failed_t;       /* time of its last good state */
} opl_gen_result;

/* Run the generation into <path> (see the header comment): resume or create "<path>.partial",
 * solve the missing samples in parallel, write them, finish. ro may be NULL (defaults), res may
 * be NULL. Returns OPL_OK (the file is at <path>), or: OPL_ERR_STATE (stopped by the callback),
 * a blow-up status (the failing sample and time in the message and in res), OPL_ERR_IO (also,
 * before anything is created, when the samples of a new partial file would not fit in the free
 * space of its file system: the message gives both sizes), or a
 * resume mismatch (OPL_ERR_ARG / OPL_ERR_SHAPE / OPL_ERR_FORMAT from h5layout.h, with advice to
 * remove the partial file or restart). After a failure "<path>.partial" holds every sample
 * written so far, and <path> is not touched. */
int opl_gen_run(opl_gen *g, const char *path, const opl_gen_run_opts *ro, opl_gen_result *res,
                opl_err *err);

#endif
