/* opl train — metrics: per-sample relative L2, summaries, the CSV log. See metrics.h. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/files.h"
#include "train/metrics.h"

/* Below this many values the loop stays out of the OpenMP runtime. */
#define METRICS_PAR_MIN 32768

void opl_rel_l2_per_sample(const opl_real *pred /* [n, m] */, const opl_real *truth /* [n, m] */,
                           int64_t n, int64_t m, double *rel /* [n] */, double *tnorm /* [n] or NULL */) {
#pragma omp parallel for if (n * m > METRICS_PAR_MIN) schedule(static)
  for (int64_t j = 0; j < n; j++) {
    const opl_real *p = pred + j * m, *v = truth + j * m;
    double sd = 0, sv = 0;
    for (int64_t i = 0; i < m; i++) {
      double e = (double)p[i] - (double)v[i], f = (double)v[i];
      sd += e * e;
      sv += f * f;
    }
    double dn = sqrt(sd), vn = sqrt(sv);
    rel[j] = vn > 0 ? dn / vn : (dn > 0 ? INFINITY : 0.0);
    if (tnorm) tnorm[j] = vn;
  }
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  /* NaN sorts last */
  if (isnan(x)) return isnan(y) ? 0 : 1;
  if (isnan(y)) return -1;
  return (x > y) - (x < y);
}

/* Median of v[0..n) (sorted in place). */
static double median_sorted(double *v, int64_t n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int opl_err_summarize(const double *rel, const double *tnorm, int64_t n, opl_err_summary *s,
                      int64_t *tiny, opl_err *err) {
  if (!rel || !s || n < 1)
    return opl_err_set(err, OPL_ERR_ARG, "metrics: summary of %lld samples (NULL or empty)", (long long)n);
  memset(s, 0, sizeof *s);
  s->n = n;
  double *tmp = malloc(sizeof(double) * (size_t)n);
  if (!tmp) return opl_err_set(err, OPL_ERR_NOMEM, "metrics: out of memory");
  double sum = 0;
  s->worst = rel[0];
  s->worst_index = 0;
  for (int64_t j = 0; j < n; j++) {
    sum += rel[j];
    if (!isnan(s->worst) && (isnan(rel[j]) || rel[j] > s->worst)) s->worst = rel[j], s->worst_index = j;
    tmp[j] = rel[j];
  }
  s->mean = sum / (double)n;
  s->median = median_sorted(tmp, n);
  s->median_tnorm = NAN;
  if (tnorm) {
    memcpy(tmp, tnorm, sizeof(double) * (size_t)n);
    s->median_tnorm = median_sorted(tmp, n);
    for (int64_t j = 0; j < n; j++)
      if (tnorm[j] < OPL_METRICS_TINY * s->median_tnorm) {
        if (tiny) tiny[s->ntiny] = j;
        s->ntiny++;
      }
  }
  free(tmp);
  return OPL_OK;
}

/* ---------------------------------------------------------------- CSV log */

int opl_metrics_csv_path(const char *model_path, char *buf, size_t size, opl_err *err) {
  if (!model_path || !buf || !*model_path)
    return opl_err_set(err, OPL_ERR_ARG, "metrics: no model path to derive the CSV path from");
  size_t len = strlen(model_path);
  static const char *ext[] = {".h5", ".hdf5", ".hdf"};
  for (size_t k = 0; k < sizeof ext / sizeof ext[0]; k++) {
    size_t el = strlen(ext[k]);
    if (len > el && strcmp(model_path + len - el, ext[k]) == 0 && model_path[len - el - 1] != '/') {
      len -= el;
      break;
    }
  }
  int w = snprintf(buf, size, "%.*s.csv", (int)len, model_path);
  if (w < 0 || (size_t)w >= size)
    return opl_err_set(err, OPL_ERR_ARG, "metrics: CSV path for '%s' is too long", model_path);
  return OPL_OK;
}

struct opl_metrics_log {
  FILE *f;
  char *path;
  char *pending;   /* a new log's temporary name until opl_metrics_log_commit, else NULL */
  int solver;      /* the solver columns are written */
  int pino;        /* the physics-loss columns are written */
};

void opl_metrics_log_close(opl_metrics_log **pl) {
  if (!pl || !*pl) return;
  if ((*pl)->f) fclose((*pl)->f);
  if ((*pl)->pending) unlink((*pl)->pending);
  free((*pl)->pending);
  free((*pl)->path);
  free(*pl);
  *pl = NULL;
}

int opl_metrics_log_commit(opl_metrics_log *l, opl_err *err) {
  if (!l) return opl_err_set(err, OPL_ERR_ARG, "metrics: NULL log");
  if (!l->pending) return OPL_OK;
  if (fflush(l->f) != 0 || fsync(fileno(l->f)) != 0 || rename(l->pending, l->path) != 0)
    return opl_err_set(err, OPL_ERR_IO, "metrics: cannot move '%s' to '%s': %s", l->pending, l->path, strerror(errno));
  free(l->pending);
  l->pending = NULL;
  return OPL_OK;
}

/* Epoch number at the start of a CSV row, or -1 if the row does not start with one. */
static int64_t row_epoch(const char *line) {
  char *end = NULL;
  long long e = strtoll(line, &end, 10);
  return (end != line && *end == ',') ? (int64_t)e : -1;
}

opl_metrics_log *opl_metrics_log_open(const char *path, int64_t keep_epochs, opl_err *err) {
  return opl_metrics_log_open_cols(path, keep_epochs, 0, err);
}

opl_metrics_log *opl_metrics_log_open_cols(const char *path, int64_t keep_epochs, int solver, opl_err *err) {
  char header[512];
  snprintf(header, sizeof header, "%s%s%s", OPL_METRICS_CSV_HEADER, solver & OPL_METRICS_COLS_SOLVER ? OPL_METRICS_CSV_SOLVER : "",
           solver & OPL_METRICS_COLS_PINO ? OPL_METRICS_CSV_PINO : "");
  if (!path || !*path) {
    opl_err_set(err, OPL_ERR_ARG, "metrics: no CSV path");
    return NULL;
  }
  opl_metrics_log *l = calloc(1, sizeof *l);
  if (!l || !(l->path = strdup(path))) {
    opl_metrics_log_close(&l);
    opl_err_set(err, OPL_ERR_NOMEM, "metrics: out of memory");
    return NULL;
  }
  l->solver = (solver & OPL_METRICS_COLS_SOLVER) != 0;
  l->pino = (solver & OPL_METRICS_COLS_PINO) != 0;
  if (keep_epochs <= 0) { /* a new log: under its temporary name until the first checkpoint */
    size_t len = strlen(path) + 32;
    if (!(l->pending = malloc(len))) {
      opl_metrics_log_close(&l);
      opl_err_set(err, OPL_ERR_NOMEM, "metrics: out of memory");
      return NULL;
    }
    snprintf(l->pending, len, "%s.tmp.%ld", path, (long)getpid());
    if (!(l->f = fopen(l->pending, "w")) || fprintf(l->f, "%s\n", header) < 0 || fflush(l->f) != 0) {
      opl_err_set(err, OPL_ERR_IO, "metrics: cannot write '%s': %s", l->pending, strerror(errno));
      opl_metrics_log_close(&l);
      return NULL;
    }
    return l;
  }
  /* the kept rows and the header go to "<path>.tmp.<pid>", renamed into place (core/files.h) */
  opl_err e = {0};
  opl_atomic *a = opl_atomic_open(path, &e);
  if (!a) {
    opl_err_set(err, e.status, "metrics: %s", e.msg);
    opl_metrics_log_close(&l);
    return NULL;
  }
  FILE *out = opl_atomic_stream(a);
  int st = OPL_OK;
  fprintf(out, "%s\n", header);
  FILE *old = keep_epochs > 0 ? fopen(path, "r") : NULL;
  if (old) {
    char line[4096];
    int first = 1;
    while (!st && fgets(line, sizeof line, old)) {
      if (first) {
        first = 0;
        line[strcspn(line, "\r\n")] = 0;
        if (strcmp(line, header) != 0)
          st = opl_err_set(err, OPL_ERR_FORMAT, "metrics: '%s' is not an opl metrics log (first line '%.80s')",
                           path, line);
        continue;
      }
      int64_t ep = row_epoch(line);
      if (ep >= 1 && ep <= keep_epochs) fputs(line, out);
    }
    fclose(old);
  }
  if (st) opl_atomic_abort(&a);
  else if ((st = opl_atomic_commit(&a, &e))) opl_err_set(err, st, "metrics: %s", e.msg);
  if (st) {
    opl_metrics_log_close(&l);
    return NULL;
  }
  l->f = fopen(path, "a");
  if (!l->f) {
    opl_err_set(err, OPL_ERR_IO, "metrics: cannot append to '%s': %s", path, strerror(errno));
    opl_metrics_log_close(&l);
    return NULL;
  }
  return l;
}

int opl_metrics_log_write(opl_metrics_log *l, const opl_epoch_stats *s, opl_err *err) {
  if (!l || !s) return opl_err_set(err, OPL_ERR_ARG, "metrics: NULL log or statistics");
  fprintf(l->f, "%lld,%.9g,%.9g,%.9g,%.9g,%.4f,%.4f,%.6g", (long long)s->epoch, s->train_loss, s->train_l2,
          s->test_l2, s->lr, s->seconds, s->train_seconds, s->samples_per_s);
  if (l->solver)
    fprintf(l->f, ",%.9g,%.9g,%.9g,%.9g,%.9g,%.9g", s->nfe, s->accepted, s->rejected, s->test_nfe, s->local_nfe,
            s->reg_ratio);
  if (l->pino) fprintf(l->f, ",%.9g,%.9g", s->pde_loss, s->ic_loss);
  fputc('\n', l->f);
  if (fflush(l->f) != 0 || ferror(l->f))
    return opl_err_set(err, OPL_ERR_IO, "metrics: write error on '%s': %s", l->path, strerror(errno));
  return OPL_OK;
}
