/* opl core — processes working together (core/dist.h). MPI appears only in this file. */
#include "core/dist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef OPL_HAVE_MPI
#include <mpi.h>
#endif

static int g_rank = 0, g_size = 1;
#ifdef OPL_HAVE_MPI
static int g_joined = 0; /* opl_dist_init called MPI_Init */
#endif

int opl_dist_built(void) {
#ifdef OPL_HAVE_MPI
  return 1;
#else
  return 0;
#endif
}

int opl_dist_rank(void) { return g_rank; }
int opl_dist_size(void) { return g_size; }

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#ifdef OPL_HAVE_MPI
/* The MPI type of opl_real. */
#ifdef OPL_DOUBLE
#define OPL_MPI_REAL MPI_DOUBLE
#else
#define OPL_MPI_REAL MPI_FLOAT
#endif

static int mpi_fail(opl_err *err, int code, const char *what) {
  char s[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(code, s, &len) != MPI_SUCCESS) snprintf(s, sizeof s, "MPI error %d", code);
  return opl_err_set(err, OPL_ERR_IO, "dist: %s: %s", what, s);
}

/* 1 when an MPI launcher started this process: Open MPI's mpirun (OMPI_COMM_WORLD_SIZE), a
 * PMIx launcher (PMIX_RANK) or a PMI-1/2 one (PMI_RANK, e.g. MPICH's hydra, Slurm). */
static int launched_by_mpi(void) {
  return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK");
}
#endif

int opl_dist_init(int *argc, char ***argv, opl_err *err) {
#ifdef OPL_HAVE_MPI
  if (g_joined || !launched_by_mpi()) return OPL_OK;
  int provided = 0, rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
  if (rc != MPI_SUCCESS) return mpi_fail(err, rc, "MPI_Init_thread");
  g_joined = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_size);
  /* errors come back as codes where opl checks them; MPI's own loss of a peer still ends the job */
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  if (provided < MPI_THREAD_FUNNELED)
    return opl_err_set(err, OPL_ERR_IO, "dist: the MPI library gives thread level %d, opl needs MPI_THREAD_FUNNELED",
                       provided);
  return OPL_OK;
#else
  (void)argc, (void)argv;
  /* started by mpirun as one of several processes: each would believe it is alone and write the
   * same files, so refuse */
  const char *ns = getenv("OMPI_COMM_WORLD_SIZE");
  if (!ns) ns = getenv("PMI_SIZE");
  if (ns && atoi(ns) > 1)
    return opl_err_set(err, OPL_ERR_ARG, "dist: started as one of %d MPI processes, but this opl was built without "
                       "MPI (rebuild with -Dmpi=enabled and libopenmpi-dev, or run one process)", atoi(ns));
  return OPL_OK;
#endif
}

void opl_dist_finalize(void) {
#ifdef OPL_HAVE_MPI
  if (g_joined) MPI_Finalize();
  g_joined = 0;
#endif
  g_rank = 0;
  g_size = 1;
}

int opl_dist_fault(const char *where) {
  if (g_size < 2 || !where) return 0;
  const char *v = getenv("OPL_DIST_FAULT");
  char want[96];
  snprintf(want, sizeof want, "%s:%d", where, g_rank);
  return v && !strcmp(v, want);
}

/* One reduction of the agreement: the caller's sums and, per rank, a failure flag. */
typedef struct agree_msg {
  int status;
  char msg[sizeof(((opl_err *)0)->msg)];
} agree_msg;

int opl_dist_agree(int status, opl_err *err, double *sums, int n) {
  if (n < 0 || (n > 0 && !sums)) return opl_err_set(err, OPL_ERR_ARG, "dist: agree on %d sums", n);
  if (g_size < 2) return status;
#ifdef OPL_HAVE_MPI
  if (n > 2147483647 - g_size) return opl_err_set(err, OPL_ERR_ARG, "dist: agree on %d sums: too many", n);
  const int m = n + g_size;
  double stackbuf[128], *buf = m <= 128 ? stackbuf : malloc(sizeof(double) * (size_t)m);
  if (!buf) return opl_err_set(err, OPL_ERR_NOMEM, "dist: out of memory");
  for (int i = 0; i < n; i++) buf[i] = sums[i];
  for (int r = 0; r < g_size; r++) buf[n + r] = 0;
  buf[n + g_rank] = status != OPL_OK;
  /* reduce to rank 0, then broadcast: every rank gets the same bits of every sum */
  int rc = MPI_Reduce(g_rank ? buf : MPI_IN_PLACE, buf, m, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
  if (rc == MPI_SUCCESS) rc = MPI_Bcast(buf, m, MPI_DOUBLE, 0, MPI_COMM_WORLD);
  if (rc != MPI_SUCCESS) {
    if (buf != stackbuf) free(buf);
    return mpi_fail(err, rc, "agreeing on a step's status");
  }
  int first = -1;
  for (int r = 0; r < g_size && first < 0; r++)
    if (buf[n + r] != 0) first = r;
  for (int i = 0; i < n; i++) sums[i] = buf[i];
  if (buf != stackbuf) free(buf);
  if (first < 0) return OPL_OK;
  agree_msg am = {0};
  if (g_rank == first) {
    am.status = status;
    snprintf(am.msg, sizeof am.msg, "rank %d: %.480s", first, err ? err->msg : "failed");
  }
  rc = MPI_Bcast(&am, (int)sizeof am, MPI_BYTE, first, MPI_COMM_WORLD);
  if (rc != MPI_SUCCESS) return mpi_fail(err, rc, "sharing a rank's error");
  am.msg[sizeof am.msg - 1] = 0;
  return opl_err_set(err, am.status ? am.status : OPL_ERR_STATE, "%s", am.msg);
#else
  return status;
#endif
}

int opl_dist_check_same(const opl_params *p, const char *what, opl_err *err) {
  if (g_size < 2) return OPL_OK;
  uint64_t h = 1469598103934665603ULL;
  for (int i = 0; p && i < p->n; i++) {
    const unsigned char *b = (const unsigned char *)p->t[i]->data;
    for (size_t j = 0, n = (size_t)opl_nreal(p->t[i]) * sizeof(opl_real); j < n; j++) h = (h ^ b[j]) * 1099511628211ULL;
  }
  /* 40 bits are exact in a double: rank 0's hash, and the sum of all ranks' */
  double v[2] = {g_rank == 0 ? (double)(h >> 24) : 0, (double)(h >> 24)};
  int st = opl_dist_agree(OPL_OK, err, v, 2);
  if (st) return st;
  if (v[1] != v[0] * g_size)
    return opl_err_set(err, OPL_ERR_STATE, "%s the ranks hold different parameters", what ? what : "dist: now");
  return OPL_OK;
}

int opl_dist_bcast(void *buf, size_t bytes, int root, opl_err *err) {
  if (g_size < 2) return OPL_OK;
#ifdef OPL_HAVE_MPI
  char *p = buf;
  while (bytes > 0) { /* MPI counts are int */
    int chunk = bytes > (1u << 30) ? (1 << 30) : (int)bytes;
    int rc = MPI_Bcast(p, chunk, MPI_BYTE, root, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return mpi_fail(err, rc, "broadcast");
    p += chunk;
    bytes -= (size_t)chunk;
  }
  return OPL_OK;
#else
  (void)buf, (void)bytes, (void)root, (void)err;
  return OPL_OK;
#endif
}

int opl_dist_gather_doubles(const double *send, const int64_t *counts, double *recv, opl_err *err) {
  if (!counts) return opl_err_set(err, OPL_ERR_ARG, "dist: gather without counts");
  if (g_size < 2) {
    if (recv != send && counts[0] > 0) memmove(recv, send, sizeof(double) * (size_t)counts[0]);
    return OPL_OK;
  }
#ifdef OPL_HAVE_MPI
  int *cnt = malloc(sizeof(int) * 2 * (size_t)g_size);
  if (!cnt) return opl_err_set(err, OPL_ERR_NOMEM, "dist: out of memory");
  int *disp = cnt + g_size;
  int64_t off = 0;
  for (int r = 0; r < g_size; r++) {
    if (counts[r] < 0 || counts[r] > 2147483647 || off > 2147483647) {
      free(cnt);
      return opl_err_set(err, OPL_ERR_ARG, "dist: gather of %lld doubles from rank %d: more than 2^31",
                         (long long)counts[r], r);
    }
    cnt[r] = (int)counts[r];
    disp[r] = (int)off;
    off += counts[r];
  }
  int rc = MPI_Gatherv(send, cnt[g_rank], MPI_DOUBLE, recv, cnt, disp, MPI_DOUBLE, 0, MPI_COMM_WORLD);
  free(cnt);
  if (rc != MPI_SUCCESS) return mpi_fail(err, rc, "gathering samples");
  return OPL_OK;
#else
  return OPL_OK;
#endif
}

/* ---------------------------------------------------------------- gradient buckets */

typedef struct bucket {
  int p0, p1;        /* parameters order[p0 .. p1) of the bucket order */
  int64_t n;         /* reals */
  opl_real *buf;     /* [n] packed gradients, summed in place */
  int ready;         /* parameters of the bucket whose gradient is final this step */
#ifdef OPL_HAVE_MPI
  MPI_Request req;
#endif
} bucket;

struct opl_dist_grads {
  const opl_params *p;
  int np, nb;
  int *order;        /* [np] parameter indices, bucket by bucket (reverse parameter order) */
  int *of;           /* [np] bucket of parameter i */
  bucket *b;         /* [nb] */
  /* per step */
  int64_t *first;    /* [np] first tape node using parameter i (-1: none) */
  int *fin;          /* [np] parameters by decreasing first use: the order they become final */
  int nfin;          /* parameters already final this step */
  int started;       /* buckets started this step (in bucket order) */
  int active;
  struct { const opl_tensor *t; int i; } *sorted; /* [np] parameters by address */
  opl_dist_grads_stats st;
};

opl_dist_grads *opl_dist_grads_new(const opl_params *p, size_t bucket_bytes, opl_err *err) {
  if (!p || p->n < 1) {
    opl_err_set(err, OPL_ERR_ARG, "dist: gradient buckets over %s", p ? "no parameters" : "NULL parameters");
    return NULL;
  }
  if (bucket_bytes == 0) {
    const char *kb = getenv("OPL_DIST_BUCKET_KB");
    bucket_bytes = kb && atol(kb) > 0 ? (size_t)atol(kb) << 10 : (size_t)1 << 20;
  }
  opl_dist_grads *g = calloc(1, sizeof *g);
  const int np = p->n;
  if (g) {
    g->p = p;
    g->np = np;
    g->order = malloc(sizeof(int) * (size_t)np);
    g->of = malloc(sizeof(int) * (size_t)np);
    g->b = calloc((size_t)np, sizeof *g->b);
    g->first = malloc(sizeof(int64_t) * (size_t)np);
    g->fin = malloc(sizeof(int) * (size_t)np);
    g->sorted = malloc(sizeof *g->sorted * (size_t)np);
  }
  if (!g || !g->order || !g->of || !g->b || !g->first || !g->fin || !g->sorted) goto nomem;
  /* buckets in reverse parameter order, each closed once it holds bucket_bytes */
  int nb = 0;
  size_t bytes = 0;
  for (int k = 0; k < np; k++) {
    int i = np - 1 - k;
    g->order[k] = i;
    if (k == 0 || bytes >= bucket_bytes) {
      if (k) g->b[nb - 1].p1 = k;
      g->b[nb++].p0 = k;
      bytes = 0;
    }
    g->of[i] = nb - 1;
    g->b[nb - 1].n += opl_nreal(p->t[i]);
    bytes += (size_t)opl_nreal(p->t[i]) * sizeof(opl_real);
  }
  g->b[nb - 1].p1 = np;
  g->nb = nb;
  for (int j = 0; j < nb; j++) {
    g->b[j].buf = malloc(sizeof(opl_real) * (size_t)g->b[j].n);
    if (!g->b[j].buf) goto nomem;
    g->st.bytes += g->b[j].n * (int64_t)sizeof(opl_real);
  }
  g->st.buckets = nb;
  return g;
nomem:
  opl_dist_grads_free(&g);
  opl_err_set(err, OPL_ERR_NOMEM, "dist: out of memory (gradient buckets)");
  return NULL;
}

void opl_dist_grads_free(opl_dist_grads **pg) {
  if (!pg || !*pg) return;
  opl_dist_grads *g = *pg;
  if (g->b)
    for (int j = 0; j < g->np; j++) free(g->b[j].buf);
  free(g->b);
  free(g->order);
  free(g->of);
  free(g->first);
  free(g->fin);
  free(g->sorted);
  free(g);
  *pg = NULL;
}

void opl_dist_grads_get_stats(const opl_dist_grads *g, opl_dist_grads_stats *s) {
  if (g && s) *s = g->st;
}

static int cmp_ptr(const void *a, const void *b) {
  const opl_tensor *x = *(const opl_tensor *const *)a, *y = *(const opl_tensor *const *)b;
  return x < y ? -1 : x > y;
}

static opl_dist_grads *g_sort_ctx; /* for cmp_fin (qsort has no user pointer in C11) */
static int cmp_fin(const void *a, const void *b) {
  int64_t x = g_sort_ctx->first[*(const int *)a], y = g_sort_ctx->first[*(const int *)b];
  if (x != y) return x > y ? -1 : 1;
  return *(const int *)a - *(const int *)b;
}

/* Start bucket j's sum: pack its gradients and post the non-blocking allreduce. */
static void bucket_start(opl_dist_grads *g, int j) {
  bucket *b = &g->b[j];
  int64_t off = 0;
  for (int k = b->p0; k < b->p1; k++) {
    const opl_tensor *t = g->p->t[g->order[k]];
    memcpy(b->buf + off, t->grad, sizeof(opl_real) * (size_t)opl_nreal(t));
    off += opl_nreal(t);
  }
#ifdef OPL_HAVE_MPI
  MPI_Iallreduce(MPI_IN_PLACE, b->buf, (int)b->n, OPL_MPI_REAL, MPI_SUM, MPI_COMM_WORLD, &b->req);
#endif
}

/* Parameters fin[nfin ..) whose first use is >= k are final: count them into their buckets and
 * start every complete bucket that is next in bucket order. */
static void release_until(opl_dist_grads *g, int64_t k) {
  while (g->nfin < g->np && g->first[g->fin[g->nfin]] >= k) g->b[g->of[g->fin[g->nfin++]]].ready++;
  while (g->started < g->nb && g->b[g->started].ready == g->b[g->started].p1 - g->b[g->started].p0)
    bucket_start(g, g->started++);
}

static void hook(void *user, int64_t k) {
  opl_dist_grads *g = user;
  if (!g->active) return;
  double t0 = now_s();
  int before = g->started;
  release_until(g, k);
#ifdef OPL_HAVE_MPI
  /* drive the started sums forward: Open MPI progresses non-blocking collectives only inside MPI
   * calls (testing one request runs the progress engine for all) */
  if (g->started > 0) {
    int flag;
    MPI_Test(&g->b[g->started - 1].req, &flag, MPI_STATUS_IGNORE);
  }
#endif
  if (g->started > 0 || before > 0) g->st.comm_seconds += now_s() - t0;
}

int opl_dist_grads_begin(opl_dist_grads *g, opl_ctx *c, opl_err *err) {
  if (!g || !c) return opl_err_set(err, OPL_ERR_ARG, "dist: NULL buckets or context");
  if (g_size < 2) return OPL_OK;
  const int np = g->np;
  for (int i = 0; i < np; i++) {
    g->sorted[i].t = g->p->t[i];
    g->sorted[i].i = i;
    g->first[i] = -1;
    g->fin[i] = i;
  }
  qsort(g->sorted, (size_t)np, sizeof *g->sorted, cmp_ptr);
  int64_t n = 0;
  opl_node *const *tape = opl_ctx_tape(c, &n);
  /* forward scan: the last write of first[i] is wrong, so scan backward and keep the earliest */
  for (int64_t k = n - 1; k >= 0; k--) {
    const opl_node *nd = tape[k];
    opl_tensor *const *ins = nd->more ? nd->more : nd->in;
    const int nins = nd->more ? nd->nmore : nd->nin;
    for (int a = 0; a < nins; a++) {
      const opl_tensor *t = ins[a];
      if (!t || !(t->flags & OPL_T_PARAM)) continue;
      int lo = 0, hi = np - 1;
      while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (g->sorted[mid].t == t) {
          g->first[g->sorted[mid].i] = k;
          break;
        }
        if ((const void *)g->sorted[mid].t < (const void *)t) lo = mid + 1;
        else hi = mid - 1;
      }
    }
  }
  g_sort_ctx = g;
  qsort(g->fin, (size_t)np, sizeof(int), cmp_fin);
  g_sort_ctx = NULL;
  for (int j = 0; j < g->nb; j++) {
    g->b[j].ready = 0;
#ifdef OPL_HAVE_MPI
    g->b[j].req = MPI_REQUEST_NULL;
#endif
  }
  g->nfin = 0;
  g->started = 0;
  g->active = 1;
  opl_ctx_set_backward_hook(c, hook, g);
  return OPL_OK;
}

int opl_dist_grads_finish(opl_dist_grads *g, opl_ctx *c, opl_err *err) {
  if (!g || !c) return opl_err_set(err, OPL_ERR_ARG, "dist: NULL buckets or context");
  if (g_size < 2) return OPL_OK;
  opl_ctx_set_backward_hook(c, NULL, NULL);
  if (!g->active) { /* no begin: sum every bucket all the same, so the ranks' collectives match */
    g->nfin = g->np;
    g->started = 0;
  }
  g->active = 0;
  double t0 = now_s();
  g->st.started_early += g->started;
  release_until(g, -1);
  for (int j = g->started; j < g->nb; j++) bucket_start(g, j); /* cannot happen after release_until(-1) */
  g->started = g->nb;
  double tw = now_s();
  int rc = 0;
#ifdef OPL_HAVE_MPI
  for (int j = 0; j < g->nb; j++) {
    int r = MPI_Wait(&g->b[j].req, MPI_STATUS_IGNORE);
    if (r != MPI_SUCCESS && !rc) rc = r;
  }
#endif
  double t1 = now_s();
  g->st.wait_seconds += t1 - tw;
  g->st.comm_seconds += t1 - t0;
  g->st.steps++;
#ifdef OPL_HAVE_MPI
  if (rc) return mpi_fail(err, rc, "summing gradients");
#endif
  (void)rc;
  for (int j = 0; j < g->nb; j++) {
    const bucket *b = &g->b[j];
    int64_t off = 0;
    for (int k = b->p0; k < b->p1; k++) {
      opl_tensor *t = g->p->t[g->order[k]];
      memcpy(t->grad, b->buf + off, sizeof(opl_real) * (size_t)opl_nreal(t));
      off += opl_nreal(t);
    }
  }
  return OPL_OK;
}
