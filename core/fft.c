/* opl — FFT plan cache and wisdom (see core/fft.h for the contract).
 *
 * FFTW plans cost time to make (FFTW_MEASURE times candidate algorithms; FFTW_ESTIMATE, the
 * default, does not) and are cheap to run, so each distinct batch of transforms is planned
 * once, on scratch buffers from fftw_malloc (planning overwrites its arrays), and afterwards
 * executed with the new-array functions on arena memory (64-byte aligned, as FFTW's SIMD code
 * requires).
 *
 * Threads: a batch with enough work is planned with FFTW's OpenMP threads
 * (plan_with_nthreads). Measured against an OpenMP loop over batch chunks each running a
 * single-threaded plan, at the FNO shapes (1280 x r2c 1024 and 400 x r2c 64x64, float, 2
 * threads) both took the same time within noise (0.75 vs 0.74 ms; 1.53 vs 1.53 ms), so the
 * simpler one was kept: FFTW splits the batch itself and has no alignment caveats.
 *
 * The cache is a linked list on the heap guarded by one mutex; it grows once per new shape,
 * never per step. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include "core/fft.h"
#include "core/ops.h"
#include "core/internal.h"

struct opl_fft_plan {
  opl_fftw_plan plan;
  opl_fft_kind kind;
  int d, flags, nthreads;
  int64_t dims[3], howmany;
  int64_t nreal, ncplx;       /* per transform: reals, complex values */
  struct opl_fft_plan *next;
};

static pthread_mutex_t fft_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t fft_once = PTHREAD_ONCE_INIT;
static opl_fft_plan *fft_cache;     /* guarded by fft_lock */
static int64_t fft_created, fft_count; /* guarded by fft_lock */
static int fft_estimate = 1;        /* guarded by fft_lock; ops.h: estimate by default */
static int fft_threads_ok;          /* set once by fft_init */

/* Truncated-DFT matrices (see fft.h), cached next to the plans. */
typedef struct dft_mat {
  int64_t n, m;
  opl_real *F;                      /* [n, 2m] */
  opl_real *G;                      /* [2m, n] */
  struct dft_mat *next;
} dft_mat;
static dft_mat *dft_cache;          /* guarded by fft_lock */
static volatile int dft_mode;       /* opl_dft_mode */

/* FFTW's planner is not thread-safe; besides this cache's own lock, FFTW is asked to serialize
 * its planner itself, so plans made elsewhere (pde/grid.c plans double-precision transforms
 * for the reference solvers) can never race with these. */
static void fft_init(void) {
  fft_threads_ok = OPL_FFTW(init_threads)() != 0;
  OPL_FFTW(make_planner_thread_safe)();
}

int opl_fft_threads_for(int64_t work) {
  int n = 1;
#ifdef _OPENMP
  if (!omp_in_parallel()) n = omp_get_max_threads();
#endif
  if (work < OPL_PAR_MIN || n < 1) n = 1;
  return n;
}

int opl_fft_aligned(const void *p) {
  return OPL_FFTW(alignment_of)((opl_real *)(uintptr_t)p) == 0;
}

/* Real and complex per-transform sizes of dims[0..d); 0 if some extent is < 1. */
static int fft_sizes(int d, const int64_t *dims, int64_t *nreal, int64_t *ncplx) {
  int64_t r = 1, cx = 1;
  for (int i = 0; i < d; i++) {
    if (dims[i] < 1) return 0;
    r *= dims[i];
    cx *= i == d - 1 ? dims[i] / 2 + 1 : dims[i];
  }
  *nreal = r, *ncplx = cx;
  return 1;
}

/* Make the FFTW plan of p (its key filled in). Called with fft_lock held. */
static int fft_make(opl_fft_plan *p, opl_err *err) {
  OPL_FFTW(iodim64) dim[3], batch;
  int64_t rs[3], cs[3];
  int d = p->d;
  rs[d - 1] = 1, cs[d - 1] = 1;
  for (int i = d - 2; i >= 0; i--) {
    rs[i] = rs[i + 1] * p->dims[i + 1];
    cs[i] = cs[i + 1] * (i + 1 == d - 1 ? p->dims[i + 1] / 2 + 1 : p->dims[i + 1]);
  }
  int r2c = p->kind == OPL_FFT_R2C;
  for (int i = 0; i < d; i++) {
    dim[i].n = p->dims[i];
    dim[i].is = r2c ? rs[i] : cs[i];
    dim[i].os = r2c ? cs[i] : rs[i];
  }
  batch.n = p->howmany;
  batch.is = r2c ? p->nreal : p->ncplx;
  batch.os = r2c ? p->ncplx : p->nreal;
  size_t rbytes = (size_t)(p->howmany * p->nreal) * sizeof(opl_real);
  size_t cbytes = (size_t)(p->howmany * p->ncplx) * sizeof(opl_fftw_complex);
  opl_real *rbuf = OPL_FFTW(malloc)(rbytes);
  opl_fftw_complex *cbuf = OPL_FFTW(malloc)(cbytes);
  if (!rbuf || !cbuf) {
    OPL_FFTW(free)(rbuf), OPL_FFTW(free)(cbuf);
    return opl_err_set(err, OPL_ERR_NOMEM, "fft: out of memory for planning scratch (%zu bytes)",
                       rbytes + cbytes);
  }
  unsigned flags = fft_estimate ? FFTW_ESTIMATE : FFTW_MEASURE;
  if (p->flags & OPL_FFT_UNALIGNED) flags |= FFTW_UNALIGNED;
  if (fft_threads_ok) OPL_FFTW(plan_with_nthreads)(p->nthreads);
  if (r2c)
    p->plan = OPL_FFTW(plan_guru64_dft_r2c)(d, dim, 1, &batch, rbuf, cbuf, flags);
  else
    p->plan = OPL_FFTW(plan_guru64_dft_c2r)(d, dim, 1, &batch, cbuf, rbuf, flags);
  if (fft_threads_ok) OPL_FFTW(plan_with_nthreads)(1);
  OPL_FFTW(free)(rbuf), OPL_FFTW(free)(cbuf);
  if (!p->plan) {
    char b[96];
    return opl_err_set(err, OPL_ERR_UNSUPPORTED, "fft: FFTW cannot plan %s of dims %s x %lld",
                       r2c ? "r2c" : "c2r", opl_shape_str(b, d, p->dims), (long long)p->howmany);
  }
  return OPL_OK;
}

const opl_fft_plan *opl_fft_plan_get(opl_fft_kind kind, int d, const int64_t *dims,
                                     int64_t howmany, int flags, opl_err *err) {
  int64_t nreal, ncplx;
  if (d < 1 || d > 3 || !dims) {
    opl_err_set(err, OPL_ERR_ARG, "fft: rank %d outside 1..3", d);
    return NULL;
  }
  if (!fft_sizes(d, dims, &nreal, &ncplx) || howmany < 1 || (kind != OPL_FFT_R2C && kind != OPL_FFT_C2R)) {
    char b[96];
    opl_err_set(err, OPL_ERR_ARG, "fft: bad transform: kind %d, dims %s, howmany %lld", (int)kind,
                opl_shape_str(b, d, dims), (long long)howmany);
    return NULL;
  }
  flags &= OPL_FFT_UNALIGNED | OPL_FFT_SERIAL;
  int nthreads = (flags & OPL_FFT_SERIAL) ? 1 : opl_fft_threads_for(howmany * nreal);
  pthread_once(&fft_once, fft_init);
  pthread_mutex_lock(&fft_lock);
  opl_fft_plan *p = fft_cache;
  for (; p; p = p->next) {
    if (p->kind != kind || p->d != d || p->howmany != howmany || p->nthreads != nthreads ||
        p->flags != flags)
      continue;
    int same = 1;
    for (int i = 0; i < d; i++) same &= p->dims[i] == dims[i];
    if (same) break;
  }
  if (!p) {
    p = calloc(1, sizeof *p);
    if (!p) {
      pthread_mutex_unlock(&fft_lock);
      opl_err_set(err, OPL_ERR_NOMEM, "fft: out of memory for a plan");
      return NULL;
    }
    p->kind = kind, p->d = d, p->flags = flags, p->nthreads = nthreads, p->howmany = howmany;
    for (int i = 0; i < d; i++) p->dims[i] = dims[i];
    p->nreal = nreal, p->ncplx = ncplx;
    if (fft_make(p, err) != OPL_OK) {
      pthread_mutex_unlock(&fft_lock);
      free(p);
      return NULL;
    }
    p->next = fft_cache;
    fft_cache = p;
    fft_created++;
    fft_count++;
  }
  pthread_mutex_unlock(&fft_lock);
  return p;
}

void opl_fft_exec_r2c(const opl_fft_plan *p, const opl_real *in, opl_real *out) {
  OPL_ASSERT(p && p->kind == OPL_FFT_R2C, "r2c plan expected");
  OPL_ASSERT((p->flags & OPL_FFT_UNALIGNED) || (opl_fft_aligned(in) && opl_fft_aligned(out)),
             "fft: misaligned arrays for an aligned plan");
  /* An out-of-place r2c preserves its input (FFTW_PRESERVE_INPUT is its default). */
  OPL_FFTW(execute_dft_r2c)(p->plan, (opl_real *)(uintptr_t)in, (opl_fftw_complex *)out);
}

void opl_fft_exec_c2r(const opl_fft_plan *p, opl_real *in, opl_real *out) {
  OPL_ASSERT(p && p->kind == OPL_FFT_C2R, "c2r plan expected");
  OPL_ASSERT((p->flags & OPL_FFT_UNALIGNED) || (opl_fft_aligned(in) && opl_fft_aligned(out)),
             "fft: misaligned arrays for an aligned plan");
  OPL_FFTW(execute_dft_c2r)(p->plan, (opl_fftw_complex *)in, out);
}

int opl_fft_run(opl_fft_kind kind, int d, const int64_t *dims, int64_t howmany, opl_real *in,
                opl_real *out, opl_err *err) {
  int flags = (opl_fft_aligned(in) && opl_fft_aligned(out)) ? 0 : OPL_FFT_UNALIGNED;
  const opl_fft_plan *p = opl_fft_plan_get(kind, d, dims, howmany, flags, err);
  if (!p) return err ? err->status : OPL_ERR_ARG;
  if (kind == OPL_FFT_R2C)
    opl_fft_exec_r2c(p, in, out);
  else
    opl_fft_exec_c2r(p, in, out);
  return OPL_OK;
}

int64_t opl_fft_plans_created(void) {
  pthread_mutex_lock(&fft_lock);
  int64_t n = fft_created;
  pthread_mutex_unlock(&fft_lock);
  return n;
}

int64_t opl_fft_cache_size(void) {
  pthread_mutex_lock(&fft_lock);
  int64_t n = fft_count;
  pthread_mutex_unlock(&fft_lock);
  return n;
}

void opl_fft_set_planner(int estimate) {
  pthread_mutex_lock(&fft_lock);
  fft_estimate = estimate != 0;
  pthread_mutex_unlock(&fft_lock);
}

int opl_fft_get_planner(void) {
  pthread_mutex_lock(&fft_lock);
  int e = fft_estimate;
  pthread_mutex_unlock(&fft_lock);
  return e ? OPL_FFT_ESTIMATE : OPL_FFT_MEASURE;
}

void opl_fft_cache_clear(void) {
  pthread_mutex_lock(&fft_lock);
  while (dft_cache) {
    dft_mat *q = dft_cache;
    dft_cache = q->next;
    free(q->F), free(q->G), free(q);
  }
  while (fft_cache) {
    opl_fft_plan *p = fft_cache;
    fft_cache = p->next;
    OPL_FFTW(destroy_plan)(p->plan);
    free(p);
  }
  fft_count = 0;
  pthread_mutex_unlock(&fft_lock);
}

/* ------------------------------------------------------------ truncated DFT as GEMM */

/* Fill F [n, 2m] and G [2m, n] (fft.h). The phase 2 pi (j k mod n) / n is reduced exactly in
 * integers; quarter-turn values are exact. */
static void dft_fill(int64_t n, int64_t m, opl_real *F, opl_real *G) {
  for (int64_t k = 0; k < m; k++) {
    double ck = (k == 0 || 2 * k == n) ? 1 : 2;
    for (int64_t j = 0; j < n; j++) {
      int64_t r = (j * k) % n;
      double c, s;
      if (r == 0) c = 1, s = 0;
      else if (4 * r == n) c = 0, s = 1;
      else if (2 * r == n) c = -1, s = 0;
      else if (4 * r == 3 * n) c = 0, s = -1;
      else c = cos(2 * M_PI * (double)r / (double)n), s = sin(2 * M_PI * (double)r / (double)n);
      if (k == 0 || 2 * k == n) s = 0; /* real bins: their imaginary part is not a signal */
      F[j * 2 * m + 2 * k] = (opl_real)c;
      F[j * 2 * m + 2 * k + 1] = (opl_real)-s;
      G[(2 * k) * n + j] = (opl_real)(ck * c);
      G[(2 * k + 1) * n + j] = (opl_real)(-ck * s);
    }
  }
}

int opl_fft_dft_matrices(int64_t n, int64_t m, const opl_real **F, const opl_real **G, opl_err *err) {
  if (n < 1 || m < 1 || m > n / 2 + 1)
    return opl_err_set(err, OPL_ERR_ARG, "fft: truncated DFT of length %lld with %lld bins",
                       (long long)n, (long long)m);
  pthread_mutex_lock(&fft_lock);
  dft_mat *q = dft_cache;
  while (q && (q->n != n || q->m != m)) q = q->next;
  if (!q) {
    q = calloc(1, sizeof *q);
    if (q) {
      q->F = opl_aligned_calloc((size_t)(2 * n * m) * sizeof(opl_real));
      q->G = opl_aligned_calloc((size_t)(2 * n * m) * sizeof(opl_real));
    }
    if (!q || !q->F || !q->G) {
      if (q) free(q->F), free(q->G), free(q);
      pthread_mutex_unlock(&fft_lock);
      return opl_err_set(err, OPL_ERR_NOMEM, "fft: out of memory for DFT matrices %lld x %lld",
                         (long long)n, (long long)(2 * m));
    }
    q->n = n, q->m = m;
    dft_fill(n, m, q->F, q->G);
    q->next = dft_cache;
    dft_cache = q;
  }
  pthread_mutex_unlock(&fft_lock);
  *F = q->F, *G = q->G;
  return OPL_OK;
}

void opl_fft_set_dft_mode(opl_dft_mode mode) { dft_mode = (int)mode; }

int opl_fft_prefer_gemm(int64_t n, int64_t m) {
  switch (dft_mode) {
    case OPL_DFT_FFT: return 0;
    case OPL_DFT_GEMM: return 1;
    default: return n >= 2 && (double)m < 2 * log2((double)n);
  }
}

/* ------------------------------------------------------------ wisdom */

/* FFTW's wisdom carries a signature of the planner's configuration, which includes the
 * threaded solvers that init_threads registers: wisdom exported by a process that made
 * threaded plans is refused (silently: import returns 0) by a process whose planner has not
 * had init_threads yet. Every import and export therefore runs fft_init first. */

static int cmp_line(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Sort the entry lines of exported wisdom in place: "(header\n" entries "  (...)\n" ... ")\n".
 * FFTW writes the entries in the order of its hash table, which depends on the history of the
 * planner (a resumed run imports them, then plans), not only on its contents; sorted, the same
 * wisdom is the same text. Text of another shape is left as it is. Returns 0 on out of memory. */
static int wisdom_sort(char *w) {
  char *body = strchr(w, '\n');
  size_t len = strlen(w);
  if (!body || len < 3 || strcmp(w + len - 2, ")\n")) return 1;
  body++;
  char *end = w + len - 2; /* the closing ")\n" */
  if (body >= end) return 1;
  size_t n = 0;
  for (char *p = body; p < end; p++) n += *p == '\n';
  if (n < 2 || end[-1] != '\n') return 1;
  char **lines = malloc(n * sizeof *lines);
  char *copy = malloc((size_t)(end - body) + 1);
  if (!lines || !copy) {
    free(lines), free(copy);
    return 0;
  }
  memcpy(copy, body, (size_t)(end - body));
  copy[end - body] = 0;
  size_t k = 0;
  for (char *p = copy; k < n; k++) {
    lines[k] = p;
    p = strchr(p, '\n');
    *p++ = 0;
  }
  qsort(lines, n, sizeof *lines, cmp_line);
  char *o = body;
  for (k = 0; k < n; k++) {
    size_t l = strlen(lines[k]);
    memcpy(o, lines[k], l);
    o += l;
    *o++ = '\n';
  }
  free(lines), free(copy);
  return 1;
}

char *opl_fft_wisdom_export(opl_err *err) {
  pthread_once(&fft_once, fft_init);
  pthread_mutex_lock(&fft_lock);
  char *w = OPL_FFTW(export_wisdom_to_string)();
  pthread_mutex_unlock(&fft_lock);
  char *s = w ? strdup(w) : NULL;
  if (w) OPL_FFTW(free)(w);
  if (s && !wisdom_sort(s)) free(s), s = NULL;
  if (!s) opl_err_set(err, OPL_ERR_NOMEM, "fft wisdom: out of memory for the exported wisdom");
  return s;
}

int opl_fft_wisdom_import(const char *wisdom, opl_err *err) {
  if (!wisdom) return opl_err_set(err, OPL_ERR_ARG, "fft wisdom: NULL string");
  pthread_once(&fft_once, fft_init);
  pthread_mutex_lock(&fft_lock);
  int ok = OPL_FFTW(import_wisdom_from_string)(wisdom);
  pthread_mutex_unlock(&fft_lock);
  if (!ok)
    return opl_err_set(err, OPL_ERR_FORMAT,
                       "fft wisdom: the string is not FFTW %s-precision wisdom of this FFTW build and configuration",
                       OPL_PRECISION_NAME);
  return OPL_OK;
}

/* Merge FFTW wisdom (this build's precision) from the file at path into the planner, so
 * that later FFTW_MEASURE plans of the same problems are made without measuring.
 * Errors: OPL_ERR_ARG (NULL path), OPL_ERR_NOTFOUND / OPL_ERR_IO (cannot open),
 * OPL_ERR_FORMAT (not FFTW wisdom of this precision; the planner's wisdom is unchanged). */
int opl_fft_wisdom_load(const char *path, opl_err *err) {
  if (!path || !*path) return opl_err_set(err, OPL_ERR_ARG, "fft wisdom: no path given");
  FILE *f = fopen(path, "r");
  if (!f)
    return opl_err_set(err, errno == ENOENT ? OPL_ERR_NOTFOUND : OPL_ERR_IO,
                       "fft wisdom: cannot open '%s': %s", path, strerror(errno));
  pthread_once(&fft_once, fft_init);
  pthread_mutex_lock(&fft_lock);
  int ok = OPL_FFTW(import_wisdom_from_file)(f);
  pthread_mutex_unlock(&fft_lock);
  int rerr = ferror(f);
  fclose(f);
  if (rerr) return opl_err_set(err, OPL_ERR_IO, "fft wisdom: read error on '%s'", path);
  if (!ok)
    return opl_err_set(err, OPL_ERR_FORMAT, "fft wisdom: '%s' is not FFTW %s-precision wisdom",
                       path, OPL_PRECISION_NAME);
  return OPL_OK;
}

/* Write the planner's accumulated wisdom to path: written to "path.tmp" and renamed into
 * place when complete, so an interrupted save never leaves a truncated file. Errors:
 * OPL_ERR_ARG (NULL or too long path), OPL_ERR_IO (cannot write or rename). */
int opl_fft_wisdom_save(const char *path, opl_err *err) {
  if (!path || !*path) return opl_err_set(err, OPL_ERR_ARG, "fft wisdom: no path given");
  char tmp[4096];
  if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
    return opl_err_set(err, OPL_ERR_ARG, "fft wisdom: path too long");
  FILE *f = fopen(tmp, "w");
  if (!f) return opl_err_set(err, OPL_ERR_IO, "fft wisdom: cannot create '%s': %s", tmp, strerror(errno));
  pthread_once(&fft_once, fft_init);
  pthread_mutex_lock(&fft_lock);
  OPL_FFTW(export_wisdom_to_file)(f);
  pthread_mutex_unlock(&fft_lock);
  int bad = fflush(f) != 0 || ferror(f);
  int e = errno;
  if (fclose(f) != 0 && !bad) bad = 1, e = errno;
  if (bad) {
    remove(tmp);
    return opl_err_set(err, OPL_ERR_IO, "fft wisdom: write error on '%s': %s", tmp, strerror(e));
  }
  if (rename(tmp, path) != 0) {
    e = errno;
    remove(tmp);
    return opl_err_set(err, OPL_ERR_IO, "fft wisdom: cannot rename '%s' to '%s': %s", tmp, path,
                       strerror(e));
  }
  return OPL_OK;
}
