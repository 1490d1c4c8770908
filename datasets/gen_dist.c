/* opl datasets — a generation run on several ranks (see gen_dist.h). */
#include "datasets/gen_dist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/dist.h"

/* Doubles after a sample's frames in a round's buffer: its solve's steps, evaluations and
 * largest Courant number. */
#define DIST_EXTRA 3

static int omp_thread(void) {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

/* The rounds (gen_dist.h) over idx[0..ntodo) on every rank; w is the writer on rank 0 (NULL
 * elsewhere). The ranks return the same status. */
static int rounds(const opl_gen_dist_job *job, opl_ds_writer *w, const int64_t *idx, int64_t ntodo,
                  opl_gen_result *res, opl_err *err) {
  const int P = opl_dist_size(), R = opl_dist_rank(), lead = R == 0;
  const int64_t S = job->size + DIST_EXTRA;
  const int nth = job->threads > 0 ? job->threads : 1;
  const int64_t m = 2 * (int64_t)nth;
  double *buf = malloc(sizeof(double) * (size_t)(m * S));
  double *all = lead ? malloc(sizeof(double) * (size_t)(m * S * P)) : NULL;
  int64_t *counts = malloc(sizeof(int64_t) * (size_t)P);
  void **ws = calloc((size_t)nth, sizeof *ws);
  int rc = (!buf || (lead && !all) || !counts || !ws) ? opl_err_set(err, OPL_ERR_NOMEM, "generate: out of memory")
                                                        : OPL_OK;
  for (int i = 0; i < nth && !rc; i++) rc = job->ws_new(job->gen, &ws[i], err);
  int wst = OPL_OK;  /* rank 0: the status of the last round's writes */
  int asked = 0;     /* rank 0: the progress callback asked to stop */
  opl_err ew = {0};
  for (int64_t base = 0;; base += m * P) {
    const int64_t lo = base + R * m, cnt = lo >= ntodo ? 0 : (ntodo - lo < m ? ntodo - lo : m);
    int64_t bad = -1; /* the failing position of the round on this rank (the lowest) */
    opl_err es = {0};
    if (!rc && base < ntodo && !wst) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(nth)
      for (int64_t j = 0; j < cnt; j++) {
        double *o = buf + j * S;
        opl_solve_stats st = {0};
        opl_err e1 = {0};
        int r = job->solve(job->gen, ws[omp_thread()], idx[lo + j], o, &st, &e1);
        if (!r) {
          o[S - 3] = (double)st.steps, o[S - 2] = (double)st.nfev, o[S - 1] = st.cfl_max;
        } else {
#pragma omp critical(opl_gen_dist)
          if (bad < 0 || j < bad) bad = j, es = e1, res->failed_t = st.t_reached;
        }
      }
      /* the test hook fails this rank's last round, so the earlier rounds are in the partial file */
      if (bad < 0 && cnt > 0 && lo + m * P >= ntodo && opl_dist_fault("generate"))
        bad = 0, opl_err_set(&es, OPL_ERR_IO, "generate: sample %lld: failure injected by OPL_DIST_FAULT",
                             (long long)idx[lo]);
      if (bad >= 0) {
        rc = es.status;
        res->failed_index = idx[lo + bad];
        if (err) *err = es;
      }
    }
    /* one status for the round: a solve failed somewhere, or rank 0's writes of the last round */
    double stop = lead ? asked : 0;
    if (lead && !rc && wst) {
      rc = wst;
      if (err) *err = ew;
    }
    if ((rc = opl_dist_agree(rc, err, &stop, 1))) break;
    if (stop > 0 || base >= ntodo) {
      if (stop > 0) res->stopped = 1;
      break;
    }
    for (int r = 0; r < P; r++) {
      int64_t l = base + r * m;
      counts[r] = S * (l >= ntodo ? 0 : (ntodo - l < m ? ntodo - l : m));
    }
    if ((rc = opl_dist_gather_doubles(buf, counts, all, err))) break;
    if (lead) /* in index order of the todo list, as they come */
      for (int64_t j = 0; j < m * P && base + j < ntodo && !wst; j++) {
        const double *o = all + j * S;
        const int64_t i = idx[base + j];
        opl_solve_stats st = {.steps = (int64_t)o[S - 3], .nfev = (int64_t)o[S - 2], .cfl_max = o[S - 1]};
        opl_err ep = {0};
        if ((wst = opl_ds_writer_put(w, i, o, o + job->a_size, OPL_DT_F64, &ep))) {
          opl_err_set(&ew, wst, "generate: sample %lld: %s", (long long)i, ep.msg);
          res->failed_index = i;
        } else if (job->written && job->written(job->user, i, &st)) {
          asked = 1;
        }
      }
  }
  if (ws)
    for (int i = 0; i < nth; i++) job->ws_free(ws[i]);
  free(ws);
  free(counts);
  free(all);
  free(buf);
  return rc;
}

int opl_gen_dist_lead(const opl_gen_dist_job *job, opl_ds_writer *w, const int64_t *idx, int64_t ntodo, int stop,
                      opl_gen_result *res, opl_err *err) {
  double h[2] = {(double)ntodo, stop};
  int st = opl_dist_agree(OPL_OK, err, h, 2);
  if (!st) st = opl_dist_agree(OPL_OK, err, NULL, 0); /* the others could hold the todo list */
  if (!st) st = opl_dist_bcast((void *)idx, sizeof(int64_t) * (size_t)ntodo, 0, err);
  if (!st && !stop) st = rounds(job, w, idx, ntodo, res, err);
  return st;
}

int opl_gen_dist_end(int told, int rc, opl_err *err) {
  if (!told) { /* the others wait for the todo list: a failure instead */
    double h[2] = {0, 1};
    opl_dist_agree(rc ? rc : OPL_ERR_STATE, err, h, 2);
    return rc ? rc : OPL_ERR_STATE;
  }
  return opl_dist_agree(rc, err, NULL, 0);
}

int opl_gen_dist_follow(const opl_gen_dist_job *job, opl_gen_result *res, opl_err *err) {
  double h[2] = {0, 0}; /* rank 0: samples to do, stop requested */
  int rc = opl_dist_agree(OPL_OK, err, h, 2);
  if (rc) return rc;
  const int64_t ntodo = (int64_t)h[0];
  int64_t *idx = malloc(sizeof(int64_t) * (size_t)(ntodo > 0 ? ntodo : 1));
  if ((rc = opl_dist_agree(idx ? OPL_OK : opl_err_set(err, OPL_ERR_NOMEM, "generate: out of memory"), err, NULL, 0))) {
    free(idx);
    return rc;
  }
  if ((rc = opl_dist_bcast(idx, sizeof(int64_t) * (size_t)ntodo, 0, err))) {
    free(idx);
    return rc;
  }
  if (h[1] == 0) rc = rounds(job, NULL, idx, ntodo, res, err);
  free(idx);
  if (rc) return rc;
  return opl_dist_agree(OPL_OK, err, NULL, 0); /* rank 0's end: finished, stopped or failed */
}
