/* opl datasets — Darcy flow data sets: settings, provenance, one sample, the parallel resumable
 * run. See datasets/darcy_gen.h.
 */
#include "core/dist.h"
#include "datasets/darcy_gen.h"
#include "datasets/gen_dist.h"

#include <errno.h>
#include <fftw3.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pde/darcy.h"

#define NPROV 20

struct opl_darcy_gen {
  char preset[16];
  opl_darcy_params p;
  int64_t N;
  uint64_t seed;
  opl_dtype dtype;
  int S, s, k;              /* solve and store resolutions, stride */
  opl_darcy_grf *grf;
  opl_darcy *solver;        /* the symbolic analysis, cloned per thread */
  double *x;                /* [s] */
  double t[1];
  opl_kv prov[NPROV];
  int nprov;
};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* err = "generate: " + prefix + low's message; returns low's status. */
static int fail_from(opl_err *err, const opl_err *low, const char *prefix) {
  opl_err e = *low;
  return opl_err_set(err, low->status ? low->status : OPL_ERR_STATE, "generate: %s%s", prefix, opl_err_text(&e));
}

void opl_darcy_gen_config_default(opl_darcy_gen_config *c) {
  memset(c, 0, sizeof *c);
  c->dtype = OPL_DT_F32;
  c->tau = NAN;
  c->alpha = NAN;
}

void opl_darcy_gen_free(opl_darcy_gen **pg) {
  if (!pg || !*pg) return;
  opl_darcy_gen *g = *pg;
  opl_darcy_grf_free(&g->grf);
  opl_darcy_free(&g->solver);
  free(g->x);
  free(g);
  *pg = NULL;
}

opl_darcy_gen *opl_darcy_gen_new(const opl_darcy_gen_config *c, opl_err *err) {
  opl_err e = {0};
  opl_darcy_params p;
  int S, s;
  const char *preset = c->preset ? c->preset : "fno";
  if (opl_darcy_preset(preset, &p, &S, &s, &e)) {
    fail_from(err, &e, "");
    return NULL;
  }
  if (c->n < 1) {
    opl_err_set(err, OPL_ERR_ARG, "generate: n = %lld, expected the number of samples (>= 1)", (long long)c->n);
    return NULL;
  }
  if (c->dtype != OPL_DT_F32 && c->dtype != OPL_DT_F64) {
    opl_err_set(err, OPL_ERR_ARG, "generate: dtype must be float32 or float64");
    return NULL;
  }
  if (!isnan(c->tau)) p.tau = c->tau;
  if (!isnan(c->alpha)) p.alpha = c->alpha;
  if (opl_darcy_check(&p, &e)) {
    fail_from(err, &e, "");
    return NULL;
  }
  if (c->res) {
    if (c->res < 3) {
      opl_err_set(err, OPL_ERR_ARG, "generate: resolution %d, expected >= 3 nodes per axis", c->res);
      return NULL;
    }
    S = c->res;
    if (!c->store_res && (S - 1) % (s - 1)) s = S; /* the preset's store resolution does not fit */
  }
  if (c->store_res) s = c->store_res;
  if (s < 3) {
    opl_err_set(err, OPL_ERR_ARG, "generate: store resolution %d, expected >= 3 nodes per axis", s);
    return NULL;
  }
  if ((S - 1) % (s - 1)) {
    opl_err_set(err, OPL_ERR_SHAPE,
                "generate: store resolution %d does not fit the solve resolution %d: s - 1 = %d must divide S - 1 = "
                "%d (every k-th node is kept)",
                s, S, s - 1, S - 1);
    return NULL;
  }
  opl_darcy_gen *g = calloc(1, sizeof *g);
  if (!g || !(g->x = malloc(sizeof(double) * (size_t)s))) {
    free(g);
    opl_err_set(err, OPL_ERR_NOMEM, "generate: out of memory");
    return NULL;
  }
  snprintf(g->preset, sizeof g->preset, "%s", preset);
  g->p = p;
  g->N = c->n;
  g->seed = c->seed;
  g->dtype = c->dtype;
  g->S = S;
  g->s = s;
  g->k = (S - 1) / (s - 1);
  for (int i = 0; i < s; i++) g->x[i] = (double)i / (s - 1);
  g->t[0] = 1.0;
  if (!(g->grf = opl_darcy_grf_new(S, p.tau, p.alpha, &e)) || !(g->solver = opl_darcy_new(S, &e))) {
    fail_from(err, &e, "");
    opl_darcy_gen_free(&g);
    return NULL;
  }
  opl_kv pv[NPROV] = {
      OPL_KVS("generator", "opl generate darcy"),
      OPL_KVS("equation", "darcy"),
      OPL_KVS("preset", g->preset),
      OPL_KVD("tau", p.tau),
      OPL_KVD("alpha", p.alpha),
      OPL_KVD("psi_pos", p.a_pos),
      OPL_KVD("psi_neg", p.a_neg),
      OPL_KVS("ic", "grf-neumann: g ~ N(0, (-Laplacian + tau^2)^-alpha), zero-Neumann cosine series (DCT-I on the "
                    "nodes); a = psi_pos where g >= 0, psi_neg where g < 0"),
      OPL_KVS("forcing", "1"),
      OPL_KVS("boundary", "u = 0 on the boundary nodes"),
      OPL_KVS("discretization", "nodes x_i = i/(S-1), i = 0..S-1; five-point stencil, face coefficient the "
                                "arithmetic mean of the two nodes it joins; scaled by (S-1)^2; u = 0 on boundary "
                                "nodes"),
      OPL_KVS("solver", "cholmod: one symbolic analysis per resolution (nested dissection), a supernodal "
                        "numeric factorization LL' per sample"),
      OPL_KVI("solve_res", S),
      OPL_KVI("store_res", s),
      OPL_KVI("stride", g->k),
      OPL_KVI("seed", (int64_t)c->seed),
      OPL_KVS("rng", "philox4x32-10, sample i from opl_rng_split(seed, i)"),
      OPL_KVI("steady", 1),
  };
  g->nprov = 18;
  memcpy(g->prov, pv, sizeof pv);
  return g;
}

void opl_darcy_gen_dims(const opl_darcy_gen *g, opl_ds_dims *d) {
  *d = (opl_ds_dims){.n = g->N, .t = 1, .sdim = 2, .x = g->s, .y = g->s, .steady = 1};
}
const opl_kv *opl_darcy_gen_provenance(const opl_darcy_gen *g, int *n) {
  if (n) *n = g->nprov;
  return g->prov;
}
const char *opl_darcy_gen_preset(const opl_darcy_gen *g) { return g->preset; }
void opl_darcy_gen_res(const opl_darcy_gen *g, int *res, int *store_res) {
  if (res) *res = g->S;
  if (store_res) *store_res = g->s;
}

/* A thread's workspace: its solver copy and the S^2 fields. */
typedef struct ws {
  opl_darcy *d;
  double *g, *work, *a, *u;   /* [S^2] each; g, work fftw_malloc'd */
  double *out;                /* [2 s^2]: stored a then u */
} ws;

static void ws_free(ws *w) {
  opl_darcy_free(&w->d);
  fftw_free(w->g);
  fftw_free(w->work);
  free(w->a);
  free(w->u);
  free(w->out);
  memset(w, 0, sizeof *w);
}

static int ws_alloc(const opl_darcy_gen *g, ws *w, opl_err *err) {
  memset(w, 0, sizeof *w);
  size_t n = (size_t)g->S * g->S, m = (size_t)g->s * g->s;
  opl_err e = {0};
  if (!(w->d = opl_darcy_clone(g->solver, &e))) return fail_from(err, &e, "");
  w->g = fftw_malloc(sizeof(double) * n);
  w->work = fftw_malloc(sizeof(double) * n);
  w->a = malloc(sizeof(double) * n);
  w->u = malloc(sizeof(double) * n);
  w->out = malloc(sizeof(double) * 2 * m);
  if (!w->g || !w->work || !w->a || !w->u || !w->out) {
    ws_free(w);
    return opl_err_set(err, OPL_ERR_NOMEM, "generate: out of memory (workspace of a %d^2 Darcy solve)", g->S);
  }
  return OPL_OK;
}

/* Sample idx into w->out (a then u at the store resolution). */
static int sample(const opl_darcy_gen *g, int64_t idx, ws *w, opl_err *err) {
  opl_darcy_grf_sample(g->grf, g->seed, (uint64_t)idx, w->g, w->work);
  opl_darcy_psi(&g->p, w->g, w->a, (int64_t)g->S * g->S);
  opl_err e = {0};
  int rc = opl_darcy_solve(w->d, w->a, NULL, w->u, &e);
  if (rc) {
    char pre[48];
    snprintf(pre, sizeof pre, "sample %lld: ", (long long)idx);
    return fail_from(err, &e, pre);
  }
  const int s = g->s, S = g->S, k = g->k;
  double *ao = w->out, *uo = w->out + (size_t)s * s;
  for (int i = 0; i < s; i++)
    for (int j = 0; j < s; j++) {
      ao[(size_t)i * s + j] = w->a[(size_t)i * k * S + (size_t)j * k];
      uo[(size_t)i * s + j] = w->u[(size_t)i * k * S + (size_t)j * k];
    }
  return OPL_OK;
}

int opl_darcy_gen_sample(const opl_darcy_gen *g, int64_t index, double *a, double *u, opl_err *err) {
  if (index < 0 || index >= g->N)
    return opl_err_set(err, OPL_ERR_ARG, "generate: sample %lld outside [0, %lld)", (long long)index, (long long)g->N);
  ws w;
  int rc = ws_alloc(g, &w, err);
  if (rc) return rc;
  rc = sample(g, index, &w, err);
  if (!rc) {
    size_t m = (size_t)g->s * g->s;
    memcpy(a, w.out, sizeof(double) * m);
    memcpy(u, w.out + m, sizeof(double) * m);
  }
  ws_free(&w);
  return rc;
}

/* ---------------------------------------------------------------- runs on several ranks
 *
 * Under mpirun (core/dist.h) rank 0 makes or resumes the partial file as a single process does,
 * the samples are solved in rounds on every rank and written by rank 0 (datasets/gen_dist.h,
 * shared with the time-dependent runs); these are the rounds' callbacks. */

static int dist_ws_new(const void *gen, void **wsp, opl_err *err) {
  ws *w = malloc(sizeof *w);
  int rc = w ? ws_alloc(gen, w, err) : opl_err_set(err, OPL_ERR_NOMEM, "generate: out of memory");
  if (rc) {
    free(w);
    w = NULL;
  }
  *wsp = w;
  return rc;
}

static void dist_ws_free(void *w) {
  if (!w) return;
  ws_free(w);
  free(w);
}

static int dist_solve(const void *gen, void *wsp, int64_t idx, double *out, opl_solve_stats *st, opl_err *err) {
  const opl_darcy_gen *g = gen;
  ws *w = wsp;
  memset(st, 0, sizeof *st);
  st->t_reached = NAN; /* a steady solve has no time */
  int rc = sample(g, idx, w, err);
  if (!rc) memcpy(out, w->out, sizeof(double) * 2 * (size_t)g->s * (size_t)g->s);
  return rc;
}

/* Rank 0's progress as the rounds write samples. */
typedef struct dist_progress {
  const opl_gen_run_opts *ro;
  opl_gen_result *res;
  opl_gen_progress *pg;
  double t0;
} dist_progress;

static int dist_written(void *user, int64_t idx, const opl_solve_stats *st) {
  (void)st;
  dist_progress *d = user;
  opl_gen_progress *pg = d->pg;
  d->res->solved++;
  pg->done++;
  pg->solved++;
  pg->index = idx;
  pg->elapsed = now_s() - d->t0;
  pg->rate = pg->elapsed > 0 ? (double)pg->solved / pg->elapsed : 0;
  pg->eta = pg->rate > 0 ? (double)(pg->todo - pg->solved) / pg->rate : NAN;
  if (d->ro->progress && d->ro->progress(d->ro->user, pg)) {
    d->res->stopped = 1;
    return 1;
  }
  return 0;
}

static opl_gen_dist_job dist_job(const opl_darcy_gen *g, int threads, dist_progress *d) {
  return (opl_gen_dist_job){.gen = g, .a_size = (int64_t)g->s * g->s, .size = 2 * (int64_t)g->s * g->s,
                            .threads = threads, .ws_new = dist_ws_new, .ws_free = dist_ws_free, .solve = dist_solve,
                            .written = d ? dist_written : NULL, .user = d};
}

/* The run (opl_darcy_gen_run); on several ranks *told says how rank 0's end is to be shared:
 * 0 before the todo list was sent, 1 after, 2 not at all (a rank other than 0, or the rounds
 * failed: every rank knows). */
static int darcy_run(opl_darcy_gen *g, const char *path, const opl_gen_run_opts *ro_in, opl_gen_result *res_out,
                     int *told, opl_err *err) {
  const double t_start = now_s();
  opl_gen_run_opts ro = {0};
  if (ro_in) ro = *ro_in;
  opl_gen_result rl, *res = res_out ? res_out : &rl;
  memset(res, 0, sizeof *res);
  res->total = g ? g->N : 0;
  res->failed_index = -1;
  res->failed_t = NAN;
  if (!g || !path || !path[0]) return opl_err_set(err, OPL_ERR_ARG, "generate: NULL run or empty output path");
  int threads = ro.threads > 0 ? ro.threads : opl_get_num_threads();
  if (threads < 1) threads = 1;
  const int dist = opl_dist_size() > 1;
  if (dist && opl_dist_rank() != 0) { /* the samples rank 0 hands out */
    opl_gen_dist_job job = dist_job(g, threads, NULL);
    *told = 2;
    int rc = opl_gen_dist_follow(&job, res, err);
    res->wall = now_s() - t_start;
    return rc;
  }
  char partial[4096];
  if (snprintf(partial, sizeof partial, "%s.partial", path) >= (int)sizeof partial)
    return opl_err_set(err, OPL_ERR_ARG, "generate: output path too long");
  if (ro.restart && unlink(partial) != 0 && errno != ENOENT)
    return opl_err_set(err, OPL_ERR_IO, "generate: cannot remove '%s' (%s)", partial, strerror(errno));
  struct stat sb;
  const int have_partial = stat(partial, &sb) == 0;
  opl_ds_dims d;
  opl_darcy_gen_dims(g, &d);
  opl_err e2 = {0};
  opl_ds_writer *w;
  int rc = OPL_OK;
  int64_t *idx = NULL;
  if (have_partial) {
    w = opl_ds_writer_resume(path, &d, g->dtype, g->x, g->x, g->t, g->prov, g->nprov, &e2);
    if (!w) {
      char pre[4200];
      snprintf(pre, sizeof pre, "cannot resume '%s' (remove it, or restart, to start over): ", partial);
      return fail_from(err, &e2, pre);
    }
    res->resumed_file = 1;
  } else {
    w = opl_ds_writer_create(path, &d, g->dtype, g->x, g->x, g->t, g->prov, g->nprov, &e2);
    if (!w) return fail_from(err, &e2, "");
  }
  int64_t ntodo = opl_ds_writer_todo(w, NULL);
  res->resumed = g->N - ntodo;
  idx = malloc(sizeof(int64_t) * (size_t)(ntodo > 0 ? ntodo : 1));
  if (!idx) {
    rc = opl_err_set(err, OPL_ERR_NOMEM, "generate: out of memory");
    goto done;
  }
  opl_ds_writer_todo(w, idx);
  opl_gen_progress pg = {.total = g->N, .done = g->N - ntodo, .todo = ntodo, .index = -1, .eta = NAN};
  int stop = 0, frc = OPL_OK;
  opl_err ferr = {0};
  const double t0 = now_s();
  if (ro.progress && ro.progress(ro.user, &pg)) {
    res->stopped = 1;
    stop = 1;
  }
  if (dist) { /* the rounds on every rank, rank 0 writing */
    dist_progress dp = {.ro = &ro, .res = res, .pg = &pg, .t0 = t0};
    opl_gen_dist_job job = dist_job(g, threads, &dp);
    *told = 1;
    if ((rc = opl_gen_dist_lead(&job, w, idx, ntodo, stop, res, err))) {
      *told = 2;
      goto done;
    }
    stop = 1; /* the loop below is the single process's */
  }
  if (!stop && ntodo > 0) {
    int nth = (int64_t)threads < ntodo ? threads : (int)ntodo;
#pragma omp parallel num_threads(nth)
    {
      ws wk;
      opl_err ew = {0};
      int ok_ws = ws_alloc(g, &wk, &ew) == OPL_OK;
      if (!ok_ws) {
#pragma omp critical(opl_darcy_gen_run)
        if (!frc) {
          frc = ew.status;
          ferr = ew;
        }
#pragma omp atomic write
        stop = 1;
      }
#pragma omp for schedule(dynamic, 1)
      for (int64_t q = 0; q < ntodo; q++) {
        int st;
#pragma omp atomic read
        st = stop;
        if (st || !ok_ws) continue;
        const int64_t i = idx[q];
        opl_err es = {0};
        int r = sample(g, i, &wk, &es);
        if (!r) {
          opl_err ep = {0};
          r = opl_ds_writer_put(w, i, wk.out, wk.out + (size_t)g->s * g->s, OPL_DT_F64, &ep);
          if (r) {
            char pre[48];
            snprintf(pre, sizeof pre, "sample %lld: ", (long long)i);
            fail_from(&es, &ep, pre);
          }
        }
#pragma omp critical(opl_darcy_gen_run)
        {
          if (r) {
            if (!frc) {
              frc = r;
              ferr = es;
              res->failed_index = i;
            }
#pragma omp atomic write
            stop = 1;
          } else {
            res->solved++;
            pg.done++;
            pg.solved++;
            pg.index = i;
            pg.elapsed = now_s() - t0;
            pg.rate = pg.elapsed > 0 ? (double)pg.solved / pg.elapsed : 0;
            pg.eta = pg.rate > 0 ? (double)(pg.todo - pg.solved) / pg.rate : NAN;
            if (ro.progress && ro.progress(ro.user, &pg)) {
              res->stopped = 1;
#pragma omp atomic write
              stop = 1;
            }
          }
        }
      }
      if (ok_ws) ws_free(&wk);
    }
  }
  if (frc) {
    rc = frc;
    if (err) *err = ferr;
    goto done;
  }
  if (res->stopped && opl_ds_writer_todo(w, NULL) == 0) res->stopped = 0;
  if (res->stopped) {
    rc = opl_err_set(err, OPL_ERR_STATE,
                     "generate: stopped at the caller's request with %lld of %lld samples written; '%s' keeps them "
                     "(run again with the same settings to resume)",
                     (long long)pg.done, (long long)g->N, partial);
    goto done;
  }
  if ((rc = opl_ds_writer_finish(&w, &e2))) fail_from(err, &e2, "");
done:
  opl_ds_writer_close(&w);
  free(idx);
  res->wall = now_s() - t_start;
  return rc;
}

int opl_darcy_gen_run(opl_darcy_gen *g, const char *path, const opl_gen_run_opts *ro, opl_gen_result *res,
                      opl_err *err) {
  int told = 0;
  int rc = darcy_run(g, path, ro, res, &told, err);
  if (opl_dist_size() > 1 && told != 2) rc = opl_gen_dist_end(told, rc, err);
  return rc;
}
