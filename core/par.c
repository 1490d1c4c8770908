/* opl core — deterministic parallel sums and teams of contexts (core/par.h). */
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include "core/par.h"
#include "core/opl.h"

void opl_par_sums(int64_t nblk, int nsum, int parallel,
                  void (*f)(void *ctx, int64_t b0, int64_t b1, double *acc), void *ctx, double *out) {
  OPL_ASSERT(nsum >= 1 && nsum <= 4 && nblk >= 0 && f != NULL, "opl_par_sums: nsum %d, nblk %lld", nsum,
             (long long)nblk);
  double part[OPL_PSUM_GROUPS][4];
  const int64_t ng = nblk < OPL_PSUM_GROUPS ? nblk : OPL_PSUM_GROUPS;
#pragma omp parallel for if (parallel && ng > 1) schedule(static)
  for (int64_t g = 0; g < ng; g++) {
    double acc[4] = {0, 0, 0, 0};
    f(ctx, nblk * g / ng, nblk * (g + 1) / ng, acc);
    for (int k = 0; k < nsum; k++) part[g][k] = acc[k];
  }
  for (int k = 0; k < nsum; k++) {
    double s = 0;
    for (int64_t g = 0; g < ng; g++) s += part[g][k];
    out[k] = s;
  }
}

/* ------------------------------------------------------------ teams */

struct opl_team {
  int n;
  int borrowed; /* 1: c[0] is the caller's (opl_team_new_from) */
  opl_ctx *c[];
};

opl_team *opl_team_new_from(opl_ctx *first, int threads) {
  const int n = threads > 0 ? threads : opl_get_num_threads();
  opl_team *t = calloc(1, sizeof *t + (size_t)n * sizeof t->c[0]);
  if (!t) return NULL;
  t->n = n;
  t->borrowed = first != NULL;
  t->c[0] = first;
  for (int i = t->borrowed; i < n; i++)
    if (!(t->c[i] = opl_ctx_new(0))) {
      opl_team_free(&t);
      return NULL;
    }
  return t;
}

opl_team *opl_team_new(int threads) { return opl_team_new_from(NULL, threads); }

int opl_team_size(const opl_team *t) { return t ? t->n : 0; }

opl_ctx *opl_team_ctx(opl_team *t, int i) {
  OPL_ASSERT(t && i >= 0 && i < t->n, "opl_team_ctx: context %d of a team of %d", i, t ? t->n : 0);
  return t->c[i];
}

int opl_team_run(opl_team *t, int64_t n, opl_team_fn f, void *arg, opl_err *err) {
  if (!t || !f || n < 0) return opl_err_set(err, OPL_ERR_ARG, "team: NULL argument or %lld items", (long long)n);
  if (n == 0) return OPL_OK;
  const int k = n < t->n ? (int)n : t->n;
  if (k == 1) return f(arg, t->c[0], 0, n, err);
  opl_err *es = calloc((size_t)k, sizeof *es);
  int *st = calloc((size_t)k, sizeof *st);
  if (!es || !st) {
    free(es);
    free(st);
    return opl_err_set(err, OPL_ERR_NOMEM, "team: out of memory");
  }
#ifdef _OPENMP
  const int par = !omp_in_parallel();
#pragma omp parallel for num_threads(k) schedule(static, 1) if (par)
#endif
  for (int i = 0; i < k; i++) {
#ifdef _OPENMP
    /* this thread's own count (its implicit task's), so that f's ops stay on it */
    if (par) omp_set_num_threads(1);
#endif
    st[i] = f(arg, t->c[i], n * i / k, n * (i + 1) / k, &es[i]);
  }
  int r = OPL_OK;
  for (int i = 0; i < k && !r; i++)
    if (st[i]) {
      r = st[i];
      if (err) *err = es[i];
    }
  free(es);
  free(st);
  return r;
}

void opl_team_free(opl_team **t) {
  if (!t || !*t) return;
  for (int i = (*t)->borrowed; i < (*t)->n; i++) opl_ctx_free(&(*t)->c[i]);
  free(*t);
  *t = NULL;
}
